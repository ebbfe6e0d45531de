/*
 * sink_redis.h: the Redis sink's options, shared by its type (sink_redis_options.c, what
 * the configuration reads and checks) and its implementation (sink_redis.c).
 */
#ifndef RELAY_SINK_REDIS_H
#define RELAY_SINK_REDIS_H

#include <stdint.h>

#include "option.h"
#include "redis_url.h"

#define SINK_REDIS_SENTINEL_SCHEME "redis+sentinel://"

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
	/* Sentinel: the master is asked of these "host:port" sentinels by name. A
	 * redis+sentinel:// url is turned into these by the type's check. */
	struct option_strings sentinels;
	char *master_name;
	char *sentinel_password;
	int replicas_ack;         /* WAIT for this many replicas after each batch */
	int replicas_ack_timeout_ms;
};

/* redis+sentinel://:***@h1:26379,h2:26379/master/db, for logs (malloc'd). */
char *sink_redis_sentinel_describe(const struct sink_redis_options *o);

/* "host:port" of a sentinel into host (malloc'd) and port; -1 if malformed. */
int sink_redis_hostport(const char *s, char **host, int *port);

/* Where to connect, from the url or the separate keys (with sentinels, the host is left
 * NULL: it is asked of them on connect). -1 with *cause naming where. */
int sink_redis_endpoint(const struct sink_redis_options *o, const char *where,
    struct redis_url *ru, char **cause);

#endif
