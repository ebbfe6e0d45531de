/*
 * sink.h: the one interface every sink implements, and the table of sink types.
 *
 * A sink turns envelopes into messages on one broker. It never touches SQLite: the loop
 * (relay.c) reads events, asks the sink to publish a batch, and records what the sink
 * said about each message. A sink decides per message, the loop decides what follows:
 *
 *   SINK_DELIVERED  the broker took it (confirmed, where the protocol can confirm).
 *   SINK_REJECTED   the broker refused this message (error reply, nack, basic.return,
 *                   oversize): an attempt is counted; after max attempts it is failed.
 *   SINK_UNSENT     not known to have arrived, through no fault of the message
 *                   (connection lost, timeout, broker closed the channel): no attempt
 *                   is counted and it is published again after reconnecting.
 */
#ifndef RELAY_SINK_H
#define RELAY_SINK_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

enum sink_status {
	SINK_UNSENT = 0,
	SINK_DELIVERED,
	SINK_REJECTED
};

#define SINK_ERROR_MAX 256

struct sink_message {
	/* Set by the loop; borrowed by the sink for the duration of publish. */
	int64_t seq;
	const char *id;
	const char *name;      /* published name: the sink's prefix + the event name */
	const char *envelope;  /* {"id","name","data"[,"metadata"]}, one line of JSON */
	size_t envelope_len;
	const char *headers;   /* the event's headers, a JSON object, or NULL */
	int64_t created_at;    /* unix ms */
	/* Set by the sink. */
	enum sink_status status;
	char error[SINK_ERROR_MAX]; /* why, unless delivered */
};

struct sink;

struct sink_ops {
	const char *type; /* "stdout", "redis", "rabbitmq": the value of "type" in config */

	/* Read this sink's own options from opts (a "sinks" entry, or the flat push-events
	 * keys mapped onto one). Keys common to all sinks (see sink_common_keys) are not the
	 * sink's business. Warn about unknown keys with conf_warn_unknown. Does not connect.
	 * Sets sk->priv and sk->target. Returns 0, or -1 with *cause (malloc'd). */
	int (*configure)(struct sink *sk, const cJSON *opts, char **cause);

	/* Connect (and declare what needs declaring). -1 with *cause when the broker cannot
	 * be reached or refuses us; the loop logs it and tries again with backoff. */
	int (*connect)(struct sink *sk, char **cause);

	/* Publish msgs[0..n-1] in order, pipelined, and set every msgs[i].status (and error).
	 * Returns 0, or -1 when the connection is no longer usable (every message not known
	 * delivered or rejected is SINK_UNSENT, *cause says why); the loop then disconnects
	 * and reconnects. */
	int (*publish)(struct sink *sk, struct sink_message *msgs, size_t n, char **cause);

	/* Optional: called while idle, at least every second, to service heartbeats or notice
	 * a dead connection. -1 with *cause when the connection is lost. */
	int (*idle)(struct sink *sk, char **cause);

	/* Close the connection, if any. The sink can connect again afterwards. */
	void (*disconnect)(struct sink *sk);

	/* Free priv (after disconnect). */
	void (*free)(struct sink *sk);
};

struct sink {
	char *name;                 /* the sink's name, its row in outbox_sink */
	char *where;                /* where its options come from, for messages: "sinks.audit" */
	const struct sink_ops *ops;
	char *target;               /* for logs, secrets removed: "redis://127.0.0.1:6379 channel liquid" */
	void *priv;                 /* the sink's own state */
};

extern const struct sink_ops sink_stdout_ops;
extern const struct sink_ops sink_redis_ops;
extern const struct sink_ops sink_rabbitmq_ops;

/* The sink type called type, or NULL. */
const struct sink_ops *sink_find_type(const char *type);

/* Keys every sink object may carry, handled by conf.c, not by the sink ("type",
 * "events", "prefix"); NULL-terminated, for conf_warn_unknown. */
extern const char *const sink_common_keys[];

/* Expand "{name}" in tmpl with name into buf; -1 if it does not fit. */
int sink_expand(const char *tmpl, const char *name, char *buf, size_t len);

/* Record a per-message outcome with a printf-style reason. */
void sink_set_status(struct sink_message *m, enum sink_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
