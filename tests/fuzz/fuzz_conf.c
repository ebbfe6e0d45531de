/*
 * fuzz_conf.c: libFuzzer target for the relay's configuration loader (relay/conf.c).
 *
 * The input is the text of a configuration file. conf_load reads a path, so the input is
 * written to a memory file (memfd) and loaded through /proc/self/fd/N: the whole loader
 * runs as the relay runs it, from reading the file to configuring every sink (which
 * parses Redis and AMQP URLs) and freeing it all, without touching the disk.
 *
 * Checks: a refused configuration gets a message starting with the path; an accepted one
 * has every setting in the range conf.c enforces, at least one sink, and a database.
 * When the input mentions a password and is JSON, it is also loaded with every password
 * option ("redis.password", "rabbitmq.password" and each sink's "password") replaced by
 * "x": the outcome, the message and each sink's description for logs must not change, so
 * none of them can hold a password.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "conf.h"
#include "log.h"
#include "fuzz.h"

static int fuzz_fd = -1;
static char fuzz_path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Unknown keys are warned about on every run: not what is being tested. */
	log_set_level(LOG_LEVEL_ERROR);
	if ((fuzz_fd = memfd_create("fuzz_conf.json", MFD_CLOEXEC)) == -1 ||
	    fchmod(fuzz_fd, 0600) == -1) {
		perror("fuzz_conf: memfd_create");
		exit(1);
	}
	snprintf(fuzz_path, sizeof fuzz_path, "/proc/self/fd/%d", fuzz_fd);
	return 0;
}

static void
fuzz_accepted(const struct conf *cf)
{
	size_t i, j;

	FUZZ_CHECK(cf->database != NULL, "no database");
	FUZZ_CHECK(cf->retention_ms >= 0, "%lld", (long long)cf->retention_ms);
	FUZZ_CHECK(cf->batch_size >= 1 && cf->batch_size <= 10000, "%d", cf->batch_size);
	FUZZ_CHECK(cf->poll_interval_ms >= 1 && cf->poll_interval_ms <= 3600000, "%d",
	    cf->poll_interval_ms);
	FUZZ_CHECK(cf->max_attempts >= 1 && cf->max_attempts <= 1000000, "%d", cf->max_attempts);
	FUZZ_CHECK(cf->backoff_initial_ms >= 1 && cf->backoff_initial_ms <= cf->backoff_max_ms &&
	    cf->backoff_max_ms <= 86400000, "%d %d", cf->backoff_initial_ms, cf->backoff_max_ms);
	FUZZ_CHECK(cf->backoff_multiplier >= 1.0 && cf->backoff_multiplier <= 100.0, "%g",
	    cf->backoff_multiplier);
	FUZZ_CHECK(cf->log_level >= -1 && cf->log_level <= LOG_LEVEL_DEBUG, "%d", cf->log_level);
	FUZZ_CHECK(cf->nsinks >= 1, "no sink");
	for (i = 0; i < cf->nsinks; i++) {
		const struct conf_sink *cs = &cf->sinks[i];
		FUZZ_CHECK(cs->name != NULL && cs->name[0] != '\0' &&
		    cs->type != NULL && cs->where != NULL && cs->prefix != NULL,
		    "sink %zu", i);
		for (j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(cs->name, cf->sinks[j].name) != 0,
			    "two sinks named %s", cs->name);
	}
}

/* Load text (size bytes) through the memory file. */
static int
fuzz_load(const void *text, size_t size, struct conf *cf, char **cause)
{
	if (ftruncate(fuzz_fd, 0) == -1 ||
	    (size > 0 && pwrite(fuzz_fd, text, size, 0) != (ssize_t)size)) {
		perror("fuzz_conf: writing the memory file");
		abort();
	}
	return conf_load(cf, fuzz_path, NULL, cause);
}

/* Replace the value of the password option key of obj, if a non-empty string, by "x". */
static int
fuzz_mask_password(cJSON *obj, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
		return 0;
	if (cJSON_SetValuestring(v, "x") == NULL)
		abort();
	return 1;
}

/* The password options: "redis.password", "rabbitmq.password", a sink's "password". */
static int
fuzz_mask_passwords(cJSON *root)
{
	cJSON *sink;
	int n;

	if (!cJSON_IsObject(root))
		return 0;
	n = fuzz_mask_password(root, "redis.password") +
	    fuzz_mask_password(root, "rabbitmq.password");
	cJSON_ArrayForEach(sink, cJSON_GetObjectItemCaseSensitive(root, "sinks")) {
		if (cJSON_IsObject(sink))
			n += fuzz_mask_password(sink, "password");
	}
	return n;
}

static int
fuzz_streq(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* The same configuration, printed, then with its passwords masked: same outcome. */
static void
fuzz_passwords(const uint8_t *data, size_t size)
{
	struct conf a, b;
	char *text, *ta, *tb, *ca = NULL, *cb = NULL;
	cJSON *root;
	int ra, rb;
	size_t i;

	if (memchr(data, '\0', size) != NULL || memmem(data, size, "password", 8) == NULL)
		return;
	if ((text = malloc(size + 1)) == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	root = cJSON_Parse(text);
	free(text);
	if (root == NULL)
		return;
	ta = cJSON_PrintUnformatted(root);
	tb = fuzz_mask_passwords(root) > 0 ? cJSON_PrintUnformatted(root) : NULL;
	cJSON_Delete(root);
	if (ta == NULL || tb == NULL)
		goto out;
	ra = fuzz_load(ta, strlen(ta), &a, &ca);
	rb = fuzz_load(tb, strlen(tb), &b, &cb);
	FUZZ_CHECK(ra == rb, "%s: %s\n%s: %s", ta, ra == 0 ? "accepted" : ca, tb,
	    rb == 0 ? "accepted" : cb);
	if (ra != 0) {
		FUZZ_CHECK(strcmp(ca, cb) == 0, "the message depends on a password:\n  %s\n  %s",
		    ca, cb);
	} else {
		FUZZ_CHECK(a.nsinks == b.nsinks, "%zu and %zu sinks", a.nsinks, b.nsinks);
		for (i = 0; i < a.nsinks; i++)
			FUZZ_CHECK(fuzz_streq(a.sinks[i].target, b.sinks[i].target),
			    "the description of sink %s depends on a password: %s",
			    a.sinks[i].name, a.sinks[i].target);
		conf_free(&a);
		conf_free(&b);
	}
	free(ca);
	free(cb);
out:
	cJSON_free(ta);
	cJSON_free(tb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf cf;
	char *cause = NULL;

	if (fuzz_load(data, size, &cf, &cause) == 0) {
		fuzz_accepted(&cf);
		conf_free(&cf);
	} else {
		FUZZ_CHECK(cause != NULL && strncmp(cause, fuzz_path, strlen(fuzz_path)) == 0 &&
		    cause[strlen(fuzz_path)] == ':', "%s", cause != NULL ? cause : "(no message)");
		free(cause);
	}
	fuzz_passwords(data, size);
	return 0;
}
