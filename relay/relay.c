/*
 * relay.c: the loop. For each sink in turn: publish the retries that are due, then the
 * next batch of new events after the sink's cursor; record the outcome of each batch in
 * one transaction; sleep until a commit, a retry or a reconnect is due.
 *
 * Guarantees kept here:
 * - An event counts as handed off only after the sink said so; the cursor moves in the
 *   same transaction that records the failures, so a crash at any point publishes the
 *   last batch again at worst (at-least-once). A batch with nothing to record but the
 *   cursor's move does not wait for a write lock that a producer or a checkpoint holds:
 *   its move goes into the next batch's transaction, or is written (waiting) before the
 *   loop sleeps and at the latest after RECORD_DEFER_MS; a crash meanwhile publishes
 *   those batches again, as it would have before their transaction.
 * - A broker outage (SINK_UNSENT) never costs an event an attempt: the cursor stops just
 *   before the first unsent event, and the sink is reconnected with backoff.
 * - Ordering keys: two events with the same key are never in flight together (a batch is
 *   cut where a key repeats), and while an event waits in retry, later events with its key
 *   wait behind it (STORE_WAITING), so they reach the sink in seq order.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>

#include "arena.h"
#include "envelope.h"
#include "exit.h"
#include "filter.h"
#include "log.h"
#include "relay.h"
#include "util.h"

/* After activity, look again this soon (microseconds), doubling up to the poll interval. */
#define SETTLE_US 100
/* After a pass that broke, pause this long (ms), doubling up to the poll interval. */
#define TROUBLE_MS 100
/* With --once, give up after this many passes in a row that broke. */
#define ONCE_MAX_BROKEN 5
/* A cursor's move that found the write lock taken waits at most this long (ms). */
#define RECORD_DEFER_MS 1000
/* Read the backlog gauges from the database at most this often (ms). */
#define WATCH_REFRESH_MS 1000

/* Keys of the events in flight or waiting, within one batch: a small hash set of
 * borrowed strings, cleared between batches. */
struct relay_keyset {
	const char **slot;
	size_t size;     /* a power of two, at least twice the batch size */
	size_t used;
};

/* An event as one sink publishes it, made once per batch (or while reading ahead). */
struct relay_built {
	int done;
	const char *name;            /* published name: the sink's prefix + the event's */
	const char *envelope;        /* NULL: the sink's filter leaves the event out */
	size_t envelope_len;
};

/* Events read from the store, with the memory of their strings (and of the names and
 * envelopes made from them). */
struct relay_batch {
	struct store_event *events;  /* room for the relay's limit */
	struct relay_built *built;   /* per event, once made */
	int n;
	struct arena text;
};

struct relay_sink {
	const struct conf_sink *cs; /* its configuration (in relay.cf) */
	struct sink *sk;
	struct filter *filter;    /* NULL: every event */
	int64_t cursor;
	int64_t recorded;         /* the cursor as written; behind cursor while a move waits */
	int64_t record_by;        /* monotonic ms by which that move is written; 0: none */
	int failures;             /* consecutive failed connects */
	int drops;                /* connections lost since the last clean publish */
	int64_t reconnect_at;     /* monotonic ms */
	int64_t down_since;       /* monotonic ms the outage began; 0: none */
	int64_t logged_at;        /* monotonic ms of the outage's last line at info or above */
	char last_error[256];     /* why the last connect failed, for the reminders */
	/* The events after ahead_after, read while the broker worked on the batch before:
	 * the next batch, if the cursor reaches ahead_after. */
	struct relay_batch ahead;
	int64_t ahead_after;
	int ahead_ready;
};

struct relay {
	struct conf *cf;
	struct store *st;
	struct wake *wake;
	const struct relay_options *opt;
	struct relay_sink *sinks;
	size_t nsinks;
	int limit;                          /* batch size */
	struct relay_batch cur;             /* the batch being published */
	struct relay_sink *ahead_for;       /* read ahead for this sink during its publish */
	int64_t ahead_from;                 /* from after this seq */
	double ahead_seconds;               /* how long that took */
	struct sink_message *msgs;
	struct store_outcome *outcomes;
	const char **keys;                  /* ordering key of each message, borrowed */
	struct relay_keyset inflight;       /* keys of the messages being built */
	struct relay_keyset waiting;        /* keys known to wait behind a retry */
	int unreachable;                    /* --once: a sink could not be reached */
	int64_t next_purge_at;
	double publish_seconds;             /* how long the last publish took */
	int64_t next_refresh_at;            /* monotonic ms: gauges from the database */
	char status[512];                   /* the last STATUS= sent to systemd */
};

static void relay_sink_stop(struct relay_sink *rs);

int64_t
relay_backoff(const struct conf *cf, int attempt)
{
	double cap = cf->backoff_initial_ms * pow(cf->backoff_multiplier, attempt - 1);

	if (cap > cf->backoff_max_ms)
		cap = cf->backoff_max_ms;
	return (int64_t)(cap * ((double)random() / RAND_MAX));
}

/* ---- key sets ---------------------------------------------------------------------- */

static void
relay_keyset_init(struct relay_keyset *ks, int limit)
{
	ks->size = 16;
	while (ks->size < (size_t)limit * 2)
		ks->size <<= 1;
	ks->slot = xcalloc(ks->size, sizeof *ks->slot);
	ks->used = 0;
}

static void
relay_keyset_clear(struct relay_keyset *ks)
{
	if (ks->used > 0)
		memset(ks->slot, 0, ks->size * sizeof *ks->slot);
	ks->used = 0;
}

/* Find key; add it when add is set. Returns 1 if it was there. */
static int
relay_keyset_find(struct relay_keyset *ks, const char *key, int add)
{
	uint64_t h = 1469598103934665603ULL;
	const unsigned char *p;
	size_t i;

	for (p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	for (i = h & (ks->size - 1); ks->slot[i] != NULL; i = (i + 1) & (ks->size - 1)) {
		if (strcmp(ks->slot[i], key) == 0)
			return 1;
	}
	if (add && ks->used < ks->size / 2) {
		ks->slot[i] = key;
		ks->used++;
	}
	return 0;
}

/* ---- setting up -------------------------------------------------------------------- */

/* The next pause after trouble: TROUBLE_MS, doubling up to the poll interval. */
static int64_t
relay_next_pause(const struct relay *r, int64_t pause_ms)
{
	int64_t max = r->cf->poll_interval_ms > TROUBLE_MS ? r->cf->poll_interval_ms : TROUBLE_MS;

	pause_ms = pause_ms == 0 ? TROUBLE_MS : pause_ms * 2;
	return pause_ms < max ? pause_ms : max;
}

/* Sleep, whatever the database does meanwhile; SIGTERM ends it early (EINTR). */
static void
relay_pause(int64_t ms)
{
	struct timespec pause = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	nanosleep(&pause, NULL);
}

/*
 * Register the sink (a write). A database locked past the busy timeout or a full disk
 * passes: wait for it, rather than exit and leave it to a supervisor (with --once, exit).
 */
static int
relay_register(struct relay *r, struct relay_sink *rs)
{
	int64_t pause_ms = 0;
	char *cause = NULL;

	while (store_sink_register(r->st, rs->cs->name, rs->cs->type->name, rs->cs->filter,
	    rs->cs->prefix, rs->cs->start_at == CONF_START_LATEST, &rs->cursor, &cause) != 0) {
		if (!store_failure_passes(r->st) || r->opt->once || *r->opt->stop) {
			log_error("sink %s: %s", rs->sk->name, cause);
			free(cause);
			return -1;
		}
		if (pause_ms == 0)
			log_warn("sink %s: %s; trying again until it passes", rs->sk->name, cause);
		free(cause);
		cause = NULL;
		pause_ms = relay_next_pause(r, pause_ms);
		relay_pause(pause_ms);
	}
	if (pause_ms != 0)
		log_info("sink %s: registered", rs->sk->name);
	rs->recorded = rs->cursor;
	return 0;
}

/* Room for limit events. */
static void
relay_batch_alloc(struct relay_batch *b, int limit)
{
	b->events = xcalloc((size_t)limit, sizeof *b->events);
	b->built = xcalloc((size_t)limit, sizeof *b->built);
}

static void
relay_batch_free(struct relay_batch *b)
{
	free(b->events);
	free(b->built);
	arena_free(&b->text);
	memset(b, 0, sizeof *b);
}

static void
relay_buffers_free(struct relay *r)
{
	relay_batch_free(&r->cur);
	free(r->msgs);
	free(r->outcomes);
	free(r->keys);
	free(r->inflight.slot);
	free(r->waiting.slot);
}

/* Room for batches of limit events. */
static void
relay_buffers_alloc(struct relay *r, int limit)
{
	relay_buffers_free(r);
	r->limit = limit;
	relay_batch_alloc(&r->cur, limit);
	r->msgs = xcalloc((size_t)limit, sizeof *r->msgs);
	r->outcomes = xcalloc((size_t)limit, sizeof *r->outcomes);
	r->keys = xcalloc((size_t)limit, sizeof *r->keys);
	relay_keyset_init(&r->inflight, limit);
	relay_keyset_init(&r->waiting, limit);
}

static const struct sink_ops *
relay_sink_ops(const struct relay *r, const struct sink_type *type)
{
	const struct sink_ops *const *ops;

	if (r->opt->sink_ops == NULL)
		return sink_ops_find(type);
	for (ops = r->opt->sink_ops; *ops != NULL; ops++) {
		if ((*ops)->type == type)
			return *ops;
	}
	return NULL;
}

/* Make the live sink of cs and register it (a write). Does not connect. */
static int
relay_sink_start(struct relay *r, struct relay_sink *rs, const struct conf_sink *cs)
{
	const struct sink_ops *ops = relay_sink_ops(r, cs->type);
	char *cause = NULL;

	memset(rs, 0, sizeof *rs);
	if (ops == NULL) {
		log_error("sink %s: no implementation of type %s", cs->name, cs->type->name);
		return -1;
	}
	rs->cs = cs;
	if (filter_parse(cs->filter, &rs->filter, &cause) != 0) {
		log_error("sink %s: %s", cs->name, cause);
		free(cause);
		return -1;
	}
	rs->sk = sink_new(ops, cs->name, cs->options);
	if (relay_register(r, rs) != 0) {
		relay_sink_stop(rs);
		return -1;
	}
	return 0;
}

static void
relay_sink_stop(struct relay_sink *rs)
{
	sink_free(rs->sk);
	filter_free(rs->filter);
	relay_batch_free(&rs->ahead);
	memset(rs, 0, sizeof *rs);
}

static int
relay_setup(struct relay *r, struct conf *cf, struct store *st, struct wake *wake,
    const struct relay_options *opt)
{
	size_t i;

	memset(r, 0, sizeof *r);
	r->cf = cf;
	r->st = st;
	r->wake = wake;
	r->opt = opt;
	relay_buffers_alloc(r, cf->batch_size);
	r->sinks = xcalloc(cf->nsinks, sizeof *r->sinks);
	for (i = 0; i < cf->nsinks; i++) {
		if (relay_sink_start(r, &r->sinks[i], &cf->sinks[i]) != 0)
			return -1;
		r->nsinks++;
		log_info("sink %s: %s, from seq %lld", r->sinks[i].sk->name,
		    r->sinks[i].sk->target, (long long)r->sinks[i].cursor);
	}
	return 0;
}

static void
relay_teardown(struct relay *r)
{
	size_t i;

	for (i = 0; i < r->nsinks; i++)
		relay_sink_stop(&r->sinks[i]);
	free(r->sinks);
	relay_buffers_free(r);
}

/* ---- connections ------------------------------------------------------------------- */

/* An outage is logged as a warning, then each retry's delay at info up to this attempt,
 * then at debug, with a reminder at most every RELAY_REMINDER_MS (outage length, backlog). */
#define RELAY_RETRIES_LOGGED 5
#define RELAY_REMINDER_MS 60000

static int64_t
relay_reminder_ms(void)
{
	/* A test cannot wait a minute: OUTBOXD_TEST_REMINDER_MS shortens the period. */
	const char *s = getenv("OUTBOXD_TEST_REMINDER_MS");
	char *cause = NULL;
	int64_t ms;

	if (s != NULL && util_parse_int(s, 1, RELAY_REMINDER_MS, &ms, &cause) == 0)
		return ms;
	free(cause);
	return RELAY_REMINDER_MS;
}

/* The outage goes on: remind, at most once a period, how long and what waits. */
static void
relay_outage_remind(struct relay *r, struct relay_sink *rs, int64_t now)
{
	char *cause = NULL, *age;
	int64_t backlog;

	if (rs->down_since == 0 || rs->failures == 0 || now - rs->logged_at < relay_reminder_ms())
		return;
	rs->logged_at = now;
	age = util_human_age((double)(now - rs->down_since) / 1000);
	if (store_sink_backlog(r->st, rs->sk->name, &backlog, &cause) != 0) {
		log_warn("sink %s: still cannot connect after %s (%d attempts; backlog unknown: "
		    "%s): %s", rs->sk->name, age, rs->failures, cause, rs->last_error);
		free(cause);
	} else {
		log_warn("sink %s: still cannot connect after %s (%d attempts; %lld event%s "
		    "waiting): %s", rs->sk->name, age, rs->failures, (long long)backlog,
		    backlog == 1 ? "" : "s", rs->last_error);
	}
	free(age);
}

static int
relay_connect(struct relay *r, struct relay_sink *rs)
{
	int64_t now = util_monotonic_ms(), delay;
	char *cause = NULL, *text;

	if (rs->sk->connected)
		return 0;
	rs->sk->retry_after_max_ms = r->cf->backoff_max_ms;
	if (now < rs->reconnect_at) {
		relay_outage_remind(r, rs, now);
		return -1;
	}
	if (sink_connect(rs->sk, &cause) == 0) {
		if (rs->failures > 0) {
			text = util_human_age((double)(now - rs->down_since) / 1000);
			log_info("sink %s: connected again to %s after %s", rs->sk->name,
			    rs->sk->target, text);
			free(text);
		}
		rs->failures = 0;
		rs->down_since = 0;
		metrics_sink_reconnected(r->opt->metrics, (size_t)(rs - r->sinks));
		return 0;
	}
	rs->failures++;
	if (rs->down_since == 0)
		rs->down_since = now;
	snprintf(rs->last_error, sizeof rs->last_error, "%s", cause);
	if (r->opt->once) {
		log_warn("sink %s: cannot connect: %s", rs->sk->name, cause);
		r->unreachable = 1;
		free(cause);
		return -1;
	}
	delay = relay_backoff(r->cf, rs->failures);
	rs->reconnect_at = now + delay;
	text = util_human_age((double)delay / 1000);
	/* The first failure warns; the next few say when the next try is; then silence but
	 * for the reminders. */
	if (rs->failures <= RELAY_RETRIES_LOGGED) {
		log_msg(rs->failures == 1 ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, "sink %s: cannot connect: %s "
		    "(attempt %d; retrying in %s%s)", rs->sk->name, cause, rs->failures, text,
		    rs->failures == RELAY_RETRIES_LOGGED ? ", then quiet but for a reminder "
		    "every minute" : "");
		rs->logged_at = now;
	} else {
		log_debug("sink %s: cannot connect: %s (attempt %d; retrying in %s)",
		    rs->sk->name, cause, rs->failures, text);
		relay_outage_remind(r, rs, now);
	}
	free(text);
	free(cause);
	return -1;
}

static void
relay_connection_lost(struct relay *r, struct relay_sink *rs, const char *cause)
{
	int64_t now = util_monotonic_ms();

	/* One warning per outage: a broker that keeps dropping us is logged at debug level. */
	log_msg(rs->drops == 0 ? LOG_LEVEL_WARN : LOG_LEVEL_DEBUG, "sink %s: connection lost: %s "
	    "(reconnecting)", rs->sk->name, cause != NULL ? cause : "unknown error");
	sink_disconnect(rs->sk);
	/* The outage starts now, if reconnecting fails (relay_connect's reminders count it). */
	rs->down_since = now;
	/* Reconnect at once the first time; a broker that keeps dropping us gets backoff. */
	rs->drops++;
	rs->reconnect_at = rs->drops == 1 ? 0 : now + relay_backoff(r->cf, rs->drops - 1);
}

/* ---- publishing -------------------------------------------------------------------- */

/* A header that cannot be a CloudEvents extension: one warning per name, for a while. */
static void
relay_skip_extension(const char *name, void *arg)
{
	static char *warned[64];
	static size_t nwarned = 0;
	size_t i;

	for (i = 0; i < nwarned; i++) {
		if (strcmp(warned[i], name) == 0)
			return;
	}
	if (nwarned < sizeof warned / sizeof warned[0])
		warned[nwarned++] = xstrdup(name);
	log_warn("sink %s: header \"%s\" is not a CloudEvents extension (a-z, 0-9, at most "
	    "20 characters, a string, number or boolean): left out of the events",
	    (const char *)arg, name);
}

/* The name ev is published under on rs: the sink's prefix joined to the event's name. */
static const char *
relay_published_name(const struct relay_sink *rs, const struct store_event *ev,
    struct arena *text)
{
	size_t lprefix = strlen(rs->cs->prefix), lname;
	char *name;

	if (lprefix == 0)
		return ev->name;
	lname = strlen(ev->name);
	name = arena_alloc(text, lprefix + lname + 1);
	memcpy(name, rs->cs->prefix, lprefix);
	memcpy(name + lprefix, ev->name, lname + 1);
	return name;
}

/* The envelope of ev as rs publishes it under name, in the sink's format, in text. */
static const char *
relay_envelope(const struct relay_sink *rs, const struct store_event *ev, const char *name,
    struct arena *text, size_t *len)
{
	size_t lpayload = strlen(ev->payload);
	size_t lheaders = ev->headers != NULL ? strlen(ev->headers) : 0;
	char *envelope, *ce;

	if (rs->cs->format == SINK_FORMAT_CLOUDEVENTS) {
		ce = envelope_cloudevent(ev->id, name, rs->cs->ce_source, ev->created_at,
		    ev->payload, ev->headers, relay_skip_extension, rs->sk->name, len);
		if (ce == NULL)
			abort();
		envelope = arena_strndup(text, ce, *len);
		free(ce);
	} else {
		envelope = arena_alloc(text, envelope_max(ev->id, name, lpayload, lheaders));
		*len = envelope_write(envelope, ev->id, name, ev->payload, lpayload, ev->headers,
		    lheaders);
	}
	return envelope;
}

/* Event i of b as rs publishes it: its name, and its envelope unless the sink's filter
 * leaves it out (retries, which passed the filter once, always get one). */
static const struct relay_built *
relay_build(const struct relay_sink *rs, struct relay_batch *b, int i, int retry)
{
	struct relay_built *built = &b->built[i];
	const struct store_event *ev = &b->events[i];

	if (!built->done) {
		built->done = 1;
		built->name = relay_published_name(rs, ev, &b->text);
		built->envelope = NULL;
		if (retry || filter_match(rs->filter, ev->name, built->name))
			built->envelope = relay_envelope(rs, ev, built->name, &b->text,
			    &built->envelope_len);
	}
	return built;
}

/* n events were read into b: nothing of them is built yet. */
static void
relay_batch_read(struct relay_batch *b, int n)
{
	b->n = n;
	memset(b->built, 0, (size_t)n * sizeof *b->built);
}

/* Make message m for event ev, as built. */
static void
relay_add_message(struct relay *r, const struct relay_sink *rs, size_t m,
    const struct store_event *ev, const struct relay_built *built)
{
	struct sink_message *msg = &r->msgs[m];

	r->keys[m] = ev->key;
	memset(msg, 0, sizeof *msg);
	msg->seq = ev->seq;
	msg->id = ev->id;
	msg->name = built->name;
	msg->envelope = built->envelope;
	msg->envelope_len = built->envelope_len;
	msg->format = rs->cs->format;
	msg->payload = ev->payload;
	msg->headers = ev->headers;
	msg->created_at = ev->created_at;
	msg->status = SINK_UNSENT;
}

/*
 * While the broker works on the last run of a full batch, read the batch after it (what
 * the sink's next pass reads, if the whole run is delivered) and build its names and
 * envelopes. Nothing more: which of those events are published, held behind a key or
 * filtered out is decided when they are gathered, after this batch's outcomes are
 * recorded.
 */
static void
relay_read_ahead(void *arg)
{
	struct relay *r = arg;
	struct relay_sink *rs = r->ahead_for;
	double t0 = util_monotonic_seconds();
	char *cause = NULL;
	int i, n = 0;

	if (rs->ahead.events == NULL)
		relay_batch_alloc(&rs->ahead, r->limit);
	arena_reset(&rs->ahead.text);
	rs->ahead_after = r->ahead_from;
	rs->ahead_ready = store_read_new(r->st, r->ahead_from, r->limit, rs->ahead.events, &n,
	    &rs->ahead.text, &cause) == 0 && n > 0;
	if (rs->ahead_ready) {
		relay_batch_read(&rs->ahead, n);
		for (i = 0; i < n; i++)
			relay_build(rs, &rs->ahead, i, 0);
	}
	if (cause != NULL) {
		/* Not an error yet: the next pass reads again, and says so if it fails. */
		log_debug("sink %s: reading ahead: %s", rs->sk->name, cause);
		free(cause);
	}
	r->ahead_seconds = util_monotonic_seconds() - t0;
}

/* Publish msgs[0..n-1]; -1 if the connection broke (the statuses say what got through). */
static int
relay_publish(struct relay *r, struct relay_sink *rs, size_t n)
{
	char *cause = NULL;
	double t0;
	int rc;

	if (n == 0)
		return 0;
	r->ahead_seconds = 0;
	if (r->ahead_for == rs) {
		rs->sk->meanwhile = relay_read_ahead;
		rs->sk->meanwhile_arg = r;
	}
	t0 = util_monotonic_seconds();
	rc = rs->sk->ops->publish(rs->sk, r->msgs, n, &cause);
	rs->sk->meanwhile = NULL;
	r->ahead_for = NULL;
	/* The broker's time, not the read ahead's. */
	r->publish_seconds = util_monotonic_seconds() - t0 - r->ahead_seconds;
	if (rc == 0) {
		rs->drops = 0;
		return 0;
	}
	relay_connection_lost(r, rs, cause);
	free(cause);
	return -1;
}

/* The outcome of a message the broker refused, which had been tried attempts times. */
static void
relay_rejected(struct relay *r, struct relay_sink *rs, struct store_outcome *o,
    const struct sink_message *msg, int attempts)
{
	o->seq = msg->seq;
	o->attempts = attempts + 1;
	o->error = msg->error;
	if (o->attempts >= r->cf->max_attempts) {
		o->kind = STORE_FAILED;
		o->next_attempt_at = 0;
	} else {
		o->kind = STORE_RETRY;
		o->next_attempt_at = util_now_ms() + relay_backoff(r->cf, o->attempts);
	}
	log_debug("sink %s: event %s (seq %lld) rejected (attempt %d of %d): %s", rs->sk->name,
	    msg->id, (long long)msg->seq, o->attempts, r->cf->max_attempts, msg->error);
}

/* One line per batch for its rejections, however many: a broker refusing everything
 * must not flood the log. Each event's own error is in outbox_retry. */
static void
relay_log_rejections(const struct relay_sink *rs, const struct store_outcome *outcomes,
    size_t n)
{
	const struct store_outcome *last[2] = { NULL, NULL };
	size_t count[2] = { 0, 0 }, i;
	int failed;

	for (i = 0; i < n; i++) {
		if (outcomes[i].kind != STORE_RETRY && outcomes[i].kind != STORE_FAILED)
			continue;
		failed = outcomes[i].kind == STORE_FAILED;
		count[failed]++;
		last[failed] = &outcomes[i];
	}
	if (count[1] > 0)
		log_warn("sink %s: %zu event%s failed after the last attempt (see outbox_failed); "
		    "seq %lld: %s", rs->sk->name, count[1], count[1] == 1 ? "" : "s",
		    (long long)last[1]->seq, last[1]->error);
	if (count[0] > 0)
		log_info("sink %s: %zu event%s rejected, to be retried; seq %lld: %s",
		    rs->sk->name, count[0], count[0] == 1 ? "" : "s", (long long)last[0]->seq,
		    last[0]->error);
}

/*
 * Record the batch up to to with its nout outcomes (see the top of the file). Unless
 * wait, a move of the cursor alone does not wait for the write lock (until its
 * RECORD_DEFER_MS have passed): it is left for the next call. 0 if recorded or left.
 */
static int
relay_record(struct relay *r, struct relay_sink *rs, int64_t to, size_t nout, int wait)
{
	int64_t now = util_monotonic_ms();
	char *cause = NULL;
	int moved, rc;

	wait = wait || nout > 0 || (rs->record_by != 0 && now >= rs->record_by);
	rc = store_record(r->st, rs->sk->name, rs->recorded, to, r->outcomes, nout, wait, &moved,
	    &cause);
	if (rc == 1) {
		if (rs->record_by == 0)
			rs->record_by = now + RECORD_DEFER_MS;
		rs->cursor = to;
		return 0;
	}
	if (rc != 0) {
		/* Not recorded: the events will be published again (at-least-once). */
		log_error("sink %s: %s", rs->sk->name, cause);
		free(cause);
		return -1;
	}
	rs->record_by = 0;
	relay_log_rejections(rs, r->outcomes, nout);
	if (moved) {
		if (store_sink_cursor(r->st, rs->sk->name, &rs->cursor, &cause) != 0) {
			log_error("sink %s: %s", rs->sk->name, cause);
			free(cause);
			return -1;
		}
		log_info("sink %s: cursor moved to %lld by someone else (replay?)", rs->sk->name,
		    (long long)rs->cursor);
	}
	rs->recorded = rs->cursor = moved ? rs->cursor : to;
	return 0;
}

/* Write the cursor moves left waiting, before the loop sleeps or stops. -1 if one could
 * not be (it stays waiting). */
static int
relay_record_left(struct relay *r)
{
	int rc = 0;
	size_t i;

	for (i = 0; i < r->nsinks; i++) {
		struct relay_sink *rs = &r->sinks[i];
		if (rs->record_by != 0 && relay_record(r, rs, rs->cursor, 0, 1) != 0)
			rc = -1;
	}
	return rc;
}

/* Count a recorded batch of n messages in the metrics: those up to seq upto. */
static void
relay_observe(struct relay *r, const struct relay_sink *rs, size_t n, int64_t upto,
    size_t nout)
{
	int64_t failed = 0;
	size_t i;

	for (i = 0; i < nout; i++)
		failed += r->outcomes[i].kind == STORE_FAILED;
	metrics_batch(r->opt->metrics, (size_t)(rs - r->sinks), r->publish_seconds, r->msgs, n,
	    upto, failed);
}

/* Publish the retries of rs that are due. Returns how many were read, -1 on error. */
static int
relay_retries(struct relay *r, struct relay_sink *rs)
{
	size_t i, nout = 0;
	int n, broken, rc;
	char *cause = NULL;

	if (store_read_due(r->st, rs->sk->name, util_now_ms(), r->limit, r->cur.events, &n,
	    &r->cur.text, &cause) != 0) {
		log_error("sink %s: %s", rs->sk->name, cause);
		free(cause);
		return -1;
	}
	relay_batch_read(&r->cur, n);
	for (i = 0; i < (size_t)n; i++)
		relay_add_message(r, rs, i, &r->cur.events[i], relay_build(rs, &r->cur, (int)i, 1));
	broken = relay_publish(r, rs, (size_t)n);
	for (i = 0; i < (size_t)n; i++) {
		struct store_outcome *o = &r->outcomes[nout];
		if (r->msgs[i].status == SINK_DELIVERED) {
			memset(o, 0, sizeof *o);
			o->seq = r->msgs[i].seq;
			o->kind = STORE_DELIVERED;
			nout++;
		} else if (r->msgs[i].status == SINK_REJECTED) {
			relay_rejected(r, rs, o, &r->msgs[i], r->cur.events[i].attempts);
			nout++;
		}
	}
	rc = relay_record(r, rs, rs->cursor, nout, 0);
	if (rc == 0)
		relay_observe(r, rs, (size_t)n, INT64_MAX, nout);
	arena_reset(&r->cur.text);
	return rc != 0 || broken ? -1 : n;
}

/* Does ev wait behind an earlier event with its key? */
static int
relay_key_waits(struct relay *r, struct relay_sink *rs, const struct store_event *ev,
    int64_t *blocker)
{
	char *cause = NULL;

	*blocker = 0;
	if (relay_keyset_find(&r->waiting, ev->key, 0))
		return 1;
	if (store_key_waiting(r->st, rs->sk->name, ev->key, blocker, &cause) != 0) {
		log_error("sink %s: %s", rs->sk->name, cause);
		free(cause);
		return -1;
	}
	if (*blocker > 0)
		relay_keyset_find(&r->waiting, ev->key, 1);
	return *blocker > 0;
}

/*
 * Gather messages from events[*next..n-1] until a key repeats; events filtered out or held
 * behind their key are handled without publishing. *next moves past what was gathered.
 */
static int
relay_gather(struct relay *r, struct relay_sink *rs, int n, int *next, size_t *nmsg,
    size_t *nout)
{
	int64_t blocker;
	int j, waits;

	relay_keyset_clear(&r->inflight);
	for (j = *next; j < n; j++) {
		const struct store_event *ev = &r->cur.events[j];
		const struct relay_built *built = relay_build(rs, &r->cur, j, 0);
		if (built->envelope == NULL)
			continue;
		if (ev->key != NULL && relay_keyset_find(&r->inflight, ev->key, 0))
			break;
		if (ev->key != NULL && (waits = relay_key_waits(r, rs, ev, &blocker)) != 0) {
			if (waits < 0)
				return -1;
			memset(&r->outcomes[*nout], 0, sizeof r->outcomes[*nout]);
			r->outcomes[*nout].seq = ev->seq;
			r->outcomes[*nout].kind = STORE_WAITING;
			r->outcomes[*nout].next_attempt_at = util_now_ms();
			r->outcomes[*nout].error = "waiting behind an earlier event with the same key";
			(*nout)++;
			continue;
		}
		if (ev->key != NULL)
			relay_keyset_find(&r->inflight, ev->key, 1);
		relay_add_message(r, rs, (*nmsg)++, ev, built);
	}
	*next = j;
	return 0;
}

/* Publish one gathered run and record it; -1 if publishing or recording broke. */
static int
relay_publish_run(struct relay *r, struct relay_sink *rs, int64_t last_seq, size_t nmsg,
    size_t nout)
{
	int64_t to = last_seq;
	size_t i, kept;
	int broken, rc;

	broken = relay_publish(r, rs, nmsg);
	for (i = 0; i < nmsg; i++) {
		const struct sink_message *msg = &r->msgs[i];
		if (msg->status == SINK_UNSENT) {
			to = msg->seq - 1;   /* everything before it is handed off */
			break;
		}
		if (msg->status == SINK_REJECTED) {
			relay_rejected(r, rs, &r->outcomes[nout], msg, 0);
			/* Later events with its key, in this batch too, now wait behind it. */
			if (r->outcomes[nout].kind == STORE_RETRY && r->keys[i] != NULL)
				relay_keyset_find(&r->waiting, r->keys[i], 1);
			nout++;
		}
	}
	/* Outcomes past the cursor are not recorded: those events will be read again. */
	for (i = kept = 0; i < nout; i++) {
		if (r->outcomes[i].seq <= to)
			r->outcomes[kept++] = r->outcomes[i];
	}
	rc = relay_record(r, rs, to, kept, 0);
	if (rc == 0)
		relay_observe(r, rs, nmsg, to, kept);
	return rc != 0 || broken ? -1 : 0;
}

/* Publish the next batch of new events for rs. Returns how many were read, -1 on error. */
static int
relay_new_events(struct relay *r, struct relay_sink *rs)
{
	size_t nmsg, nout;
	int64_t stored;
	int n, next = 0, rc = 0;
	char *cause = NULL;

	/* The cursor may have been moved by an operator (outboxctl replay --from-seq), or its
	 * row removed (outboxctl sinks rm): then the sink starts again like a new one (and
	 * a move of ours still waiting is forgotten). */
	if (store_sink_cursor(r->st, rs->sk->name, &stored, &cause) != 0)
		rc = -1;
	else if (stored != rs->recorded) {
		rs->cursor = rs->recorded = stored;
		rs->record_by = 0;
	}
	if (rc == 0 && rs->cursor < 0) {
		log_warn("sink %s: its row in outbox_sink was removed: registering it again",
		    rs->sk->name);
		rc = store_sink_register(r->st, rs->cs->name, rs->cs->type->name, rs->cs->filter,
		    rs->cs->prefix, rs->cs->start_at == CONF_START_LATEST, &rs->cursor, &cause);
		rs->recorded = rs->cursor;
	}
	if (rc == 0 && rs->ahead_ready && rs->ahead_after == rs->cursor) {
		struct relay_batch read = rs->ahead;
		rs->ahead = r->cur;
		r->cur = read;
		n = r->cur.n;
	} else if (rc != 0 || store_read_new(r->st, rs->cursor, r->limit, r->cur.events, &n,
	    &r->cur.text, &cause) != 0) {
		log_error("sink %s: %s", rs->sk->name, cause);
		free(cause);
		return -1;
	} else {
		relay_batch_read(&r->cur, n);
	}
	rs->ahead_ready = 0;
	relay_keyset_clear(&r->waiting);
	while (next < n && rc == 0) {
		nmsg = nout = 0;
		if (relay_gather(r, rs, n, &next, &nmsg, &nout) != 0) {
			rc = -1;
			break;
		}
		if (next == n && n == r->limit) {
			r->ahead_for = rs;
			r->ahead_from = r->cur.events[n - 1].seq;
		}
		rc = relay_publish_run(r, rs, r->cur.events[next - 1].seq, nmsg, nout);
	}
	r->ahead_for = NULL;
	arena_reset(&r->cur.text);
	return rc != 0 ? -1 : n;
}

/* ---- the loop ---------------------------------------------------------------------- */

/* One pass over rs: retries due, then new events. Returns events read, -1 on trouble. */
static int
relay_sink_pass(struct relay *r, struct relay_sink *rs)
{
	int a, b;

	if (relay_connect(r, rs) != 0)
		return 0;
	if ((a = relay_retries(r, rs)) < 0)
		return -1;
	if ((b = relay_new_events(r, rs)) < 0)
		return -1;
	return a + b;
}

/* Delete a small batch of old delivered events when retention is on. */
static void
relay_retention(struct relay *r)
{
	static const int purge_batch = 1000;
	int64_t now = util_monotonic_ms();
	char *cause = NULL;
	int deleted = 0;

	if (r->cf->retention_ms <= 0 || now < r->next_purge_at)
		return;
	if (store_purge(r->st, util_now_ms() - r->cf->retention_ms, purge_batch, &deleted,
	    &cause) != 0) {
		log_error("retention: %s", cause);
		free(cause);
	} else if (deleted > 0) {
		log_info("retention: deleted %d delivered events", deleted);
	}
	/* Small transactions, so producers never wait long; keep going while there is more. */
	r->next_purge_at = now + (deleted == purge_batch ? 100 : 60000);
}

/* How long may the loop sleep? Until a retry or reconnect is due, at most poll_ms. */
static int
relay_sleep_ms(struct relay *r, int poll_ms)
{
	int64_t wall = util_now_ms(), mono = util_monotonic_ms(), at, t = poll_ms;
	char *cause = NULL;
	size_t i;

	for (i = 0; i < r->nsinks; i++) {
		struct relay_sink *rs = &r->sinks[i];
		if (!rs->sk->connected) {
			if (rs->reconnect_at - mono < t)
				t = rs->reconnect_at - mono;
			continue;
		}
		if (rs->sk->ops->idle != NULL && t > 1000)
			t = 1000;
		if (store_next_due(r->st, rs->sk->name, &at, &cause) != 0) {
			log_error("sink %s: %s", rs->sk->name, cause);
			free(cause);
			cause = NULL;
		} else if (at >= 0 && at - wall < t) {
			t = at - wall;
		}
	}
	return t < 0 ? 0 : (int)t;
}

static void
relay_idle(struct relay *r)
{
	char *cause = NULL;
	size_t i;

	for (i = 0; i < r->nsinks; i++) {
		struct relay_sink *rs = &r->sinks[i];
		if (!rs->sk->connected || rs->sk->ops->idle == NULL)
			continue;
		if (rs->sk->ops->idle(rs->sk, &cause) != 0) {
			relay_connection_lost(r, rs, cause);
			free(cause);
			cause = NULL;
		}
	}
}

/* ---- watching: metrics and systemd ------------------------------------------------- */

/* The metrics follow the sinks, in the loop's order. */
static void
relay_watch_sinks(struct relay *r)
{
	const char **names = xcalloc(r->nsinks + 1, sizeof *names);
	size_t i;

	for (i = 0; i < r->nsinks; i++)
		names[i] = r->sinks[i].sk->name;
	metrics_set_sinks(r->opt->metrics, names, r->nsinks);
	free(names);
}

/* The backlog gauges, from the database: index seeks only, at most once a period. */
static void
relay_watch_refresh(struct relay *r)
{
	int64_t max_seq, retrying, oldest;
	char *cause = NULL;
	size_t i;

	if (store_max_seq(r->st, &max_seq, &cause) == 0) {
		metrics_max_seq(r->opt->metrics, max_seq);
		for (i = 0; i < r->nsinks && cause == NULL; i++) {
			if (store_sink_waiting(r->st, r->sinks[i].sk->name, r->sinks[i].cursor,
			    &retrying, &oldest, &cause) == 0)
				metrics_sink_waiting(r->opt->metrics, i, retrying, oldest);
		}
	}
	if (cause != NULL) {
		log_debug("metrics: %s", cause);
		free(cause);
	}
}

/* A pass ended; backoff_ms is the pause now in force. Feed the metrics and systemd. */
static void
relay_watch(struct relay *r, int64_t backoff_ms)
{
	int64_t now;
	char status[sizeof r->status];
	size_t i;

	notify_watchdog(r->opt->notify);
	if (r->opt->metrics == NULL)
		return;
	for (i = 0; i < r->nsinks; i++)
		metrics_sink_state(r->opt->metrics, i, r->sinks[i].sk->connected,
		    r->sinks[i].cursor);
	metrics_pass(r->opt->metrics, r->cf->poll_interval_ms, backoff_ms);
	now = util_monotonic_ms();
	if (now < r->next_refresh_at)
		return;
	r->next_refresh_at = now + WATCH_REFRESH_MS;
	relay_watch_refresh(r);
	metrics_status(r->opt->metrics, status, sizeof status);
	if (strcmp(status, r->status) != 0) {
		memcpy(r->status, status, sizeof status);
		notify_send(r->opt->notify, "STATUS=%s", status);
	}
}

/* Pause ms, feeding the watchdog meanwhile: the loop is alive, only waiting. */
static void
relay_pause_watched(struct relay *r, int64_t ms)
{
	int64_t step = notify_watchdog_ms(r->opt->notify), t;

	while (ms > 0 && !*r->opt->stop) {
		t = step > 0 && step < ms ? step : ms;
		relay_pause(t);
		ms -= t;
		notify_watchdog(r->opt->notify);
	}
}

/* ---- reload ------------------------------------------------------------------------ */

/* The running sink called name, or NULL. */
static struct relay_sink *
relay_find_sink(struct relay *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nsinks; i++) {
		if (r->sinks[i].sk != NULL && strcmp(r->sinks[i].sk->name, name) == 0)
			return &r->sinks[i];
	}
	return NULL;
}

static int
relay_conf_has_sink(const struct conf *cf, const char *name)
{
	size_t i;

	for (i = 0; i < cf->nsinks; i++) {
		if (strcmp(cf->sinks[i].name, name) == 0)
			return 1;
	}
	return 0;
}

/*
 * Switch to next: sinks whose configuration did not change keep running as they are;
 * changed ones are made again (and reconnect); new ones start; removed ones stop (their
 * row stays). New and changed sinks are registered first: if that fails, nothing changes.
 * Called between passes, so no batch is in flight.
 */
static int
relay_apply(struct relay *r, struct conf *next)
{
	struct relay_sink *sinks = xcalloc(next->nsinks, sizeof *sinks), *old;
	size_t i, j;

	for (i = 0; i < next->nsinks; i++) {
		old = relay_find_sink(r, next->sinks[i].name);
		if (old != NULL && conf_sink_equal(old->cs, &next->sinks[i]))
			continue;
		if (relay_sink_start(r, &sinks[i], &next->sinks[i]) != 0) {
			for (j = 0; j < i; j++)
				relay_sink_stop(&sinks[j]);
			free(sinks);
			return -1;
		}
		log_info("sink %s: %s %s, from seq %lld", sinks[i].sk->name, old != NULL ?
		    "changed, now" : "added:", sinks[i].sk->target, (long long)sinks[i].cursor);
	}
	for (i = 0; i < next->nsinks; i++) {
		if (sinks[i].sk != NULL)
			continue;
		/* Unchanged: keep the connection, the cursor and the backoff state. */
		old = relay_find_sink(r, next->sinks[i].name);
		sinks[i] = *old;
		sinks[i].cs = &next->sinks[i];
		memset(old, 0, sizeof *old);
	}
	for (i = 0; i < r->nsinks; i++) {
		if (r->sinks[i].sk == NULL)
			continue;
		if (!relay_conf_has_sink(next, r->sinks[i].sk->name))
			log_info("sink %s: removed from the configuration: stopped (its row in "
			    "outbox_sink stays)", r->sinks[i].sk->name);
		relay_sink_stop(&r->sinks[i]);
	}
	free(r->sinks);
	r->sinks = sinks;
	r->nsinks = next->nsinks;
	if (next->batch_size != r->limit) {
		relay_buffers_alloc(r, next->batch_size);
		for (i = 0; i < r->nsinks; i++)
			relay_batch_free(&r->sinks[i].ahead);   /* made for the old size */
	}
	conf_free(r->cf);
	*r->cf = *next;
	/* The sinks point into the configuration's array, which moved with it. */
	for (i = 0; i < r->nsinks; i++)
		r->sinks[i].cs = &r->cf->sinks[i];
	return 0;
}

/* SIGHUP: load the configuration again and apply it; a bad one changes nothing. */
static void
relay_reload(struct relay *r)
{
	struct conf next;
	char *cause = NULL;

	if (r->opt->load == NULL)
		return;
	if (r->opt->load(&next, r->opt->load_arg, &cause) != 0) {
		log_error("reload refused, the running configuration stays: %s", cause);
		free(cause);
		return;
	}
	if ((next.metrics_listen == NULL) != (r->cf->metrics_listen == NULL) ||
	    (next.metrics_listen != NULL && strcmp(next.metrics_listen, r->cf->metrics_listen) != 0))
		log_warn("metrics.listen changed: it takes effect when outboxd restarts");
	if (strcmp(next.database, r->cf->database) != 0) {
		log_error("reload refused, the running configuration stays: outbox.database "
		    "changed to %s (restart outboxd to relay another database)", next.database);
		conf_free(&next);
		return;
	}
	if (relay_apply(r, &next) != 0) {
		log_error("reload refused, the running configuration stays: a sink could not be "
		    "registered");
		conf_free(&next);
		return;
	}
	relay_watch_sinks(r);
	log_info("configuration reloaded (%zu sink%s, batch %d)", r->nsinks,
	    r->nsinks == 1 ? "" : "s", r->limit);
}

int
relay_run(struct conf *cf, struct store *st, struct wake *wake,
    const struct relay_options *opt)
{
	struct relay r;
	int64_t poll_us = 100, max_us = (int64_t)cf->poll_interval_ms * 1000, sleep_us;
	int64_t pause_ms = 0;
	int work, n, trouble, broken = 0, status = 0;
	size_t i;

	if (relay_setup(&r, cf, st, wake, opt) != 0) {
		relay_teardown(&r);
		return EXIT_RUNTIME;
	}
	relay_watch_sinks(&r);
	notify_send(opt->notify, "READY=1");
	relay_watch(&r, 0);
	while (!*opt->stop) {
		if (opt->hup != NULL && *opt->hup) {
			*opt->hup = 0;
			notify_send(opt->notify, "RELOADING=1\nMONOTONIC_USEC=%lld",
			    (long long)util_monotonic_ms() * 1000);
			log_reopen();
			relay_record_left(&r);   /* a sink that changes starts from its row */
			relay_reload(&r);
			notify_send(opt->notify, "READY=1");
		}
		work = trouble = 0;
		for (i = 0; i < r.nsinks && !*opt->stop; i++) {
			if ((n = relay_sink_pass(&r, &r.sinks[i])) < 0)
				trouble = 1;
			else
				work += n;
		}
		/* The loop sleeps after a pass with no work or one that broke. */
		if ((work == 0 || trouble) && relay_record_left(&r) != 0)
			trouble = 1;
		relay_retention(&r);
		if (opt->once && r.unreachable) {
			status = EXIT_UNREACHABLE;
			break;
		}
		if (trouble) {
			/*
			 * A pass broke (the database refused the bookkeeping: full disk, locked; or a
			 * broker dropped us). Pause before the next one, and let no wake-up cut the
			 * pause short: our own failed write touches the WAL, and waking on it
			 * published the unrecorded batch again in a tight loop (thousands of times a
			 * second while the disk was full).
			 */
			if (opt->once && ++broken == ONCE_MAX_BROKEN) {
				log_error("--once: giving up after %d passes in a row that failed",
				    broken);
				status = EXIT_RUNTIME;
				break;
			}
			pause_ms = relay_next_pause(&r, pause_ms);
			relay_watch(&r, pause_ms);
			relay_idle(&r);
			relay_pause_watched(&r, pause_ms);
			poll_us = SETTLE_US;
			continue;
		}
		pause_ms = 0;
		broken = 0;
		relay_watch(&r, 0);
		if (work > 0) {
			poll_us = SETTLE_US;
			continue;
		}
		if (opt->once)
			break;
		/*
		 * Idle: sleep until the database changes or something falls due. A change seen by
		 * inotify may be a commit that is not visible yet, so look again soon, then less
		 * and less often; without inotify this same schedule is the adaptive poll.
		 */
		relay_idle(&r);
		sleep_us = (int64_t)relay_sleep_ms(&r, cf->poll_interval_ms) * 1000;
		if (poll_us < sleep_us)
			sleep_us = poll_us;
		if (notify_watchdog_ms(opt->notify) > 0 &&
		    sleep_us > notify_watchdog_ms(opt->notify) * 1000)
			sleep_us = notify_watchdog_ms(opt->notify) * 1000;
		if (wake_wait(wake, sleep_us))
			poll_us = SETTLE_US;
		else if (poll_us < max_us)
			poll_us = poll_us * 2 < max_us ? poll_us * 2 : max_us;
	}
	if (relay_record_left(&r) != 0 && status == 0)
		status = EXIT_RUNTIME;
	if (*opt->stop) {
		notify_send(opt->notify, "STOPPING=1");
		log_info("stopping: the batch in flight was recorded");
	}
	relay_teardown(&r);
	return status;
}
