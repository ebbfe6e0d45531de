/*
 * log.c: one timestamped line per message, "2026-11-22T13:50:11.136Z outboxd[42] warn: ...",
 * or with relay.log-format json one object a line for log shippers. Messages are written
 * already redacted by their callers (no password ever reaches here), in either format.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_level log_level = LOG_LEVEL_INFO;
static enum log_format log_format = LOG_FORMAT_TEXT;
static FILE *log_file;     /* NULL: stderr; under log_lock */
/* Other threads log too (checkpoints, metrics): a reopen must not close the file under
 * a line being written. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_path;

static const char *const log_names[] = { "error", "warn", "info", "debug" };

int
log_level_parse(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof log_names / sizeof log_names[0]; i++) {
		if (strcmp(s, log_names[i]) == 0)
			return (int)i;
	}
	return -1;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

void
log_set_format(enum log_format format)
{
	log_format = format;
}

int
log_open(const char *path)
{
	FILE *f;

	if (path == NULL) {
		pthread_mutex_lock(&log_lock);
		if (log_file != NULL)
			fclose(log_file);
		log_file = NULL;
		pthread_mutex_unlock(&log_lock);
		free(log_path);
		log_path = NULL;
		return 0;
	}
	if ((f = fopen(path, "a")) == NULL)
		return -1;
	setvbuf(f, NULL, _IOLBF, 0);
	pthread_mutex_lock(&log_lock);
	if (log_file != NULL)
		fclose(log_file);
	log_file = f;
	pthread_mutex_unlock(&log_lock);
	if (log_path != path) {
		free(log_path);
		log_path = strdup(path);
	}
	return 0;
}

int
log_reopen(void)
{
	return log_path != NULL ? log_open(log_path) : 0;
}

/* Write len bytes of s as the inside of a JSON string. */
static void
log_json_string(FILE *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	for (; p < end; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (*p == '\t')
			fputs("\\t", out);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
}

/* One JSON object: a message "sink NAME: rest" gives "sink":NAME and "msg":rest. */
static void
log_json(FILE *out, const char *stamp, long ms, enum log_level level, const char *msg)
{
	const char *colon;
	size_t n;

	fprintf(out, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"pid\":%ld,", stamp, ms,
	    log_names[level], (long)getpid());
	if (strncmp(msg, "sink ", 5) == 0 && (colon = strstr(msg + 5, ": ")) != NULL &&
	    (n = (size_t)(colon - msg - 5)) > 0 && memchr(msg + 5, ' ', n) == NULL) {
		fputs("\"sink\":\"", out);
		log_json_string(out, msg + 5, n);
		fputs("\",", out);
		msg = colon + 2;
	}
	fputs("\"msg\":\"", out);
	log_json_string(out, msg, strlen(msg));
	fputs("\"}\n", out);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	FILE *out;
	struct timespec ts;
	struct tm tm;
	char stamp[32], *msg = NULL;
	va_list ap;
	int saved = errno;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	pthread_mutex_lock(&log_lock);
	out = log_file != NULL ? log_file : stderr;
	if (log_format == LOG_FORMAT_JSON)
		log_json(out, stamp, ts.tv_nsec / 1000000L, level, msg != NULL ? msg : fmt);
	else
		fprintf(out, "%s.%03ldZ outboxd[%ld] %s: %s\n", stamp, ts.tv_nsec / 1000000L,
		    (long)getpid(), log_names[level], msg != NULL ? msg : fmt);
	fflush(out);
	pthread_mutex_unlock(&log_lock);
	free(msg);
	errno = saved;
}
