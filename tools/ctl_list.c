/*
 * ctl_list.c: outboxctl's read-only views of events: ls (events and their state on each
 * sink), show (one event whole) and tail (envelopes of the newest events, -f to follow
 * commits as the relay would see them). The delivery state comes from the schema's views
 * (outbox_delivery, outbox_backlog), never computed here.
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "envelope.h"
#include "util.h"
#include "wake.h"

#define CTL_ISO8601(ms) "strftime('%Y-%m-%dT%H:%M:%fZ', " ms " / 1000.0, 'unixepoch')"

/* ---- ls --------------------------------------------------------------------------------- */

/* The rows of ls from a view with the columns of outbox_backlog: outbox_delivery (every
 * event on every sink), or outbox_backlog itself for the undelivered states. */
#define CTL_LS_SELECT(view, more) \
    "SELECT seq, id, name, sink, state, attempts, next_attempt, last_error, created " \
    "FROM " view " d WHERE (?1 IS NULL OR sink = ?1) AND (?2 IS NULL OR state = ?2) " \
    "AND (?3 IS NULL OR name GLOB ?3) AND (?4 IS NULL OR created >= " CTL_ISO8601("?4") ") " \
    "AND (?5 IS NULL OR created < " CTL_ISO8601("?5") ")" more

/* The newest ?6 rows of a query, shown oldest first. */
#define CTL_LS_NEWEST(query) \
    "SELECT * FROM (" query " ORDER BY seq DESC, sink DESC LIMIT ?6) ORDER BY seq, sink"

/* Each event on each sink that takes it; an event that none of the sinks listed takes
 * shows as filtered out on each, so that every event shows. */
static const char ctl_ls_sql[] = CTL_LS_NEWEST(CTL_LS_SELECT("outbox_delivery",
    " AND (d.state IS NOT 'filtered out' OR NOT EXISTS (SELECT 1 FROM outbox_delivery w "
    "WHERE w.seq = d.seq AND (?1 IS NULL OR w.sink = ?1) "
    "AND w.state <> 'filtered out'))"));

/* --state pending, retry or failed: the same rows, from the backlog (the cursor and the
 * small retry table find them without reading every event). */
static const char ctl_ls_backlog_sql[] = CTL_LS_NEWEST(CTL_LS_SELECT("outbox_backlog", ""));

static const char *const ctl_ls_heads[] = {
	"SEQ", "ID", "NAME", "SINK", "STATE", "ATTEMPTS", "NEXT ATTEMPT", "LAST ERROR",
	"CREATED"
};
#define CTL_LS_ERROR_COLUMN 7
#define CTL_LS_ERROR_WIDTH  60

enum { CTL_LS_SINCE = CTL_LONG_ONLY(0), CTL_LS_UNTIL = CTL_LONG_ONLY(1) };

struct ctl_ls_args {
	const char *sink, *state, *name;
	int64_t since, until, limit;
	int json;
};

static int
ctl_ls_option(int c, const char *value, void *arg, char **cause)
{
	struct ctl_ls_args *a = arg;
	static const char *const states[] = { "pending", "retry", "failed", "delivered" };
	size_t i;

	switch (c) {
	case 's': a->sink = value; return 0;
	case 'n': a->name = value; return 0;
	case 'j': a->json = 1; return 0;
	case CTL_LS_SINCE: return ctl_parse_time("--since", value, &a->since, cause);
	case CTL_LS_UNTIL: return ctl_parse_time("--until", value, &a->until, cause);
	case 'l': return ctl_parse_count("--limit", value, 0, INT64_MAX, &a->limit, cause);
	case 'S':
		for (i = 0; i < sizeof states / sizeof states[0]; i++) {
			if (strcmp(value, states[i]) == 0) {
				a->state = states[i];
				return 0;
			}
		}
		*cause = xasprintf("--state: expected pending, retry, failed or delivered, got "
		    "\"%s\"", value);
		return CTL_USAGE;
	default:
		return -1;
	}
}

/* Long errors are cut in the table (--json has them whole). */
static void
ctl_ls_shorten(char **cell)
{
	char *s = *cell;

	if (s == NULL || strlen(s) <= CTL_LS_ERROR_WIDTH)
		return;
	*cell = xasprintf("%.*s...", CTL_LS_ERROR_WIDTH - 3, s);
	free(s);
}

static int
ctl_ls_query(sqlite3 *db, const struct ctl_ls_args *a, char **cause)
{
	struct ctl_table t;
	sqlite3_stmt *st;
	int rc;

	if (ctl_prepare(db, a->state != NULL && strcmp(a->state, "delivered") != 0 ?
	    ctl_ls_backlog_sql : ctl_ls_sql, &st, cause) != 0)
		return CTL_ERROR;
	sqlite3_bind_text(st, 1, a->sink, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, a->name, -1, SQLITE_STATIC);
	if (a->since != INT64_MIN)
		sqlite3_bind_int64(st, 4, a->since);
	if (a->until != INT64_MAX)
		sqlite3_bind_int64(st, 5, a->until);
	sqlite3_bind_int64(st, 6, a->limit == 0 ? -1 : a->limit);
	ctl_table_init(&t, 9, ctl_ls_heads, "rllllrlll");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (a->json) {
			ctl_print_row_json(st);
			continue;
		}
		ctl_table_add_row(&t, st);
		ctl_ls_shorten(ctl_table_cell(&t, t.nrows - 1, CTL_LS_ERROR_COLUMN));
	}
	if (rc == SQLITE_DONE && !a->json && t.nrows > 0)
		ctl_table_print(&t, stdout);
	else if (rc == SQLITE_DONE && !a->json)
		printf("no events\n");
	ctl_table_free(&t);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : ctl_sql_error(db, cause);
}

static int
ctl_ls(struct ctl *ctl, int argc, char **argv, char **cause)
{
	struct ctl_ls_args a = { .since = INT64_MIN, .until = INT64_MAX, .limit = 100 };
	outbox *ob;
	int rc;

	if ((rc = ctl_parse_options(ctl, argc, argv, ctl_ls_option, &a, 0, cause)) != 0)
		return rc;
	if ((rc = ctl_open(ctl, OUTBOX_OPEN_EXISTING, &ob, cause)) != 0)
		return rc;
	if ((rc = ctl_sink_exists(outbox_db(ob), a.sink, cause)) == 0)
		rc = ctl_ls_query(outbox_db(ob), &a, cause);
	outbox_close(ob);
	return rc;
}

static const struct ctl_option ctl_ls_options[] = {
	{ 's', "sink", "S", "only this sink" },
	{ 'S', "state", "STATE", "pending, retry, failed or delivered" },
	{ 'n', "name", "GLOB", "events whose name matches" },
	{ CTL_LS_SINCE, "since", "TIME",
	  "events created at or after TIME (ISO 8601, or 10m, 2h, 7d ago)" },
	{ CTL_LS_UNTIL, "until", "TIME", "events created before TIME" },
	{ 'l', "limit", "N", "the newest N rows (default 100; 0: all)" },
	{ 'j', "json", NULL, "one JSON object per row and line" },
	{ 0, NULL, NULL, NULL }
};

const struct ctl_entry ctl_ls_entry = {
	.name = "ls",
	.usage = "[--sink S] [--state STATE] [--name GLOB] [--since TIME] [--limit N] [--json]",
	.summary = "list events and their state on each sink, newest last",
	.options = ctl_ls_options,
	.exec = ctl_ls,
};

/* ---- show ------------------------------------------------------------------------------- */

static const char ctl_show_event_sql[] =
    "SELECT seq, id, name, key, " CTL_ISO8601("created_at") " AS created, "
    "json(headers) AS headers, json(payload) AS payload FROM outbox WHERE seq = ?1";

static const char ctl_show_sinks_sql[] =
    "SELECT sink, state, attempts, next_attempt, last_error, updated FROM outbox_delivery "
    "WHERE seq = ?1 AND sink IS NOT NULL ORDER BY sink";

static const char *const ctl_show_heads[] = {
	"SINK", "STATE", "ATTEMPTS", "NEXT ATTEMPT", "LAST ERROR", "UPDATED"
};

/* cJSON_Print indents with tabs and puts one after each colon: print two spaces a
 * level, one space after a colon, and every line indented under its label. */
static void
ctl_show_pretty(const char *label, const char *json)
{
	cJSON *v = cJSON_Parse(json);
	char *text = v != NULL ? cJSON_Print(v) : NULL;
	const char *p;

	printf("%s\n  ", label);
	for (p = text != NULL ? text : json; *p != '\0'; p++) {
		if (*p == '\t')
			fputs(p > text && p[-1] == ':' ? " " : "  ", stdout);
		else if (*p == '\n')
			fputs("\n  ", stdout);
		else
			putchar(*p);
	}
	putchar('\n');
	cJSON_free(text);
	cJSON_Delete(v);
}

static void
ctl_show_text(sqlite3_stmt *ev, struct ctl_table *sinks)
{
	static const char *const labels[] = { "seq:", "id:", "name:", "key:", "created:" };
	int i;

	for (i = 0; i < 5; i++) {
		const char *v = (const char *)sqlite3_column_text(ev, i);

		printf("%-9s%s\n", labels[i], v != NULL ? v : "-");
	}
	if (sqlite3_column_type(ev, 5) != SQLITE_NULL)
		ctl_show_pretty("headers:", (const char *)sqlite3_column_text(ev, 5));
	ctl_show_pretty("payload:", (const char *)sqlite3_column_text(ev, 6));
	if (sinks->nrows == 0) {
		printf("sinks:   none yet (outboxd registers its sinks when it starts)\n");
		return;
	}
	printf("sinks:\n");
	ctl_table_print(sinks, stdout);
}

/* The event as one JSON object: headers and payload as JSON values, sinks as an array. */
static void
ctl_show_json(sqlite3_stmt *ev, sqlite3_stmt *sinks)
{
	cJSON *o = ctl_row_object(ev), *arr = cJSON_AddArrayToObject(o, "sinks");
	char *line;
	int i;

	for (i = 5; i <= 6; i++) {
		const char *text = (const char *)sqlite3_column_text(ev, i);

		if (text != NULL)
			cJSON_ReplaceItemInObjectCaseSensitive(o, sqlite3_column_name(ev, i),
			    cJSON_Parse(text));
	}
	while (sqlite3_step(sinks) == SQLITE_ROW)
		cJSON_AddItemToArray(arr, ctl_row_object(sinks));
	line = ctl_json_line(o);
	printf("%s\n", line);
	cJSON_free(line);
}

static int
ctl_show_event(sqlite3 *db, int64_t seq, int json, char **cause)
{
	sqlite3_stmt *ev = NULL, *sinks = NULL;
	struct ctl_table t;
	int rc;

	if (ctl_prepare(db, ctl_show_event_sql, &ev, cause) != 0 ||
	    ctl_prepare(db, ctl_show_sinks_sql, &sinks, cause) != 0) {
		sqlite3_finalize(ev);
		return CTL_ERROR;
	}
	sqlite3_bind_int64(ev, 1, seq);
	sqlite3_bind_int64(sinks, 1, seq);
	ctl_table_init(&t, 6, ctl_show_heads, "llrlll");
	if ((rc = sqlite3_step(ev)) == SQLITE_ROW) {
		if (json) {
			ctl_show_json(ev, sinks);
		} else {
			while (sqlite3_step(sinks) == SQLITE_ROW)
				ctl_table_add_row(&t, sinks);
			ctl_show_text(ev, &t);
		}
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		*cause = xasprintf("no event with seq %" PRId64, seq);
		rc = CTL_ERROR;
	} else {
		rc = ctl_sql_error(db, cause);
	}
	ctl_table_free(&t);
	sqlite3_finalize(ev);
	sqlite3_finalize(sinks);
	return rc;
}

static int
ctl_show(struct ctl *ctl, int argc, char **argv, char **cause)
{
	int rc, json = 0;
	int64_t seq;
	outbox *ob;

	if ((rc = ctl_parse_options(ctl, argc, argv, ctl_json_option, &json, 1, cause)) != 0)
		return rc;
	if (optind >= argc) {
		*cause = xasprintf("show needs the ID or SEQ of an event");
		return CTL_USAGE;
	}
	if ((rc = ctl_open(ctl, OUTBOX_OPEN_EXISTING, &ob, cause)) != 0)
		return rc;
	rc = ctl_event_seq(outbox_db(ob), argv[optind], &seq, cause);
	if (rc == 1) {
		*cause = xasprintf("no event with id or seq '%s'", argv[optind]);
		rc = CTL_ERROR;
	} else if (rc == 0) {
		rc = ctl_show_event(outbox_db(ob), seq, json, cause);
	}
	outbox_close(ob);
	return rc;
}

static const struct ctl_option ctl_show_options[] = {
	{ 'j', "json", NULL, "one JSON object" },
	{ 0, NULL, NULL, NULL }
};

const struct ctl_entry ctl_show_entry = {
	.name = "show",
	.usage = "ID|SEQ [--json]",
	.summary = "show one event whole and its state on every sink",
	.options = ctl_show_options,
	.exec = ctl_show,
};

/* ---- tail ------------------------------------------------------------------------------- */

/* Events after ?1 (with --name, matching ?2), in seq order, a page at a time. */
static const char ctl_tail_sql[] =
    "SELECT seq, id, name, json(payload), json(headers) FROM outbox "
    "WHERE seq > ?1 AND (?2 IS NULL OR name GLOB ?2) ORDER BY seq LIMIT 1000";

/* The seq after which the last n events (matching glob) start. */
static const char ctl_tail_start_sql[] =
    "SELECT coalesce(min(seq) - 1, (SELECT coalesce(max(seq), 0) FROM outbox)) FROM "
    "(SELECT seq FROM outbox WHERE ?2 IS NULL OR name GLOB ?2 ORDER BY seq DESC LIMIT ?1)";

/* Print the envelopes of the events after *after; move *after on. *n: how many. */
static int
ctl_tail_print(sqlite3 *db, sqlite3_stmt *st, int64_t *after, int *n, char **cause)
{
	int rc;

	*n = 0;
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, *after);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		size_t len;
		char *line = envelope_build((const char *)sqlite3_column_text(st, 1),
		    (const char *)sqlite3_column_text(st, 2),
		    (const char *)sqlite3_column_text(st, 3),
		    (const char *)sqlite3_column_text(st, 4), &len);

		if (line == NULL)
			ctl_out_of_memory();
		fwrite(line, 1, len, stdout);
		putchar('\n');
		free(line);
		*after = sqlite3_column_int64(st, 0);
		(*n)++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return ctl_sql_error(db, cause);
	return fflush(stdout) == 0 ? 0 : CTL_ERROR;
}

static int
ctl_tail_start(sqlite3 *db, int64_t lines, const char *glob, int64_t *after, char **cause)
{
	sqlite3_stmt *st;
	int rc;

	if (ctl_prepare(db, ctl_tail_start_sql, &st, cause) != 0)
		return CTL_ERROR;
	sqlite3_bind_int64(st, 1, lines);
	sqlite3_bind_text(st, 2, glob, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*after = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : ctl_sql_error(db, cause);
}

/*
 * Print pages until the backlog is out, then (with follow) sleep until the database
 * changes. A change can show before its commit is visible (see wake.h), so a wake-up that
 * finds nothing is followed by a few quick re-checks.
 */
static int
ctl_tail_run(struct ctl *ctl, sqlite3 *db, sqlite3_stmt *st, int64_t after, int follow,
    char **cause)
{
	struct wake *w = NULL;
	int rc, n, rechecks = 0;

	while ((rc = ctl_tail_print(db, st, &after, &n, cause)) == 0) {
		if (n > 0)
			continue;
		if (!follow)
			break;
		if (w == NULL)
			w = wake_open(ctl->database, -1);
		if (wake_wait(w, rechecks > 0 ? 1000 : 250000))
			rechecks = 8;
		else if (rechecks > 0)
			rechecks--;
	}
	if (rc != 0 && *cause == NULL)
		*cause = xasprintf("cannot write the output");
	wake_close(w);
	return rc;
}

enum { CTL_TAIL_NAME = CTL_LONG_ONLY(0) };

struct ctl_tail_args {
	int follow;
	int64_t lines;
	const char *glob;
};

static int
ctl_tail_option(int c, const char *value, void *arg, char **cause)
{
	struct ctl_tail_args *a = arg;

	switch (c) {
	case 'f': a->follow = 1; return 0;
	case CTL_TAIL_NAME: a->glob = value; return 0;
	case 'n': return ctl_parse_count("--lines", value, 0, INT64_MAX, &a->lines, cause);
	default: return -1;
	}
}

static int
ctl_tail(struct ctl *ctl, int argc, char **argv, char **cause)
{
	struct ctl_tail_args a = { .lines = 10 };
	sqlite3_stmt *st;
	int64_t after;
	outbox *ob;
	int rc;

	if ((rc = ctl_parse_options(ctl, argc, argv, ctl_tail_option, &a, 0, cause)) != 0)
		return rc;
	if ((rc = ctl_open(ctl, OUTBOX_OPEN_EXISTING, &ob, cause)) != 0)
		return rc;
	if ((rc = ctl_tail_start(outbox_db(ob), a.lines, a.glob, &after, cause)) == 0 &&
	    (rc = ctl_prepare(outbox_db(ob), ctl_tail_sql, &st, cause)) == 0) {
		sqlite3_bind_text(st, 2, a.glob, -1, SQLITE_STATIC);
		rc = ctl_tail_run(ctl, outbox_db(ob), st, after, a.follow, cause);
		sqlite3_finalize(st);
	}
	outbox_close(ob);
	return rc;
}

static const struct ctl_option ctl_tail_options[] = {
	{ 'f', "follow", NULL,
	  "keep printing events as they are committed (until interrupted)" },
	{ 'n', "lines", "N", "start with the last N events (default 10)" },
	{ CTL_TAIL_NAME, "name", "GLOB", "only events whose name matches" },
	{ 0, NULL, NULL, NULL }
};

const struct ctl_entry ctl_tail_entry = {
	.name = "tail",
	.usage = "[-f] [-n N] [--name GLOB]",
	.summary = "print the newest events as envelopes (JSON lines); -f: and new ones as they "
	    "commit",
	.options = ctl_tail_options,
	.exec = ctl_tail,
};
