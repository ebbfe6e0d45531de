/*
 * check_envelope.c: unit tests for the envelope bytes every sink publishes
 * (envelope_build): the fields, JSON escaping, and the worst-case buffer size.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "unit_main.h"
#include "util.h"

/* ---- envelope ---------------------------------------------------------------------------- */

static void
ck_envelope(const char *id, const char *name, const char *payload, const char *headers,
    const char *want)
{
	size_t len = 0;
	char *env = envelope_build(id, name, payload, headers, &len);

	ck_assert_ptr_nonnull(env);
	ck_assert_str_eq(env, want);
	ck_assert_uint_eq(len, strlen(want));
	free(env);
}

START_TEST(test_envelope)
{
	ck_envelope("0b3c1a52-9a54-4a8e-8d2e-3f8f5d0c9e11", "user.login",
	    "{\"user\":{\"_id\":\"42\"}}", NULL,
	    "{\"id\":\"0b3c1a52-9a54-4a8e-8d2e-3f8f5d0c9e11\",\"name\":\"user.login\","
	    "\"data\":{\"user\":{\"_id\":\"42\"}}}");
	ck_envelope("e1", "myapp.user.login", "{\"a\":1}", "{\"trace\":\"t-1\",\"n\":2}",
	    "{\"id\":\"e1\",\"name\":\"myapp.user.login\",\"data\":{\"a\":1},"
	    "\"metadata\":{\"trace\":\"t-1\",\"n\":2}}");
	/* Any JSON value is data; an empty headers object is still metadata. */
	ck_envelope("e2", "n", "null", "{}",
	    "{\"id\":\"e2\",\"name\":\"n\",\"data\":null,\"metadata\":{}}");
	ck_envelope("e3", "n", "\"text\"", NULL, "{\"id\":\"e3\",\"name\":\"n\",\"data\":\"text\"}");
	ck_envelope("e4", "n", "[1,2.5,true]", NULL,
	    "{\"id\":\"e4\",\"name\":\"n\",\"data\":[1,2.5,true]}");
}
END_TEST

START_TEST(test_envelope_escaping)
{
	ck_envelope("my \"id\" \\ 1", "a\"b\\c", "1", NULL,
	    "{\"id\":\"my \\\"id\\\" \\\\ 1\",\"name\":\"a\\\"b\\\\c\",\"data\":1}");
	ck_envelope("x\ny", "t\tab\r\x01\x1f\x7f", "1", NULL,
	    "{\"id\":\"x\\u000ay\",\"name\":\"t\\u0009ab\\u000d\\u0001\\u001f\x7f\","
	    "\"data\":1}");
	/* UTF-8 and '/' go through as they are. */
	ck_envelope("é/€", "ü.ñ", "{}", NULL,
	    "{\"id\":\"é/€\",\"name\":\"ü.ñ\",\"data\":{}}");
	ck_envelope("", "", "0", NULL, "{\"id\":\"\",\"name\":\"\",\"data\":0}");
}
END_TEST

START_TEST(test_envelope_worst_case)
{
	/* Every byte escaped to six: the buffer must hold it (ASan watches). */
	char id[300], name[300], *want, *p;
	size_t i, len;

	memset(id, '\x01', sizeof id - 1);
	id[sizeof id - 1] = '\0';
	memset(name, '\x1f', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	want = xcalloc(1, 6 * 600 + 100);
	p = want + sprintf(want, "{\"id\":\"");
	for (i = 0; i < sizeof id - 1; i++)
		p += sprintf(p, "\\u0001");
	p += sprintf(p, "\",\"name\":\"");
	for (i = 0; i < sizeof name - 1; i++)
		p += sprintf(p, "\\u001f");
	sprintf(p, "\",\"data\":{},\"metadata\":{}}");
	{
		char *env = envelope_build(id, name, "{}", "{}", &len);
		ck_assert_ptr_nonnull(env);
		ck_assert_str_eq(env, want);
		ck_assert_uint_eq(len, strlen(want));
		free(env);
	}
	free(want);
}
END_TEST

/* ---- main ------------------------------------------------------------------------------------- */

static Suite *
envelope_suite(void)
{
	Suite *s = suite_create("envelope");
	TCase *tc = tcase_create("envelope");

	tcase_add_test(tc, test_envelope);
	tcase_add_test(tc, test_envelope_escaping);
	tcase_add_test(tc, test_envelope_worst_case);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_main(envelope_suite(), "check_envelope", NULL, 0);
}
