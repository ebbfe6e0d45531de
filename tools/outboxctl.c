/*
 * outboxctl.c: the outbox administration tool's command line: global options, the table
 * of subcommands with their usage, help, and the exit status. The commands themselves
 * live in ctl_*.c (see ctl.h).
 *
 * Exit status: 0 success, 1 a runtime error (the database or the library refused), 2 a
 * usage error, 3 status found failed events or a backlog older than --max-age. Errors are
 * one line "outboxctl: <what is wrong>" on stderr; usage errors add a "usage: ..." line
 * for the command at fault.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "util.h"

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
	{ "status", "[--json] [--max-age DURATION]",
	  "show each sink's cursor, backlog and progress; exit 3 if unhealthy",
	  "  -j, --json          one JSON object per sink and line\n"
	  "  -a, --max-age D     unhealthy (exit 3) when the oldest undelivered event is older\n"
	  "                      than D (10m, 2h, 7d); failed events are always unhealthy\n",
	  ctl_status },
	{ "ls", "[--sink S] [--state STATE] [--name GLOB] [--since TIME] [--limit N] [--json]",
	  "list events and their state on each sink, newest last",
	  "  -s, --sink S        only this sink\n"
	  "  -S, --state STATE   pending, retry, failed or delivered\n"
	  "  -n, --name GLOB     events whose name matches\n"
	  "      --since TIME    events created at or after TIME (ISO 8601, or 10m, 2h, 7d ago)\n"
	  "      --until TIME    events created before TIME\n"
	  "  -l, --limit N       the newest N rows (default 100; 0: all)\n"
	  "  -j, --json          one JSON object per row and line\n",
	  ctl_ls },
	{ "show", "ID|SEQ [--json]", "show one event whole and its state on every sink",
	  "  -j, --json          one JSON object\n",
	  ctl_show },
	{ "replay", "(--failed | --id ID | --name GLOB | --since TIME | --until TIME | "
	  "--from-seq N)... [--sink S] [--dry-run]",
	  "put events back in line for a sink (safe while outboxd runs)",
	  "  -f, --failed        the events that failed (state 'failed')\n"
	  "  -i, --id ID         this event, even if it was delivered\n"
	  "  -n, --name GLOB     retrying or failed events whose name matches\n"
	  "      --since TIME    retrying or failed events created at or after TIME\n"
	  "      --until TIME    retrying or failed events created before TIME\n"
	  "  -F, --from-seq N    rewind the cursor: deliver again every event from seq N\n"
	  "  -s, --sink S        only this sink (default: every sink)\n"
	  "  -D, --dry-run       print what would be replayed and change nothing\n",
	  ctl_replay },
	{ "purge", "--older-than DURATION [--batch N] [--dry-run]",
	  "delete delivered events older than DURATION, in small transactions",
	  "  -o, --older-than D  events created more than D ago (30m, 12h, 7d)\n"
	  "  -b, --batch N       events per transaction (default 1000)\n"
	  "  -D, --dry-run       print how many would be deleted and change nothing\n",
	  ctl_purge },
	{ "tail", "[-f] [-n N] [--name GLOB]",
	  "print the newest events as envelopes (JSON lines); -f: and new ones as they commit",
	  "  -f, --follow        keep printing events as they are committed (until interrupted)\n"
	  "  -n, --lines N       start with the last N events (default 10)\n"
	  "      --name GLOB     only events whose name matches\n",
	  ctl_tail },
	{ "sinks", "[--json] | sinks rm NAME [--yes]",
	  "list the sinks recorded in DB, or forget one",
	  "  -j, --json          one JSON object per sink and line\n"
	  "  -y, --yes           rm: do not ask for confirmation\n",
	  ctl_sinks },
	{ "help", "[COMMAND]", "show help for all commands or one", NULL, ctl_help },
};
#define CTL_NCOMMANDS (sizeof ctl_commands / sizeof ctl_commands[0])

const struct ctl_command *ctl_current;

static void
ctl_usage_full(FILE *f)
{
	const struct ctl_command *cmd;
	size_t i;

	fprintf(f, "usage: outboxctl [-d DB] COMMAND [ARGS]\n\n"
	    "Operate the SQLite transactional outbox of outboxd.\n\nCommands:\n");
	for (i = 0; i < CTL_NCOMMANDS; i++) {
		cmd = &ctl_commands[i];
		fprintf(f, "  %-9s %s\n", cmd->name, cmd->summary);
	}
	fprintf(f, "\nOptions:\n"
	    "  -d, --database DB   the outbox database (default: $OUTBOX_DATABASE)\n"
	    "  -h, --help          show this help (COMMAND --help: that command's)\n"
	    "      --version       show the version\n\n"
	    "TIME is ISO 8601 (2026-11-23T08:00:00Z, UTC unless a zone is given) or an age\n"
	    "(30s, 10m, 2h, 7d: that long ago); DURATION is an age.\n\n"
	    "Exit status: 0 success, 1 error, 2 usage error, 3 unhealthy (status).\n");
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
	} else if (rc == CTL_UNHEALTHY) {
		status = CTL_EXIT_UNHEALTHY;
	} else if (rc != 0 && rc != CTL_HELP) {
		fprintf(stderr, "outboxctl: %s\n", cause != NULL ? cause : "failed");
		status = CTL_EXIT_ERROR;
	}
	free(cause);
	if (fflush(stdout) != 0 && status == CTL_EXIT_OK) {
		fprintf(stderr, "outboxctl: cannot write the output\n");
		status = CTL_EXIT_ERROR;
	}
	return status;
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
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
		cmd = ctl_current;
	else if ((cmd = ctl_find(argv[1])) == NULL) {
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
