/*
 * fuzz_envelope.c: libFuzzer target for the envelope builder (relay/envelope.c).
 *
 * The input is up to five NUL-separated fields: id, name, payload, headers, prefix (a
 * missing field takes a plain default; a missing headers field means no headers). The
 * published name is prefix + name, as a sink joins them. envelope_build is promised
 * compact JSON for payload and headers (the store reads them through json()), so each is
 * parsed and printed compactly first, and an input whose payload is not JSON is dropped.
 *
 * Checks: the envelope is exactly *len bytes of valid JSON; it parses back (cJSON) to an
 * object with the keys id, name, data and, only with headers, metadata, in that order;
 * id and name are the same strings, byte for byte; data and metadata are the same JSON.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "envelope.h"
#include "fuzz.h"

#define FUZZ_FIELDS 5

/* Nesting depth of v: 0 for a scalar, 1 for [] or {}. */
static int
fuzz_depth(const cJSON *v)
{
	const cJSON *c;
	int max = 0, d;

	if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
		return 0;
	for (c = v->child; c != NULL; c = c->next) {
		if ((d = fuzz_depth(c)) > max)
			max = d;
	}
	return max + 1;
}

/* Compact JSON text of text, or NULL if it is not JSON; *depth is its nesting depth. */
static char *
fuzz_compact(const char *text, int *depth)
{
	cJSON *v = cJSON_ParseWithOpts(text, NULL, 1);
	char *out;

	if (v == NULL)
		return NULL;
	if ((out = cJSON_PrintUnformatted(v)) == NULL)
		abort();
	*depth = fuzz_depth(v);
	cJSON_Delete(v);
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *field[FUZZ_FIELDS], *payload, *headers = NULL, *env, *name, *text;
	const char *id = "4f6d8d9a-2b1e-4c3d-9e8f-0a1b2c3d4e5f", *prefix = "";
	cJSON *root, *item;
	size_t n, len;
	int depth = 0, hdepth = 0;

	if ((buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	n = fuzz_split(buf, size, field, FUZZ_FIELDS);
	if (n > 0)
		id = field[0];
	if (n > 4)
		prefix = field[4];
	payload = fuzz_compact(n > 2 ? field[2] : "{}", &depth);
	if (payload == NULL) {
		free(buf);
		return 0;
	}
	if (n > 3 && (headers = fuzz_compact(field[3], &hdepth)) == NULL) {
		cJSON_free(payload);
		free(buf);
		return 0;
	}
	name = malloc(strlen(prefix) + strlen(n > 1 ? field[1] : "user.login") + 1);
	if (name == NULL)
		abort();
	strcpy(name, prefix);
	strcat(name, n > 1 ? field[1] : "user.login");

	env = envelope_build(id, name, payload, headers, &len);
	FUZZ_CHECK(env != NULL, "out of memory");
	FUZZ_CHECK(strlen(env) == len, "%zu bytes, said %zu", strlen(env), len);
	root = cJSON_ParseWithOpts(env, NULL, 1);
	if (root == NULL) {
		/* Only cJSON's own nesting limit may refuse it: the envelope adds one level. */
		FUZZ_CHECK(depth >= CJSON_NESTING_LIMIT || hdepth >= CJSON_NESTING_LIMIT,
		    "not JSON: %s", env);
		goto out;
	}
	FUZZ_CHECK(cJSON_IsObject(root), "%s", env);
	item = root->child;
	FUZZ_CHECK(item != NULL && strcmp(item->string, "id") == 0 && cJSON_IsString(item) &&
	    strcmp(item->valuestring, id) == 0, "id: %s", env);
	item = item->next;
	FUZZ_CHECK(item != NULL && strcmp(item->string, "name") == 0 && cJSON_IsString(item) &&
	    strcmp(item->valuestring, name) == 0, "name: %s", env);
	item = item->next;
	FUZZ_CHECK(item != NULL && strcmp(item->string, "data") == 0, "data: %s", env);
	text = cJSON_PrintUnformatted(item);
	FUZZ_CHECK(text != NULL && strcmp(text, payload) == 0, "data: %s", env);
	cJSON_free(text);
	item = item->next;
	if (headers != NULL) {
		FUZZ_CHECK(item != NULL && strcmp(item->string, "metadata") == 0, "metadata: %s",
		    env);
		text = cJSON_PrintUnformatted(item);
		FUZZ_CHECK(text != NULL && strcmp(text, headers) == 0, "metadata: %s", env);
		cJSON_free(text);
		item = item->next;
	}
	FUZZ_CHECK(item == NULL, "a key too many: %s", env);
	cJSON_Delete(root);
out:
	free(env);
	free(name);
	cJSON_free(headers);
	cJSON_free(payload);
	free(buf);
	return 0;
}
