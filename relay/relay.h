/*
 * relay.h: the relay loop, the only place where the store and the sinks meet.
 */
#ifndef RELAY_RELAY_H
#define RELAY_RELAY_H

#include <signal.h>

#include "conf.h"
#include "store.h"
#include "wake.h"

/* Exit status of --once when a sink could not be reached (sysexits' EX_TEMPFAIL). */
#define RELAY_EXIT_UNREACHABLE 75

struct relay_options {
	int once;                         /* publish what is due now, then return */
	volatile sig_atomic_t *stop;      /* set by SIGTERM/SIGINT */
	volatile sig_atomic_t *reopen;    /* set by SIGHUP */
};

/*
 * Run until *stop is set (or, with once, until nothing is due), then return the process
 * exit status: 0, 1 on a database error at start-up (or, with once, one that persists),
 * RELAY_EXIT_UNREACHABLE with once.
 * Every sink in cf must be configured; the relay connects, publishes and disconnects them.
 */
int relay_run(struct conf *cf, struct store *st, struct wake *wake,
    const struct relay_options *opt);

/* Delay before attempt number attempt+1 (attempt >= 1): exponential with full jitter,
 * in [0, min(max, initial * multiplier^(attempt-1))]. Exposed for tests. */
int64_t relay_backoff(const struct conf *cf, int attempt);

#endif
