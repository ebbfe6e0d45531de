/* schema.h: create and migrate the outbox schema (internal to liboutbox). */
#ifndef OUTBOX_SCHEMA_H
#define OUTBOX_SCHEMA_H

#include <stddef.h>
#include <sqlite3.h>

/* Bring db to OUTBOX_SCHEMA_VERSION; with create 0, only a database that already has an
 * outbox schema (a database without one is refused, untouched). Returns an OUTBOX_* code;
 * on failure err holds why. */
int schema_migrate(sqlite3 *db, int create, char *err, size_t errlen);

/* Check, without writing anything, that db has the outbox schema at
 * OUTBOX_SCHEMA_VERSION. Returns an OUTBOX_* code; on failure err holds why. */
int schema_verify(sqlite3 *db, char *err, size_t errlen);

#endif
