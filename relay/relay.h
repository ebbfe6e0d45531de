/*
 * relay.h: the relay loop, the only place where the store and the sinks meet. The loop
 * owns the live sinks: it makes them from the configuration, and on a reload it keeps
 * those whose options did not change, reconnects the changed ones, starts the new ones
 * and stops the removed ones.
 */
#ifndef RELAY_RELAY_H
#define RELAY_RELAY_H

#include <signal.h>

#include "conf.h"
#include "metrics.h"
#include "notify.h"
#include "store.h"
#include "wake.h"

struct relay_options {
	int once;                         /* publish what is due now, then return */
	volatile sig_atomic_t *stop;      /* set by SIGTERM/SIGINT */
	volatile sig_atomic_t *hup;       /* set by SIGHUP: reopen the log, reload */
	/* Load the configuration again (for SIGHUP), as conf_load does; NULL: no reload. */
	int (*load)(struct conf *cf, void *arg, char **cause);
	void *load_arg;
	/* Sink implementations, NULL-terminated; NULL: the built-in ones (tests add fakes). */
	const struct sink_ops *const *sink_ops;
	/* Where the loop shows how it is doing; each may be NULL (metrics.h, notify.h). */
	struct metrics *metrics;
	struct notify *notify;
};

/*
 * Run until *stop is set (or, with once, until nothing is due), then return the process
 * exit status: EXIT_OK, EXIT_RUNTIME on a database error at start-up (or, with once, one
 * that persists), EXIT_UNREACHABLE with once. A reload replaces *cf in place; the caller
 * frees whatever *cf holds at the end.
 */
int relay_run(struct conf *cf, struct store *st, struct wake *wake,
    const struct relay_options *opt);

/* Delay before attempt number attempt+1 (attempt >= 1): exponential with full jitter,
 * in [0, min(max, initial * multiplier^(attempt-1))]. Exposed for tests. */
int64_t relay_backoff(const struct conf *cf, int attempt);

#endif
