/*
 * sink_nats_options.c: the NATS sink's options (one table) and the checks that span
 * them. Plain data: no nats.c here.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "redis_url.h"
#include "sink.h"
#include "sink_nats.h"
#include "util.h"

#define O(field) offsetof(struct sink_nats_options, field)

static const struct conf_option sink_nats_options[] = {
	{ .name = "url", .type = OPTION_STRINGS, .offset = O(url), .flags = OPTION_SECRET,
	  .def = "nats://127.0.0.1:4222",
	  .help = "nats://[user:password@]host[:port] or tls://..., or a list of a cluster's "
	  "servers" },
	{ .name = "subject", .type = OPTION_STRING, .offset = O(subject), .def = "{name}",
	  .help = "subject; {name} expands to the published name" },
	{ .name = "jetstream", .type = OPTION_BOOL, .offset = O(jetstream), .def = "true",
	  .help = "publish to a JetStream stream, confirmed by PubAcks, the event id as "
	  "Nats-Msg-Id; false: core NATS, which keeps nothing for absent subscribers" },
	{ .name = "user", .type = OPTION_STRING, .offset = O(user),
	  .flags = OPTION_EMPTY_IS_NULL, .help = "user name (needs a password)" },
	{ .name = "password", .type = OPTION_STRING, .offset = O(password),
	  .flags = OPTION_SECRET | OPTION_EMPTY_IS_NULL, .help = "password of user" },
	{ .name = "token", .type = OPTION_STRING, .offset = O(token),
	  .flags = OPTION_SECRET | OPTION_EMPTY_IS_NULL, .help = "authentication token" },
	{ .name = "creds", .type = OPTION_STRING, .offset = O(creds),
	  .flags = OPTION_EMPTY_IS_NULL,
	  .help = "credentials file (user JWT and NKey seed), as nsc writes it" },
	{ .name = "tls-ca", .type = OPTION_STRING, .offset = O(tls_ca),
	  .flags = OPTION_EMPTY_IS_NULL, .help = "CA certificates (PEM file); implies TLS" },
	{ .name = "tls-cert", .type = OPTION_STRING, .offset = O(tls_cert),
	  .flags = OPTION_EMPTY_IS_NULL, .help = "client certificate (PEM file); implies TLS" },
	{ .name = "tls-key", .type = OPTION_STRING, .offset = O(tls_key),
	  .flags = OPTION_EMPTY_IS_NULL, .help = "client certificate's private key (PEM file)" },
	{ .name = "tls-verify", .type = OPTION_BOOL, .offset = O(tls_verify), .def = "true",
	  .help = "verify the server's certificate and host name" },
	{ .name = "max-pending", .type = OPTION_INT, .offset = O(max_pending), .min = 1,
	  .max = 1000000, .def = "1024",
	  .help = "JetStream publishes in flight, awaiting their PubAck" },
	{ .name = "connect-timeout-ms", .type = OPTION_INT, .offset = O(connect_timeout_ms),
	  .min = 1, .max = 3600000, .def = "5000", .help = "connecting to a server" },
	{ .name = "timeout-ms", .type = OPTION_INT, .offset = O(timeout_ms), .min = 1,
	  .max = 3600000, .def = "10000",
	  .help = "waiting for a batch's PubAcks (or a core NATS flush), and for a write "
	  "to a server that stopped reading" },
	OPTION_END
};

int
sink_nats_check_url(const char *url, char **cause)
{
	const char *host;
	char *red;

	if (strncmp(url, "nats://", 7) == 0)
		host = url + 7;
	else if (strncmp(url, "tls://", 6) == 0)
		host = url + 6;
	else {
		red = redis_url_redact(url);
		*cause = xasprintf("expected a nats:// or tls:// URL, got \"%s\"", red);
		free(red);
		return -1;
	}
	if (strrchr(host, '@') != NULL)
		host = strrchr(host, '@') + 1;
	if (*host == '\0' || *host == ':' || *host == '/' || strpbrk(host, " \t,") != NULL) {
		red = redis_url_redact(url);
		*cause = xasprintf("\"%s\" has no host, or spaces or commas in it (give a list "
		    "of URLs for a cluster)", red);
		free(red);
		return -1;
	}
	return 0;
}

/* A subject template: tokens separated by dots, no spaces and no wildcards. */
static int
sink_nats_check_subject(const char *s)
{
	char probe[SINK_NATS_SUBJECT_MAX];

	if (*s == '\0' || *s == '.' || s[strlen(s) - 1] == '.' || strstr(s, "..") != NULL)
		return -1;
	if (strpbrk(s, " \t\r\n*>") != NULL)
		return -1;
	return sink_expand(s, "x", probe, sizeof probe);
}

static int
sink_nats_check(void *opts, const char *where, char **cause)
{
	struct sink_nats_options *o = opts;
	char *why = NULL;
	size_t i;

	if (o->url.n == 0) {
		*cause = xasprintf("%s.url: give at least one server", where);
		return -1;
	}
	for (i = 0; i < o->url.n; i++) {
		if (sink_nats_check_url(o->url.v[i], &why) != 0) {
			*cause = xasprintf("%s.url: %s", where, why);
			free(why);
			return -1;
		}
	}
	if (sink_nats_check_subject(o->subject) != 0) {
		*cause = xasprintf("%s.subject: \"%s\" is not a subject to publish to (dot-"
		    "separated tokens, no spaces, no wildcards * or >)", where, o->subject);
		return -1;
	}
	if (o->user != NULL && o->password == NULL) {
		*cause = xasprintf("%s: a user is given without a password", where);
		return -1;
	}
	/* A password (OUTBOXD_NATS_PASSWORD, say) for the user in the URLs; a URL with a
	 * password of its own keeps it. */
	for (i = 0; o->user == NULL && o->password != NULL && i < o->url.n; i++) {
		why = redis_url_redact(o->url.v[i]);
		if (strcmp(why, o->url.v[i]) == 0) {
			free(why);
			why = sink_nats_url_user(o->url.v[i], NULL);
		}
		if (why == NULL) {
			*cause = xasprintf("%s: a password is given without a user (user, or "
			    "nats://user@host in every url)", where);
			return -1;
		}
		free(why);
	}
	if ((o->user != NULL || o->password != NULL) + (o->token != NULL) +
	    (o->creds != NULL) > 1) {
		*cause = xasprintf("%s: give one of user and password, token, or creds", where);
		return -1;
	}
	if ((o->tls_cert != NULL) != (o->tls_key != NULL)) {
		*cause = xasprintf("%s: tls-cert and tls-key go together", where);
		return -1;
	}
	return 0;
}

char *
sink_nats_url_user(const char *url, char **rest)
{
	const char *host = strstr(url, "://"), *at;
	size_t scheme;

	if (host == NULL)
		return NULL;
	host += 3;
	scheme = (size_t)(host - url);
	if ((at = strchr(host, '@')) == NULL || at == host || memchr(host, ':',
	    (size_t)(at - host)) != NULL || memchr(host, '/', (size_t)(at - host)) != NULL)
		return NULL;
	if (rest != NULL)
		*rest = xasprintf("%.*s%s", (int)scheme, url, at + 1);
	return xasprintf("%.*s", (int)(at - host), host);
}

static char *
sink_nats_describe(const void *opts)
{
	const struct sink_nats_options *o = opts;
	char *out = xstrdup(""), *red, *next;
	size_t i;

	for (i = 0; i < o->url.n; i++) {
		red = redis_url_redact(o->url.v[i]);
		next = xasprintf("%s%s%s", out, i > 0 ? "," : "", red);
		free(red);
		free(out);
		out = next;
	}
	next = xasprintf("%s %s %s", out, o->jetstream ? "jetstream subject" :
	    "core subject", o->subject);
	free(out);
	return next;
}

const struct sink_type sink_nats_type = {
	.name = "nats",
	.options = sink_nats_options,
	.options_size = sizeof(struct sink_nats_options),
	.check = sink_nats_check,
	.describe = sink_nats_describe,
};
