/*
 * check_store.c: unit tests for the store's operations (replay, rewind, forgetting a
 * sink) and for the event filter, against the views of schema/outbox.sql.
 *
 * The filter is written twice, in SQL in the views and in C in relay/filter.c; these tests
 * run the same events through both, over patterns with *, ?, [...], [^...], prefixes, an
 * empty filter and none, and require the same answer for every event and sink.
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
#include <unistd.h>

#include <sqlite3.h>

#include "filter.h"
#include "outbox.h"
#include "store.h"
#include "util.h"

/* One directory for the run, made and removed by main(); one database per test. */
static char check_root[PATH_MAX];

static struct store *
check_store_open(const char *name, sqlite3 **db)
{
	char path[PATH_MAX + 64];
	struct store *st;
	char *cause = NULL;
	outbox *ob;

	snprintf(path, sizeof path, "%s/%s.db", check_root, name);
	ck_assert_int_eq(outbox_open(path, OUTBOX_OPEN_CREATE, &ob), OUTBOX_OK);
	*db = outbox_db(ob);
	ck_assert_msg(store_adopt(&st, ob, &cause) == 0, "store_adopt: %s", cause);
	return st;
}

static void
check_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK, "%s: %s", sql, err);
}

static int64_t
check_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s;
	int64_t v;

	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* ---- the filter, in C and in the views --------------------------------------------------- */

static const char *const check_names[] = {
	"user.login", "user.logout", "user.", "User.login", "user.Login", "order.paid",
	"cart.add", "u", "x*y", "a]b", "]x", "[x", "app.user.login", "user.login.app",
	"order.paid.v2", "ü.event",
};
#define CHECK_NNAMES (sizeof check_names / sizeof check_names[0])

static const struct check_sink {
	const char *filter;	/* NULL: every event */
	const char *prefix;
} check_sinks[] = {
	{ NULL, "" },
	{ NULL, "app." },
	{ "[]", "" },
	{ "[\"*\"]", "" },
	{ "[\"user.*\"]", "" },
	{ "[\"user.*\"]", "app." },
	{ "[\"app.user.*\"]", "app." },
	{ "[\"app.user.*\"]", "" },
	{ "[\"user.?ogin\"]", "" },
	{ "[\"user.log???\"]", "" },
	{ "[\"[uo]*\"]", "" },
	{ "[\"[^u]*\"]", "" },
	{ "[\"*.[a-m]*\"]", "" },
	{ "[\"[]]*\", \"*[*]*\"]", "" },
	{ "[\"[[]*\"]", "" },
	{ "[\"USER.*\"]", "" },
	{ "[\"user.login\", \"order.paid\"]", "" },
	{ "[\"order.paid\"]", "v2." },
	{ "[\"*.v2\"]", "" },
	{ "[\"?.event\"]", "" },
	{ "[\"[a-z].*\"]", "my." },
};
#define CHECK_NSINKS (sizeof check_sinks / sizeof check_sinks[0])

/* Sinks s0.. with the filters above, each with cursor 0, and one event per name. */
static void
check_filter_fixture(sqlite3 *db)
{
	sqlite3_stmt *s;
	size_t i;

	ck_assert_int_eq(sqlite3_prepare_v2(db, "INSERT INTO outbox_sink(name, type, filter, "
	    "prefix) VALUES (printf('s%02d', ?1), 'test', ?2, ?3)", -1, &s, NULL), SQLITE_OK);
	for (i = 0; i < CHECK_NSINKS; i++) {
		sqlite3_bind_int(s, 1, (int)i);
		sqlite3_bind_text(s, 2, check_sinks[i].filter, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, check_sinks[i].prefix, -1, SQLITE_STATIC);
		ck_assert_int_eq(sqlite3_step(s), SQLITE_DONE);
		sqlite3_reset(s);
	}
	sqlite3_finalize(s);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "INSERT INTO outbox(seq, name, payload) "
	    "VALUES (?1, ?2, '{}')", -1, &s, NULL), SQLITE_OK);
	for (i = 0; i < CHECK_NNAMES; i++) {
		sqlite3_bind_int(s, 1, (int)i + 1);
		sqlite3_bind_text(s, 2, check_names[i], -1, SQLITE_STATIC);
		ck_assert_int_eq(sqlite3_step(s), SQLITE_DONE);
		sqlite3_reset(s);
	}
	sqlite3_finalize(s);
}

/* filter_match for sink i and event j. */
static int
check_c_match(size_t i, size_t j)
{
	struct filter *f = NULL;
	char *cause = NULL, *published;
	int match;

	ck_assert_msg(filter_parse(check_sinks[i].filter, &f, &cause) == 0, "%s", cause);
	ck_assert(check_sinks[i].filter != NULL || f == NULL);
	published = xasprintf("%s%s", check_sinks[i].prefix, check_names[j]);
	match = filter_match(f, check_names[j], published);
	free(published);
	filter_free(f);
	return match;
}

/* Does a query with ?1 = sink name and ?2 = seq return a row? */
static int
check_sql_row(sqlite3 *db, const char *sql, size_t i, size_t j)
{
	sqlite3_stmt *s;
	int rc;

	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	sqlite3_bind_text(s, 1, xasprintf("s%02zu", i), -1, free);
	sqlite3_bind_int64(s, 2, (int64_t)j + 1);
	rc = sqlite3_step(s);
	ck_assert(rc == SQLITE_ROW || rc == SQLITE_DONE);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW;
}

START_TEST(test_filter_matches_the_views)
{
	sqlite3 *db;
	struct store *st = check_store_open("filter", &db);
	char *sql;
	size_t i, j;
	int c, delivery, backlog, matches = 0;

	check_filter_fixture(db);
	for (i = 0; i < CHECK_NSINKS; i++) {
		int64_t n = 0;

		for (j = 0; j < CHECK_NNAMES; j++) {
			c = check_c_match(i, j);
			delivery = check_sql_row(db, "SELECT 1 FROM outbox_delivery WHERE sink = ?1 "
			    "AND seq = ?2 AND state = 'pending'", i, j);
			ck_assert_msg(delivery || check_sql_row(db, "SELECT 1 FROM outbox_delivery "
			    "WHERE sink = ?1 AND seq = ?2 AND state = 'filtered out'", i, j),
			    "outbox_delivery: no row for s%02zu, %s", i, check_names[j]);
			backlog = check_sql_row(db, "SELECT 1 FROM outbox_backlog WHERE sink = ?1 "
			    "AND seq = ?2 AND state = 'pending'", i, j);
			ck_assert_msg(c == delivery && c == backlog, "filter %s prefix '%s', event "
			    "%s: C %d, outbox_delivery %d, outbox_backlog %d", check_sinks[i].filter,
			    check_sinks[i].prefix, check_names[j], c, delivery, backlog);
			n += c;
		}
		sql = xasprintf("SELECT pending FROM outbox_status WHERE sink = 's%02zu'", i);
		ck_assert_msg(check_int(db, sql) == n, "filter %s: outbox_status counts %lld "
		    "pending, C %lld", check_sinks[i].filter, (long long)check_int(db, sql),
		    (long long)n);
		free(sql);
		matches += (int)n;
	}
	/* Some events match and some do not, or the test proves little. */
	ck_assert_int_gt(matches, 0);
	ck_assert_int_lt(matches, (int)(CHECK_NSINKS * CHECK_NNAMES));
	store_close(st);
}
END_TEST

START_TEST(test_filter_parse)
{
	static const char *const bad[] = {
		"{}", "\"user.*\"", "[1]", "[\"a\", null]", "[", "",
	};
	struct filter *f = (struct filter *)1;
	char *cause = NULL, *want;
	size_t i;

	ck_assert_int_eq(filter_parse(NULL, &f, &cause), 0);
	ck_assert_ptr_null(f);
	ck_assert_int_eq(filter_match(NULL, "any", "app.any"), 1);
	ck_assert_int_eq(filter_parse("[]", &f, &cause), 0);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(filter_match(f, "any", "any"), 0);
	filter_free(f);
	filter_free(NULL);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(filter_parse(bad[i], &f, &cause), -1);
		ck_assert_ptr_null(f);
		want = xasprintf(i == 2 || i == 3 ? "filter %s: every pattern must be a string" :
		    "filter %s: expected a JSON array of patterns", bad[i]);
		ck_assert_str_eq(cause, want);
		free(want);
		free(cause);
		cause = NULL;
	}
}
END_TEST

/* ---- replay, rewind, forgetting a sink --------------------------------------------------- */

/* n events on sinks a (every event) and b (user.* only), both with cursor n. */
static struct store *
check_delivered(const char *name, int n, sqlite3 **db)
{
	struct store *st = check_store_open(name, db);
	char *sql = xasprintf("WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i "
	    "WHERE n < %d) INSERT INTO outbox(seq, id, name, payload, created_at) "
	    "SELECT n, 'e' || n, CASE n %% 3 WHEN 0 THEN 'order.paid' ELSE 'user.login' END, "
	    "'{}', 1000 * n FROM i;"
	    "INSERT INTO outbox_sink(name, type, cursor) VALUES ('a', 'test', %d);"
	    "INSERT INTO outbox_sink(name, type, cursor, filter) "
	    "VALUES ('b', 'test', %d, '[\"user.*\"]');", n, n, n);

	check_exec(*db, sql);
	free(sql);
	return st;
}

struct check_rows {
	int64_t n, last_seq;
	char last_sink[8];
	int ordered;
};

static void
check_each(const struct store_replay_row *row, void *arg)
{
	struct check_rows *r = arg;

	if (row->seq < r->last_seq ||
	    (row->seq == r->last_seq && strcmp(row->sink, r->last_sink) <= 0))
		r->ordered = 0;
	r->last_seq = row->seq;
	snprintf(r->last_sink, sizeof r->last_sink, "%s", row->sink);
	r->n++;
}

static const struct store_replay_select check_all = {
	.since = INT64_MIN, .until = INT64_MAX,
};

START_TEST(test_replay_pages_through_delivered_events)
{
	sqlite3 *db;
	/* 1300 events: 1300 pairs on a, 867 on b, over several pages. */
	struct store *st = check_delivered("replay", 1300, &db);
	struct check_rows r = { .ordered = 1 };
	char *cause = NULL;
	int64_t n, count;

	ck_assert_int_eq(store_replay_count(st, &check_all, &count, &cause), 0);
	ck_assert_int_eq(count, 1300 + 867);
	/* A dry run sees every pair once, in order, and writes nothing. */
	ck_assert_int_eq(store_replay(st, &check_all, 1, check_each, &r, &n, &cause), 0);
	ck_assert_int_eq(n, count);
	ck_assert_int_eq(r.n, count);
	ck_assert(r.ordered);
	ck_assert_int_eq(check_int(db, "SELECT count(*) FROM outbox_retry"), 0);
	/* The real one writes one retry row per pair, each seen once. */
	memset(&r, 0, sizeof r);
	r.ordered = 1;
	ck_assert_int_eq(store_begin(st, &cause), 0);
	ck_assert_int_eq(store_replay(st, &check_all, 0, check_each, &r, &n, &cause), 0);
	ck_assert_int_eq(store_commit(st, &cause), 0);
	ck_assert_int_eq(n, count);
	ck_assert_int_eq(r.n, count);
	ck_assert(r.ordered);
	ck_assert_int_eq(check_int(db, "SELECT count(*) FROM outbox_retry WHERE state = 'retry' "
	    "AND attempts = 0 AND next_attempt_at = 0 AND last_error IS NULL"), count);
	ck_assert_int_eq(check_int(db, "SELECT count(*) FROM outbox_delivery "
	    "WHERE state = 'retry'"), count);
	store_close(st);
}
END_TEST

START_TEST(test_replay_selectors)
{
	sqlite3 *db;
	struct store *st = check_delivered("select", 9, &db);
	struct store_replay_select sel = check_all;
	struct check_rows r = { .ordered = 1 };
	char *cause = NULL;
	int64_t n;

	check_exec(db, "INSERT INTO outbox_retry VALUES ('a', 2, 'failed', 5, 0, 'x', 0);"
	    "INSERT INTO outbox_retry VALUES ('b', 4, 'retry', 1, 99, 'y', 0);"
	    "INSERT INTO outbox(seq, id, name, payload, created_at) "
	    "VALUES (10, 'e10', 'user.login', '{}', 10000)");	/* pending on both */
	sel.name = "order.*";
	ck_assert_int_eq(store_replay_count(st, &sel, &n, &cause), 0);
	ck_assert_int_eq(n, 3);	/* 3, 6, 9 on a only */
	sel.name = NULL;
	sel.since = 4000;
	sel.until = 6000;	/* events 4 and 5 */
	ck_assert_int_eq(store_replay_count(st, &sel, &n, &cause), 0);
	ck_assert_int_eq(n, 4);
	sel.sink = "b";
	ck_assert_int_eq(store_replay_count(st, &sel, &n, &cause), 0);
	ck_assert_int_eq(n, 2);
	sel = check_all;
	sel.failed = 1;
	ck_assert_int_eq(store_replay(st, &sel, 0, check_each, &r, &n, &cause), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(r.last_seq, 2);
	ck_assert_int_eq(store_replay_count(st, &sel, &n, &cause), 0);
	ck_assert_int_eq(n, 0);
	sel = check_all;
	sel.seq = 10;	/* pending: nothing to replay */
	ck_assert_int_eq(store_replay_count(st, &sel, &n, &cause), 0);
	ck_assert_int_eq(n, 0);
	sel.seq = 4;
	ck_assert_int_eq(store_replay_count(st, &sel, &n, &cause), 0);
	ck_assert_int_eq(n, 2);
	store_close(st);
}
END_TEST

START_TEST(test_rewind)
{
	sqlite3 *db;
	struct store *st = check_delivered("rewind", 9, &db);
	char *cause = NULL;
	int64_t n;

	ck_assert_int_eq(store_rewind_count(st, NULL, 7, &n, &cause), 0);
	ck_assert_int_eq(n, 3 + 2);	/* a: 7, 8, 9; b: 7, 8 */
	ck_assert_int_eq(store_rewind_count(st, "b", 7, &n, &cause), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(check_int(db, "SELECT sum(cursor) FROM outbox_sink"), 18);
	ck_assert_int_eq(store_rewind(st, "a", 7, &n, &cause), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(check_int(db, "SELECT cursor FROM outbox_sink WHERE name = 'a'"), 6);
	/* A cursor already behind stays. */
	ck_assert_int_eq(store_rewind(st, NULL, 8, &n, &cause), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(check_int(db, "SELECT cursor FROM outbox_sink WHERE name = 'a'"), 6);
	ck_assert_int_eq(check_int(db, "SELECT cursor FROM outbox_sink WHERE name = 'b'"), 7);
	ck_assert_int_eq(check_int(db, "SELECT count(*) FROM outbox_backlog "
	    "WHERE sink = 'a' AND state = 'pending'"), 3);
	store_close(st);
}
END_TEST

START_TEST(test_sink_remove)
{
	sqlite3 *db;
	struct store *st = check_delivered("remove", 3, &db);
	char *cause = NULL;
	int64_t n;

	check_exec(db, "INSERT INTO outbox_retry VALUES ('a', 1, 'failed', 5, 0, 'x', 0);"
	    "INSERT INTO outbox_retry VALUES ('a', 2, 'retry', 1, 9, 'y', 0);"
	    "INSERT INTO outbox_retry VALUES ('b', 2, 'retry', 1, 9, 'y', 0);");
	ck_assert_int_eq(store_sink_remove(st, "a", &n, &cause), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(check_int(db, "SELECT count(*) FROM outbox_sink WHERE name = 'a'"), 0);
	ck_assert_int_eq(check_int(db, "SELECT count(*) FROM outbox_retry"), 1);
	ck_assert_int_eq(store_sink_remove(st, "nosuch", &n, &cause), 0);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(check_int(db, "SELECT count(*) FROM outbox_sink"), 1);
	store_close(st);
}
END_TEST

/* ---- reading events ------------------------------------------------------------------------ */

/* Payloads and headers as producers write them: whitespace between tokens and inside
 * strings, escapes, unicode, numbers in every form, nesting, scalars. */
static const char *const check_json[] = {
	"{}", "[]", "null", "true", "0", "-0.5e+10", "1E-7", "\"\"", "\" spaced  out \"",
	" { \"a\" : 1 , \"b\" : [ 1 , 2 , { } ] } ",
	"{\n\t\"k\":\t\"v\"\r\n}",
	"{\"q\":\"say \\\"hi\\\" \\\\ \"}",
	"{\"u\":\"\\u00e9 \\u0000 \\ud83d\\ude00\", \"raw\": \"\xc3\xa9 \xf0\x9f\x98\x80\"}",
	"{\"s\":\"\\/ \\b\\f\\n\\r\\t\"}",
	"[ \"a\\\\\" , \"b\\\\\\\"c\" ]",
	"{\"dup\":1,\"dup\":2}",
	"  [[[[ [ ] ]]]]  ",
	"{\"n\": [ 1.0, 10, 1e2, -3 , 0.000 ] }",
};

/* The store reads payload and headers compact: byte for byte what SQLite's json() makes
 * of them (which is what the relay published before it made them compact itself). */
START_TEST(test_read_compact_like_json)
{
	sqlite3 *db;
	struct store *st = check_store_open("compact", &db);
	struct store_event ev[2 * sizeof check_json / sizeof check_json[0]];
	struct arena text = ARENA_INIT;
	const size_t njson = sizeof check_json / sizeof check_json[0];
	sqlite3_stmt *ins, *ref;
	char *cause = NULL;
	size_t i;
	int n;

	ck_assert_int_eq(sqlite3_prepare_v2(db, "INSERT INTO outbox(name, payload, headers) "
	    "VALUES ('t', ?1, CASE WHEN json_type(?1) = 'object' THEN ?1 END)", -1, &ins, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT json(?1)", -1, &ref, NULL), SQLITE_OK);
	for (i = 0; i < njson; i++) {
		sqlite3_bind_text(ins, 1, check_json[i], -1, SQLITE_STATIC);
		ck_assert_msg(sqlite3_step(ins) == SQLITE_DONE, "%s: %s", check_json[i],
		    sqlite3_errmsg(db));
		sqlite3_reset(ins);
	}
	ck_assert_int_eq(store_read_new(st, 0, (int)njson + 5, ev, &n, &text, &cause), 0);
	ck_assert_int_eq(n, (int)njson);
	for (i = 0; i < njson; i++) {
		sqlite3_bind_text(ref, 1, check_json[i], -1, SQLITE_STATIC);
		ck_assert_int_eq(sqlite3_step(ref), SQLITE_ROW);
		ck_assert_str_eq(ev[i].payload, (const char *)sqlite3_column_text(ref, 0));
		if (ev[i].payload[0] == '{')
			ck_assert_str_eq(ev[i].headers, ev[i].payload);
		else
			ck_assert_ptr_null(ev[i].headers);
		ck_assert_str_eq(ev[i].name, "t");
		ck_assert_int_eq(ev[i].seq, (int64_t)i + 1);
		sqlite3_reset(ref);
	}
	/* A second read into the same arena, after a reset, starts where it is asked to. */
	arena_reset(&text);
	ck_assert_int_eq(store_read_new(st, (int64_t)njson - 1, 5, ev, &n, &text, &cause), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(ev[0].seq, (int64_t)njson);
	sqlite3_finalize(ins);
	sqlite3_finalize(ref);
	arena_free(&text);
	store_close(st);
}
END_TEST

/* A store on name.db with the checkpoint thread and a sink "s" at *cursor, and a
 * producer's connection to it that runs no checkpoint of its own. */
static struct store *
check_checkpoint_store(const char *name, sqlite3 **producer, int64_t *cursor)
{
	char path[PATH_MAX + 64];
	sqlite3 *db;
	struct store *st = check_store_open(name, &db);
	char *cause = NULL;

	snprintf(path, sizeof path, "%s/%s.db", check_root, name);
	ck_assert_msg(store_take_checkpoints(st, &cause) == 0, "%s", cause);
	*cursor = 0;
	ck_assert_msg(store_sink_register(st, "s", "stdout", NULL, "", 0, cursor, &cause) == 0,
	    "%s", cause);
	ck_assert_int_eq(sqlite3_open(path, producer), SQLITE_OK);
	sqlite3_busy_timeout(*producer, 5000);
	check_exec(*producer, "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0");
	return st;
}

/* The relay's checkpoints (store_take_checkpoints, relay/checkpoint.c): a producer that
 * runs no checkpoint of its own commits thousands of times between the relay's commits,
 * and the WAL file still ends up bounded, without the relay's connection checkpointing
 * (its autocheckpoint is off). Without the thread the file would hold every frame. */
START_TEST(test_checkpoints_bound_the_wal)
{
	char wal[PATH_MAX + 72];
	sqlite3 *producer;
	int64_t cursor;
	struct store *st = check_checkpoint_store("ckpt", &producer, &cursor);
	char *cause = NULL;
	struct stat sb;
	int i, moved, tries;

	snprintf(wal, sizeof wal, "%s/ckpt.db-wal", check_root);
	for (i = 0; i < 3000; i++) {
		check_exec(producer, "INSERT INTO outbox(name, payload) VALUES ('t', '{}')");
		if (i % 20 == 19) {
			ck_assert_int_eq(store_record(st, "s", cursor, cursor + 20, NULL, 0, 1, &moved,
			    &cause), 0);
			cursor += 20;
		}
	}
	/* 3000 commits of 2 or 3 frames: some 30 MB without checkpoints. The thread works
	 * on its own time: let the relay commit until it has caught up. */
	for (tries = 0; tries < 1000; tries++) {
		ck_assert_int_eq(stat(wal, &sb), 0);
		if (sb.st_size <= 2000 * 4096 + 2000 * 24 + 32)
			break;
		check_exec(producer, "INSERT INTO outbox(name, payload) VALUES ('t', '{}')");
		ck_assert_int_eq(store_record(st, "s", cursor, cursor + 1, NULL, 0, 1, &moved,
		    &cause), 0);
		cursor++;
		usleep(10000);
	}
	ck_assert_msg(sb.st_size <= 2000 * 4096 + 2000 * 24 + 32, "WAL of %lld bytes",
	    (long long)sb.st_size);
	sqlite3_close(producer);
	store_close(st);
}
END_TEST

/* A producer's WAL hook: the longest WAL its commits left. */
static int
check_wal_pages(void *arg, sqlite3 *db, const char *name, int pages)
{
	int *longest = arg;

	(void)db;
	(void)name;
	if (pages > *longest)
		*longest = pages;
	return SQLITE_OK;
}

/* Once the relay has reported a long WAL and the thread has reset it, the thread watches
 * the WAL's length by itself for a while: a relay that commits seldom (short of CPU)
 * behind producers that commit without pause must not let the WAL grow in between. Here
 * the relay commits once, then a producer commits 3000 times (some 7,000 frames). */
START_TEST(test_checkpoints_keep_up_between_reports)
{
	sqlite3 *producer;
	int64_t cursor;
	struct store *st = check_checkpoint_store("watch", &producer, &cursor);
	char *cause = NULL;
	int i, moved, longest = 0;

	sqlite3_wal_hook(producer, check_wal_pages, &longest);
	while (longest < 600)
		check_exec(producer, "INSERT INTO outbox(name, payload) VALUES ('t', '{}')");
	ck_assert_int_eq(store_record(st, "s", cursor, cursor + 1, NULL, 0, 1, &moved, &cause), 0);
	/* The reset: a commit finds a short WAL again. */
	for (i = 0; i < 5000 && longest >= 600; i++) {
		longest = 0;
		check_exec(producer, "INSERT INTO outbox(name, payload) VALUES ('t', '{}')");
		usleep(1000);
	}
	ck_assert_msg(longest < 600, "no reset after the relay's report: %d frames", longest);
	longest = 0;
	for (i = 0; i < 3000; i++) {
		check_exec(producer, "INSERT INTO outbox(name, payload) VALUES ('t', '{}')");
		usleep(100);
	}
	/* The threshold is 500 frames, polled every 2 ms: 2000 leaves room for a slow machine. */
	ck_assert_msg(longest < 2000, "the WAL reached %d frames", longest);
	sqlite3_close(producer);
	store_close(st);
}
END_TEST

static Suite *
check_store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("filter");

	tcase_add_test(tc, test_filter_matches_the_views);
	tcase_add_test(tc, test_filter_parse);
	suite_add_tcase(s, tc);
	tc = tcase_create("operations");
	tcase_add_test(tc, test_replay_pages_through_delivered_events);
	tcase_add_test(tc, test_replay_selectors);
	tcase_add_test(tc, test_rewind);
	tcase_add_test(tc, test_sink_remove);
	tcase_add_test(tc, test_read_compact_like_json);
	tcase_add_test(tc, test_checkpoints_bound_the_wal);
	tcase_add_test(tc, test_checkpoints_keep_up_between_reports);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

static int
check_unlink(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
main(void)
{
	const char *tmp = getenv("TMPDIR");
	SRunner *sr;
	int failed;

	snprintf(check_root, sizeof check_root, "%s/check_store-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(check_root) == NULL) {
		perror("check_store: mkdtemp");
		return 1;
	}
	sr = srunner_create(check_store_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	nftw(check_root, check_unlink, 16, FTW_DEPTH | FTW_PHYS);
	return failed == 0 ? 0 : 1;
}
