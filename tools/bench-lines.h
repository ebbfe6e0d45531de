/*
 * bench-lines.h: the messages the bare publishers of tools/bench-* send: the relay's own
 * envelopes, one a line ("ID NAME BODY"), as the benchmark scripts write them, so that
 * both sides publish the same bodies. Also a clock and a strict integer parser.
 */
#ifndef BENCH_LINES_H
#define BENCH_LINES_H

#include <stddef.h>

struct bench_line {
	const char *id, *name, *body;   /* NUL-terminated, into bench_lines.buf */
	size_t body_len;
};

struct bench_lines {
	char *buf;
	struct bench_line *v;
	size_t n;
};

/* 0, or -1 with a message on stderr. bench_lines_free releases what it filled in. */
int bench_lines_read(const char *path, struct bench_lines *bl);
void bench_lines_free(struct bench_lines *bl);
/* Seconds on the monotonic clock. */
double bench_lines_now(void);
/* text as a whole number within [min, max]: 0, or -1. */
int bench_lines_int(const char *text, long long min, long long max, long long *out);

#endif
