/*
 * exit.h: every exit status of outboxd and outboxctl, in one place (sysexits(3) values
 * where one fits). Only main() and outboxctl's command line end the process: the modules
 * below them return -1 or an error kind, and main maps it to one of these.
 * tests/harness.py reads this file, so the tests use the same values.
 */
#ifndef RELAY_EXIT_H
#define RELAY_EXIT_H

#define EXIT_OK          0   /* done */
#define EXIT_RUNTIME     1   /* a runtime error */
#define EXIT_USAGE       2   /* a bad command line */
#define EXIT_LOCKED      3   /* outboxd: another relay is active on the database */
#define EXIT_UNHEALTHY   3   /* outboxctl status: failed events, or a backlog too old */
#define EXIT_NOT_OUTBOX  65  /* EX_DATAERR: the file is not an outbox database */
#define EXIT_NO_DATABASE 66  /* EX_NOINPUT: no such database */
#define EXIT_UNREACHABLE 75  /* EX_TEMPFAIL: outboxd --once could not reach a sink */
#define EXIT_CONFIG      78  /* EX_CONFIG: the configuration is wrong */

#endif
