/*
 * sink_nats.h: the NATS sink's options, shared by its type (sink_nats_options.c, what the
 * configuration reads and checks) and its implementation (sink_nats.c).
 */
#ifndef RELAY_SINK_NATS_H
#define RELAY_SINK_NATS_H

#include "option.h"

/* Longest subject, after {name} expanded. */
#define SINK_NATS_SUBJECT_MAX 1024

struct sink_nats_options {
	struct option_strings url;  /* nats:// or tls:// servers, one or a cluster's list */
	char *subject;            /* template: "{name}" is the published name */
	int jetstream;            /* publish with PubAcks and Nats-Msg-Id, or core NATS */
	char *user;
	char *password;
	char *token;
	char *creds;              /* a .creds file (JWT and NKey seed) */
	char *tls_ca;
	char *tls_cert;
	char *tls_key;
	int tls_verify;
	int max_pending;          /* JetStream publishes awaiting their PubAck */
	int connect_timeout_ms;
	int timeout_ms;           /* for the PubAcks of a batch, or a flush */
};

/* Is url a server URL the sink accepts? -1 with *cause (no password in it) if not. */
int sink_nats_check_url(const char *url, char **cause);
/* The user of a URL nats://user@host (malloc'd), NULL if it has none or a password too;
 * with rest, *rest is the URL without "user@" (malloc'd). */
char *sink_nats_url_user(const char *url, char **rest);

#endif
