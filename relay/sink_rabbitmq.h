/*
 * sink_rabbitmq.h: the RabbitMQ sink's options, shared by its type
 * (sink_rabbitmq_options.c, what the configuration reads and checks) and its
 * implementation (sink_rabbitmq.c).
 */
#ifndef RELAY_SINK_RABBITMQ_H
#define RELAY_SINK_RABBITMQ_H

#include <stddef.h>

#include "amqp_url.h"
#include "option.h"
#include "sink.h"

enum sink_rabbitmq_queue_type {
	SINK_RABBITMQ_CLASSIC,
	SINK_RABBITMQ_QUORUM,
	SINK_RABBITMQ_STREAM
};

enum sink_rabbitmq_declare {
	SINK_RABBITMQ_DECLARE,
	SINK_RABBITMQ_PASSIVE
};

struct sink_rabbitmq_options {
	struct option_strings urls;   /* tried in order on connect */
	char *password;               /* for every URL that has none */
	char *queue;
	int queue_type;               /* enum sink_rabbitmq_queue_type */
	char *queue_arguments;        /* JSON object of queue.declare arguments, or NULL */
	char *exchange;               /* "": the default exchange */
	char *exchange_type;
	int exchange_declare;         /* enum sink_rabbitmq_declare */
	char *routing_key;            /* template; "{name}" expands */
	int declare_queue;
	int confirm_window;
	int connect_timeout_ms;
	int timeout_ms;               /* waiting for confirms, and for writes */
	struct sink_tls_options tls;
};

/* The URLs parsed, the password applied; *urls is malloc'd, each freed with amqp_url_free.
 * -1 with *cause naming where. */
int sink_rabbitmq_urls(const struct sink_rabbitmq_options *o, const char *where,
    struct amqp_url **urls, size_t *n, char **cause);
void sink_rabbitmq_urls_free(struct amqp_url *urls, size_t n);

#endif
