/*
 * check_envelope.c: unit tests for the envelope bytes every sink publishes
 * (envelope_build): the fields, JSON escaping, and the worst-case buffer size.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

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

/* ---- CloudEvents ------------------------------------------------------------------------------ */

static char skipped[256];

static void
on_skip(const char *name, void *arg)
{
	ck_assert_str_eq((const char *)arg, "sink");
	strncat(skipped, name, sizeof skipped - strlen(skipped) - 2);
	strcat(skipped, " ");
}

START_TEST(test_cloudevent_attributes)
{
	char sink[] = "sink";
	size_t len = 0;
	char *ev;
	cJSON *o;

	skipped[0] = '\0';
	/* 2021-02-25T15:02:10.042Z */
	ev = envelope_cloudevent("e-1", "myapp.user.login", "//outboxd/host/app.db",
	    1614265330042LL, "{\"n\":  1.50}", "{\"traceparent\":\"00-ab\",\"tenant2\":7,"
	    "\"ok\":true,\"Upper\":\"x\",\"has-dash\":\"x\",\"id\":\"clash\","
	    "\"nested\":{\"a\":1},\"abcdefghijklmnopqrstu\":\"21 chars\"}", on_skip, sink, &len);
	ck_assert_ptr_nonnull(ev);
	ck_assert_uint_eq(len, strlen(ev));
	/* Attribute by attribute, in this order; data is the payload's own bytes. */
	ck_assert_str_eq(ev, "{\"specversion\":\"1.0\",\"id\":\"e-1\","
	    "\"source\":\"//outboxd/host/app.db\",\"type\":\"myapp.user.login\","
	    "\"time\":\"2021-02-25T15:02:10.042Z\",\"datacontenttype\":\"application/json\","
	    "\"traceparent\":\"00-ab\",\"tenant2\":7,\"ok\":true,\"data\":{\"n\":  1.50}}");
	o = cJSON_Parse(ev);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "specversion")->valuestring, "1.0");
	cJSON_Delete(o);
	ck_assert_str_eq(skipped, "Upper has-dash id nested abcdefghijklmnopqrstu ");
	free(ev);
}
END_TEST

START_TEST(test_cloudevent_no_headers_and_escaping)
{
	size_t len = 0;
	char *ev = envelope_cloudevent("a\"b", "t\\u", "s", 0, "null", NULL, NULL, NULL, &len);

	ck_assert_str_eq(ev, "{\"specversion\":\"1.0\",\"id\":\"a\\\"b\",\"source\":\"s\","
	    "\"type\":\"t\\\\u\",\"time\":\"1970-01-01T00:00:00.000Z\","
	    "\"datacontenttype\":\"application/json\",\"data\":null}");
	free(ev);
}
END_TEST

START_TEST(test_cloudevent_time)
{
	char buf[40];

	envelope_time(1614265330042LL, buf, sizeof buf);
	ck_assert_str_eq(buf, "2021-02-25T15:02:10.042Z");
	envelope_time(999, buf, sizeof buf);
	ck_assert_str_eq(buf, "1970-01-01T00:00:00.999Z");
	envelope_time(4102444800000LL, buf, sizeof buf);
	ck_assert_str_eq(buf, "2100-01-01T00:00:00.000Z");
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
	tcase_add_test(tc, test_cloudevent_attributes);
	tcase_add_test(tc, test_cloudevent_no_headers_and_escaping);
	tcase_add_test(tc, test_cloudevent_time);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_main(envelope_suite(), "check_envelope", NULL, 0);
}
