/*
 * sink_http.c: publish envelopes as HTTP requests (webhooks) with libcurl's multi
 * interface: one request per event (or per `batch` events, as a JSON array), up to
 * `concurrency` in flight, connections kept alive across batches, HTTP/2 multiplexed when
 * a TLS server offers it. The loop never puts two events with one ordering key in a batch,
 * so sending a batch's requests at once keeps per-key order at the receiver.
 *
 * What a response means (sink.h's three outcomes):
 *   2xx                                  delivered
 *   no response (refused, reset, DNS, TLS, timeout), 408, 429, 502, 503, 504 and other
 *   5xx but 500 and 501                  unsent: the endpoint is down; publish returns -1
 *                                        so the loop backs off, and connect refuses until
 *                                        a Retry-After has passed (capped by the loop's
 *                                        relay.backoff-max-ms, sk->retry_after_max_ms)
 *   410 Gone                             unsent, and the sink stays down (connect refuses,
 *                                        loudly) until its configuration changes
 *   3xx (never followed), 500, 501, other 4xx
 *                                        rejected, with the status line and the start of
 *                                        the body as the event's error
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#include <openssl/core_names.h>
#include <openssl/params.h>
#define SINK_HTTP_EVP_MAC 1
#else
#include <openssl/hmac.h>     /* 1.1: configure's floor; no EVP_MAC yet */
#endif

#include "log.h"
#include "redis_url.h"
#include "sink.h"
#include "sink_http.h"
#include "util.h"

/*
 * One request slot: a run of messages with one URL, and what came back. Its easy handle
 * lives as long as the sink (curl keeps the connections in the multi handle) and gets the
 * options that never change once; per request only the URL (when it has {name}), the body
 * and the headers that differ are set.
 *
 * The header list is this slot's own array of curl_slist nodes, linked once: Content-Type,
 * "Expect:", the configured headers, then the signature headers, whose text is rewritten
 * in sig per request. Binary-mode CloudEvents headers are a list of their own put before.
 */
struct sink_http_req {
	CURL *easy;
	int busy;
	struct curl_slist *hnodes;
	size_t nhnodes;
	struct curl_slist *ce;    /* this request's ce- headers, linked to hnodes, or NULL */
	char *sig;                /* the signature header lines, NUL-separated */
	size_t sigsize;
	char url[SINK_HTTP_URL_MAX]; /* with {name} in the URL, this request's */
	char *body;               /* malloc'd for arrays, else NULL (the envelope is sent) */
	size_t first, count;      /* msgs[first .. first + count - 1] */
	char status_line[96];
	char shown[SINK_HTTP_BODY_SHOWN + 1];
	size_t nshown;
	char errbuf[CURL_ERROR_SIZE];
};

/* A signing key, and an HMAC-SHA256 context set up with it once: a one-shot HMAC()
 * looks the algorithm up again every call, which cost more than the hashing. */
struct sink_http_key {
	unsigned char key[SINK_HTTP_KEY_MAX];
	size_t len;
#ifdef SINK_HTTP_EVP_MAC
	EVP_MAC_CTX *ctx;
#endif
};

struct sink_http {
	const struct sink_http_options *o;
	char *desc;               /* the URL for messages, a password masked */
	CURLM *multi;
	struct sink_http_req *slots;   /* o->concurrency of them */
	struct sink_http_key *keys;    /* one per signing secret */
	char **headers;           /* "Name: value" lines from o->headers */
	size_t nheaders;
	size_t nsig;              /* signature headers a request carries */
	int fixed_url;            /* no {name} in the URL: one for every request */
	int64_t wait_until;       /* monotonic ms: a Retry-After not yet over */
	char *gone;               /* why the sink is down for good (410), or NULL */
};

/* ---- signatures ------------------------------------------------------------------- */

#ifdef SINK_HTTP_EVP_MAC
/* Set up k->ctx from k->key. */
static void
sink_http_key_init(struct sink_http_key *k)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end()
	};
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);

	if (mac == NULL || (k->ctx = EVP_MAC_CTX_new(mac)) == NULL ||
	    !EVP_MAC_init(k->ctx, k->key, k->len, params))
		abort();
	EVP_MAC_free(mac); /* the context keeps its own reference */
}

static void
sink_http_key_clear(struct sink_http_key *k)
{
	EVP_MAC_CTX_free(k->ctx);
	/* Keys are secrets: do not leave them in freed memory. */
	explicit_bzero(k, sizeof *k);
}

/* The HMAC of the parts (NULL-terminated pairs of pointer and length) under k. */
static void
sink_http_hmac(const struct sink_http_key *k, const void *const parts[], const size_t lens[],
    unsigned char mac[32])
{
	size_t maclen = 0, i;

	/* Without a key, init starts over with the key it was given first (and no copy). */
	if (!EVP_MAC_init(k->ctx, NULL, 0, NULL))
		abort();
	for (i = 0; parts[i] != NULL; i++) {
		if (!EVP_MAC_update(k->ctx, parts[i], lens[i]))
			abort();
	}
	if (!EVP_MAC_final(k->ctx, mac, &maclen, 32) || maclen != 32)
		abort();
}
#else
static void
sink_http_key_init(struct sink_http_key *k)
{
	(void)k;
}

static void
sink_http_key_clear(struct sink_http_key *k)
{
	explicit_bzero(k, sizeof *k);
}

static void
sink_http_hmac(const struct sink_http_key *k, const void *const parts[], const size_t lens[],
    unsigned char mac[32])
{
	HMAC_CTX *c = HMAC_CTX_new();
	unsigned int maclen = 0;
	size_t i;

	if (c == NULL || !HMAC_Init_ex(c, k->key, (int)k->len, EVP_sha256(), NULL))
		abort();
	for (i = 0; parts[i] != NULL; i++) {
		if (!HMAC_Update(c, parts[i], lens[i]))
			abort();
	}
	if (!HMAC_Final(c, mac, &maclen) || maclen != 32)
		abort();
	HMAC_CTX_free(c);
}
#endif

/* "v1,<base64>" for "{id}.{timestamp}.{body}", into out. */
static void
sink_http_sign_key_standard(const struct sink_http_key *k, const char *id,
    long long timestamp, const char *body, size_t len, char *out, size_t outlen)
{
	unsigned char mac[32], b64[48];
	char ts[32];
	int tlen = snprintf(ts, sizeof ts, ".%lld.", timestamp);
	const void *parts[] = { id, ts, body, NULL };
	const size_t lens[] = { strlen(id), (size_t)tlen, len };

	sink_http_hmac(k, parts, lens, mac);
	EVP_EncodeBlock(b64, mac, sizeof mac);
	snprintf(out, outlen, "v1,%s", (const char *)b64);
}

static void
sink_http_sign_key_hex(const struct sink_http_key *k, const char *body, size_t len,
    char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[32];
	const void *parts[] = { body, NULL };
	const size_t lens[] = { len };
	size_t i;

	sink_http_hmac(k, parts, lens, mac);
	for (i = 0; i < sizeof mac && 2 * i + 2 < outlen; i++) {
		out[2 * i] = hex[mac[i] >> 4];
		out[2 * i + 1] = hex[mac[i] & 0xf];
	}
	out[2 * i] = '\0';
}

int
sink_http_sign_standard(const char *secret, const char *id, long long timestamp,
    const char *body, size_t len, char *out, size_t outlen)
{
	struct sink_http_key k;

	if (sink_http_secret_key(SINK_HTTP_SIGN_STANDARD, secret, k.key, &k.len) != 0)
		return -1;
	sink_http_key_init(&k);
	sink_http_sign_key_standard(&k, id, timestamp, body, len, out, outlen);
	sink_http_key_clear(&k);
	return 0;
}

int
sink_http_sign_hex(const char *secret, const char *body, size_t len, char *out,
    size_t outlen)
{
	struct sink_http_key k;

	if (sink_http_secret_key(SINK_HTTP_SIGN_HEX, secret, k.key, &k.len) != 0)
		return -1;
	sink_http_key_init(&k);
	sink_http_sign_key_hex(&k, body, len, out, outlen);
	sink_http_key_clear(&k);
	return 0;
}

/* ---- opening and closing ------------------------------------------------------------- */

static void
sink_http_read_headers(struct sink_http *sh)
{
	cJSON *obj, *item;

	if (sh->o->headers == NULL)
		return;
	if ((obj = cJSON_Parse(sh->o->headers)) == NULL)
		abort(); /* checked by the type */
	sh->headers = xcalloc((size_t)cJSON_GetArraySize(obj) + 1, sizeof *sh->headers);
	cJSON_ArrayForEach(item, obj) {
		/* "Name;" is curl's way of sending a header with an empty value. */
		sh->headers[sh->nheaders++] = *item->valuestring == '\0' ?
		    xasprintf("%s;", item->string) : xasprintf("%s: %s", item->string,
		    item->valuestring);
	}
	cJSON_Delete(obj);
}

static void
sink_http_open(struct sink *sk)
{
	struct sink_http *sh = xcalloc(1, sizeof *sh);
	size_t i;

	sh->o = sk->options;
	sh->desc = redis_url_redact(sh->o->url);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		abort();
	sh->keys = xcalloc(sh->o->secrets.n + 1, sizeof *sh->keys);
	for (i = 0; i < sh->o->secrets.n; i++) {
		/* The type's check accepted these secrets: this cannot fail. */
		if (sink_http_secret_key(sh->o->signature, sh->o->secrets.v[i], sh->keys[i].key,
		    &sh->keys[i].len) != 0)
			abort();
		sink_http_key_init(&sh->keys[i]);
	}
	sink_http_read_headers(sh);
	if (sh->o->secrets.n > 0)
		sh->nsig = sh->o->signature == SINK_HTTP_SIGN_HEX ? 1 : 3;
	sh->fixed_url = strstr(sh->o->url, "{name}") == NULL;
	sh->slots = xcalloc((size_t)sh->o->concurrency, sizeof *sh->slots);
	if ((sh->multi = curl_multi_init()) == NULL)
		abort();
	curl_multi_setopt(sh->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(sh->multi, CURLMOPT_MAXCONNECTS, (long)sh->o->concurrency);
	sk->priv = sh;
}

static void
sink_http_close(struct sink *sk)
{
	struct sink_http *sh = sk->priv;
	size_t i;

	for (i = 0; i < (size_t)sh->o->concurrency; i++) {
		if (sh->slots[i].easy != NULL)
			curl_easy_cleanup(sh->slots[i].easy);
		free(sh->slots[i].hnodes);
		free(sh->slots[i].sig);
	}
	curl_multi_cleanup(sh->multi);
	for (i = 0; i < sh->nheaders; i++)
		free(sh->headers[i]);
	free(sh->headers);
	for (i = 0; i < sh->o->secrets.n; i++)
		sink_http_key_clear(&sh->keys[i]);
	free(sh->keys);
	free(sh->slots);
	free(sh->gone);
	free(sh->desc);
	free(sh);
	sk->priv = NULL;
	curl_global_cleanup();
}

/* ---- one request ------------------------------------------------------------------- */

static size_t
sink_http_on_body(char *data, size_t size, size_t n, void *arg)
{
	struct sink_http_req *req = arg;
	size_t len = size * n, room = SINK_HTTP_BODY_SHOWN - req->nshown;

	if (room > len)
		room = len;
	memcpy(req->shown + req->nshown, data, room);
	req->nshown += room;
	req->shown[req->nshown] = '\0';
	return len;
}

static size_t
sink_http_on_header(char *data, size_t size, size_t n, void *arg)
{
	struct sink_http_req *req = arg;
	size_t len = size * n, keep = len;

	/* The last status line wins (after a 100 Continue, say). */
	if (len > 5 && strncmp(data, "HTTP/", 5) == 0) {
		while (keep > 0 && (data[keep - 1] == '\r' || data[keep - 1] == '\n' ||
		    data[keep - 1] == ' '))
			keep--;
		if (keep >= sizeof req->status_line)
			keep = sizeof req->status_line - 1;
		memcpy(req->status_line, data, keep);
		req->status_line[keep] = '\0';
		req->nshown = 0;
		req->shown[0] = '\0';
	}
	return len;
}

/* Make req's easy handle, with the options every request of the sink shares, and link its
 * header nodes. */
static void
sink_http_easy_init(struct sink_http *sh, struct sink_http_req *req)
{
	const struct sink_http_options *o = sh->o;
	CURL *e;
	size_t i, k = 0;

	if ((e = req->easy = curl_easy_init()) == NULL)
		abort();
	if (sh->fixed_url)
		curl_easy_setopt(e, CURLOPT_URL, o->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PRIVATE, req);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "outboxd/" PACKAGE_VERSION);
	if (o->method == SINK_HTTP_PUT)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	/* Wait for a connection being made rather than open another, to multiplex on it. */
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink_http_on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, sink_http_on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
	if (o->tls.ca != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, o->tls.ca);
	if (o->tls.cert != NULL) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, o->tls.cert);
		curl_easy_setopt(e, CURLOPT_SSLKEY, o->tls.key);
	}
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, o->tls.verify_peer ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, o->tls.verify_hostname ? 2L : 0L);

	req->nhnodes = 2 + sh->nheaders + sh->nsig;
	req->hnodes = xcalloc(req->nhnodes, sizeof *req->hnodes);
	k++; /* Content-Type, set per request */
	/* No "Expect: 100-continue" round trip before large bodies. */
	req->hnodes[k++].data = (char *)"Expect:";
	for (i = 0; i < sh->nheaders; i++)
		req->hnodes[k++].data = sh->headers[i];
	for (i = 0; i + 1 < req->nhnodes; i++)
		req->hnodes[i].next = &req->hnodes[i + 1];
}

/* The signature headers of req into its last nodes (their text in req->sig). */
static void
sink_http_sign(struct sink_http *sh, struct sink_http_req *req, const char *id,
    const char *body, size_t len)
{
	struct curl_slist *node = &req->hnodes[req->nhnodes - sh->nsig];
	size_t need, used, i;
	long long now;
	char sig[72];

	if (sh->nsig == 0)
		return;
	now = (long long)time(NULL);
	need = strlen(sh->o->signature_header) + strlen(id) + 96 + sh->o->secrets.n * sizeof sig;
	if (req->sigsize < need) {
		free(req->sig);
		req->sig = xcalloc(1, need);
		req->sigsize = need;
	}
	if (sh->o->signature == SINK_HTTP_SIGN_HEX) {
		sink_http_sign_key_hex(&sh->keys[0], body, len, sig, sizeof sig);
		snprintf(req->sig, req->sigsize, "%s: %s", sh->o->signature_header, sig);
		node->data = req->sig;
		return;
	}
	node[0].data = req->sig;
	used = (size_t)snprintf(req->sig, req->sigsize, "webhook-id: %s", id) + 1;
	node[1].data = req->sig + used;
	used += (size_t)snprintf(req->sig + used, req->sigsize - used, "webhook-timestamp: %lld",
	    now) + 1;
	node[2].data = req->sig + used;
	used += (size_t)snprintf(req->sig + used, req->sigsize - used, "webhook-signature:");
	for (i = 0; i < sh->o->secrets.n; i++) {
		sink_http_sign_key_standard(&sh->keys[i], id, now, body, len, sig, sizeof sig);
		used += (size_t)snprintf(req->sig + used, req->sigsize - used, " %s", sig);
	}
}

/* CloudEvents binary mode: the attributes of the structured event m->envelope as ce-
 * headers (values percent-encoded as the HTTP binding says), the payload as the body. */
static void
sink_http_ce_headers(struct sink_http_req *req, const struct sink_message *m)
{
	cJSON *ev = cJSON_Parse(m->envelope), *a;
	struct curl_slist *next;
	char *value, *line, *p;
	const unsigned char *s;

	if (ev == NULL)
		abort(); /* the loop built it */
	cJSON_ArrayForEach(a, ev) {
		if (strcmp(a->string, "data") == 0 || strcmp(a->string, "datacontenttype") == 0)
			continue;
		value = cJSON_IsString(a) ? xstrdup(a->valuestring) : cJSON_PrintUnformatted(a);
		line = xcalloc(1, strlen(a->string) + 3 * strlen(value) + 8);
		p = line + sprintf(line, "ce-%s: ", a->string);
		for (s = (const unsigned char *)value; *s != '\0'; s++) {
			if (*s <= 0x20 || *s >= 0x7f || *s == '"' || *s == '%')
				p += sprintf(p, "%%%02X", *s);
			else
				*p++ = (char)*s;
		}
		if ((next = curl_slist_append(req->ce, line)) == NULL)
			abort();
		req->ce = next;
		free(line);
		cJSON_free(value);
	}
	cJSON_Delete(ev);
}

/* The Content-Type of req, and in binary mode its ce- headers. */
static const char *
sink_http_content_type(const struct sink_http *sh, struct sink_http_req *req,
    const struct sink_message *msgs)
{
	const struct sink_message *m = &msgs[req->first];

	if (m->format != SINK_FORMAT_CLOUDEVENTS)
		return "Content-Type: application/json";
	if (sh->o->batch > 1)
		return "Content-Type: application/cloudevents-batch+json";
	if (sh->o->ce_mode == SINK_HTTP_CE_BINARY) {
		sink_http_ce_headers(req, m);
		return "Content-Type: application/json";
	}
	return "Content-Type: application/cloudevents+json";
}

/* The body of req: the envelope, or with batches a JSON array of envelopes (of one too,
 * so that a receiver parses one shape). */
static const char *
sink_http_body(const struct sink_http *sh, struct sink_http_req *req,
    const struct sink_message *msgs, size_t *len)
{
	size_t i, total = 2, used = 0;

	if (sh->o->batch == 1) {
		const struct sink_message *m = &msgs[req->first];
		if (m->format == SINK_FORMAT_CLOUDEVENTS && sh->o->ce_mode == SINK_HTTP_CE_BINARY) {
			*len = strlen(m->payload);
			return m->payload;
		}
		*len = m->envelope_len;
		return m->envelope;
	}
	for (i = 0; i < req->count; i++)
		total += msgs[req->first + i].envelope_len + 1;
	req->body = xcalloc(1, total + 1);
	req->body[used++] = '[';
	for (i = 0; i < req->count; i++) {
		const struct sink_message *m = &msgs[req->first + i];
		if (i > 0)
			req->body[used++] = ',';
		memcpy(req->body + used, m->envelope, m->envelope_len);
		used += m->envelope_len;
	}
	req->body[used++] = ']';
	req->body[used] = '\0';
	*len = used;
	return req->body;
}

/* Start req for msgs[req->first ..]; -1 if curl refuses it. */
static int
sink_http_start(struct sink_http *sh, struct sink_http_req *req,
    const struct sink_message *msgs)
{
	struct curl_slist *tail;
	const char *body;
	size_t len;

	req->status_line[0] = req->shown[0] = req->errbuf[0] = '\0';
	req->nshown = 0;
	body = sink_http_body(sh, req, msgs, &len);
	req->hnodes[0].data = (char *)sink_http_content_type(sh, req, msgs);
	sink_http_sign(sh, req, msgs[req->first].id, body, len);
	if (req->ce != NULL) {
		for (tail = req->ce; tail->next != NULL; tail = tail->next)
			;
		tail->next = req->hnodes;
	}
	if (!sh->fixed_url)
		curl_easy_setopt(req->easy, CURLOPT_URL, req->url);
	curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, req->ce != NULL ? req->ce : req->hnodes);
	curl_easy_setopt(req->easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	return curl_multi_add_handle(sh->multi, req->easy) == CURLM_OK ? 0 : -1;
}

static void
sink_http_req_clear(struct sink_http_req *req)
{
	struct curl_slist *p;

	/* Unlink the slot's own nodes before freeing the ce- headers. */
	for (p = req->ce; p != NULL; p = p->next) {
		if (p->next == req->hnodes) {
			p->next = NULL;
			break;
		}
	}
	curl_slist_free_all(req->ce);
	req->ce = NULL;
	free(req->body);
	req->body = NULL;
	req->busy = 0;
}

/* ---- outcomes ---------------------------------------------------------------------- */

enum sink_http_verdict {
	SINK_HTTP_OK,        /* delivered or rejected: the endpoint answered */
	SINK_HTTP_DOWN,      /* unsent: back off */
	SINK_HTTP_GONE       /* unsent: stay down */
};

/* A message cut to fit why (vsnprintf: a cut is expected here, not a bug). */
static void __attribute__((format(printf, 3, 4)))
sink_http_why(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

static void
sink_http_set(struct sink_message *msgs, const struct sink_http_req *req,
    enum sink_status status, const char *why)
{
	size_t i;

	for (i = 0; i < req->count; i++) {
		if (status == SINK_DELIVERED) {
			msgs[req->first + i].status = status;
			msgs[req->first + i].error[0] = '\0';
		} else {
			sink_set_status(&msgs[req->first + i], status, "%s", why);
		}
	}
}

/* The body's first bytes, on one line. */
static const char *
sink_http_shown(struct sink_http_req *req)
{
	size_t i;

	for (i = 0; i < req->nshown; i++) {
		if ((unsigned char)req->shown[i] < 0x20)
			req->shown[i] = ' ';
	}
	return req->shown;
}

/* A Retry-After in the response: no new connection before it, within the loop's cap. */
static void
sink_http_retry_after(struct sink *sk, struct sink_http *sh, struct sink_http_req *req,
    char *why, size_t len)
{
	curl_off_t secs = 0;
	int64_t ms, until;
	size_t used = strlen(why);

	if (curl_easy_getinfo(req->easy, CURLINFO_RETRY_AFTER, &secs) != CURLE_OK || secs <= 0)
		return;
	ms = secs > INT64_MAX / 1000 ? INT64_MAX / 2 : (int64_t)secs * 1000;
	if (sk->retry_after_max_ms > 0 && ms > sk->retry_after_max_ms)
		ms = sk->retry_after_max_ms;
	until = util_monotonic_ms() + ms;
	if (until > sh->wait_until)
		sh->wait_until = until;
	sink_http_why(why + used, len - used, " (Retry-After: waiting %lld ms)", (long long)ms);
}

static enum sink_http_verdict
sink_http_finish(struct sink *sk, struct sink_http *sh, struct sink_http_req *req,
    CURLcode rc, struct sink_message *msgs, char *why, size_t len)
{
	long code = 0;

	if (rc == CURLE_URL_MALFORMAT) {
		sink_http_why(why, len, "invalid URL: %s", req->errbuf);
		sink_http_set(msgs, req, SINK_REJECTED, why);
		return SINK_HTTP_OK;
	}
	if (rc != CURLE_OK) {
		if (rc == CURLE_OPERATION_TIMEDOUT)
			sink_http_why(why, len, "%s: no response within %d ms (timeout-ms)", sh->desc,
			    sh->o->timeout_ms);
		else
			sink_http_why(why, len, "%s: %s", sh->desc, req->errbuf[0] != '\0' ?
			    req->errbuf : curl_easy_strerror(rc));
		sink_http_set(msgs, req, SINK_UNSENT, why);
		return SINK_HTTP_DOWN;
	}
	curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &code);
	if (code >= 200 && code < 300) {
		sink_http_set(msgs, req, SINK_DELIVERED, NULL);
		return SINK_HTTP_OK;
	}
	if (code == 410) {
		sink_http_why(why, len, "%s: %s: the endpoint is gone; the sink stays down until its "
		    "configuration changes (nothing is dropped)", sh->desc, req->status_line);
		sink_http_set(msgs, req, SINK_UNSENT, why);
		return SINK_HTTP_GONE;
	}
	if (code == 408 || code == 429 || (code >= 502 && code < 600) || code < 100) {
		sink_http_why(why, len, "%s: %s", sh->desc, code < 100 ? "no HTTP status" :
		    req->status_line);
		sink_http_retry_after(sk, sh, req, why, len);
		sink_http_set(msgs, req, SINK_UNSENT, why);
		return SINK_HTTP_DOWN;
	}
	sink_http_why(why, len, "%s: %s", req->status_line, sink_http_shown(req));
	sink_http_set(msgs, req, SINK_REJECTED, why);
	return SINK_HTTP_OK;
}

/* ---- publishing -------------------------------------------------------------------- */

/* s percent-encoded as curl_easy_escape does (all but A-Z a-z 0-9 - . _ ~), into out;
 * -1 if it does not fit. */
static int
sink_http_escape(const char *s, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	size_t used = 0;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (used + 4 > len)
			return -1;
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			out[used++] = (char)*p;
		} else {
			out[used++] = '%';
			out[used++] = hex[*p >> 4];
			out[used++] = hex[*p & 0xf];
		}
	}
	out[used] = '\0';
	return 0;
}

/* The URL of m, {name} percent-encoded, into url; -1 (m rejected) if it does not fit. */
static int
sink_http_url(struct sink_http *sh, struct sink_message *m, char *url)
{
	char name[SINK_HTTP_URL_MAX];

	if (sink_http_escape(m->name, name, sizeof name) != 0 ||
	    sink_expand(sh->o->url, name, url, SINK_HTTP_URL_MAX) != 0) {
		sink_set_status(m, SINK_REJECTED, "the URL is longer than %d bytes",
		    SINK_HTTP_URL_MAX - 1);
		return -1;
	}
	return 0;
}

/* Fill slot req with the next run of messages from *next: up to batch with one URL. */
static int
sink_http_next_run(struct sink_http *sh, struct sink_http_req *req, struct sink_message *msgs,
    size_t n, size_t *next)
{
	char url[SINK_HTTP_URL_MAX];

	if (req->easy == NULL)
		sink_http_easy_init(sh, req);
	while (*next < n && !sh->fixed_url && sink_http_url(sh, &msgs[*next], req->url) != 0)
		(*next)++;
	if (*next == n)
		return -1;
	req->first = (*next)++;
	req->count = 1;
	while (*next < n && req->count < (size_t)sh->o->batch) {
		if (!sh->fixed_url) {
			if (sink_http_url(sh, &msgs[*next], url) != 0)
				break; /* rejected; it ends the run, and the next one starts after it */
			if (strcmp(url, req->url) != 0)
				break;
		}
		(*next)++;
		req->count++;
	}
	return 0;
}

static struct sink_http_req *
sink_http_free_slot(struct sink_http *sh)
{
	int i;

	for (i = 0; i < sh->o->concurrency; i++) {
		if (!sh->slots[i].busy)
			return &sh->slots[i];
	}
	return NULL;
}

/* Collect finished requests; returns how many. */
static int
sink_http_collect(struct sink *sk, struct sink_http *sh, struct sink_message *msgs,
    enum sink_http_verdict *worst, char *worst_why, size_t len)
{
	char why[SINK_ERROR_MAX];
	struct sink_http_req *req;
	enum sink_http_verdict v;
	CURLMsg *cm;
	int left, done = 0;

	while ((cm = curl_multi_info_read(sh->multi, &left)) != NULL) {
		if (cm->msg != CURLMSG_DONE)
			continue;
		req = NULL;
		curl_easy_getinfo(cm->easy_handle, CURLINFO_PRIVATE, (char **)&req);
		v = sink_http_finish(sk, sh, req, cm->data.result, msgs, why, sizeof why);
		if (v > *worst) {
			*worst = v;
			sink_http_why(worst_why, len, "%s", why);
		}
		curl_multi_remove_handle(sh->multi, req->easy);
		sink_http_req_clear(req);
		done++;
	}
	return done;
}

static int
sink_http_publish(struct sink *sk, struct sink_message *msgs, size_t n, char **cause)
{
	struct sink_http *sh = sk->priv;
	enum sink_http_verdict worst = SINK_HTTP_OK;
	char why[SINK_ERROR_MAX] = "";
	struct sink_http_req *req;
	size_t next = 0, i;
	int active = 0, running, done;

	for (i = 0; i < n; i++) {
		msgs[i].status = SINK_UNSENT;
		msgs[i].error[0] = '\0';
	}
	if (sh->gone != NULL) {
		*cause = xstrdup(sh->gone);
		return -1;
	}
	while (active > 0 || (next < n && worst == SINK_HTTP_OK)) {
		/* After the endpoint failed once, start nothing more: back off. */
		while (worst == SINK_HTTP_OK && next < n && (req = sink_http_free_slot(sh)) != NULL) {
			if (sink_http_next_run(sh, req, msgs, n, &next) != 0)
				break;
			req->busy = 1;
			if (sink_http_start(sh, req, msgs) != 0) {
				sink_http_set(msgs, req, SINK_UNSENT, "cannot start the request");
				sink_http_req_clear(req);
				worst = SINK_HTTP_DOWN;
				snprintf(why, sizeof why, "%s: cannot start a request", sh->desc);
				break;
			}
			active++;
		}
		if (curl_multi_perform(sh->multi, &running) != CURLM_OK)
			abort();
		if (next == n && worst == SINK_HTTP_OK)
			sink_meanwhile(sk);   /* the last requests are out: the endpoint works */
		done = sink_http_collect(sk, sh, msgs, &worst, why, sizeof why);
		active -= done;
		/* Wait only when nothing finished: a freed slot is refilled at once. */
		if (done == 0 && active > 0 &&
		    curl_multi_poll(sh->multi, NULL, 0, 1000, NULL) != CURLM_OK)
			abort();
	}
	for (i = 0; i < n; i++) {
		if (msgs[i].status == SINK_UNSENT && msgs[i].error[0] == '\0')
			sink_set_status(&msgs[i], SINK_UNSENT, "%s", why);
	}
	if (worst == SINK_HTTP_GONE) {
		log_error("sink %s: %s", sk->name, why);
		free(sh->gone);
		sh->gone = xstrdup(why);
	}
	if (worst != SINK_HTTP_OK) {
		*cause = xstrdup(why);
		return -1;
	}
	return 0;
}

static int
sink_http_connect(struct sink *sk, char **cause)
{
	struct sink_http *sh = sk->priv;
	int64_t left = sh->wait_until - util_monotonic_ms();

	if (sh->gone != NULL) {
		*cause = xstrdup(sh->gone);
		return -1;
	}
	if (left > 0) {
		*cause = xasprintf("%s: the endpoint asked for a pause (Retry-After): %lld ms "
		    "left", sh->desc, (long long)left);
		return -1;
	}
	return 0;
}

const struct sink_ops sink_http_ops = {
	.type = &sink_http_type,
	.open = sink_http_open,
	.connect = sink_http_connect,
	.publish = sink_http_publish,
	.close = sink_http_close,
};
