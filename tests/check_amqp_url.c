/* check_amqp_url.c: every accepted form of an AMQP URL, and every malformed one. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "amqp_url.h"

static const struct {
	const char *url;
	int tls;
	const char *host;
	int port;
	const char *user, *password, *vhost;
	int heartbeat, timeout_ms, channel_max, frame_max;
} good[] = {
	{ "amqp://localhost", 0, "localhost", 5672, "guest", "guest", "/", 60, 10000, 0, 131072 },
	{ "amqp://localhost:5672", 0, "localhost", 5672, "guest", "guest", "/", 60, 10000, 0, 131072 },
	{ "amqp://localhost/", 0, "localhost", 5672, "guest", "guest", "/", 60, 10000, 0, 131072 },
	{ "amqps://rabbit", 1, "rabbit", 5671, "guest", "guest", "/", 60, 10000, 0, 131072 },
	{ "amqp://u:p@h:1234/vh", 0, "h", 1234, "u", "p", "vh", 60, 10000, 0, 131072 },
	{ "amqp://u@h", 0, "h", 5672, "u", "guest", "/", 60, 10000, 0, 131072 },
	{ "amqp://u:@h", 0, "h", 5672, "u", "", "/", 60, 10000, 0, 131072 },
	{ "amqp://user%40x:p%3Aw%2F@h/%2f", 0, "h", 5672, "user@x", "p:w/", "/", 60, 10000, 0,
	  131072 },
	{ "amqp://u:p@ss@w@h/v%20h", 0, "h", 5672, "u", "p@ss@w", "v h", 60, 10000, 0, 131072 },
	{ "amqp://[::1]:5673/x", 0, "::1", 5673, "guest", "guest", "x", 60, 10000, 0, 131072 },
	{ "amqp://u:p@localhost:5672?heartbeat=30&connection_timeout=2500", 0, "localhost", 5672,
	  "u", "p", "/", 30, 2500, 0, 131072 },
	{ "amqp://h/v?channel_max=10&frame_max=4096&heartbeat=0", 0, "h", 5672, "guest", "guest",
	  "v", 0, 10000, 10, 4096 },
	{ "amqp://h?frameMax=8192&channelMax=5&locale=en_US", 0, "h", 5672, "guest", "guest", "/",
	  60, 10000, 5, 8192 },
};

START_TEST(test_good)
{
	struct amqp_url au;
	char *cause = NULL;

	ck_assert_msg(amqp_url_parse(good[_i].url, &au, &cause) == 0, "%s: %s", good[_i].url,
	    cause);
	ck_assert_int_eq(au.tls, good[_i].tls);
	ck_assert_str_eq(au.host, good[_i].host);
	ck_assert_int_eq(au.port, good[_i].port);
	ck_assert_str_eq(au.user, good[_i].user);
	ck_assert_str_eq(au.password, good[_i].password);
	ck_assert_str_eq(au.vhost, good[_i].vhost);
	ck_assert_int_eq(au.heartbeat, good[_i].heartbeat);
	ck_assert_int_eq(au.connection_timeout_ms, good[_i].timeout_ms);
	ck_assert_int_eq(au.channel_max, good[_i].channel_max);
	ck_assert_int_eq(au.frame_max, good[_i].frame_max);
	amqp_url_free(&au);
}
END_TEST

static const struct {
	const char *url, *why;
} bad[] = {
	{ "http://h", "bad AMQP URL: it must start with amqp:// or amqps://" },
	{ "localhost:5672", "bad AMQP URL: it must start with amqp:// or amqps://" },
	{ "amqp://", "bad AMQP URL: no host" },
	{ "amqp://u:secret@", "bad AMQP URL: no host" },
	{ "amqp://h:0", "bad AMQP URL: the port must be a number from 1 to 65535" },
	{ "amqp://h:65536", "bad AMQP URL: the port must be a number from 1 to 65535" },
	{ "amqp://h:5x", "bad AMQP URL: the port must be a number from 1 to 65535" },
	{ "amqp://h:", "bad AMQP URL: the port must be a number from 1 to 65535" },
	{ "amqp://[::1", "bad AMQP URL: unterminated or empty IPv6 address" },
	{ "amqp://h o", "bad AMQP URL: bad character in the host name" },
	{ "amqp://:secret@h", "bad AMQP URL: bad or empty user name" },
	{ "amqp://u:sec%zzret@h", "bad AMQP URL: bad percent-escape in the password" },
	{ "amqp://h/v%zz", "bad AMQP URL: bad percent-escape in the vhost" },
	{ "amqp://h#x", "bad AMQP URL: a fragment (#) has no meaning here" },
	{ "amqp://h?heartbeat=x", "bad AMQP URL: heartbeat must be a number from 0 to 65535" },
	{ "amqp://h?heartbeat", "bad AMQP URL: heartbeat must be a number from 0 to 65535" },
	{ "amqp://h?heartbeat=-1", "bad AMQP URL: heartbeat must be a number from 0 to 65535" },
	{ "amqp://h?connection_timeout=0",
	  "bad AMQP URL: connection_timeout must be a number from 1 to 86400000" },
	{ "amqp://h?frame_max=100", "bad AMQP URL: frame_max must be a number from 4096 to "
	  "2147483647" },
	{ "amqp://u:secret@h?password=x", "bad AMQP URL: unknown parameter 'password' (use "
	  "heartbeat, connection_timeout, channel_max or frame_max)" },
};

START_TEST(test_bad)
{
	struct amqp_url au;
	char *cause = NULL;

	ck_assert_msg(amqp_url_parse(bad[_i].url, &au, &cause) == -1, "%s parsed", bad[_i].url);
	ck_assert_str_eq(cause, bad[_i].why);
	ck_assert_ptr_null(strstr(cause, "secret"));
	free(cause);
	amqp_url_free(&au);
}
END_TEST

START_TEST(test_describe)
{
	static const struct { const char *url, *desc; } cases[] = {
		{ "amqp://u:secret@h:1/v", "amqp://u:***@h:1/v" },
		{ "amqps://h", "amqps://guest:***@h:5671/" },
		{ "amqp://[::1]", "amqp://guest:***@[::1]:5672/" },
	};
	struct amqp_url au;
	char *cause = NULL, *desc;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ck_assert_int_eq(amqp_url_parse(cases[i].url, &au, &cause), 0);
		desc = amqp_url_describe(&au);
		ck_assert_str_eq(desc, cases[i].desc);
		free(desc);
		amqp_url_free(&au);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("amqp_url");
	TCase *tc = tcase_create("amqp_url");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_good, 0, sizeof good / sizeof good[0]);
	tcase_add_loop_test(tc, test_bad, 0, sizeof bad / sizeof bad[0]);
	tcase_add_test(tc, test_describe);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
