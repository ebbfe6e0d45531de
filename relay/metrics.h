/*
 * metrics.h: what the relay shows of itself while it runs: Prometheus metrics on
 * GET /metrics, GET /healthz and GET /readyz, served by libmicrohttpd on a thread of its
 * own (metrics.listen, --metrics).
 *
 * The loop writes, the HTTP thread reads, through one small mutex-protected snapshot:
 * counters and histograms the loop adds to after each batch, and gauges it refreshes
 * (connection state and cursor every pass; the last seq, the retrying count and the oldest
 * waiting event from the database at most once a second, by index seeks). A scrape copies
 * the snapshot and formats the copy: it never waits for the loop nor touches SQLite.
 *
 * Every function but metrics_new accepts a NULL handle and then does nothing, so the loop
 * calls them whether or not anyone watches. Sinks are given by their index in the list
 * of metrics_set_sinks, which follows the loop's own array.
 */
#ifndef RELAY_METRICS_H
#define RELAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "sink.h"

struct metrics;

/* build_labels: the labels of outboxd_build_info, written out ("version=\"0.1.0\",..."). */
struct metrics *metrics_new(const char *build_labels);
/* Stop listening (removing a unix socket it made) and free everything. */
void metrics_free(struct metrics *m);

/* Check a listen address: 127.0.0.1:9464, [::1]:9464, or a unix socket path (starting
 * with '/' or '.', or after "unix:"). -1 with *cause (malloc'd). */
int metrics_check_listen(const char *addr, char **cause);
/* Listen on addr and serve from a thread of libmicrohttpd. -1 with *cause (malloc'd). */
int metrics_listen(struct metrics *m, const char *addr, char **cause);

/* ---- the loop's side ---------------------------------------------------------------- */

/* The sinks are now names[0..n-1]: those already known (by name) keep their counters,
 * new ones start at zero, the others are forgotten. */
void metrics_set_sinks(struct metrics *m, const char *const *names, size_t n);
/* A pass of the loop ended; the loop can be silent for 2 * poll_ms + backoff_ms. */
void metrics_pass(struct metrics *m, int64_t poll_ms, int64_t backoff_ms);
void metrics_sink_state(struct metrics *m, size_t i, int up, int64_t cursor);
void metrics_sink_reconnected(struct metrics *m, size_t i);
/* A published batch of msgs[0..n-1], that took seconds: those up to seq upto (recorded)
 * count, delivered or rejected by their status; failed of the rejected ones gave up. */
void metrics_batch(struct metrics *m, size_t i, double seconds,
    const struct sink_message *msgs, size_t n, int64_t upto, int64_t failed);
/* From the database: the last seq, and per sink its retrying count and the created_at
 * (unix ms) of its oldest waiting event, -1 when none. */
void metrics_max_seq(struct metrics *m, int64_t max_seq);
void metrics_sink_waiting(struct metrics *m, size_t i, int64_t retrying, int64_t oldest_at);

/* "redis up, backlog 0; audit down, backlog 12", for systemd's STATUS=. */
void metrics_status(struct metrics *m, char *buf, size_t len);

#endif
