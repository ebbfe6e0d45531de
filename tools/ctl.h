/*
 * ctl.h: what outboxctl's commands share. Each ctl_*.c file exports one entry per command
 * (struct ctl_entry: its name, usage, options with their help, and what runs it);
 * outboxctl.c owns the command line and the list of entries; ctl_util.c the helpers below
 * (option parsing and help generated from an entry, opening the database, errors, TIME and
 * DURATION arguments, aligned tables, JSON rows, progress bars).
 *
 * A command returns 0, CTL_UNHEALTHY (status found a problem), or CTL_ERROR / CTL_USAGE
 * with a malloc'd *cause; main turns that into the exit status and the message.
 */
#ifndef TOOLS_CTL_H
#define TOOLS_CTL_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "exit.h"
#include "outbox.h"


/* Command results besides 0. */
#define CTL_ERROR     (-1) /* runtime error, with a cause */
#define CTL_USAGE     (-2) /* usage error, with a cause */
#define CTL_UNHEALTHY (-3) /* status: failed events or a backlog too old; no cause */
#define CTL_HELP      1    /* option parsing showed --help: the command is done */

/* The value of an option that has no short form: above every character. */
#define CTL_LONG_ONLY(n) (256 + (n))

/* One option of a command: -h/--help is every command's and is not listed. */
struct ctl_option {
	int value;		/* the short option's letter, or CTL_LONG_ONLY(n) */
	const char *name;	/* the long option, without -- */
	const char *arg;	/* the argument in the help (K, GLOB), or NULL: takes none */
	const char *help;	/* lines after the first go under the first's text */
};

struct ctl;

struct ctl_entry {
	const char *name;
	const char *usage;	/* synopsis after the command name */
	const char *summary;
	const struct ctl_option *options;	/* ends with { 0 }; NULL: none */
	int (*exec)(struct ctl *, int, char **, char **);
};

struct ctl {
	const char *database;
	const struct ctl_entry *entry;	/* the command being run; NULL before one is found */
};

/* The commands, one family per file. */
extern const struct ctl_entry ctl_init_entry;
extern const struct ctl_entry ctl_enqueue_entry;
extern const struct ctl_entry ctl_status_entry;
extern const struct ctl_entry ctl_sinks_entry;
extern const struct ctl_entry ctl_ls_entry;
extern const struct ctl_entry ctl_show_entry;
extern const struct ctl_entry ctl_tail_entry;
extern const struct ctl_entry ctl_replay_entry;
extern const struct ctl_entry ctl_purge_entry;

/* ---- command line ---- */

/* "usage: outboxctl [-d DB] NAME USAGE" (entry NULL: the global usage). */
void ctl_usage_line(FILE *f, const struct ctl_entry *entry);
/* A command's help: its usage line, summary and options, from its entry. */
void ctl_usage_command(FILE *f, const struct ctl_entry *entry);

/* getopt's complaint (opterr is off) as a usage error. */
int ctl_bad_option(int c, int argc, char **argv, char **cause);

/*
 * The command's options, with getopt_long over the options of ctl->entry: -h/--help shows
 * the command's help (CTL_HELP); every other option goes to option(c, optarg, arg, cause),
 * which returns 0, a CTL_USAGE or CTL_ERROR with a cause, or -1 for an option it does not
 * take (NULL option: the command takes none). Then more than max_operands operands is a
 * usage error. The operands are left at argv[optind..].
 */
typedef int (*ctl_option_fn)(int c, const char *value, void *arg, char **cause);
int ctl_parse_options(struct ctl *ctl, int argc, char **argv, ctl_option_fn option,
    void *arg, int max_operands, char **cause);

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

/* The seq of the event which names: an id first, else a seq. 0, 1 if there is no such
 * event, or CTL_ERROR. */
int ctl_event_seq(sqlite3 *db, const char *which, int64_t *seq, char **cause);

/* PRAGMA user_version. */
int ctl_user_version(sqlite3 *db, int *version, char **cause);

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
