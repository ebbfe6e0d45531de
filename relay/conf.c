/*
 * conf.c: load the relay's JSON configuration.
 *
 * The file uses the flat keys of the push-events format ("system.queue-adapter",
 * "redis.host", ...) so an existing fragment works unchanged. Those keys describe one sink,
 * named after the adapter; every "redis.X" or "rabbitmq.X" key becomes option X of that
 * sink, exactly as if it had been written in a "sinks" entry. Our own keys start with
 * "outbox." and "relay.", and "sinks" names any number of further sinks.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "option.h"
#include "redis_url.h"
#include "util.h"

#define CONF_SINK_NAME_MAX 64

/* Does the line around at look like it holds a password (a key, or a URL's user info)? */
static int
conf_line_secret(const char *text, const char *at)
{
	const char *p = at;

	while (p > text && p[-1] != '\n')
		p--;
	for (; *p != '\0' && *p != '\n'; p++) {
		if (*p == '@' || strncmp(p, "password", 8) == 0)
			return 1;
	}
	return 0;
}

/* The last character before p that is not white space, or NULL. */
static const char *
conf_prev_char(const char *text, const char *p)
{
	while (p > text && strchr(" \t\r\n", p[-1]) != NULL)
		p--;
	return p > text ? p - 1 : NULL;
}

/*
 * The character at fault, from where cJSON stopped. Where an object key should start,
 * cJSON stops one past the character that is not a '"' ({"a": 1,} stops after the '}'):
 * step back onto it. A '}' or ']' after a comma is a trailing comma: the comma is at fault.
 */
static const char *
conf_json_fault(const char *text, const char *end, int *trailing_comma)
{
	const char *prev;

	*trailing_comma = 0;
	if (end > text && strchr("\" \t\r\n", end[-1]) == NULL &&
	    (prev = conf_prev_char(text, end - 1)) != NULL && (*prev == '{' || *prev == ','))
		end--;
	if ((*end == '}' || *end == ']') && (prev = conf_prev_char(text, end)) != NULL &&
	    *prev == ',') {
		*trailing_comma = 1;
		return prev;
	}
	return end;
}

/* The line around at, quoted for a message: leading blanks dropped, a long line cut around
 * at, and "-->" just before the character at fault. */
static char *
conf_quote_line(const char *text, const char *at)
{
	const char *start = at, *end = at;
	int cut_before, cut_after;

	while (start > text && start[-1] != '\n')
		start--;
	while (start < at && (*start == ' ' || *start == '\t'))
		start++;
	while (*end != '\0' && *end != '\n' && *end != '\r')
		end++;
	cut_before = at - start > 40;
	cut_after = end - at > 30;
	if (cut_before)
		start = at - 37;
	if (cut_after)
		end = at + 27;
	return xasprintf("'%s%.*s-->%.*s%s'", cut_before ? "..." : "", (int)(at - start), start,
	    (int)(end - at), at, cut_after ? "..." : "");
}

cJSON *
conf_parse_json(const char *text, const char *path, char **cause)
{
	const char *end = NULL, *p;
	cJSON *root;
	int line = 1, col = 1, trailing_comma;
	char *quote;

	root = cJSON_ParseWithOpts(text, &end, 1);
	if (root != NULL)
		return root;
	if (end == NULL || end < text)
		end = text;
	end = conf_json_fault(text, end, &trailing_comma);
	for (p = text; p < end; p++) {
		if (*p == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	if (*end == '\0') {
		*cause = xasprintf("%s:%d:%d: invalid JSON: unexpected end of file", path, line, col);
	} else if (conf_line_secret(text, end)) {
		*cause = xasprintf("%s:%d:%d: invalid JSON%s (not quoted: the line may hold a "
		    "password)", path, line, col, trailing_comma ? ": a trailing comma, which "
		    "JSON does not allow" : "");
	} else {
		quote = conf_quote_line(text, end);
		if (trailing_comma)
			*cause = xasprintf("%s:%d:%d: invalid JSON: a trailing comma, which JSON does "
			    "not allow: %s", path, line, col, quote);
		else
			*cause = xasprintf("%s:%d:%d: invalid JSON at '%c': %s", path, line, col, *end,
			    quote);
		free(quote);
	}
	return NULL;
}

/* The text of path; *mode is its permission bits. */
static char *
conf_read_file(const char *path, mode_t *mode, char **cause)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL, *grown;
	size_t len = 0, cap = 0, n;
	struct stat sb;

	if (f == NULL) {
		*cause = xasprintf("%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	*mode = fstat(fileno(f), &sb) == 0 ? sb.st_mode & 07777 : 0;
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			if ((grown = realloc(buf, cap + 1)) == NULL) {
				free(buf);
				fclose(f);
				*cause = xasprintf("%s: out of memory", path);
				return NULL;
			}
			buf = grown;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		*cause = xasprintf("%s: cannot read: %s", path, strerror(errno));
		free(buf);
		buf = NULL;
	} else if (memchr(buf, '\0', len) != NULL) {
		*cause = xasprintf("%s: not a text file (contains a NUL byte)", path);
		free(buf);
		buf = NULL;
	} else {
		buf[len] = '\0';
	}
	fclose(f);
	return buf;
}

/* ---- the tables ---------------------------------------------------------------------- */

#define C(field) offsetof(struct conf, field)
#define S(field) offsetof(struct conf_sink, field)

static const char *const conf_log_levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const conf_start_ats[] = { "oldest", "latest", NULL };
static const char *const conf_log_formats[] = { "text", "json", NULL };
static const char *const conf_formats[] = { "envelope", "cloudevents", NULL };

const struct conf_option conf_options[] = {
	{ .name = "outbox.database", .type = OPTION_STRING, .offset = C(database),
	  .help = "path of the SQLite database (required, or --db)" },
	{ .name = "outbox.retention", .type = OPTION_DURATION, .offset = C(retention_ms),
	  .help = "delete delivered events older than this (30s, 10m, 12h, 7d, 2w), in "
	  "batches of 1000, never one a sink still needs; absent: keep them" },
	{ .name = "relay.batch-size", .type = OPTION_INT, .offset = C(batch_size), .min = 1,
	  .max = 10000, .def = "512", .help = "events per batch" },
	{ .name = "relay.poll-interval-ms", .type = OPTION_INT, .offset = C(poll_interval_ms),
	  .min = 1, .max = 3600000, .def = "1000",
	  .help = "longest idle sleep; commits wake the relay at once" },
	{ .name = "relay.max-attempts", .type = OPTION_INT, .offset = C(max_attempts), .min = 1,
	  .max = 1000000, .def = "10", .help = "rejections before an event is failed on a sink" },
	{ .name = "relay.backoff-initial-ms", .type = OPTION_INT,
	  .offset = C(backoff_initial_ms), .min = 1, .max = 86400000, .def = "1000",
	  .help = "retry delay for attempt n: random in [0, min(max, initial * multiplier^(n-1))]" },
	{ .name = "relay.backoff-max-ms", .type = OPTION_INT, .offset = C(backoff_max_ms),
	  .min = 1, .max = 86400000, .def = "300000",
	  .help = "the cap of retry and reconnect delays" },
	{ .name = "relay.backoff-multiplier", .type = OPTION_NUMBER,
	  .offset = C(backoff_multiplier), .min = 1, .max = 100, .def = "2",
	  .help = "growth of the delay from one attempt to the next" },
	{ .name = "relay.log-level", .type = OPTION_CHOICE, .offset = C(log_level),
	  .def = "info", .choices = conf_log_levels, .help = "what the log shows" },
	{ .name = "relay.log-format", .type = OPTION_CHOICE, .offset = C(log_format),
	  .def = "text", .choices = conf_log_formats, .help = "text lines, or json: one object "
	  "a line with ts, level, msg and sink when the line is about one" },
	{ .name = "metrics.listen", .type = OPTION_STRING, .offset = C(metrics_listen),
	  .help = "serve /metrics, /healthz and /readyz on 127.0.0.1:9464, [::1]:9464 or a "
	  "unix socket path (or --metrics); read at start-up only; absent: off" },
	{ .name = "system.queue-adapter", .type = OPTION_STRING, .offset = C(adapter),
	  .help = "the type of one sink named after it (redis, rabbitmq, nats, mqtt, http or "
	  "stdout), whose options are the redis.X, rabbitmq.X, nats.X, mqtt.X or http.X keys" },
	{ .name = "system.push-events", .type = OPTION_PATTERNS, .offset = C(filter),
	  .help = "event names or globs (user.*) every sink publishes by default; an event "
	  "passes if its name or its prefixed name matches; absent: every event" },
	{ .name = "system.push-events.prefix", .type = OPTION_STRING, .offset = C(prefix),
	  .help = "joined to event names as is: myapp. + user.login is myapp.user.login" },
	{ .name = "privilege.can-use-push-events", .type = OPTION_BOOL,
	  .offset = C(can_use_push_events), .def = "true",
	  .help = "false: outboxd refuses to run, saying why" },
	{ .name = "privilege.can-use-cache", .type = OPTION_BOOL, .offset = C(can_use_cache),
	  .def = "true", .help = "false: the redis adapter is refused" },
	{ .name = "privilege.can-use-rabbitmq", .type = OPTION_BOOL,
	  .offset = C(can_use_rabbitmq), .def = "true",
	  .help = "false: the rabbitmq adapter is refused" },
	{ .name = "sinks", .type = OPTION_OTHER,
	  .help = "an object of named sinks, each an object with a type and its options" },
	{ .name = "redis.*", .type = OPTION_OTHER,
	  .help = "option X of the redis adapter's sink" },
	{ .name = "rabbitmq.*", .type = OPTION_OTHER,
	  .help = "option X of the rabbitmq adapter's sink" },
	{ .name = "nats.*", .type = OPTION_OTHER,
	  .help = "option X of the nats adapter's sink" },
	{ .name = "mqtt.*", .type = OPTION_OTHER,
	  .help = "option X of the mqtt adapter's sink" },
	{ .name = "http.*", .type = OPTION_OTHER,
	  .help = "option X of the http adapter's sink" },
	OPTION_END
};

const struct conf_option conf_sink_options[] = {
	{ .name = "type", .type = OPTION_OTHER,
	  .help = "stdout, redis, rabbitmq, nats, mqtt or http (required)" },
	{ .name = "events", .type = OPTION_PATTERNS, .offset = S(filter),
	  .help = "event names or globs this sink publishes (default: system.push-events)" },
	{ .name = "prefix", .type = OPTION_STRING, .offset = S(prefix),
	  .help = "joined to event names (default: system.push-events.prefix)" },
	{ .name = "start-at", .type = OPTION_CHOICE, .offset = S(start_at), .def = "oldest",
	  .choices = conf_start_ats, .help = "where a sink new to the database starts: every "
	  "event in the table, or only those committed after it was added" },
	{ .name = "format", .type = OPTION_CHOICE, .offset = S(format), .def = "envelope",
	  .choices = conf_formats, .help = "the push-events envelope, or CloudEvents 1.0 "
	  "(JSON; HTTP structured or binary mode)" },
	{ .name = "cloudevents-source", .type = OPTION_STRING, .offset = S(ce_source),
	  .flags = OPTION_EMPTY_IS_NULL, .help = "the CloudEvents source, a URI-reference "
	  "(default: //outboxd/HOST/DATABASE)" },
	OPTION_END
};

/* ---- sinks ------------------------------------------------------------------------- */

static int
conf_sink_name_ok(const char *name)
{
	size_t i, len = strlen(name);

	if (len == 0 || len > CONF_SINK_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
		    name[i]) == NULL)
			return 0;
	}
	return 1;
}

/* Read a sink's common keys and its type's options from opts into cs. */
static int
conf_sink_read(const struct conf *cf, struct conf_sink *cs, const cJSON *opts, char **cause)
{
	const struct conf_option *const tables[] = { cs->type->options, conf_sink_options, NULL };

	option_warn_unknown(tables, opts, cs->where);
	option_defaults(conf_sink_options, cs);
	cs->filter = cf->filter != NULL ? xstrdup(cf->filter) : NULL;
	cs->prefix = xstrdup(cf->prefix != NULL ? cf->prefix : "");
	if (option_read(conf_sink_options, cs, opts, cs->where, cause) != 0 ||
	    (cs->options = sink_type_read(cs->type, opts, cs->where, cause)) == NULL)
		return -1;
	cs->target = cs->type->describe(cs->options);
	return 0;
}

static int
conf_add_sink(struct conf *cf, const char *name, const char *where, const char *type,
    const cJSON *opts, char **cause)
{
	const struct sink_type *st = sink_type_find(type);
	struct conf_sink *cs;
	size_t i;

	if (st == NULL) {
		*cause = xasprintf("%s: unknown sink type \"%s\" (use %s)", where, type,
		    sink_type_names());
		return -1;
	}
	if (!conf_sink_name_ok(name)) {
		*cause = xasprintf("%s: sink names are 1 to %d letters, digits, '.', '_' or '-'",
		    where, CONF_SINK_NAME_MAX);
		return -1;
	}
	for (i = 0; i < cf->nsinks; i++) {
		if (strcmp(cf->sinks[i].name, name) == 0) {
			*cause = xasprintf("%s: a sink named \"%s\" is already configured (%s)", where,
			    name, cf->sinks[i].where);
			return -1;
		}
	}
	cf->sinks = xreallocarray(cf->sinks, cf->nsinks + 1, sizeof *cf->sinks);
	cs = &cf->sinks[cf->nsinks++];
	memset(cs, 0, sizeof *cs);
	cs->name = xstrdup(name);
	cs->where = xstrdup(where);
	cs->type = st;
	return conf_sink_read(cf, cs, opts, cause);
}

/* The flat push-events keys: "redis.X" becomes option X of the adapter's sink. */
static cJSON *
conf_adapter_options(const cJSON *root, const char *adapter)
{
	cJSON *opts = cJSON_CreateObject();
	const cJSON *v;
	size_t n = strlen(adapter);

	if (opts == NULL)
		abort();
	cJSON_ArrayForEach(v, root) {
		if (strncmp(v->string, adapter, n) == 0 && v->string[n] == '.' && v->string[n + 1])
			cJSON_AddItemToObject(opts, v->string + n + 1, cJSON_Duplicate(v, 1));
	}
	return opts;
}

/*
 * OUTBOXD_REDIS_PASSWORD, OUTBOXD_AMQP_PASSWORD, OUTBOXD_NATS_PASSWORD and
 * OUTBOXD_MQTT_PASSWORD: the password of the sink that system.queue-adapter (or --redis,
 * --amqp, --nats, --mqtt) configures, so it need not be written in a URL on the command
 * line, where ps shows it, nor in the file. It is the sink's "password" option: a
 * password in the URL itself still wins.
 */
static void
conf_env_password(cJSON *opts, const char *adapter)
{
	static const char *const vars[][2] = {
		{ "redis", "OUTBOXD_REDIS_PASSWORD" },
		{ "rabbitmq", "OUTBOXD_AMQP_PASSWORD" },
		{ "nats", "OUTBOXD_NATS_PASSWORD" },
		{ "mqtt", "OUTBOXD_MQTT_PASSWORD" },
	};
	const char *pw = NULL;
	size_t i;

	for (i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		if (strcmp(adapter, vars[i][0]) == 0)
			pw = getenv(vars[i][1]);
	}

	if (pw == NULL || *pw == '\0')
		return;
	cJSON_DeleteItemFromObjectCaseSensitive(opts, "password");
	cJSON_AddStringToObject(opts, "password", pw);
}

/* A password anywhere in v: a non-empty "*password*" key, or a URL holding one. */
static int
conf_has_password(const cJSON *v)
{
	const cJSON *item;
	char *red;
	int found;

	if (cJSON_IsString(v)) {
		if (v->string != NULL && strstr(v->string, "password") != NULL)
			return v->valuestring[0] != '\0';
		if (strstr(v->valuestring, "://") == NULL)
			return 0;
		red = redis_url_redact(v->valuestring);
		found = strcmp(red, v->valuestring) != 0;
		free(red);
		return found;
	}
	cJSON_ArrayForEach(item, v) {
		if (conf_has_password(item))
			return 1;
	}
	return 0;
}

/* system.queue-adapter: one sink named after it, from the flat keys. */
static int
conf_adapter(struct conf *cf, const cJSON *root, char **cause)
{
	const char *adapter = cf->adapter, *privilege = NULL;
	cJSON *opts;
	int allowed = 1, rc;

	if (strcmp(adapter, "redis") == 0) {
		privilege = "privilege.can-use-cache";
		allowed = cf->can_use_cache;
	} else if (strcmp(adapter, "rabbitmq") == 0) {
		privilege = "privilege.can-use-rabbitmq";
		allowed = cf->can_use_rabbitmq;
	}
	/* The privilege first: it says why the adapter is off, whatever is built in. */
	if (!allowed) {
		*cause = xasprintf("system.queue-adapter is \"%s\" but %s is false", adapter,
		    privilege);
		return -1;
	}
	if (sink_type_find(adapter) == NULL) {
		*cause = xasprintf("system.queue-adapter: expected \"redis\", \"rabbitmq\", "
		    "\"nats\", \"mqtt\", \"http\" or \"stdout\", got \"%s\"", adapter);
		return -1;
	}
	opts = strcmp(adapter, "stdout") == 0 ? cJSON_CreateObject() :
	    conf_adapter_options(root, adapter);
	if (opts == NULL)
		abort();
	conf_env_password(opts, adapter);
	rc = conf_add_sink(cf, adapter, adapter, adapter, opts, cause);
	cJSON_Delete(opts);
	return rc;
}

/* "sinks": named sinks, each an object with a "type". */
static int
conf_sinks(struct conf *cf, const cJSON *sinks, char **cause)
{
	const cJSON *s, *type;
	char *where;
	int rc = 0;

	if (sinks == NULL)
		return 0;
	if (!cJSON_IsObject(sinks))
		return option_type_error("", "sinks", "an object of named sinks", sinks, 0, cause);
	cJSON_ArrayForEach(s, sinks) {
		where = xasprintf("sinks.%s", s->string);
		type = cJSON_GetObjectItemCaseSensitive(s, "type");
		if (!cJSON_IsObject(s))
			rc = option_type_error(where, "", "an object", s, 0, cause);
		else if (type == NULL)
			*cause = xasprintf("%s: missing \"type\" (%s)", where, sink_type_names()),
			    rc = -1;
		else if (!cJSON_IsString(type))
			rc = option_type_error(where, "type", "a string", type, 0, cause);
		else
			rc = conf_add_sink(cf, s->string, where, type->valuestring, s, cause);
		free(where);
		if (rc != 0)
			return -1;
	}
	return 0;
}

/* The CloudEvents source of sinks that give none: where the events come from, the host
 * and the database file. */
static void
conf_default_source(struct conf *cf)
{
	char host[256];
	size_t i;

	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	for (i = 0; i < cf->nsinks; i++) {
		if (cf->sinks[i].ce_source == NULL)
			cf->sinks[i].ce_source = xasprintf("//outboxd/%s%s%s", host,
			    *cf->database == '/' ? "" : "/", cf->database);
	}
}

static int
conf_apply(struct conf *cf, const cJSON *root, char **cause)
{
	static const struct conf_option *const tables[] = { conf_options, NULL };
	cJSON *none;
	int rc;

	if (!cJSON_IsObject(root)) {
		*cause = xasprintf("the configuration must be a JSON object");
		return -1;
	}
	option_warn_unknown(tables, root, "");
	if (option_read(conf_options, cf, root, "", cause) != 0)
		return -1;
	if (!cf->can_use_push_events) {
		*cause = xasprintf("privilege.can-use-push-events is false: push events are "
		    "disabled by this configuration, so there is nothing to relay");
		return -1;
	}
	if (cf->backoff_max_ms < cf->backoff_initial_ms) {
		*cause = xasprintf("relay.backoff-max-ms (%d) is less than relay.backoff-initial-ms "
		    "(%d)", cf->backoff_max_ms, cf->backoff_initial_ms);
		return -1;
	}
	if ((cf->adapter != NULL && conf_adapter(cf, root, cause) != 0) ||
	    conf_sinks(cf, cJSON_GetObjectItemCaseSensitive(root, "sinks"), cause) != 0)
		return -1;
	if (cf->filter != NULL && strcmp(cf->filter, "[]") == 0)
		log_warn("system.push-events is an empty list: no event will be published by the "
		    "sinks that use it");
	if (cf->nsinks == 0) {
		none = cJSON_CreateObject();
		rc = conf_add_sink(cf, "stdout", "default", "stdout", none, cause);
		cJSON_Delete(none);
		if (rc != 0)
			return -1;
	}
	if (cf->database == NULL) {
		*cause = xasprintf("no database: set \"outbox.database\" or use --db PATH");
		return -1;
	}
	conf_default_source(cf);
	return 0;
}

int
conf_load(struct conf *cf, const char *path, const cJSON *overrides, char **cause)
{
	cJSON *root = NULL;
	const cJSON *v;
	char *text, *why = NULL;
	mode_t mode = 0;
	int rc;

	memset(cf, 0, sizeof *cf);
	option_defaults(conf_options, cf);
	if (path != NULL) {
		if ((text = conf_read_file(path, &mode, cause)) == NULL)
			return -1;
		root = conf_parse_json(text, path, cause);
		free(text);
		if (root == NULL)
			return -1;
		/* Group-readable is the usual way to let a service's group read its config;
		 * readable by everyone is a leak. */
		if ((mode & S_IROTH) != 0 && conf_has_password(root))
			log_warn("%s holds a password and other users can read it (mode %04o): "
			    "chmod o-r %s", path, (unsigned)mode, path);
	} else {
		root = cJSON_CreateObject();
	}
	if (cJSON_IsObject(root) && overrides != NULL) {
		cJSON_ArrayForEach(v, overrides) {
			/* Every copy: cJSON keeps duplicate keys and lookups find the first. */
			while (cJSON_GetObjectItemCaseSensitive(root, v->string) != NULL)
				cJSON_DeleteItemFromObjectCaseSensitive(root, v->string);
			cJSON_AddItemToObject(root, v->string, cJSON_Duplicate(v, 1));
		}
	}
	rc = conf_apply(cf, root, &why);
	cJSON_Delete(root);
	if (rc != 0) {
		*cause = path != NULL ? xasprintf("%s: %s", path, why) : xstrdup(why);
		free(why);
		conf_free(cf);
	}
	return rc;
}

static void
conf_sink_free(struct conf_sink *cs)
{
	option_free(conf_sink_options, cs);
	sink_type_free(cs->type, cs->options);
	free(cs->name);
	free(cs->where);
	free(cs->target);
}

void
conf_free(struct conf *cf)
{
	size_t i;

	for (i = 0; i < cf->nsinks; i++)
		conf_sink_free(&cf->sinks[i]);
	free(cf->sinks);
	option_free(conf_options, cf);
	memset(cf, 0, sizeof *cf);
}

int
conf_sink_equal(const struct conf_sink *a, const struct conf_sink *b)
{
	return strcmp(a->name, b->name) == 0 && a->type == b->type &&
	    option_equal(conf_sink_options, a, b) &&
	    option_equal(a->type->options, a->options, b->options);
}
