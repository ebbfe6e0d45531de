/*
 * check_http.c: unit tests for the HTTP sink's signatures (against published vectors) and
 * its options (sink_type_read on sink_http_type). What a real endpoint sees is checked by
 * tests/test_http.py, with a verifier that is not this code.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "sink.h"
#include "sink_http.h"
#include "unit_main.h"
#include "util.h"

/* ---- signatures ------------------------------------------------------------------- */

/*
 * The Standard Webhooks reference libraries' own vector: "sign function works" in
 * libraries/javascript/src/webhook.test.ts of github.com/standard-webhooks/standard-webhooks
 * (commit 10d3e46d720c4e5861a792bec25792a04ad4e2b3); the other libraries test the same.
 */
#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TIMESTAMP 1614265330LL
#define SW_PAYLOAD "{\"test\": 2432232314}"
#define SW_SIGNATURE "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

START_TEST(test_standard_webhooks_vector)
{
	char sig[64];

	ck_assert_int_eq(sink_http_sign_standard(SW_SECRET, SW_ID, SW_TIMESTAMP, SW_PAYLOAD,
	    strlen(SW_PAYLOAD), sig, sizeof sig), 0);
	ck_assert_str_eq(sig, SW_SIGNATURE);
	/* The body is signed as bytes: one more space is another signature. */
	ck_assert_int_eq(sink_http_sign_standard(SW_SECRET, SW_ID, SW_TIMESTAMP,
	    "{\"test\":  2432232314}", strlen(SW_PAYLOAD) + 1, sig, sizeof sig), 0);
	ck_assert_str_ne(sig, SW_SIGNATURE);
	/* ... and so is another timestamp or id. */
	ck_assert_int_eq(sink_http_sign_standard(SW_SECRET, SW_ID, SW_TIMESTAMP + 1, SW_PAYLOAD,
	    strlen(SW_PAYLOAD), sig, sizeof sig), 0);
	ck_assert_str_ne(sig, SW_SIGNATURE);
}
END_TEST

START_TEST(test_standard_webhooks_secrets)
{
	unsigned char key[SINK_HTTP_KEY_MAX];
	size_t len = 0;
	char sig[64];

	/* whsec_ and base64: the key is the decoded bytes (24 here), padding optional. */
	ck_assert_int_eq(sink_http_secret_key(SINK_HTTP_SIGN_STANDARD, SW_SECRET, key, &len), 0);
	ck_assert_uint_eq(len, 24);
	ck_assert_int_eq(sink_http_secret_key(SINK_HTTP_SIGN_STANDARD, "whsec_AAE=", key, &len),
	    0);
	ck_assert_uint_eq(len, 2);
	ck_assert_int_eq(key[0], 0);
	ck_assert_int_eq(key[1], 1);
	/* No prefix, not base64, empty: refused, so nothing is signed with a wrong key. */
	ck_assert_int_eq(sink_http_secret_key(SINK_HTTP_SIGN_STANDARD,
	    "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key, &len), -1);
	ck_assert_int_eq(sink_http_secret_key(SINK_HTTP_SIGN_STANDARD, "whsec_ab$d", key, &len),
	    -1);
	ck_assert_int_eq(sink_http_secret_key(SINK_HTTP_SIGN_STANDARD, "whsec_", key, &len), -1);
	ck_assert_int_eq(sink_http_sign_standard("nope", SW_ID, 1, "x", 1, sig, sizeof sig), -1);
}
END_TEST

/* RFC 4231, test case 2: HMAC-SHA256 with the key "Jefe". */
START_TEST(test_hex_signature_vector)
{
	static const char data[] = "what do ya want for nothing?";
	char sig[65];

	ck_assert_int_eq(sink_http_sign_hex("Jefe", data, strlen(data), sig, sizeof sig), 0);
	ck_assert_str_eq(sig, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	ck_assert_int_eq(sink_http_sign_hex("", data, strlen(data), sig, sizeof sig), -1);
}
END_TEST

/* ---- options ----------------------------------------------------------------------- */

static struct sink_http_options *
read_ok(const char *json)
{
	cJSON *obj = cJSON_Parse(json);
	char *cause = NULL;
	void *o;

	ck_assert_ptr_nonnull(obj);
	o = sink_type_read(&sink_http_type, obj, "sinks.h", &cause);
	ck_assert_msg(o != NULL, "sink_type_read failed: %s", cause != NULL ? cause : "?");
	cJSON_Delete(obj);
	return o;
}

static void
read_error(const char *json, const char *want)
{
	cJSON *obj = cJSON_Parse(json);
	char *cause = NULL;

	ck_assert_ptr_nonnull(obj);
	ck_assert_ptr_null(sink_type_read(&sink_http_type, obj, "sinks.h", &cause));
	ck_assert_ptr_nonnull(cause);
	ck_assert_str_eq(cause, want);
	free(cause);
	cJSON_Delete(obj);
}

START_TEST(test_defaults)
{
	struct sink_http_options *o;
	char *desc;

	unsetenv("OUTBOXD_HTTP_SECRET");
	o = read_ok("{\"url\": \"https://example.com/hooks/{name}\"}");
	ck_assert_int_eq(o->method, SINK_HTTP_POST);
	ck_assert_int_eq(o->timeout_ms, 10000);
	ck_assert_int_eq(o->concurrency, 16);
	ck_assert_int_eq(o->batch, 1);
	ck_assert_int_eq(o->tls.verify_peer, 1);
	ck_assert_int_eq(o->tls.verify_hostname, 1);
	ck_assert_uint_eq(o->secrets.n, 0);
	ck_assert_int_eq(o->signature, SINK_HTTP_SIGN_STANDARD);
	ck_assert_str_eq(o->signature_header, "X-Webhook-Signature");
	ck_assert_ptr_null(o->headers);
	desc = sink_http_type.describe(o);
	ck_assert_str_eq(desc, "POST https://example.com/hooks/{name}");
	free(desc);
	sink_type_free(&sink_http_type, o);
}
END_TEST

START_TEST(test_every_option)
{
	struct sink_http_options *o = read_ok("{\"url\": \"http://u:secret@h/x\", "
	    "\"method\": \"PUT\", \"headers\": {\"Authorization\": \"Bearer t\"}, "
	    "\"timeout-ms\": 500, \"connect-timeout-ms\": 100, \"concurrency\": 4, \"batch\": 50, "
	    "\"signing-secret\": [\"whsec_AAE=\", \"" SW_SECRET "\"]}");
	char *desc;

	ck_assert_int_eq(o->method, SINK_HTTP_PUT);
	ck_assert_str_eq(o->headers, "{\"Authorization\":\"Bearer t\"}");
	ck_assert_int_eq(o->timeout_ms, 500);
	ck_assert_int_eq(o->connect_timeout_ms, 100);
	ck_assert_int_eq(o->concurrency, 4);
	ck_assert_int_eq(o->batch, 50);
	ck_assert_uint_eq(o->secrets.n, 2);
	/* The password in the URL is masked; the secrets are never shown. */
	desc = sink_http_type.describe(o);
	ck_assert_ptr_null(strstr(desc, "secret"));
	ck_assert_ptr_null(strstr(desc, "AAE"));
	ck_assert_str_eq(desc, "PUT http://u:***@h/x (batches) (signed: standard webhooks)");
	free(desc);
	sink_type_free(&sink_http_type, o);
}
END_TEST

START_TEST(test_secret_from_environment)
{
	struct sink_http_options *o;

	setenv("OUTBOXD_HTTP_SECRET", "push-events-secret", 1);
	o = read_ok("{\"url\": \"http://h/\", \"signature\": \"hmac-sha256-hex\"}");
	ck_assert_uint_eq(o->secrets.n, 1);
	ck_assert_str_eq(o->secrets.v[0], "push-events-secret");
	sink_type_free(&sink_http_type, o);
	/* One in the file wins. */
	o = read_ok("{\"url\": \"http://h/\", \"signing-secret\": \"whsec_AAE=\"}");
	ck_assert_uint_eq(o->secrets.n, 1);
	ck_assert_str_eq(o->secrets.v[0], "whsec_AAE=");
	sink_type_free(&sink_http_type, o);
	/* A Standard Webhooks sink refuses a secret that is not whsec_, without quoting it. */
	read_error("{\"url\": \"http://h/\"}", "sinks.h.signing-secret: expected whsec_ "
	    "followed by base64 (at most 256 bytes decoded)");
	unsetenv("OUTBOXD_HTTP_SECRET");
}
END_TEST

START_TEST(test_bad_options)
{
	unsetenv("OUTBOXD_HTTP_SECRET");
	read_error("{}", "sinks.h.url: expected an http:// or https:// URL of at most 4096 "
	    "characters");
	read_error("{\"url\": \"ftp://h/\"}", "sinks.h.url: expected an http:// or https:// URL "
	    "of at most 4096 characters");
	read_error("{\"url\": \"http://h/\", \"method\": \"GET\"}",
	    "sinks.h.method: expected \"POST\" or \"PUT\", got \"GET\"");
	read_error("{\"url\": \"http://h/\", \"headers\": [\"a\"]}",
	    "sinks.h.headers: expected an object of strings, got [\"a\"]");
	read_error("{\"url\": \"http://h/\", \"headers\": {\"a\": 1}}",
	    "sinks.h.headers: the value of \"a\" must be a string");
	read_error("{\"url\": \"http://h/\", \"headers\": {\"a b\": \"1\"}}",
	    "sinks.h.headers: \"a b\" is not a valid header name");
	read_error("{\"url\": \"http://h/\", \"headers\": {\"X\": \"1\\r\\nY: 2\"}}",
	    "sinks.h.headers.X: a header value must not hold a line break");
	read_error("{\"url\": \"http://h/\", \"tls-cert-file\": \"c\"}",
	    "sinks.h: tls-cert-file and tls-key-file go together");
	read_error("{\"url\": \"http://h/\", \"concurrency\": 0}",
	    "sinks.h.concurrency: 0 is out of range (1 to 1024)");
	read_error("{\"url\": \"http://h/\", \"signing-secret\": \"whsec_s3cr3t!\"}",
	    "sinks.h.signing-secret: expected whsec_ followed by base64 (at most 256 bytes "
	    "decoded)");
	read_error("{\"url\": \"http://h/\", \"signing-secret\": 5}",
	    "sinks.h.signing-secret: expected a string or an array of strings");
}
END_TEST

static Suite *
http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("http");

	tcase_add_test(tc, test_standard_webhooks_vector);
	tcase_add_test(tc, test_standard_webhooks_secrets);
	tcase_add_test(tc, test_hex_signature_vector);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_every_option);
	tcase_add_test(tc, test_secret_from_environment);
	tcase_add_test(tc, test_bad_options);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_main(http_suite(), "check_http", NULL, 0);
}
