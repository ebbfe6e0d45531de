/* envelope.c: build the push-events envelope, byte for byte what existing consumers parse. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

struct envelope_buf {
	char *p;
	size_t len;
	size_t cap;
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
	unsigned char c;

	b->p[b->len++] = '"';
	for (; (c = (unsigned char)*s) != '\0'; s++) {
		if (c == '"' || c == '\\') {
			b->p[b->len++] = '\\';
			b->p[b->len++] = (char)c;
		} else if (c < 0x20) {
			envelope_put(b, "\\u00", 4);
			b->p[b->len++] = hex[c >> 4];
			b->p[b->len++] = hex[c & 0xf];
		} else {
			b->p[b->len++] = (char)c;
		}
	}
	b->p[b->len++] = '"';
}

char *
envelope_build(const char *id, const char *name, const char *payload, const char *headers,
    size_t *len)
{
	static const char k_id[] = "{\"id\":", k_name[] = ",\"name\":", k_data[] = ",\"data\":",
	    k_meta[] = ",\"metadata\":";
	size_t lid = strlen(id), lname = strlen(name);
	size_t lpayload = strlen(payload), lheaders = headers != NULL ? strlen(headers) : 0;
	struct envelope_buf b;

	b.cap = sizeof k_id + sizeof k_name + sizeof k_data + sizeof k_meta + 6 * lid +
	    6 * lname + 4 + lpayload + lheaders + 2;
	b.len = 0;
	if ((b.p = malloc(b.cap)) == NULL)
		return NULL;

	envelope_put(&b, k_id, sizeof k_id - 1);
	envelope_put_string(&b, id);
	envelope_put(&b, k_name, sizeof k_name - 1);
	envelope_put_string(&b, name);
	envelope_put(&b, k_data, sizeof k_data - 1);
	envelope_put(&b, payload, lpayload);
	if (headers != NULL) {
		envelope_put(&b, k_meta, sizeof k_meta - 1);
		envelope_put(&b, headers, lheaders);
	}
	b.p[b.len++] = '}';
	b.p[b.len] = '\0';
	*len = b.len;
	return b.p;
}
