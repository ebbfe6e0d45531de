/*
 * fuzz_redis_url.c: libFuzzer target for the Redis URL parser (relay/redis_url.c).
 *
 * The input is the URL, up to its first NUL byte. Besides what the sanitizers catch, it
 * checks what the parser promises:
 *  - a refused URL gets a message, and that message does not depend on the password: the
 *    same URL with every password replaced by "x" is refused with the very same message,
 *    unless the password itself is what is wrong (a bad percent-escape), so no byte of a
 *    password can be in it;
 *  - an accepted URL has its fields in range, a description that does not depend on the
 *    password either, and that description parses back to the same fields;
 *  - redis_url_redact gives the same text for the URL with its passwords replaced.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_url.h"
#include "util.h"
#include "fuzz.h"

static int
fuzz_streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Append [s, s+n) to the buffer at *p. */
static void
fuzz_put(char **p, const char *s, size_t n)
{
	memcpy(*p, s, n);
	*p += n;
}

/*
 * url with each password it holds replaced by "x": the user information's password (after
 * the first ':' and before the last '@') and the value of any "password=" parameter in
 * the query after that '@'. NULL if url has none, or no "://" (then it has no user
 * information at all).
 */
static char *
fuzz_mask_passwords(const char *url)
{
	const char *sep = strstr(url, "://"), *rest, *at, *colon, *p, *v, *end;
	char *out, *o;
	int changed = 0;

	if (sep == NULL)
		return NULL;
	out = o = malloc(strlen(url) + 1);
	if (out == NULL)
		abort();
	rest = sep + 3;
	p = url;
	if ((at = strrchr(rest, '@')) != NULL) {
		colon = memchr(rest, ':', (size_t)(at - rest));
		if (colon != NULL && colon + 1 < at) {
			fuzz_put(&o, p, (size_t)(colon + 1 - p));
			fuzz_put(&o, "x", 1);
			p = at;
			changed = 1;
		}
		rest = at + 1;
	}
	/* The query is everything after the first '?': '?' can be in neither a host nor a
	 * database nor a socket path. */
	v = strchr(rest, '?');
	for (; v != NULL && (v = strstr(v, "password=")) != NULL; v = end) {
		end = v + strlen("password=");
		if (v[-1] != '?' && v[-1] != '&')
			continue;
		if (strcspn(end, "&#") == 0)
			continue;
		fuzz_put(&o, p, (size_t)(end - p));
		fuzz_put(&o, "x", 1);
		p = end += strcspn(end, "&#");
		changed = 1;
	}
	fuzz_put(&o, p, strlen(p) + 1);
	if (!changed) {
		free(out);
		return NULL;
	}
	return out;
}

static void
fuzz_refused(const char *url, const char *cause)
{
	struct redis_url ru;
	char *masked, *cause2 = NULL;

	FUZZ_CHECK(cause != NULL && *cause != '\0', "%s", url);
	if (strstr(cause, "percent-escape") != NULL || (masked = fuzz_mask_passwords(url)) == NULL)
		return;
	FUZZ_CHECK(redis_url_parse(masked, &ru, &cause2) == -1, "%s accepted, %s refused: %s",
	    masked, url, cause);
	FUZZ_CHECK(strcmp(cause, cause2) == 0, "the message depends on the password:\n  %s\n  %s",
	    cause, cause2);
	free(cause2);
	free(masked);
}

static int
fuzz_safe_user(const char *s)
{
	return s == NULL || s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-")] == '\0';
}

static void
fuzz_accepted(const char *url, struct redis_url *ru)
{
	struct redis_url back;
	char *desc, *desc2, *password = ru->password, *cause = NULL;

	FUZZ_CHECK((ru->host == NULL) != (ru->path == NULL), "%s", url);
	FUZZ_CHECK(ru->path != NULL ? ru->port == 0 && ru->path[0] == '/' :
	    ru->port >= 1 && ru->port <= 65535 && ru->host[0] != '\0', "%s", url);
	FUZZ_CHECK(ru->db >= 0, "%s", url);
	FUZZ_CHECK(password == NULL || password[0] != '\0', "%s: empty password", url);

	desc = redis_url_describe(ru);
	ru->password = password != NULL ? (char *)"x" : NULL;
	desc2 = redis_url_describe(ru);
	ru->password = password;
	FUZZ_CHECK(strcmp(desc, desc2) == 0, "the description depends on the password: %s", desc);

	/* A user name with URL syntax in it is shown decoded, so cannot round-trip. */
	if (fuzz_safe_user(ru->username)) {
		FUZZ_CHECK(redis_url_parse(desc, &back, &cause) == 0, "%s: %s", desc, cause);
		FUZZ_CHECK(fuzz_streq(back.host, ru->host) && fuzz_streq(back.path, ru->path) &&
		    back.port == ru->port && back.db == ru->db &&
		    fuzz_streq(back.username, ru->username) &&
		    fuzz_streq(back.password, password != NULL ? "***" : NULL),
		    "%s described as %s, which parses differently", url, desc);
		redis_url_free(&back);
	}
	free(desc);
	free(desc2);
}

/* redis_url_redact, valid URL or not, hides every password the same way. */
static void
fuzz_redact(const char *url)
{
	char *masked = fuzz_mask_passwords(url), *a, *b;

	if (masked == NULL)
		return;
	a = redis_url_redact(url);
	b = redis_url_redact(masked);
	FUZZ_CHECK(strcmp(a, b) == 0, "redacted differently:\n  %s\n  %s", a, b);
	free(a);
	free(b);
	free(masked);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct redis_url ru;
	char *url, *cause = NULL;

	if ((url = malloc(size + 1)) == NULL)
		return 0;
	memcpy(url, data, size);
	url[size] = '\0';
	fuzz_redact(url);
	if (redis_url_parse(url, &ru, &cause) == 0) {
		fuzz_accepted(url, &ru);
		redis_url_free(&ru);
	} else {
		fuzz_refused(url, cause);
		free(cause);
	}
	free(url);
	return 0;
}
