/*
 * ctl_replay.c: outboxctl replay (put retrying, failed or delivered events back in line
 * for a sink, or rewind its cursor, in one transaction the relay picks up while it runs)
 * and purge (delete old delivered events in small transactions, with the relay's own
 * retention statement). Every write is the store's.
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

enum { CTL_REPLAY_SINCE = CTL_LONG_ONLY(0), CTL_REPLAY_UNTIL = CTL_LONG_ONLY(1) };

struct ctl_replay_args {
	struct store_replay_select sel;
	const char *id;		/* --id as given: an id, or a seq */
	int64_t from_seq;	/* 0: not given */
	int dry_run;
	struct ctl_progress bar;
	int64_t done;		/* pairs replayed so far, for the bar */
};

static int
ctl_replay_option(int c, const char *value, void *arg, char **cause)
{
	struct ctl_replay_args *a = arg;

	switch (c) {
	case 'f': a->sel.failed = 1; return 0;
	case 'i': a->id = value; return 0;
	case 'n': a->sel.name = value; return 0;
	case 's': a->sel.sink = value; return 0;
	case 'D': a->dry_run = 1; return 0;
	case CTL_REPLAY_SINCE: return ctl_parse_time("--since", value, &a->sel.since, cause);
	case CTL_REPLAY_UNTIL: return ctl_parse_time("--until", value, &a->sel.until, cause);
	case 'F': return ctl_parse_count("--from-seq", value, 1, INT64_MAX, &a->from_seq, cause);
	default: return -1;
	}
}

/* Is any selector of events given (besides --from-seq)? */
static int
ctl_replay_selected(const struct ctl_replay_args *a)
{
	return a->sel.failed || a->id != NULL || a->sel.name != NULL ||
	    a->sel.since != INT64_MIN || a->sel.until != INT64_MAX;
}

static int
ctl_replay_parse(struct ctl *ctl, int argc, char **argv, struct ctl_replay_args *a,
    char **cause)
{
	int rc;

	if ((rc = ctl_parse_options(ctl, argc, argv, ctl_replay_option, a, 0, cause)) != 0)
		return rc;
	if (!ctl_replay_selected(a) && a->from_seq == 0) {
		*cause = xasprintf("say what to replay: --failed, --id, --name, --since, --until "
		    "or --from-seq");
		return CTL_USAGE;
	}
	return 0;
}

/* Each pair replayed: a line with --dry-run, a step of the progress bar. */
static void
ctl_replay_each(const struct store_replay_row *row, void *arg)
{
	struct ctl_replay_args *a = arg;

	if (a->dry_run)
		printf("%s\t%" PRId64 "\t%s\t%s\t%s\n", row->sink, row->seq, row->id, row->name,
		    row->state);
	ctl_progress_update(&a->bar, ++a->done);
}

/* Replay the pairs the selectors choose; *n says how many. */
static int
ctl_replay_events(struct store *st, struct ctl_replay_args *a, int64_t *n, char **cause)
{
	int64_t total;
	int rc;

	*n = 0;
	if (!ctl_replay_selected(a))
		return 0;
	if (store_replay_count(st, &a->sel, &total, cause) != 0)
		return CTL_ERROR;
	ctl_progress_start(&a->bar, "replay", total);
	rc = store_replay(st, &a->sel, a->dry_run, ctl_replay_each, a, n, cause);
	ctl_progress_end(&a->bar);
	return rc == 0 ? 0 : CTL_ERROR;
}

/* --from-seq: rewind the cursors (or count what that would deliver again). */
static int
ctl_replay_cursor(struct store *st, const struct ctl_replay_args *a, int64_t *n, char **cause)
{
	int rc;

	*n = 0;
	if (a->from_seq == 0)
		return 0;
	if (a->dry_run)
		rc = store_rewind_count(st, a->sel.sink, a->from_seq, n, cause);
	else
		rc = store_rewind(st, a->sel.sink, a->from_seq, n, cause);
	return rc == 0 ? 0 : CTL_ERROR;
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

/* --id: the event's seq, or an error if there is none. */
static int
ctl_replay_find(sqlite3 *db, struct ctl_replay_args *a, char **cause)
{
	int rc;

	if (a->id == NULL)
		return 0;
	if ((rc = ctl_event_seq(db, a->id, &a->sel.seq, cause)) != 1)
		return rc;
	*cause = xasprintf("no such event with id or seq '%s'", a->id);
	return CTL_ERROR;
}

/* In one transaction: the relay sees all of the replay or none of it. */
static int
ctl_replay_run(struct store *st, sqlite3 *db, struct ctl_replay_args *a, char **cause)
{
	int64_t events = 0, sinks = 0;
	int rc;

	if (store_begin(st, cause) != 0)
		return CTL_ERROR;
	if ((rc = ctl_sink_exists(db, a->sel.sink, cause)) == 0 &&
	    (rc = ctl_replay_find(db, a, cause)) == 0 &&
	    (rc = ctl_replay_events(st, a, &events, cause)) == 0)
		rc = ctl_replay_cursor(st, a, &sinks, cause);
	if (rc != 0 || a->dry_run)
		store_rollback(st);
	else if (store_commit(st, cause) != 0)
		rc = CTL_ERROR;
	if (rc == 0)
		ctl_replay_report(a, events, sinks);
	return rc;
}

static int
ctl_replay(struct ctl *ctl, int argc, char **argv, char **cause)
{
	struct ctl_replay_args a = { .sel = { .since = INT64_MIN, .until = INT64_MAX } };
	struct store *st;
	outbox *ob;
	int rc;

	if ((rc = ctl_replay_parse(ctl, argc, argv, &a, cause)) != 0)
		return rc;
	if ((rc = ctl_open(ctl, OUTBOX_OPEN_EXISTING, &ob, cause)) != 0)
		return rc;
	if (store_adopt(&st, ob, cause) != 0)
		return CTL_ERROR;
	rc = ctl_replay_run(st, outbox_db(ob), &a, cause);
	store_close(st);
	return rc;
}

static const struct ctl_option ctl_replay_options[] = {
	{ 'f', "failed", NULL, "only the events that failed (state 'failed'): dead letters" },
	{ 'i', "id", "ID", "this event (an id, or a seq), even if it was delivered" },
	{ 'n', "name", "GLOB", "delivered, retrying or failed events whose name matches" },
	{ CTL_REPLAY_SINCE, "since", "TIME",
	  "delivered, retrying or failed events created at or after TIME" },
	{ CTL_REPLAY_UNTIL, "until", "TIME",
	  "delivered, retrying or failed events created before TIME" },
	{ 'F', "from-seq", "N", "rewind the cursor: deliver again every event from seq N" },
	{ 's', "sink", "S", "only this sink (default: every sink)" },
	{ 'D', "dry-run", NULL, "print what would be replayed and change nothing" },
	{ 0, NULL, NULL, NULL }
};

const struct ctl_entry ctl_replay_entry = {
	.name = "replay",
	.usage = "(--failed | --id ID | --name GLOB | --since TIME | --until TIME | "
	    "--from-seq N)... [--sink S] [--dry-run]",
	.summary = "put events back in line for a sink (safe while outboxd runs)",
	.options = ctl_replay_options,
	.exec = ctl_replay,
};

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
ctl_purge_parse(struct ctl *ctl, int argc, char **argv, struct ctl_purge_args *a,
    char **cause)
{
	int rc;

	if ((rc = ctl_parse_options(ctl, argc, argv, ctl_purge_option, a, 0, cause)) != 0)
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

static int
ctl_purge(struct ctl *ctl, int argc, char **argv, char **cause)
{
	struct ctl_purge_args a = { .older_than = -1, .batch = 1000 };
	int64_t total = 0, purged = 0, cutoff;
	struct store *st;
	outbox *ob;
	int rc;

	if ((rc = ctl_purge_parse(ctl, argc, argv, &a, cause)) != 0)
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

static const struct ctl_option ctl_purge_options[] = {
	{ 'o', "older-than", "D", "events created more than D ago (30m, 12h, 7d)" },
	{ 'b', "batch", "N", "events per transaction (default 1000)" },
	{ 'D', "dry-run", NULL, "print how many would be deleted and change nothing" },
	{ 0, NULL, NULL, NULL }
};

const struct ctl_entry ctl_purge_entry = {
	.name = "purge",
	.usage = "--older-than DURATION [--batch N] [--dry-run]",
	.summary = "delete delivered events older than DURATION, in small transactions",
	.options = ctl_purge_options,
	.exec = ctl_purge,
};
