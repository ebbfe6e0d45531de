/* amqp_url.c: parse amqp:// and amqps:// URLs strictly; never echo what may be a secret. */
#include "config.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "amqp_url.h"
#include "util.h"

#define AMQP_URL_DEFAULT_HEARTBEAT 60
#define AMQP_URL_DEFAULT_TIMEOUT_MS 10000
#define AMQP_URL_DEFAULT_FRAME_MAX 131072

static int
amqp_url_fail(char **cause, const char *why)
{
	*cause = xasprintf("bad AMQP URL: %s", why);
	return -1;
}

/* A decimal number of len bytes at s in [min, max]. */
static int
amqp_url_number(const char *s, size_t len, int64_t min, int64_t max, int *out)
{
	char *text = xasprintf("%.*s", (int)len, s), *why = NULL;
	int64_t v;
	int rc;

	rc = len > 0 && isdigit((unsigned char)s[0]) ?
	    util_parse_int(text, min, max, &v, &why) : -1;
	free(text);
	free(why);
	if (rc == 0)
		*out = (int)v;
	return rc;
}

/* user[:password] in [s, s+len). */
static int
amqp_url_userinfo(const char *s, size_t len, struct amqp_url *au, char **cause)
{
	const char *colon = memchr(s, ':', len);
	size_t ulen = colon != NULL ? (size_t)(colon - s) : len;

	free(au->user);
	au->user = util_percent_decode(s, ulen);
	if (au->user == NULL || au->user[0] == '\0')
		return amqp_url_fail(cause, "bad or empty user name");
	if (colon != NULL) {
		free(au->password);
		au->password = util_percent_decode(colon + 1, len - ulen - 1);
		if (au->password == NULL)
			return amqp_url_fail(cause, "bad percent-escape in the password");
		au->password_set = 1;
	}
	return 0;
}

/* host[:port] or [v6][:port] in [s, s+len). */
static int
amqp_url_hostport(const char *s, size_t len, struct amqp_url *au, char **cause)
{
	const char *end = s + len, *hend, *p;

	if (len > 0 && s[0] == '[') {
		hend = memchr(s, ']', len);
		if (hend == NULL || hend == s + 1)
			return amqp_url_fail(cause, "unterminated or empty IPv6 address");
		au->host = xasprintf("%.*s", (int)(hend - s - 1), s + 1);
		p = hend + 1;
	} else {
		hend = memchr(s, ':', len);
		p = hend != NULL ? hend : end;
		au->host = xasprintf("%.*s", (int)(p - s), s);
	}
	if (au->host[0] == '\0')
		return amqp_url_fail(cause, "no host");
	for (const char *h = au->host; *h != '\0'; h++) {
		if (!isalnum((unsigned char)*h) && strchr("-._:", *h) == NULL)
			return amqp_url_fail(cause, "bad character in the host name");
	}
	if (p < end) {
		if (*p != ':' || amqp_url_number(p + 1, (size_t)(end - p - 1), 1, 65535,
		    &au->port) != 0)
			return amqp_url_fail(cause, "the port must be a number from 1 to 65535");
	}
	return 0;
}

static int
amqp_url_param(const char *s, size_t len, struct amqp_url *au, char **cause)
{
	static const struct {
		const char *name;
		size_t off;
		int64_t min, max;
	} params[] = {
		{ "heartbeat", offsetof(struct amqp_url, heartbeat), 0, 65535 },
		{ "connection_timeout", offsetof(struct amqp_url, connection_timeout_ms), 1,
		  86400000 },
		{ "channel_max", offsetof(struct amqp_url, channel_max), 0, 65535 },
		{ "channelMax", offsetof(struct amqp_url, channel_max), 0, 65535 },
		{ "frame_max", offsetof(struct amqp_url, frame_max), 4096, 2147483647 },
		{ "frameMax", offsetof(struct amqp_url, frame_max), 4096, 2147483647 },
	};
	const char *eq = memchr(s, '=', len);
	size_t nlen = eq != NULL ? (size_t)(eq - s) : len, i;

	if (nlen == 6 && strncmp(s, "locale", 6) == 0)
		return 0;
	for (i = 0; i < sizeof params / sizeof params[0]; i++) {
		if (strlen(params[i].name) != nlen || strncmp(params[i].name, s, nlen) != 0)
			continue;
		if (eq == NULL || amqp_url_number(eq + 1, len - nlen - 1, params[i].min,
		    params[i].max, (int *)((char *)au + params[i].off)) != 0) {
			*cause = xasprintf("bad AMQP URL: %s must be a number from %lld to %lld",
			    params[i].name, (long long)params[i].min, (long long)params[i].max);
			return -1;
		}
		return 0;
	}
	*cause = xasprintf("bad AMQP URL: unknown parameter '%.*s' (use heartbeat, "
	    "connection_timeout, channel_max or frame_max)", (int)(nlen > 40 ? 40 : nlen), s);
	return -1;
}

static int
amqp_url_query(const char *q, struct amqp_url *au, char **cause)
{
	size_t len;

	while (*q != '\0') {
		len = strcspn(q, "&");
		if (len > 0 && amqp_url_param(q, len, au, cause) != 0)
			return -1;
		q += len + (q[len] == '&');
	}
	return 0;
}

int
amqp_url_parse(const char *url, struct amqp_url *au, char **cause)
{
	const char *rest, *query, *at, *slash, *end;
	char *path;

	memset(au, 0, sizeof *au);
	au->heartbeat = AMQP_URL_DEFAULT_HEARTBEAT;
	au->connection_timeout_ms = AMQP_URL_DEFAULT_TIMEOUT_MS;
	au->frame_max = AMQP_URL_DEFAULT_FRAME_MAX;
	au->user = xstrdup("guest");
	au->password = xstrdup("guest");
	if (strncmp(url, "amqp://", 7) == 0) {
		rest = url + 7;
		au->port = 5672;
	} else if (strncmp(url, "amqps://", 8) == 0) {
		rest = url + 8;
		au->port = 5671;
		au->tls = 1;
	} else {
		return amqp_url_fail(cause, "it must start with amqp:// or amqps://");
	}
	query = rest + strcspn(rest, "?#");
	if (*query == '#')
		return amqp_url_fail(cause, "a fragment (#) has no meaning here");
	/* The user information ends at the last '@' before the query: a password may hold
	 * any character. */
	at = NULL;
	for (const char *p = rest; p < query; p++) {
		if (*p == '@')
			at = p;
	}
	if (at != NULL) {
		if (amqp_url_userinfo(rest, (size_t)(at - rest), au, cause) != 0)
			return -1;
		rest = at + 1;
	}
	slash = memchr(rest, '/', (size_t)(query - rest));
	end = slash != NULL ? slash : query;
	if (amqp_url_hostport(rest, (size_t)(end - rest), au, cause) != 0)
		return -1;
	if (slash != NULL && slash + 1 < query) {
		path = util_percent_decode(slash + 1, (size_t)(query - slash - 1));
		if (path == NULL)
			return amqp_url_fail(cause, "bad percent-escape in the vhost");
		au->vhost = path;
	} else {
		au->vhost = xstrdup("/");
	}
	return *query == '?' ? amqp_url_query(query + 1, au, cause) : 0;
}

void
amqp_url_free(struct amqp_url *au)
{
	free(au->host);
	free(au->user);
	free(au->password);
	free(au->vhost);
	memset(au, 0, sizeof *au);
}

char *
amqp_url_describe(const struct amqp_url *au)
{
	int v6 = strchr(au->host, ':') != NULL;

	return xasprintf("%s://%s:***@%s%s%s:%d/%s", au->tls ? "amqps" : "amqp", au->user,
	    v6 ? "[" : "", au->host, v6 ? "]" : "", au->port,
	    strcmp(au->vhost, "/") == 0 ? "" : au->vhost);
}
