/*
 * fuzz_outbox.c: libFuzzer target for liboutbox's enqueue validation (client/outbox.c).
 *
 * The input is up to five NUL-separated fields: name, payload, headers, key, id; a
 * missing field is NULL. Each is enqueued with outbox_enqueue_event into an in-memory
 * outbox database, opened once, inside a transaction of the caller's, as an application
 * does. The database holds one event with the id "fuzz-existing-id", so that supplying
 * that id exercises the duplicate path.
 *
 * Checks: an accepted event is in the table, once, with exactly the fields given (and the
 * id returned, the caller's if given), and satisfies the documented rules on name and key;
 * a refused one is OUTBOX_EINVAL or OUTBOX_EDUPLICATE with a message, wrote nothing, and
 * left the caller's transaction open. A name, key and id that follow the rules are never
 * what gets an event refused.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "outbox.h"
#include "fuzz.h"

#define FUZZ_FIELDS 5
#define FUZZ_EXISTING_ID "fuzz-existing-id"

static outbox *fuzz_ob;
static sqlite3 *fuzz_db;
static sqlite3_stmt *fuzz_count, *fuzz_row, *fuzz_delete;

static void
fuzz_exec(const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(fuzz_db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "fuzz_outbox: %s: %s\n", sql, msg);
		abort();
	}
}

static sqlite3_stmt *
fuzz_prepare(const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(fuzz_db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "fuzz_outbox: %s: %s\n", sql, sqlite3_errmsg(fuzz_db));
		abort();
	}
	return st;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct outbox_event ev = { .name = "fuzz.seed", .payload = "{}", .id = FUZZ_EXISTING_ID };
	int rc;

	if ((rc = outbox_open(":memory:", OUTBOX_OPEN_CREATE, &fuzz_ob)) != OUTBOX_OK ||
	    (rc = outbox_enqueue_event(fuzz_ob, &ev, NULL)) != OUTBOX_OK) {
		fprintf(stderr, "fuzz_outbox: %s\n", outbox_errmsg(fuzz_ob));
		exit(1);
	}
	fuzz_db = outbox_db(fuzz_ob);
	fuzz_count = fuzz_prepare("SELECT count(*) FROM outbox");
	fuzz_row = fuzz_prepare("SELECT name, payload, headers, key, count(*) OVER () "
	    "FROM outbox WHERE id = ?1");
	fuzz_delete = fuzz_prepare("DELETE FROM outbox WHERE id = ?1");
	return 0;
}

static int64_t
fuzz_rows(void)
{
	int64_t n;

	FUZZ_CHECK(sqlite3_step(fuzz_count) == SQLITE_ROW, "%s", sqlite3_errmsg(fuzz_db));
	n = sqlite3_column_int64(fuzz_count, 0);
	sqlite3_reset(fuzz_count);
	return n;
}

/* Column i of fuzz_row holds exactly s (NULL for NULL). */
static int
fuzz_column_is(int i, const char *s)
{
	const unsigned char *v = sqlite3_column_text(fuzz_row, i);

	if (s == NULL)
		return sqlite3_column_type(fuzz_row, i) == SQLITE_NULL;
	return sqlite3_column_type(fuzz_row, i) == SQLITE_TEXT &&
	    (size_t)sqlite3_column_bytes(fuzz_row, i) == strlen(s) &&
	    memcmp(v, s, strlen(s)) == 0;
}

/* 1..max bytes, no spaces or control characters: outbox.h's rule for names and ids. */
static int
fuzz_token_ok(const char *s, size_t max)
{
	size_t i, len;

	if (s == NULL || (len = strlen(s)) == 0 || len > max)
		return 0;
	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] == 0x7f)
			return 0;
	}
	return 1;
}

static void
fuzz_accepted(const struct outbox_event *ev, const char *id, int64_t before)
{
	FUZZ_CHECK(fuzz_token_ok(ev->name, OUTBOX_NAME_MAX), "name '%s' accepted", ev->name);
	FUZZ_CHECK(ev->payload != NULL, "NULL payload accepted");
	FUZZ_CHECK(ev->key == NULL || ev->key[0] != '\0', "empty key accepted");
	FUZZ_CHECK(id != NULL && fuzz_token_ok(id, OUTBOX_ID_MAX), "id '%s'", id ? id : "NULL");
	FUZZ_CHECK(ev->id == NULL || strcmp(ev->id, id) == 0, "id '%s' given, '%s' returned",
	    ev->id, id);
	FUZZ_CHECK(fuzz_rows() == before + 1, "accepted, but %lld rows (were %lld)",
	    (long long)fuzz_rows(), (long long)before);

	sqlite3_bind_text(fuzz_row, 1, id, -1, SQLITE_TRANSIENT);
	FUZZ_CHECK(sqlite3_step(fuzz_row) == SQLITE_ROW, "event '%s' accepted, not in the table",
	    id);
	FUZZ_CHECK(sqlite3_column_int64(fuzz_row, 4) == 1, "id '%s' twice", id);
	FUZZ_CHECK(fuzz_column_is(0, ev->name) && fuzz_column_is(1, ev->payload) &&
	    fuzz_column_is(2, ev->headers) && fuzz_column_is(3, ev->key),
	    "event '%s' stored differently", id);
	sqlite3_reset(fuzz_row);
	sqlite3_clear_bindings(fuzz_row);

	sqlite3_bind_text(fuzz_delete, 1, id, -1, SQLITE_TRANSIENT);
	FUZZ_CHECK(sqlite3_step(fuzz_delete) == SQLITE_DONE, "%s", sqlite3_errmsg(fuzz_db));
	sqlite3_reset(fuzz_delete);
	sqlite3_clear_bindings(fuzz_delete);
}

static void
fuzz_refused(const struct outbox_event *ev, int rc, int64_t before)
{
	const char *msg = outbox_errmsg(fuzz_ob);

	FUZZ_CHECK(rc == OUTBOX_EINVAL || rc == OUTBOX_EDUPLICATE, "%d: %s", rc, msg);
	FUZZ_CHECK(msg[0] != '\0', "no message for %d", rc);
	FUZZ_CHECK(fuzz_rows() == before, "refused (%s), but wrote", msg);
	FUZZ_CHECK(!sqlite3_get_autocommit(fuzz_db), "refused (%s) and ended the transaction",
	    msg);
	if (rc == OUTBOX_EDUPLICATE)
		FUZZ_CHECK(ev->id != NULL && strcmp(ev->id, FUZZ_EXISTING_ID) == 0, "%s", msg);
	/* With a valid name, key and id, only the JSON can be wrong. */
	if (rc == OUTBOX_EINVAL && fuzz_token_ok(ev->name, OUTBOX_NAME_MAX) &&
	    ev->payload != NULL && (ev->key == NULL || ev->key[0] != '\0') &&
	    (ev->id == NULL || fuzz_token_ok(ev->id, OUTBOX_ID_MAX)))
		FUZZ_CHECK(strncmp(msg, "payload ", 8) == 0 || strncmp(msg, "headers ", 8) == 0,
		    "refused: %s", msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outbox_event ev;
	char *buf, *field[FUZZ_FIELDS];
	const char *id = NULL;
	int64_t before;
	size_t n;
	int rc;

	if ((buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	n = fuzz_split(buf, size, field, FUZZ_FIELDS);
	ev.name = n > 0 ? field[0] : NULL;
	ev.payload = n > 1 ? field[1] : NULL;
	ev.headers = n > 2 ? field[2] : NULL;
	ev.key = n > 3 ? field[3] : NULL;
	ev.id = n > 4 ? field[4] : NULL;

	fuzz_exec("BEGIN");
	before = fuzz_rows();
	rc = outbox_enqueue_event(fuzz_ob, &ev, &id);
	if (rc == OUTBOX_OK)
		fuzz_accepted(&ev, id, before);
	else
		fuzz_refused(&ev, rc, before);
	fuzz_exec("COMMIT");
	free(buf);
	return 0;
}
