/*
 * ctl.h: what outboxctl's commands share. outboxctl.c owns the command line and the table
 * of commands; ctl_util.c the helpers below (opening the database, errors, TIME and
 * DURATION arguments, aligned tables, JSON rows, progress bars); each ctl_*.c file one
 * family of commands.
 *
 * A command returns 0, CTL_UNHEALTHY (status found a problem), or CTL_ERROR / CTL_USAGE
 * with a malloc'd *cause; main turns that into the exit status and the message.
 */
#ifndef TOOLS_CTL_H
#define TOOLS_CTL_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "outbox.h"

#define CTL_EXIT_OK        0
#define CTL_EXIT_ERROR     1
#define CTL_EXIT_USAGE     2
#define CTL_EXIT_UNHEALTHY 3

/* Command results besides 0. */
#define CTL_ERROR     (-1) /* runtime error, with a cause */
#define CTL_USAGE     (-2) /* usage error, with a cause */
#define CTL_UNHEALTHY (-3) /* status: failed events or a backlog too old; no cause */
#define CTL_HELP      1    /* option parsing showed --help: the command is done */

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

/* The command being run, for its usage line. */
extern const struct ctl_command *ctl_current;

/* Commands, one family per file. */
int ctl_init(struct ctl *, int, char **, char **);
int ctl_enqueue(struct ctl *, int, char **, char **);
int ctl_status(struct ctl *, int, char **, char **);
int ctl_sinks(struct ctl *, int, char **, char **);
int ctl_ls(struct ctl *, int, char **, char **);
int ctl_show(struct ctl *, int, char **, char **);
int ctl_tail(struct ctl *, int, char **, char **);
int ctl_replay(struct ctl *, int, char **, char **);
int ctl_purge(struct ctl *, int, char **, char **);

/* ---- command line ---- */

void ctl_usage_line(FILE *f, const struct ctl_command *cmd);
void ctl_usage_command(FILE *f, const struct ctl_command *cmd);

/*
 * A command's options, with getopt_long: -h/--help shows the command's help (CTL_HELP);
 * every other option goes to option(c, optarg, arg, cause), which returns 0, a CTL_USAGE
 * or CTL_ERROR with a cause, or -1 for an option it does not take (NULL option: the
 * command takes none). Then more than max_operands operands is a usage error. The
 * operands are left at argv[optind..].
 */
/* getopt's complaint (opterr is off) as a usage error. */
int ctl_bad_option(int c, int argc, char **argv, char **cause);

typedef int (*ctl_option_fn)(int c, const char *value, void *arg, char **cause);
int ctl_parse_options(int argc, char **argv, const char *shortopts,
    const struct option *longopts, ctl_option_fn option, void *arg, int max_operands,
    char **cause);

/* For commands that take no option but --help. */
extern const struct option ctl_help_only[];

/* For commands whose one option is -j/--json: arg is an int set to 1. */
int ctl_json_option(int c, const char *value, void *arg, char **cause);

/* The option's argument as a whole number in [min, max], else a usage error. */
int ctl_parse_count(const char *option, const char *arg, int64_t min, int64_t max,
    int64_t *out, char **cause);

/*
 * TIME: ISO 8601 ("2026-11-23", "2026-11-23T08:00:00Z", "2026-11-23 08:00:00.5+01:00";
 * UTC when no zone is given) or a relative form, "10m" meaning ten minutes ago (see
 * util_parse_duration). Unix milliseconds into *ms, else a usage error naming option.
 */
int ctl_parse_time(const char *option, const char *arg, int64_t *ms, char **cause);

/* DURATION: the relative forms only. */
int ctl_parse_duration(const char *option, const char *arg, int64_t *ms, char **cause);

/* ---- the database ---- */

/* Open the database named by -d / OUTBOX_DATABASE. flags as for outbox_open. */
int ctl_open(struct ctl *ctl, int flags, outbox **ob, char **cause);

/* The connection's last error as a cause; returns CTL_ERROR. */
int ctl_sql_error(sqlite3 *db, char **cause);

/* Prepare sql, or a cause naming what it was for. */
int ctl_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, char **cause);

/* Does the sink exist? An error naming it if not; NULL sink: fine. */
int ctl_sink_exists(sqlite3 *db, const char *sink, char **cause);

/* PRAGMA user_version. */
int ctl_user_version(sqlite3 *db, int *version, char **cause);

/* Does event o pass the filter of sink s? The same test as the views'. */
#define CTL_FILTER_MATCH \
	"(s.filter IS NULL OR EXISTS (SELECT 1 FROM json_each(s.filter) f " \
	"WHERE o.name GLOB f.value OR s.prefix || o.name GLOB f.value))"

/* Unix milliseconds now, as SQLite computes it in the schema's defaults. */
#define CTL_SQL_NOW_MS "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"

/* ---- output ---- */

/* An age in seconds as people say it: 850ms, 42s, 3m05s, 2h10m, 4d03h (malloc'd). */
char *ctl_human_age(double secs);

/* The current row as a JSON object keyed by column name: integers and reals as numbers,
 * NULL as null, text as strings. */
cJSON *ctl_row_object(sqlite3_stmt *st);
/* o as one compact line (malloc'd, for cJSON_free); o is deleted. */
char *ctl_json_line(cJSON *o);
/* Print the current row as one JSON line. */
void ctl_print_row_json(sqlite3_stmt *st);

void ctl_out_of_memory(void) __attribute__((noreturn));

/*
 * An aligned table: columns get the width of their widest cell; align says per column 'l'
 * (text, left) or 'r' (numbers, right). NULL cells print as "-".
 */
struct ctl_table {
	int ncols;
	const char *const *heads;
	const char *align;
	char **cells;	/* nrows * ncols, malloc'd */
	size_t nrows;
};

void ctl_table_init(struct ctl_table *t, int ncols, const char *const *heads,
    const char *align);
/* Append the current row's columns as text (the statement has t->ncols columns). */
void ctl_table_add_row(struct ctl_table *t, sqlite3_stmt *st);
/* The cell at (row, col), which the caller may replace (free the old one). */
char **ctl_table_cell(struct ctl_table *t, size_t row, int col);
void ctl_table_print(const struct ctl_table *t, FILE *f);
void ctl_table_free(struct ctl_table *t);

/*
 * A progress bar on stderr for long operations: shown only when stderr is a terminal and
 * total exceeds CTL_PROGRESS_MIN, redrawn at most ten times a second, erased at the end.
 */
#define CTL_PROGRESS_MIN 100000

struct ctl_progress {
	const char *what;
	int64_t total;
	int64_t last_ms;
	int shown;
};

void ctl_progress_start(struct ctl_progress *p, const char *what, int64_t total);
void ctl_progress_update(struct ctl_progress *p, int64_t done);
void ctl_progress_end(struct ctl_progress *p);

#endif
