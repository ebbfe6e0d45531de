/* util.c: strict parsing, clocks and allocation helpers shared by relay and outboxctl. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "util.h"

static void
util_out_of_memory(void)
{
	fputs("outboxd: out of memory\n", stderr);
	abort();
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		util_out_of_memory();
	va_end(ap);
	return s;
}

char *
xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		util_out_of_memory();
	return d;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL)
		util_out_of_memory();
	return p;
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		util_out_of_memory();
	/* Never 0 bytes: realloc(p, 0) may free p and return NULL. */
	if ((p = realloc(p, n * size > 0 ? n * size : 1)) == NULL)
		util_out_of_memory();
	return p;
}

struct timeval
util_timeval_ms(int64_t ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return tv;
}

int
util_parse_int(const char *s, int64_t min, int64_t max, int64_t *out, char **cause)
{
	char *end;
	long long v;

	errno = 0;
	if (s == NULL || !(isdigit((unsigned char)*s) || (*s == '-' && isdigit((unsigned char)s[1])))) {
		*cause = xasprintf("expected an integer, got \"%s\"", s != NULL ? s : "");
		return -1;
	}
	v = strtoll(s, &end, 10);
	if (*end != '\0') {
		*cause = xasprintf("expected an integer, got \"%s\"", s);
		return -1;
	}
	if (errno == ERANGE || v < min || v > max) {
		*cause = xasprintf("%s is out of range (%" PRId64 " to %" PRId64 ")", s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

int
util_parse_duration(const char *s, int64_t *ms, char **cause)
{
	static const struct { const char *unit; int64_t ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
		{ "d", 86400000 }, { "w", 604800000 }, { "", 1000 },
	};
	char *end;
	long long v;
	size_t i;

	errno = 0;
	if (s == NULL || !isdigit((unsigned char)*s)) {
		*cause = xasprintf("expected a duration such as 30s, 10m, 2h or 7d, got \"%s\"",
		    s != NULL ? s : "");
		return -1;
	}
	v = strtoll(s, &end, 10);
	for (i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(end, units[i].unit) != 0)
			continue;
		if (errno == ERANGE || v > INT64_MAX / units[i].ms) {
			*cause = xasprintf("duration \"%s\" is too long", s);
			return -1;
		}
		*ms = v * units[i].ms;
		return 0;
	}
	*cause = xasprintf("unknown unit in duration \"%s\" (use ms, s, m, h, d or w)", s);
	return -1;
}

static int
util_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

char *
util_percent_decode(const char *s, size_t len)
{
	char *out = xcalloc(1, len + 1), *o = out;
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] == '%') {
			int hi, lo;
			if (i + 2 >= len)
				goto bad;
			hi = util_hex((unsigned char)s[i + 1]);
			lo = util_hex((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	return out;
bad:
	free(out);
	return NULL;
}

int64_t
util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
util_monotonic_ms(void)
{
	return util_monotonic_us() / 1000;
}

int64_t
util_monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double
util_monotonic_seconds(void)
{
	return (double)util_monotonic_us() / 1e6;
}

void
util_cond_init_monotonic(pthread_cond_t *cv)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &attr);
	pthread_condattr_destroy(&attr);
}

struct timespec
util_monotonic_deadline(int64_t ms)
{
	struct timespec at;

	clock_gettime(CLOCK_MONOTONIC, &at);
	at.tv_nsec += (long)(ms % 1000) * 1000000L;
	at.tv_sec += (time_t)(ms / 1000) + at.tv_nsec / 1000000000L;
	at.tv_nsec %= 1000000000L;
	return at;
}

char *
util_human_age(double secs)
{
	int64_t s;

	if (secs < 0)
		secs = 0;
	if (secs < 1)
		return xasprintf("%dms", (int)(secs * 1000));
	s = (int64_t)secs;
	if (s < 60)
		return xasprintf("%" PRId64 "s", s);
	if (s < 3600)
		return xasprintf("%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	if (s < 86400)
		return xasprintf("%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
	return xasprintf("%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
}

size_t
util_json_compact(const char *json, size_t len, char *out)
{
	const char *end = json + len;
	char *o = out;
	size_t run;
	char c;

	while (json < end) {
		c = *json++;
		if (c == ' ' || c == '\n' || c == '\t' || c == '\r')
			continue;
		*o++ = c;
		if (c != '"')
			continue;
		/* A string, copied as it is up to its closing quote: runs without a quote or a
		 * backslash at a time (strcspn also stops at a NUL, which only ends the text). */
		while (json < end) {
			run = strcspn(json, "\"\\");
			if (run > (size_t)(end - json))
				run = (size_t)(end - json);
			memcpy(o, json, run);
			o += run;
			json += run;
			if (json >= end)
				break;
			c = *json++;
			*o++ = c;
			if (c == '"')
				break;
			if (c == '\\' && json < end)
				*o++ = *json++;
		}
	}
	*o = '\0';
	return (size_t)(o - out);
}
