/* sink.c: the table of sink types and helpers every sink uses. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sink.h"

static const struct sink_ops *const sink_types[] = {
	&sink_stdout_ops,
	&sink_redis_ops,
	&sink_rabbitmq_ops,
};

const char *const sink_common_keys[] = { "type", "events", "prefix", NULL };

const struct sink_ops *
sink_find_type(const char *type)
{
	size_t i;

	for (i = 0; i < sizeof sink_types / sizeof sink_types[0]; i++) {
		if (strcmp(sink_types[i]->type, type) == 0)
			return sink_types[i];
	}
	return NULL;
}

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

void
sink_set_status(struct sink_message *m, enum sink_status status, const char *fmt, ...)
{
	va_list ap;

	m->status = status;
	va_start(ap, fmt);
	vsnprintf(m->error, sizeof m->error, fmt, ap);
	va_end(ap);
}
