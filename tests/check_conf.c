/*
 * check_conf.c: unit tests for the relay's configuration loader (conf_load) and the small
 * pieces it and the loop stand on: strict number and duration parsing, percent-decoding,
 * the envelope bytes, "{name}" templates and the backoff bounds.
 *
 * Configurations are written to files in a private temporary directory; error messages are
 * compared whole, with the file's path shown as FILE. Warnings are captured by pointing the
 * log at a file (log_open) and reading it back.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "envelope.h"
#include "log.h"
#include "relay.h"
#include "sink.h"
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
	ck_assert_int_eq(cf.log_level, -1);
	/* No sink configured: one stdout sink, every event, no prefix. */
	ck_assert_uint_eq(cf.nsinks, 1);
	ck_assert_str_eq(cf.sinks[0].sink.name, "stdout");
	ck_assert_str_eq(cf.sinks[0].sink.ops->type, "stdout");
	ck_assert_str_eq(cf.sinks[0].sink.where, "default");
	ck_assert_str_eq(cf.sinks[0].sink.target, "standard output");
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
	ck_assert_str_eq(cf.sinks[0].sink.name, "stdout");
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
	ck_assert_int_eq(cf.log_level, LOG_DEBUG);
	ck_assert_uint_eq(cf.nsinks, 1);
	ck_assert_str_eq(cf.sinks[0].sink.name, "stdout");
	ck_assert_str_eq(cf.sinks[0].sink.where, "stdout");
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
	    "FILE: relay.log-level: expected a string, got 2");
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
	    "FILE: relay.log-level: expected error, warn, info or debug, got \"loud\"");
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
	    "FILE: system.queue-adapter: expected \"redis\", \"rabbitmq\" or \"stdout\", got "
	    "\"kafka\"");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"sinks\": {\"k\": {\"type\": "
	    "\"kafka\"}}}",
	    "FILE: sinks.k: unknown sink type \"kafka\" (use stdout, redis or rabbitmq)");
	ck_conf_error("{\"outbox.database\": \"a.db\", \"sinks\": {\"a\": {}}}",
	    "FILE: sinks.a: missing \"type\" (stdout, redis or rabbitmq)");
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
	ck_assert_str_eq(cf.sinks[0].sink.name, name);
	ck_assert_str_eq(cf.sinks[1].sink.name, "A-z_0.9");
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
	ck_assert_str_eq(cf.sinks[0].sink.name, "plain");
	ck_assert_str_eq(cf.sinks[0].sink.where, "sinks.plain");
	ck_assert_str_eq(cf.sinks[0].filter, "[\"user.login\",\"order.*\"]");
	ck_assert_str_eq(cf.sinks[0].prefix, "shop.");
	ck_assert_str_eq(cf.sinks[1].sink.name, "own");
	ck_assert_str_eq(cf.sinks[1].filter, "[\"audit.*\"]");
	ck_assert_str_eq(cf.sinks[1].prefix, "");
	ck_assert_str_eq(cf.sinks[2].sink.name, "half");
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
	ck_assert_str_eq(cf.sinks[0].sink.name, "stdout");
	ck_assert_str_eq(cf.sinks[0].filter, "[\"a\"]");
	ck_assert_str_eq(cf.sinks[0].prefix, "");
	ck_assert_str_eq(cf.sinks[1].sink.name, "more");
	ck_assert_str_eq(cf.sinks[1].filter, "[\"b\"]");
	conf_free(&cf);
	/* The default sink takes the top-level filter and prefix too. */
	load_ok(&cf, "{\"outbox.database\": \"a.db\", \"system.push-events\": [\"a\"],"
	    " \"system.push-events.prefix\": \"p.\"}", NULL);
	ck_assert_uint_eq(cf.nsinks, 1);
	ck_assert_str_eq(cf.sinks[0].sink.where, "default");
	ck_assert_str_eq(cf.sinks[0].filter, "[\"a\"]");
	ck_assert_str_eq(cf.sinks[0].prefix, "p.");
	conf_free(&cf);
	/* An empty "sinks" object configures nothing: the default sink. */
	load_ok(&cf, "{\"outbox.database\": \"a.db\", \"sinks\": {}}", NULL);
	ck_assert_uint_eq(cf.nsinks, 1);
	ck_assert_str_eq(cf.sinks[0].sink.where, "default");
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
	ck_assert_str_eq(cf.sinks[0].sink.name, "stdout");
	ck_assert_str_eq(cf.sinks[0].sink.where, "stdout");
	conf_free(&cf);
	/* Even over a key the file repeats. */
	load_ok(&cf, "{\"outbox.database\": \"one.db\", \"outbox.database\": \"two.db\"}", o);
	ck_assert_str_eq(cf.database, "cli.db");
	conf_free(&cf);
	/* And an override is checked like a file key. */
	cJSON_Delete(o);
	o = overrides("{\"system.queue-adapter\": \"kafka\"}");
	msg = load_error("{\"outbox.database\": \"a.db\"}", o);
	ck_assert_str_eq(msg, "FILE: system.queue-adapter: expected \"redis\", \"rabbitmq\" or "
	    "\"stdout\", got \"kafka\"");
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

/* ---- main ------------------------------------------------------------------------------------- */

static Suite *
conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc;

	tc = tcase_create("conf");
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

	tc = tcase_create("util");
	tcase_add_test(tc, test_parse_int);
	tcase_add_test(tc, test_parse_duration);
	tcase_add_test(tc, test_percent_decode);
	suite_add_tcase(s, tc);

	tc = tcase_create("envelope");
	tcase_add_test(tc, test_envelope);
	tcase_add_test(tc, test_envelope_escaping);
	tcase_add_test(tc, test_envelope_worst_case);
	tcase_add_test(tc, test_sink_expand);
	tcase_add_test(tc, test_backoff);
	tcase_set_timeout(tc, 60);   /* many draws under sanitizers and make -j */
	suite_add_tcase(s, tc);
	return s;
}

static void
remove_dir(const char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);

	(void)!system(cmd);
	free(cmd);
}

int
main(void)
{
	const char *tmp = getenv("TMPDIR");
	SRunner *sr;
	int failed;

	snprintf(check_dir, sizeof check_dir, "%s/check_conf.XXXXXX",
	    tmp != NULL && *tmp ? tmp : "/tmp");
	if (mkdtemp(check_dir) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	sr = srunner_create(conf_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	remove_dir(check_dir);
	return failed == 0 ? 0 : 1;
}
