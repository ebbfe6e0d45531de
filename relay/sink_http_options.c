/*
 * sink_http_options.c: the HTTP sink's options (one table), the checks that span them,
 * and signing keys read from secrets. Plain data: no libcurl or OpenSSL here.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "redis_url.h"
#include "sink.h"
#include "sink_http.h"
#include "util.h"

#define O(field) offsetof(struct sink_http_options, field)

static const char *const sink_http_methods[] = { "POST", "PUT", NULL };
static const char *const sink_http_signatures[] = { "standard-webhooks", "hmac-sha256-hex",
	NULL };
static const char *const sink_http_ce_modes[] = { "structured", "binary", NULL };

static const struct conf_option sink_http_options[] = {
	{ .name = "url", .type = OPTION_STRING, .offset = O(url), .flags = OPTION_SECRET,
	  .help = "http[s]://host[:port]/path (required); {name} expands to the published "
	  "name, percent-encoded" },
	{ .name = "method", .type = OPTION_CHOICE, .offset = O(method), .def = "POST",
	  .choices = sink_http_methods, .help = "the request method" },
	{ .name = "headers", .type = OPTION_OBJECT, .offset = O(headers),
	  .flags = OPTION_STRING_VALUES, .help = "extra request headers, e.g. {\"Authorization\": \"Bearer ...\"}" },
	{ .name = "timeout-ms", .type = OPTION_INT, .offset = O(timeout_ms), .min = 1,
	  .max = 3600000, .def = "10000", .help = "the whole request, connecting included" },
	{ .name = "connect-timeout-ms", .type = OPTION_INT, .offset = O(connect_timeout_ms),
	  .min = 1, .max = 3600000, .def = "5000", .help = "connecting, TLS handshake included" },
	{ .name = "concurrency", .type = OPTION_INT, .offset = O(concurrency), .min = 1,
	  .max = 1024, .def = "16", .help = "requests in flight (never two with one ordering key)" },
	{ .name = "batch", .type = OPTION_INT, .offset = O(batch), .min = 1, .max = 10000,
	  .def = "1", .help = "events per request; more than 1: a JSON array, one outcome for "
	  "all its events" },
	SINK_TLS_OPTIONS(struct sink_http_options, tls,
	    "CA bundle for https:// (default: the system's)"),
	{ .name = "signing-secret", .type = OPTION_STRINGS, .offset = O(secrets),
	  .flags = OPTION_SECRET, .help = "sign every request (default: OUTBOXD_HTTP_SECRET); "
	  "whsec_<base64> for standard-webhooks; several: one signature each, for rotation" },
	{ .name = "signature", .type = OPTION_CHOICE, .offset = O(signature),
	  .def = "standard-webhooks", .choices = sink_http_signatures,
	  .help = "webhook-id, webhook-timestamp and webhook-signature headers, or the hex "
	  "HMAC-SHA256 of the body in signature-header" },
	{ .name = "signature-header", .type = OPTION_STRING, .offset = O(signature_header),
	  .def = "X-Webhook-Signature", .help = "the header of hmac-sha256-hex signatures" },
	{ .name = "cloudevents-mode", .type = OPTION_CHOICE, .offset = O(ce_mode),
	  .def = "structured", .choices = sink_http_ce_modes,
	  .help = "with format cloudevents: the event as the body, or its attributes in ce- "
	  "headers and the data as the body" },
	OPTION_END
};

static int
sink_http_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Standard base64 with padding optional; -1 if s is not base64 or too long. */
static int
sink_http_b64_decode(const char *s, unsigned char *out, size_t max, size_t *len)
{
	size_t n = strlen(s), used = 0, i;
	unsigned bits = 0;
	int nbits = 0, v;

	while (n > 0 && s[n - 1] == '=')
		n--;
	for (i = 0; i < n; i++) {
		if ((v = sink_http_b64_value((unsigned char)s[i])) < 0)
			return -1;
		bits = (bits << 6) | (unsigned)v;
		nbits += 6;
		if (nbits >= 8) {
			nbits -= 8;
			if (used == max)
				return -1;
			out[used++] = (unsigned char)(bits >> nbits);
			bits &= (1u << nbits) - 1;
		}
	}
	*len = used;
	return used > 0 ? 0 : -1;
}

int
sink_http_secret_key(int signature, const char *secret, unsigned char *key, size_t *keylen)
{
	static const char prefix[] = "whsec_";
	size_t n = strlen(secret), i;

	if (signature == SINK_HTTP_SIGN_STANDARD) {
		if (strncmp(secret, prefix, sizeof prefix - 1) != 0)
			return -1;
		return sink_http_b64_decode(secret + sizeof prefix - 1, key, SINK_HTTP_KEY_MAX,
		    keylen);
	}
	if (n == 0 || n > SINK_HTTP_KEY_MAX)
		return -1;
	for (i = 0; i < n; i++)
		key[i] = (unsigned char)secret[i];
	*keylen = n;
	return 0;
}

/* A header name as RFC 9110 allows it (a token). */
static int
sink_http_token(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		if (strchr("!#$%&'*+-.^_`|~", *s) == NULL &&
		    !((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= 'A' && *s <= 'Z')))
			return 0;
	}
	return 1;
}

static int
sink_http_check_headers(const struct sink_http_options *o, const char *where, char **cause)
{
	cJSON *obj, *item;
	int rc = 0;

	if (o->headers == NULL)
		return 0;
	if ((obj = cJSON_Parse(o->headers)) == NULL)
		abort(); /* option_read kept it as valid JSON */
	cJSON_ArrayForEach(item, obj) {
		if (!sink_http_token(item->string)) {
			*cause = xasprintf("%s.headers: \"%s\" is not a valid header name", where,
			    item->string);
			rc = -1;
			break;
		}
		if (strpbrk(item->valuestring, "\r\n") != NULL) {
			*cause = xasprintf("%s.headers.%s: a header value must not hold a line break",
			    where, item->string);
			rc = -1;
			break;
		}
	}
	cJSON_Delete(obj);
	return rc;
}

static int
sink_http_check(void *opts, const char *where, char **cause)
{
	struct sink_http_options *o = opts;
	unsigned char key[SINK_HTTP_KEY_MAX];
	const char *env = getenv("OUTBOXD_HTTP_SECRET");
	size_t i, keylen;

	if (o->url == NULL || (strncmp(o->url, "http://", 7) != 0 &&
	    strncmp(o->url, "https://", 8) != 0) || strlen(o->url) > SINK_HTTP_URL_MAX / 2) {
		*cause = xasprintf("%s.url: expected an http:// or https:// URL of at most %d "
		    "characters", where, SINK_HTTP_URL_MAX / 2);
		return -1;
	}
	if (sink_tls_check(&o->tls, where, cause) != 0)
		return -1;
	if (!sink_http_token(o->signature_header)) {
		*cause = xasprintf("%s.signature-header: \"%s\" is not a valid header name", where,
		    o->signature_header);
		return -1;
	}
	if (sink_http_check_headers(o, where, cause) != 0)
		return -1;
	/* The environment's secret, so that it need not be written in the file. */
	if (o->secrets.n == 0 && env != NULL && *env != '\0') {
		o->secrets.v = xcalloc(1, sizeof *o->secrets.v);
		o->secrets.v[o->secrets.n++] = xstrdup(env);
	}
	for (i = 0; i < o->secrets.n; i++) {
		if (sink_http_secret_key(o->signature, o->secrets.v[i], key, &keylen) != 0) {
			*cause = xasprintf("%s.signing-secret: %s", where,
			    o->signature == SINK_HTTP_SIGN_STANDARD ? "expected whsec_ followed by "
			    "base64 (at most 256 bytes decoded)" : "expected 1 to 256 bytes");
			return -1;
		}
	}
	return 0;
}

static char *
sink_http_describe(const void *opts)
{
	const struct sink_http_options *o = opts;
	char *url = redis_url_redact(o->url != NULL ? o->url : "?"), *desc;

	desc = xasprintf("%s %s%s%s", o->method == SINK_HTTP_PUT ? "PUT" : "POST", url,
	    o->batch > 1 ? " (batches)" : "", o->secrets.n == 0 ? "" :
	    o->signature == SINK_HTTP_SIGN_STANDARD ? " (signed: standard webhooks)" :
	    " (signed: hmac-sha256-hex)");
	free(url);
	return desc;
}

const struct sink_type sink_http_type = {
	.name = "http",
	.options = sink_http_options,
	.options_size = sizeof(struct sink_http_options),
	.check = sink_http_check,
	.describe = sink_http_describe,
};
