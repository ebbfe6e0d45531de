/*
 * bench-lines.c: reading the bare publishers' messages (see bench-lines.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench-lines.h"

static int
bench_lines_slurp(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long size;
	char *buf;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
		if (f != NULL)
			fclose(f);
		return -1;
	}
	if ((buf = malloc((size_t)size + 1)) == NULL ||
	    fread(buf, 1, (size_t)size, f) != (size_t)size) {
		fprintf(stderr, "bench: cannot read %s\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	buf[size] = '\0';
	*out = buf;
	*len = (size_t)size;
	return 0;
}

/* Split one line "ID NAME BODY" in place; -1 if it is not one. */
static int
bench_lines_split(char *line, struct bench_line *l)
{
	char *sp1 = strchr(line, ' '), *sp2;

	if (sp1 == NULL || (sp2 = strchr(sp1 + 1, ' ')) == NULL)
		return -1;
	*sp1 = *sp2 = '\0';
	l->id = line;
	l->name = sp1 + 1;
	l->body = sp2 + 1;
	l->body_len = strlen(l->body);
	return 0;
}

int
bench_lines_read(const char *path, struct bench_lines *bl)
{
	size_t len, i, cap = 0;
	char *p, *nl;

	memset(bl, 0, sizeof *bl);
	if (bench_lines_slurp(path, &bl->buf, &len) != 0)
		return -1;
	for (i = 0; i < len; i++)
		cap += bl->buf[i] == '\n';
	if ((bl->v = calloc(cap + 1, sizeof *bl->v)) == NULL) {
		fprintf(stderr, "bench: out of memory\n");
		bench_lines_free(bl);
		return -1;
	}
	for (p = bl->buf; *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			nl = p + strlen(p) - 1;
		else
			*nl = '\0';
		if (bench_lines_split(p, &bl->v[bl->n]) != 0) {
			fprintf(stderr, "bench: %s: line %zu is not \"ID NAME BODY\"\n", path,
			    bl->n + 1);
			bench_lines_free(bl);
			return -1;
		}
		bl->n++;
	}
	return 0;
}

void
bench_lines_free(struct bench_lines *bl)
{
	free(bl->v);
	free(bl->buf);
	memset(bl, 0, sizeof *bl);
}

double
bench_lines_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
bench_lines_int(const char *text, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}
