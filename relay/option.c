/*
 * option.c: read, default, copy, compare and free the options of a table (option.h).
 */
#include "config.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "option.h"
#include "redis_url.h"
#include "util.h"

#define OPTION_FIELD(base, o, type) ((type *)(void *)((char *)(base) + (o)->offset))
#define OPTION_CFIELD(base, o, type) \
	((const type *)(const void *)((const char *)(base) + (o)->offset))

/* Does v hold an object anywhere? Its text may hold a password: never quote it. */
static int
option_holds_object(const cJSON *v)
{
	const cJSON *c;

	if (cJSON_IsObject(v))
		return 1;
	cJSON_ArrayForEach(c, v) {
		if (option_holds_object(c))
			return 1;
	}
	return 0;
}

int
option_type_error(const char *where, const char *key, const char *want, const cJSON *v,
    int secret, char **cause)
{
	int hidden = option_holds_object(v);
	char *got = hidden || secret ? NULL : cJSON_PrintUnformatted(v);
	char *shown = got != NULL ? redis_url_redact_text(got) : NULL;
	const char *sep = *where && *key ? "." : "";

	/* where.key, where alone (a filter or sink entry) or key alone (a top-level key) */
	if (secret)
		*cause = xasprintf("%s%s%s: expected %s", where, sep, key, want);
	else
		*cause = xasprintf("%s%s%s: expected %s, got %s", where, sep, key, want,
		    shown != NULL ? shown : !hidden ? "?" :
		    cJSON_IsObject(v) ? "an object" : "an array holding objects");
	free(shown);
	cJSON_free(got);
	return -1;
}

/* "where.key: " as a prefix for messages. */
static char *
option_at(const char *where, const char *key)
{
	return xasprintf("%s%s%s", where, *where ? "." : "", key);
}

/* "where.key: " and a message; returns -1. */
static int __attribute__((format(printf, 4, 5)))
option_error(const char *where, const char *key, char **cause, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	*cause = xasprintf("%s%s%s: %s", where, *where ? "." : "", key, msg);
	free(msg);
	return -1;
}

/* ---- one value of each type ---------------------------------------------------------- */

static int
option_parse_int(const struct conf_option *o, const cJSON *v, const char *where,
    const char *key, int64_t *out, char **cause)
{
	char *why = NULL, text[32];
	const char *s;
	int rc;

	if (cJSON_IsNumber(v)) {
		/* Outside int64_t the cast below would be undefined: say out of range. */
		if (!(v->valuedouble > -9.2e18 && v->valuedouble < 9.2e18)) {
			char *num = cJSON_PrintUnformatted(v);
			rc = option_error(where, key, cause, "%s is out of range (%" PRId64 " to %"
			    PRId64 ")", num != NULL ? num : "?", o->min, o->max);
			cJSON_free(num);
			return rc;
		}
		if (v->valuedouble != (double)(int64_t)v->valuedouble)
			return option_type_error(where, key, "an integer", v, 0, cause);
		snprintf(text, sizeof text, "%lld", (long long)v->valuedouble);
		s = text;
	} else if (cJSON_IsString(v)) {
		s = v->valuestring;
	} else {
		return option_type_error(where, key, "an integer", v, 0, cause);
	}
	if (util_parse_int(s, o->min, o->max, out, &why) != 0) {
		rc = option_error(where, key, cause, "%s", why);
		free(why);
		return rc;
	}
	return 0;
}

static int
option_parse_bool(const cJSON *v, const char *where, const char *key, int *out,
    char **cause)
{
	if (cJSON_IsBool(v))
		*out = cJSON_IsTrue(v);
	else if (cJSON_IsString(v) && strcmp(v->valuestring, "true") == 0)
		*out = 1;
	else if (cJSON_IsString(v) && strcmp(v->valuestring, "false") == 0)
		*out = 0;
	else
		return option_type_error(where, key, "true or false", v, 0, cause);
	return 0;
}

/* A number, or a string holding one, like the integer keys. */
static int
option_parse_number(const struct conf_option *o, const cJSON *v, const char *where,
    const char *key, double *out, char **cause)
{
	double d = -1.0 / 0.0;
	char *end = NULL, want[64];

	if (cJSON_IsNumber(v)) {
		d = v->valuedouble;
	} else if (cJSON_IsString(v) && v->valuestring[0] >= '0' && v->valuestring[0] <= '9') {
		d = strtod(v->valuestring, &end);
		if (*end != '\0')
			d = -1.0 / 0.0;
	}
	if (!(d >= (double)o->min && d <= (double)o->max)) {
		snprintf(want, sizeof want, "a number from %" PRId64 " to %" PRId64, o->min, o->max);
		return option_type_error(where, key, want, v, 0, cause);
	}
	*out = d;
	return 0;
}

/* A duration string ("7d"), or a whole number of seconds. */
static int
option_parse_duration(const cJSON *v, const char *where, const char *key, int64_t *out,
    char **cause)
{
	char *why = NULL, text[32];
	const char *s;
	int rc;

	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e15 &&
	    v->valuedouble == (double)(int64_t)v->valuedouble) {
		snprintf(text, sizeof text, "%lld", (long long)v->valuedouble);
		s = text;
	} else if (cJSON_IsString(v)) {
		s = v->valuestring;
	} else {
		return option_type_error(where, key, "a string", v, 0, cause);
	}
	if (util_parse_duration(s, out, &why) != 0) {
		rc = option_error(where, key, cause, "%s", why);
		free(why);
		return rc;
	}
	return 0;
}

static int
option_parse_choice(const struct conf_option *o, const cJSON *v, const char *where,
    const char *key, int *out, char **cause)
{
	char *want = NULL, *next;
	size_t i, n;
	int rc;

	for (i = 0; cJSON_IsString(v) && o->choices[i] != NULL; i++) {
		if (strcmp(o->choices[i], v->valuestring) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	for (n = 0; o->choices[n] != NULL; n++)
		;
	/* "a", "b" or "c" */
	for (i = 0; i < n; i++) {
		next = xasprintf("%s%s\"%s\"", want != NULL ? want : "",
		    i == 0 ? "" : i + 1 == n ? " or " : ", ", o->choices[i]);
		free(want);
		want = next;
	}
	rc = option_type_error(where, key, want, v, 0, cause);
	free(want);
	return rc;
}

static int
option_parse_strings(const struct conf_option *o, const cJSON *v, const char *where,
    const char *key, struct option_strings *out, char **cause)
{
	const cJSON *item;
	size_t i, n = 0;

	if (cJSON_IsString(v)) {
		n = 1;
	} else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) {
		cJSON_ArrayForEach(item, v) {
			if (!cJSON_IsString(item))
				break;
			n++;
		}
		if (n != (size_t)cJSON_GetArraySize(v))
			n = 0;
	}
	if (n == 0)
		return option_type_error(where, key, "a string or an array of strings", v,
		    o->flags & OPTION_SECRET, cause);
	for (i = 0; i < out->n; i++)
		free(out->v[i]);
	free(out->v);
	out->v = xcalloc(n, sizeof *out->v);
	out->n = 0;
	if (cJSON_IsString(v)) {
		out->v[out->n++] = xstrdup(v->valuestring);
		return 0;
	}
	cJSON_ArrayForEach(item, v) {
		out->v[out->n++] = xstrdup(item->valuestring);
	}
	return 0;
}

static int
option_parse_patterns(const cJSON *v, const char *where, const char *key, char **out,
    char **cause)
{
	const cJSON *item;

	if (!cJSON_IsArray(v))
		return option_type_error(where, key, "an array of event names or globs", v, 0,
		    cause);
	cJSON_ArrayForEach(item, v) {
		if (!cJSON_IsString(item) || item->valuestring[0] == '\0')
			return option_type_error(where, key, "an array of non-empty strings", v, 0,
			    cause);
	}
	free(*out);
	*out = cJSON_PrintUnformatted(v);
	return 0;
}

/* An object whose values are strings (HTTP headers), kept as its compact text. */
static int
option_parse_object(const struct conf_option *o, const cJSON *v, const char *where,
    const char *key, char **out, char **cause)
{
	const cJSON *item;
	int strings = (o->flags & OPTION_STRING_VALUES) != 0;

	if (!cJSON_IsObject(v))
		return option_type_error(where, key, strings ? "an object of strings" : "an object",
		    v, o->flags & OPTION_SECRET, cause);
	cJSON_ArrayForEach(item, v) {
		if (strings && !cJSON_IsString(item))
			return option_error(where, key, cause, "the value of \"%s\" must be a "
			    "string", item->string);
	}
	free(*out);
	*out = cJSON_PrintUnformatted(v);
	return 0;
}

static int
option_parse(const struct conf_option *o, void *base, const cJSON *v, const char *where,
    const char *key, char **cause)
{
	int64_t i64 = 0;
	char **s;

	switch (o->type) {
	case OPTION_STRING:
		if (!cJSON_IsString(v))
			return option_type_error(where, key, "a string", v, o->flags & OPTION_SECRET,
			    cause);
		s = OPTION_FIELD(base, o, char *);
		free(*s);
		*s = (o->flags & OPTION_EMPTY_IS_NULL) && v->valuestring[0] == '\0' ? NULL :
		    xstrdup(v->valuestring);
		return 0;
	case OPTION_INT:
		if (option_parse_int(o, v, where, key, &i64, cause) != 0)
			return -1;
		*OPTION_FIELD(base, o, int) = (int)i64;
		return 0;
	case OPTION_INT64:
		return option_parse_int(o, v, where, key, OPTION_FIELD(base, o, int64_t), cause);
	case OPTION_BOOL:
		return option_parse_bool(v, where, key, OPTION_FIELD(base, o, int), cause);
	case OPTION_NUMBER:
		return option_parse_number(o, v, where, key, OPTION_FIELD(base, o, double), cause);
	case OPTION_DURATION:
		return option_parse_duration(v, where, key, OPTION_FIELD(base, o, int64_t), cause);
	case OPTION_CHOICE:
		return option_parse_choice(o, v, where, key, OPTION_FIELD(base, o, int), cause);
	case OPTION_STRINGS:
		return option_parse_strings(o, v, where, key,
		    OPTION_FIELD(base, o, struct option_strings), cause);
	case OPTION_PATTERNS:
		return option_parse_patterns(v, where, key, OPTION_FIELD(base, o, char *), cause);
	case OPTION_OBJECT:
		return option_parse_object(o, v, where, key, OPTION_FIELD(base, o, char *), cause);
	case OPTION_OTHER:
		break;
	}
	return 0;
}

/* ---- tables ---------------------------------------------------------------------------- */

void
option_defaults(const struct conf_option *table, void *base)
{
	const struct conf_option *o;
	char *cause = NULL;
	cJSON *v;

	option_free(table, base);
	for (o = table; o->name != NULL; o++) {
		if (o->def == NULL || o->type == OPTION_OTHER)
			continue;
		if ((v = cJSON_CreateString(o->def)) == NULL)
			abort();
		/* A default that its own row refuses is a bug in the table. */
		if (option_parse(o, base, v, "default", o->name, &cause) != 0) {
			log_error("%s", cause);
			abort();
		}
		cJSON_Delete(v);
	}
}

int
option_read(const struct conf_option *table, void *base, const cJSON *obj, const char *where,
    char **cause)
{
	const struct conf_option *o;
	const cJSON *v, *a;
	char *at, *aat;

	for (o = table; o->name != NULL; o++) {
		if (o->type == OPTION_OTHER)
			continue;
		v = cJSON_GetObjectItemCaseSensitive(obj, o->name);
		a = o->alias != NULL ? cJSON_GetObjectItemCaseSensitive(obj, o->alias) : NULL;
		if (v != NULL && a != NULL && !cJSON_Compare(v, a, 1)) {
			aat = option_at(where, o->alias);
			at = option_at(where, o->name);
			*cause = xasprintf("%s and %s differ: give one of them", aat, at);
			free(aat);
			free(at);
			return -1;
		}
		if (v == NULL && a == NULL)
			continue;
		if (option_parse(o, base, v != NULL ? v : a, where, v != NULL ? o->name : o->alias,
		    cause) != 0)
			return -1;
	}
	return 0;
}

static int
option_known(const struct conf_option *table, const char *key)
{
	const struct conf_option *o;

	for (o = table; o->name != NULL; o++) {
		if (strcmp(o->name, key) == 0 || (o->alias != NULL && strcmp(o->alias, key) == 0))
			return 1;
		if (o->type == OPTION_OTHER && fnmatch(o->name, key, 0) == 0)
			return 1;
	}
	return 0;
}

void
option_warn_unknown(const struct conf_option *const tables[], const cJSON *obj, const char *where)
{
	const cJSON *v;
	char *list = NULL, *next;
	size_t i;
	int known;

	cJSON_ArrayForEach(v, obj) {
		for (i = 0, known = 0; tables[i] != NULL && !known; i++)
			known = option_known(tables[i], v->string);
		if (known)
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

void
option_free(const struct conf_option *table, void *base)
{
	const struct conf_option *o;
	struct option_strings *ss;
	size_t i;

	if (base == NULL)
		return;
	for (o = table; o->name != NULL; o++) {
		switch (o->type) {
		case OPTION_STRING:
		case OPTION_PATTERNS:
		case OPTION_OBJECT:
			free(*OPTION_FIELD(base, o, char *));
			*OPTION_FIELD(base, o, char *) = NULL;
			break;
		case OPTION_STRINGS:
			ss = OPTION_FIELD(base, o, struct option_strings);
			for (i = 0; i < ss->n; i++)
				free(ss->v[i]);
			free(ss->v);
			ss->v = NULL;
			ss->n = 0;
			break;
		default:
			break;
		}
	}
}

void
option_copy(const struct conf_option *table, void *dst, const void *src)
{
	const struct conf_option *o;
	const struct option_strings *from;
	struct option_strings *to;
	const char *s;
	size_t i;

	for (o = table; o->name != NULL; o++) {
		switch (o->type) {
		case OPTION_STRING:
		case OPTION_PATTERNS:
		case OPTION_OBJECT:
			s = *OPTION_CFIELD(src, o, char *);
			*OPTION_FIELD(dst, o, char *) = s != NULL ? xstrdup(s) : NULL;
			break;
		case OPTION_STRINGS:
			from = OPTION_CFIELD(src, o, struct option_strings);
			to = OPTION_FIELD(dst, o, struct option_strings);
			to->n = from->n;
			to->v = from->n > 0 ? xcalloc(from->n, sizeof *to->v) : NULL;
			for (i = 0; i < from->n; i++)
				to->v[i] = xstrdup(from->v[i]);
			break;
		case OPTION_INT:
		case OPTION_BOOL:
		case OPTION_CHOICE:
			*OPTION_FIELD(dst, o, int) = *OPTION_CFIELD(src, o, int);
			break;
		case OPTION_INT64:
		case OPTION_DURATION:
			*OPTION_FIELD(dst, o, int64_t) = *OPTION_CFIELD(src, o, int64_t);
			break;
		case OPTION_NUMBER:
			*OPTION_FIELD(dst, o, double) = *OPTION_CFIELD(src, o, double);
			break;
		case OPTION_OTHER:
			break;
		}
	}
}

static int
option_streq(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int
option_equal(const struct conf_option *table, const void *a, const void *b)
{
	const struct conf_option *o;
	const struct option_strings *sa, *sb;
	size_t i;

	for (o = table; o->name != NULL; o++) {
		switch (o->type) {
		case OPTION_STRING:
		case OPTION_PATTERNS:
		case OPTION_OBJECT:
			if (!option_streq(*OPTION_CFIELD(a, o, char *), *OPTION_CFIELD(b, o, char *)))
				return 0;
			break;
		case OPTION_STRINGS:
			sa = OPTION_CFIELD(a, o, struct option_strings);
			sb = OPTION_CFIELD(b, o, struct option_strings);
			if (sa->n != sb->n)
				return 0;
			for (i = 0; i < sa->n; i++) {
				if (strcmp(sa->v[i], sb->v[i]) != 0)
					return 0;
			}
			break;
		case OPTION_INT:
		case OPTION_BOOL:
		case OPTION_CHOICE:
			if (*OPTION_CFIELD(a, o, int) != *OPTION_CFIELD(b, o, int))
				return 0;
			break;
		case OPTION_INT64:
		case OPTION_DURATION:
			if (*OPTION_CFIELD(a, o, int64_t) != *OPTION_CFIELD(b, o, int64_t))
				return 0;
			break;
		case OPTION_NUMBER:
			if (*OPTION_CFIELD(a, o, double) != *OPTION_CFIELD(b, o, double))
				return 0;
			break;
		case OPTION_OTHER:
			break;
		}
	}
	return 1;
}
