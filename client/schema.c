/*
 * schema.c: create and migrate the outbox schema, forward only, keyed by user_version.
 *
 * The SQL comes from schema/outbox.sql, embedded at build time as schema_outbox_sql: the
 * text after a line "-- @migration N" up to the next such line is migration N. Pending
 * migrations run in one IMMEDIATE transaction, so concurrent openers serialise and a
 * failure leaves the database as it was.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox.h"
#include "schema.h"

extern const char schema_outbox_sql[];

#define SCHEMA_MARKER "-- @migration "

static int schema_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
schema_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

static int
schema_user_version(sqlite3 *db, int *version)
{
	sqlite3_stmt *st;
	int rc;

	*version = 0;
	rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*version = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* 1 if a table or view called name exists, 0 if not, -1 on error. */
static int
schema_has_object(sqlite3 *db, const char *name)
{
	sqlite3_stmt *st;
	int rc, found = -1;

	rc = sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_schema WHERE name = ?1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		found = 1;
	else if (rc == SQLITE_DONE)
		found = 0;
	sqlite3_finalize(st);
	return found;
}

/* Is version ours, and does the database look like what it claims? */
static int
schema_check(sqlite3 *db, int version, char *err, size_t errlen)
{
	int has_outbox;

	if (version > OUTBOX_SCHEMA_VERSION)
		return schema_fail(err, errlen, OUTBOX_ESCHEMA,
		    "database schema version %d is newer than this outboxd understands (%d): "
		    "upgrade outboxd", version, OUTBOX_SCHEMA_VERSION);
	has_outbox = schema_has_object(db, "outbox");
	if (has_outbox < 0)
		return schema_fail(err, errlen, OUTBOX_ESQLITE, "cannot read the database schema: %s",
		    sqlite3_errmsg(db));
	if (version == 0 && has_outbox)
		return schema_fail(err, errlen, OUTBOX_ESCHEMA,
		    "the database has a table named 'outbox' that is not an outbox schema "
		    "(user_version 0): refusing to alter it");
	if (version > 0 && !has_outbox)
		return schema_fail(err, errlen, OUTBOX_ESCHEMA,
		    "the database has user_version %d but no outbox table: it is not an outbox "
		    "database", version);
	return OUTBOX_OK;
}

static int
schema_none(char *err, size_t errlen)
{
	return schema_fail(err, errlen, OUTBOX_ESCHEMA, "no outbox schema in this database "
	    "(create it with: outboxctl -d DB init)");
}

/* Run every migration numbered above from, in file order. */
static int
schema_apply(sqlite3 *db, int from, char *err, size_t errlen)
{
	const char *p = schema_outbox_sql;
	const char *marker, *next;
	char *chunk, *msg = NULL;
	int n, rc;

	while ((marker = strstr(p, SCHEMA_MARKER)) != NULL) {
		n = (int)strtol(marker + strlen(SCHEMA_MARKER), NULL, 10);
		next = strstr(marker + 1, SCHEMA_MARKER);
		p = next != NULL ? next : marker + strlen(marker);
		if (n <= from)
			continue;
		chunk = next != NULL ? strndup(marker, (size_t)(next - marker)) : strdup(marker);
		if (chunk == NULL)
			return schema_fail(err, errlen, OUTBOX_ENOMEM, "out of memory");
		rc = sqlite3_exec(db, chunk, NULL, NULL, &msg);
		free(chunk);
		if (rc != SQLITE_OK) {
			schema_fail(err, errlen, OUTBOX_ESQLITE, "schema migration %d failed: %s", n,
			    msg != NULL ? msg : sqlite3_errstr(rc));
			sqlite3_free(msg);
			return OUTBOX_ESQLITE;
		}
	}
	return OUTBOX_OK;
}

static int
schema_migrate_locked(sqlite3 *db, int create, char *err, size_t errlen)
{
	int version, rc;

	rc = schema_user_version(db, &version);
	if (rc != SQLITE_OK)
		return schema_fail(err, errlen, OUTBOX_ESQLITE, "cannot read user_version: %s",
		    sqlite3_errmsg(db));
	rc = schema_check(db, version, err, errlen);
	if (rc != OUTBOX_OK || version == OUTBOX_SCHEMA_VERSION)
		return rc;
	if (version == 0 && !create)
		return schema_none(err, errlen);
	rc = schema_apply(db, version, err, errlen);
	if (rc != OUTBOX_OK)
		return rc;
	/* Each migration sets user_version itself (so the file works in the sqlite3 shell). */
	if (schema_user_version(db, &version) != SQLITE_OK || version != OUTBOX_SCHEMA_VERSION)
		return schema_fail(err, errlen, OUTBOX_ESQLITE, "schema migration left user_version "
		    "at %d instead of %d", version, OUTBOX_SCHEMA_VERSION);
	return OUTBOX_OK;
}

/* user_version, or an error naming why it cannot be read. */
static int
schema_read_version(sqlite3 *db, int *version, char *err, size_t errlen)
{
	int rc = schema_user_version(db, version);

	if (rc == SQLITE_NOTADB)
		return schema_fail(err, errlen, OUTBOX_ESCHEMA, "not an SQLite database");
	if (rc != SQLITE_OK)
		return schema_fail(err, errlen, OUTBOX_ESQLITE, "cannot read user_version: %s",
		    sqlite3_errmsg(db));
	return OUTBOX_OK;
}

int
schema_migrate(sqlite3 *db, int create, char *err, size_t errlen)
{
	int version, rc;

	/* Fast path without a write lock: the usual case is an up-to-date database. */
	if ((rc = schema_read_version(db, &version, err, errlen)) != OUTBOX_OK)
		return rc;
	if (version == OUTBOX_SCHEMA_VERSION)
		return schema_check(db, version, err, errlen);
	/* Refused before any lock is taken: the file is left exactly as it was. */
	if (version == 0 && !create) {
		rc = schema_check(db, version, err, errlen);
		return rc != OUTBOX_OK ? rc : schema_none(err, errlen);
	}
	if (!sqlite3_get_autocommit(db))
		return schema_fail(err, errlen, OUTBOX_ESCHEMA,
		    "the outbox schema needs creating or migrating, which cannot happen inside "
		    "an open transaction");

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return schema_fail(err, errlen, OUTBOX_ESQLITE, "cannot start the migration: %s",
		    sqlite3_errmsg(db));
	rc = schema_migrate_locked(db, create, err, errlen);
	if (rc == OUTBOX_OK && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = schema_fail(err, errlen, OUTBOX_ESQLITE, "cannot commit the migration: %s",
		    sqlite3_errmsg(db));
	if (rc != OUTBOX_OK)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int
schema_verify(sqlite3 *db, char *err, size_t errlen)
{
	int version, rc;

	if ((rc = schema_read_version(db, &version, err, errlen)) != OUTBOX_OK)
		return rc;
	if ((rc = schema_check(db, version, err, errlen)) != OUTBOX_OK)
		return rc;
	if (version == 0)
		return schema_none(err, errlen);
	if (version < OUTBOX_SCHEMA_VERSION)
		return schema_fail(err, errlen, OUTBOX_ESCHEMA, "outbox schema version %d is older "
		    "than this outboxd's (%d): migrate it with: outboxctl -d DB init", version,
		    OUTBOX_SCHEMA_VERSION);
	return OUTBOX_OK;
}
