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

#include "option.h"

enum sink_status {
	SINK_UNSENT = 0,
	SINK_DELIVERED,
	SINK_REJECTED
};

#define SINK_ERROR_MAX 256

/* What msg->envelope holds: a sink's "format" (conf.c). */
enum sink_format {
	SINK_FORMAT_ENVELOPE,      /* {"id","name","data"[,"metadata"]} */
	SINK_FORMAT_CLOUDEVENTS    /* a CloudEvents 1.0 structured JSON event */
};

struct sink_message {
	/* Set by the loop; borrowed by the sink for the duration of publish. */
	int64_t seq;
	const char *id;
	const char *name;      /* published name: the sink's prefix + the event name */
	const char *envelope;  /* the event in the sink's format, one line of JSON */
	size_t envelope_len;
	int format;            /* enum sink_format */
	const char *payload;   /* the event's data, compact JSON */
	const char *headers;   /* the event's headers, a JSON object, or NULL */
	int64_t created_at;    /* unix ms */
	/* Set by the sink. */
	enum sink_status status;
	char error[SINK_ERROR_MAX]; /* why, unless delivered */
};

struct sink;

/*
 * A sink type as the configuration sees it: plain data, no connection, no broker library
 * (conf.c and the config fuzzer link these without hiredis or rabbitmq-c). Its options are
 * one table (option.h) filling a struct of options_size bytes.
 */
struct sink_type {
	const char *name;              /* the value of "type" in config */
	const struct conf_option *options;  /* ends with OPTION_END */
	size_t options_size;           /* of the struct the table fills */
	/* Optional: checks that span options (a user name without a password) and derived
	 * defaults, after the table was read. -1 with *cause (malloc'd) naming where. */
	int (*check)(void *opts, const char *where, char **cause);
	/* Where it publishes, for logs, passwords masked (malloc'd). */
	char *(*describe)(const void *opts);
};

extern const struct sink_type sink_stdout_type;
extern const struct sink_type sink_redis_type;
extern const struct sink_type sink_rabbitmq_type;
extern const struct sink_type sink_nats_type;
extern const struct sink_type sink_mqtt_type;
extern const struct sink_type sink_http_type;

/*
 * TLS options of the sinks that take them under these names (RabbitMQ, HTTP): one struct
 * in their options, one set of rows in their tables, one check.
 */
struct sink_tls_options {
	char *ca;                 /* CA bundle, or NULL */
	char *cert, *key;         /* client certificate and key, both or neither */
	int verify_peer;
	int verify_hostname;
};

/* offsetof takes a type and a member designator, which cannot be parenthesized. */
/* NOLINTBEGIN(bugprone-macro-parentheses) */
#define SINK_TLS_OPTIONS(st, field, ca_help)                                            \
	{ .name = "tls-ca-file", .type = OPTION_STRING,                                 \
	  .offset = offsetof(st, field.ca), .help = (ca_help) },                          \
	{ .name = "tls-cert-file", .type = OPTION_STRING,                               \
	  .offset = offsetof(st, field.cert),                                           \
	  .help = "client certificate (with tls-key-file)" },                           \
	{ .name = "tls-key-file", .type = OPTION_STRING,                                \
	  .offset = offsetof(st, field.key), .help = "client key (with tls-cert-file)" }, \
	{ .name = "tls-verify-peer", .type = OPTION_BOOL,                               \
	  .offset = offsetof(st, field.verify_peer), .def = "true",                     \
	  .help = "check the server's certificate against the CA" },                    \
	{ .name = "tls-verify-hostname", .type = OPTION_BOOL,                           \
	  .offset = offsetof(st, field.verify_hostname), .def = "true",                 \
	  .help = "check that the certificate names the URL's host" }
/* NOLINTEND(bugprone-macro-parentheses) */

/* The rules across the TLS options; -1 with *cause naming where. */
int sink_tls_check(const struct sink_tls_options *tls, const char *where, char **cause);

/* The sink type called name, or NULL. */
const struct sink_type *sink_type_find(const char *name);
/* The options of a sink of type, read from obj (defaults for what it does not say) and
 * checked: malloc'd, freed with sink_type_free. NULL with *cause naming where.key. */
void *sink_type_read(const struct sink_type *type, const cJSON *obj, const char *where,
    char **cause);
void sink_type_free(const struct sink_type *type, void *opts);
/* "stdout, redis, rabbitmq, nats, mqtt or http", for messages. */
const char *sink_type_names(void);

/*
 * A live sink. Ownership, for every sink: sink_new copies the options it is given, so a
 * sink never points into a configuration (which a reload frees); sink_free disconnects,
 * closes and frees everything the sink holds.
 */
struct sink_ops {
	const struct sink_type *type;

	/* Make sk->priv from sk->options, which the type's check accepted. No I/O. */
	void (*open)(struct sink *sk);

	/* Optional: connect (and declare what needs declaring). -1 with *cause when the broker cannot
	 * be reached or refuses us; the loop logs it and tries again with backoff. */
	int (*connect)(struct sink *sk, char **cause);

	/* Publish msgs[0..n-1] in order, pipelined, and set every msgs[i].status (and error).
	 * Returns 0, or -1 when the connection is no longer usable (every message not known
	 * delivered or rejected is SINK_UNSENT, *cause says why); the loop then disconnects
	 * and reconnects. Once the batch is written out, before waiting for the broker's
	 * answers, call sink_meanwhile (optional: it lets the loop work while the broker
	 * does). */
	int (*publish)(struct sink *sk, struct sink_message *msgs, size_t n, char **cause);

	/* Optional: called while idle, at least every second, to service heartbeats or notice
	 * a dead connection. -1 with *cause when the connection is lost. */
	int (*idle)(struct sink *sk, char **cause);

	/* Optional: close the connection, if any. The sink can connect again afterwards. */
	void (*disconnect)(struct sink *sk);

	/* Optional: free priv (after disconnect). */
	void (*close)(struct sink *sk);
};

struct sink {
	char *name;                 /* the sink's name, its row in outbox_sink */
	char *target;               /* for logs, secrets removed: "redis://127.0.0.1:6379 channel liquid" */
	const struct sink_ops *ops;
	void *options;              /* the sink's own copy, filled by ops->type->options */
	void *priv;                 /* the sink's own state */
	int connected;
	/* The longest pause a sink may impose before its next connect (an HTTP Retry-After):
	 * relay.backoff-max-ms, kept current by the loop. */
	int64_t retry_after_max_ms;
	/* Set by the loop for one publish, or NULL: what it does while the broker works
	 * (it reads its next batch). Run through sink_meanwhile. */
	void (*meanwhile)(void *arg);
	void *meanwhile_arg;
};

extern const struct sink_ops sink_stdout_ops;
extern const struct sink_ops sink_redis_ops;
extern const struct sink_ops sink_rabbitmq_ops;
extern const struct sink_ops sink_nats_ops;
extern const struct sink_ops sink_mqtt_ops;
extern const struct sink_ops sink_http_ops;

/* The built-in ops of a type, or NULL. */
const struct sink_ops *sink_ops_find(const struct sink_type *type);

/* A sink called name, of ops' type, with a copy of options. Does not connect. */
struct sink *sink_new(const struct sink_ops *ops, const char *name, const void *options);
/* Connect, and on success mark the sink connected. */
int sink_connect(struct sink *sk, char **cause);
/* Disconnect if connected. */
void sink_disconnect(struct sink *sk);
void sink_free(struct sink *sk);

/* Expand "{name}" in tmpl with name into buf; -1 if it does not fit. */
int sink_expand(const char *tmpl, const char *name, char *buf, size_t len);

/* The batch is written out: let the loop do its meanwhile work, once, if it has any. */
void sink_meanwhile(struct sink *sk);

/* Record a per-message outcome with a printf-style reason. */
void sink_set_status(struct sink_message *m, enum sink_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
