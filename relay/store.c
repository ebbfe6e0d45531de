/*
 * store.c: every statement the relay runs against the outbox database, and every write
 * outboxctl makes to the delivery state (replay, rewind, forgetting a sink, purge).
 *
 * Statements are prepared once and reused. Writes are short IMMEDIATE transactions: one
 * per published batch, whatever its size, because delivery is recorded by moving the
 * sink's cursor (one row) plus one row per event that failed.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "checkpoint.h"
#include "outbox.h"
#include "store.h"
#include "util.h"

enum {
	STORE_SINK_UPSERT,
	STORE_SINK_CURSOR,
	STORE_READ_NEW,
	STORE_READ_DUE,
	STORE_NEXT_DUE,
	STORE_KEY_WAITING,
	STORE_SET_CURSOR,
	STORE_RETRY_UPSERT,
	STORE_RETRY_DELETE,
	STORE_PURGE,
	STORE_PURGE_COUNT,
	STORE_REPLAY_PAGE,
	STORE_REPLAY_FAILED_PAGE,
	STORE_REPLAY_COUNT,
	STORE_REPLAY_FAILED_COUNT,
	STORE_REPLAY_RETRY,
	STORE_REWIND,
	STORE_REWIND_COUNT,
	STORE_SINK_FORGET_RETRY,
	STORE_SINK_FORGET,
	STORE_MAX_SEQ,
	STORE_RETRYING,
	STORE_OLDEST_WAITING,
	STORE_BEGIN,
	STORE_COMMIT,
	STORE_ROLLBACK,
	STORE_NSTMT
};

/* Event o is old enough (created before ?1), every sink has handed it off, and no sink
 * holds it in retry: retention may delete it. */
#define STORE_PURGEABLE \
	"o.seq <= (SELECT min(cursor) FROM outbox_sink) AND o.created_at < ?1 " \
	"AND NOT EXISTS (SELECT 1 FROM outbox_retry r WHERE r.seq = o.seq)"

#define STORE_ISO8601(ms) "strftime('%Y-%m-%dT%H:%M:%fZ', " ms " / 1000.0, 'unixepoch')"

/* A replay's selection (struct store_replay_select) over the rows of the view outbox_delivery
 * or outbox_failed (which has the same columns but state), from (seq, sink) > (?6, ?7). */
#define STORE_REPLAY_WHERE \
	"(?1 IS NULL OR sink = ?1) AND (?2 IS NULL OR seq = ?2) " \
	"AND (?3 IS NULL OR name GLOB ?3) " \
	"AND (?4 IS NULL OR created >= " STORE_ISO8601("?4") ") " \
	"AND (?5 IS NULL OR created < " STORE_ISO8601("?5") ") AND (seq, sink) > (?6, ?7)"
#define STORE_REPLAY_DELIVERY \
	"FROM outbox_delivery WHERE state IN ('retry', 'failed', 'delivered') AND " \
	STORE_REPLAY_WHERE
#define STORE_REPLAY_FAILED "FROM outbox_failed WHERE " STORE_REPLAY_WHERE
#define STORE_REPLAY_ORDER " ORDER BY seq, sink LIMIT ?8"

static const char *const store_sql[STORE_NSTMT] = {
	[STORE_SINK_UPSERT] =
	    "INSERT INTO outbox_sink(name, type, filter, prefix, cursor) VALUES (?1, ?2, ?3, ?4, "
	    "CASE WHEN ?5 THEN (SELECT coalesce(max(seq), 0) FROM outbox) ELSE 0 END) "
	    "ON CONFLICT(name) DO UPDATE SET type = ?2, filter = ?3, prefix = ?4",
	[STORE_SINK_CURSOR] =
	    "SELECT cursor FROM outbox_sink WHERE name = ?1",
	/* Payload and headers are made compact as they are read (store_read_events). */
	[STORE_READ_NEW] =
	    "SELECT seq, id, name, payload, headers, key, created_at, 0 "
	    "FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
	[STORE_READ_DUE] =
	    "SELECT o.seq, o.id, o.name, o.payload, o.headers, o.key, o.created_at, "
	    "r.attempts FROM outbox_retry r JOIN outbox o ON o.seq = r.seq "
	    "WHERE r.sink = ?1 AND r.state = 'retry' AND r.next_attempt_at <= ?2 "
	    "AND (o.key IS NULL OR NOT EXISTS (SELECT 1 FROM outbox_retry r2 "
	    "  JOIN outbox o2 ON o2.seq = r2.seq WHERE r2.sink = r.sink AND r2.state = 'retry' "
	    "  AND r2.seq < r.seq AND o2.key = o.key)) "
	    "ORDER BY r.seq LIMIT ?3",
	[STORE_NEXT_DUE] =
	    "SELECT min(next_attempt_at) FROM outbox_retry WHERE sink = ?1 AND state = 'retry'",
	[STORE_KEY_WAITING] =
	    "SELECT r.seq FROM outbox_retry r JOIN outbox o ON o.seq = r.seq "
	    "WHERE r.sink = ?1 AND r.state = 'retry' AND o.key = ?2 ORDER BY r.seq LIMIT 1",
	[STORE_SET_CURSOR] =
	    "UPDATE outbox_sink SET cursor = ?2, progress_at = ?3 WHERE name = ?1 AND cursor = ?4",
	[STORE_RETRY_UPSERT] =
	    "INSERT INTO outbox_retry(sink, seq, state, attempts, next_attempt_at, last_error, "
	    "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(sink, seq) DO UPDATE "
	    "SET state = ?3, attempts = ?4, next_attempt_at = ?5, last_error = ?6, updated_at = ?7",
	[STORE_RETRY_DELETE] =
	    "DELETE FROM outbox_retry WHERE sink = ?1 AND seq = ?2",
	[STORE_PURGE] =
	    "DELETE FROM outbox WHERE seq IN (SELECT o.seq FROM outbox o "
	    "WHERE " STORE_PURGEABLE " ORDER BY o.seq LIMIT ?2)",
	[STORE_PURGE_COUNT] =
	    "SELECT count(*) FROM outbox o WHERE " STORE_PURGEABLE,
	[STORE_REPLAY_PAGE] =
	    "SELECT sink, seq, id, name, state " STORE_REPLAY_DELIVERY STORE_REPLAY_ORDER,
	[STORE_REPLAY_FAILED_PAGE] =
	    "SELECT sink, seq, id, name, 'failed' " STORE_REPLAY_FAILED STORE_REPLAY_ORDER,
	[STORE_REPLAY_COUNT] = "SELECT count(*) " STORE_REPLAY_DELIVERY,
	[STORE_REPLAY_FAILED_COUNT] = "SELECT count(*) " STORE_REPLAY_FAILED,
	[STORE_REPLAY_RETRY] =
	    "INSERT INTO outbox_retry(sink, seq, state, attempts, next_attempt_at, last_error, "
	    "updated_at) VALUES (?1, ?2, 'retry', 0, 0, NULL, ?3) ON CONFLICT(sink, seq) DO "
	    "UPDATE SET state = 'retry', attempts = 0, next_attempt_at = 0, last_error = NULL, "
	    "updated_at = ?3",
	[STORE_REWIND] =
	    "UPDATE outbox_sink SET cursor = ?2 - 1 WHERE (?1 IS NULL OR name = ?1) "
	    "AND cursor > ?2 - 1",
	[STORE_REWIND_COUNT] =
	    "SELECT count(*) FROM outbox_delivery WHERE (?1 IS NULL OR sink = ?1) AND seq >= ?2 "
	    "AND state IN ('retry', 'failed', 'delivered')",
	[STORE_SINK_FORGET_RETRY] = "DELETE FROM outbox_retry WHERE sink = ?1",
	[STORE_SINK_FORGET] = "DELETE FROM outbox_sink WHERE name = ?1",
	/* For the metrics: each is a seek or a range of one index, never a table scan. */
	[STORE_MAX_SEQ] = "SELECT max(seq) FROM outbox",
	[STORE_RETRYING] =
	    "SELECT count(*) FROM outbox_retry WHERE sink = ?1 AND state = 'retry'",
	/* The first event after the cursor, or the first retrying one (primary key order),
	 * whichever comes first: seq order is commit order, so it is the oldest. */
	[STORE_OLDEST_WAITING] =
	    "SELECT created_at FROM outbox WHERE seq = (SELECT min(s) FROM ("
	    "SELECT (SELECT seq FROM outbox WHERE seq > ?2 ORDER BY seq LIMIT 1) AS s "
	    "UNION ALL SELECT (SELECT seq FROM outbox_retry NOT INDEXED WHERE sink = ?1 "
	    "AND state = 'retry' ORDER BY seq LIMIT 1)))",
	[STORE_BEGIN] = "BEGIN IMMEDIATE",
	[STORE_COMMIT] = "COMMIT",
	[STORE_ROLLBACK] = "ROLLBACK",
};

struct store {
	outbox *ob;
	sqlite3 *db;
	sqlite3_stmt *stmt[STORE_NSTMT];
	struct checkpoint *ckpt;     /* store_take_checkpoints: the checkpoint thread */
	struct checkpoint_busy busy; /* store_open: the connection's busy handler */
};

/* How long the relay waits for a lock in all (ms): liboutbox's busy timeout. */
#define STORE_BUSY_MS 5000

static int
store_error(struct store *st, char **cause, const char *what)
{
	*cause = xasprintf("%s: %s", what, sqlite3_errmsg(st->db));
	return -1;
}

/* Prepare every statement on st->ob's connection. */
static int
store_prepare(struct store *st, char **cause)
{
	int i;

	st->db = outbox_db(st->ob);
	for (i = 0; i < STORE_NSTMT; i++) {
		if (sqlite3_prepare_v3(st->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		    &st->stmt[i], NULL) != SQLITE_OK)
			return store_error(st, cause, "cannot prepare a statement");
	}
	return 0;
}

int
store_open(struct store **out, const char *path, enum store_error *kind, char **cause)
{
	struct store *st = xcalloc(1, sizeof *st);
	int rc;

	*out = NULL;
	/* Never create the schema: a mistyped path must not grow tables in another
	 * application's database. */
	rc = outbox_open(path, OUTBOX_OPEN_MIGRATE, &st->ob);
	if (rc != OUTBOX_OK) {
		if (access(path, F_OK) != 0 && errno == ENOENT) {
			*cause = xasprintf("database '%s' does not exist (create it with: outboxctl -d "
			    "%s init)", path, path);
			*kind = STORE_ERR_MISSING;
		} else {
			*cause = xstrdup(outbox_errmsg(st->ob));
			*kind = rc == OUTBOX_ESCHEMA ? STORE_ERR_NOT_OUTBOX : STORE_ERR_OTHER;
		}
		outbox_close(st->ob);
		free(st);
		return -1;
	}
	if (store_prepare(st, cause) != 0) {
		*kind = STORE_ERR_OTHER;
		store_close(st);
		return -1;
	}
	/* The relay's: fine polling (see checkpoint_busy), and store_record can skip it. */
	st->busy.limit_ms = STORE_BUSY_MS;
	sqlite3_busy_handler(st->db, checkpoint_busy, &st->busy);
	*out = st;
	return 0;
}

int
store_adopt(struct store **out, outbox *ob, char **cause)
{
	struct store *st = xcalloc(1, sizeof *st);

	st->ob = ob;
	if (store_prepare(st, cause) != 0) {
		store_close(st);
		*out = NULL;
		return -1;
	}
	*out = st;
	return 0;
}

void
store_close(struct store *st)
{
	int i;

	if (st == NULL)
		return;
	checkpoint_stop(st->ckpt);
	for (i = 0; i < STORE_NSTMT; i++)
		sqlite3_finalize(st->stmt[i]);
	outbox_close(st->ob);
	free(st);
}

/* After each commit of the store's connection: tell the checkpoint thread how long the
 * WAL is. */
static int
store_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	(void)db;
	(void)name;
	checkpoint_note(arg, pages);
	return SQLITE_OK;
}

int
store_take_checkpoints(struct store *st, char **cause)
{
	const char *path = sqlite3_db_filename(st->db, "main");

	if ((st->ckpt = checkpoint_start(path, cause)) == NULL)
		return -1;
	/* Replaces the autocheckpoint, which is a WAL hook too. */
	sqlite3_wal_hook(st->db, store_wal_hook, st->ckpt);
	return 0;
}

/* Reset and clear a statement for its next use. */
static sqlite3_stmt *
store_stmt(struct store *st, int which)
{
	sqlite3_stmt *s = st->stmt[which];

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

static void
store_bind_text(sqlite3_stmt *s, int i, const char *text)
{
	if (text != NULL)
		sqlite3_bind_text(s, i, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

/* Step a statement that returns no rows. */
static int
store_exec(struct store *st, sqlite3_stmt *s, char **cause, const char *what)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_error(st, cause, what);
	return 0;
}

/* Step a statement that writes; *changes says how many rows it changed. */
static int
store_write(struct store *st, sqlite3_stmt *s, int64_t *changes, char **cause,
    const char *what)
{
	if (store_exec(st, s, cause, what) != 0)
		return -1;
	*changes = sqlite3_changes(st->db);
	return 0;
}

int
store_begin(struct store *st, char **cause)
{
	return store_exec(st, store_stmt(st, STORE_BEGIN), cause, "cannot start a transaction");
}

int
store_commit(struct store *st, char **cause)
{
	return store_exec(st, store_stmt(st, STORE_COMMIT), cause, "cannot commit");
}

void
store_rollback(struct store *st)
{
	sqlite3_stmt *s = store_stmt(st, STORE_ROLLBACK);

	sqlite3_step(s);
	sqlite3_reset(s);
}

int
store_sink_register(struct store *st, const char *name, const char *type, const char *filter,
    const char *prefix, int latest, int64_t *cursor, char **cause)
{
	sqlite3_stmt *s = store_stmt(st, STORE_SINK_UPSERT);

	store_bind_text(s, 1, name);
	store_bind_text(s, 2, type);
	store_bind_text(s, 3, filter);
	store_bind_text(s, 4, prefix);
	sqlite3_bind_int(s, 5, latest);
	if (store_exec(st, s, cause, "cannot register the sink") != 0)
		return -1;
	return store_sink_cursor(st, name, cursor, cause);
}

static char *
store_column_dup(sqlite3_stmt *s, int col)
{
	const unsigned char *text = sqlite3_column_text(s, col);

	return text != NULL ? xstrdup((const char *)text) : NULL;
}

/* Column col of the current row copied into text (NULL stays NULL); JSON columns are made
 * compact, one line, whatever the producer wrote (the schema's CHECKs made them valid). */
static char *
store_column_copy(sqlite3_stmt *s, int col, struct arena *text, int json)
{
	const char *value = (const char *)sqlite3_column_text(s, col);
	size_t len = (size_t)sqlite3_column_bytes(s, col);
	char *copy;

	if (value == NULL)
		return NULL;
	if (!json)
		return arena_strndup(text, value, len);
	copy = arena_alloc(text, len + 1);
	util_json_compact(value, len, copy);
	return copy;
}

/* Read the rows of a prepared SELECT with the columns of STORE_READ_NEW. */
static int
store_read_events(struct store *st, sqlite3_stmt *s, struct store_event *events, int limit,
    int *n, struct arena *text, char **cause)
{
	int rc = SQLITE_DONE; /* limit 0 reads nothing (and gcc -O1 cannot tell) */

	*n = 0;
	while (*n < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_event *ev = &events[(*n)++];
		ev->seq = sqlite3_column_int64(s, 0);
		ev->id = store_column_copy(s, 1, text, 0);
		ev->name = store_column_copy(s, 2, text, 0);
		ev->payload = store_column_copy(s, 3, text, 1);
		ev->headers = store_column_copy(s, 4, text, 1);
		ev->key = store_column_copy(s, 5, text, 0);
		ev->created_at = sqlite3_column_int64(s, 6);
		ev->attempts = sqlite3_column_int(s, 7);
	}
	sqlite3_reset(s);
	if (*n < limit && rc != SQLITE_DONE) {
		*n = 0;
		return store_error(st, cause, "cannot read events");
	}
	return 0;
}

int
store_read_new(struct store *st, int64_t after, int limit, struct store_event *events, int *n,
    struct arena *text, char **cause)
{
	sqlite3_stmt *s = store_stmt(st, STORE_READ_NEW);

	sqlite3_bind_int64(s, 1, after);
	sqlite3_bind_int(s, 2, limit);
	return store_read_events(st, s, events, limit, n, text, cause);
}

int
store_read_due(struct store *st, const char *sink, int64_t now, int limit,
    struct store_event *events, int *n, struct arena *text, char **cause)
{
	sqlite3_stmt *s = store_stmt(st, STORE_READ_DUE);

	store_bind_text(s, 1, sink);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_int(s, 3, limit);
	return store_read_events(st, s, events, limit, n, text, cause);
}

/* A statement returning one integer column, NULL meaning none (-1). */
static int
store_one_int(struct store *st, sqlite3_stmt *s, int64_t *out, char **cause, const char *what)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		*out = sqlite3_column_type(s, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 0);
	else if (rc == SQLITE_DONE)
		*out = -1;
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_error(st, cause, what);
	return 0;
}

int
store_next_due(struct store *st, const char *sink, int64_t *at, char **cause)
{
	sqlite3_stmt *s = store_stmt(st, STORE_NEXT_DUE);

	store_bind_text(s, 1, sink);
	return store_one_int(st, s, at, cause, "cannot read retry times");
}

int
store_key_waiting(struct store *st, const char *sink, const char *key, int64_t *blocker,
    char **cause)
{
	sqlite3_stmt *s = store_stmt(st, STORE_KEY_WAITING);

	store_bind_text(s, 1, sink);
	store_bind_text(s, 2, key);
	if (store_one_int(st, s, blocker, cause, "cannot read ordering keys") != 0)
		return -1;
	if (*blocker < 0)
		*blocker = 0;
	return 0;
}

static int
store_record_one(struct store *st, const char *sink, const struct store_outcome *o,
    int64_t now, char **cause)
{
	static const char *const states[] = {
		[STORE_RETRY] = "retry", [STORE_FAILED] = "failed", [STORE_WAITING] = "retry",
	};
	sqlite3_stmt *s;

	if (o->kind == STORE_DELIVERED) {
		s = store_stmt(st, STORE_RETRY_DELETE);
		store_bind_text(s, 1, sink);
		sqlite3_bind_int64(s, 2, o->seq);
		return store_exec(st, s, cause, "cannot record a delivery");
	}
	s = store_stmt(st, STORE_RETRY_UPSERT);
	store_bind_text(s, 1, sink);
	sqlite3_bind_int64(s, 2, o->seq);
	store_bind_text(s, 3, states[o->kind]);
	sqlite3_bind_int(s, 4, o->attempts);
	sqlite3_bind_int64(s, 5, o->next_attempt_at);
	store_bind_text(s, 6, o->error);
	sqlite3_bind_int64(s, 7, now);
	return store_exec(st, s, cause, "cannot record a failed delivery");
}

int
store_record(struct store *st, const char *sink, int64_t from, int64_t to,
    const struct store_outcome *outcomes, size_t n, int wait, int *moved, char **cause)
{
	int64_t now = util_now_ms();
	sqlite3_stmt *s;
	size_t i;
	int rc;

	*moved = 0;
	if (to == from && n == 0)
		return 0;
	st->busy.no_wait = !wait;
	rc = store_begin(st, cause);
	st->busy.no_wait = 0;
	if (rc != 0) {
		if (wait || sqlite3_errcode(st->db) != SQLITE_BUSY)
			return -1;
		free(*cause);
		*cause = NULL;
		return 1;
	}
	if (to != from) {
		s = store_stmt(st, STORE_SET_CURSOR);
		store_bind_text(s, 1, sink);
		sqlite3_bind_int64(s, 2, to);
		sqlite3_bind_int64(s, 3, now);
		sqlite3_bind_int64(s, 4, from);
		if (store_exec(st, s, cause, "cannot move the cursor") != 0)
			goto fail;
		*moved = sqlite3_changes(st->db) == 0;
	}
	for (i = 0; i < n; i++) {
		if (store_record_one(st, sink, &outcomes[i], now, cause) != 0)
			goto fail;
	}
	if (store_commit(st, cause) != 0)
		goto fail;
	return 0;
fail:
	store_rollback(st);
	return -1;
}

int
store_failure_passes(struct store *st)
{
	switch (sqlite3_errcode(st->db)) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_FULL:
		return 1;
	default:
		return 0;
	}
}

int
store_sink_cursor(struct store *st, const char *sink, int64_t *cursor, char **cause)
{
	sqlite3_stmt *s = store_stmt(st, STORE_SINK_CURSOR);

	store_bind_text(s, 1, sink);
	return store_one_int(st, s, cursor, cause, "cannot read the sink's cursor");
}

int
store_purge(struct store *st, int64_t cutoff, int limit, int *deleted, char **cause)
{
	sqlite3_stmt *s = store_stmt(st, STORE_PURGE);
	int64_t changes;

	sqlite3_bind_int64(s, 1, cutoff);
	sqlite3_bind_int(s, 2, limit);
	if (store_write(st, s, &changes, cause, "cannot purge delivered events") != 0)
		return -1;
	*deleted = (int)changes;
	return 0;
}

int
store_purge_count(struct store *st, int64_t cutoff, int64_t *n, char **cause)
{
	sqlite3_stmt *s = store_stmt(st, STORE_PURGE_COUNT);

	sqlite3_bind_int64(s, 1, cutoff);
	return store_one_int(st, s, n, cause, "cannot count delivered events");
}

/* Rare (a reminder during an outage), so prepared on the spot rather than cached; the
 * outbox_status view is the one definition of what waits for a sink. */
int
store_sink_backlog(struct store *st, const char *sink, int64_t *n, char **cause)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(st->db, "SELECT pending + retrying FROM outbox_status "
	    "WHERE sink = ?1", -1, &s, NULL) != SQLITE_OK)
		return store_error(st, cause, "cannot count the backlog");
	store_bind_text(s, 1, sink);
	rc = store_one_int(st, s, n, cause, "cannot count the backlog");
	sqlite3_finalize(s);
	return rc;
}

int
store_max_seq(struct store *st, int64_t *max, char **cause)
{
	if (store_one_int(st, store_stmt(st, STORE_MAX_SEQ), max, cause,
	    "cannot read the last seq") != 0)
		return -1;
	if (*max < 0)
		*max = 0;
	return 0;
}

int
store_sink_waiting(struct store *st, const char *sink, int64_t cursor, int64_t *retrying,
    int64_t *oldest_at, char **cause)
{
	sqlite3_stmt *s = store_stmt(st, STORE_RETRYING);

	store_bind_text(s, 1, sink);
	if (store_one_int(st, s, retrying, cause, "cannot count the retrying events") != 0)
		return -1;
	s = store_stmt(st, STORE_OLDEST_WAITING);
	store_bind_text(s, 1, sink);
	sqlite3_bind_int64(s, 2, cursor);
	return store_one_int(st, s, oldest_at, cause, "cannot read the oldest waiting event");
}

/* ---- operations (outboxctl) ------------------------------------------------------------ */

/* Bind the selection to a statement of STORE_REPLAY_WHERE, from (seq, sink) on. */
static void
store_replay_bind(sqlite3_stmt *s, const struct store_replay_select *sel, int64_t seq,
    const char *sink)
{
	store_bind_text(s, 1, sel->sink);
	if (sel->seq != 0)
		sqlite3_bind_int64(s, 2, sel->seq);
	store_bind_text(s, 3, sel->name);
	if (sel->since != INT64_MIN)
		sqlite3_bind_int64(s, 4, sel->since);
	if (sel->until != INT64_MAX)
		sqlite3_bind_int64(s, 5, sel->until);
	sqlite3_bind_int64(s, 6, seq);
	store_bind_text(s, 7, sink);
}

int
store_replay_count(struct store *st, const struct store_replay_select *sel, int64_t *n,
    char **cause)
{
	sqlite3_stmt *s = store_stmt(st, sel->failed ? STORE_REPLAY_FAILED_COUNT :
	    STORE_REPLAY_COUNT);

	store_replay_bind(s, sel, 0, "");
	return store_one_int(st, s, n, cause, "cannot count the events to replay");
}

/* Rows of a replay, a page at a time: the page is read whole before any of it is written,
 * and the next page starts after its last (seq, sink), so a written row is never seen
 * twice. */
#define STORE_REPLAY_PAGE_ROWS 512

struct store_replay_page {
	struct {
		char *sink, *id, *name, *state;
		int64_t seq;
	} rows[STORE_REPLAY_PAGE_ROWS];
	int n;
};

static void
store_replay_page_clear(struct store_replay_page *p)
{
	int i;

	for (i = 0; i < p->n; i++) {
		free(p->rows[i].sink);
		free(p->rows[i].id);
		free(p->rows[i].name);
		free(p->rows[i].state);
	}
	p->n = 0;
}

static int
store_replay_read(struct store *st, const struct store_replay_select *sel, int64_t seq,
    const char *sink, struct store_replay_page *p, char **cause)
{
	sqlite3_stmt *s = store_stmt(st, sel->failed ? STORE_REPLAY_FAILED_PAGE :
	    STORE_REPLAY_PAGE);
	int rc;

	store_replay_bind(s, sel, seq, sink);
	sqlite3_bind_int(s, 8, STORE_REPLAY_PAGE_ROWS);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		p->rows[p->n].sink = store_column_dup(s, 0);
		p->rows[p->n].seq = sqlite3_column_int64(s, 1);
		p->rows[p->n].id = store_column_dup(s, 2);
		p->rows[p->n].name = store_column_dup(s, 3);
		p->rows[p->n].state = store_column_dup(s, 4);
		p->n++;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : store_error(st, cause, "cannot read the events to replay");
}

/* Show row i of the page, and put it back in line unless dry_run. */
static int
store_replay_one(struct store *st, const struct store_replay_page *p, int i, int dry_run,
    int64_t now, store_replay_cb each, void *arg, char **cause)
{
	const struct store_replay_row row = { .sink = p->rows[i].sink, .seq = p->rows[i].seq,
	    .id = p->rows[i].id, .name = p->rows[i].name, .state = p->rows[i].state };
	sqlite3_stmt *s;

	each(&row, arg);
	if (dry_run)
		return 0;
	s = store_stmt(st, STORE_REPLAY_RETRY);
	store_bind_text(s, 1, row.sink);
	sqlite3_bind_int64(s, 2, row.seq);
	sqlite3_bind_int64(s, 3, now);
	return store_exec(st, s, cause, "cannot replay an event");
}

int
store_replay(struct store *st, const struct store_replay_select *sel, int dry_run,
    store_replay_cb each, void *arg, int64_t *n, char **cause)
{
	struct store_replay_page *p = xcalloc(1, sizeof *p);
	int64_t now = util_now_ms(), seq = 0;
	char *sink = xstrdup("");
	int i, rc, full;

	*n = 0;
	do {
		rc = store_replay_read(st, sel, seq, sink, p, cause);
		for (i = 0; i < p->n && rc == 0; i++, (*n)++)
			rc = store_replay_one(st, p, i, dry_run, now, each, arg, cause);
		if (p->n > 0) {
			free(sink);
			sink = xstrdup(p->rows[p->n - 1].sink);
			seq = p->rows[p->n - 1].seq;
		}
		full = p->n == STORE_REPLAY_PAGE_ROWS;
		store_replay_page_clear(p);
	} while (rc == 0 && full);
	free(sink);
	free(p);
	return rc;
}

int
store_rewind(struct store *st, const char *sink, int64_t seq, int64_t *sinks, char **cause)
{
	sqlite3_stmt *s = store_stmt(st, STORE_REWIND);

	store_bind_text(s, 1, sink);
	sqlite3_bind_int64(s, 2, seq);
	return store_write(st, s, sinks, cause, "cannot rewind the cursor");
}

int
store_rewind_count(struct store *st, const char *sink, int64_t seq, int64_t *n, char **cause)
{
	sqlite3_stmt *s = store_stmt(st, STORE_REWIND_COUNT);

	store_bind_text(s, 1, sink);
	sqlite3_bind_int64(s, 2, seq);
	return store_one_int(st, s, n, cause, "cannot count the events to deliver again");
}

int
store_sink_remove(struct store *st, const char *sink, int64_t *retry, char **cause)
{
	sqlite3_stmt *s;

	if (store_begin(st, cause) != 0)
		return -1;
	s = store_stmt(st, STORE_SINK_FORGET_RETRY);
	store_bind_text(s, 1, sink);
	if (store_write(st, s, retry, cause, "cannot forget the sink's events") != 0)
		goto fail;
	s = store_stmt(st, STORE_SINK_FORGET);
	store_bind_text(s, 1, sink);
	if (store_exec(st, s, cause, "cannot forget the sink") != 0 ||
	    store_commit(st, cause) != 0)
		goto fail;
	return 0;
fail:
	store_rollback(st);
	return -1;
}
