/*
 * fuzz_amqp_url.c: libFuzzer target for the AMQP URL parser (relay/amqp_url.c).
 *
 * The input is the URL, up to its first NUL byte. Besides what the sanitizers catch, it
 * checks what the parser promises:
 *  - a refused URL gets a "bad AMQP URL: ..." message that does not depend on the
 *    password: the same URL with the password replaced by "x" is refused with the very
 *    same message, unless the password itself is what is wrong;
 *  - an accepted URL has its fields in range; the same URL with the password replaced
 *    parses to the same fields but the password; the description does not depend on the
 *    password, and parses back to the same fields.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp_url.h"
#include "fuzz.h"

/*
 * url with its password (after the first ':' and before the last '@' of the user
 * information, which ends where the query or fragment begins) replaced by "x"; NULL if
 * it has none.
 */
static char *
fuzz_mask_password(const char *url)
{
	const char *rest, *query, *at = NULL, *colon, *p;
	char *out;

	if (strncmp(url, "amqp://", 7) == 0)
		rest = url + 7;
	else if (strncmp(url, "amqps://", 8) == 0)
		rest = url + 8;
	else
		return NULL;
	query = rest + strcspn(rest, "?#");
	for (p = rest; p < query; p++) {
		if (*p == '@')
			at = p;
	}
	if (at == NULL || (colon = memchr(rest, ':', (size_t)(at - rest))) == NULL ||
	    colon + 1 == at)
		return NULL;
	if ((out = malloc(strlen(url) + 2)) == NULL)
		abort();
	sprintf(out, "%.*sx%s", (int)(colon + 1 - url), url, at);
	return out;
}

static int
fuzz_same_but_password(const struct amqp_url *a, const struct amqp_url *b)
{
	return a->tls == b->tls && strcmp(a->host, b->host) == 0 && a->port == b->port &&
	    strcmp(a->user, b->user) == 0 && strcmp(a->vhost, b->vhost) == 0 &&
	    a->heartbeat == b->heartbeat && a->connection_timeout_ms == b->connection_timeout_ms &&
	    a->channel_max == b->channel_max && a->frame_max == b->frame_max;
}

static int
fuzz_safe(const char *s, const char *extra)
{
	const char *p;

	for (p = s; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("._-", *p) != NULL ||
		    strchr(extra, *p) != NULL))
			return 0;
	}
	return 1;
}

static void
fuzz_refused(const char *url, const char *cause)
{
	struct amqp_url au;
	char *masked, *cause2 = NULL;

	FUZZ_CHECK(cause != NULL && strncmp(cause, "bad AMQP URL: ", 14) == 0, "%s: %s", url,
	    cause != NULL ? cause : "(no message)");
	if (strstr(cause, "password") != NULL || (masked = fuzz_mask_password(url)) == NULL)
		return;
	FUZZ_CHECK(amqp_url_parse(masked, &au, &cause2) == -1, "%s accepted, %s refused: %s",
	    masked, url, cause);
	FUZZ_CHECK(strcmp(cause, cause2) == 0, "the message depends on the password:\n  %s\n  %s",
	    cause, cause2);
	amqp_url_free(&au);
	free(cause2);
	free(masked);
}

static void
fuzz_accepted(const char *url, struct amqp_url *au)
{
	struct amqp_url other, back;
	char *masked, *desc, *desc2, *cause = NULL;

	FUZZ_CHECK(au->host != NULL && au->host[0] != '\0', "%s", url);
	FUZZ_CHECK(au->user != NULL && au->user[0] != '\0' && au->password != NULL &&
	    au->vhost != NULL && au->vhost[0] != '\0', "%s", url);
	FUZZ_CHECK(au->port >= 1 && au->port <= 65535, "%s", url);
	FUZZ_CHECK(au->heartbeat >= 0 && au->heartbeat <= 65535 &&
	    au->connection_timeout_ms >= 1 && au->connection_timeout_ms <= 86400000 &&
	    au->channel_max >= 0 && au->channel_max <= 65535 && au->frame_max >= 4096,
	    "%s: a parameter out of range", url);

	desc = amqp_url_describe(au);
	if ((masked = fuzz_mask_password(url)) != NULL) {
		FUZZ_CHECK(amqp_url_parse(masked, &other, &cause) == 0, "%s refused: %s", masked,
		    cause);
		FUZZ_CHECK(fuzz_same_but_password(au, &other), "%s and %s differ", url, masked);
		desc2 = amqp_url_describe(&other);
		FUZZ_CHECK(strcmp(desc, desc2) == 0, "the description depends on the password: %s",
		    desc);
		free(desc2);
		amqp_url_free(&other);
		free(masked);
	}

	/* Names with URL syntax in them are shown decoded, so cannot round-trip. */
	if (fuzz_safe(au->user, "") && fuzz_safe(au->vhost, "/") && fuzz_safe(au->host, ":")) {
		FUZZ_CHECK(amqp_url_parse(desc, &back, &cause) == 0, "%s: %s", desc, cause);
		FUZZ_CHECK(back.tls == au->tls && strcmp(back.host, au->host) == 0 &&
		    back.port == au->port && strcmp(back.user, au->user) == 0 &&
		    strcmp(back.password, "***") == 0 && strcmp(back.vhost, au->vhost) == 0,
		    "%s described as %s, which parses differently", url, desc);
		amqp_url_free(&back);
	}
	free(desc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct amqp_url au;
	char *url, *cause = NULL;

	if ((url = malloc(size + 1)) == NULL)
		return 0;
	memcpy(url, data, size);
	url[size] = '\0';
	/* Like its callers, free the struct whatever the outcome. */
	if (amqp_url_parse(url, &au, &cause) == 0)
		fuzz_accepted(url, &au);
	else
		fuzz_refused(url, cause);
	amqp_url_free(&au);
	free(cause);
	free(url);
	return 0;
}
