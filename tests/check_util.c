/*
 * check_util.c: unit tests for the small pieces the configuration and the loop stand on:
 * strict number and duration parsing, percent-decoding (util.c), "{name}" templates
 * (sink_expand) and the bounds of the retry backoff (relay_backoff).
 */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "conf.h"
#include "relay.h"
#include "sink.h"
#include "unit_main.h"
#include "util.h"

/* ---- util ---------------------------------------------------------------------------------- */

#define ck_int_ok(s, min, max, want) do {                                         \
	int64_t v_ = -12345; char *c_ = NULL;                                         \
	ck_assert_int_eq(util_parse_int((s), (min), (max), &v_, &c_), 0);             \
	ck_assert_int_eq(v_, (want));                                                 \
} while (0)

#define ck_int_bad(s, min, max, why) do {                                         \
	int64_t v_ = -12345; char *c_ = NULL;                                         \
	ck_assert_int_eq(util_parse_int((s), (min), (max), &v_, &c_), -1);            \
	ck_assert_str_eq(c_, (why));                                                  \
	ck_assert_int_eq(v_, -12345);                                                 \
	free(c_);                                                                     \
} while (0)

START_TEST(test_parse_int)
{
	ck_int_ok("0", 0, 10, 0);
	ck_int_ok("10", 0, 10, 10);
	ck_int_ok("-5", -10, 10, -5);
	ck_int_ok("6379", 1, 65535, 6379);
	ck_int_ok("9223372036854775807", INT64_MIN, INT64_MAX, INT64_MAX);
	ck_int_ok("-9223372036854775808", INT64_MIN, INT64_MAX, INT64_MIN);
	ck_int_bad("", 0, 10, "expected an integer, got \"\"");
	ck_int_bad(NULL, 0, 10, "expected an integer, got \"\"");
	ck_int_bad(" 5", 0, 10, "expected an integer, got \" 5\"");
	ck_int_bad("5 ", 0, 10, "expected an integer, got \"5 \"");
	ck_int_bad("5x", 0, 10, "expected an integer, got \"5x\"");
	ck_int_bad("+5", 0, 10, "expected an integer, got \"+5\"");
	ck_int_bad("-", -10, 10, "expected an integer, got \"-\"");
	ck_int_bad("0x10", 0, 100, "expected an integer, got \"0x10\"");
	ck_int_bad("1.0", 0, 10, "expected an integer, got \"1.0\"");
	ck_int_bad("-", 0, 10, "expected an integer, got \"-\"");
	ck_int_bad("11", 0, 10, "11 is out of range (0 to 10)");
	ck_int_bad("-1", 0, 10, "-1 is out of range (0 to 10)");
	ck_int_bad("9223372036854775808", INT64_MIN, INT64_MAX,
	    "9223372036854775808 is out of range (-9223372036854775808 to 9223372036854775807)");
	ck_int_bad("-99999999999999999999", INT64_MIN, INT64_MAX,
	    "-99999999999999999999 is out of range (-9223372036854775808 to "
	    "9223372036854775807)");
}
END_TEST

#define ck_dur_ok(s, want) do {                                                   \
	int64_t ms_ = -12345; char *c_ = NULL;                                        \
	ck_assert_msg(util_parse_duration((s), &ms_, &c_) == 0, "%s: %s", (s), c_);   \
	ck_assert_int_eq(ms_, (want));                                                \
} while (0)

#define ck_dur_bad(s, why) do {                                                   \
	int64_t ms_ = -12345; char *c_ = NULL;                                        \
	ck_assert_int_eq(util_parse_duration((s), &ms_, &c_), -1);                    \
	ck_assert_str_eq(c_, (why));                                                  \
	ck_assert_int_eq(ms_, -12345);                                                \
	free(c_);                                                                     \
} while (0)

START_TEST(test_parse_duration)
{
	ck_dur_ok("250ms", 250);
	ck_dur_ok("0ms", 0);
	ck_dur_ok("10s", 10000);
	ck_dur_ok("5m", 300000);
	ck_dur_ok("2h", 7200000);
	ck_dur_ok("7d", 604800000);
	ck_dur_ok("1w", 604800000);
	ck_dur_ok("30", 30000);
	ck_dur_ok("0", 0);
	ck_dur_ok("9223372036854775807ms", INT64_MAX);
	ck_dur_ok("15250284452w", 15250284452LL * 604800000);
	ck_dur_bad("", "expected a duration such as 30s, 10m, 2h or 7d, got \"\"");
	ck_dur_bad(NULL, "expected a duration such as 30s, 10m, 2h or 7d, got \"\"");
	ck_dur_bad("s", "expected a duration such as 30s, 10m, 2h or 7d, got \"s\"");
	ck_dur_bad(" 5s", "expected a duration such as 30s, 10m, 2h or 7d, got \" 5s\"");
	ck_dur_bad("-5s", "expected a duration such as 30s, 10m, 2h or 7d, got \"-5s\"");
	ck_dur_bad("+5s", "expected a duration such as 30s, 10m, 2h or 7d, got \"+5s\"");
	ck_dur_bad("5 s", "unknown unit in duration \"5 s\" (use ms, s, m, h, d or w)");
	ck_dur_bad("5s ", "unknown unit in duration \"5s \" (use ms, s, m, h, d or w)");
	ck_dur_bad("5x", "unknown unit in duration \"5x\" (use ms, s, m, h, d or w)");
	ck_dur_bad("5S", "unknown unit in duration \"5S\" (use ms, s, m, h, d or w)");
	ck_dur_bad("5sec", "unknown unit in duration \"5sec\" (use ms, s, m, h, d or w)");
	ck_dur_bad("5ms5", "unknown unit in duration \"5ms5\" (use ms, s, m, h, d or w)");
	ck_dur_bad("1.5h", "unknown unit in duration \"1.5h\" (use ms, s, m, h, d or w)");
	ck_dur_bad("9223372036854775808ms", "duration \"9223372036854775808ms\" is too long");
	ck_dur_bad("9223372036854776s", "duration \"9223372036854776s\" is too long");
	ck_dur_bad("15250284453w", "duration \"15250284453w\" is too long");
	ck_dur_bad("99999999999999999999", "duration \"99999999999999999999\" is too long");
}
END_TEST

#define ck_pct(s, len, want) do {                                                 \
	char *d_ = util_percent_decode((s), (len));                                   \
	ck_assert_ptr_nonnull(d_);                                                    \
	ck_assert_str_eq(d_, (want));                                                 \
	free(d_);                                                                     \
} while (0)

START_TEST(test_percent_decode)
{
	ck_pct("", 0, "");
	ck_pct("plain", 5, "plain");
	ck_pct("p%40ss%3Aw%2fd", 14, "p@ss:w/d");
	ck_pct("%41%42", 6, "AB");
	ck_pct("a+b", 3, "a+b");
	ck_pct("%e2%82%ac", 9, "\xe2\x82\xac");
	ck_pct("%25", 3, "%");
	/* Only len bytes are read. */
	ck_pct("user:pass@host", 9, "user:pass");
	ck_pct("%41%zz", 3, "A");
	ck_assert_ptr_null(util_percent_decode("%", 1));
	ck_assert_ptr_null(util_percent_decode("%4", 2));
	ck_assert_ptr_null(util_percent_decode("ab%4", 4));
	ck_assert_ptr_null(util_percent_decode("%41%4", 5));
	ck_assert_ptr_null(util_percent_decode("%zz", 3));
	ck_assert_ptr_null(util_percent_decode("%g0", 3));
	ck_assert_ptr_null(util_percent_decode("%-1", 3));
	ck_assert_ptr_null(util_percent_decode("a%00b", 5));
	/* A cut escape is bad even if the bytes after len would complete it. */
	ck_assert_ptr_null(util_percent_decode("%41", 2));
}
END_TEST

/* ---- sink_expand --------------------------------------------------------------------------- */

static void
ck_expand(const char *tmpl, const char *name, size_t len, const char *want)
{
	char buf[256];

	ck_assert_uint_le(len, sizeof buf);
	memset(buf, 'Z', sizeof buf);
	if (want == NULL) {
		ck_assert_int_eq(sink_expand(tmpl, name, buf, len), -1);
		/* Nothing written past len. */
		ck_assert_int_eq(len < sizeof buf ? buf[len] : 'Z', 'Z');
		return;
	}
	ck_assert_int_eq(sink_expand(tmpl, name, buf, len), 0);
	ck_assert_str_eq(buf, want);
}

START_TEST(test_sink_expand)
{
	ck_expand("liquid", "user.login", 64, "liquid");
	ck_expand("", "user.login", 64, "");
	ck_expand("{name}", "user.login", 64, "user.login");
	ck_expand("events.{name}.v1", "user.login", 64, "events.user.login.v1");
	ck_expand("{name}-{name}{name}", "ab", 64, "ab-abab");
	ck_expand("{name}", "", 64, "");
	ck_expand("a{name}b", "", 64, "ab");
	ck_expand("{nam}{name", "x", 64, "{nam}{name");
	ck_expand("{{name}}", "x", 64, "{x}");
	/* The name is not expanded again. */
	ck_expand("{name}", "{name}", 64, "{name}");
	/* Exact fit (with the NUL) and one byte short. */
	ck_expand("abcde", "x", 6, "abcde");
	ck_expand("abcdef", "x", 6, NULL);
	ck_expand("{name}", "abcde", 6, "abcde");
	ck_expand("{name}", "abcdef", 6, NULL);
	ck_expand("q.{name}", "abc", 6, "q.abc");
	ck_expand("q.{name}", "abcd", 6, NULL);
	ck_expand("{name}{name}", "abc", 6, NULL);
	ck_expand("x", "n", 1, NULL);
	ck_expand("", "n", 1, "");
}
END_TEST

/* ---- relay_backoff ------------------------------------------------------------------------- */

static void
ck_backoff_bounds(int initial, int max, double mult)
{
	struct conf cf;
	int n, k;

	memset(&cf, 0, sizeof cf);
	cf.backoff_initial_ms = initial;
	cf.backoff_max_ms = max;
	cf.backoff_multiplier = mult;
	for (n = 1; n <= 30; n++) {
		double cap = fmin((double)max, initial * pow(mult, n - 1));
		int64_t lo = INT64_MAX, hi = -1;
		for (k = 0; k < 1000; k++) {
			int64_t d = relay_backoff(&cf, n);
			ck_assert_msg(d >= 0 && (double)d <= cap,
			    "attempt %d: %lld not in [0, %.0f]", n, (long long)d, cap);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		/* Full jitter: the draws spread over the whole range (each bound fails to be
		 * approached with probability 0.9^1000). */
		if (cap >= 10) {
			ck_assert_msg(hi >= 0.9 * cap, "attempt %d: max draw %lld of cap %.0f", n,
			    (long long)hi, cap);
			ck_assert_msg(lo <= 0.1 * cap, "attempt %d: min draw %lld of cap %.0f", n,
			    (long long)lo, cap);
		}
	}
	/* Far past the cap, even where initial * mult^(n-1) overflows a double. */
	for (k = 0; k < 1000; k++) {
		int64_t d = relay_backoff(&cf, 5000);
		ck_assert(d >= 0 && d <= max);
	}
}

START_TEST(test_backoff)
{
	srandom(12345);
	ck_backoff_bounds(1000, 300000, 2.0);
	ck_backoff_bounds(20, 200, 2.0);
	ck_backoff_bounds(100, 100, 3.0);
	ck_backoff_bounds(50, 86400000, 1.0);
	ck_backoff_bounds(1, 86400000, 100.0);
	ck_backoff_bounds(7, 1000, 1.5);
}
END_TEST

/* ---- the batch arena ------------------------------------------------------------------ */

START_TEST(test_arena)
{
	struct arena a = ARENA_INIT;
	char big[200 * 1024], *p[2000], *huge = NULL;
	int i, round;

	memset(big, 'b', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	for (round = 0; round < 3; round++) {
		/* Many small strings across several blocks, one larger than a block: each keeps
		 * its bytes while the others are made, and is aligned for any type. */
		for (i = 0; i < 2000; i++) {
			p[i] = arena_alloc(&a, (size_t)(i % 97) + 1);
			ck_assert_uint_eq((uintptr_t)p[i] % _Alignof(max_align_t), 0);
			memset(p[i], 'a' + i % 26, (size_t)(i % 97) + 1);
			if (i == 1000)
				huge = arena_strndup(&a, big, sizeof big - 1);
		}
		for (i = 0; i < 2000; i++)
			ck_assert_int_eq(p[i][i % 97], 'a' + i % 26);
		ck_assert_uint_eq(strlen(huge), sizeof big - 1);
		ck_assert_int_eq(memcmp(huge, big, sizeof big), 0);
		ck_assert_str_eq(arena_strndup(&a, "abcdef", 3), "abc");
		arena_reset(&a);
	}
	ck_assert_ptr_null(a.used);
	ck_assert_ptr_nonnull(a.spare);
	arena_free(&a);
	ck_assert_ptr_null(a.spare);
}
END_TEST

/* ---- main ------------------------------------------------------------------------------------- */

static Suite *
util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc;

	tc = tcase_create("util");
	tcase_add_test(tc, test_parse_int);
	tcase_add_test(tc, test_parse_duration);
	tcase_add_test(tc, test_percent_decode);
	tcase_add_test(tc, test_sink_expand);
	tcase_add_test(tc, test_arena);
	suite_add_tcase(s, tc);

	tc = tcase_create("backoff");
	tcase_add_test(tc, test_backoff);
	tcase_set_timeout(tc, 60);   /* many draws under sanitizers and make -j */
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_main(util_suite(), "check_util", NULL, 0);
}
