/*
 * ctl_replay.c: outboxctl replay (put retrying, failed or delivered events back in line
 * for a sink, in one transaction the relay picks up while it runs) and purge (delete old
 * delivered events in small transactions, with the relay's own retention statement).
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "store.h"
#include "util.h"

/* ---- replay ----------------------------------------------------------------------------- */

struct ctl_replay_args {
	int failed;
	const char *id;
	const char *name;
	int64_t since, until;	/* unix ms; INT64_MIN / INT64_MAX: not given */
	int64_t from_seq;	/* 0: not given */
	const char *sink;
	int dry_run;
};

/*
 * Retry rows chosen by --failed/--name/--since/--until/--id (all given must hold), and
 * delivered events chosen by --id. ?2 says whether any retry-row selector was given.
 */
#define CTL_REPLAY_ROWS \
    "SELECT r.sink, o.seq, o.id, o.name, r.state FROM outbox_retry r " \
    "JOIN outbox o ON o.seq = r.seq " \
    "WHERE (?1 IS NULL OR r.sink = ?1) AND (?2 = 0 OR r.state = 'failed') " \
    "AND (?3 IS NULL OR o.id = ?3) AND (?4 IS NULL OR o.name GLOB ?4) " \
    "AND o.created_at >= ?5 AND o.created_at < ?6 AND ?7 " \
    "UNION ALL " \
    "SELECT s.name, o.seq, o.id, o.name, 'delivered' FROM outbox_sink s " \
    "JOIN outbox o ON o.id = ?3 " \
    "WHERE (?1 IS NULL OR s.name = ?1) AND o.seq <= s.cursor AND " CTL_FILTER_MATCH " " \
    "AND o.created_at >= ?5 AND o.created_at < ?6 " \
    "AND NOT EXISTS (SELECT 1 FROM outbox_retry r WHERE r.sink = s.name AND r.seq = o.seq)"

static const char ctl_replay_select[] =
    CTL_REPLAY_ROWS " ORDER BY 2, 1";

static const char ctl_replay_count[] =
    "SELECT count(*) FROM (" CTL_REPLAY_ROWS ")";

static const char ctl_replay_retry[] =
    "INSERT INTO outbox_retry(sink, seq, state, attempts, next_attempt_at, last_error, "
    "updated_at) VALUES (?1, ?2, 'retry', 0, 0, NULL, " CTL_SQL_NOW_MS ") "
    "ON CONFLICT(sink, seq) DO UPDATE SET state = 'retry', attempts = 0, "
    "next_attempt_at = 0, last_error = NULL, updated_at = excluded.updated_at";

static const char ctl_replay_rewind[] =
    "UPDATE outbox_sink SET cursor = ?2 WHERE (?1 IS NULL OR name = ?1) AND cursor > ?2";

static const char ctl_replay_rewind_count[] =
    "SELECT count(*) FROM outbox_sink s JOIN outbox o ON o.seq >= ?2 AND o.seq <= s.cursor "
    "WHERE (?1 IS NULL OR s.name = ?1) AND " CTL_FILTER_MATCH;

static int
ctl_replay_option(int c, const char *value, void *arg, char **cause)
{
	struct ctl_replay_args *a = arg;

	switch (c) {
	case 'f': a->failed = 1; return 0;
	case 'i': a->id = value; return 0;
	case 'n': a->name = value; return 0;
	case 's': a->sink = value; return 0;
	case 'D': a->dry_run = 1; return 0;
	case 'S': return ctl_parse_time("--since", value, &a->since, cause);
	case 'U': return ctl_parse_time("--until", value, &a->until, cause);
	case 'F': return ctl_parse_count("--from-seq", value, 1, INT64_MAX, &a->from_seq, cause);
	default: return -1;
	}
}

static int
ctl_replay_parse(int argc, char **argv, struct ctl_replay_args *a, char **cause)
{
	static const struct option longopts[] = {
		{ "failed", no_argument, NULL, 'f' },
		{ "id", required_argument, NULL, 'i' },
		{ "name", required_argument, NULL, 'n' },
		{ "since", required_argument, NULL, 'S' },
		{ "until", required_argument, NULL, 'U' },
		{ "from-seq", required_argument, NULL, 'F' },
		{ "sink", required_argument, NULL, 's' },
		{ "dry-run", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int rc;

	if ((rc = ctl_parse_options(argc, argv, ":fi:n:F:s:Dh", longopts, ctl_replay_option, a,
	    0, cause)) != 0)
		return rc;
	if (!a->failed && a->id == NULL && a->name == NULL && a->from_seq == 0 &&
	    a->since == INT64_MIN && a->until == INT64_MAX) {
		*cause = xasprintf("say what to replay: --failed, --id, --name, --since, --until "
		    "or --from-seq");
		return CTL_USAGE;
	}
	return 0;
}

static void
ctl_replay_bind(sqlite3_stmt *st, const struct ctl_replay_args *a)
{
	int selected = a->failed || a->id != NULL || a->name != NULL || a->since != INT64_MIN ||
	    a->until != INT64_MAX;

	sqlite3_bind_text(st, 1, a->sink, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, a->failed);
	sqlite3_bind_text(st, 3, a->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, a->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, a->since);
	sqlite3_bind_int64(st, 6, a->until);
	sqlite3_bind_int(st, 7, selected);
}

/* How many rows the selectors choose: to size the progress bar. */
static int
ctl_replay_total(sqlite3 *db, const struct ctl_replay_args *a, int64_t *total, char **cause)
{
	sqlite3_stmt *st;
	int rc;

	if (ctl_prepare(db, ctl_replay_count, &st, cause) != 0)
		return CTL_ERROR;
	ctl_replay_bind(st, a);
	rc = sqlite3_step(st);
	*total = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : ctl_sql_error(db, cause);
}

/* Replay the rows chosen by the selectors; *n says how many. */
static int
ctl_replay_events(sqlite3 *db, const struct ctl_replay_args *a, int64_t *n, char **cause)
{
	sqlite3_stmt *sel = NULL, *upd = NULL;
	struct ctl_progress bar;
	int64_t total;
	int rc;

	*n = 0;
	if (ctl_replay_total(db, a, &total, cause) != 0)
		return CTL_ERROR;
	if (ctl_prepare(db, ctl_replay_select, &sel, cause) != 0 ||
	    ctl_prepare(db, ctl_replay_retry, &upd, cause) != 0) {
		rc = CTL_ERROR;
		goto out;
	}
	ctl_replay_bind(sel, a);
	ctl_progress_start(&bar, "replay", total);
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		ctl_progress_update(&bar, ++*n);
		if (a->dry_run) {
			printf("%s\t%lld\t%s\t%s\t%s\n", sqlite3_column_text(sel, 0),
			    (long long)sqlite3_column_int64(sel, 1), sqlite3_column_text(sel, 2),
			    sqlite3_column_text(sel, 3), sqlite3_column_text(sel, 4));
			continue;
		}
		sqlite3_bind_value(upd, 1, sqlite3_column_value(sel, 0));
		sqlite3_bind_int64(upd, 2, sqlite3_column_int64(sel, 1));
		if (sqlite3_step(upd) != SQLITE_DONE) {
			rc = ctl_sql_error(db, cause);
			goto out_bar;
		}
		sqlite3_reset(upd);
	}
	rc = rc == SQLITE_DONE ? 0 : ctl_sql_error(db, cause);
out_bar:
	ctl_progress_end(&bar);
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	return rc;
}

/* --from-seq: rewind the cursors (or count what that would deliver again). */
static int
ctl_replay_cursor(sqlite3 *db, const struct ctl_replay_args *a, int64_t *n, char **cause)
{
	sqlite3_stmt *st;
	int rc;

	*n = 0;
	if (a->from_seq == 0)
		return 0;
	if (ctl_prepare(db, a->dry_run ? ctl_replay_rewind_count : ctl_replay_rewind, &st,
	    cause) != 0)
		return CTL_ERROR;
	sqlite3_bind_text(st, 1, a->sink, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, a->dry_run ? a->from_seq : a->from_seq - 1);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		*n = sqlite3_changes(db);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ctl_sql_error(db, cause);
}

static void
ctl_replay_report(const struct ctl_replay_args *a, int64_t events, int64_t sinks)
{
	char *more = a->from_seq == 0 ? xstrdup("") : a->dry_run ?
	    xasprintf(" and deliver %" PRId64 " again from seq %" PRId64, sinks, a->from_seq) :
	    xasprintf("; rewound %" PRId64 " sink%s to seq %" PRId64, sinks,
	    sinks == 1 ? "" : "s", a->from_seq);

	printf("%s %" PRId64 " event%s%s\n", a->dry_run ? "would replay" : "replayed", events,
	    events == 1 ? "" : "s", more);
	free(more);
}

int
ctl_replay(struct ctl *ctl, int argc, char **argv, char **cause)
{
	struct ctl_replay_args a = { .since = INT64_MIN, .until = INT64_MAX };
	int64_t events = 0, sinks = 0;
	sqlite3 *db;
	outbox *ob;
	int rc;

	if ((rc = ctl_replay_parse(argc, argv, &a, cause)) != 0)
		return rc;
	if ((rc = ctl_open(ctl, OUTBOX_OPEN_EXISTING, &ob, cause)) != 0)
		return rc;
	db = outbox_db(ob);
	/* One transaction: the relay sees all of the replay or none of it. */
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		rc = ctl_sql_error(db, cause);
		goto out;
	}
	if ((rc = ctl_sink_exists(db, a.sink, cause)) == 0 &&
	    (rc = ctl_replay_events(db, &a, &events, cause)) == 0)
		rc = ctl_replay_cursor(db, &a, &sinks, cause);
	if (rc != 0 || a.dry_run)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	else if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = ctl_sql_error(db, cause);
	if (rc == 0)
		ctl_replay_report(&a, events, sinks);
out:
	outbox_close(ob);
	return rc;
}

/* ---- purge ------------------------------------------------------------------------------ */

struct ctl_purge_args {
	int64_t older_than;	/* ms; -1: not given */
	int64_t batch;
	int dry_run;
};

static int
ctl_purge_option(int c, const char *value, void *arg, char **cause)
{
	struct ctl_purge_args *a = arg;

	switch (c) {
	case 'o': return ctl_parse_duration("--older-than", value, &a->older_than, cause);
	case 'b': return ctl_parse_count("--batch", value, 1, 1000000, &a->batch, cause);
	case 'D': a->dry_run = 1; return 0;
	default: return -1;
	}
}

static int
ctl_purge_parse(int argc, char **argv, struct ctl_purge_args *a, char **cause)
{
	static const struct option longopts[] = {
		{ "older-than", required_argument, NULL, 'o' },
		{ "batch", required_argument, NULL, 'b' },
		{ "dry-run", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int rc;

	if ((rc = ctl_parse_options(argc, argv, ":o:b:Dh", longopts, ctl_purge_option, a, 0,
	    cause)) != 0)
		return rc;
	if (a->older_than < 0) {
		*cause = xasprintf("say how old: --older-than DURATION (e.g. 7d)");
		return CTL_USAGE;
	}
	return 0;
}

/* Batch after batch, each its own short transaction, until one comes back short. */
static int
ctl_purge_run(struct store *st, int64_t cutoff, int batch, int64_t total, int64_t *purged,
    char **cause)
{
	struct ctl_progress bar;
	int rc = 0, deleted = batch;
	char *why = NULL;

	*purged = 0;
	ctl_progress_start(&bar, "purge", total);
	while (rc == 0 && deleted == batch) {
		if ((rc = store_purge(st, cutoff, batch, &deleted, &why)) == 0)
			*purged += deleted;
		ctl_progress_update(&bar, *purged);
	}
	ctl_progress_end(&bar);
	if (rc == 0)
		return 0;
	*cause = xasprintf("%s (after purging %" PRId64 " events)", why, *purged);
	free(why);
	return CTL_ERROR;
}

int
ctl_purge(struct ctl *ctl, int argc, char **argv, char **cause)
{
	struct ctl_purge_args a = { .older_than = -1, .batch = 1000 };
	int64_t total = 0, purged = 0, cutoff;
	struct store *st;
	outbox *ob;
	int rc;

	if ((rc = ctl_purge_parse(argc, argv, &a, cause)) != 0)
		return rc;
	if ((rc = ctl_open(ctl, OUTBOX_OPEN_EXISTING, &ob, cause)) != 0)
		return rc;
	if (store_adopt(&st, ob, cause) != 0)
		return CTL_ERROR;
	cutoff = util_now_ms() - a.older_than;
	if (store_purge_count(st, cutoff, &total, cause) != 0)
		rc = CTL_ERROR;
	else if (a.dry_run)
		printf("would purge %" PRId64 " event%s\n", total, total == 1 ? "" : "s");
	else if ((rc = ctl_purge_run(st, cutoff, (int)a.batch, total, &purged, cause)) == 0)
		printf("purged %" PRId64 " event%s\n", purged, purged == 1 ? "" : "s");
	store_close(st);
	return rc;
}
