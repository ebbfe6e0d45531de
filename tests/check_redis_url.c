/*
 * check_redis_url.c: unit tests for Redis URLs (redis_url.c) and for the Redis sink's
 * configuration (sink_redis.c, through its ops), without a server.
 *
 * The URL tests are tables: every accepted form with what it means, every malformed form
 * with the words its error must contain. Wherever a URL carries a password, the error
 * message and the redacted forms must not contain it.
 */
#include "config.h"

#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "redis_url.h"
#include "sink.h"
#include "util.h"

#define PW "s3cretpw"

static char check_sink_name[] = "redis";

/* ---- URLs that parse ------------------------------------------------------------------ */

static const struct good_url {
	const char *url;
	const char *host;
	int port;
	const char *path;
	const char *username;
	const char *password;
	int db;
	const char *described;
} good_urls[] = {
	{ "redis://localhost", "localhost", 6379, NULL, NULL, NULL, 0,
	  "redis://localhost:6379/0" },
	{ "redis://127.0.0.1:6380/2", "127.0.0.1", 6380, NULL, NULL, NULL, 2,
	  "redis://127.0.0.1:6380/2" },
	{ "redis://", "127.0.0.1", 6379, NULL, NULL, NULL, 0, "redis://127.0.0.1:6379/0" },
	{ "redis://:6390", "127.0.0.1", 6390, NULL, NULL, NULL, 0, "redis://127.0.0.1:6390/0" },
	{ "REDIS://Cache-1.example.com", "Cache-1.example.com", 6379, NULL, NULL, NULL, 0,
	  "redis://Cache-1.example.com:6379/0" },
	{ "redis://host/", "host", 6379, NULL, NULL, NULL, 0, "redis://host:6379/0" },
	{ "redis://host:65535/2147483647", "host", 65535, NULL, NULL, NULL, 2147483647,
	  "redis://host:65535/2147483647" },
	{ "redis://host:1/007", "host", 1, NULL, NULL, NULL, 7, "redis://host:1/7" },
	{ "redis://:" PW "@host", "host", 6379, NULL, NULL, PW, 0,
	  "redis://:***@host:6379/0" },
	{ "redis://alice:" PW "@host:7000/3", "host", 7000, NULL, "alice", PW, 3,
	  "redis://alice:***@host:7000/3" },
	{ "redis://alice@host", "host", 6379, NULL, "alice", NULL, 0,
	  "redis://alice@host:6379/0" },
	{ "redis://:@host", "host", 6379, NULL, NULL, NULL, 0, "redis://host:6379/0" },
	{ "redis://:p%40ss%3Aw%2Fd%25@host", "host", 6379, NULL, NULL, "p@ss:w/d%", 0,
	  "redis://:***@host:6379/0" },
	{ "redis://bob:p@ss:w/d@host/1", "host", 6379, NULL, "bob", "p@ss:w/d", 1,
	  "redis://bob:***@host:6379/1" },
	{ "redis://us%65r:x@host", "host", 6379, NULL, "user", "x", 0,
	  "redis://user:***@host:6379/0" },
	{ "redis://[::1]:6380/3", "::1", 6380, NULL, NULL, NULL, 3, "redis://[::1]:6380/3" },
	{ "redis://[::1]", "::1", 6379, NULL, NULL, NULL, 0, "redis://[::1]:6379/0" },
	{ "redis://:" PW "@[fe80::1:2]:1234", "fe80::1:2", 1234, NULL, NULL, PW, 0,
	  "redis://:***@[fe80::1:2]:1234/0" },
	{ "redis://host?db=4", "host", 6379, NULL, NULL, NULL, 4, "redis://host:6379/4" },
	{ "redis://host/?db=5", "host", 6379, NULL, NULL, NULL, 5, "redis://host:6379/5" },
	{ "redis://host:6379/0?", "host", 6379, NULL, NULL, NULL, 0, "redis://host:6379/0" },
	{ "redis://host?username=bob&password=a%26b%3D", "host", 6379, NULL, "bob", "a&b=",
	  0, "redis://bob:***@host:6379/0" },
	{ "unix:///tmp/redis.sock", NULL, 0, "/tmp/redis.sock", NULL, NULL, 0,
	  "unix:///tmp/redis.sock?db=0" },
	{ "unix:///tmp/redis.sock?db=3", NULL, 0, "/tmp/redis.sock", NULL, NULL, 3,
	  "unix:///tmp/redis.sock?db=3" },
	{ "redis+unix:///var/run/r.sock?db=1", NULL, 0, "/var/run/r.sock", NULL, NULL, 1,
	  "unix:///var/run/r.sock?db=1" },
	{ "UNIX:///r.sock", NULL, 0, "/r.sock", NULL, NULL, 0, "unix:///r.sock?db=0" },
	{ "unix://:" PW "@/tmp/r.sock", NULL, 0, "/tmp/r.sock", NULL, PW, 0,
	  "unix://:***@/tmp/r.sock?db=0" },
	{ "unix:///tmp/r.sock?password=" PW "&db=2", NULL, 0, "/tmp/r.sock", NULL, PW, 2,
	  "unix://:***@/tmp/r.sock?db=2" },
};

static void
assert_str_or_null(const char *got, const char *want, const char *url)
{
	if (want == NULL)
		ck_assert_msg(got == NULL, "%s: expected NULL, got \"%s\"", url, got);
	else
		ck_assert_msg(got != NULL && strcmp(got, want) == 0,
		    "%s: expected \"%s\", got \"%s\"", url, want, got ? got : "(null)");
}

START_TEST(test_good_url)
{
	const struct good_url *g = &good_urls[_i];
	struct redis_url ru;
	char *cause = NULL, *described;

	ck_assert_msg(redis_url_parse(g->url, &ru, &cause) == 0, "%s: %s", g->url, cause);
	assert_str_or_null(ru.host, g->host, g->url);
	ck_assert_int_eq(ru.port, g->port);
	assert_str_or_null(ru.path, g->path, g->url);
	assert_str_or_null(ru.username, g->username, g->url);
	assert_str_or_null(ru.password, g->password, g->url);
	ck_assert_int_eq(ru.db, g->db);
	described = redis_url_describe(&ru);
	ck_assert_str_eq(described, g->described);
	if (g->password != NULL)
		ck_assert_ptr_null(strstr(described, g->password));
	free(described);
	redis_url_free(&ru);
	ck_assert_ptr_null(ru.host);
}
END_TEST

/* ---- URLs that do not --------------------------------------------------------------- */

static const struct bad_url {
	const char *url;
	const char *error; /* the whole message */
} bad_urls[] = {
	{ "rediss://host", "rediss://host: rediss:// (TLS) is not supported by this build "
	  "(hiredis 0.14 has no TLS)" },
	{ "rediss://:" PW "@host:6380", "rediss://:***@host:6380: rediss:// (TLS) is not "
	  "supported by this build (hiredis 0.14 has no TLS)" },
	{ "http://host", "http://host: unsupported scheme (use redis:// or unix://)" },
	{ "http://u:" PW "@host", "http://u:***@host: unsupported scheme (use redis:// or "
	  "unix://)" },
	{ "localhost:6379", "localhost:6379: not a Redis URL (expected redis://host:port/db "
	  "or unix:///path/to.sock)" },
	{ "redis:/:" PW "@host", "***@host: not a Redis URL (expected "
	  "redis://host:port/db or unix:///path/to.sock)" },
	{ "", ": not a Redis URL (expected redis://host:port/db or unix:///path/to.sock)" },
	{ "redis://host:0", "redis://host:0: the port must be a number from 1 to 65535" },
	{ "redis://:" PW "@host:65536", "redis://:***@host:65536: the port must be a number "
	  "from 1 to 65535" },
	{ "redis://host:-1", "redis://host:-1: the port must be a number from 1 to 65535" },
	{ "redis://host:+80", "redis://host:+80: the port must be a number from 1 to 65535" },
	{ "redis://host:80x", "redis://host:80x: the port must be a number from 1 to 65535" },
	{ "redis://host:", "redis://host:: the port must be a number from 1 to 65535" },
	{ "redis://host: 80", "redis://host: 80: the port must be a number from 1 to 65535" },
	{ "redis://host:99999999999999999999", "redis://host:99999999999999999999: the port "
	  "must be a number from 1 to 65535" },
	{ "redis://host:1:2", "redis://host:1:2: the port must be a number from 1 to 65535" },
	{ "redis://u:" PW "@host/abc", "redis://u:***@host/abc: the database must be a number "
	  "from 0 to 2147483647" },
	{ "redis://host/-1", "redis://host/-1: the database must be a number from 0 to "
	  "2147483647" },
	{ "redis://host/2147483648", "redis://host/2147483648: the database must be a number "
	  "from 0 to 2147483647" },
	{ "redis://host/1/2", "redis://host/1/2: the database must be a number from 0 to "
	  "2147483647" },
	{ "redis://host/1 ", "redis://host/1 : the database must be a number from 0 to "
	  "2147483647" },
	{ "redis://host/1#top", "redis://host/1#top: unexpected '#' fragment" },
	{ "redis://host?foo=1", "redis://host?foo=1: unknown query parameter (use db, "
	  "username or password)" },
	{ "redis://host?db", "redis://host?db: query parameters must be name=value" },
	{ "redis://host?db=", "redis://host?db=: the database must be a number from 0 to "
	  "2147483647" },
	{ "redis://host/1?db=2", "redis://host/1?db=2: the database is given twice" },
	{ "redis://:" PW "@host?password=" PW, "redis://:***@host?password=***: the password "
	  "is given twice" },
	{ "redis://ho st", "redis://ho st: invalid host name" },
	{ "redis://ho$t:1", "redis://ho$t:1: invalid host name" },
	{ "redis://[::1", "redis://[::1: missing ']' after the IPv6 address" },
	{ "redis://[::1]x", "redis://[::1]x: unexpected text after the IPv6 address" },
	{ "redis://[]", "redis://[]: invalid IPv6 address" },
	{ "redis://[zz::1]", "redis://[zz::1]: invalid IPv6 address" },
	{ "redis://[::1]:0", "redis://[::1]:0: the port must be a number from 1 to 65535" },
	{ "redis://:bad%zz" PW "@host", "redis://:***@host: bad percent-escape in the "
	  "password" },
	{ "redis://:" PW "%00@host", "redis://:***@host: bad percent-escape in the password" },
	{ "redis://b%g:" PW "@host", "redis://b%g:***@host: bad percent-escape in the user "
	  "name" },
	{ "redis://host?password=%zz", "redis://host?password=***: bad percent-escape in a "
	  "query parameter" },
	{ "unix://", "unix://: expected an absolute socket path: unix:///path/to/redis.sock" },
	{ "unix:///", "unix:///: expected an absolute socket path: unix:///path/to/redis.sock" },
	{ "unix://relative.sock", "unix://relative.sock: expected an absolute socket path: "
	  "unix:///path/to/redis.sock" },
	{ "unix://:" PW "@relative.sock", "unix://:***@relative.sock: expected an absolute "
	  "socket path: unix:///path/to/redis.sock" },
	{ "unix:///tmp/r.sock?db=x", "unix:///tmp/r.sock?db=x: the database must be a number "
	  "from 0 to 2147483647" },
	{ "unix:///tmp/r.sock?timeout=1", "unix:///tmp/r.sock?timeout=1: unknown query "
	  "parameter (use db, username or password)" },
	{ "unix:///xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.sock", NULL },
};

START_TEST(test_bad_url)
{
	const struct bad_url *b = &bad_urls[_i];
	struct redis_url ru;
	char *cause = NULL;

	ck_assert_msg(redis_url_parse(b->url, &ru, &cause) == -1, "%s: accepted", b->url);
	ck_assert_ptr_nonnull(cause);
	if (b->error != NULL)
		ck_assert_str_eq(cause, b->error);
	else
		ck_assert_ptr_nonnull(strstr(cause, "the socket path is too long"));
	ck_assert_msg(strstr(cause, PW) == NULL, "password in \"%s\"", cause);
	ck_assert_ptr_null(ru.host);
	ck_assert_ptr_null(ru.password);
	free(cause);
}
END_TEST

/* ---- redaction ------------------------------------------------------------------------ */

START_TEST(test_redact)
{
	static const struct { const char *url, *want; } cases[] = {
		{ "redis://:pw@h", "redis://:***@h" },
		{ "redis://u:pw@h:1/2", "redis://u:***@h:1/2" },
		{ "redis://u@h", "redis://u@h" },
		{ "redis://h", "redis://h" },
		{ "redis://u:p@w@h", "redis://u:***@h" },
		{ "redis://u:p/w@h/1", "redis://u:***@h/1" },
		{ "redis://h/0?password=pw&db=1", "redis://h/0?password=***&db=1" },
		{ "redis://h/0?db=1&password=pw", "redis://h/0?db=1&password=***" },
		{ "nonsense:pw@h", "***@h" },
		{ "", "" },
	};
	size_t i;
	char *got;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		got = redis_url_redact(cases[i].url);
		ck_assert_str_eq(got, cases[i].want);
		free(got);
	}
}
END_TEST

START_TEST(test_redact_text)
{
	static const struct { const char *text, *want; } cases[] = {
		{ "", "" },
		{ "no url here", "no url here" },
		{ "redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0" },
		{ "\"amqp://app:s3cr:et@rabbit/vh\"", "\"amqp://app:***@rabbit/vh\"" },
		{ "amqps://user@host/ x://a:b@c", "amqps://user@host/ x://a:***@c" },
		{ "[\"redis://u:p1@h\",\"redis://u:@h\"]", "[\"redis://u:***@h\",\"redis://u:***@h\"]" },
		{ "redis://u:pw@h redis://u:longer@h", "redis://u:***@h redis://u:***@h" },
		{ "redis://u:p@ss@h/0", "redis://u:***@h/0" },
		{ "redis://host:6379/0", "redis://host:6379/0" },
		{ "got \"redis://h/0?password=pw\"", "got \"redis://h/0?password=***\"" },
		{ ":///://", ":///://" },
	};
	size_t i;
	char *got;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		got = redis_url_redact_text(cases[i].text);
		ck_assert_str_eq(got, cases[i].want);
		free(got);
	}
}
END_TEST

/* ---- the sink's options --------------------------------------------------------------- */

/* Read a redis sink's options from JSON; its target, or NULL with *cause. */
static char *
configure(const char *json, char **cause)
{
	cJSON *obj = cJSON_Parse(json);
	char *target = NULL;
	void *opts;

	ck_assert_msg(obj != NULL, "bad test JSON: %s", json);
	*cause = NULL;
	opts = sink_type_read(&sink_redis_type, obj, check_sink_name, cause);
	if (opts != NULL) {
		target = sink_redis_type.describe(opts);
		sink_type_free(&sink_redis_type, opts);
		ck_assert_ptr_null(*cause);
	} else {
		ck_assert_ptr_nonnull(*cause);
	}
	cJSON_Delete(obj);
	return target;
}

START_TEST(test_sink_options)
{
	static const struct { const char *json, *target; } cases[] = {
		{ "{}", "redis://127.0.0.1:6379/0 channel liquid" },
		{ "{\"host\":\"cache\",\"port\":\"6380\",\"db\":2}",
		  "redis://cache:6380/2 channel liquid" },
		{ "{\"host\":\"cache\",\"port\":6380,\"username\":\"u\",\"password\":\"" PW "\"}",
		  "redis://u:***@cache:6380/0 channel liquid" },
		{ "{\"password\":\"" PW "\",\"username\":\"\"}",
		  "redis://:***@127.0.0.1:6379/0 channel liquid" },
		{ "{\"url\":\"redis://:" PW "@h:7/1\",\"host\":\"other\",\"port\":1,\"db\":3}",
		  "redis://:***@h:7/1 channel liquid" },
		{ "{\"url\":\"unix:///tmp/r.sock?db=2\"}", "unix:///tmp/r.sock?db=2 channel liquid" },
		{ "{\"channel-name\":\"events.{name}\"}",
		  "redis://127.0.0.1:6379/0 channel events.{name}" },
		{ "{\"channel\":\"ev\"}", "redis://127.0.0.1:6379/0 channel ev" },
		{ "{\"channel\":\"ev\",\"channel-name\":\"ev\"}",
		  "redis://127.0.0.1:6379/0 channel ev" },
		{ "{\"key-prefix\":\"app:\",\"require-subscribers\":true}",
		  "redis://127.0.0.1:6379/0 channel liquid (subscribers required)" },
		{ "{\"mode\":\"stream\",\"key-prefix\":\"app:\"}",
		  "redis://127.0.0.1:6379/0 stream app:liquid" },
		{ "{\"mode\":\"stream\",\"stream-maxlen\":1000,\"channel-name\":\"s.{name}\"}",
		  "redis://127.0.0.1:6379/0 stream s.{name} maxlen ~1000" },
		{ "{\"mode\":\"pubsub\",\"timeout-ms\":50,\"connect-timeout-ms\":\"20\"}",
		  "redis://127.0.0.1:6379/0 channel liquid" },
	};
	size_t i;
	char *cause, *target;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		target = configure(cases[i].json, &cause);
		ck_assert_msg(target != NULL, "%s: %s", cases[i].json, cause);
		ck_assert_str_eq(target, cases[i].target);
		free(target);
	}
}
END_TEST

START_TEST(test_sink_bad_options)
{
	static const struct { const char *json, *error; } cases[] = {
		{ "{\"port\":0}", "redis.port: 0 is out of range (1 to 65535)" },
		{ "{\"port\":\"http\"}", "redis.port: expected an integer, got \"http\"" },
		{ "{\"db\":-1}", "redis.db: -1 is out of range (0 to 2147483647)" },
		{ "{\"host\":\"\"}", "redis.host: must not be empty" },
		{ "{\"host\":5}", "redis.host: expected a string, got 5" },
		{ "{\"password\":12345678}", "redis.password: expected a string" },
		{ "{\"url\":[\"redis://:" PW "@h\"]}", "redis.url: expected a string" },
		{ "{\"url\":\"redis://:" PW "@h:0\"}",
		  "redis.url: redis://:***@h:0: the port must be a number from 1 to 65535" },
		{ "{\"url\":\"rediss://h\"}", "redis.url: rediss://h: rediss:// (TLS) is not "
		  "supported by this build (hiredis 0.14 has no TLS)" },
		{ "{\"username\":\"u\"}", "redis: a user name (u) is given without a password" },
		{ "{\"url\":\"redis://u@h\"}",
		  "redis: a user name (u) is given without a password" },
		{ "{\"mode\":\"list\"}", "redis.mode: expected \"pubsub\" or \"stream\", got "
		  "\"list\"" },
		{ "{\"channel\":\"\"}", "redis.channel-name: must be 1 to 2048 characters, key "
		  "prefix included" },
		{ "{\"channel\":\"a\",\"channel-name\":\"b\"}",
		  "redis.channel and redis.channel-name differ: give one of them" },
		{ "{\"stream-maxlen\":-5}", "redis.stream-maxlen: -5 is out of range (0 to "
		  "4611686018427387903)" },
		{ "{\"require-subscribers\":\"maybe\"}",
		  "redis.require-subscribers: expected true or false, got \"maybe\"" },
		{ "{\"timeout-ms\":0}", "redis.timeout-ms: 0 is out of range (1 to 3600000)" },
		{ "{\"connect-timeout-ms\":1.5}",
		  "redis.connect-timeout-ms: expected an integer, got 1.5" },
	};
	size_t i;
	char *cause, *target;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		target = configure(cases[i].json, &cause);
		ck_assert_msg(target == NULL, "%s: accepted", cases[i].json);
		ck_assert_str_eq(cause, cases[i].error);
		ck_assert_ptr_null(strstr(cause, PW));
		ck_assert_ptr_null(strstr(cause, "12345678"));
		free(cause);
	}
}
END_TEST

/* ---- without a server ------------------------------------------------------------------ */

/* A loopback port nobody listens on (bound, then released). */
static int
closed_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

START_TEST(test_sink_unreachable)
{
	struct sink *sk;
	struct sink_message msgs[2];
	char *json, *cause = NULL, *want;
	cJSON *obj;
	void *opts;
	int port = closed_port();
	size_t i;

	json = xasprintf("{\"url\":\"redis://:" PW "@127.0.0.1:%d\"}", port);
	obj = cJSON_Parse(json);
	opts = sink_type_read(&sink_redis_type, obj, check_sink_name, &cause);
	ck_assert_ptr_nonnull(opts);
	sk = sink_new(&sink_redis_ops, check_sink_name, opts);
	sink_type_free(&sink_redis_type, opts);

	/* Publishing before connecting leaves everything unsent. */
	memset(msgs, 0, sizeof msgs);
	for (i = 0; i < 2; i++) {
		msgs[i].name = "user.login";
		msgs[i].envelope = "{}";
		msgs[i].envelope_len = 2;
		msgs[i].status = SINK_DELIVERED;
	}
	ck_assert_int_eq(sk->ops->publish(sk, msgs, 2, &cause), -1);
	want = xasprintf("redis://:***@127.0.0.1:%d/0: not connected", port);
	ck_assert_str_eq(cause, want);
	free(want);
	free(cause);
	cause = NULL;
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(msgs[i].status, SINK_UNSENT);

	ck_assert_int_eq(sink_connect(sk, &cause), -1);
	ck_assert_int_eq(sk->connected, 0);
	/* Just the reason: the relay's line says "cannot connect" already. */
	want = xasprintf("redis://:***@127.0.0.1:%d/0: Connection refused", port);
	ck_assert_str_eq(cause, want);
	free(want);
	free(cause);
	cause = NULL;
	ck_assert_int_eq(sk->ops->idle(sk, &cause), 0);
	sink_free(sk);
	cJSON_Delete(obj);
	free(json);
}
END_TEST

static Suite *
redis_url_suite(void)
{
	Suite *s = suite_create("redis_url");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_loop_test(tc, test_good_url, 0, sizeof good_urls / sizeof good_urls[0]);
	tcase_add_loop_test(tc, test_bad_url, 0, sizeof bad_urls / sizeof bad_urls[0]);
	tcase_add_test(tc, test_redact);
	tcase_add_test(tc, test_redact_text);
	suite_add_tcase(s, tc);

	tc = tcase_create("sink");
	tcase_add_test(tc, test_sink_options);
	tcase_add_test(tc, test_sink_bad_options);
	tcase_add_test(tc, test_sink_unreachable);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(redis_url_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
