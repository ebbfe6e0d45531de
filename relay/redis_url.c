/*
 * redis_url.c: parse, describe and redact Redis connection URLs (see redis_url.h).
 *
 * Strict on purpose: a port or database that is not a plain decimal number in range, an
 * unknown query parameter or any trailing junk is an error, because a typo in a URL
 * otherwise connects somewhere unexpected. Every message quotes the URL redacted.
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "redis_url.h"
#include "util.h"

#define REDIS_URL_MASK "***"

enum redis_url_scheme {
	REDIS_URL_TCP,
	REDIS_URL_UNIX,
	REDIS_URL_TLS,
	REDIS_URL_UNKNOWN
};

static enum redis_url_scheme
redis_url_scheme(const char *s, size_t len)
{
	if (len == 5 && strncasecmp(s, "redis", 5) == 0)
		return REDIS_URL_TCP;
	if ((len == 4 && strncasecmp(s, "unix", 4) == 0) ||
	    (len == 10 && strncasecmp(s, "redis+unix", 10) == 0))
		return REDIS_URL_UNIX;
	if ((len == 6 && strncasecmp(s, "rediss", 6) == 0) ||
	    (len == 11 && strncasecmp(s, "rediss+unix", 11) == 0))
		return REDIS_URL_TLS;
	return REDIS_URL_UNKNOWN;
}

/* Append len bytes of s to the malloc'd string *out. */
static void
redis_url_append(char **out, const char *s, size_t len)
{
	char *next = xasprintf("%s%.*s", *out, (int)len, s);

	free(*out);
	*out = next;
}

char *
redis_url_redact(const char *url)
{
	const char *sep = strstr(url, "://"), *rest, *at, *colon, *p, *q, *end;
	char *out = xstrdup("");

	rest = sep != NULL ? sep + 3 : url;
	redis_url_append(&out, url, (size_t)(rest - url));
	/* The user information: everything up to the last '@', as the parser reads it. */
	if ((at = strrchr(rest, '@')) != NULL) {
		colon = memchr(rest, ':', (size_t)(at - rest));
		if (sep == NULL)
			redis_url_append(&out, REDIS_URL_MASK, strlen(REDIS_URL_MASK));
		else if (colon != NULL) {
			redis_url_append(&out, rest, (size_t)(colon + 1 - rest));
			redis_url_append(&out, REDIS_URL_MASK, strlen(REDIS_URL_MASK));
		} else
			redis_url_append(&out, rest, (size_t)(at - rest));
		rest = at;
	}
	/* A password given as a query parameter. */
	for (p = rest; (q = strstr(p, "password=")) != NULL; p = end) {
		q += strlen("password=");
		redis_url_append(&out, p, (size_t)(q - p));
		end = q + strcspn(q, "&#");
		if (end > q)
			redis_url_append(&out, REDIS_URL_MASK, strlen(REDIS_URL_MASK));
	}
	redis_url_append(&out, p, strlen(p));
	return out;
}

char *
redis_url_redact_text(const char *text)
{
	char *out = xstrdup(""), *url, *red;
	const char *p = text, *sep, *start;
	size_t len;

	while ((sep = strstr(p, "://")) != NULL) {
		for (start = sep; start > p && (isalnum((unsigned char)start[-1]) ||
		    strchr("+.-", start[-1]) != NULL); start--)
			;
		len = (size_t)(sep - start) + 3 + strcspn(sep + 3, "\" \t\n,");
		redis_url_append(&out, p, (size_t)(start - p));
		url = xasprintf("%.*s", (int)len, start);
		red = redis_url_redact(url);
		redis_url_append(&out, red, strlen(red));
		free(red);
		free(url);
		p = start + len;
	}
	redis_url_append(&out, p, strlen(p));
	return out;
}

static int
redis_url_digits(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

/* A decimal number of len bytes at s in [min, max]; -1 if anything else. */
static int
redis_url_number(const char *s, size_t len, int64_t min, int64_t max, int *out)
{
	char *text, *why = NULL;
	int64_t v;
	int rc;

	if (!redis_url_digits(s, len))
		return -1;
	text = xasprintf("%.*s", (int)len, s);
	rc = util_parse_int(text, min, max, &v, &why);
	free(text);
	free(why);
	if (rc == 0)
		*out = (int)v;
	return rc;
}

static int
redis_url_host_ok(const char *host, int ipv6)
{
	const char *p;

	if (ipv6 && strchr(host, ':') == NULL)
		return 0;
	for (p = host; *p != '\0'; p++) {
		if (ipv6 && !isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
			return 0;
		if (!ipv6 && !isalnum((unsigned char)*p) && strchr("-._", *p) == NULL)
			return 0;
	}
	return 1;
}

/* user[:password], percent-decoded; empty parts are NULL. */
static int
redis_url_userinfo(struct redis_url *ru, const char *s, size_t len, const char **why)
{
	const char *colon = memchr(s, ':', len);
	size_t ulen = colon != NULL ? (size_t)(colon - s) : len;

	if (ulen > 0 && (ru->username = util_percent_decode(s, ulen)) == NULL) {
		*why = "bad percent-escape in the user name";
		return -1;
	}
	if (colon != NULL && colon + 1 < s + len &&
	    (ru->password = util_percent_decode(colon + 1, (size_t)(s + len - colon - 1))) ==
	    NULL) {
		*why = "bad percent-escape in the password";
		return -1;
	}
	return 0;
}

/* host[:port] or [ipv6][:port]; an empty host is the default one. */
static int
redis_url_authority(struct redis_url *ru, const char *s, size_t len, const char **why)
{
	const char *end = s + len, *port = NULL, *close;

	if (len > 0 && *s == '[') {
		if ((close = memchr(s, ']', len)) == NULL) {
			*why = "missing ']' after the IPv6 address";
			return -1;
		}
		ru->host = xasprintf("%.*s", (int)(close - s - 1), s + 1);
		if (!redis_url_host_ok(ru->host, 1)) {
			*why = "invalid IPv6 address";
			return -1;
		}
		if (close + 1 < end && close[1] != ':') {
			*why = "unexpected text after the IPv6 address";
			return -1;
		}
		if (close + 1 < end)
			port = close + 2;
	} else {
		if ((port = memchr(s, ':', len)) != NULL)
			ru->host = xasprintf("%.*s", (int)(port++ - s), s);
		else
			ru->host = xasprintf("%.*s", (int)len, s);
		if (!redis_url_host_ok(ru->host, 0)) {
			*why = "invalid host name";
			return -1;
		}
		if (*ru->host == '\0') {
			free(ru->host);
			ru->host = xstrdup(REDIS_URL_DEFAULT_HOST);
		}
	}
	ru->port = REDIS_URL_DEFAULT_PORT;
	if (port != NULL && redis_url_number(port, (size_t)(end - port), 1, 65535, &ru->port) !=
	    0) {
		*why = "the port must be a number from 1 to 65535";
		return -1;
	}
	return 0;
}

static int
redis_url_db(struct redis_url *ru, const char *s, size_t len, int *seen, const char **why)
{
	if (*seen) {
		*why = "the database is given twice";
		return -1;
	}
	*seen = 1;
	if (redis_url_number(s, len, 0, INT32_MAX, &ru->db) != 0) {
		*why = "the database must be a number from 0 to 2147483647";
		return -1;
	}
	return 0;
}

/* ?db=N&username=U&password=P */
static int
redis_url_query(struct redis_url *ru, const char *s, int *db_seen, const char **why)
{
	const char *p = s, *eq, *amp;
	char **field;
	size_t klen;

	while (*p != '\0') {
		amp = p + strcspn(p, "&");
		if ((eq = memchr(p, '=', (size_t)(amp - p))) == NULL) {
			*why = "query parameters must be name=value";
			return -1;
		}
		klen = (size_t)(eq - p);
		field = NULL;
		if (klen == 2 && strncmp(p, "db", 2) == 0) {
			if (redis_url_db(ru, eq + 1, (size_t)(amp - eq - 1), db_seen, why) != 0)
				return -1;
		} else if (klen == 8 && strncmp(p, "username", 8) == 0)
			field = &ru->username;
		else if (klen == 8 && strncmp(p, "password", 8) == 0)
			field = &ru->password;
		else {
			*why = "unknown query parameter (use db, username or password)";
			return -1;
		}
		if (field != NULL && *field != NULL) {
			*why = field == &ru->password ? "the password is given twice" :
			    "the user name is given twice";
			return -1;
		}
		if (field != NULL && amp > eq + 1 &&
		    (*field = util_percent_decode(eq + 1, (size_t)(amp - eq - 1))) == NULL) {
			*why = "bad percent-escape in a query parameter";
			return -1;
		}
		p = *amp == '&' ? amp + 1 : amp;
	}
	return 0;
}

static int
redis_url_parse_rest(struct redis_url *ru, enum redis_url_scheme scheme, const char *rest,
    const char **why)
{
	const char *at = strrchr(rest, '@'), *end;
	int db_seen = 0;

	if (at != NULL) {
		if (redis_url_userinfo(ru, rest, (size_t)(at - rest), why) != 0)
			return -1;
		rest = at + 1;
	}
	if (strchr(rest, '#') != NULL) {
		*why = "unexpected '#' fragment";
		return -1;
	}
	if (scheme == REDIS_URL_UNIX) {
		end = rest + strcspn(rest, "?");
		if (*rest != '/' || end == rest + 1) {
			*why = "expected an absolute socket path: unix:///path/to/redis.sock";
			return -1;
		}
		if ((size_t)(end - rest) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
			*why = "the socket path is too long";
			return -1;
		}
		ru->path = xasprintf("%.*s", (int)(end - rest), rest);
	} else {
		end = rest + strcspn(rest, "/?");
		if (redis_url_authority(ru, rest, (size_t)(end - rest), why) != 0)
			return -1;
		if (*end == '/') {
			rest = end + 1;
			end = rest + strcspn(rest, "?");
			if (end > rest && redis_url_db(ru, rest, (size_t)(end - rest), &db_seen,
			    why) != 0)
				return -1;
		}
	}
	if (*end == '?' && redis_url_query(ru, end + 1, &db_seen, why) != 0)
		return -1;
	return 0;
}

int
redis_url_parse(const char *url, struct redis_url *ru, char **cause)
{
	const char *sep = strstr(url, "://"), *why = NULL;
	enum redis_url_scheme scheme;
	char *safe;

	memset(ru, 0, sizeof *ru);
	scheme = sep != NULL ? redis_url_scheme(url, (size_t)(sep - url)) : REDIS_URL_UNKNOWN;
	if (sep == NULL)
		why = "not a Redis URL (expected redis://host:port/db or unix:///path/to.sock)";
	else if (scheme == REDIS_URL_TLS)
		why = "rediss:// (TLS) is not supported by this build (hiredis 0.14 has no TLS)";
	else if (scheme == REDIS_URL_UNKNOWN)
		why = "unsupported scheme (use redis:// or unix://)";
	else if (redis_url_parse_rest(ru, scheme, sep + 3, &why) == 0)
		return 0;
	safe = redis_url_redact(url);
	*cause = xasprintf("%s: %s", safe, why);
	free(safe);
	redis_url_free(ru);
	return -1;
}

void
redis_url_free(struct redis_url *ru)
{
	free(ru->host);
	free(ru->path);
	free(ru->username);
	if (ru->password != NULL) {
		explicit_bzero(ru->password, strlen(ru->password));
		free(ru->password);
	}
	memset(ru, 0, sizeof *ru);
}

char *
redis_url_describe(const struct redis_url *ru)
{
	const char *user = ru->username != NULL ? ru->username : "";
	const char *mask = ru->password != NULL ? ":" REDIS_URL_MASK : "";
	const char *at = ru->username != NULL || ru->password != NULL ? "@" : "";

	if (ru->path != NULL)
		return xasprintf("unix://%s%s%s%s?db=%d", user, mask, at, ru->path, ru->db);
	if (strchr(ru->host, ':') != NULL)
		return xasprintf("redis://%s%s%s[%s]:%d/%d", user, mask, at, ru->host, ru->port,
		    ru->db);
	return xasprintf("redis://%s%s%s%s:%d/%d", user, mask, at, ru->host, ru->port, ru->db);
}
