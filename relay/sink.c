/* sink.c: live sinks: the table of sink implementations, their life cycle, and helpers
 * every sink uses. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink.h"
#include "util.h"

static const struct sink_ops *const sink_all_ops[] = {
	&sink_stdout_ops,
	&sink_redis_ops,
	&sink_rabbitmq_ops,
	&sink_nats_ops,
	&sink_mqtt_ops,
	&sink_http_ops,
};

const struct sink_ops *
sink_ops_find(const struct sink_type *type)
{
	size_t i;

	for (i = 0; i < sizeof sink_all_ops / sizeof sink_all_ops[0]; i++) {
		if (sink_all_ops[i]->type == type)
			return sink_all_ops[i];
	}
	return NULL;
}

struct sink *
sink_new(const struct sink_ops *ops, const char *name, const void *options)
{
	const struct sink_type *type = ops->type;
	struct sink *sk = xcalloc(1, sizeof *sk);

	sk->name = xstrdup(name);
	sk->ops = ops;
	sk->options = xcalloc(1, type->options_size > 0 ? type->options_size : 1);
	if (options != NULL)
		option_copy(type->options, sk->options, options);
	sk->target = type->describe(sk->options);
	if (ops->open != NULL)
		ops->open(sk);
	return sk;
}

int
sink_connect(struct sink *sk, char **cause)
{
	if (sk->connected)
		return 0;
	if (sk->ops->connect != NULL && sk->ops->connect(sk, cause) != 0)
		return -1;
	sk->connected = 1;
	return 0;
}

void
sink_disconnect(struct sink *sk)
{
	if (sk->connected && sk->ops->disconnect != NULL)
		sk->ops->disconnect(sk);
	sk->connected = 0;
}

void
sink_free(struct sink *sk)
{
	if (sk == NULL)
		return;
	sink_disconnect(sk);
	if (sk->ops->close != NULL)
		sk->ops->close(sk);
	option_free(sk->ops->type->options, sk->options);
	free(sk->options);
	free(sk->target);
	free(sk->name);
	free(sk);
}

void
sink_meanwhile(struct sink *sk)
{
	void (*fn)(void *) = sk->meanwhile;

	sk->meanwhile = NULL;
	if (fn != NULL)
		fn(sk->meanwhile_arg);
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
