/*
 * sink_rabbitmq_options.c: the RabbitMQ sink's options (one table) and the checks that
 * span them. Plain data: no rabbitmq-c here.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sink.h"
#include "sink_rabbitmq.h"
#include "util.h"

#define O(field) offsetof(struct sink_rabbitmq_options, field)

static const char *const sink_rabbitmq_declares[] = { "declare", "passive", NULL };
static const char *const sink_rabbitmq_queue_types[] = { "classic", "quorum", "stream", NULL };

static const struct conf_option sink_rabbitmq_options[] = {
	{ .name = "connectionString", .alias = "url", .type = OPTION_STRINGS, .offset = O(urls),
	  .def = "amqp://localhost:5672", .flags = OPTION_SECRET,
	  .help = "amqp[s]://user:pass@host:port/vhost, or an array of URLs tried in order" },
	{ .name = "password", .type = OPTION_STRING, .offset = O(password),
	  .flags = OPTION_SECRET, .help = "the password of every URL that gives none" },
	{ .name = "queue", .alias = "channel-name", .type = OPTION_STRING, .offset = O(queue),
	  .def = "liquid", .help = "the queue, declared durable through the default exchange" },
	{ .name = "queue-type", .type = OPTION_CHOICE, .offset = O(queue_type),
	  .def = "classic", .choices = sink_rabbitmq_queue_types,
	  .help = "x-queue-type of the declared queue; quorum survives the loss of a minority "
	  "of a cluster's nodes" },
	{ .name = "queue-arguments", .type = OPTION_OBJECT, .offset = O(queue_arguments),
	  .help = "more queue.declare arguments, e.g. {\"x-max-length\": 100000, "
	  "\"x-overflow\": \"reject-publish\"}" },
	{ .name = "declare-queue", .type = OPTION_BOOL, .offset = O(declare_queue),
	  .def = "true", .help = "false: the queue must exist" },
	{ .name = "exchange", .type = OPTION_STRING, .offset = O(exchange), .def = "",
	  .help = "publish through this exchange instead of the default one" },
	{ .name = "exchange-type", .type = OPTION_STRING, .offset = O(exchange_type),
	  .def = "topic", .help = "the type the exchange is declared with" },
	{ .name = "exchange-declare", .type = OPTION_CHOICE, .offset = O(exchange_declare),
	  .def = "declare", .choices = sink_rabbitmq_declares,
	  .help = "declare the exchange durable, or only check that it exists" },
	{ .name = "routing-key", .type = OPTION_STRING, .offset = O(routing_key),
	  .help = "{name} expands; default {name} with an exchange, else the queue" },
	{ .name = "confirm-window", .type = OPTION_INT, .offset = O(confirm_window), .min = 1,
	  .max = 65535, .def = "1024", .help = "messages awaiting their publisher confirm; "
	  "a batch's confirms are awaited before the next, so a window above "
	  "relay.batch-size adds nothing" },
	{ .name = "connect-timeout-ms", .type = OPTION_INT, .offset = O(connect_timeout_ms),
	  .min = 1, .max = 600000, .def = "5000", .help = "connecting and logging in" },
	{ .name = "timeout-ms", .type = OPTION_INT, .offset = O(timeout_ms), .min = 1,
	  .max = 600000, .def = "10000", .help = "waiting for confirms, and for the broker to "
	  "read what is published (plain TCP)" },
	SINK_TLS_OPTIONS(struct sink_rabbitmq_options, tls, "CA bundle for amqps://"),
	{ .name = "privilege.*", .type = OPTION_OTHER,
	  .help = "push-events privileges, read at the top level" },
	OPTION_END
};

void
sink_rabbitmq_urls_free(struct amqp_url *urls, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		amqp_url_free(&urls[i]);
	free(urls);
}

int
sink_rabbitmq_urls(const struct sink_rabbitmq_options *o, const char *where,
    struct amqp_url **urls, size_t *n, char **cause)
{
	char *why = NULL;
	size_t i;

	*urls = xcalloc(o->urls.n, sizeof **urls);
	for (i = 0; i < o->urls.n; i++) {
		if (amqp_url_parse(o->urls.v[i], &(*urls)[i], &why) != 0) {
			*cause = xasprintf("%s.connectionString: %s", where, why);
			free(why);
			sink_rabbitmq_urls_free(*urls, i + 1);
			*urls = NULL;
			return -1;
		}
		/* OUTBOXD_AMQP_PASSWORD, or a file only its owner reads. */
		if (o->password != NULL && !(*urls)[i].password_set) {
			free((*urls)[i].password);
			(*urls)[i].password = xstrdup(o->password);
			(*urls)[i].password_set = 1;
		}
	}
	*n = o->urls.n;
	return 0;
}

/* queue-type goes into the declare arguments as x-queue-type; one given both ways must
 * agree. queue_arguments is then all the declare needs. */
static int
sink_rabbitmq_queue_arguments(struct sink_rabbitmq_options *o, const char *where,
    char **cause)
{
	const char *type = sink_rabbitmq_queue_types[o->queue_type];
	cJSON *args, *given;
	int rc = 0;

	if (o->queue_type == SINK_RABBITMQ_CLASSIC)
		return 0;
	args = o->queue_arguments != NULL ? cJSON_Parse(o->queue_arguments) :
	    cJSON_CreateObject();
	if (args == NULL)
		abort();
	given = cJSON_GetObjectItemCaseSensitive(args, "x-queue-type");
	if (given != NULL && !(cJSON_IsString(given) && strcmp(given->valuestring, type) == 0)) {
		*cause = xasprintf("%s: queue-type is %s but queue-arguments has another "
		    "x-queue-type: give one of them", where, type);
		rc = -1;
	} else if (given == NULL) {
		cJSON_AddStringToObject(args, "x-queue-type", type);
		free(o->queue_arguments);
		if ((o->queue_arguments = cJSON_PrintUnformatted(args)) == NULL)
			abort();
	}
	cJSON_Delete(args);
	return rc;
}

static int
sink_rabbitmq_check(void *opts, const char *where, char **cause)
{
	struct sink_rabbitmq_options *o = opts;
	struct amqp_url *urls;
	size_t n;

	if (sink_rabbitmq_urls(o, where, &urls, &n, cause) != 0)
		return -1;
	sink_rabbitmq_urls_free(urls, n);
	if (sink_tls_check(&o->tls, where, cause) != 0 ||
	    sink_rabbitmq_queue_arguments(o, where, cause) != 0)
		return -1;
	if (o->routing_key == NULL)
		o->routing_key = xstrdup(o->exchange[0] != '\0' ? "{name}" : o->queue);
	return 0;
}

static char *
sink_rabbitmq_describe(const void *opts)
{
	const struct sink_rabbitmq_options *o = opts;
	struct amqp_url au;
	char *why = NULL, *url, *target;
	const char *more = o->urls.n > 1 ? " (+ failover hosts)" : "";

	if (amqp_url_parse(o->urls.v[0], &au, &why) != 0) {
		free(why);
		amqp_url_free(&au);
		return xstrdup("rabbitmq (invalid options)");
	}
	url = amqp_url_describe(&au);
	amqp_url_free(&au);
	if (o->exchange[0] != '\0')
		target = xasprintf("%s%s exchange %s routing key %s", url, more, o->exchange,
		    o->routing_key);
	else
		target = xasprintf("%s%s queue %s", url, more, o->queue);
	free(url);
	return target;
}

const struct sink_type sink_rabbitmq_type = {
	.name = "rabbitmq",
	.options = sink_rabbitmq_options,
	.options_size = sizeof(struct sink_rabbitmq_options),
	.check = sink_rabbitmq_check,
	.describe = sink_rabbitmq_describe,
};
