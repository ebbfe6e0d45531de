/*
 * outboxctl.c: the outbox administration tool's command line: global options, the list
 * of commands, help, and the exit status. Each command is an entry exported by its
 * ctl_*.c file, with its own usage, options and help (see ctl.h).
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

static const struct ctl_entry ctl_help_entry = {
	.name = "help",
	.usage = "[COMMAND]",
	.summary = "show help for all commands or one",
	.exec = ctl_help,
};

/* The commands, in the order of the help. */
static const struct ctl_entry *const ctl_entries[] = {
	&ctl_init_entry, &ctl_enqueue_entry, &ctl_status_entry, &ctl_ls_entry, &ctl_show_entry,
	&ctl_replay_entry, &ctl_purge_entry, &ctl_tail_entry, &ctl_sinks_entry, &ctl_help_entry,
};
#define CTL_NENTRIES (sizeof ctl_entries / sizeof ctl_entries[0])

static void
ctl_usage_full(FILE *f)
{
	size_t i;

	fprintf(f, "usage: outboxctl [-d DB] COMMAND [ARGS]\n\n"
	    "Operate the SQLite transactional outbox of outboxd.\n\nCommands:\n");
	for (i = 0; i < CTL_NENTRIES; i++)
		fprintf(f, "  %-9s %s\n", ctl_entries[i]->name, ctl_entries[i]->summary);
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
ctl_finish(const struct ctl *ctl, int rc, char *cause)
{
	int status = EXIT_OK;

	if (rc == CTL_USAGE) {
		fprintf(stderr, "outboxctl: %s\n", cause);
		ctl_usage_line(stderr, ctl->entry);
		status = EXIT_USAGE;
	} else if (rc == CTL_UNHEALTHY) {
		status = EXIT_UNHEALTHY;
	} else if (rc != 0 && rc != CTL_HELP) {
		fprintf(stderr, "outboxctl: %s\n", cause != NULL ? cause : "failed");
		status = EXIT_RUNTIME;
	}
	free(cause);
	if (fflush(stdout) != 0 && status == EXIT_OK) {
		fprintf(stderr, "outboxctl: cannot write the output\n");
		status = EXIT_RUNTIME;
	}
	return status;
}

/* ---- help ------------------------------------------------------------------------------- */

static const struct ctl_entry *
ctl_find(const char *name)
{
	size_t i;

	for (i = 0; i < CTL_NENTRIES; i++) {
		if (strcmp(ctl_entries[i]->name, name) == 0)
			return ctl_entries[i];
	}
	return NULL;
}

static int
ctl_help(struct ctl *ctl, int argc, char **argv, char **cause)
{
	const struct ctl_entry *entry;

	if (argc > 2) {
		*cause = xasprintf("unexpected argument '%s'", argv[2]);
		return CTL_USAGE;
	}
	if (argc < 2) {
		ctl_usage_full(stdout);
		return 0;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
		entry = ctl->entry;
	else if ((entry = ctl_find(argv[1])) == NULL) {
		*cause = xasprintf("unknown command '%s'", argv[1]);
		return CTL_USAGE;
	}
	ctl_usage_command(stdout, entry);
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
		return rc == 1 ? EXIT_OK : ctl_finish(&ctl, rc, cause);
	if (optind >= argc)
		return ctl_finish(&ctl, CTL_USAGE, xasprintf("no command given"));
	if ((ctl.entry = ctl_find(argv[optind])) == NULL)
		return ctl_finish(&ctl, CTL_USAGE, xasprintf("unknown command '%s'",
		    argv[optind]));

	/* The command sees its name as argv[0]; getopt starts afresh for it. */
	argc -= optind;
	argv += optind;
	optind = 0;
	rc = ctl.entry->exec(&ctl, argc, argv, &cause);
	return ctl_finish(&ctl, rc, cause);
}
