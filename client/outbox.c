/*
 * outbox.c: liboutbox handles, error reporting and enqueue.
 *
 * Enqueue is a single cached INSERT statement. A single statement is atomic on its own:
 * if it fails, SQLite rolls back just that statement and the caller's transaction stays
 * open and intact, which is what a SAVEPOINT would buy at three statements the price.
 * Validation that SQLite's CHECK constraints already do (JSON payload and headers) is left
 * to them on the fast path; cJSON runs only after a failure, to say where the JSON broke.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "ids.h"
#include "outbox.h"
#include "schema.h"

struct outbox {
	sqlite3 *db;
	int owns_db;
	sqlite3_stmt *insert;
	enum outbox_id_format id_format;
	uint64_t uuid7_last_ms;
	uint16_t uuid7_counter;
	char id[OUTBOX_ID_MAX + 1];
	char errmsg[512];
};

static const char outbox_insert_sql[] =
    "INSERT INTO outbox(id, name, payload, headers, key) VALUES (?1, ?2, ?3, ?4, ?5)";

static int outbox_fail(outbox *ob, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
outbox_fail(outbox *ob, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ob->errmsg, sizeof ob->errmsg, fmt, ap);
	va_end(ap);
	return code;
}

static int
outbox_ok(outbox *ob)
{
	ob->errmsg[0] = '\0';
	return OUTBOX_OK;
}

const char *
outbox_errmsg(const outbox *ob)
{
	if (ob == NULL)
		return "no outbox handle (out of memory?)";
	return ob->errmsg;
}

const char *
outbox_errstr(int code)
{
	switch (code) {
	case OUTBOX_OK:          return "success";
	case OUTBOX_EINVAL:      return "invalid argument";
	case OUTBOX_EDUPLICATE:  return "duplicate event id";
	case OUTBOX_ESQLITE:     return "database error";
	case OUTBOX_ESCHEMA:     return "not a compatible outbox database";
	case OUTBOX_ENOMEM:      return "out of memory";
	case OUTBOX_EMISUSE:     return "library misuse";
	default:                 return "unknown error";
	}
}

const char *
outbox_version(void)
{
	return PACKAGE_VERSION;
}

sqlite3 *
outbox_db(outbox *ob)
{
	return ob != NULL ? ob->db : NULL;
}

int
outbox_set_id_format(outbox *ob, enum outbox_id_format format)
{
	if (ob == NULL)
		return OUTBOX_EMISUSE;
	if (format != OUTBOX_ID_UUID4 && format != OUTBOX_ID_UUID7)
		return outbox_fail(ob, OUTBOX_EINVAL, "unknown id format %d", (int)format);
	ob->id_format = format;
	return outbox_ok(ob);
}

static outbox *
outbox_new(sqlite3 *db, int owns_db)
{
	outbox *ob = calloc(1, sizeof *ob);

	if (ob != NULL) {
		ob->db = db;
		ob->owns_db = owns_db;
	}
	return ob;
}

/* Create or migrate the schema as the outbox_open flags say (OUTBOX_OPEN_EXISTING: only
 * check it; OUTBOX_OPEN_MIGRATE: never create it), then cache the enqueue statement. */
static int
outbox_prepare(outbox *ob, int flags)
{
	char err[sizeof ob->errmsg];
	int rc;

	if (flags & OUTBOX_OPEN_EXISTING)
		rc = schema_verify(ob->db, err, sizeof err);
	else
		rc = schema_migrate(ob->db, !(flags & OUTBOX_OPEN_MIGRATE), err, sizeof err);
	if (rc != OUTBOX_OK)
		return outbox_fail(ob, rc, "%s", err);
	if (sqlite3_prepare_v3(ob->db, outbox_insert_sql, -1, SQLITE_PREPARE_PERSISTENT,
	    &ob->insert, NULL) != SQLITE_OK)
		return outbox_fail(ob, OUTBOX_ESQLITE, "cannot prepare the enqueue statement: %s",
		    sqlite3_errmsg(ob->db));
	return outbox_ok(ob);
}

int
outbox_attach(sqlite3 *db, outbox **out)
{
	if (out == NULL)
		return OUTBOX_EMISUSE;
	*out = NULL;
	if (db == NULL)
		return OUTBOX_EMISUSE;
	if ((*out = outbox_new(db, 0)) == NULL)
		return OUTBOX_ENOMEM;
	return outbox_prepare(*out, 0);
}

/*
 * Connection settings only: journal_mode = WAL is persistent, so it waits until the schema
 * is known to be ours (outbox_open_wal) and a refused database is left as it was. Reading
 * schema_version makes SQLite read the header, so a file that is not a database shows here.
 */
static int
outbox_configure(outbox *ob, const char *path)
{
	static const char pragmas[] =
	    "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA schema_version;";
	char *msg = NULL;
	int rc;

	sqlite3_extended_result_codes(ob->db, 1);
	sqlite3_busy_timeout(ob->db, 5000);
	rc = sqlite3_exec(ob->db, pragmas, NULL, NULL, &msg);
	if (rc == SQLITE_NOTADB)
		rc = outbox_fail(ob, OUTBOX_ESCHEMA, "'%s' is not an SQLite database", path);
	else if (rc != SQLITE_OK)
		rc = outbox_fail(ob, OUTBOX_ESQLITE, "cannot configure '%s': %s", path,
		    msg != NULL ? msg : sqlite3_errstr(rc));
	sqlite3_free(msg);
	return rc == SQLITE_OK ? OUTBOX_OK : rc;
}

static int
outbox_open_wal(outbox *ob, const char *path)
{
	char *msg = NULL;
	int rc;

	rc = sqlite3_exec(ob->db, "PRAGMA journal_mode = WAL", NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		rc = outbox_fail(ob, OUTBOX_ESQLITE, "cannot configure '%s': %s", path,
		    msg != NULL ? msg : sqlite3_errstr(rc));
	sqlite3_free(msg);
	return rc == SQLITE_OK ? OUTBOX_OK : rc;
}

int
outbox_open(const char *path, int flags, outbox **out)
{
	struct stat sb;
	sqlite3 *db = NULL;
	outbox *ob;
	int rc, oflags = SQLITE_OPEN_READWRITE;

	if (out == NULL)
		return OUTBOX_EMISUSE;
	if ((*out = ob = outbox_new(NULL, 1)) == NULL)
		return OUTBOX_ENOMEM;
	if (path == NULL)
		return outbox_fail(ob, OUTBOX_EMISUSE, "database path is NULL");
	if ((flags & OUTBOX_OPEN_CREATE) && (flags & OUTBOX_OPEN_EXISTING))
		return outbox_fail(ob, OUTBOX_EMISUSE, "OUTBOX_OPEN_CREATE and OUTBOX_OPEN_EXISTING "
		    "exclude each other");
	if ((flags & OUTBOX_OPEN_MIGRATE) && (flags & (OUTBOX_OPEN_CREATE | OUTBOX_OPEN_EXISTING)))
		return outbox_fail(ob, OUTBOX_EMISUSE, "OUTBOX_OPEN_MIGRATE excludes "
		    "OUTBOX_OPEN_CREATE and OUTBOX_OPEN_EXISTING");
	if (flags & OUTBOX_OPEN_CREATE)
		oflags |= SQLITE_OPEN_CREATE;
	else if (stat(path, &sb) != 0)
		return outbox_fail(ob, OUTBOX_ESQLITE, "cannot open database '%s': %s", path,
		    strerror(errno));
	rc = sqlite3_open_v2(path, &db, oflags, NULL);
	ob->db = db;
	if (rc != SQLITE_OK)
		return outbox_fail(ob, OUTBOX_ESQLITE, "cannot open database '%s': %s", path,
		    db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	rc = outbox_configure(ob, path);
	if (rc != OUTBOX_OK)
		return rc;
	rc = outbox_prepare(ob, flags);
	if (rc == OUTBOX_ESCHEMA) {
		/* Name the file: the caller may have opened several. */
		char err[sizeof ob->errmsg];
		snprintf(err, sizeof err, "%s", ob->errmsg);
		return outbox_fail(ob, rc, "'%s': %s", path, err);
	}
	if (rc != OUTBOX_OK)
		return rc;
	return outbox_open_wal(ob, path);
}

void
outbox_close(outbox *ob)
{
	if (ob == NULL)
		return;
	sqlite3_finalize(ob->insert);
	if (ob->owns_db)
		sqlite3_close(ob->db);
	free(ob);
}

/* Names and ids: 1..max bytes, no spaces or control characters. */
static int
outbox_check_token(outbox *ob, const char *what, const char *s, size_t max)
{
	size_t i, len;

	if (s == NULL)
		return outbox_fail(ob, OUTBOX_EINVAL, "%s is NULL", what);
	len = strlen(s);
	if (len == 0)
		return outbox_fail(ob, OUTBOX_EINVAL, "%s is empty", what);
	if (len > max)
		return outbox_fail(ob, OUTBOX_EINVAL, "%s is %zu bytes long; the limit is %zu",
		    what, len, max);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f)
			return outbox_fail(ob, OUTBOX_EINVAL,
			    "%s contains a space or control character (0x%02x) at byte %zu", what,
			    c, i);
	}
	return OUTBOX_OK;
}

static int
outbox_check_args(outbox *ob, const struct outbox_event *ev)
{
	int rc;

	if ((rc = outbox_check_token(ob, "name", ev->name, OUTBOX_NAME_MAX)) != OUTBOX_OK)
		return rc;
	if (ev->payload == NULL)
		return outbox_fail(ob, OUTBOX_EINVAL, "payload is NULL");
	if (ev->key != NULL && ev->key[0] == '\0')
		return outbox_fail(ob, OUTBOX_EINVAL, "key is empty (use NULL for no key)");
	if (ev->id != NULL)
		return outbox_check_token(ob, "id", ev->id, OUTBOX_ID_MAX);
	return OUTBOX_OK;
}

/* After SQLite refused some JSON: say what and where, as precisely as cJSON can. */
static int
outbox_json_error(outbox *ob, const char *what, const char *text, int want_object)
{
	const char *end = NULL;
	cJSON *v = cJSON_ParseWithOpts(text, &end, 1);

	if (v == NULL) {
		size_t at = end != NULL && end >= text ? (size_t)(end - text) : 0;
		return outbox_fail(ob, OUTBOX_EINVAL, "%s is not valid JSON (error near byte %zu)",
		    what, at);
	}
	cJSON_Delete(v);
	if (want_object)
		return outbox_fail(ob, OUTBOX_EINVAL, "%s must be a JSON object", what);
	return outbox_fail(ob, OUTBOX_EINVAL, "%s is not valid JSON", what);
}

static int
outbox_insert_error(outbox *ob, const struct outbox_event *ev, int rc)
{
	const char *msg = sqlite3_errmsg(ob->db);

	if (rc == SQLITE_CONSTRAINT_UNIQUE)
		return outbox_fail(ob, OUTBOX_EDUPLICATE, "an event with id '%s' is already in the "
		    "outbox", ob->id);
	if (rc == SQLITE_CONSTRAINT_CHECK && strstr(msg, "outbox_payload_json") != NULL)
		return outbox_json_error(ob, "payload", ev->payload, 0);
	if (rc == SQLITE_CONSTRAINT_CHECK && strstr(msg, "outbox_headers_object") != NULL)
		return outbox_json_error(ob, "headers", ev->headers, 1);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return outbox_fail(ob, OUTBOX_EINVAL, "event refused by the database: %s", msg);
	return outbox_fail(ob, OUTBOX_ESQLITE, "cannot enqueue: %s", msg);
}

int
outbox_enqueue_event(outbox *ob, const struct outbox_event *ev, const char **id_out)
{
	sqlite3_stmt *st;
	int rc;

	if (ob == NULL)
		return OUTBOX_EMISUSE;
	if (ev == NULL)
		return outbox_fail(ob, OUTBOX_EMISUSE, "event is NULL");
	if ((rc = outbox_check_args(ob, ev)) != OUTBOX_OK)
		return rc;
	if (ev->id != NULL)
		snprintf(ob->id, sizeof ob->id, "%s", ev->id);
	else if (ob->id_format == OUTBOX_ID_UUID7)
		ids_uuid7(ob->id, &ob->uuid7_last_ms, &ob->uuid7_counter);
	else
		ids_uuid4(ob->id);

	st = ob->insert;
	sqlite3_bind_text(st, 1, ob->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ev->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, ev->payload, -1, SQLITE_STATIC);
	if (ev->headers != NULL)
		sqlite3_bind_text(st, 4, ev->headers, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 4);
	if (ev->key != NULL)
		sqlite3_bind_text(st, 5, ev->key, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 5);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		rc = sqlite3_extended_errcode(ob->db);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return outbox_insert_error(ob, ev, rc);
	if (id_out != NULL)
		*id_out = ob->id;
	return outbox_ok(ob);
}

int
outbox_enqueue(outbox *ob, const char *name, const char *payload, const char **id_out)
{
	struct outbox_event ev = { .name = name, .payload = payload };

	return outbox_enqueue_event(ob, &ev, id_out);
}

int
outbox_enqueue_cjson(outbox *ob, const char *name, const struct cJSON *payload,
    const struct cJSON *headers, const char *key, const char *id, const char **id_out)
{
	struct outbox_event ev = { .name = name, .key = key, .id = id };
	char *payload_text = NULL, *headers_text = NULL;
	int rc;

	if (ob == NULL)
		return OUTBOX_EMISUSE;
	if (payload == NULL)
		return outbox_fail(ob, OUTBOX_EINVAL, "payload is NULL");
	if (headers != NULL && !cJSON_IsObject(headers))
		return outbox_fail(ob, OUTBOX_EINVAL, "headers must be a JSON object");
	payload_text = cJSON_PrintUnformatted(payload);
	if (headers != NULL)
		headers_text = cJSON_PrintUnformatted(headers);
	if (payload_text == NULL || (headers != NULL && headers_text == NULL)) {
		rc = outbox_fail(ob, OUTBOX_ENOMEM, "out of memory serialising the event");
	} else {
		ev.payload = payload_text;
		ev.headers = headers_text;
		rc = outbox_enqueue_event(ob, &ev, id_out);
	}
	cJSON_free(payload_text);
	cJSON_free(headers_text);
	return rc;
}
