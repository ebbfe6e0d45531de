/*
 * sink_http.h: the HTTP (webhook) sink's options, shared by its type
 * (sink_http_options.c, what the configuration reads and checks; no libcurl there) and
 * its implementation (sink_http.c), and the signatures, which tests check against the
 * Standard Webhooks vectors.
 */
#ifndef RELAY_SINK_HTTP_H
#define RELAY_SINK_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "option.h"
#include "sink.h"

/* Longest URL after {name} expands. */
#define SINK_HTTP_URL_MAX 8192
/* Longest signing key, decoded. */
#define SINK_HTTP_KEY_MAX 256
/* How much of a refusing response's body goes into the event's last_error. */
#define SINK_HTTP_BODY_SHOWN 200

enum sink_http_method {
	SINK_HTTP_POST,
	SINK_HTTP_PUT
};

enum sink_http_signature {
	SINK_HTTP_SIGN_STANDARD,   /* Standard Webhooks 1.0: webhook-id/-timestamp/-signature */
	SINK_HTTP_SIGN_HEX         /* push-events: hex HMAC-SHA256 of the body in one header */
};

enum sink_http_ce_mode {
	SINK_HTTP_CE_STRUCTURED,
	SINK_HTTP_CE_BINARY
};

struct sink_http_options {
	char *url;                /* template: "{name}" is the published name, escaped */
	int method;               /* enum sink_http_method */
	char *headers;            /* a JSON object of strings, or NULL */
	int timeout_ms;
	int connect_timeout_ms;
	int concurrency;          /* requests in flight */
	int batch;                /* events per request; > 1: a JSON array */
	struct sink_tls_options tls;
	struct option_strings secrets; /* signing-secret (or OUTBOXD_HTTP_SECRET); n 0: none */
	int signature;            /* enum sink_http_signature */
	char *signature_header;   /* for SINK_HTTP_SIGN_HEX */
	int ce_mode;              /* enum sink_http_ce_mode */
};

/* The HMAC key of secret: for Standard Webhooks the base64 after "whsec_", else the
 * secret's own bytes. -1 if it is not valid (no reason given: the secret is never shown). */
int sink_http_secret_key(int signature, const char *secret, unsigned char *key,
    size_t *keylen);

/*
 * The Standard Webhooks signature of body for one secret: "v1,<base64 of HMAC-SHA256 of
 * "{id}.{timestamp}.{body}">", into out (at least 48 bytes). -1 if the secret is invalid.
 */
int sink_http_sign_standard(const char *secret, const char *id, long long timestamp,
    const char *body, size_t len, char *out, size_t outlen);
/* The push-events signature: lower-case hex HMAC-SHA256 of body, into out (65 bytes). */
int sink_http_sign_hex(const char *secret, const char *body, size_t len, char *out,
    size_t outlen);

#endif
