/*
 * sink_redis.h: the Redis sink's options, shared by its type (sink_redis_options.c, what
 * the configuration reads and checks) and its implementation (sink_redis.c).
 */
#ifndef RELAY_SINK_REDIS_H
#define RELAY_SINK_REDIS_H

#include <stdint.h>

#include "redis_url.h"

/* Longest channel or stream key, key prefix included. */
#define SINK_REDIS_KEY_MAX 4096

enum sink_redis_mode {
	SINK_REDIS_PUBSUB,
	SINK_REDIS_STREAM
};

struct sink_redis_options {
	char *url;                /* wins over host, port, username, db; password too if it has one */
	char *host;
	int port;
	char *username;
	char *password;
	int db;
	char *key_prefix;         /* for stream keys, not channels */
	char *channel;            /* template: "{name}" is the published name */
	int mode;                 /* enum sink_redis_mode */
	int64_t stream_maxlen;    /* 0: no trimming */
	int require_subscribers;
	int connect_timeout_ms;
	int timeout_ms;
	char *client_name;        /* CLIENT SETNAME, or NULL */
};

/* Where to connect, from the url or the separate keys. -1 with *cause naming where. */
int sink_redis_endpoint(const struct sink_redis_options *o, const char *where,
    struct redis_url *ru, char **cause);

#endif
