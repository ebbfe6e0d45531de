/*
 * check_outbox.c: unit tests for liboutbox (client/outbox.c, schema.c, ids.c) and for the
 * schema's own defaults, CHECKs and views, each on a fresh database in a private mkdtemp
 * directory.
 *
 * Every refused input asserts three things: the exact return code, the exact message of
 * outbox_errmsg(), and that no row was written. The schema is also driven with plain SQL,
 * as a producer in another language would, and through the real sqlite3 shell.
 */
#include "config.h"

#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "ids.h"
#include "outbox.h"

#define CHECK_IDS 10000

/*
 * One directory for the run, made and removed by main() (a failing test ends its forked
 * child before any teardown), and one fresh subdirectory in it per test.
 */
static char check_root[PATH_MAX];
static char check_dir[PATH_MAX + 32];
static char check_db[PATH_MAX + 48];

static void
check_setup(void)
{
	snprintf(check_dir, sizeof check_dir, "%s/t-XXXXXX", check_root);
	ck_assert_ptr_nonnull(mkdtemp(check_dir));
	snprintf(check_db, sizeof check_db, "%s/app.db", check_dir);
}

static int
check_remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
check_remove_tree(const char *path)
{
	nftw(path, check_remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void
check_teardown(void)
{
	check_remove_tree(check_dir);
}

static outbox *
check_open(void)
{
	outbox *ob = NULL;
	int rc;

	rc = outbox_open(check_db, OUTBOX_OPEN_CREATE, &ob);
	ck_assert_msg(rc == OUTBOX_OK, "outbox_open: %d %s", rc, outbox_errmsg(ob));
	return ob;
}

static sqlite3 *
check_sqlite(void)
{
	sqlite3 *db = NULL;

	ck_assert_int_eq(sqlite3_open(check_db, &db), SQLITE_OK);
	return db;
}

static void
check_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	int rc;

	rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, msg != NULL ? msg : "?");
	sqlite3_free(msg);
}

/* The first column of the first row as an integer; -1 when there is no row. */
static int64_t
check_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
	    sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The first column of the first row as malloc'd text; NULL for no row or NULL. */
static char *
check_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	char *v = NULL;

	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
	    sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		v = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

static int64_t
check_rows(outbox *ob)
{
	return check_int(outbox_db(ob), "SELECT count(*) FROM outbox");
}

static void
check_text_eq(sqlite3 *db, const char *sql, const char *want)
{
	char *got = check_text(db, sql);

	if (want == NULL)
		ck_assert_msg(got == NULL, "%s: expected NULL, got '%s'", sql, got);
	else
		ck_assert_msg(got != NULL && strcmp(got, want) == 0, "%s: expected '%s', got '%s'",
		    sql, want, got != NULL ? got : "(null)");
	free(got);
}

static int64_t
check_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
check_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

/* Lower-case 8-4-4-4-12 with the given version nibble and the RFC 9562 variant (8-b). */
static int
check_is_uuid(const char *s, char version)
{
	if (s == NULL || strlen(s) != IDS_UUID_LEN)
		return 0;
	if (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')
		return 0;
	if (!check_hex(s, 8) || !check_hex(s + 9, 4) || !check_hex(s + 14, 4) ||
	    !check_hex(s + 19, 4) || !check_hex(s + 24, 12))
		return 0;
	return s[14] == version && strchr("89ab", s[19]) != NULL;
}

static int
check_strcmp(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* Is path an executable found on PATH? */
static int
check_which(const char *name)
{
	char *path, *dir, *save = NULL, file[PATH_MAX];
	int found = 0;

	if ((path = getenv("PATH")) == NULL || (path = strdup(path)) == NULL)
		return 0;
	for (dir = strtok_r(path, ":", &save); dir != NULL && !found;
	    dir = strtok_r(NULL, ":", &save)) {
		snprintf(file, sizeof file, "%s/%s", *dir != '\0' ? dir : ".", name);
		found = access(file, X_OK) == 0;
	}
	free(path);
	return found;
}

/* ---- enqueue: every path ---------------------------------------------------------------- */

START_TEST(test_enqueue_simple)
{
	outbox *ob = check_open();
	const char *id = NULL;
	char *sql;

	ck_assert_int_eq(outbox_enqueue(ob, "user.login", "{\"user\":{\"_id\":\"42\"}}", &id),
	    OUTBOX_OK);
	ck_assert_str_eq(outbox_errmsg(ob), "");
	ck_assert_msg(check_is_uuid(id, '4'), "not a UUID v4: %s", id);
	ck_assert_int_eq(check_rows(ob), 1);
	sql = sqlite3_mprintf("SELECT name || '|' || payload || '|' || quote(headers) || '|' || "
	    "quote(key) || '|' || seq FROM outbox WHERE id = %Q", id);
	check_text_eq(outbox_db(ob), sql, "user.login|{\"user\":{\"_id\":\"42\"}}|NULL|NULL|1");
	sqlite3_free(sql);

	/* id_out may be NULL; any JSON value is a payload. */
	ck_assert_int_eq(outbox_enqueue(ob, "a", "42", NULL), OUTBOX_OK);
	ck_assert_int_eq(outbox_enqueue(ob, "a", "\"text\"", NULL), OUTBOX_OK);
	ck_assert_int_eq(outbox_enqueue(ob, "a", "null", NULL), OUTBOX_OK);
	ck_assert_int_eq(outbox_enqueue(ob, "a", " [1, {\"b\": true}] ", NULL), OUTBOX_OK);
	ck_assert_int_eq(check_rows(ob), 5);
	outbox_close(ob);
}
END_TEST

START_TEST(test_enqueue_event_fields)
{
	outbox *ob = check_open();
	struct outbox_event ev = {
		.name = "order.paid", .payload = "{\"order\":7}",
		.headers = "{\"trace\":\"abc\",\"n\":1}", .key = "order-7",
		.id = "my-own-id.0001",
	};
	char name[OUTBOX_NAME_MAX + 1], id[OUTBOX_ID_MAX + 1];
	const char *got = NULL;

	ck_assert_int_eq(outbox_enqueue_event(ob, &ev, &got), OUTBOX_OK);
	ck_assert_str_eq(got, "my-own-id.0001");
	check_text_eq(outbox_db(ob), "SELECT id || '|' || name || '|' || payload || '|' || "
	    "headers || '|' || key FROM outbox",
	    "my-own-id.0001|order.paid|{\"order\":7}|{\"trace\":\"abc\",\"n\":1}|order-7");

	/* The longest name and id, and non-ASCII bytes, are fine. */
	memset(name, 'n', OUTBOX_NAME_MAX);
	name[OUTBOX_NAME_MAX] = '\0';
	memset(id, 'i', OUTBOX_ID_MAX);
	id[OUTBOX_ID_MAX] = '\0';
	ev = (struct outbox_event){ .name = name, .payload = "{}", .id = id };
	ck_assert_int_eq(outbox_enqueue_event(ob, &ev, &got), OUTBOX_OK);
	ck_assert_str_eq(got, id);
	ck_assert_int_eq(outbox_enqueue(ob, "caf\xc3\xa9.ouvert", "{\"\xc3\xa9\":1}", NULL),
	    OUTBOX_OK);

	/* A generated id with headers and key but no id. */
	ev = (struct outbox_event){ .name = "x", .payload = "{}", .headers = "{}", .key = "k" };
	ck_assert_int_eq(outbox_enqueue_event(ob, &ev, &got), OUTBOX_OK);
	ck_assert(check_is_uuid(got, '4'));
	ck_assert_int_eq(check_rows(ob), 4);
	outbox_close(ob);
}
END_TEST

START_TEST(test_enqueue_cjson)
{
	outbox *ob = check_open();
	cJSON *payload, *headers;
	const char *id = NULL;

	payload = cJSON_Parse("{ \"a\" : 1, \"b\" : [ true, null ], \"c\" : \"\\u00e9\" }");
	headers = cJSON_CreateObject();
	cJSON_AddStringToObject(headers, "source", "check");
	ck_assert_ptr_nonnull(payload);

	ck_assert_int_eq(outbox_enqueue_cjson(ob, "c.json", payload, headers, "k1", "cj-1", &id),
	    OUTBOX_OK);
	ck_assert_str_eq(id, "cj-1");
	check_text_eq(outbox_db(ob), "SELECT payload || '|' || headers || '|' || key FROM outbox "
	    "WHERE id = 'cj-1'", "{\"a\":1,\"b\":[true,null],\"c\":\"\xc3\xa9\"}|"
	    "{\"source\":\"check\"}|k1");

	/* Without headers, key or id. */
	ck_assert_int_eq(outbox_enqueue_cjson(ob, "c.json", payload, NULL, NULL, NULL, &id),
	    OUTBOX_OK);
	ck_assert(check_is_uuid(id, '4'));
	check_text_eq(outbox_db(ob), "SELECT quote(headers) || quote(key) FROM outbox "
	    "WHERE seq = 2", "NULLNULL");

	/* Refusals. */
	ck_assert_int_eq(outbox_enqueue_cjson(ob, "c.json", NULL, NULL, NULL, NULL, &id),
	    OUTBOX_EINVAL);
	ck_assert_str_eq(outbox_errmsg(ob), "payload is NULL");
	ck_assert_int_eq(outbox_enqueue_cjson(ob, "c.json", payload, payload->child->next, NULL,
	    NULL, &id), OUTBOX_EINVAL);
	ck_assert_str_eq(outbox_errmsg(ob), "headers must be a JSON object");
	ck_assert_int_eq(outbox_enqueue_cjson(ob, "c json", payload, NULL, NULL, NULL, &id),
	    OUTBOX_EINVAL);
	ck_assert_str_eq(outbox_errmsg(ob),
	    "name contains a space or control character (0x20) at byte 1");
	ck_assert_int_eq(outbox_enqueue_cjson(ob, "c.json", payload, NULL, "", NULL, &id),
	    OUTBOX_EINVAL);
	ck_assert_str_eq(outbox_errmsg(ob), "key is empty (use NULL for no key)");
	ck_assert_int_eq(outbox_enqueue_cjson(ob, "c.json", payload, NULL, NULL, "cj-1", &id),
	    OUTBOX_EDUPLICATE);
	ck_assert_str_eq(outbox_errmsg(ob), "an event with id 'cj-1' is already in the outbox");
	ck_assert_int_eq(outbox_enqueue_cjson(NULL, "c.json", payload, NULL, NULL, NULL, &id),
	    OUTBOX_EMISUSE);
	ck_assert_int_eq(check_rows(ob), 2);

	cJSON_Delete(payload);
	cJSON_Delete(headers);
	outbox_close(ob);
}
END_TEST

/* ---- enqueue: bad input ----------------------------------------------------------------- */

static const struct check_bad {
	struct outbox_event ev;
	int rc;
	const char *msg;
} check_bads[] = {
	{ { .name = NULL, .payload = "{}" }, OUTBOX_EINVAL, "name is NULL" },
	{ { .name = "", .payload = "{}" }, OUTBOX_EINVAL, "name is empty" },
	{ { .name = "user login", .payload = "{}" }, OUTBOX_EINVAL,
	  "name contains a space or control character (0x20) at byte 4" },
	{ { .name = "user\tlogin", .payload = "{}" }, OUTBOX_EINVAL,
	  "name contains a space or control character (0x09) at byte 4" },
	{ { .name = "\nuser", .payload = "{}" }, OUTBOX_EINVAL,
	  "name contains a space or control character (0x0a) at byte 0" },
	{ { .name = "user.\x7f", .payload = "{}" }, OUTBOX_EINVAL,
	  "name contains a space or control character (0x7f) at byte 5" },
	{ { .name = "user.login ", .payload = "{}" }, OUTBOX_EINVAL,
	  "name contains a space or control character (0x20) at byte 10" },
	{ { .name = "a", .payload = NULL }, OUTBOX_EINVAL, "payload is NULL" },
	{ { .name = "a", .payload = "" }, OUTBOX_EINVAL,
	  "payload is not valid JSON (error near byte 0)" },
	{ { .name = "a", .payload = "[1,]" }, OUTBOX_EINVAL,
	  "payload is not valid JSON (error near byte 3)" },
	{ { .name = "a", .payload = "{\"a\":x}" }, OUTBOX_EINVAL,
	  "payload is not valid JSON (error near byte 5)" },
	{ { .name = "a", .payload = "{\"a\":1} x" }, OUTBOX_EINVAL,
	  "payload is not valid JSON (error near byte 8)" },
	{ { .name = "a", .payload = "{\"user\":{\"_id\":42}" }, OUTBOX_EINVAL,
	  "payload is not valid JSON (error near byte 18)" },
	{ { .name = "a", .payload = "nul" }, OUTBOX_EINVAL,
	  "payload is not valid JSON (error near byte 0)" },
	{ { .name = "a", .payload = "{\"a\":\"\\q\"}" }, OUTBOX_EINVAL,
	  "payload is not valid JSON (error near byte 6)" },
	{ { .name = "a", .payload = "{}", .headers = "[1]" }, OUTBOX_EINVAL,
	  "headers must be a JSON object" },
	{ { .name = "a", .payload = "{}", .headers = "\"h\"" }, OUTBOX_EINVAL,
	  "headers must be a JSON object" },
	{ { .name = "a", .payload = "{}", .headers = "null" }, OUTBOX_EINVAL,
	  "headers must be a JSON object" },
	{ { .name = "a", .payload = "{}", .headers = "{\"a\":" }, OUTBOX_EINVAL,
	  "headers is not valid JSON (error near byte 5)" },
	{ { .name = "a", .payload = "{}", .headers = "" }, OUTBOX_EINVAL,
	  "headers is not valid JSON (error near byte 0)" },
	{ { .name = "a", .payload = "{}", .key = "" }, OUTBOX_EINVAL,
	  "key is empty (use NULL for no key)" },
	{ { .name = "a", .payload = "{}", .id = "" }, OUTBOX_EINVAL, "id is empty" },
	{ { .name = "a", .payload = "{}", .id = "my id" }, OUTBOX_EINVAL,
	  "id contains a space or control character (0x20) at byte 2" },
	{ { .name = "a", .payload = "{}", .id = "id\x01" }, OUTBOX_EINVAL,
	  "id contains a space or control character (0x01) at byte 2" },
	/* Name checked before payload, payload before headers. */
	{ { .name = "", .payload = "{", .headers = "[" }, OUTBOX_EINVAL, "name is empty" },
	{ { .name = "a", .payload = "{", .headers = "[" }, OUTBOX_EINVAL,
	  "payload is not valid JSON (error near byte 1)" },
};

START_TEST(test_enqueue_bad)
{
	const struct check_bad *b = &check_bads[_i];
	outbox *ob = check_open();
	const char *id = "untouched";

	ck_assert_int_eq(outbox_enqueue(ob, "ok", "{}", NULL), OUTBOX_OK);
	ck_assert_int_eq(outbox_enqueue_event(ob, &b->ev, &id), b->rc);
	ck_assert_str_eq(outbox_errmsg(ob), b->msg);
	ck_assert_str_eq(id, "untouched");
	ck_assert_int_eq(check_rows(ob), 1);

	/* The same through the shorthand when it applies. */
	if (b->ev.headers == NULL && b->ev.key == NULL && b->ev.id == NULL) {
		ck_assert_int_eq(outbox_enqueue(ob, b->ev.name, b->ev.payload, &id), b->rc);
		ck_assert_str_eq(outbox_errmsg(ob), b->msg);
		ck_assert_int_eq(check_rows(ob), 1);
	}

	/* The handle works after a refusal and the message clears. */
	ck_assert_int_eq(outbox_enqueue(ob, "ok", "{}", NULL), OUTBOX_OK);
	ck_assert_str_eq(outbox_errmsg(ob), "");
	ck_assert_int_eq(check_rows(ob), 2);
	outbox_close(ob);
}
END_TEST

START_TEST(test_enqueue_oversized)
{
	outbox *ob = check_open();
	char big[OUTBOX_NAME_MAX + 2];
	struct outbox_event ev = { .name = "a", .payload = "{}", .id = big };

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	ck_assert_int_eq(outbox_enqueue(ob, big, "{}", NULL), OUTBOX_EINVAL);
	ck_assert_str_eq(outbox_errmsg(ob), "name is 256 bytes long; the limit is 255");
	ck_assert_int_eq(outbox_enqueue_event(ob, &ev, NULL), OUTBOX_EINVAL);
	ck_assert_str_eq(outbox_errmsg(ob), "id is 256 bytes long; the limit is 255");
	ck_assert_int_eq(check_rows(ob), 0);
	outbox_close(ob);
}
END_TEST

START_TEST(test_enqueue_duplicate)
{
	outbox *ob = check_open();
	struct outbox_event ev = { .name = "a", .payload = "{\"n\":1}", .id = "evt-1" };
	const char *id;

	ck_assert_int_eq(outbox_enqueue_event(ob, &ev, &id), OUTBOX_OK);
	ev.payload = "{\"n\":2}";
	ev.name = "b";
	ck_assert_int_eq(outbox_enqueue_event(ob, &ev, &id), OUTBOX_EDUPLICATE);
	ck_assert_str_eq(outbox_errmsg(ob), "an event with id 'evt-1' is already in the outbox");
	ck_assert_int_eq(check_rows(ob), 1);
	check_text_eq(outbox_db(ob), "SELECT name || payload FROM outbox", "a{\"n\":1}");

	/* Inside a transaction too, which stays open. */
	check_exec(outbox_db(ob), "BEGIN");
	ck_assert_int_eq(outbox_enqueue_event(ob, &ev, &id), OUTBOX_EDUPLICATE);
	ck_assert_int_eq(sqlite3_get_autocommit(outbox_db(ob)), 0);
	check_exec(outbox_db(ob), "COMMIT");
	ck_assert_int_eq(check_rows(ob), 1);
	outbox_close(ob);
}
END_TEST

START_TEST(test_misuse)
{
	outbox *ob = check_open();
	const char *id;

	ck_assert_int_eq(outbox_enqueue(NULL, "a", "{}", &id), OUTBOX_EMISUSE);
	ck_assert_int_eq(outbox_enqueue_event(NULL, NULL, &id), OUTBOX_EMISUSE);
	ck_assert_int_eq(outbox_enqueue_event(ob, NULL, &id), OUTBOX_EMISUSE);
	ck_assert_str_eq(outbox_errmsg(ob), "event is NULL");
	ck_assert_int_eq(outbox_set_id_format(NULL, OUTBOX_ID_UUID7), OUTBOX_EMISUSE);
	ck_assert_int_eq(outbox_set_id_format(ob, (enum outbox_id_format)7), OUTBOX_EINVAL);
	ck_assert_str_eq(outbox_errmsg(ob), "unknown id format 7");
	ck_assert_int_eq(outbox_open(check_db, 0, NULL), OUTBOX_EMISUSE);
	ck_assert_int_eq(outbox_attach(outbox_db(ob), NULL), OUTBOX_EMISUSE);
	ck_assert_ptr_null(outbox_db(NULL));
	ck_assert_str_eq(outbox_errmsg(NULL), "no outbox handle (out of memory?)");
	outbox_close(NULL);
	ck_assert_int_eq(check_rows(ob), 0);
	outbox_close(ob);

	ob = (outbox *)&ob;
	ck_assert_int_eq(outbox_attach(NULL, &ob), OUTBOX_EMISUSE);
	ck_assert_ptr_null(ob);
	ck_assert_int_eq(outbox_open(NULL, OUTBOX_OPEN_CREATE, &ob), OUTBOX_EMISUSE);
	ck_assert_str_eq(outbox_errmsg(ob), "database path is NULL");
	outbox_close(ob);
}
END_TEST

START_TEST(test_errstr_version)
{
	ck_assert_str_eq(outbox_errstr(OUTBOX_OK), "success");
	ck_assert_str_eq(outbox_errstr(OUTBOX_EINVAL), "invalid argument");
	ck_assert_str_eq(outbox_errstr(OUTBOX_EDUPLICATE), "duplicate event id");
	ck_assert_str_eq(outbox_errstr(OUTBOX_ESQLITE), "database error");
	ck_assert_str_eq(outbox_errstr(OUTBOX_ESCHEMA), "not a compatible outbox database");
	ck_assert_str_eq(outbox_errstr(OUTBOX_ENOMEM), "out of memory");
	ck_assert_str_eq(outbox_errstr(OUTBOX_EMISUSE), "library misuse");
	ck_assert_str_eq(outbox_errstr(-99), "unknown error");
	ck_assert_str_eq(outbox_version(), PACKAGE_VERSION);
}
END_TEST

/* ---- transactions ----------------------------------------------------------------------- */

START_TEST(test_commit_and_rollback)
{
	outbox *ob = check_open();
	sqlite3 *db = outbox_db(ob);
	const char *id;

	check_exec(db, "BEGIN");
	ck_assert_int_eq(outbox_enqueue(ob, "kept", "{}", &id), OUTBOX_OK);
	ck_assert_int_eq(sqlite3_get_autocommit(db), 0);
	check_exec(db, "COMMIT");

	check_exec(db, "BEGIN IMMEDIATE");
	ck_assert_int_eq(outbox_enqueue(ob, "dropped", "{}", &id), OUTBOX_OK);
	ck_assert_int_eq(check_rows(ob), 2);
	check_exec(db, "ROLLBACK");

	ck_assert_int_eq(check_rows(ob), 1);
	check_text_eq(db, "SELECT group_concat(name) FROM outbox", "kept");
	outbox_close(ob);

	/* Seen committed from another connection. */
	db = check_sqlite();
	check_text_eq(db, "SELECT group_concat(name) FROM outbox", "kept");
	sqlite3_close(db);
}
END_TEST

START_TEST(test_failure_keeps_transaction)
{
	outbox *ob = check_open();
	sqlite3 *db = outbox_db(ob);
	struct outbox_event bad_headers = { .name = "a", .payload = "{}", .headers = "[]" };

	check_exec(db, "CREATE TABLE users(name TEXT)");
	check_exec(db, "BEGIN");
	check_exec(db, "INSERT INTO users VALUES ('ann')");
	ck_assert_int_eq(outbox_enqueue(ob, "user.created", "{\"name\":\"ann\"}", NULL),
	    OUTBOX_OK);
	/* Refused by the CHECK constraints (statement rollback) and by the argument checks. */
	ck_assert_int_eq(outbox_enqueue(ob, "user.created", "{\"name\":", NULL), OUTBOX_EINVAL);
	ck_assert_int_eq(sqlite3_get_autocommit(db), 0);
	ck_assert_int_eq(outbox_enqueue_event(ob, &bad_headers, NULL), OUTBOX_EINVAL);
	ck_assert_int_eq(outbox_enqueue(ob, "", "{}", NULL), OUTBOX_EINVAL);
	ck_assert_int_eq(sqlite3_get_autocommit(db), 0);
	ck_assert_int_eq(check_int(db, "SELECT count(*) FROM users"), 1);
	ck_assert_int_eq(check_rows(ob), 1);
	check_exec(db, "INSERT INTO users VALUES ('bob')");
	check_exec(db, "COMMIT");

	ck_assert_int_eq(check_int(db, "SELECT count(*) FROM users"), 2);
	ck_assert_int_eq(check_rows(ob), 1);
	outbox_close(ob);
}
END_TEST

/* ---- ids -------------------------------------------------------------------------------- */

START_TEST(test_ids_uuid4)
{
	outbox *ob = check_open();
	char (*ids)[IDS_UUID_LEN + 1] = calloc(CHECK_IDS, sizeof *ids);
	const char *id;
	int i;

	ck_assert_ptr_nonnull(ids);
	check_exec(outbox_db(ob), "BEGIN");
	for (i = 0; i < CHECK_IDS; i++) {
		ck_assert_int_eq(outbox_enqueue(ob, "a", "{}", &id), OUTBOX_OK);
		ck_assert_msg(check_is_uuid(id, '4'), "not a lower-case UUID v4: %s", id);
		memcpy(ids[i], id, sizeof ids[i]);
	}
	check_exec(outbox_db(ob), "COMMIT");
	qsort(ids, CHECK_IDS, sizeof ids[0], check_strcmp);
	for (i = 1; i < CHECK_IDS; i++)
		ck_assert_msg(strcmp(ids[i - 1], ids[i]) != 0, "duplicate id %s", ids[i]);
	/* The variant nibble takes all four values. */
	for (i = 0; i < 4; i++) {
		char *sql = sqlite3_mprintf("SELECT count(*) FROM outbox WHERE substr(id, 20, 1) = "
		    "'%c'", "89ab"[i]);
		ck_assert_int_gt(check_int(outbox_db(ob), sql), 0);
		sqlite3_free(sql);
	}
	free(ids);
	outbox_close(ob);
}
END_TEST

/* The 48-bit unix-ms timestamp at the front of a UUID v7. */
static int64_t
check_uuid7_ms(const char *id)
{
	char hex[13];

	memcpy(hex, id, 8);
	memcpy(hex + 8, id + 9, 4);
	hex[12] = '\0';
	return strtoll(hex, NULL, 16);
}

START_TEST(test_ids_uuid7)
{
	outbox *ob = check_open();
	char prev[IDS_UUID_LEN + 1] = "";
	const char *id;
	int64_t before, after;
	int i;

	ck_assert_int_eq(outbox_set_id_format(ob, OUTBOX_ID_UUID7), OUTBOX_OK);
	before = check_now_ms();
	check_exec(outbox_db(ob), "BEGIN");
	for (i = 0; i < CHECK_IDS; i++) {
		ck_assert_int_eq(outbox_enqueue(ob, "a", "{}", &id), OUTBOX_OK);
		ck_assert_msg(check_is_uuid(id, '7'), "not a lower-case UUID v7: %s", id);
		ck_assert_msg(strcmp(prev, id) < 0, "%s after %s", id, prev);
		memcpy(prev, id, sizeof prev);
	}
	check_exec(outbox_db(ob), "COMMIT");
	after = check_now_ms();
	ck_assert_int_ge(check_uuid7_ms(prev), before);
	/* Counter overflow may borrow a few milliseconds from the future, not more. */
	ck_assert_int_le(check_uuid7_ms(prev), after + 100);
	/* seq order and id order agree. */
	ck_assert_int_eq(check_int(outbox_db(ob), "SELECT count(*) FROM outbox a JOIN outbox b "
	    "ON b.seq = a.seq + 1 WHERE b.id <= a.id"), 0);

	/* Back to v4. */
	ck_assert_int_eq(outbox_set_id_format(ob, OUTBOX_ID_UUID4), OUTBOX_OK);
	ck_assert_int_eq(outbox_enqueue(ob, "a", "{}", &id), OUTBOX_OK);
	ck_assert(check_is_uuid(id, '4'));
	outbox_close(ob);
}
END_TEST

/* ids.c directly: a full counter borrows the next millisecond; a clock going back waits. */
START_TEST(test_ids_uuid7_counter)
{
	uint64_t future = (uint64_t)check_now_ms() + 60000, last_ms = future;
	uint16_t counter = 0x0ffe;
	char a[IDS_UUID_LEN + 1], b[IDS_UUID_LEN + 1], c[IDS_UUID_LEN + 1];

	ids_uuid7(a, &last_ms, &counter);
	ck_assert(check_is_uuid(a, '7'));
	ck_assert_int_eq(counter, 0x0fff);
	ck_assert_int_eq(last_ms, future);
	ck_assert_int_eq(check_uuid7_ms(a), (int64_t)future);
	ck_assert(strncmp(a + 14, "7fff", 4) == 0);

	ids_uuid7(b, &last_ms, &counter);
	ck_assert(check_is_uuid(b, '7'));
	ck_assert_int_eq(last_ms, future + 1);
	ck_assert_int_le(counter, 0x7f);
	ck_assert_int_eq(check_uuid7_ms(b), (int64_t)future + 1);
	ck_assert(strcmp(a, b) < 0);

	ids_uuid7(c, &last_ms, &counter);
	ck_assert(strcmp(b, c) < 0);

	ids_uuid4(a);
	ck_assert(check_is_uuid(a, '4'));
}
END_TEST

/* ---- opening and migrating -------------------------------------------------------------- */

START_TEST(test_migrate_empty_file)
{
	outbox *ob;
	sqlite3 *db;
	FILE *f;

	/* A zero-length file is an empty database. */
	ck_assert_ptr_nonnull(f = fopen(check_db, "w"));
	fclose(f);
	ck_assert_int_eq(outbox_open(check_db, 0, &ob), OUTBOX_OK);
	ck_assert_int_eq(check_int(outbox_db(ob), "PRAGMA user_version"), OUTBOX_SCHEMA_VERSION);
	check_text_eq(outbox_db(ob), "PRAGMA journal_mode", "wal");
	ck_assert_int_eq(check_int(outbox_db(ob), "PRAGMA synchronous"), 1);
	ck_assert_int_eq(check_int(outbox_db(ob), "SELECT count(*) FROM sqlite_schema WHERE "
	    "name IN ('outbox', 'outbox_sink', 'outbox_retry', 'outbox_status', "
	    "'outbox_backlog', 'outbox_failed', 'outbox_delivery')"), 7);
	outbox_close(ob);

	/* Re-opening is idempotent and keeps the events. */
	ob = check_open();
	ck_assert_int_eq(outbox_enqueue(ob, "a", "{}", NULL), OUTBOX_OK);
	outbox_close(ob);
	ob = check_open();
	ck_assert_int_eq(check_int(outbox_db(ob), "PRAGMA user_version"), OUTBOX_SCHEMA_VERSION);
	ck_assert_int_eq(check_rows(ob), 1);
	outbox_close(ob);

	db = check_sqlite();
	ck_assert_int_eq(check_int(db, "SELECT count(*) FROM sqlite_schema WHERE "
	    "name = 'outbox'"), 1);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_open_missing_without_create)
{
	outbox *ob = NULL;
	char want[PATH_MAX + 100];
	struct stat sb;

	ck_assert_int_eq(outbox_open(check_db, 0, &ob), OUTBOX_ESQLITE);
	snprintf(want, sizeof want, "cannot open database '%s': No such file or directory",
	    check_db);
	ck_assert_str_eq(outbox_errmsg(ob), want);
	outbox_close(ob);
	ck_assert_int_ne(stat(check_db, &sb), 0);
	ck_assert_int_eq(rmdir(check_dir), 0); /* nothing else was created either */
	ck_assert_int_eq(mkdir(check_dir, 0700), 0);
}
END_TEST

START_TEST(test_refuse_newer)
{
	outbox *ob = check_open();
	char want[PATH_MAX + 200];
	sqlite3 *db;

	outbox_close(ob);
	db = check_sqlite();
	check_exec(db, "PRAGMA user_version = 3");
	sqlite3_close(db);

	ck_assert_int_eq(outbox_open(check_db, OUTBOX_OPEN_CREATE, &ob), OUTBOX_ESCHEMA);
	snprintf(want, sizeof want, "'%s': database schema version 3 is newer than this outboxd "
	    "understands (2): upgrade outboxd", check_db);
	ck_assert_str_eq(outbox_errmsg(ob), want);
	outbox_close(ob);

	/* Through attach: the same words without the path; the handle is still returned. */
	db = check_sqlite();
	ck_assert_int_eq(outbox_attach(db, &ob), OUTBOX_ESCHEMA);
	ck_assert_str_eq(outbox_errmsg(ob), "database schema version 3 is newer than this "
	    "outboxd understands (2): upgrade outboxd");
	outbox_close(ob);
	ck_assert_int_eq(check_int(db, "PRAGMA user_version"), 3);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}
END_TEST

START_TEST(test_refuse_foreign_outbox)
{
	static const char cols[] = "SELECT group_concat(name, ',') FROM pragma_table_info('outbox')";
	char want[PATH_MAX + 200];
	outbox *ob;
	sqlite3 *db = check_sqlite();

	check_exec(db, "CREATE TABLE outbox(msg TEXT, sent INTEGER);"
	    "INSERT INTO outbox VALUES ('hello', 0)");
	sqlite3_close(db);

	ck_assert_int_eq(outbox_open(check_db, OUTBOX_OPEN_CREATE, &ob), OUTBOX_ESCHEMA);
	snprintf(want, sizeof want, "'%s': the database has a table named 'outbox' that is not "
	    "an outbox schema (user_version 0): refusing to alter it", check_db);
	ck_assert_str_eq(outbox_errmsg(ob), want);
	outbox_close(ob);

	db = check_sqlite();
	check_text_eq(db, cols, "msg,sent");
	ck_assert_int_eq(check_int(db, "SELECT count(*) FROM outbox"), 1);
	ck_assert_int_eq(check_int(db, "PRAGMA user_version"), 0);
	ck_assert_int_eq(check_int(db, "SELECT count(*) FROM sqlite_schema WHERE name LIKE "
	    "'outbox_%'"), 0);
	/* Not even switched to WAL, which would persist. */
	check_text_eq(db, "PRAGMA journal_mode", "delete");

	/* user_version says outbox but there is no outbox table. */
	check_exec(db, "DROP TABLE outbox; PRAGMA user_version = 1");
	sqlite3_close(db);
	ck_assert_int_eq(outbox_open(check_db, 0, &ob), OUTBOX_ESCHEMA);
	snprintf(want, sizeof want, "'%s': the database has user_version 1 but no outbox table: "
	    "it is not an outbox database", check_db);
	ck_assert_str_eq(outbox_errmsg(ob), want);
	outbox_close(ob);
}
END_TEST

START_TEST(test_refuse_not_sqlite)
{
	static const char junk[] = "this is a text file, certainly not an SQLite database, "
	    "but long enough to have a header of sorts.\n";
	char want[PATH_MAX + 100], buf[sizeof junk];
	outbox *ob;
	FILE *f;

	ck_assert_ptr_nonnull(f = fopen(check_db, "w"));
	for (int i = 0; i < 50; i++)
		fputs(junk, f);
	fclose(f);

	ck_assert_int_eq(outbox_open(check_db, OUTBOX_OPEN_CREATE, &ob), OUTBOX_ESCHEMA);
	snprintf(want, sizeof want, "'%s' is not an SQLite database", check_db);
	ck_assert_str_eq(outbox_errmsg(ob), want);
	outbox_close(ob);

	/* Untouched. */
	ck_assert_ptr_nonnull(f = fopen(check_db, "r"));
	ck_assert_uint_eq(fread(buf, 1, sizeof junk - 1, f), sizeof junk - 1);
	buf[sizeof junk - 1] = '\0';
	ck_assert_str_eq(buf, junk);
	fclose(f);
}
END_TEST

/* The flags that never create the schema: inspection tools' and the relay's. */
static const struct {
	int flags;
	const char *misuse; /* with OUTBOX_OPEN_CREATE */
} check_nocreate[] = {
	{ OUTBOX_OPEN_EXISTING, "OUTBOX_OPEN_CREATE and OUTBOX_OPEN_EXISTING exclude each other" },
	{ OUTBOX_OPEN_MIGRATE, "OUTBOX_OPEN_MIGRATE excludes OUTBOX_OPEN_CREATE and "
	    "OUTBOX_OPEN_EXISTING" },
};

START_TEST(test_open_never_creates_schema)
{
	const int flags = check_nocreate[_i].flags;
	char want[PATH_MAX + 200];
	sqlite3 *db = check_sqlite();
	outbox *ob;

	/* An application's database without the outbox schema (a mistyped path): refused,
	 * left as it was, not given the outbox tables. */
	check_exec(db, "CREATE TABLE users(id INTEGER PRIMARY KEY)");
	ck_assert_int_eq(outbox_open(check_db, flags, &ob), OUTBOX_ESCHEMA);
	snprintf(want, sizeof want, "'%s': no outbox schema in this database (create it with: "
	    "outboxctl -d DB init)", check_db);
	ck_assert_str_eq(outbox_errmsg(ob), want);
	outbox_close(ob);
	ck_assert_int_eq(check_int(db, "SELECT count(*) FROM sqlite_schema"), 1);
	ck_assert_int_eq(check_int(db, "PRAGMA user_version"), 0);
	check_text_eq(db, "PRAGMA journal_mode", "delete");

	/* Creating and not creating at once makes no sense. */
	ck_assert_int_eq(outbox_open(check_db, OUTBOX_OPEN_CREATE | flags, &ob), OUTBOX_EMISUSE);
	ck_assert_str_eq(outbox_errmsg(ob), check_nocreate[_i].misuse);
	outbox_close(ob);
	ck_assert_int_eq(outbox_open(check_db, OUTBOX_OPEN_EXISTING | OUTBOX_OPEN_MIGRATE, &ob),
	    OUTBOX_EMISUSE);
	outbox_close(ob);

	/* Once the schema exists, the same open works and can enqueue. */
	outbox_close(check_open());
	ck_assert_int_eq(outbox_open(check_db, flags, &ob), OUTBOX_OK);
	ck_assert_int_eq(outbox_enqueue(ob, "user.login", "{}", NULL), OUTBOX_OK);
	outbox_close(ob);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_attach)
{
	sqlite3 *db = check_sqlite();
	outbox *ob;
	const char *id;

	/* Creating the schema cannot join an open transaction. */
	check_exec(db, "BEGIN");
	ck_assert_int_eq(outbox_attach(db, &ob), OUTBOX_ESCHEMA);
	ck_assert_str_eq(outbox_errmsg(ob), "the outbox schema needs creating or migrating, "
	    "which cannot happen inside an open transaction");
	outbox_close(ob);
	check_exec(db, "ROLLBACK");

	ck_assert_int_eq(outbox_attach(db, &ob), OUTBOX_OK);
	ck_assert_ptr_eq(outbox_db(ob), db);
	check_exec(db, "CREATE TABLE orders(id INTEGER PRIMARY KEY, total INTEGER)");
	check_exec(db, "BEGIN; INSERT INTO orders VALUES (1, 100)");
	ck_assert_int_eq(outbox_enqueue(ob, "order.created", "{\"id\":1}", &id), OUTBOX_OK);
	check_exec(db, "COMMIT");
	ck_assert_int_eq(check_rows(ob), 1);
	outbox_close(ob);

	/* The connection is still the caller's, open and usable, with nothing left on it. */
	ck_assert_int_eq(check_int(db, "SELECT count(*) FROM outbox"), 1);
	ck_assert_ptr_null(sqlite3_next_stmt(db, NULL));

	/* Attaching again to a migrated database inside a transaction is fine. */
	check_exec(db, "BEGIN");
	ck_assert_int_eq(outbox_attach(db, &ob), OUTBOX_OK);
	ck_assert_int_eq(outbox_enqueue(ob, "order.paid", "{\"id\":1}", NULL), OUTBOX_OK);
	check_exec(db, "ROLLBACK");
	ck_assert_int_eq(check_rows(ob), 1);
	outbox_close(ob);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}
END_TEST

/* ---- the schema with plain SQL ---------------------------------------------------------- */

START_TEST(test_plain_sql_insert)
{
	outbox *ob = check_open();
	sqlite3 *db = check_sqlite();
	int64_t before, after, created;
	char *id, *msg = NULL;
	int rc;

	outbox_close(ob);
	before = check_now_ms();
	check_exec(db, "INSERT INTO outbox(name, payload) VALUES ('user.login', "
	    "'{\"user\":{\"_id\":\"42\"}}')");
	after = check_now_ms();
	id = check_text(db, "SELECT id FROM outbox");
	ck_assert_msg(check_is_uuid(id, '4'), "default id is not a UUID v4: %s", id);
	free(id);
	created = check_int(db, "SELECT created_at FROM outbox");
	ck_assert_int_ge(created, before - 1);
	ck_assert_int_le(created, after + 1);
	check_text_eq(db, "SELECT typeof(created_at) FROM outbox", "integer");

	/* The default id takes every variant and never repeats. */
	check_exec(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
	    "WHERE i < 2000) INSERT INTO outbox(name, payload) SELECT 'bulk', '{}' FROM n");
	ck_assert_int_eq(check_int(db, "SELECT count(DISTINCT substr(id, 20, 1)) FROM outbox "
	    "WHERE substr(id, 20, 1) IN ('8', '9', 'a', 'b')"), 4);
	ck_assert_int_eq(check_int(db, "SELECT count(*) FROM outbox WHERE id NOT GLOB "
	    "'[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-"
	    "[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-4[0-9a-f][0-9a-f][0-9a-f]-"
	    "[89ab][0-9a-f][0-9a-f][0-9a-f]-*' OR length(id) != 36"), 0);

	/* The CHECKs refuse what the library refuses. */
	rc = sqlite3_exec(db, "INSERT INTO outbox(name, payload) VALUES ('a', '{nope')", NULL,
	    NULL, &msg);
	ck_assert_int_eq(rc, SQLITE_CONSTRAINT);
	ck_assert_str_eq(msg, "CHECK constraint failed: outbox_payload_json");
	sqlite3_free(msg);
	rc = sqlite3_exec(db, "INSERT INTO outbox(name, payload, headers) VALUES ('a', '{}', "
	    "'[]')", NULL, NULL, &msg);
	ck_assert_int_eq(rc, SQLITE_CONSTRAINT);
	ck_assert_str_eq(msg, "CHECK constraint failed: outbox_headers_object");
	sqlite3_free(msg);
	rc = sqlite3_exec(db, "INSERT INTO outbox(name, payload) VALUES ('a b', '{}')", NULL,
	    NULL, &msg);
	ck_assert_int_eq(rc, SQLITE_CONSTRAINT);
	ck_assert_str_eq(msg, "CHECK constraint failed: outbox_name_valid");
	sqlite3_free(msg);
	rc = sqlite3_exec(db, "INSERT INTO outbox(name, payload) VALUES ('', '{}')", NULL, NULL,
	    &msg);
	ck_assert_int_eq(rc, SQLITE_CONSTRAINT);
	sqlite3_free(msg);
	ck_assert_int_eq(check_int(db, "SELECT count(*) FROM outbox"), 2001);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_views)
{
	outbox *ob = check_open();
	sqlite3 *db = outbox_db(ob);
	const char *id;
	char *sql, *got;

	ck_assert_int_eq(outbox_enqueue(ob, "user.login", "{}", &id), OUTBOX_OK);
	ck_assert_int_eq(check_int(db, "SELECT count(*) FROM outbox_backlog"), 0);
	ck_assert_int_eq(check_int(db, "SELECT count(*) FROM outbox_status"), 0);

	check_exec(db, "INSERT INTO outbox_sink(name, type) VALUES ('redis', 'redis')");
	sql = sqlite3_mprintf("SELECT sink || '|' || seq || '|' || name || '|' || state || '|' "
	    "|| attempts || '|' || quote(next_attempt) || '|' || quote(last_error) FROM "
	    "outbox_backlog WHERE id = %Q", id);
	check_text_eq(db, sql, "redis|1|user.login|pending|0|NULL|NULL");
	sqlite3_free(sql);
	got = check_text(db, "SELECT created FROM outbox_backlog");
	ck_assert_msg(got != NULL && strlen(got) == 24 && got[10] == 'T' && got[23] == 'Z',
	    "created is not ISO 8601 UTC: %s", got);
	free(got);
	check_text_eq(db, "SELECT sink || '|' || cursor || '|' || pending || '|' || retrying || "
	    "'|' || failed || '|' || quote(last_progress) FROM outbox_status",
	    "redis|0|1|0|0|NULL");
	ck_assert_int_ge(check_int(db, "SELECT oldest_age_s >= 0 AND oldest_age_s < 60 FROM "
	    "outbox_status"), 1);

	/* A filtered sink sees only what passes its filter. */
	check_exec(db, "INSERT INTO outbox_sink(name, type, filter) VALUES ('orders', 'stdout', "
	    "'[\"order.*\"]')");
	ck_assert_int_eq(outbox_enqueue(ob, "order.paid", "{}", NULL), OUTBOX_OK);
	check_text_eq(db, "SELECT group_concat(sink || '=' || pending, ' ') FROM "
	    "(SELECT * FROM outbox_status ORDER BY sink)", "orders=1 redis=2");

	/* Past the cursor, a failed event shows as failed. */
	check_exec(db, "UPDATE outbox_sink SET cursor = 2, progress_at = 0 WHERE name = 'redis';"
	    "INSERT INTO outbox_retry(sink, seq, state, attempts, next_attempt_at, last_error, "
	    "updated_at) VALUES ('redis', 1, 'failed', 5, 0, 'ERR too big', 0)");
	check_text_eq(db, "SELECT pending || '|' || retrying || '|' || failed || '|' || "
	    "last_progress FROM outbox_status WHERE sink = 'redis'",
	    "0|0|1|1970-01-01T00:00:00.000Z");
	check_text_eq(db, "SELECT state || '|' || last_error FROM outbox_backlog WHERE "
	    "sink = 'redis'", "failed|ERR too big");
	check_text_eq(db, "SELECT sink || '|' || seq || '|' || attempts FROM outbox_failed",
	    "redis|1|5");
	outbox_close(ob);
}
END_TEST

/* The schema file and the library agree through the real sqlite3 shell. */
START_TEST(test_sqlite3_shell)
{
	const char *srcdir = getenv("OUTBOX_SRCDIR");
	char cmd[2 * PATH_MAX + 100];
	outbox *ob;
	sqlite3 *db;
	int status;

	if (srcdir == NULL || *srcdir == '\0')
		srcdir = "..";
	/* The schema file on its own makes a database the library accepts as is. */
	snprintf(cmd, sizeof cmd, "sqlite3 -bail '%s' < '%s/schema/outbox.sql'", check_db, srcdir);
	status = system(cmd);
	ck_assert_msg(status == 0, "%s: status %d", cmd, status);

	/* A producer pipes plain SQL through the shell. */
	snprintf(cmd, sizeof cmd, "sqlite3 -bail '%s'", check_db);
	{
		FILE *p = popen(cmd, "w");
		ck_assert_ptr_nonnull(p);
		fputs("BEGIN;\n"
		    "INSERT INTO outbox(name, payload, key) VALUES ('user.login', "
		    "'{\"user\":{\"_id\":\"42\"}}', 'u42');\n"
		    "INSERT INTO outbox(id, name, payload, headers) VALUES ('shell-1', 'user.logout', "
		    "'[]', '{\"via\":\"sqlite3\"}');\n"
		    "COMMIT;\n", p);
		status = pclose(p);
		ck_assert_msg(status == 0, "sqlite3 status %d", status);
	}
	/* And its CHECKs refuse bad JSON there too, writing nothing. */
	snprintf(cmd, sizeof cmd, "echo \"INSERT INTO outbox(name, payload) VALUES ('a', '{');\" "
	    "| sqlite3 -bail '%s' 2>/dev/null", check_db);
	ck_assert_int_ne(system(cmd), 0);

	ck_assert_int_eq(outbox_open(check_db, 0, &ob), OUTBOX_OK);
	db = outbox_db(ob);
	ck_assert_int_eq(check_int(db, "PRAGMA user_version"), OUTBOX_SCHEMA_VERSION);
	check_text_eq(db, "SELECT group_concat(name || ':' || coalesce(key, '-'), ' ') FROM "
	    "(SELECT * FROM outbox ORDER BY seq)", "user.login:u42 user.logout:-");
	ck_assert_int_eq(outbox_enqueue(ob, "lib", "{}", NULL), OUTBOX_OK);
	ck_assert_int_eq(check_int(db, "SELECT max(seq) FROM outbox"), 3);
	outbox_close(ob);

	/* What the library wrote, the shell reads. */
	snprintf(cmd, sizeof cmd, "test \"$(sqlite3 '%s' \"SELECT name FROM outbox WHERE seq = 3\")\" "
	    "= lib", check_db);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- the suite -------------------------------------------------------------------------- */

static TCase *
check_tcase(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, check_setup, check_teardown);
	tcase_set_timeout(tc, 60);
	return tc;
}

static Suite *
check_outbox_suite(void)
{
	Suite *s = suite_create("outbox");
	TCase *tc;

	tc = check_tcase("enqueue");
	tcase_add_test(tc, test_enqueue_simple);
	tcase_add_test(tc, test_enqueue_event_fields);
	tcase_add_test(tc, test_enqueue_cjson);
	tcase_add_loop_test(tc, test_enqueue_bad, 0, sizeof check_bads / sizeof check_bads[0]);
	tcase_add_test(tc, test_enqueue_oversized);
	tcase_add_test(tc, test_enqueue_duplicate);
	tcase_add_test(tc, test_misuse);
	tcase_add_test(tc, test_errstr_version);
	suite_add_tcase(s, tc);

	tc = check_tcase("transactions");
	tcase_add_test(tc, test_commit_and_rollback);
	tcase_add_test(tc, test_failure_keeps_transaction);
	suite_add_tcase(s, tc);

	tc = check_tcase("ids");
	tcase_add_test(tc, test_ids_uuid4);
	tcase_add_test(tc, test_ids_uuid7);
	tcase_add_test(tc, test_ids_uuid7_counter);
	suite_add_tcase(s, tc);

	tc = check_tcase("schema");
	tcase_add_test(tc, test_migrate_empty_file);
	tcase_add_test(tc, test_open_missing_without_create);
	tcase_add_test(tc, test_refuse_newer);
	tcase_add_test(tc, test_refuse_foreign_outbox);
	tcase_add_test(tc, test_refuse_not_sqlite);
	tcase_add_loop_test(tc, test_open_never_creates_schema, 0,
	    (int)(sizeof check_nocreate / sizeof check_nocreate[0]));
	tcase_add_test(tc, test_attach);
	tcase_add_test(tc, test_plain_sql_insert);
	tcase_add_test(tc, test_views);
	if (check_which("sqlite3"))
		tcase_add_test(tc, test_sqlite3_shell);
	else
		printf("# sqlite3 not found on PATH: skipping test_sqlite3_shell\n");
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	const char *tmp = getenv("TMPDIR");

	snprintf(check_root, sizeof check_root, "%s/check_outbox-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(check_root) == NULL) {
		perror("check_outbox: mkdtemp");
		return 1;
	}
	sr = srunner_create(check_outbox_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	check_remove_tree(check_root);
	return failed == 0 ? 0 : 1;
}
