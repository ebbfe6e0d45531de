/*
 * ctl_enqueue.c: outboxctl init (create or migrate the schema) and enqueue (one event
 * through liboutbox, with the library's own validation and messages).
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ctl.h"
#include "util.h"

static int
ctl_init(struct ctl *ctl, int argc, char **argv, char **cause)
{
	outbox *ob;
	int rc, version;

	if ((rc = ctl_parse_options(ctl, argc, argv, NULL, NULL, 0, cause)) != 0)
		return rc;
	if ((rc = ctl_open(ctl, OUTBOX_OPEN_CREATE, &ob, cause)) != 0)
		return rc;
	rc = ctl_user_version(outbox_db(ob), &version, cause);
	if (rc == 0)
		printf("initialised %s (schema version %d)\n", ctl->database, version);
	outbox_close(ob);
	return rc;
}

const struct ctl_entry ctl_init_entry = {
	.name = "init",
	.usage = "",
	.summary = "create or migrate the outbox schema in DB (creating the file)",
	.exec = ctl_init,
};

/* ---- enqueue ---------------------------------------------------------------------------- */

/* Add "K=V" to the headers object; a usage error if it is not K=V or K repeats. */
static int
ctl_add_header(cJSON *headers, const char *arg, char **cause)
{
	const char *eq = strchr(arg, '=');
	char *key;
	int rc = 0;

	if (eq == NULL || eq == arg) {
		*cause = xasprintf("--header '%s' is not KEY=VALUE", arg);
		return CTL_USAGE;
	}
	key = xasprintf("%.*s", (int)(eq - arg), arg);
	if (cJSON_GetObjectItemCaseSensitive(headers, key) != NULL) {
		*cause = xasprintf("--header '%s' given twice", key);
		rc = CTL_USAGE;
	} else if (cJSON_AddStringToObject(headers, key, eq + 1) == NULL) {
		*cause = xasprintf("out of memory");
		rc = CTL_ERROR;
	}
	free(key);
	return rc;
}

struct ctl_enqueue_args {
	struct outbox_event ev;
	cJSON *headers;
	int uuid7;
};

static int
ctl_enqueue_option(int c, const char *value, void *arg, char **cause)
{
	struct ctl_enqueue_args *a = arg;

	switch (c) {
	case 'k': a->ev.key = value; return 0;
	case 'H': return ctl_add_header(a->headers, value, cause);
	case 'i': a->ev.id = value; return 0;
	case '7': a->uuid7 = 1; return 0;
	default: return -1;
	}
}

static int
ctl_enqueue_parse(struct ctl *ctl, int argc, char **argv, struct ctl_enqueue_args *a,
    char **cause)
{
	int rc;

	rc = ctl_parse_options(ctl, argc, argv, ctl_enqueue_option, a, 2, cause);
	if (rc != 0)
		return rc;
	if (argc - optind < 2) {
		*cause = xasprintf("enqueue needs an event NAME and a JSON payload");
		return CTL_USAGE;
	}
	if (a->uuid7 && a->ev.id != NULL) {
		*cause = xasprintf("--id and --uuid7 cannot be used together");
		return CTL_USAGE;
	}
	a->ev.name = argv[optind];
	a->ev.payload = argv[optind + 1];
	return 0;
}

static int
ctl_enqueue_run(struct ctl *ctl, struct ctl_enqueue_args *a, char **cause)
{
	char *headers = NULL;
	const char *id;
	outbox *ob;
	int rc;

	if (a->headers->child != NULL &&
	    (headers = cJSON_PrintUnformatted(a->headers)) == NULL) {
		*cause = xasprintf("out of memory");
		return CTL_ERROR;
	}
	a->ev.headers = headers;
	if ((rc = ctl_open(ctl, 0, &ob, cause)) == 0) {
		if (a->uuid7)
			outbox_set_id_format(ob, OUTBOX_ID_UUID7);
		if (outbox_enqueue_event(ob, &a->ev, &id) == OUTBOX_OK)
			printf("%s\n", id);
		else {
			*cause = xasprintf("%s", outbox_errmsg(ob));
			rc = CTL_ERROR;
		}
		outbox_close(ob);
	}
	cJSON_free(headers);
	return rc;
}

static int
ctl_enqueue(struct ctl *ctl, int argc, char **argv, char **cause)
{
	struct ctl_enqueue_args a = { .uuid7 = 0 };
	int rc;

	if ((a.headers = cJSON_CreateObject()) == NULL) {
		*cause = xasprintf("out of memory");
		return CTL_ERROR;
	}
	rc = ctl_enqueue_parse(ctl, argc, argv, &a, cause);
	if (rc == 0)
		rc = ctl_enqueue_run(ctl, &a, cause);
	cJSON_Delete(a.headers);
	return rc;
}

static const struct ctl_option ctl_enqueue_options[] = {
	{ 'k', "key", "K", "ordering key: events with the same key stay in order" },
	{ 'H', "header", "K=V", "a header (a string); repeat for more" },
	{ 'i', "id", "ID", "the event's id (idempotent enqueue) instead of a fresh one" },
	{ '7', "uuid7", NULL, "generate a time-ordered UUID v7 instead of a UUID v4" },
	{ 0, NULL, NULL, NULL }
};

const struct ctl_entry ctl_enqueue_entry = {
	.name = "enqueue",
	.usage = "NAME JSON [--key K] [--header K=V]... [--id ID] [--uuid7]",
	.summary = "add one event and print its id",
	.options = ctl_enqueue_options,
	.exec = ctl_enqueue,
};
