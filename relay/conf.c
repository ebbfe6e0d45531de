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

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"
#include "log.h"
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

/* ---- typed getters ------------------------------------------------------------------ */

static int
conf_holds_object(const cJSON *v)
{
	const cJSON *c;

	if (cJSON_IsObject(v))
		return 1;
	cJSON_ArrayForEach(c, v) {
		if (conf_holds_object(c))
			return 1;
	}
	return 0;
}

static int
conf_type_error(const char *where, const char *key, const char *want, const cJSON *v,
    char **cause)
{
	/* An object may hold a password (a sink's options put where a string was meant):
	 * name what it is, never show its text. */
	int hidden = conf_holds_object(v);
	char *got = hidden ? NULL : cJSON_PrintUnformatted(v);

	/* where.key, where alone (a filter or sink entry) or key alone (a top-level key) */
	char *shown = got != NULL ? redis_url_redact_text(got) : NULL;

	*cause = xasprintf("%s%s%s: expected %s, got %s", where, *where && *key ? "." : "", key,
	    want, shown != NULL ? shown : !hidden ? "?" :
	    cJSON_IsObject(v) ? "an object" : "an array holding objects");
	free(shown);
	cJSON_free(got);
	return -1;
}

int
conf_get_string(const cJSON *obj, const char *where, const char *key, char **out,
    char **cause)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (v == NULL)
		return 0;
	if (!cJSON_IsString(v))
		return conf_type_error(where, key, "a string", v, cause);
	free(*out);
	*out = xstrdup(v->valuestring);
	return 0;
}

int
conf_get_int(const cJSON *obj, const char *where, const char *key, int64_t min, int64_t max,
    int64_t *out, char **cause)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	char *why = NULL, text[32];
	const char *s;

	if (v == NULL)
		return 0;
	if (cJSON_IsNumber(v)) {
		/* Outside int64_t the cast below would be undefined: say out of range. */
		if (!(v->valuedouble > -9.2e18 && v->valuedouble < 9.2e18)) {
			char *num = cJSON_PrintUnformatted(v);
			*cause = xasprintf("%s%s%s: %s is out of range (%" PRId64 " to %" PRId64 ")",
			    where, *where ? "." : "", key, num != NULL ? num : "?", min, max);
			cJSON_free(num);
			return -1;
		}
		if (v->valuedouble != (double)(int64_t)v->valuedouble)
			return conf_type_error(where, key, "an integer", v, cause);
		snprintf(text, sizeof text, "%lld", (long long)v->valuedouble);
		s = text;
	} else if (cJSON_IsString(v)) {
		s = v->valuestring;
	} else {
		return conf_type_error(where, key, "an integer", v, cause);
	}
	if (util_parse_int(s, min, max, out, &why) != 0) {
		*cause = xasprintf("%s%s%s: %s", where, *where ? "." : "", key, why);
		free(why);
		return -1;
	}
	return 0;
}

int
conf_get_bool(const cJSON *obj, const char *where, const char *key, int *out, char **cause)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (v == NULL)
		return 0;
	if (cJSON_IsBool(v))
		*out = cJSON_IsTrue(v);
	else if (cJSON_IsString(v) && strcmp(v->valuestring, "true") == 0)
		*out = 1;
	else if (cJSON_IsString(v) && strcmp(v->valuestring, "false") == 0)
		*out = 0;
	else
		return conf_type_error(where, key, "true or false", v, cause);
	return 0;
}

static int
conf_key_in(const char *key, const char *const list[])
{
	size_t i;

	for (i = 0; list[i] != NULL; i++) {
		if (fnmatch(list[i], key, 0) == 0)
			return 1;
	}
	return 0;
}

void
conf_warn_unknown(const cJSON *obj, const char *where, const char *const known[])
{
	const cJSON *v;
	char *list = NULL, *next;

	cJSON_ArrayForEach(v, obj) {
		if (conf_key_in(v->string, known) || conf_key_in(v->string, sink_common_keys))
			continue;
		/* cppcheck 2.10 does not see list change across cJSON_ArrayForEach turns. */
		/* cppcheck-suppress knownConditionTrueFalse */
		next = xasprintf("%s%s%s%s%s", list ? list : "", list ? ", " : "", where,
		    *where ? "." : "", v->string);
		free(list);
		list = next;
	}
	if (list != NULL)
		log_warn("ignoring unknown configuration keys: %s", list);
	free(list);
}

/* ---- the relay's own keys ------------------------------------------------------------ */

/* Top-level keys that are not ours to read but belong to the push-events format or to
 * the application's config the fragment came from; silently accepted. */
static const char *const conf_known_top[] = {
	"system.queue-adapter", "system.push-events", "system.push-events.prefix",
	"privilege.can-use-push-events", "privilege.can-use-cache",
	"privilege.can-use-rabbitmq", "outbox.database", "outbox.retention",
	"relay.batch-size", "relay.poll-interval-ms", "relay.max-attempts",
	"relay.backoff-initial-ms", "relay.backoff-max-ms", "relay.backoff-multiplier",
	"relay.log-level", "sinks", "redis.*", "rabbitmq.*", NULL
};

static int
conf_int_field(const cJSON *root, const char *key, int64_t min, int64_t max, int *field,
    char **cause)
{
	int64_t v = *field;

	if (conf_get_int(root, "", key, min, max, &v, cause) != 0)
		return -1;
	*field = (int)v;
	return 0;
}

/* outbox.retention: a duration string ("7d"), or a number of seconds. */
static int
conf_retention(const cJSON *root, char **out, char **cause)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "outbox.retention");

	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e15 &&
	    v->valuedouble == (double)(int64_t)v->valuedouble) {
		*out = xasprintf("%lld", (long long)v->valuedouble);
		return 0;
	}
	return conf_get_string(root, "", "outbox.retention", out, cause);
}

static int
conf_relay_keys(struct conf *cf, const cJSON *root, char **cause)
{
	const cJSON *mult = cJSON_GetObjectItemCaseSensitive(root, "relay.backoff-multiplier");
	char *retention = NULL, *level = NULL, *why = NULL;
	int rc = -1;

	if (conf_get_string(root, "", "outbox.database", &cf->database, cause) != 0 ||
	    conf_int_field(root, "relay.batch-size", 1, 10000, &cf->batch_size, cause) != 0 ||
	    conf_int_field(root, "relay.poll-interval-ms", 1, 3600000, &cf->poll_interval_ms,
		cause) != 0 ||
	    conf_int_field(root, "relay.max-attempts", 1, 1000000, &cf->max_attempts, cause) != 0 ||
	    conf_int_field(root, "relay.backoff-initial-ms", 1, 86400000, &cf->backoff_initial_ms,
		cause) != 0 ||
	    conf_int_field(root, "relay.backoff-max-ms", 1, 86400000, &cf->backoff_max_ms,
		cause) != 0 ||
	    conf_retention(root, &retention, cause) != 0 ||
	    conf_get_string(root, "", "relay.log-level", &level, cause) != 0)
		goto out;
	if (mult != NULL) {
		/* A number, or a string holding one, like the integer keys. */
		double m = -1.0;
		char *end = NULL;
		if (cJSON_IsNumber(mult))
			m = mult->valuedouble;
		else if (cJSON_IsString(mult) && isdigit((unsigned char)mult->valuestring[0])) {
			m = strtod(mult->valuestring, &end);
			if (*end != '\0')
				m = -1.0;
		}
		if (!(m >= 1.0 && m <= 100.0)) {
			conf_type_error("", "relay.backoff-multiplier", "a number from 1 to 100", mult,
			    cause);
			goto out;
		}
		cf->backoff_multiplier = m;
	}
	if (cf->backoff_max_ms < cf->backoff_initial_ms) {
		*cause = xasprintf("relay.backoff-max-ms (%d) is less than relay.backoff-initial-ms "
		    "(%d)", cf->backoff_max_ms, cf->backoff_initial_ms);
		goto out;
	}
	if (retention != NULL && util_parse_duration(retention, &cf->retention_ms, &why) != 0) {
		*cause = xasprintf("outbox.retention: %s", why);
		goto out;
	}
	if (level != NULL && (cf->log_level = log_level_parse(level)) < 0) {
		*cause = xasprintf("relay.log-level: expected error, warn, info or debug, got \"%s\"",
		    level);
		goto out;
	}
	rc = 0;
out:
	free(retention);
	free(level);
	free(why);
	return rc;
}

/* ---- sinks --------------------------------------------------------------------------- */

/* A filter: NULL (every event) or a JSON array of non-empty strings, kept as its text. */
static int
conf_filter(const cJSON *v, const char *where, char **out, char **cause)
{
	const cJSON *item;

	if (v == NULL)
		return 0;
	if (!cJSON_IsArray(v))
		return conf_type_error(where, "", "an array of event names or globs", v, cause);
	cJSON_ArrayForEach(item, v) {
		if (!cJSON_IsString(item) || item->valuestring[0] == '\0')
			return conf_type_error(where, "", "an array of non-empty strings", v, cause);
	}
	free(*out);
	*out = cJSON_PrintUnformatted(v);
	return 0;
}

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

static int
conf_add_sink(struct conf *cf, const char *name, const char *where, const char *type,
    const cJSON *opts, const char *filter, const char *prefix, char **cause)
{
	const struct sink_ops *ops = sink_find_type(type);
	struct conf_sink *cs;
	char *why = NULL, *fwhere;
	size_t i;

	if (ops == NULL) {
		*cause = xasprintf("%s: unknown sink type \"%s\" (use stdout, redis or rabbitmq)",
		    where, type);
		return -1;
	}
	if (!conf_sink_name_ok(name)) {
		*cause = xasprintf("%s: sink names are 1 to %d letters, digits, '.', '_' or '-'",
		    where, CONF_SINK_NAME_MAX);
		return -1;
	}
	for (i = 0; i < cf->nsinks; i++) {
		if (strcmp(cf->sinks[i].sink.name, name) == 0) {
			*cause = xasprintf("%s: a sink named \"%s\" is already configured (%s)", where,
			    name, cf->sinks[i].sink.where);
			return -1;
		}
	}
	cf->sinks = realloc(cf->sinks, (cf->nsinks + 1) * sizeof *cf->sinks);
	if (cf->sinks == NULL)
		abort();
	cs = &cf->sinks[cf->nsinks];
	memset(cs, 0, sizeof *cs);
	cs->sink.name = xstrdup(name);
	cs->sink.where = xstrdup(where);
	cs->sink.ops = ops;
	cs->filter = filter != NULL ? xstrdup(filter) : NULL;
	cs->prefix = xstrdup(prefix != NULL ? prefix : "");
	cf->nsinks++;

	fwhere = xasprintf("%s.events", where);
	if (conf_filter(cJSON_GetObjectItemCaseSensitive(opts, "events"), fwhere, &cs->filter,
	    cause) != 0 ||
	    conf_get_string(opts, where, "prefix", &cs->prefix, cause) != 0) {
		free(fwhere);
		return -1;
	}
	free(fwhere);
	if (ops->configure(&cs->sink, opts, &why) != 0) {
		*cause = why;
		return -1;
	}
	return 0;
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

static int
conf_privilege(const cJSON *root, const char *key, int *allowed, char **cause)
{
	*allowed = 1;
	return conf_get_bool(root, "", key, allowed, cause);
}

/*
 * OUTBOXD_REDIS_PASSWORD / OUTBOXD_AMQP_PASSWORD: the password of the sink that
 * system.queue-adapter (or --redis / --amqp) configures, so it need not be written in a
 * URL on the command line, where ps shows it, nor in the file. It is the sink's
 * "password" option: a password in the URL itself still wins.
 */
static void
conf_env_password(cJSON *opts, const char *adapter)
{
	const char *var = strcmp(adapter, "redis") == 0 ? "OUTBOXD_REDIS_PASSWORD" :
	    strcmp(adapter, "rabbitmq") == 0 ? "OUTBOXD_AMQP_PASSWORD" : NULL;
	const char *pw = var != NULL ? getenv(var) : NULL;

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

static int
conf_sinks(struct conf *cf, const cJSON *root, const char *filter, const char *prefix,
    char **cause)
{
	const cJSON *sinks = cJSON_GetObjectItemCaseSensitive(root, "sinks"), *s;
	char *adapter = NULL, *where, *type = NULL;
	cJSON *opts;
	int rc = 0, allowed;

	if (conf_get_string(root, "", "system.queue-adapter", &adapter, cause) != 0)
		return -1;
	if (adapter != NULL) {
		/* The privilege first: it says why the adapter is off, whatever is built in. */
		const char *privilege = strcmp(adapter, "redis") == 0 ? "privilege.can-use-cache" :
		    strcmp(adapter, "rabbitmq") == 0 ? "privilege.can-use-rabbitmq" : NULL;
		if (privilege != NULL && conf_privilege(root, privilege, &allowed, cause) != 0)
			rc = -1;
		else if (privilege != NULL && !allowed)
			*cause = xasprintf("system.queue-adapter is \"%s\" but %s is false", adapter,
			    privilege), rc = -1;
		else if (sink_find_type(adapter) == NULL)
			*cause = xasprintf("system.queue-adapter: expected \"redis\", \"rabbitmq\" or "
			    "\"stdout\", got \"%s\"", adapter), rc = -1;
		if (rc == 0) {
			opts = strcmp(adapter, "stdout") == 0 ? cJSON_CreateObject() :
			    conf_adapter_options(root, adapter);
			conf_env_password(opts, adapter);
			rc = conf_add_sink(cf, adapter, adapter, adapter, opts, filter,
			    prefix, cause);
			cJSON_Delete(opts);
		}
	}
	free(adapter);
	if (rc != 0 || sinks == NULL)
		return rc;
	if (!cJSON_IsObject(sinks))
		return conf_type_error("", "sinks", "an object of named sinks", sinks, cause);
	cJSON_ArrayForEach(s, sinks) {
		where = xasprintf("sinks.%s", s->string);
		if (!cJSON_IsObject(s))
			rc = conf_type_error(where, "", "an object", s, cause);
		else if ((rc = conf_get_string(s, where, "type", &type, cause)) == 0 && type == NULL)
			*cause = xasprintf("%s: missing \"type\" (stdout, redis or rabbitmq)", where),
			    rc = -1;
		if (rc == 0)
			rc = conf_add_sink(cf, s->string, where, type, s, filter, prefix, cause);
		free(where);
		free(type);
		type = NULL;
		if (rc != 0)
			return -1;
	}
	return 0;
}

static void
conf_defaults(struct conf *cf)
{
	memset(cf, 0, sizeof *cf);
	cf->batch_size = 512;
	cf->poll_interval_ms = 1000;
	cf->max_attempts = 10;
	cf->backoff_initial_ms = 1000;
	cf->backoff_max_ms = 300000;
	cf->backoff_multiplier = 2.0;
	cf->log_level = -1;
}

static int
conf_apply(struct conf *cf, const cJSON *root, char **cause)
{
	const cJSON *events = cJSON_GetObjectItemCaseSensitive(root, "system.push-events");
	char *filter = NULL, *prefix = NULL;
	int allowed, rc = -1;

	if (!cJSON_IsObject(root)) {
		*cause = xasprintf("the configuration must be a JSON object");
		return -1;
	}
	conf_warn_unknown(root, "", conf_known_top);
	if (conf_privilege(root, "privilege.can-use-push-events", &allowed, cause) != 0)
		return -1;
	if (!allowed) {
		*cause = xasprintf("privilege.can-use-push-events is false: push events are "
		    "disabled by this configuration, so there is nothing to relay");
		return -1;
	}
	if (conf_relay_keys(cf, root, cause) != 0 ||
	    conf_filter(events, "system.push-events", &filter, cause) != 0 ||
	    conf_get_string(root, "", "system.push-events.prefix", &prefix, cause) != 0 ||
	    conf_sinks(cf, root, filter, prefix, cause) != 0)
		goto out;
	if (filter != NULL && strcmp(filter, "[]") == 0)
		log_warn("system.push-events is an empty list: no event will be published by the "
		    "sinks that use it");
	if (cf->nsinks == 0) {
		cJSON *none = cJSON_CreateObject();
		rc = conf_add_sink(cf, "stdout", "default", "stdout", none, filter, prefix, cause);
		cJSON_Delete(none);
		if (rc != 0)
			goto out;
		rc = -1;
	}
	if (cf->database == NULL) {
		*cause = xasprintf("no database: set \"outbox.database\" or use --db PATH");
		goto out;
	}
	rc = 0;
out:
	free(filter);
	free(prefix);
	return rc;
}

int
conf_load(struct conf *cf, const char *path, const cJSON *overrides, char **cause)
{
	cJSON *root = NULL;
	const cJSON *v;
	char *text, *why = NULL;
	mode_t mode = 0;
	int rc;

	conf_defaults(cf);
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

void
conf_free(struct conf *cf)
{
	size_t i;

	for (i = 0; i < cf->nsinks; i++) {
		struct conf_sink *cs = &cf->sinks[i];
		if (cs->sink.priv != NULL || cs->sink.target != NULL)
			cs->sink.ops->free(&cs->sink);
		free(cs->sink.name);
		free(cs->sink.where);
		free(cs->sink.target);
		free(cs->filter);
		free(cs->prefix);
	}
	free(cf->sinks);
	free(cf->database);
	memset(cf, 0, sizeof *cf);
}
