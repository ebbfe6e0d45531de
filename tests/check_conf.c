/*
 * check_conf.c: unit tests for the relay's configuration loader (conf_load). The pieces it
 * stands on have their own programs: check_util (numbers, durations, templates, backoff)
 * and check_envelope.
 *
 * Configurations are written to files in a private temporary directory; error messages are
 * compared whole, with the file's path shown as FILE. Warnings are captured by pointing the
 * log at a file (log_open) and reading it back.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "unit_main.h"
#include "util.h"

static char check_dir[256];
static int check_files;

/* ---- helpers ------------------------------------------------------------------------- */

static char *
write_conf(const char *text)
{
	char *path = xasprintf("%s/conf-%d.json", check_dir, ++check_files);
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

/* cause with a leading path replaced by "FILE", so expectations read like the output. */
static char *
shown(const char *cause, const char *path)
{
	size_t n = path != NULL ? strlen(path) : 0;

	if (n > 0 && strncmp(cause, path, n) == 0)
		return xasprintf("FILE%s", cause + n);
	return xstrdup(cause);
}

/* Load text; the test fails unless conf_load succeeds. */
static void
load_ok(struct conf *cf, const char *text, const cJSON *overrides)
{
	char *path = write_conf(text), *cause = NULL;
	int rc = conf_load(cf, path, overrides, &cause);

	ck_assert_msg(rc == 0, "conf_load failed: %s", cause != NULL ? cause : "(no cause)");
	free(path);
}

/* Load text expecting failure; returns the message (path shown as FILE), malloc'd. */
static char *
load_error(const char *text, const cJSON *overrides)
{
	struct conf cf;
	char *path = write_conf(text), *cause = NULL, *msg;
	int rc = conf_load(&cf, path, overrides, &cause);

	ck_assert_int_eq(rc, -1);
	ck_assert_ptr_nonnull(cause);
	ck_assert_ptr_null(strchr(cause, '\n'));
	/* conf_load frees what it built on error. */
	ck_assert_uint_eq(cf.nsinks, 0);
	ck_assert_ptr_null(cf.sinks);
	ck_assert_ptr_null(cf.database);
	msg = shown(cause, path);
	free(cause);
	free(path);
	return msg;
}

#define ck_conf_error(text, want) do {                                            \
	char *got_ = load_error((text), NULL);                                        \
	ck_assert_str_eq(got_, (want));                                               \
	free(got_);                                                                   \
} while (0)

static char log_path[300];

static void
capture_log(void)
{
	snprintf(log_path, sizeof log_path, "%s/log-%d-%d", check_dir, (int)getpid(),
	    ++check_files);
	ck_assert_int_eq(log_open(log_path), 0);
}

/* Everything logged since capture_log, malloc'd. */
static char *
captured_log(void)
{
	FILE *f = fopen(log_path, "r");
	char *buf = xcalloc(1, 65536);

	ck_assert_ptr_nonnull(f);
	(void)!fread(buf, 1, 65535, f);
	fclose(f);
	return buf;
}

static cJSON *
overrides(const char *json)
{
	cJSON *o = cJSON_Parse(json);

	ck_assert_ptr_nonnull(o);
	return o;
}

/* ---- defaults and keys ----------------------------------------------------------------- */

START_TEST(test_defaults)
{
	struct conf cf;

	capture_log();
	load_ok(&cf, "{\"outbox.database\": \"app.db\"}", NULL);
	ck_assert_str_eq(cf.database, "app.db");
	ck_assert_int_eq(cf.batch_size, 512);
	ck_assert_int_eq(cf.poll_interval_ms, 1000);
	ck_assert_int_eq(cf.max_attempts, 10);
	ck_assert_int_eq(cf.backoff_initial_ms, 1000);
	ck_assert_int_eq(cf.backoff_max_ms, 300000);
	ck_assert_double_eq(cf.backoff_multiplier, 2.0);
	ck_assert_int_eq(cf.retention_ms, 0);
	ck_assert_int_eq(cf.log_level, LOG_LEVEL_INFO);
	/* No sink configured: one stdout sink, every event, no prefix. */
	ck_assert_uint_eq(cf.nsinks, 1);
	ck_assert_str_eq(cf.sinks[0].name, "stdout");
	ck_assert_str_eq(cf.sinks[0].type->name, "stdout");
	ck_assert_str_eq(cf.sinks[0].where, "default");
	ck_assert_str_eq(cf.sinks[0].target, "standard output");
	ck_assert_ptr_null(cf.sinks[0].filter);
	ck_assert_str_eq(cf.sinks[0].prefix, "");
	conf_free(&cf);
	{
		char *log = captured_log();
		ck_assert_str_eq(log, "");
		free(log);
	}
}
END_TEST

START_TEST(test_no_file)
{
	cJSON *o = overrides("{\"outbox.database\": \"cli.db\"}");
	struct conf cf;
	char *cause = NULL;

	ck_assert_int_eq(conf_load(&cf, NULL, o, &cause), 0);
	ck_assert_str_eq(cf.database, "cli.db");
	ck_assert_uint_eq(cf.nsinks, 1);
	ck_assert_str_eq(cf.sinks[0].name, "stdout");
	conf_free(&cf);
	/* Without a file the message has no path in front. */
	ck_assert_int_eq(conf_load(&cf, NULL, NULL, &cause), -1);
	ck_assert_str_eq(cause, "no database: set \"outbox.database\" or use --db PATH");
	free(cause);
	cJSON_Delete(o);
}
END_TEST

START_TEST(test_every_key)
{
	struct conf cf;

	capture_log();
	load_ok(&cf,
	    "{\n"
	    "  \"outbox.database\": \"/var/lib/app/app.db\",\n"
	    "  \"outbox.retention\": \"7d\",\n"
	    "  \"relay.batch-size\": 64,\n"
	    "  \"relay.poll-interval-ms\": 250,\n"
	    "  \"relay.max-attempts\": 3,\n"
	    "  \"relay.backoff-initial-ms\": 20,\n"
	    "  \"relay.backoff-max-ms\": 200,\n"
	    "  \"relay.backoff-multiplier\": 1.5,\n"
	    "  \"relay.log-level\": \"debug\",\n"
	    "  \"privilege.can-use-push-events\": true,\n"
	    "  \"privilege.can-use-cache\": true,\n"
	    "  \"privilege.can-use-rabbitmq\": false,\n"
	    "  \"system.queue-adapter\": \"stdout\",\n"
	    "  \"system.push-events\": [\"user.*\", \"order.created\"],\n"
	    "  \"system.push-events.prefix\": \"myapp.\"\n"
	    "}\n", NULL);
	ck_assert_str_eq(cf.database, "/var/lib/app/app.db");
	ck_assert_int_eq(cf.retention_ms, 7LL * 86400000);
	ck_assert_int_eq(cf.batch_size, 64);
	ck_assert_int_eq(cf.poll_interval_ms, 250);
	ck_assert_int_eq(cf.max_attempts, 3);
	ck_assert_int_eq(cf.backoff_initial_ms, 20);
	ck_assert_int_eq(cf.backoff_max_ms, 200);
	ck_assert_double_eq(cf.backoff_multiplier, 1.5);
	ck_assert_int_eq(cf.log_level, LOG_LEVEL_DEBUG);
	ck_assert_uint_eq(cf.nsinks, 1);
	ck_assert_str_eq(cf.sinks[0].name, "stdout");
	ck_assert_str_eq(cf.sinks[0].where, "stdout");
	/* The filter is kept as compact JSON text, whatever the file's spacing. */
	ck_assert_str_eq(cf.sinks[0].filter, "[\"user.*\",\"order.created\"]");
	ck_assert_str_eq(cf.sinks[0].prefix, "myapp.");
	conf_free(&cf);
	{
		char *log = captured_log();
		ck_assert_str_eq(log, "");
		free(log);
	}
}
END_TEST

START_TEST(test_numbers_as_strings)
{
	struct conf cf;

	load_ok(&cf,
	    "{\"outbox.database\": \"a.db\", \"relay.batch-size\": \"6379\","
	    " \"relay.poll-interval-ms\": \"5\", \"relay.max-attempts\": \"7\","
	    " \"relay.backoff-initial-ms\": \"10\", \"relay.backoff-max-ms\": \"100\","
	    " \"relay.backoff-multiplier\": \"3\","
	    " \"privilege.can-use-push-events\": \"true\"}", NULL);
	ck_assert_int_eq(cf.batch_size, 6379);
	ck_assert_int_eq(cf.poll_interval_ms, 5);
	ck_assert_int_eq(cf.max_attempts, 7);
	ck_assert_int_eq(cf.backoff_initial_ms, 10);
	ck_assert_int_eq(cf.backoff_max_ms, 100);
	ck_assert_double_eq(cf.backoff_multiplier, 3.0);
	conf_free(&cf);
	/* An integral number written with an exponent is an integer. */
	load_ok(&cf, "{\"outbox.database\": \"a.db\", \"relay.batch-size\": 1e3}", NULL);
	ck_assert_int_eq(cf.batch_size, 1000);
	conf_free(&cf);
}
END_TEST

START_TEST(test_retention_units)
{
	static const struct { const char *text; int64_t ms; } cases[] = {
		{ "250ms", 250 }, { "1s", 1000 }, { "90", 90000 }, { "10m", 600000 },
		{ "2h", 7200000 }, { "7d", 604800000 }, { "2w", 1209600000 },
	};
	struct conf cf;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *text = xasprintf("{\"outbox.database\": \"a.db\", \"outbox.retention\": "
		    "\"%s\"}", cases[i].text);
		load_ok(&cf, text, NULL);
		ck_assert_int_eq(cf.retention_ms, cases[i].ms);
		conf_free(&cf);
		free(text);
	}
	/* A bare JSON number is seconds, like a bare number in a string. */
	load_ok(&cf, "{\"outbox.database\": \"a.db\", \"outbox.retention\": 3600}", NULL);
	ck_assert_int_eq(cf.retention_ms, 3600000);
	conf_free(&cf);
}
END_TEST

START_TEST(test_log_levels)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	struct conf cf;
	int i;

	for (i = 0; i < 4; i++) {
		char *text = xasprintf("{\"outbox.database\": \"a.db\", \"relay.log-level\": "
		    "\"%s\"}", names[i]);
		load_ok(&cf, text, NULL);
		ck_assert_int_eq(cf.log_level, i);
		conf_free(&cf);
		free(text);
	}
}
END_TEST

/* ---- malformed files -------------------------------------------------------------------- */

START_TEST(test_invalid_json)
{
	/* The line is quoted, "-->" just before the character at fault. */
	ck_conf_error("{\n  \"outbox.database\": \"a.db\",\n  \"relay.batch-size\": ,\n}\n",
	    "FILE:3:23: invalid JSON at ',': '\"relay.batch-size\": -->,'");
	ck_conf_error("{\"a\": }", "FILE:1:7: invalid JSON at '}': '{\"a\": -->}'");
	ck_conf_error("{\"outbox.database\": \"a.db\"} x",
	    "FILE:1:29: invalid JSON at 'x': '{\"outbox.database\": \"a.db\"} -->x'");
	ck_conf_error("{a: 1}", "FILE:1:2: invalid JSON at 'a': '{-->a: 1}'");
	ck_conf_error("{\n\"outbox.database\": \"a.db\"", "FILE:2:26: invalid JSON: unexpected "
	    "end of file");
	ck_conf_error("", "FILE:1:1: invalid JSON: unexpected end of file");
	/* A trailing comma is named, and the comma pointed at, not what follows it. */
	ck_conf_error("{\n  \"outbox.database\": \"a.db\",\n  \"relay.batch-size\": 5,\n}\n",
	    "FILE:3:24: invalid JSON: a trailing comma, which JSON does not allow: "
	    "'\"relay.batch-size\": 5-->,'");
	ck_conf_error("{\"a\": 1,}", "FILE:1:8: invalid JSON: a trailing comma, which JSON does "
	    "not allow: '{\"a\": 1-->,}'");
	ck_conf_error("{\"a\": [1, 2, ]}", "FILE:1:12: invalid JSON: a trailing comma, which "
	    "JSON does not allow: '{\"a\": [1, 2-->, ]}'");
	/* The quote stops at the end of the line and is cut around the fault. */
	ck_conf_error("{\"a\": 1,\n\"b\": nope nope nope nope nope nope nope nope\n}",
	    "FILE:2:6: invalid JSON at 'n': '\"b\": -->nope nope nope nope nope no...'");
	ck_conf_error("{\"a\": \"a long value, long enough to be cut before the fault\" x}",
	    "FILE:1:62: invalid JSON at 'x': '...g enough to be cut before the fault\" -->x}'");
}
END_TEST

START_TEST(test_unreadable)
{
	struct conf cf;
	char *cause = NULL, *missing = xasprintf("%s/no-such.json", check_dir), *msg;

	ck_assert_int_eq(conf_load(&cf, missing, NULL, &cause), -1);
	msg = shown(cause, missing);
	ck_assert_str_eq(msg, "FILE: cannot open: No such file or directory");
	free(msg);
	free(cause);
	ck_assert_int_eq(conf_load(&cf, check_dir, NULL, &cause), -1);
	msg = shown(cause, check_dir);
	ck_assert_str_eq(msg, "FILE: cannot read: Is a directory");
	free(msg);
	free(cause);
	free(missing);
}
END_TEST

START_TEST(test_nul_byte)
{
	char *path = xasprintf("%s/nul.json", check_dir), *cause = NULL, *msg;
	FILE *f = fopen(path, "w");
	struct conf cf;

	ck_assert_ptr_nonnull(f);
	fwrite("{}\0{}", 1, 5, f);
	fclose(f);
	ck_assert_int_eq(conf_load(&cf, path, NULL, &cause), -1);
	msg = shown(cause, path);
	ck_assert_str_eq(msg, "FILE: not a text file (contains a NUL byte)");
	free(msg);
	free(cause);
	free(path);
}
END_TEST

START_TEST(test_not_an_object)
{
	ck_conf_error("[1, 2]", "FILE: the configuration must be a JSON object");
	ck_conf_error("\"outbox.database\"", "FILE: the configuration must be a JSON object");
	ck_conf_error("null", "FILE: the configuration must be a JSON object");
	ck_conf_error("42", "FILE: the configuration must be a JSON object");
}
END_TEST

START_TEST(test_wrong_types)
{
	ck_conf_error("{\"outbox.database\": 5}",
	    "FILE: outbox.database: expected a string, got 5");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.batch-size\": \"abc\"}",
	    "FILE: relay.batch-size: expected an integer, got \"abc\"");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.batch-size\": \"64 \"}",
	    "FILE: relay.batch-size: expected an integer, got \"64 \"");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.batch-size\": 2.5}",
	    "FILE: relay.batch-size: expected an integer, got 2.5");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.max-attempts\": true}",
	    "FILE: relay.max-attempts: expected an integer, got true");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.poll-interval-ms\": [1]}",
	    "FILE: relay.poll-interval-ms: expected an integer, got [1]");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.backoff-multiplier\": \"x\"}",
	    "FILE: relay.backoff-multiplier: expected a number from 1 to 100, got \"x\"");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.backoff-multiplier\": \"2x\"}",
	    "FILE: relay.backoff-multiplier: expected a number from 1 to 100, got \"2x\"");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"outbox.retention\": 7.5}",
	    "FILE: outbox.retention: expected a string, got 7.5");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"outbox.retention\": true}",
	    "FILE: outbox.retention: expected a string, got true");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.log-level\": 2}",
	    "FILE: relay.log-level: expected \"error\", \"warn\", \"info\" or \"debug\", "
	    "got 2");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"system.queue-adapter\": 1}",
	    "FILE: system.queue-adapter: expected a string, got 1");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"system.push-events\": \"user.login\"}",
	    "FILE: system.push-events: expected an array of event names or globs, got "
	    "\"user.login\"");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"system.push-events\": [\"a\", 1]}",
	    "FILE: system.push-events: expected an array of non-empty strings, got [\"a\",1]");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"system.push-events\": [\"\"]}",
	    "FILE: system.push-events: expected an array of non-empty strings, got [\"\"]");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"system.push-events.prefix\": 1}",
	    "FILE: system.push-events.prefix: expected a string, got 1");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"privilege.can-use-push-events\": "
	    "\"maybe\"}",
	    "FILE: privilege.can-use-push-events: expected true or false, got \"maybe\"");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"sinks\": []}",
	    "FILE: sinks: expected an object of named sinks, got []");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"sinks\": {\"a\": 1}}",
	    "FILE: sinks.a: expected an object, got 1");
	/* A URL where an object was meant is shown without its password. */
	ck_conf_error("{\"outbox.database\": \"a.db\", \"sinks\": {\"cache\": "
	    "\"redis://:hunter2@cache:6379/0\"}}",
	    "FILE: sinks.cache: expected an object, got \"redis://:***@cache:6379/0\"");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"sinks\": {\"a\": {\"type\": 3}}}",
	    "FILE: sinks.a.type: expected a string, got 3");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"sinks\": {\"a\": {\"type\": \"stdout\","
	    " \"events\": \"x\"}}}",
	    "FILE: sinks.a.events: expected an array of event names or globs, got \"x\"");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"sinks\": {\"a\": {\"type\": \"stdout\","
	    " \"prefix\": 1}}}", "FILE: sinks.a.prefix: expected a string, got 1");
}
END_TEST

START_TEST(test_out_of_range)
{
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.batch-size\": 0}",
	    "FILE: relay.batch-size: 0 is out of range (1 to 10000)");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.batch-size\": 10001}",
	    "FILE: relay.batch-size: 10001 is out of range (1 to 10000)");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.batch-size\": \"-1\"}",
	    "FILE: relay.batch-size: -1 is out of range (1 to 10000)");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.batch-size\": 1e20}",
	    "FILE: relay.batch-size: 1e+20 is out of range (1 to 10000)");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.batch-size\": -1e300}",
	    "FILE: relay.batch-size: -1e+300 is out of range (1 to 10000)");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.batch-size\": "
	    "\"99999999999999999999\"}",
	    "FILE: relay.batch-size: 99999999999999999999 is out of range (1 to 10000)");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.poll-interval-ms\": 0}",
	    "FILE: relay.poll-interval-ms: 0 is out of range (1 to 3600000)");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.max-attempts\": 0}",
	    "FILE: relay.max-attempts: 0 is out of range (1 to 1000000)");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.backoff-initial-ms\": 0}",
	    "FILE: relay.backoff-initial-ms: 0 is out of range (1 to 86400000)");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.backoff-max-ms\": 86400001}",
	    "FILE: relay.backoff-max-ms: 86400001 is out of range (1 to 86400000)");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.backoff-initial-ms\": 500,"
	    " \"relay.backoff-max-ms\": 100}",
	    "FILE: relay.backoff-max-ms (100) is less than relay.backoff-initial-ms (500)");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.backoff-multiplier\": 0.5}",
	    "FILE: relay.backoff-multiplier: expected a number from 1 to 100, got 0.5");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.backoff-multiplier\": 101}",
	    "FILE: relay.backoff-multiplier: expected a number from 1 to 100, got 101");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"relay.log-level\": \"loud\"}",
	    "FILE: relay.log-level: expected \"error\", \"warn\", \"info\" or \"debug\", "
	    "got \"loud\"");
}
END_TEST

START_TEST(test_bad_durations)
{
	ck_conf_error("{\"outbox.database\": \"a.db\", \"outbox.retention\": \"7 days\"}",
	    "FILE: outbox.retention: unknown unit in duration \"7 days\" (use ms, s, m, h, d "
	    "or w)");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"outbox.retention\": \"\"}",
	    "FILE: outbox.retention: expected a duration such as 30s, 10m, 2h or 7d, got \"\"");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"outbox.retention\": \"-1d\"}",
	    "FILE: outbox.retention: expected a duration such as 30s, 10m, 2h or 7d, got "
	    "\"-1d\"");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"outbox.retention\": \"1.5h\"}",
	    "FILE: outbox.retention: unknown unit in duration \"1.5h\" (use ms, s, m, h, d or "
	    "w)");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"outbox.retention\": "
	    "\"99999999999999w\"}",
	    "FILE: outbox.retention: duration \"99999999999999w\" is too long");
}
END_TEST

START_TEST(test_adapters_and_sinks)
{
	ck_conf_error("{\"outbox.database\": \"a.db\", \"system.queue-adapter\": \"kafka\"}",
	    "FILE: system.queue-adapter: expected \"redis\", \"rabbitmq\", \"nats\", "
	    "\"mqtt\", \"http\" or \"stdout\", got \"kafka\"");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"sinks\": {\"k\": {\"type\": "
	    "\"kafka\"}}}",
	    "FILE: sinks.k: unknown sink type \"kafka\" (use stdout, redis, rabbitmq, nats, mqtt or http)");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"sinks\": {\"a\": {}}}",
	    "FILE: sinks.a: missing \"type\" (stdout, redis, rabbitmq, nats, mqtt or http)");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"sinks\": {\"bad name\": {\"type\": "
	    "\"stdout\"}}}",
	    "FILE: sinks.bad name: sink names are 1 to 64 letters, digits, '.', '_' or '-'");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"sinks\": {\"\": {\"type\": "
	    "\"stdout\"}}}",
	    "FILE: sinks.: sink names are 1 to 64 letters, digits, '.', '_' or '-'");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"sinks\": {\"x/y\": {\"type\": "
	    "\"stdout\"}}}",
	    "FILE: sinks.x/y: sink names are 1 to 64 letters, digits, '.', '_' or '-'");
	/* The adapter's sink is named after the adapter. */
	ck_conf_error("{\"outbox.database\": \"a.db\", \"system.queue-adapter\": \"stdout\","
	    " \"sinks\": {\"stdout\": {\"type\": \"stdout\"}}}",
	    "FILE: sinks.stdout: a sink named \"stdout\" is already configured (stdout)");
	/* JSON allows a repeated key; two sinks of one name are still one name. */
	ck_conf_error("{\"outbox.database\": \"a.db\", \"sinks\": {\"a\": {\"type\": \"stdout\"},"
	    " \"a\": {\"type\": \"stdout\"}}}",
	    "FILE: sinks.a: a sink named \"a\" is already configured (sinks.a)");
}
END_TEST

START_TEST(test_sink_name_lengths)
{
	char name[66], *text;
	struct conf cf;

	memset(name, 'n', 64);
	name[64] = '\0';
	text = xasprintf("{\"outbox.database\": \"a.db\", \"sinks\": {\"%s\": {\"type\": "
	    "\"stdout\"}, \"A-z_0.9\": {\"type\": \"stdout\"}}}", name);
	load_ok(&cf, text, NULL);
	ck_assert_uint_eq(cf.nsinks, 2);
	ck_assert_str_eq(cf.sinks[0].name, name);
	ck_assert_str_eq(cf.sinks[1].name, "A-z_0.9");
	conf_free(&cf);
	free(text);
	name[64] = 'n';
	name[65] = '\0';
	text = xasprintf("{\"outbox.database\": \"a.db\", \"sinks\": {\"%s\": {\"type\": "
	    "\"stdout\"}}}", name);
	{
		char *got = load_error(text, NULL), *want = xasprintf("FILE: sinks.%s: sink names "
		    "are 1 to 64 letters, digits, '.', '_' or '-'", name);
		ck_assert_str_eq(got, want);
		free(got);
		free(want);
	}
	free(text);
}
END_TEST

START_TEST(test_privileges)
{
	struct conf cf;

	ck_conf_error("{\"outbox.database\": \"a.db\", \"privilege.can-use-push-events\": false}",
	    "FILE: privilege.can-use-push-events is false: push events are disabled by this "
	    "configuration, so there is nothing to relay");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"privilege.can-use-push-events\": "
	    "\"false\"}",
	    "FILE: privilege.can-use-push-events is false: push events are disabled by this "
	    "configuration, so there is nothing to relay");
	/* Whether or not the redis sink is built in, the privilege is the reason. */
	ck_conf_error("{\"outbox.database\": \"a.db\", \"system.queue-adapter\": \"redis\","
	    " \"privilege.can-use-cache\": false}",
	    "FILE: system.queue-adapter is \"redis\" but privilege.can-use-cache is false");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"system.queue-adapter\": \"rabbitmq\","
	    " \"privilege.can-use-rabbitmq\": false}",
	    "FILE: system.queue-adapter is \"rabbitmq\" but privilege.can-use-rabbitmq is false");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"system.queue-adapter\": \"redis\","
	    " \"privilege.can-use-cache\": 0}",
	    "FILE: privilege.can-use-cache: expected true or false, got 0");
	/* The cache privilege says nothing about the stdout adapter. */
	load_ok(&cf, "{\"outbox.database\": \"a.db\", \"system.queue-adapter\": \"stdout\","
	    " \"privilege.can-use-cache\": false, \"privilege.can-use-rabbitmq\": false}", NULL);
	ck_assert_uint_eq(cf.nsinks, 1);
	conf_free(&cf);
}
END_TEST

START_TEST(test_missing_database)
{
	ck_conf_error("{}", "FILE: no database: set \"outbox.database\" or use --db PATH");
	ck_conf_error("{\"system.queue-adapter\": \"stdout\"}",
	    "FILE: no database: set \"outbox.database\" or use --db PATH");
}
END_TEST

/* ---- push-events keys, sinks and overrides ------------------------------------------------ */

START_TEST(test_sinks_inherit)
{
	struct conf cf;

	capture_log();
	load_ok(&cf,
	    "{\"outbox.database\": \"a.db\",\n"
	    " \"system.push-events\": [ \"user.login\",  \"order.*\" ],\n"
	    " \"system.push-events.prefix\": \"shop.\",\n"
	    " \"sinks\": {\n"
	    "   \"plain\": {\"type\": \"stdout\"},\n"
	    "   \"own\": {\"type\": \"stdout\", \"events\": [\"audit.*\"], \"prefix\": \"\"},\n"
	    "   \"half\": {\"type\": \"stdout\", \"prefix\": \"x.\"}\n"
	    " }}", NULL);
	/* "sinks" alone: no adapter sink, no default sink. */
	ck_assert_uint_eq(cf.nsinks, 3);
	ck_assert_str_eq(cf.sinks[0].name, "plain");
	ck_assert_str_eq(cf.sinks[0].where, "sinks.plain");
	ck_assert_str_eq(cf.sinks[0].filter, "[\"user.login\",\"order.*\"]");
	ck_assert_str_eq(cf.sinks[0].prefix, "shop.");
	ck_assert_str_eq(cf.sinks[1].name, "own");
	ck_assert_str_eq(cf.sinks[1].filter, "[\"audit.*\"]");
	ck_assert_str_eq(cf.sinks[1].prefix, "");
	ck_assert_str_eq(cf.sinks[2].name, "half");
	ck_assert_str_eq(cf.sinks[2].filter, "[\"user.login\",\"order.*\"]");
	ck_assert_str_eq(cf.sinks[2].prefix, "x.");
	conf_free(&cf);
	{
		char *log = captured_log();
		ck_assert_str_eq(log, "");
		free(log);
	}
}
END_TEST

START_TEST(test_adapter_and_sinks)
{
	struct conf cf;

	load_ok(&cf,
	    "{\"outbox.database\": \"a.db\", \"system.queue-adapter\": \"stdout\",\n"
	    " \"system.push-events\": [\"a\"],\n"
	    " \"sinks\": {\"more\": {\"type\": \"stdout\", \"events\": [\"b\"]}}}", NULL);
	ck_assert_uint_eq(cf.nsinks, 2);
	ck_assert_str_eq(cf.sinks[0].name, "stdout");
	ck_assert_str_eq(cf.sinks[0].filter, "[\"a\"]");
	ck_assert_str_eq(cf.sinks[0].prefix, "");
	ck_assert_str_eq(cf.sinks[1].name, "more");
	ck_assert_str_eq(cf.sinks[1].filter, "[\"b\"]");
	conf_free(&cf);
	/* The default sink takes the top-level filter and prefix too. */
	load_ok(&cf, "{\"outbox.database\": \"a.db\", \"system.push-events\": [\"a\"],"
	    " \"system.push-events.prefix\": \"p.\"}", NULL);
	ck_assert_uint_eq(cf.nsinks, 1);
	ck_assert_str_eq(cf.sinks[0].where, "default");
	ck_assert_str_eq(cf.sinks[0].filter, "[\"a\"]");
	ck_assert_str_eq(cf.sinks[0].prefix, "p.");
	conf_free(&cf);
	/* An empty "sinks" object configures nothing: the default sink. */
	load_ok(&cf, "{\"outbox.database\": \"a.db\", \"sinks\": {}}", NULL);
	ck_assert_uint_eq(cf.nsinks, 1);
	ck_assert_str_eq(cf.sinks[0].where, "default");
	conf_free(&cf);
}
END_TEST

START_TEST(test_overrides_win)
{
	/* As main.c builds them for --db P --stdout. */
	cJSON *o = overrides("{\"outbox.database\": \"cli.db\", \"system.queue-adapter\": "
	    "\"stdout\"}");
	struct conf cf;
	char *msg;

	load_ok(&cf, "{\"outbox.database\": \"file.db\", \"system.queue-adapter\": \"kafka\"}",
	    o);
	ck_assert_str_eq(cf.database, "cli.db");
	ck_assert_uint_eq(cf.nsinks, 1);
	ck_assert_str_eq(cf.sinks[0].name, "stdout");
	ck_assert_str_eq(cf.sinks[0].where, "stdout");
	conf_free(&cf);
	/* Even over a key the file repeats. */
	load_ok(&cf, "{\"outbox.database\": \"one.db\", \"outbox.database\": \"two.db\"}", o);
	ck_assert_str_eq(cf.database, "cli.db");
	conf_free(&cf);
	/* And an override is checked like a file key. */
	cJSON_Delete(o);
	o = overrides("{\"system.queue-adapter\": \"kafka\"}");
	msg = load_error("{\"outbox.database\": \"a.db\"}", o);
	ck_assert_str_eq(msg, "FILE: system.queue-adapter: expected \"redis\", \"rabbitmq\", "
	    "\"nats\", \"mqtt\", \"http\" or \"stdout\", got \"kafka\"");
	free(msg);
	cJSON_Delete(o);
}
END_TEST

START_TEST(test_unknown_keys_warn)
{
	struct conf cf;
	char *log;

	capture_log();
	load_ok(&cf,
	    "{\"outbox.database\": \"a.db\", \"colour\": \"red\", \"relay.batchsize\": 5,\n"
	    " \"privilege.can-use-push-events\": true, \"system.other\": 1,\n"
	    " \"sinks\": {\"out\": {\"type\": \"stdout\", \"channel\": \"x\"}}}", NULL);
	ck_assert_uint_eq(cf.nsinks, 1);
	ck_assert_int_eq(cf.batch_size, 512);
	conf_free(&cf);
	log = captured_log();
	ck_assert_msg(strstr(log, " warn: ignoring unknown configuration keys: colour, "
	    "relay.batchsize, system.other\n") != NULL, "log was: %s", log);
	ck_assert_msg(strstr(log, " warn: ignoring unknown configuration keys: "
	    "sinks.out.channel\n") != NULL, "log was: %s", log);
	/* One line each, nothing else. */
	{
		int lines = 0;
		char *p;
		for (p = log; *p; p++)
			lines += *p == '\n';
		ck_assert_int_eq(lines, 2);
	}
	free(log);
}
END_TEST

/* ---- main ------------------------------------------------------------------------------------- */

static Suite *
conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("conf");

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_no_file);
	tcase_add_test(tc, test_every_key);
	tcase_add_test(tc, test_numbers_as_strings);
	tcase_add_test(tc, test_retention_units);
	tcase_add_test(tc, test_log_levels);
	tcase_add_test(tc, test_invalid_json);
	tcase_add_test(tc, test_unreadable);
	tcase_add_test(tc, test_nul_byte);
	tcase_add_test(tc, test_not_an_object);
	tcase_add_test(tc, test_wrong_types);
	tcase_add_test(tc, test_out_of_range);
	tcase_add_test(tc, test_bad_durations);
	tcase_add_test(tc, test_adapters_and_sinks);
	tcase_add_test(tc, test_sink_name_lengths);
	tcase_add_test(tc, test_privileges);
	tcase_add_test(tc, test_missing_database);
	tcase_add_test(tc, test_sinks_inherit);
	tcase_add_test(tc, test_adapter_and_sinks);
	tcase_add_test(tc, test_overrides_win);
	tcase_add_test(tc, test_unknown_keys_warn);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_main(conf_suite(), "check_conf", check_dir, sizeof check_dir);
}
