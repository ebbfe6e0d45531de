#!/bin/sh
# embed-sql.sh NAME < file.sql > file.c: turn SQL text into a C string constant NAME,
# so schema/outbox.sql stays the one source of truth for the schema.
set -e
name=$1
printf '/* Generated from schema/outbox.sql by tools/embed-sql.sh: do not edit. */\n'
printf 'extern const char %s[];\n' "$name"
printf 'const char %s[] =\n' "$name"
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$/\\n"/'
printf ';\n'
