/*
 * sink_mqtt_options.c: the MQTT sink's options (one table), its URL and the checks that
 * span them. Plain data: no libmosquitto here.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "redis_url.h"
#include "sink.h"
#include "sink_mqtt.h"
#include "util.h"

#define O(field) offsetof(struct sink_mqtt_options, field)

static const char *const sink_mqtt_protocols[] = { "mqttv311", "mqttv5", NULL };

static const struct conf_option sink_mqtt_options[] = {
	{ .name = "url", .type = OPTION_STRING, .offset = O(url), .flags = OPTION_SECRET,
	  .def = "mqtt://127.0.0.1:1883",
	  .help = "mqtt://[user[:password]@]host[:port], or mqtts:// (TLS, port 8883)" },
	{ .name = "topic", .type = OPTION_STRING, .offset = O(topic), .def = "{name}",
	  .help = "topic; {name} expands to the published name" },
	{ .name = "qos", .type = OPTION_INT, .offset = O(qos), .min = 0, .max = 2,
	  .def = "1", .help = "1 (PUBACK) or 2 (PUBCOMP); 0 is refused: it cannot confirm" },
	{ .name = "retain", .type = OPTION_BOOL, .offset = O(retain), .def = "false",
	  .help = "publish retained messages" },
	{ .name = "client-id", .type = OPTION_STRING, .offset = O(client_id),
	  .flags = OPTION_EMPTY_IS_NULL,
	  .help = "client identifier; default outboxd- and the sink's name, stable so the "
	  "broker keeps the session" },
	{ .name = "clean-session", .type = OPTION_BOOL, .offset = O(clean_session),
	  .def = "false", .help = "false: a persistent session, so messages in flight are "
	  "completed after a reconnect" },
	{ .name = "username", .type = OPTION_STRING, .offset = O(username),
	  .flags = OPTION_EMPTY_IS_NULL, .help = "user name, unless the URL has one" },
	{ .name = "password", .type = OPTION_STRING, .offset = O(password),
	  .flags = OPTION_SECRET | OPTION_EMPTY_IS_NULL,
	  .help = "password, unless the URL has one" },
	{ .name = "tls-ca", .type = OPTION_STRING, .offset = O(tls_ca),
	  .flags = OPTION_EMPTY_IS_NULL,
	  .help = "CA certificates (PEM file) for mqtts://; default: the system's" },
	{ .name = "tls-cert", .type = OPTION_STRING, .offset = O(tls_cert),
	  .flags = OPTION_EMPTY_IS_NULL, .help = "client certificate (PEM file)" },
	{ .name = "tls-key", .type = OPTION_STRING, .offset = O(tls_key),
	  .flags = OPTION_EMPTY_IS_NULL, .help = "client certificate's private key (PEM file)" },
	{ .name = "tls-verify", .type = OPTION_BOOL, .offset = O(tls_verify), .def = "true",
	  .help = "verify the server's certificate and host name" },
	{ .name = "protocol", .type = OPTION_CHOICE, .offset = O(protocol), .def = "mqttv311",
	  .choices = sink_mqtt_protocols, .help = "mqttv5: the event's headers become user "
	  "properties, content type application/json, and refusals carry a reason" },
	{ .name = "max-inflight", .type = OPTION_INT, .offset = O(max_inflight), .min = 1,
	  .max = 65535, .def = "256", .help = "messages awaiting their acknowledgement" },
	{ .name = "keepalive-s", .type = OPTION_INT, .offset = O(keepalive_s), .min = 5,
	  .max = 65535, .def = "60", .help = "keep-alive interval" },
	{ .name = "timeout-ms", .type = OPTION_INT, .offset = O(timeout_ms), .min = 1,
	  .max = 3600000, .def = "10000",
	  .help = "connecting, and waiting for a batch's acknowledgements" },
	OPTION_END
};

void
sink_mqtt_endpoint_free(struct sink_mqtt_endpoint *ep)
{
	free(ep->host);
	free(ep->username);
	free(ep->password);
	memset(ep, 0, sizeof *ep);
}

/* host[:port] of an authority into ep; -1 if malformed. */
static int
sink_mqtt_hostport(const char *s, struct sink_mqtt_endpoint *ep)
{
	const char *end, *colon;
	int64_t port;
	char *why = NULL;

	if (*s == '[') {
		if ((end = strchr(s, ']')) == NULL)
			return -1;
		ep->host = xasprintf("%.*s", (int)(end - s - 1), s + 1);
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return -1;
	} else {
		colon = strchr(s, ':');
		ep->host = colon != NULL ? xasprintf("%.*s", (int)(colon - s), s) : xstrdup(s);
	}
	if (*ep->host == '\0')
		return -1;
	if (colon != NULL) {
		if (util_parse_int(colon + 1, 1, 65535, &port, &why) != 0) {
			free(why);
			return -1;
		}
		ep->port = (int)port;
	}
	return 0;
}

int
sink_mqtt_endpoint(const struct sink_mqtt_options *o, const char *where,
    struct sink_mqtt_endpoint *ep, char **cause)
{
	const char *rest, *at, *colon;
	char *red, *authority;
	size_t n;
	int rc;

	memset(ep, 0, sizeof *ep);
	if (strncmp(o->url, "mqtt://", 7) == 0) {
		rest = o->url + 7;
		ep->port = 1883;
	} else if (strncmp(o->url, "mqtts://", 8) == 0) {
		rest = o->url + 8;
		ep->port = 8883;
		ep->tls = 1;
	} else {
		rest = NULL;
	}
	n = rest != NULL ? strcspn(rest, "/?#") : 0;
	if (rest == NULL || (rest[n] != '\0' && strcmp(rest + n, "/") != 0)) {
		red = redis_url_redact(o->url);
		*cause = xasprintf("%s.url: expected mqtt://[user[:password]@]host[:port] or "
		    "mqtts://..., got \"%s\"", where, red);
		free(red);
		return -1;
	}
	authority = xasprintf("%.*s", (int)n, rest);
	if ((at = strrchr(authority, '@')) != NULL) {
		colon = memchr(authority, ':', (size_t)(at - authority));
		n = (size_t)((colon != NULL ? colon : at) - authority);
		if (n > 0)
			ep->username = util_percent_decode(authority, n);
		if (colon != NULL)
			ep->password = util_percent_decode(colon + 1, (size_t)(at - colon - 1));
	}
	rc = sink_mqtt_hostport(at != NULL ? at + 1 : authority, ep);
	free(authority);
	if (rc != 0) {
		red = redis_url_redact(o->url);
		*cause = xasprintf("%s.url: no host, or a bad port, in \"%s\"", where, red);
		free(red);
		sink_mqtt_endpoint_free(ep);
		return -1;
	}
	if (ep->username == NULL && o->username != NULL)
		ep->username = xstrdup(o->username);
	if (ep->password == NULL && o->password != NULL)
		ep->password = xstrdup(o->password);
	if (ep->password != NULL && ep->username == NULL) {
		*cause = xasprintf("%s: a password is given without a user name", where);
		sink_mqtt_endpoint_free(ep);
		return -1;
	}
	return 0;
}

static int
sink_mqtt_check(void *opts, const char *where, char **cause)
{
	struct sink_mqtt_options *o = opts;
	struct sink_mqtt_endpoint ep;
	char probe[SINK_MQTT_TOPIC_MAX];

	if (sink_mqtt_endpoint(o, where, &ep, cause) != 0)
		return -1;
	sink_mqtt_endpoint_free(&ep);
	if (o->qos == 0) {
		*cause = xasprintf("%s.qos: 0 cannot confirm delivery: use 1 (at least once) "
		    "or 2 (exactly once to the broker)", where);
		return -1;
	}
	if (*o->topic == '\0' || strpbrk(o->topic, "+#") != NULL ||
	    sink_expand(o->topic, "x", probe, sizeof probe) != 0) {
		*cause = xasprintf("%s.topic: \"%s\" is not a topic to publish to (not empty, "
		    "no wildcards + or #)", where, o->topic);
		return -1;
	}
	if ((o->tls_cert != NULL) != (o->tls_key != NULL)) {
		*cause = xasprintf("%s: tls-cert and tls-key go together", where);
		return -1;
	}
	return 0;
}

static char *
sink_mqtt_describe(const void *opts)
{
	const struct sink_mqtt_options *o = opts;
	char *red = redis_url_redact(o->url), *out;

	out = xasprintf("%s topic %s qos %d%s", red, o->topic, o->qos,
	    o->protocol == SINK_MQTT_V5 ? " mqttv5" : "");
	free(red);
	return out;
}

const struct sink_type sink_mqtt_type = {
	.name = "mqtt",
	.options = sink_mqtt_options,
	.options_size = sizeof(struct sink_mqtt_options),
	.check = sink_mqtt_check,
	.describe = sink_mqtt_describe,
};
