/*
 * outboxctl.c: the outbox administration tool. Owns the command line (global options, the
 * table of subcommands, per-command usage) and each subcommand's work on the database
 * through liboutbox.
 *
 * Exit status: 0 success, 1 a runtime error (the database or the library refused), 2 a
 * usage error. Errors are one line "outboxctl: <what is wrong>" on stderr; usage errors add
 * a "usage: ..." line for the command at fault.
 */
#include "config.h"

#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "outbox.h"
#include "util.h"

#define CTL_EXIT_OK	0
#define CTL_EXIT_ERROR	1
#define CTL_EXIT_USAGE	2

/* Command results besides 0: -1 a runtime error, -2 a usage error, both with a cause. */
#define CTL_ERROR	(-1)
#define CTL_USAGE	(-2)

struct ctl {
	const char *database;
};

struct ctl_command {
	const char *name;
	const char *args;	/* synopsis after the command name */
	const char *summary;
	const char *options;	/* option help lines, or NULL */
	int (*exec)(struct ctl *, int, char **, char **);
};

static int ctl_init(struct ctl *, int, char **, char **);
static int ctl_enqueue(struct ctl *, int, char **, char **);
static int ctl_status(struct ctl *, int, char **, char **);
static int ctl_replay(struct ctl *, int, char **, char **);
static int ctl_help(struct ctl *, int, char **, char **);

static const struct ctl_command ctl_commands[] = {
	{ "init", "", "create or migrate the outbox schema in DB (creating the file)", NULL,
	  ctl_init },
	{ "enqueue", "NAME JSON [--key K] [--header K=V]... [--id ID] [--uuid7]",
	  "add one event and print its id",
	  "  -k, --key K         ordering key: events with the same key stay in order\n"
	  "  -H, --header K=V    a header (a string); repeat for more\n"
	  "  -i, --id ID         the event's id (idempotent enqueue) instead of a fresh one\n"
	  "  -7, --uuid7         generate a time-ordered UUID v7 instead of a UUID v4\n",
	  ctl_enqueue },
	{ "status", "[--json]", "show each sink's cursor, backlog and progress",
	  "  -j, --json          one JSON object per sink and line\n",
	  ctl_status },
	{ "replay", "(--failed | --id ID | --name GLOB | --from-seq N)... [--sink S] [--dry-run]",
	  "put events back in line for a sink (safe while outboxd runs)",
	  "  -f, --failed        the events that failed (state 'failed')\n"
	  "  -i, --id ID         this event, even if it was delivered\n"
	  "  -n, --name GLOB     retrying or failed events whose name matches\n"
	  "  -F, --from-seq N    rewind the cursor: deliver again every event from seq N\n"
	  "  -s, --sink S        only this sink (default: every sink)\n"
	  "  -D, --dry-run       print what would be replayed and change nothing\n",
	  ctl_replay },
	{ "help", "[COMMAND]", "show help for all commands or one", NULL, ctl_help },
};
#define CTL_NCOMMANDS (sizeof ctl_commands / sizeof ctl_commands[0])

static const struct ctl_command *ctl_current;

/* ---- usage and errors ------------------------------------------------------------------- */

static void
ctl_usage_line(FILE *f, const struct ctl_command *cmd)
{
	if (cmd == NULL)
		fprintf(f, "usage: outboxctl [-d DB] COMMAND [ARGS]   (outboxctl --help lists "
		    "the commands)\n");
	else
		fprintf(f, "usage: outboxctl [-d DB] %s%s%s\n", cmd->name, *cmd->args != '\0' ?
		    " " : "", cmd->args);
}

static void
ctl_usage_full(FILE *f)
{
	const struct ctl_command *cmd;
	char left[64];
	size_t i;

	fprintf(f, "usage: outboxctl [-d DB] COMMAND [ARGS]\n\n"
	    "Operate the SQLite transactional outbox of outboxd.\n\nCommands:\n");
	for (i = 0; i < CTL_NCOMMANDS; i++) {
		cmd = &ctl_commands[i];
		snprintf(left, sizeof left, "%s%s%s", cmd->name, *cmd->args != '\0' ? " " : "",
		    strcmp(cmd->name, "enqueue") == 0 ? "NAME JSON [OPTIONS]" : cmd->args);
		fprintf(f, "  %-29s %s\n", left, cmd->summary);
	}
	fprintf(f, "\nOptions:\n"
	    "  -d, --database DB             the outbox database (default: $OUTBOX_DATABASE)\n"
	    "  -h, --help                    show this help (COMMAND --help: that command's)\n"
	    "      --version                 show the version\n\n"
	    "Exit status: 0 success, 1 error, 2 usage error.\n");
}

static void
ctl_usage_command(FILE *f, const struct ctl_command *cmd)
{
	ctl_usage_line(f, cmd);
	fprintf(f, "\n%c%s.\n", toupper((unsigned char)cmd->summary[0]), cmd->summary + 1);
	if (cmd->options != NULL)
		fprintf(f, "\nOptions:\n%s", cmd->options);
}

/* Report a command's result and turn it into an exit status. */
static int
ctl_finish(int rc, char *cause)
{
	int status = CTL_EXIT_OK;

	if (rc == CTL_USAGE) {
		fprintf(stderr, "outboxctl: %s\n", cause);
		ctl_usage_line(stderr, ctl_current);
		status = CTL_EXIT_USAGE;
	} else if (rc != 0) {
		fprintf(stderr, "outboxctl: %s\n", cause != NULL ? cause : "failed");
		status = CTL_EXIT_ERROR;
	}
	free(cause);
	return status;
}

/* getopt's complaint as a cause; opterr is off so getopt itself prints nothing. */
static int
ctl_bad_option(int c, int argc, char **argv, char **cause)
{
	const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
	size_t len = strcspn(arg, "=");

	if (c == ':')
		*cause = xasprintf("option '%.*s' needs an argument", (int)len, arg);
	else if (optopt != 0 && strncmp(arg, "--", 2) != 0)
		*cause = xasprintf("unknown option '-%c'", optopt);
	else
		*cause = xasprintf("unknown option '%.*s'", (int)len, arg);
	return CTL_USAGE;
}

/* ---- the database ----------------------------------------------------------------------- */

static int
ctl_open(struct ctl *ctl, int flags, outbox **ob, char **cause)
{
	if (ctl->database == NULL) {
		*cause = xasprintf("no database: use -d DB or set OUTBOX_DATABASE");
		return CTL_USAGE;
	}
	if (outbox_open(ctl->database, flags, ob) != OUTBOX_OK) {
		*cause = xasprintf("%s", outbox_errmsg(*ob));
		outbox_close(*ob);
		*ob = NULL;
		return CTL_ERROR;
	}
	return 0;
}

static int
ctl_user_version(sqlite3 *db, int *version, char **cause)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
		*cause = xasprintf("cannot read the schema version: %s", sqlite3_errmsg(db));
		return CTL_ERROR;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version = sqlite3_column_int(st, 0);
	else
		*cause = xasprintf("cannot read the schema version: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : CTL_ERROR;
}

/* ---- init ------------------------------------------------------------------------------- */

/* For commands that take no options but --help and no arguments. 1: help shown. */
static int
ctl_no_arguments(int argc, char **argv, char **cause)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c != 'h')
			return ctl_bad_option(c, argc, argv, cause);
		ctl_usage_command(stdout, ctl_current);
		return 1;
	}
	if (optind < argc) {
		*cause = xasprintf("unexpected argument '%s'", argv[optind]);
		return CTL_USAGE;
	}
	return 0;
}

static int
ctl_init(struct ctl *ctl, int argc, char **argv, char **cause)
{
	outbox *ob;
	int rc, version;

	if ((rc = ctl_no_arguments(argc, argv, cause)) != 0)
		return rc == 1 ? 0 : rc;
	if ((rc = ctl_open(ctl, OUTBOX_OPEN_CREATE, &ob, cause)) != 0)
		return rc;
	rc = ctl_user_version(outbox_db(ob), &version, cause);
	if (rc == 0)
		printf("initialised %s (schema version %d)\n", ctl->database, version);
	outbox_close(ob);
	return rc;
}

/* ---- enqueue ---------------------------------------------------------------------------- */

/* Add "K=V" to the headers object; a usage error if it is not K=V or K repeats. */
static int
ctl_add_header(cJSON *headers, const char *arg, char **cause)
{
	const char *eq = strchr(arg, '=');
	char *key;
	int rc = 0;

	if (eq == NULL || eq == arg) {
		*cause = xasprintf("--header '%s' is not KEY=VALUE", arg);
		return CTL_USAGE;
	}
	key = xasprintf("%.*s", (int)(eq - arg), arg);
	if (cJSON_GetObjectItemCaseSensitive(headers, key) != NULL) {
		*cause = xasprintf("--header '%s' given twice", key);
		rc = CTL_USAGE;
	} else if (cJSON_AddStringToObject(headers, key, eq + 1) == NULL) {
		*cause = xasprintf("out of memory");
		rc = CTL_ERROR;
	}
	free(key);
	return rc;
}

struct ctl_enqueue_args {
	struct outbox_event ev;
	cJSON *headers;
	int uuid7;
};

static int
ctl_enqueue_parse(int argc, char **argv, struct ctl_enqueue_args *a, char **cause)
{
	static const struct option longopts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "header", required_argument, NULL, 'H' },
		{ "id", required_argument, NULL, 'i' },
		{ "uuid7", no_argument, NULL, '7' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c, rc;

	while ((c = getopt_long(argc, argv, ":k:H:i:7h", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
			a->ev.key = optarg;
			break;
		case 'H':
			if ((rc = ctl_add_header(a->headers, optarg, cause)) != 0)
				return rc;
			break;
		case 'i':
			a->ev.id = optarg;
			break;
		case '7':
			a->uuid7 = 1;
			break;
		case 'h':
			ctl_usage_command(stdout, ctl_current);
			return 1;
		default:
			return ctl_bad_option(c, argc, argv, cause);
		}
	}
	if (argc - optind < 2) {
		*cause = xasprintf("enqueue needs an event NAME and a JSON payload");
		return CTL_USAGE;
	}
	if (argc - optind > 2) {
		*cause = xasprintf("unexpected argument '%s'", argv[optind + 2]);
		return CTL_USAGE;
	}
	if (a->uuid7 && a->ev.id != NULL) {
		*cause = xasprintf("--id and --uuid7 cannot be used together");
		return CTL_USAGE;
	}
	a->ev.name = argv[optind];
	a->ev.payload = argv[optind + 1];
	return 0;
}

static int
ctl_enqueue_run(struct ctl *ctl, struct ctl_enqueue_args *a, char **cause)
{
	char *headers = NULL;
	const char *id;
	outbox *ob;
	int rc;

	if (a->headers->child != NULL &&
	    (headers = cJSON_PrintUnformatted(a->headers)) == NULL) {
		*cause = xasprintf("out of memory");
		return CTL_ERROR;
	}
	a->ev.headers = headers;
	if ((rc = ctl_open(ctl, 0, &ob, cause)) == 0) {
		if (a->uuid7)
			outbox_set_id_format(ob, OUTBOX_ID_UUID7);
		if (outbox_enqueue_event(ob, &a->ev, &id) == OUTBOX_OK)
			printf("%s\n", id);
		else {
			*cause = xasprintf("%s", outbox_errmsg(ob));
			rc = CTL_ERROR;
		}
		outbox_close(ob);
	}
	cJSON_free(headers);
	return rc;
}

static int
ctl_enqueue(struct ctl *ctl, int argc, char **argv, char **cause)
{
	struct ctl_enqueue_args a = { .uuid7 = 0 };
	int rc;

	if ((a.headers = cJSON_CreateObject()) == NULL) {
		*cause = xasprintf("out of memory");
		return CTL_ERROR;
	}
	rc = ctl_enqueue_parse(argc, argv, &a, cause);
	if (rc == 0)
		rc = ctl_enqueue_run(ctl, &a, cause);
	else if (rc == 1)
		rc = 0;
	cJSON_Delete(a.headers);
	return rc;
}

/* ---- status ----------------------------------------------------------------------------- */

#define CTL_STATUS_COLUMNS 7

static const char ctl_status_sql[] =
    "SELECT sink, cursor, pending, retrying, failed, oldest_age_s, last_progress "
    "FROM outbox_status ORDER BY sink";

static const char *ctl_status_names[CTL_STATUS_COLUMNS] = {
	"sink", "cursor", "pending", "retrying", "failed", "oldest_age_s", "last_progress"
};

static const char *ctl_status_heads[CTL_STATUS_COLUMNS] = {
	"SINK", "CURSOR", "PENDING", "RETRYING", "FAILED", "OLDEST", "LAST PROGRESS"
};

/* An age in seconds as people say it: 850ms, 42s, 3m05s, 2h10m, 4d03h. */
static char *
ctl_human_age(double secs)
{
	int64_t s;

	if (secs < 0)
		secs = 0;
	if (secs < 1)
		return xasprintf("%dms", (int)(secs * 1000));
	s = (int64_t)secs;
	if (s < 60)
		return xasprintf("%" PRId64 "s", s);
	if (s < 3600)
		return xasprintf("%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	if (s < 86400)
		return xasprintf("%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
	return xasprintf("%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
}

/* One status row as display cells (malloc'd). */
static void
ctl_status_cells(sqlite3_stmt *st, char **cells)
{
	int i;

	for (i = 0; i < CTL_STATUS_COLUMNS; i++) {
		if (sqlite3_column_type(st, i) == SQLITE_NULL)
			cells[i] = xstrdup("-");
		else if (i == 5)
			cells[i] = ctl_human_age(sqlite3_column_double(st, i));
		else
			cells[i] = xstrdup((const char *)sqlite3_column_text(st, i));
	}
}

static char *
ctl_status_json(sqlite3_stmt *st)
{
	cJSON *o = cJSON_CreateObject();
	char *line;
	int i;

	for (i = 0; i < CTL_STATUS_COLUMNS; i++) {
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_NULL:
			cJSON_AddNullToObject(o, ctl_status_names[i]);
			break;
		case SQLITE_INTEGER:
		case SQLITE_FLOAT:
			cJSON_AddNumberToObject(o, ctl_status_names[i], sqlite3_column_double(st, i));
			break;
		default:
			cJSON_AddStringToObject(o, ctl_status_names[i],
			    (const char *)sqlite3_column_text(st, i));
			break;
		}
	}
	line = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return line;
}

/* Print rows of cells aligned: text left, numbers right. */
static void
ctl_status_table(char **cells, size_t nrows)
{
	size_t width[CTL_STATUS_COLUMNS], r;
	int i;

	for (i = 0; i < CTL_STATUS_COLUMNS; i++)
		width[i] = strlen(ctl_status_heads[i]);
	for (r = 0; r < nrows; r++) {
		for (i = 0; i < CTL_STATUS_COLUMNS; i++) {
			if (strlen(cells[r * CTL_STATUS_COLUMNS + i]) > width[i])
				width[i] = strlen(cells[r * CTL_STATUS_COLUMNS + i]);
		}
	}
	for (r = 0; r <= nrows; r++) {
		for (i = 0; i < CTL_STATUS_COLUMNS; i++) {
			const char *s = r == 0 ? ctl_status_heads[i] :
			    cells[(r - 1) * CTL_STATUS_COLUMNS + i];
			int left = i == 0 || i == CTL_STATUS_COLUMNS - 1;

			if (i == CTL_STATUS_COLUMNS - 1)
				printf("%s\n", s);
			else
				printf(left ? "%-*s  " : "%*s  ", (int)width[i], s);
		}
	}
}

static int
ctl_status_query(sqlite3 *db, int json, char **cause)
{
	sqlite3_stmt *st;
	char **cells = NULL, *line;
	size_t nrows = 0, r;
	int rc, i;

	if (sqlite3_prepare_v2(db, ctl_status_sql, -1, &st, NULL) != SQLITE_OK) {
		*cause = xasprintf("cannot read outbox_status: %s", sqlite3_errmsg(db));
		return CTL_ERROR;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (json) {
			if ((line = ctl_status_json(st)) != NULL)
				printf("%s\n", line);
			cJSON_free(line);
			continue;
		}
		cells = realloc(cells, (nrows + 1) * CTL_STATUS_COLUMNS * sizeof *cells);
		if (cells == NULL) {
			fputs("outboxctl: out of memory\n", stderr);
			abort();
		}
		ctl_status_cells(st, cells + nrows++ * CTL_STATUS_COLUMNS);
	}
	if (rc != SQLITE_DONE)
		*cause = xasprintf("cannot read outbox_status: %s", sqlite3_errmsg(db));
	else if (!json && nrows == 0)
		printf("no sinks yet: outboxd registers its sinks when it starts\n");
	else if (!json)
		ctl_status_table(cells, nrows);
	for (r = 0; r < nrows; r++) {
		for (i = 0; i < CTL_STATUS_COLUMNS; i++)
			free(cells[r * CTL_STATUS_COLUMNS + i]);
	}
	free(cells);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : CTL_ERROR;
}

static int
ctl_status(struct ctl *ctl, int argc, char **argv, char **cause)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	outbox *ob;
	int c, rc, json = 0, version;

	while ((c = getopt_long(argc, argv, ":jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'h':
			ctl_usage_command(stdout, ctl_current);
			return 0;
		default:
			return ctl_bad_option(c, argc, argv, cause);
		}
	}
	if (optind < argc) {
		*cause = xasprintf("unexpected argument '%s'", argv[optind]);
		return CTL_USAGE;
	}
	if ((rc = ctl_open(ctl, OUTBOX_OPEN_EXISTING, &ob, cause)) != 0)
		return rc;
	rc = ctl_user_version(outbox_db(ob), &version, cause);
	if (rc == 0 && !json)
		printf("%s: schema version %d\n", ctl->database, version);
	if (rc == 0)
		rc = ctl_status_query(outbox_db(ob), json, cause);
	outbox_close(ob);
	return rc;
}

/* ---- replay ----------------------------------------------------------------------------- */

struct ctl_replay_args {
	int failed;
	const char *id;
	const char *name;
	int64_t from_seq;        /* 0: not given */
	const char *sink;
	int dry_run;
};

/* Does the event o pass the filter of sink s? The same test as the views'. */
#define CTL_FILTER_MATCH \
	"(s.filter IS NULL OR EXISTS (SELECT 1 FROM json_each(s.filter) f " \
	"WHERE o.name GLOB f.value OR s.prefix || o.name GLOB f.value))"

/* Retry rows chosen by --failed/--name/--id, and delivered events chosen by --id. */
static const char ctl_replay_select[] =
    "SELECT r.sink, o.seq, o.id, o.name, r.state FROM outbox_retry r "
    "JOIN outbox o ON o.seq = r.seq "
    "WHERE (?1 IS NULL OR r.sink = ?1) AND (?2 = 0 OR r.state = 'failed') "
    "AND (?3 IS NULL OR o.id = ?3) AND (?4 IS NULL OR o.name GLOB ?4) "
    "AND (?2 OR ?3 IS NOT NULL OR ?4 IS NOT NULL) "
    "UNION ALL "
    "SELECT s.name, o.seq, o.id, o.name, 'delivered' FROM outbox_sink s "
    "JOIN outbox o ON o.id = ?3 "
    "WHERE (?1 IS NULL OR s.name = ?1) AND o.seq <= s.cursor AND " CTL_FILTER_MATCH " "
    "AND NOT EXISTS (SELECT 1 FROM outbox_retry r WHERE r.sink = s.name AND r.seq = o.seq) "
    "ORDER BY 2, 1";

static const char ctl_replay_retry[] =
    "INSERT INTO outbox_retry(sink, seq, state, attempts, next_attempt_at, last_error, "
    "updated_at) VALUES (?1, ?2, 'retry', 0, 0, NULL, "
    "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)) "
    "ON CONFLICT(sink, seq) DO UPDATE SET state = 'retry', attempts = 0, "
    "next_attempt_at = 0, last_error = NULL, updated_at = excluded.updated_at";

static const char ctl_replay_rewind[] =
    "UPDATE outbox_sink SET cursor = ?2 WHERE (?1 IS NULL OR name = ?1) AND cursor > ?2";

static int
ctl_replay_parse(int argc, char **argv, struct ctl_replay_args *a, char **cause)
{
	static const struct option longopts[] = {
		{ "failed", no_argument, NULL, 'f' },
		{ "id", required_argument, NULL, 'i' },
		{ "name", required_argument, NULL, 'n' },
		{ "from-seq", required_argument, NULL, 'F' },
		{ "sink", required_argument, NULL, 's' },
		{ "dry-run", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char *why = NULL;
	int c;

	while ((c = getopt_long(argc, argv, ":fi:n:F:s:Dh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': a->failed = 1; break;
		case 'i': a->id = optarg; break;
		case 'n': a->name = optarg; break;
		case 's': a->sink = optarg; break;
		case 'D': a->dry_run = 1; break;
		case 'F':
			if (util_parse_int(optarg, 1, INT64_MAX, &a->from_seq, &why) != 0) {
				*cause = xasprintf("--from-seq: %s", why);
				free(why);
				return CTL_USAGE;
			}
			break;
		case 'h':
			ctl_usage_command(stdout, ctl_current);
			return 1;
		default:
			return ctl_bad_option(c, argc, argv, cause);
		}
	}
	if (optind < argc) {
		*cause = xasprintf("unexpected argument '%s'", argv[optind]);
		return CTL_USAGE;
	}
	if (!a->failed && a->id == NULL && a->name == NULL && a->from_seq == 0) {
		*cause = xasprintf("say what to replay: --failed, --id, --name or --from-seq");
		return CTL_USAGE;
	}
	return 0;
}

static int
ctl_sql_error(sqlite3 *db, char **cause)
{
	*cause = xasprintf("%s", sqlite3_errmsg(db));
	return CTL_ERROR;
}

/* Replay the rows chosen by --failed/--id/--name; *n says how many. */
static int
ctl_replay_events(sqlite3 *db, const struct ctl_replay_args *a, int64_t *n, char **cause)
{
	sqlite3_stmt *sel = NULL, *upd = NULL;
	int rc;

	*n = 0;
	if (sqlite3_prepare_v2(db, ctl_replay_select, -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, ctl_replay_retry, -1, &upd, NULL) != SQLITE_OK) {
		rc = ctl_sql_error(db, cause);
		goto out;
	}
	sqlite3_bind_text(sel, 1, a->sink, -1, SQLITE_STATIC);
	sqlite3_bind_int(sel, 2, a->failed);
	sqlite3_bind_text(sel, 3, a->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(sel, 4, a->name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		(*n)++;
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
			goto out;
		}
		sqlite3_reset(upd);
	}
	rc = rc == SQLITE_DONE ? 0 : ctl_sql_error(db, cause);
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	return rc;
}

static int
ctl_replay_cursor(sqlite3 *db, const struct ctl_replay_args *a, int64_t *n, char **cause)
{
	sqlite3_stmt *st;
	int rc;

	*n = 0;
	if (a->from_seq == 0)
		return 0;
	if (a->dry_run) {
		/* Events each sink would deliver again. */
		rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM outbox_sink s JOIN outbox o "
		    "ON o.seq >= ?2 AND o.seq <= s.cursor WHERE (?1 IS NULL OR s.name = ?1) AND "
		    CTL_FILTER_MATCH, -1, &st, NULL);
	} else {
		rc = sqlite3_prepare_v2(db, ctl_replay_rewind, -1, &st, NULL);
	}
	if (rc != SQLITE_OK)
		return ctl_sql_error(db, cause);
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

static int
ctl_replay_sink_exists(sqlite3 *db, const char *sink, char **cause)
{
	sqlite3_stmt *st;
	int rc;

	if (sink == NULL)
		return 0;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM outbox_sink WHERE name = ?1", -1, &st,
	    NULL) != SQLITE_OK)
		return ctl_sql_error(db, cause);
	sqlite3_bind_text(st, 1, sink, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	*cause = xasprintf("no sink named '%s'", sink);
	return CTL_ERROR;
}

static int
ctl_replay(struct ctl *ctl, int argc, char **argv, char **cause)
{
	struct ctl_replay_args a = { 0 };
	int64_t events = 0, sinks = 0;
	sqlite3 *db;
	outbox *ob;
	int rc;

	if ((rc = ctl_replay_parse(argc, argv, &a, cause)) != 0)
		return rc == 1 ? 0 : rc;
	if ((rc = ctl_open(ctl, OUTBOX_OPEN_EXISTING, &ob, cause)) != 0)
		return rc;
	db = outbox_db(ob);
	/* One transaction: the relay sees all of the replay or none of it. */
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		rc = ctl_sql_error(db, cause);
		goto out;
	}
	if ((rc = ctl_replay_sink_exists(db, a.sink, cause)) == 0 &&
	    (rc = ctl_replay_events(db, &a, &events, cause)) == 0)
		rc = ctl_replay_cursor(db, &a, &sinks, cause);
	if (rc != 0 || a.dry_run)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	else if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = ctl_sql_error(db, cause);
	if (rc == 0) {
		char *more = a.from_seq == 0 ? xstrdup("") : a.dry_run ?
		    xasprintf(" and deliver %lld again from seq %lld", (long long)sinks,
		    (long long)a.from_seq) :
		    xasprintf("; rewound %lld sink%s to seq %lld", (long long)sinks,
		    sinks == 1 ? "" : "s", (long long)a.from_seq);
		printf("%s %lld event%s%s\n", a.dry_run ? "would replay" : "replayed",
		    (long long)events, events == 1 ? "" : "s", more);
		free(more);
	}
out:
	outbox_close(ob);
	return rc;
}

/* ---- help ------------------------------------------------------------------------------- */

static const struct ctl_command *
ctl_find(const char *name)
{
	size_t i;

	for (i = 0; i < CTL_NCOMMANDS; i++) {
		if (strcmp(ctl_commands[i].name, name) == 0)
			return &ctl_commands[i];
	}
	return NULL;
}

static int
ctl_help(struct ctl *ctl, int argc, char **argv, char **cause)
{
	const struct ctl_command *cmd;

	if (argc > 2) {
		*cause = xasprintf("unexpected argument '%s'", argv[2]);
		return CTL_USAGE;
	}
	if (argc < 2) {
		ctl_usage_full(stdout);
		return 0;
	}
	if ((cmd = ctl_find(argv[1])) == NULL) {
		*cause = xasprintf("unknown command '%s'", argv[1]);
		return CTL_USAGE;
	}
	ctl_usage_command(stdout, cmd);
	return 0;
}

/* ---- main ------------------------------------------------------------------------------- */

/* Global options, up to the command name. 1: done (help/version shown), 0: go on. */
static int
ctl_global_options(struct ctl *ctl, int argc, char **argv, char **cause)
{
	static const struct option longopts[] = {
		{ "database", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "+:d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			ctl->database = optarg;
			break;
		case 'h':
			ctl_usage_full(stdout);
			return 1;
		case 'V':
			printf("outboxctl %s\n", PACKAGE_VERSION);
			return 1;
		default:
			return ctl_bad_option(c, argc, argv, cause);
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct ctl ctl = { .database = getenv("OUTBOX_DATABASE") };
	char *cause = NULL;
	int rc;

	opterr = 0;
	if (ctl.database != NULL && *ctl.database == '\0')
		ctl.database = NULL;
	if ((rc = ctl_global_options(&ctl, argc, argv, &cause)) != 0)
		return rc == 1 ? CTL_EXIT_OK : ctl_finish(rc, cause);
	if (optind >= argc)
		return ctl_finish(CTL_USAGE, xasprintf("no command given"));
	if ((ctl_current = ctl_find(argv[optind])) == NULL)
		return ctl_finish(CTL_USAGE, xasprintf("unknown command '%s'", argv[optind]));

	/* The command sees its name as argv[0]; getopt starts afresh for it. */
	argc -= optind;
	argv += optind;
	optind = 0;
	rc = ctl_current->exec(&ctl, argc, argv, &cause);
	return ctl_finish(rc, cause);
}
