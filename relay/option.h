/*
 * option.h: tables of options, one row per option (like tmux's options-table.c).
 *
 * A row says everything about an option: its name and alias, its type, where it lives in
 * the struct it fills (offset), its bounds, its default as it would be written in the
 * file, whether it is secret, and one line of help (outbox(5) is checked against it).
 * The relay's own keys have one table (conf.c), every sink type another (its
 * *_options.c). Reading, bounds, defaults, copies, comparison and unknown-key warnings
 * are done here, from the tables, for all of them.
 *
 * Ownership: a struct filled by option_read holds malloc'd strings and lists; only
 * option_free (with the same table) frees them, and option_copy makes an independent copy.
 */
#ifndef RELAY_OPTION_H
#define RELAY_OPTION_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

enum option_type {
	OPTION_STRING,    /* char *, NULL when unset and no default */
	OPTION_INT,       /* int, from min to max */
	OPTION_INT64,     /* int64_t, from min to max */
	OPTION_BOOL,      /* int, 0 or 1 */
	OPTION_NUMBER,    /* double, from min to max */
	OPTION_DURATION,  /* int64_t milliseconds: "30s", "7d", or a number of seconds */
	OPTION_CHOICE,    /* int, the index of the value in choices */
	OPTION_STRINGS,   /* struct option_strings: one string, or an array of them */
	OPTION_PATTERNS,  /* char *: a JSON array of non-empty strings, kept as its text */
	OPTION_OBJECT,    /* char *: a JSON object, kept as its compact text */
	OPTION_OTHER      /* accepted here, read by someone else (name may be a glob) */
};

/* The row's value is secret or may hold one (a password, a URL): never quoted. */
#define OPTION_SECRET 0x1
/* An empty string means unset (NULL), as in a URL's empty user name. */
#define OPTION_EMPTY_IS_NULL 0x2
/* OPTION_OBJECT: every value must be a string (HTTP headers). */
#define OPTION_STRING_VALUES 0x4

struct option_strings {
	char **v;
	size_t n;
};

struct conf_option {
	const char *name;
	const char *alias;             /* the same option under another name, or NULL */
	size_t offset;                 /* of the field in the struct the table fills */
	int64_t min, max;              /* OPTION_INT, OPTION_INT64, OPTION_NUMBER */
	const char *def;               /* the default as written in the file, or NULL */
	const char *const *choices;    /* OPTION_CHOICE: NULL-terminated */
	const char *help;              /* one line, for outbox(5) */
	enum option_type type;
	int flags;
};

/* Tables end with a row whose name is NULL. */
#define OPTION_END { .name = NULL }

/* Set every field of base to its row's default (zero/NULL where there is none). */
void option_defaults(const struct conf_option *table, void *base);

/*
 * Read the keys of obj that the table knows into base, leaving absent ones as they are.
 * A value of the wrong type, out of range, or given under both its name and its alias
 * with two values returns -1 with *cause naming where.key. Integers, booleans and numbers
 * may be given as strings ("6379", "true"), as configs filled from the environment often
 * have them. Unknown keys are not an error: see option_warn_unknown.
 */
int option_read(const struct conf_option *table, void *base, const cJSON *obj, const char *where,
    char **cause);

/* Log one warning naming the keys of obj that none of the tables (a NULL-terminated
 * list) knows. */
void option_warn_unknown(const struct conf_option *const tables[], const cJSON *obj,
    const char *where);

void option_free(const struct conf_option *table, void *base);
void option_copy(const struct conf_option *table, void *dst, const void *src);
/* Do two structs filled from table hold the same values? */
int option_equal(const struct conf_option *table, const void *a, const void *b);

/* A type error: "where.key: expected want, got V", V redacted (URLs) or named (objects),
 * never quoted when secret. Returns -1. */
int option_type_error(const char *where, const char *key, const char *want, const cJSON *v,
    int secret, char **cause);

#endif
