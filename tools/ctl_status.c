/*
 * ctl_status.c: outboxctl status (each sink's backlog from the outbox_status view, with a
 * health verdict for monitoring) and sinks (list the sinks, forget one through the store).
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "store.h"
#include "util.h"

/* ---- status ----------------------------------------------------------------------------- */

enum { ST_SINK, ST_CURSOR, ST_PENDING, ST_RETRYING, ST_FAILED, ST_OLDEST, ST_PROGRESS,
       ST_NCOLS };

static const char ctl_status_sql[] =
    "SELECT sink, cursor, pending, retrying, failed, oldest_age_s, last_progress "
    "FROM outbox_status ORDER BY sink";

static const char *const ctl_status_heads[ST_NCOLS] = {
	"SINK", "CURSOR", "PENDING", "RETRYING", "FAILED", "OLDEST", "LAST PROGRESS"
};

struct ctl_status_totals {
	int64_t sinks, pending, retrying, failed;
	double oldest;	/* seconds; -1: nothing undelivered */
};

static void
ctl_status_add(struct ctl_status_totals *t, sqlite3_stmt *st)
{
	t->sinks++;
	t->pending += sqlite3_column_int64(st, ST_PENDING);
	t->retrying += sqlite3_column_int64(st, ST_RETRYING);
	t->failed += sqlite3_column_int64(st, ST_FAILED);
	if (sqlite3_column_type(st, ST_OLDEST) != SQLITE_NULL &&
	    sqlite3_column_double(st, ST_OLDEST) > t->oldest)
		t->oldest = sqlite3_column_double(st, ST_OLDEST);
}

/* Events in the table: how many, and the range of seq. */
static int
ctl_status_events(sqlite3 *db, char **line, char **cause)
{
	sqlite3_stmt *st;

	if (ctl_prepare(db, "SELECT count(*), min(seq), max(seq) FROM outbox", &st, cause) != 0)
		return CTL_ERROR;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return ctl_sql_error(db, cause);
	}
	if (sqlite3_column_int64(st, 0) == 0)
		*line = xstrdup("no events");
	else
		*line = xasprintf("%" PRId64 " event%s (seq %" PRId64 "..%" PRId64 ")",
		    (int64_t)sqlite3_column_int64(st, 0),
		    sqlite3_column_int64(st, 0) == 1 ? "" : "s",
		    (int64_t)sqlite3_column_int64(st, 1), (int64_t)sqlite3_column_int64(st, 2));
	sqlite3_finalize(st);
	return 0;
}

static int
ctl_status_query(sqlite3 *db, int json, struct ctl_status_totals *tot, char **cause)
{
	struct ctl_table t;
	sqlite3_stmt *st;
	char **cell;
	int rc;

	if (ctl_prepare(db, ctl_status_sql, &st, cause) != 0)
		return CTL_ERROR;
	ctl_table_init(&t, ST_NCOLS, ctl_status_heads, "lrrrrrl");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ctl_status_add(tot, st);
		if (json) {
			ctl_print_row_json(st);
			continue;
		}
		ctl_table_add_row(&t, st);
		cell = ctl_table_cell(&t, t.nrows - 1, ST_OLDEST);
		if (*cell != NULL) {
			free(*cell);
			*cell = ctl_human_age(sqlite3_column_double(st, ST_OLDEST));
		}
	}
	if (rc != SQLITE_DONE)
		rc = ctl_sql_error(db, cause);
	else if (!json && t.nrows == 0)
		printf("no sinks yet: outboxd registers its sinks when it starts\n");
	else if (!json)
		ctl_table_print(&t, stdout);
	ctl_table_free(&t);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : CTL_ERROR;
}

static void
ctl_status_print_totals(const struct ctl_status_totals *t)
{
	char *age = t->oldest >= 0 ? ctl_human_age(t->oldest) : xstrdup("-");

	printf("total: %" PRId64 " pending, %" PRId64 " retrying, %" PRId64 " failed; oldest "
	    "undelivered %s\n", t->pending, t->retrying, t->failed, age);
	free(age);
}

/* Unhealthy: any failed event, or (with --max-age) a backlog older than allowed. */
static int
ctl_status_verdict(const struct ctl_status_totals *t, int64_t max_age_ms, int json)
{
	int old = max_age_ms >= 0 && t->oldest * 1000.0 > (double)max_age_ms;

	if (t->failed == 0 && !old)
		return 0;
	if (!json) {
		if (t->failed > 0)
			printf("unhealthy: %" PRId64 " failed event%s (outboxctl ls --state "
			    "failed)\n", t->failed, t->failed == 1 ? "" : "s");
		if (old)
			printf("unhealthy: the oldest undelivered event is older than --max-age\n");
	}
	return CTL_UNHEALTHY;
}

struct ctl_status_args {
	int json;
	int64_t max_age;	/* ms; -1: not given */
};

static int
ctl_status_option(int c, const char *value, void *arg, char **cause)
{
	struct ctl_status_args *a = arg;

	if (c == 'j') {
		a->json = 1;
		return 0;
	}
	return c == 'a' ? ctl_parse_duration("--max-age", value, &a->max_age, cause) : -1;
}

static int
ctl_status(struct ctl *ctl, int argc, char **argv, char **cause)
{
	struct ctl_status_args a = { .max_age = -1 };
	struct ctl_status_totals tot = { .oldest = -1 };
	char *events = NULL;
	int rc, version;
	outbox *ob;

	rc = ctl_parse_options(ctl, argc, argv, ctl_status_option, &a, 0, cause);
	if (rc != 0)
		return rc;
	if ((rc = ctl_open(ctl, OUTBOX_OPEN_EXISTING, &ob, cause)) != 0)
		return rc;
	if ((rc = ctl_user_version(outbox_db(ob), &version, cause)) == 0 && !a.json &&
	    (rc = ctl_status_events(outbox_db(ob), &events, cause)) == 0)
		printf("%s: schema version %d, %s\n", ctl->database, version, events);
	if (rc == 0)
		rc = ctl_status_query(outbox_db(ob), a.json, &tot, cause);
	if (rc == 0 && !a.json && tot.sinks > 0)
		ctl_status_print_totals(&tot);
	if (rc == 0)
		rc = ctl_status_verdict(&tot, a.max_age, a.json);
	free(events);
	outbox_close(ob);
	return rc;
}

static const struct ctl_option ctl_status_options[] = {
	{ 'j', "json", NULL, "one JSON object per sink and line" },
	{ 'a', "max-age", "D", "unhealthy (exit 3) when the oldest undelivered event is older\n"
	  "than D (10m, 2h, 7d); failed events are always unhealthy" },
	{ 0, NULL, NULL, NULL }
};

const struct ctl_entry ctl_status_entry = {
	.name = "status",
	.usage = "[--json] [--max-age DURATION]",
	.summary = "show each sink's cursor, backlog and progress; exit 3 if unhealthy",
	.options = ctl_status_options,
	.exec = ctl_status,
};

/* ---- sinks ------------------------------------------------------------------------------ */

static const char ctl_sinks_sql[] =
    "SELECT name, type, cursor, filter, nullif(prefix, '') AS prefix, "
    "strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1000.0, 'unixepoch') AS created, "
    "strftime('%Y-%m-%dT%H:%M:%fZ', progress_at / 1000.0, 'unixepoch') AS last_progress "
    "FROM outbox_sink ORDER BY name";

static const char *const ctl_sinks_heads[] = {
	"SINK", "TYPE", "CURSOR", "FILTER", "PREFIX", "CREATED", "LAST PROGRESS"
};

static int
ctl_sinks_list(sqlite3 *db, int json, char **cause)
{
	struct ctl_table t;
	sqlite3_stmt *st;
	int rc;

	if (ctl_prepare(db, ctl_sinks_sql, &st, cause) != 0)
		return CTL_ERROR;
	ctl_table_init(&t, 7, ctl_sinks_heads, "llrllll");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (json)
			ctl_print_row_json(st);
		else
			ctl_table_add_row(&t, st);
	}
	if (rc == SQLITE_DONE && !json && t.nrows == 0)
		printf("no sinks yet: outboxd registers its sinks when it starts\n");
	else if (rc == SQLITE_DONE && !json)
		ctl_table_print(&t, stdout);
	ctl_table_free(&t);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : ctl_sql_error(db, cause);
}

/* Ask on the terminal; without one, refuse unless --yes was given. */
static int
ctl_sinks_confirm(const char *sink, char **cause)
{
	char answer[16];

	if (!isatty(STDIN_FILENO)) {
		*cause = xasprintf("not forgetting sink '%s' without confirmation: add --yes", sink);
		return CTL_USAGE;
	}
	fprintf(stderr, "Forget sink '%s', its cursor and its retrying and failed events? If an "
	    "outboxd still runs it, it will start again from the oldest event. [y/N] ", sink);
	if (fgets(answer, sizeof answer, stdin) == NULL ||
	    (strcmp(answer, "y\n") != 0 && strcmp(answer, "yes\n") != 0)) {
		*cause = xasprintf("sink '%s' kept", sink);
		return CTL_ERROR;
	}
	return 0;
}

static int
ctl_sinks_rm(outbox *ob, const char *sink, int yes, char **cause)
{
	struct store *st;
	int64_t retry;
	int rc;

	if ((rc = ctl_sink_exists(outbox_db(ob), sink, cause)) != 0 ||
	    (!yes && (rc = ctl_sinks_confirm(sink, cause)) != 0)) {
		outbox_close(ob);
		return rc;
	}
	if (store_adopt(&st, ob, cause) != 0)
		return CTL_ERROR;
	if ((rc = store_sink_remove(st, sink, &retry, cause)) == 0)
		printf("forgot sink '%s' and its %" PRId64 " retrying or failed event%s\n", sink,
		    retry, retry == 1 ? "" : "s");
	store_close(st);
	return rc == 0 ? 0 : CTL_ERROR;
}

struct ctl_sinks_args {
	int json, yes;
};

static int
ctl_sinks_option(int c, const char *value, void *arg, char **cause)
{
	struct ctl_sinks_args *a = arg;

	(void)value;
	(void)cause;
	if (c == 'j')
		a->json = 1;
	else if (c == 'y')
		a->yes = 1;
	else
		return -1;
	return 0;
}

static int
ctl_sinks(struct ctl *ctl, int argc, char **argv, char **cause)
{
	struct ctl_sinks_args a = { 0 };
	outbox *ob;
	int rc, rm;

	if ((rc = ctl_parse_options(ctl, argc, argv, ctl_sinks_option, &a, 2, cause)) != 0)
		return rc;
	rm = optind < argc && strcmp(argv[optind], "rm") == 0;
	if (optind < argc && !rm) {
		*cause = xasprintf("unknown sinks command '%s' (only 'rm NAME')", argv[optind]);
		return CTL_USAGE;
	}
	if (rm && optind + 1 >= argc) {
		*cause = xasprintf("sinks rm needs the NAME of a sink");
		return CTL_USAGE;
	}
	if (rm && a.json) {
		*cause = xasprintf("--json is for listing sinks, not for rm");
		return CTL_USAGE;
	}
	if ((rc = ctl_open(ctl, OUTBOX_OPEN_EXISTING, &ob, cause)) != 0)
		return rc;
	if (rm)
		return ctl_sinks_rm(ob, argv[optind + 1], a.yes, cause);
	rc = ctl_sinks_list(outbox_db(ob), a.json, cause);
	outbox_close(ob);
	return rc;
}

static const struct ctl_option ctl_sinks_options[] = {
	{ 'j', "json", NULL, "one JSON object per sink and line" },
	{ 'y', "yes", NULL, "rm: do not ask for confirmation" },
	{ 0, NULL, NULL, NULL }
};

const struct ctl_entry ctl_sinks_entry = {
	.name = "sinks",
	.usage = "[--json] | sinks rm NAME [--yes]",
	.summary = "list the sinks recorded in DB, or forget one",
	.options = ctl_sinks_options,
	.exec = ctl_sinks,
};
