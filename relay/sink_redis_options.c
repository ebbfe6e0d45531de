/*
 * sink_redis_options.c: the Redis sink's options (one table) and the checks that span
 * them. Plain data: no hiredis here.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "sink.h"
#include "sink_redis.h"
#include "util.h"

#define O(field) offsetof(struct sink_redis_options, field)

static const char *const sink_redis_modes[] = { "pubsub", "stream", NULL };

static const struct conf_option sink_redis_options[] = {
	{ .name = "url", .type = OPTION_STRING, .offset = O(url), .flags = OPTION_SECRET,
	  .help = "redis://[user[:password]@]host[:port][/db] or unix:///path.sock; wins over "
	  "host, port, username and db, and over password when it has one" },
	{ .name = "host", .type = OPTION_STRING, .offset = O(host), .def = "127.0.0.1",
	  .help = "server host" },
	{ .name = "port", .type = OPTION_INT, .offset = O(port), .min = 1, .max = 65535,
	  .def = "6379", .help = "server port" },
	{ .name = "username", .type = OPTION_STRING, .offset = O(username),
	  .flags = OPTION_EMPTY_IS_NULL, .help = "ACL user (needs a password)" },
	{ .name = "password", .type = OPTION_STRING, .offset = O(password),
	  .flags = OPTION_SECRET | OPTION_EMPTY_IS_NULL, .help = "AUTH password" },
	{ .name = "db", .type = OPTION_INT, .offset = O(db), .min = 0, .max = INT32_MAX,
	  .def = "0", .help = "database number (SELECT)" },
	{ .name = "channel-name", .alias = "channel", .type = OPTION_STRING,
	  .offset = O(channel), .def = "liquid",
	  .help = "channel, or stream key; {name} expands to the published name" },
	{ .name = "key-prefix", .type = OPTION_STRING, .offset = O(key_prefix), .def = "",
	  .help = "prefixes the keys the relay writes (streams), not pub/sub channels" },
	{ .name = "mode", .type = OPTION_CHOICE, .offset = O(mode), .def = "pubsub",
	  .choices = sink_redis_modes,
	  .help = "PUBLISH, or XADD with one field, message, holding the envelope" },
	{ .name = "stream-maxlen", .type = OPTION_INT64, .offset = O(stream_maxlen), .min = 0,
	  .max = INT64_MAX / 2, .def = "0", .help = "MAXLEN ~ N on XADD; 0: no trimming" },
	{ .name = "require-subscribers", .type = OPTION_BOOL, .offset = O(require_subscribers),
	  .def = "false", .help = "a PUBLISH that reached nobody is rejected and retried" },
	{ .name = "connect-timeout-ms", .type = OPTION_INT, .offset = O(connect_timeout_ms),
	  .min = 1, .max = 3600000, .def = "5000", .help = "connecting and logging in" },
	{ .name = "timeout-ms", .type = OPTION_INT, .offset = O(timeout_ms), .min = 1,
	  .max = 3600000, .def = "10000", .help = "waiting for a reply" },
	{ .name = "sentinels", .type = OPTION_STRINGS, .offset = O(sentinels),
	  .help = "host:port of Redis Sentinels, asked in turn for the master's address" },
	{ .name = "master-name", .type = OPTION_STRING, .offset = O(master_name),
	  .help = "the name the sentinels monitor the master under" },
	{ .name = "sentinel-password", .type = OPTION_STRING, .offset = O(sentinel_password),
	  .flags = OPTION_SECRET | OPTION_EMPTY_IS_NULL,
	  .help = "AUTH password of the sentinels (the data nodes use password)" },
	{ .name = "replicas-ack", .type = OPTION_INT, .offset = O(replicas_ack), .min = 0,
	  .max = 100, .def = "0", .help = "after each batch, WAIT until this many replicas "
	  "have it; fewer: the batch is published again (duplicates, never loss)" },
	{ .name = "replicas-ack-timeout-ms", .type = OPTION_INT,
	  .offset = O(replicas_ack_timeout_ms), .min = 1, .max = 600000, .def = "1000",
	  .help = "how long WAIT waits for the replicas" },
	{ .name = "client-name", .type = OPTION_STRING, .offset = O(client_name),
	  .flags = OPTION_EMPTY_IS_NULL, .help = "CLIENT SETNAME on connect, for CLIENT LIST "
	  "(the ACL user then needs +client|setname)" },
	OPTION_END
};

int
sink_redis_hostport(const char *s, char **host, int *port)
{
	const char *colon = strrchr(s, ':');
	int64_t v;
	char *why = NULL;

	if (colon == NULL || colon == s ||
	    util_parse_int(colon + 1, 1, 65535, &v, &why) != 0) {
		free(why);
		return -1;
	}
	*host = xasprintf("%.*s", (int)(colon - s), s);
	*port = (int)v;
	return 0;
}

/*
 * redis+sentinel://[[user]:password@]host:port[,host:port...]/master[/db] into the
 * separate options, so that everything after reads only those.
 */
static int
sink_redis_sentinel_url(struct sink_redis_options *o, const char *where, char **cause)
{
	const char *rest = o->url + strlen(SINK_REDIS_SENTINEL_SCHEME), *at, *slash, *p;
	char *hosts, *tok, *save = NULL, *db_end = NULL, *userinfo, *colon;
	size_t i;

	if ((at = strrchr(rest, '@')) != NULL) {
		userinfo = xasprintf("%.*s", (int)(at - rest), rest);
		colon = strchr(userinfo, ':');
		free(o->password);
		o->password = colon != NULL && colon[1] != '\0' ? util_percent_decode(colon + 1,
		    strlen(colon + 1)) : NULL;
		if (colon != NULL)
			*colon = '\0';
		free(o->username);
		o->username = userinfo[0] != '\0' ? util_percent_decode(userinfo,
		    strlen(userinfo)) : NULL;
		free(userinfo);
		rest = at + 1;
	}
	if ((slash = strchr(rest, '/')) == NULL || slash == rest || slash[1] == '\0')
		goto bad;
	hosts = xasprintf("%.*s", (int)(slash - rest), rest);
	for (i = 0; i < o->sentinels.n; i++)
		free(o->sentinels.v[i]);
	free(o->sentinels.v);
	o->sentinels.v = NULL;
	o->sentinels.n = 0;
	for (tok = strtok_r(hosts, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		o->sentinels.v = xreallocarray(o->sentinels.v, o->sentinels.n + 1,
		    sizeof *o->sentinels.v);
		o->sentinels.v[o->sentinels.n++] = xstrdup(tok);
	}
	free(hosts);
	p = slash + 1;
	slash = strchr(p, '/');
	free(o->master_name);
	o->master_name = xasprintf("%.*s", slash != NULL ? (int)(slash - p) : (int)strlen(p), p);
	if (slash != NULL) {
		o->db = (int)strtol(slash + 1, &db_end, 10);
		if (slash[1] == '\0' || *db_end != '\0' || o->db < 0)
			goto bad;
	}
	free(o->url);
	o->url = NULL;
	return 0;
bad:
	*cause = xasprintf("%s.url: expected redis+sentinel://[:password@]host:port[,host:port"
	    "...]/master[/db]", where);
	return -1;
}

int
sink_redis_endpoint(const struct sink_redis_options *o, const char *where,
    struct redis_url *ru, char **cause)
{
	char *why = NULL, *host;
	size_t i;
	int port;

	memset(ru, 0, sizeof *ru);
	if (o->master_name != NULL || o->sentinels.n > 0) {
		if (o->master_name == NULL || o->sentinels.n == 0) {
			*cause = xasprintf("%s: sentinels and master-name go together", where);
			return -1;
		}
		for (i = 0; i < o->sentinels.n; i++) {
			if (sink_redis_hostport(o->sentinels.v[i], &host, &port) != 0) {
				*cause = xasprintf("%s.sentinels: expected host:port, got \"%s\"", where,
				    o->sentinels.v[i]);
				return -1;
			}
			free(host);
		}
		ru->db = o->db;
		ru->username = o->username != NULL ? xstrdup(o->username) : NULL;
		ru->password = o->password != NULL ? xstrdup(o->password) : NULL;
	} else if (o->url != NULL) {
		if (redis_url_parse(o->url, ru, &why) != 0) {
			*cause = xasprintf("%s.url: %s", where, why);
			free(why);
			return -1;
		}
		/* A password kept out of the URL (OUTBOXD_REDIS_PASSWORD, or a file only its
		 * owner reads) goes with it; one in the URL wins. */
		if (ru->password == NULL && o->password != NULL)
			ru->password = xstrdup(o->password);
		if (ru->password != NULL && *ru->password == '\0') {
			free(ru->password);
			ru->password = NULL;
		}
	} else {
		if (*o->host == '\0') {
			*cause = xasprintf("%s.host: must not be empty", where);
			return -1;
		}
		ru->host = xstrdup(o->host);
		ru->port = o->port;
		ru->db = o->db;
		ru->username = o->username != NULL ? xstrdup(o->username) : NULL;
		ru->password = o->password != NULL ? xstrdup(o->password) : NULL;
	}
	if (ru->username != NULL && ru->password == NULL) {
		*cause = xasprintf("%s: a user name (%s) is given without a password", where,
		    ru->username);
		redis_url_free(ru);
		return -1;
	}
	return 0;
}

static int
sink_redis_check(void *opts, const char *where, char **cause)
{
	struct sink_redis_options *o = opts;
	struct redis_url ru;

	if (o->url != NULL && strncmp(o->url, SINK_REDIS_SENTINEL_SCHEME,
	    strlen(SINK_REDIS_SENTINEL_SCHEME)) == 0 &&
	    sink_redis_sentinel_url(o, where, cause) != 0)
		return -1;
	if (sink_redis_endpoint(o, where, &ru, cause) != 0)
		return -1;
	redis_url_free(&ru);
	if (o->replicas_ack > 0 && o->replicas_ack_timeout_ms >= o->timeout_ms) {
		*cause = xasprintf("%s: replicas-ack-timeout-ms (%d) must be less than timeout-ms "
		    "(%d)", where, o->replicas_ack_timeout_ms, o->timeout_ms);
		return -1;
	}
	if (*o->channel == '\0' || strlen(o->channel) + strlen(o->key_prefix) >
	    SINK_REDIS_KEY_MAX / 2) {
		*cause = xasprintf("%s.channel-name: must be 1 to %d characters, key prefix "
		    "included", where, SINK_REDIS_KEY_MAX / 2);
		return -1;
	}
	return 0;
}

char *
sink_redis_sentinel_describe(const struct sink_redis_options *o)
{
	char *out = xasprintf("redis+sentinel://%s", o->password != NULL ? ":***@" : ""), *next;
	size_t i;

	for (i = 0; i < o->sentinels.n; i++) {
		next = xasprintf("%s%s%s", out, i > 0 ? "," : "", o->sentinels.v[i]);
		free(out);
		out = next;
	}
	next = xasprintf("%s/%s/%d", out, o->master_name, o->db);
	free(out);
	return next;
}

static char *
sink_redis_describe(const void *opts)
{
	const struct sink_redis_options *o = opts;
	struct redis_url ru;
	char *cause = NULL, *desc, *target;

	if (sink_redis_endpoint(o, "redis", &ru, &cause) != 0) {
		free(cause);
		return xstrdup("redis (invalid options)");
	}
	desc = o->master_name != NULL ? sink_redis_sentinel_describe(o) : redis_url_describe(&ru);
	redis_url_free(&ru);
	if (o->mode == SINK_REDIS_PUBSUB)
		target = xasprintf("%s channel %s%s", desc, o->channel,
		    o->require_subscribers ? " (subscribers required)" : "");
	else if (o->stream_maxlen > 0)
		target = xasprintf("%s stream %s%s maxlen ~%lld", desc, o->key_prefix, o->channel,
		    (long long)o->stream_maxlen);
	else
		target = xasprintf("%s stream %s%s", desc, o->key_prefix, o->channel);
	free(desc);
	return target;
}

const struct sink_type sink_redis_type = {
	.name = "redis",
	.options = sink_redis_options,
	.options_size = sizeof(struct sink_redis_options),
	.check = sink_redis_check,
	.describe = sink_redis_describe,
};
