/* envelope.c: build the push-events envelope, byte for byte what existing consumers parse,
 * and the CloudEvents 1.0 structured event. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "envelope.h"

struct envelope_buf {
	char *p;
	size_t len;
};

static void
envelope_put(struct envelope_buf *b, const char *s, size_t n)
{
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* Escaped text takes at most 6 bytes per input byte (\u00XX). */
static void
envelope_put_string(struct envelope_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	char *o = b->p + b->len;
	unsigned char c;

	*o++ = '"';
	for (; (c = (unsigned char)*s) != '\0'; s++) {
		if (c >= 0x20 && c != '"' && c != '\\') {
			*o++ = (char)c;
		} else if (c >= 0x20) {
			*o++ = '\\';
			*o++ = (char)c;
		} else {
			o[0] = '\\';
			o[1] = 'u';
			o[2] = '0';
			o[3] = '0';
			o[4] = hex[c >> 4];
			o[5] = hex[c & 0xf];
			o += 6;
		}
	}
	*o++ = '"';
	b->len = (size_t)(o - b->p);
}

static const char k_id[] = "{\"id\":", k_name[] = ",\"name\":", k_data[] = ",\"data\":",
    k_meta[] = ",\"metadata\":";

size_t
envelope_max(const char *id, const char *name, size_t payload_len, size_t headers_len)
{
	return sizeof k_id + sizeof k_name + sizeof k_data + sizeof k_meta + 6 * strlen(id) +
	    6 * strlen(name) + 4 + payload_len + headers_len + 2;
}

size_t
envelope_write(char *out, const char *id, const char *name, const char *payload,
    size_t payload_len, const char *headers, size_t headers_len)
{
	struct envelope_buf b = { .p = out, .len = 0 };

	envelope_put(&b, k_id, sizeof k_id - 1);
	envelope_put_string(&b, id);
	envelope_put(&b, k_name, sizeof k_name - 1);
	envelope_put_string(&b, name);
	envelope_put(&b, k_data, sizeof k_data - 1);
	envelope_put(&b, payload, payload_len);
	if (headers != NULL) {
		envelope_put(&b, k_meta, sizeof k_meta - 1);
		envelope_put(&b, headers, headers_len);
	}
	b.p[b.len++] = '}';
	b.p[b.len] = '\0';
	return b.len;
}

char *
envelope_build(const char *id, const char *name, const char *payload, const char *headers,
    size_t *len)
{
	size_t lpayload = strlen(payload), lheaders = headers != NULL ? strlen(headers) : 0;
	char *out = malloc(envelope_max(id, name, lpayload, lheaders));

	if (out != NULL)
		*len = envelope_write(out, id, name, payload, lpayload, headers, lheaders);
	return out;
}

void
envelope_time(int64_t ms, char *buf, size_t len)
{
	time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	struct tm tm;
	char day[24];

	gmtime_r(&secs, &tm);
	strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", day, (int)(ms - (int64_t)secs * 1000));
}

/* A CloudEvents extension name: a-z and 0-9, 1 to 20 characters, no attribute's name. */
static int
envelope_extension_ok(const char *name)
{
	static const char *const taken[] = { "specversion", "id", "source", "type", "time",
		"datacontenttype", "dataschema", "subject", "data", "data_base64", NULL };
	size_t i, n = strlen(name);

	if (n == 0 || n > 20 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789") != n)
		return 0;
	for (i = 0; taken[i] != NULL; i++) {
		if (strcmp(name, taken[i]) == 0)
			return 0;
	}
	return 1;
}

/* The attributes as one line (cJSON keeps the order they were added in), then the payload
 * as it is: data's bytes are the producer's, not a re-serialization. */
char *
envelope_cloudevent(const char *id, const char *type, const char *source,
    int64_t created_at, const char *payload, const char *headers, envelope_skip_fn *skip,
    void *arg, size_t *len)
{
	cJSON *ev = cJSON_CreateObject(), *hdrs = NULL, *h;
	char when[40], *attrs, *text;
	size_t alen, plen = strlen(payload);

	if (ev == NULL)
		return NULL;
	envelope_time(created_at, when, sizeof when);
	cJSON_AddStringToObject(ev, "specversion", "1.0");
	cJSON_AddStringToObject(ev, "id", id);
	cJSON_AddStringToObject(ev, "source", source);
	cJSON_AddStringToObject(ev, "type", type);
	cJSON_AddStringToObject(ev, "time", when);
	cJSON_AddStringToObject(ev, "datacontenttype", "application/json");
	if (headers != NULL && (hdrs = cJSON_Parse(headers)) != NULL) {
		cJSON_ArrayForEach(h, hdrs) {
			if (envelope_extension_ok(h->string) && (cJSON_IsString(h) ||
			    cJSON_IsNumber(h) || cJSON_IsBool(h)))
				cJSON_AddItemToObject(ev, h->string, cJSON_Duplicate(h, 1));
			else if (skip != NULL)
				skip(h->string, arg);
		}
	}
	attrs = cJSON_PrintUnformatted(ev);
	cJSON_Delete(hdrs);
	cJSON_Delete(ev);
	if (attrs == NULL)
		return NULL;
	alen = strlen(attrs) - 1; /* without its closing brace */
	if ((text = malloc(alen + sizeof k_data - 1 + plen + 2)) != NULL) {
		memcpy(text, attrs, alen);
		memcpy(text + alen, k_data, sizeof k_data - 1);
		memcpy(text + alen + sizeof k_data - 1, payload, plen + 1);
		*len = alen + sizeof k_data - 1 + plen;
		text[(*len)++] = '}';
		text[*len] = '\0';
	}
	cJSON_free(attrs);
	return text;
}
