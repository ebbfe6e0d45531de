/*
 * sink_type.c: the table of sink types as the configuration knows them (names and option
 * tables, no broker library), and the stdout sink's type, which has no options.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "sink.h"
#include "util.h"

static const struct conf_option sink_stdout_options[] = {
	OPTION_END
};

static char *
sink_stdout_describe(const void *opts)
{
	(void)opts;
	return xstrdup("standard output");
}

const struct sink_type sink_stdout_type = {
	.name = "stdout",
	.options = sink_stdout_options,
	.options_size = 0,
	.describe = sink_stdout_describe,
};

static const struct sink_type *const sink_types[] = {
	&sink_stdout_type,
	&sink_redis_type,
	&sink_rabbitmq_type,
	&sink_nats_type,
	&sink_mqtt_type,
	&sink_http_type,
};

const struct sink_type *
sink_type_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof sink_types / sizeof sink_types[0]; i++) {
		if (strcmp(sink_types[i]->name, name) == 0)
			return sink_types[i];
	}
	return NULL;
}

void *
sink_type_read(const struct sink_type *type, const cJSON *obj, const char *where,
    char **cause)
{
	void *opts = xcalloc(1, type->options_size > 0 ? type->options_size : 1);

	option_defaults(type->options, opts);
	if (option_read(type->options, opts, obj, where, cause) != 0 ||
	    (type->check != NULL && type->check(opts, where, cause) != 0)) {
		sink_type_free(type, opts);
		return NULL;
	}
	return opts;
}

void
sink_type_free(const struct sink_type *type, void *opts)
{
	if (opts != NULL)
		option_free(type->options, opts);
	free(opts);
}

const char *
sink_type_names(void)
{
	return "stdout, redis, rabbitmq, nats, mqtt or http";
}

/* Used by option checks and live sinks alike: plain text, no broker library. */
int
sink_expand(const char *tmpl, const char *name, char *buf, size_t len)
{
	static const char token[] = "{name}";
	const char *p = tmpl, *at;
	size_t used = 0, n;

	while (1) {
		at = strstr(p, token);
		n = at != NULL ? (size_t)(at - p) : strlen(p);
		if (used + n >= len)
			return -1;
		memcpy(buf + used, p, n);
		used += n;
		if (at == NULL)
			break;
		n = strlen(name);
		if (used + n >= len)
			return -1;
		memcpy(buf + used, name, n);
		used += n;
		p = at + sizeof token - 1;
	}
	buf[used] = '\0';
	return 0;
}

int
sink_tls_check(const struct sink_tls_options *tls, const char *where, char **cause)
{
	if ((tls->cert == NULL) != (tls->key == NULL)) {
		*cause = xasprintf("%s: tls-cert-file and tls-key-file go together", where);
		return -1;
	}
	return 0;
}
