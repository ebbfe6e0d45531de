/*
 * filter.c: a sink's event filter (see filter.h). Matching is sqlite3_strglob, the
 * function behind SQL's GLOB operator, so C and the views cannot disagree on a pattern.
 */
#include "config.h"

#include <stdlib.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "filter.h"
#include "util.h"

struct filter {
	size_t n;
	char **patterns;
};

int
filter_parse(const char *json, struct filter **out, char **cause)
{
	const cJSON *item;
	struct filter *f;
	cJSON *arr;

	*out = NULL;
	if (json == NULL)
		return 0;
	if ((arr = cJSON_Parse(json)) == NULL || !cJSON_IsArray(arr)) {
		cJSON_Delete(arr);
		*cause = xasprintf("filter %s: expected a JSON array of patterns", json);
		return -1;
	}
	f = xcalloc(1, sizeof *f);
	f->patterns = xcalloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof *f->patterns);
	cJSON_ArrayForEach(item, arr) {
		if (!cJSON_IsString(item)) {
			*cause = xasprintf("filter %s: every pattern must be a string", json);
			cJSON_Delete(arr);
			filter_free(f);
			return -1;
		}
		f->patterns[f->n++] = xstrdup(item->valuestring);
	}
	cJSON_Delete(arr);
	*out = f;
	return 0;
}

int
filter_match(const struct filter *f, const char *name, const char *published)
{
	size_t i;

	if (f == NULL)
		return 1;
	for (i = 0; i < f->n; i++) {
		if (sqlite3_strglob(f->patterns[i], name) == 0 ||
		    sqlite3_strglob(f->patterns[i], published) == 0)
			return 1;
	}
	return 0;
}

void
filter_free(struct filter *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < f->n; i++)
		free(f->patterns[i]);
	free(f->patterns);
	free(f);
}
