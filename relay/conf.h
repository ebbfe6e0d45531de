/*
 * conf.h: the relay's configuration, read from a JSON file in the push-events format
 * (flat keys such as "redis.host") plus our own "outbox.*", "relay.*" and "sinks" keys,
 * with command-line flags applied on top as overrides.
 */
#ifndef RELAY_CONF_H
#define RELAY_CONF_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sink.h"

/* Exit status for a configuration error (sysexits' EX_CONFIG). */
#define CONF_EXIT 78

struct conf_sink {
	struct sink sink;        /* configured (options read), not connected */
	char *filter;            /* JSON array of GLOB patterns, or NULL for every event */
	char *prefix;            /* joined to event names as is */
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
	int log_level;
	struct conf_sink *sinks;
	size_t nsinks;
};

/*
 * Load path (NULL: no file) and apply overrides (flat keys, as if in the file; may be
 * NULL), then validate. On error returns -1 and *cause (malloc'd) is one line naming the
 * file, the position or key, and what is wrong. Unknown keys are logged as a warning.
 */
int conf_load(struct conf *cf, const char *path, const cJSON *overrides, char **cause);
void conf_free(struct conf *cf);

/* Parse JSON text with a one-line error naming path, line and column on failure. */
cJSON *conf_parse_json(const char *text, const char *path, char **cause);

/*
 * Typed option getters for sinks. Each looks up key in obj; when absent it leaves *out as
 * it is (the caller's default) and returns 0. A present value of the wrong type or out of
 * range returns -1 with *cause naming where.key. Integers and booleans may also be given
 * as strings ("6379", "true"), as configs filled from the environment often have them.
 */
int conf_get_string(const cJSON *obj, const char *where, const char *key, char **out,
    char **cause);
int conf_get_int(const cJSON *obj, const char *where, const char *key, int64_t min,
    int64_t max, int64_t *out, char **cause);
int conf_get_bool(const cJSON *obj, const char *where, const char *key, int *out,
    char **cause);

/* Warn (one line) about keys of obj in neither known nor sink_common_keys. */
void conf_warn_unknown(const cJSON *obj, const char *where, const char *const known[]);

#endif
