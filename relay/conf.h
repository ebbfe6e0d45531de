/*
 * conf.h: the relay's configuration, read from a JSON file in the push-events format
 * (flat keys such as "redis.host") plus our own "outbox.*", "relay.*" and "sinks" keys,
 * with command-line flags applied on top as overrides.
 *
 * A configuration is plain data: nothing here connects or holds a connection. The relay
 * makes live sinks from it (sink_new) and frees them itself. Every option is one row of
 * a table: conf_options for the top-level keys, conf_sink_options for the keys every sink
 * has, and each sink type's own table (sink.h).
 */
#ifndef RELAY_CONF_H
#define RELAY_CONF_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "option.h"
#include "sink.h"

enum conf_start_at {
	CONF_START_OLDEST,   /* a new sink publishes every event in the table */
	CONF_START_LATEST    /* a new sink publishes only what is committed after it was added */
};

struct conf_sink {
	char *name;              /* its row in outbox_sink */
	char *where;             /* where its options come from, for messages: "sinks.audit" */
	const struct sink_type *type;
	char *filter;            /* JSON array of GLOB patterns, or NULL for every event */
	char *prefix;            /* joined to event names as is */
	int start_at;            /* enum conf_start_at */
	int format;              /* enum sink_format */
	char *ce_source;         /* CloudEvents source; default: the host and the database */
	void *options;           /* the type's options, read from its table and checked */
	char *target;            /* where it publishes, for logs, passwords masked */
};

struct conf {
	char *database;
	int64_t retention_ms;    /* 0: keep delivered events */
	int batch_size;
	int poll_interval_ms;    /* the longest idle sleep between checks */
	int max_attempts;
	int backoff_initial_ms;
	int backoff_max_ms;
	double backoff_multiplier;
	int log_level;           /* enum log_level */
	/* The push-events keys, as read; they shape the sinks below. */
	char *adapter;           /* system.queue-adapter */
	char *filter;            /* system.push-events */
	char *prefix;            /* system.push-events.prefix */
	int can_use_push_events, can_use_cache, can_use_rabbitmq;
	struct conf_sink *sinks;
	size_t nsinks;
	char *metrics_listen;    /* metrics.listen: ADDR:PORT, [ADDR]:PORT or a socket path */
	int log_format;          /* enum log_format */
};

/* The tables, for outbox(5) and its test. */
extern const struct conf_option conf_options[];
extern const struct conf_option conf_sink_options[];

/*
 * Load path (NULL: no file) and apply overrides (flat keys, as if in the file; may be
 * NULL), then validate. On error returns -1 and *cause (malloc'd) is one line naming the
 * file, the position or key, and what is wrong. Unknown keys are logged as a warning.
 */
int conf_load(struct conf *cf, const char *path, const cJSON *overrides, char **cause);
void conf_free(struct conf *cf);

/* Do two sinks have the same name, type, options, filter and prefix? */
int conf_sink_equal(const struct conf_sink *a, const struct conf_sink *b);

/* Parse JSON text with a one-line error naming path, line and column on failure. */
cJSON *conf_parse_json(const char *text, const char *path, char **cause);

#endif
