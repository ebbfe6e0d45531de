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
#include <openssl/hmac.h>

#include "log.h"
#include "redis_url.h"
#include "sink.h"
#include "sink_http.h"
#include "util.h"

/* One request: a run of messages with one URL, and what came back. */
struct sink_http_req {
	CURL *easy;
	int busy;
	struct curl_slist *hdrs;
	char *url;
	char *body;               /* malloc'd for arrays, else NULL (the envelope is sent) */
	size_t first, count;      /* msgs[first .. first + count - 1] */
	char status_line[96];
	char shown[SINK_HTTP_BODY_SHOWN + 1];
	size_t nshown;
	char errbuf[CURL_ERROR_SIZE];
};

struct sink_http_key {
	unsigned char key[SINK_HTTP_KEY_MAX];
	size_t len;
};

struct sink_http {
	const struct sink_http_options *o;
	char *desc;               /* the URL for messages, a password masked */
	CURLM *multi;
	struct sink_http_req *slots;   /* o->concurrency of them */
	struct sink_http_key *keys;    /* one per signing secret */
	char **headers;           /* "Name: value" lines from o->headers */
	size_t nheaders;
	int64_t wait_until;       /* monotonic ms: a Retry-After not yet over */
	char *gone;               /* why the sink is down for good (410), or NULL */
};

/* ---- signatures ------------------------------------------------------------------- */

static void
sink_http_hmac(const struct sink_http_key *k, const void *data, size_t len,
    unsigned char mac[32])
{
	unsigned int maclen = 32;

	if (HMAC(EVP_sha256(), k->key, (int)k->len, data, len, mac, &maclen) == NULL)
		abort();
}

/* "v1,<base64>" for "{id}.{timestamp}.{body}", into out. */
static void
sink_http_sign_key_standard(const struct sink_http_key *k, const char *id,
    long long timestamp, const char *body, size_t len, char *out, size_t outlen)
{
	unsigned char mac[32], b64[48];
	char *head = xasprintf("%s.%lld.", id, timestamp), *all;
	size_t hlen = strlen(head);

	all = xcalloc(1, hlen + len + 1);
	memcpy(all, head, hlen + 1);
	memcpy(all + hlen, body, len);
	sink_http_hmac(k, all, hlen + len, mac);
	EVP_EncodeBlock(b64, mac, sizeof mac);
	snprintf(out, outlen, "v1,%s", (const char *)b64);
	free(all);
	free(head);
}

static void
sink_http_sign_key_hex(const struct sink_http_key *k, const char *body, size_t len,
    char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[32];
	size_t i;

	sink_http_hmac(k, body, len, mac);
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
	sink_http_sign_key_standard(&k, id, timestamp, body, len, out, outlen);
	return 0;
}

int
sink_http_sign_hex(const char *secret, const char *body, size_t len, char *out,
    size_t outlen)
{
	struct sink_http_key k;

	if (sink_http_secret_key(SINK_HTTP_SIGN_HEX, secret, k.key, &k.len) != 0)
		return -1;
	sink_http_sign_key_hex(&k, body, len, out, outlen);
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
	}
	sink_http_read_headers(sh);
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
	}
	curl_multi_cleanup(sh->multi);
	for (i = 0; i < sh->nheaders; i++)
		free(sh->headers[i]);
	free(sh->headers);
	/* Keys are secrets: do not leave them in freed memory. */
	explicit_bzero(sh->keys, (sh->o->secrets.n + 1) * sizeof *sh->keys);
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

static void
sink_http_add_header(struct sink_http_req *req, const char *line)
{
	struct curl_slist *next = curl_slist_append(req->hdrs, line);

	if (next == NULL)
		abort();
	req->hdrs = next;
}

static void
sink_http_sign(struct sink_http *sh, struct sink_http_req *req, const char *id,
    const char *body, size_t len)
{
	char sig[72], *line, *next;
	long long now = (long long)time(NULL);
	size_t i;

	if (sh->o->secrets.n == 0)
		return;
	if (sh->o->signature == SINK_HTTP_SIGN_HEX) {
		sink_http_sign_key_hex(&sh->keys[0], body, len, sig, sizeof sig);
		line = xasprintf("%s: %s", sh->o->signature_header, sig);
		sink_http_add_header(req, line);
		free(line);
		return;
	}
	line = xasprintf("webhook-id: %s", id);
	sink_http_add_header(req, line);
	free(line);
	line = xasprintf("webhook-timestamp: %lld", now);
	sink_http_add_header(req, line);
	free(line);
	line = xstrdup("webhook-signature:");
	for (i = 0; i < sh->o->secrets.n; i++) {
		sink_http_sign_key_standard(&sh->keys[i], id, now, body, len, sig, sizeof sig);
		next = xasprintf("%s %s", line, sig);
		free(line);
		line = next;
	}
	sink_http_add_header(req, line);
	free(line);
}

/* CloudEvents binary mode: the attributes of the structured event m->envelope as ce-
 * headers (values percent-encoded as the HTTP binding says), the payload as the body. */
static void
sink_http_ce_headers(struct sink_http_req *req, const struct sink_message *m)
{
	cJSON *ev = cJSON_Parse(m->envelope), *a;
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
		sink_http_add_header(req, line);
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

static void
sink_http_setopt(struct sink_http *sh, struct sink_http_req *req, const char *body,
    size_t len)
{
	const struct sink_http_options *o = sh->o;
	CURL *e = req->easy;

	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_URL, req->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PRIVATE, req);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "outboxd/" PACKAGE_VERSION);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->hdrs);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
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
}

/* Start req for msgs[req->first ..]; -1 if curl refuses it. */
static int
sink_http_start(struct sink_http *sh, struct sink_http_req *req,
    const struct sink_message *msgs)
{
	const char *body;
	size_t len, i;

	if (req->easy == NULL && (req->easy = curl_easy_init()) == NULL)
		abort();
	req->status_line[0] = req->shown[0] = req->errbuf[0] = '\0';
	req->nshown = 0;
	body = sink_http_body(sh, req, msgs, &len);
	sink_http_add_header(req, sink_http_content_type(sh, req, msgs));
	/* No "Expect: 100-continue" round trip before large bodies. */
	sink_http_add_header(req, "Expect:");
	for (i = 0; i < sh->nheaders; i++)
		sink_http_add_header(req, sh->headers[i]);
	sink_http_sign(sh, req, msgs[req->first].id, body, len);
	sink_http_setopt(sh, req, body, len);
	return curl_multi_add_handle(sh->multi, req->easy) == CURLM_OK ? 0 : -1;
}

static void
sink_http_req_clear(struct sink_http_req *req)
{
	curl_slist_free_all(req->hdrs);
	req->hdrs = NULL;
	free(req->url);
	req->url = NULL;
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

/* The URL of m, {name} percent-encoded; NULL (m rejected) if it does not fit. */
static char *
sink_http_url(struct sink_http *sh, CURL *e, struct sink_message *m)
{
	char *name = curl_easy_escape(e, m->name, 0), url[SINK_HTTP_URL_MAX];
	int rc;

	if (name == NULL)
		abort();
	rc = sink_expand(sh->o->url, name, url, sizeof url);
	curl_free(name);
	if (rc != 0) {
		sink_set_status(m, SINK_REJECTED, "the URL is longer than %d bytes",
		    SINK_HTTP_URL_MAX - 1);
		return NULL;
	}
	return xstrdup(url);
}

/* Fill slot req with the next run of messages from *next: up to batch with one URL. */
static int
sink_http_next_run(struct sink_http *sh, struct sink_http_req *req, struct sink_message *msgs,
    size_t n, size_t *next)
{
	char *url;

	if (req->easy == NULL && (req->easy = curl_easy_init()) == NULL)
		abort();
	while (*next < n && (req->url = sink_http_url(sh, req->easy, &msgs[*next])) == NULL)
		(*next)++;
	if (*next == n)
		return -1;
	req->first = (*next)++;
	req->count = 1;
	while (*next < n && req->count < (size_t)sh->o->batch) {
		if ((url = sink_http_url(sh, req->easy, &msgs[*next])) == NULL)
			break; /* rejected; it ends the run, and the next one starts after it */
		if (strcmp(url, req->url) != 0) {
			free(url);
			break;
		}
		free(url);
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
	int active = 0, running;

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
		active -= sink_http_collect(sk, sh, msgs, &worst, why, sizeof why);
		if (active > 0 && curl_multi_poll(sh->multi, NULL, 0, 1000, NULL) != CURLM_OK)
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
