/* util.h: small helpers shared by the relay and outboxctl: strict number and duration
 * parsing, clocks, malloc'd printf, percent-decoding. */
#ifndef RELAY_UTIL_H
#define RELAY_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <time.h>

/* malloc'd printf; aborts on out of memory (the relay cannot go on without memory). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xstrdup(const char *s);
void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);

/* ms as a struct timeval, for socket and library timeouts. */
struct timeval util_timeval_ms(int64_t ms);

/* Whole string s as a decimal integer in [min, max]: no sign games, no trailing junk.
 * 0, or -1 with *cause (malloc'd) saying what is wrong. */
int util_parse_int(const char *s, int64_t min, int64_t max, int64_t *out, char **cause);

/* "250ms", "10s", "5m", "2h", "7d", "1w" (a bare number is seconds) into milliseconds. */
int util_parse_duration(const char *s, int64_t *ms, char **cause);

/* Percent-decode s into a malloc'd string; NULL if s has a bad escape or a NUL byte. */
char *util_percent_decode(const char *s, size_t len);

/* A duration for people, malloc'd: "850ms", "42s", "3m05s", "2h10m", "4d03h". */
char *util_human_age(double secs);

/*
 * Copy the JSON text json[0..len-1] (NUL-terminated, as SQLite gives text) to out without
 * the whitespace between tokens, and a NUL: for valid JSON, the same bytes as SQLite's
 * json() (strings, escapes and numbers are kept as written). out has room for len + 1
 * bytes. Returns the length written.
 */
size_t util_json_compact(const char *json, size_t len, char *out);

int64_t util_now_ms(void);       /* wall clock, unix milliseconds */
int64_t util_monotonic_ms(void); /* for timeouts */
int64_t util_monotonic_us(void);
double util_monotonic_seconds(void); /* for measuring */

/* A condition variable whose timed waits count on CLOCK_MONOTONIC (a step of the wall
 * clock must not stretch them), and the deadline ms from now to give it. */
void util_cond_init_monotonic(pthread_cond_t *cv);
struct timespec util_monotonic_deadline(int64_t ms);

#endif
