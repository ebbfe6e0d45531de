/* log.c: one timestamped line per message, "2026-11-22T13:50:11.136Z outboxd[42] warn: ...". */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_level log_level = LOG_LEVEL_INFO;
static FILE *log_file;     /* NULL: stderr */
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

int
log_open(const char *path)
{
	FILE *f;

	if (path == NULL) {
		if (log_file != NULL)
			fclose(log_file);
		log_file = NULL;
		free(log_path);
		log_path = NULL;
		return 0;
	}
	if ((f = fopen(path, "a")) == NULL)
		return -1;
	setvbuf(f, NULL, _IOLBF, 0);
	if (log_file != NULL)
		fclose(log_file);
	log_file = f;
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

void
log_msg(enum log_level level, const char *fmt, ...)
{
	FILE *out = log_file != NULL ? log_file : stderr;
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	va_list ap;
	int saved = errno;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	flockfile(out);
	fprintf(out, "%s.%03ldZ outboxd[%ld] %s: ", stamp, ts.tv_nsec / 1000000L, (long)getpid(),
	    log_names[level]);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
	fflush(out);
	funlockfile(out);
	errno = saved;
}
