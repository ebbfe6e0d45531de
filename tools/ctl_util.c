/*
 * ctl_util.c: helpers shared by outboxctl's commands: usage and argument errors, TIME and
 * DURATION arguments, opening the database, aligned tables, JSON rows and progress bars.
 */
#include "config.h"

#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ctl.h"
#include "util.h"

/* ---- command line ----------------------------------------------------------------------- */

void
ctl_usage_line(FILE *f, const struct ctl_entry *entry)
{
	if (entry == NULL)
		fprintf(f, "usage: outboxctl [-d DB] COMMAND [ARGS]   (outboxctl --help lists "
		    "the commands)\n");
	else
		fprintf(f, "usage: outboxctl [-d DB] %s%s%s\n", entry->name,
		    *entry->usage != '\0' ? " " : "", entry->usage);
}

/* Help columns: "  -k, --key K         help", later lines of the help under the first. */
#define CTL_HELP_INDENT 22

static void
ctl_usage_option(FILE *f, const struct ctl_option *o)
{
	char *opt = xasprintf("--%s%s%s", o->name, o->arg != NULL ? " " : "",
	    o->arg != NULL ? o->arg : "");
	const char *p, *nl;

	if (o->value < CTL_LONG_ONLY(0))
		fprintf(f, "  -%c, %-16s", o->value, opt);
	else
		fprintf(f, "      %-16s", opt);
	for (p = o->help; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
		fprintf(f, "%.*s\n%*s", (int)(nl - p), p, CTL_HELP_INDENT, "");
	fprintf(f, "%s\n", p);
	free(opt);
}

void
ctl_usage_command(FILE *f, const struct ctl_entry *entry)
{
	const struct ctl_option *o;

	ctl_usage_line(f, entry);
	fprintf(f, "\n%c%s.\n", toupper((unsigned char)entry->summary[0]),
	    entry->summary + 1);
	if (entry->options == NULL)
		return;
	fprintf(f, "\nOptions:\n");
	for (o = entry->options; o->name != NULL; o++)
		ctl_usage_option(f, o);
}

int
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

int
ctl_json_option(int c, const char *value, void *arg, char **cause)
{
	(void)value;
	(void)cause;
	if (c != 'j')
		return -1;
	*(int *)arg = 1;
	return 0;
}

/* getopt_long's short option string and long options for entry, with -h/--help. */
static void
ctl_getopt_tables(const struct ctl_entry *entry, char **shortopts, struct option **longopts)
{
	const struct ctl_option *o;
	size_t n = 0;
	char *p;

	for (o = entry->options; o != NULL && o->name != NULL; o++)
		n++;
	*longopts = xcalloc(n + 2, sizeof **longopts);
	*shortopts = p = xcalloc(2 * n + 3, 1);
	*p++ = ':';
	for (n = 0, o = entry->options; o != NULL && o->name != NULL; o++, n++) {
		(*longopts)[n].name = o->name;
		(*longopts)[n].has_arg = o->arg != NULL ? required_argument : no_argument;
		(*longopts)[n].val = o->value;
		if (o->value >= CTL_LONG_ONLY(0))
			continue;
		*p++ = (char)o->value;
		if (o->arg != NULL)
			*p++ = ':';
	}
	(*longopts)[n].name = "help";
	(*longopts)[n].val = 'h';
	*p = 'h';
}

int
ctl_parse_options(struct ctl *ctl, int argc, char **argv, ctl_option_fn option, void *arg,
    int max_operands, char **cause)
{
	struct option *longopts;
	char *shortopts;
	int c, rc = 0;

	ctl_getopt_tables(ctl->entry, &shortopts, &longopts);
	while (rc == 0 && (c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (c == 'h') {
			ctl_usage_command(stdout, ctl->entry);
			rc = CTL_HELP;
			break;
		}
		rc = option != NULL && c != '?' && c != ':' ? option(c, optarg, arg, cause) : -1;
		if (rc == -1)
			rc = ctl_bad_option(c, argc, argv, cause);
	}
	free(shortopts);
	free(longopts);
	if (rc != 0 || argc - optind <= max_operands)
		return rc;
	*cause = xasprintf("unexpected argument '%s'", argv[optind + max_operands]);
	return CTL_USAGE;
}

int
ctl_parse_count(const char *option, const char *arg, int64_t min, int64_t max, int64_t *out,
    char **cause)
{
	char *why = NULL;

	if (util_parse_int(arg, min, max, out, &why) == 0)
		return 0;
	*cause = xasprintf("%s: %s", option, why);
	free(why);
	return CTL_USAGE;
}

int
ctl_parse_duration(const char *option, const char *arg, int64_t *ms, char **cause)
{
	char *why = NULL;

	if (util_parse_duration(arg, ms, &why) == 0)
		return 0;
	*cause = xasprintf("%s: %s", option, why);
	free(why);
	return CTL_USAGE;
}

/* Strict shape check before SQLite's date parser, which also takes "now" or a bare
 * Julian day number: YYYY-MM-DD, then optionally [T ]HH:MM[:SS[.fff]], then optionally
 * Z or +HH:MM / -HH:MM. */
static int
ctl_iso8601_shape(const char *s)
{
	static const char *const shapes[] = {
		"dddd-dd-dd", "dddd-dd-dd?dd:dd", "dddd-dd-dd?dd:dd:dd",
	};
	size_t i, n, len = strlen(s);
	const char *rest;

	for (i = sizeof shapes / sizeof shapes[0]; i-- > 0; ) {
		const char *p = shapes[i];

		for (n = 0; n < len && p[n] != '\0'; n++) {
			if (p[n] == 'd' ? !isdigit((unsigned char)s[n]) :
			    p[n] == '?' ? s[n] != 'T' && s[n] != ' ' : s[n] != p[n])
				break;
		}
		if (p[n] == '\0')
			break;
	}
	if (i == (size_t)-1)
		return 0;
	rest = s + strlen(shapes[i]);
	if (i == 2 && *rest == '.') {
		for (rest++; isdigit((unsigned char)*rest); rest++)
			;
	}
	if (*rest == 'Z')
		return rest[1] == '\0';
	if (*rest == '+' || *rest == '-')
		return strlen(rest) == 6 && isdigit((unsigned char)rest[1]) &&
		    isdigit((unsigned char)rest[2]) && rest[3] == ':' &&
		    isdigit((unsigned char)rest[4]) && isdigit((unsigned char)rest[5]);
	return *rest == '\0';
}

/* ISO 8601 through SQLite's date functions, the ones the views use; NULL if invalid. */
static int
ctl_iso8601_ms(const char *s, int64_t *ms)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int ok = 0;

	if (!ctl_iso8601_shape(s) || sqlite3_open(":memory:", &db) != SQLITE_OK)
		return -1;
	/* SQLite rolls 2026-02-30 over into March: insist that the date reads back. */
	if (sqlite3_prepare_v2(db, "SELECT CAST(round((julianday(?1) - 2440587.5) * 86400000.0) "
	    "AS INTEGER) WHERE date(julianday(substr(?1, 1, 10))) = substr(?1, 1, 10)", -1, &st,
	    NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, s, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
			*ms = sqlite3_column_int64(st, 0);
			ok = 1;
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return ok ? 0 : -1;
}

int
ctl_parse_time(const char *option, const char *arg, int64_t *ms, char **cause)
{
	char *why = NULL;
	int64_t ago;

	if (ctl_iso8601_ms(arg, ms) == 0)
		return 0;
	if (util_parse_duration(arg, &ago, &why) == 0) {
		*ms = util_now_ms() - ago;
		return 0;
	}
	free(why);
	*cause = xasprintf("%s: expected an ISO 8601 time (2026-11-23T08:00:00Z) or an age "
	    "such as 10m, 2h or 7d, got \"%s\"", option, arg);
	return CTL_USAGE;
}

/* ---- the database ----------------------------------------------------------------------- */

int
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

int
ctl_sql_error(sqlite3 *db, char **cause)
{
	*cause = xasprintf("%s", sqlite3_errmsg(db));
	return CTL_ERROR;
}

int
ctl_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, char **cause)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK)
		return 0;
	return ctl_sql_error(db, cause);
}

int
ctl_sink_exists(sqlite3 *db, const char *sink, char **cause)
{
	sqlite3_stmt *st;
	int rc;

	if (sink == NULL)
		return 0;
	if (ctl_prepare(db, "SELECT 1 FROM outbox_sink WHERE name = ?1", &st, cause) != 0)
		return CTL_ERROR;
	sqlite3_bind_text(st, 1, sink, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return ctl_sql_error(db, cause);
	*cause = xasprintf("no sink named '%s'", sink);
	return CTL_ERROR;
}

int
ctl_event_seq(sqlite3 *db, const char *which, int64_t *seq, char **cause)
{
	sqlite3_stmt *st;
	char *why = NULL;
	int rc;

	if (ctl_prepare(db, "SELECT seq FROM outbox WHERE id = ?1 OR seq = ?2 "
	    "ORDER BY id = ?1 DESC LIMIT 1", &st, cause) != 0)
		return CTL_ERROR;
	sqlite3_bind_text(st, 1, which, -1, SQLITE_STATIC);
	if (util_parse_int(which, 1, INT64_MAX, seq, &why) == 0)
		sqlite3_bind_int64(st, 2, *seq);
	free(why);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*seq = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return rc == SQLITE_ROW ? 0 : 1;
	return ctl_sql_error(db, cause);
}

int
ctl_user_version(sqlite3 *db, int *version, char **cause)
{
	sqlite3_stmt *st;
	int rc;

	if (ctl_prepare(db, "PRAGMA user_version", &st, cause) != 0)
		return CTL_ERROR;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version = sqlite3_column_int(st, 0);
	else
		*cause = xasprintf("cannot read the schema version: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : CTL_ERROR;
}

/* ---- output ----------------------------------------------------------------------------- */

char *
ctl_human_age(double secs)
{
	return util_human_age(secs);
}

cJSON *
ctl_row_object(sqlite3_stmt *st)
{
	cJSON *o = cJSON_CreateObject();
	int i;

	for (i = 0; o != NULL && i < sqlite3_column_count(st); i++) {
		const char *name = sqlite3_column_name(st, i);

		switch (sqlite3_column_type(st, i)) {
		case SQLITE_NULL:
			cJSON_AddNullToObject(o, name);
			break;
		case SQLITE_INTEGER:
		case SQLITE_FLOAT:
			cJSON_AddNumberToObject(o, name, sqlite3_column_double(st, i));
			break;
		default:
			cJSON_AddStringToObject(o, name, (const char *)sqlite3_column_text(st, i));
			break;
		}
	}
	if (o == NULL)
		ctl_out_of_memory();
	return o;
}

char *
ctl_json_line(cJSON *o)
{
	char *line = cJSON_PrintUnformatted(o);

	cJSON_Delete(o);
	if (line == NULL)
		ctl_out_of_memory();
	return line;
}

void
ctl_print_row_json(sqlite3_stmt *st)
{
	char *line = ctl_json_line(ctl_row_object(st));

	printf("%s\n", line);
	cJSON_free(line);
}

void
ctl_out_of_memory(void)
{
	fputs("outboxctl: out of memory\n", stderr);
	abort();
}

void
ctl_table_init(struct ctl_table *t, int ncols, const char *const *heads, const char *align)
{
	memset(t, 0, sizeof *t);
	t->ncols = ncols;
	t->heads = heads;
	t->align = align;
}

void
ctl_table_add_row(struct ctl_table *t, sqlite3_stmt *st)
{
	size_t base = t->nrows * (size_t)t->ncols;
	int i;

	t->cells = realloc(t->cells, (base + (size_t)t->ncols) * sizeof *t->cells);
	if (t->cells == NULL)
		ctl_out_of_memory();
	for (i = 0; i < t->ncols; i++) {
		const unsigned char *text = sqlite3_column_text(st, i);

		t->cells[base + (size_t)i] = text != NULL ? xstrdup((const char *)text) : NULL;
	}
	t->nrows++;
}

char **
ctl_table_cell(struct ctl_table *t, size_t row, int col)
{
	return &t->cells[row * (size_t)t->ncols + (size_t)col];
}

void
ctl_table_print(const struct ctl_table *t, FILE *f)
{
	size_t *width = xcalloc((size_t)t->ncols, sizeof *width), r;
	int i;

	for (i = 0; i < t->ncols; i++)
		width[i] = strlen(t->heads[i]);
	for (r = 0; r < t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			const char *s = t->cells[r * (size_t)t->ncols + (size_t)i];

			if (s != NULL && strlen(s) > width[i])
				width[i] = strlen(s);
		}
	}
	for (r = 0; r <= t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			const char *s = r == 0 ? t->heads[i] :
			    t->cells[(r - 1) * (size_t)t->ncols + (size_t)i];

			if (s == NULL)
				s = "-";
			if (i == t->ncols - 1 && t->align[i] == 'l')
				fprintf(f, "%s\n", s);
			else
				fprintf(f, t->align[i] == 'l' ? "%-*s%s" : "%*s%s", (int)width[i],
				    s, i == t->ncols - 1 ? "\n" : "  ");
		}
	}
	free(width);
}

void
ctl_table_free(struct ctl_table *t)
{
	size_t i;

	for (i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = 0;
}

void
ctl_progress_start(struct ctl_progress *p, const char *what, int64_t total)
{
	memset(p, 0, sizeof *p);
	p->what = what;
	p->total = total;
	p->shown = total > CTL_PROGRESS_MIN && isatty(STDERR_FILENO);
}

void
ctl_progress_update(struct ctl_progress *p, int64_t done)
{
	static const int bar = 30;
	int64_t now;
	int filled;

	if (!p->shown)
		return;
	now = util_monotonic_ms();
	if (now - p->last_ms < 100 && done < p->total)
		return;
	p->last_ms = now;
	if (done > p->total)
		done = p->total;
	filled = (int)(done * bar / p->total);
	fprintf(stderr, "\r%s [%.*s%*s] %3d%% %" PRId64 "/%" PRId64, p->what, filled,
	    "##############################", bar - filled, "", (int)(done * 100 / p->total),
	    done, p->total);
	fflush(stderr);
}

void
ctl_progress_end(struct ctl_progress *p)
{
	if (!p->shown)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
	p->shown = 0;
}
