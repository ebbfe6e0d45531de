/*
 * outbox.h: liboutbox, the producer side of the outboxd transactional outbox.
 *
 * An application enqueues an event in the same SQLite transaction as its own writes, on
 * its own connection: the event exists if and only if that transaction commits. The relay
 * daemon, outboxd, publishes committed events to Redis, RabbitMQ or stdout.
 *
 *     outbox *ob;
 *     if (outbox_attach(db, &ob) != OUTBOX_OK) { ... outbox_errmsg(ob) ... }
 *     sqlite3_exec(db, "BEGIN", 0, 0, 0);
 *     ... the application's own INSERT/UPDATE ...
 *     outbox_enqueue(ob, "user.login", "{\"user\":{\"_id\":\"42\"}}", NULL);
 *     sqlite3_exec(db, "COMMIT", 0, 0, 0);
 *
 * Errors: every function that can fail returns OUTBOX_OK (0) or a negative OUTBOX_E* code
 * and keeps a one-line message, naming the argument and position at fault, for
 * outbox_errmsg(). The library never prints, aborts or exits. A failed call writes
 * nothing and leaves the caller's transaction open and intact.
 *
 * Ownership: arguments are borrowed for the duration of the call. Strings returned by the
 * library (event ids, messages) belong to the handle and stay valid until the next call
 * on that handle. Nothing returned needs freeing except the handle (outbox_close).
 *
 * Threads: a handle, like the sqlite3 connection under it, must be used by one thread
 * at a time. Use one handle per connection; handles on different connections are
 * independent.
 */
#ifndef OUTBOX_H
#define OUTBOX_H

#include <sqlite3.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Schema version this library writes and understands (PRAGMA user_version). */
#define OUTBOX_SCHEMA_VERSION 2

/* Return codes. */
#define OUTBOX_OK          0
#define OUTBOX_EINVAL    (-1) /* bad argument: name, payload, headers, key or id */
#define OUTBOX_EDUPLICATE (-2) /* an event with this id is already in the outbox */
#define OUTBOX_ESQLITE   (-3) /* SQLite failed (I/O, busy, locked, ...); message has details */
#define OUTBOX_ESCHEMA   (-4) /* not an outbox database, or newer than this library */
#define OUTBOX_ENOMEM    (-5) /* out of memory */
#define OUTBOX_EMISUSE   (-6) /* NULL handle or output pointer */

/* Limits on event fields, also enforced by CHECK constraints in the schema. */
#define OUTBOX_NAME_MAX 255 /* bytes; no spaces or control characters */
#define OUTBOX_ID_MAX   255 /* bytes; no spaces or control characters */

typedef struct outbox outbox;

/* How ids are generated when the producer supplies none. */
enum outbox_id_format {
	OUTBOX_ID_UUID4 = 0, /* random UUID v4, the push-events format (default) */
	OUTBOX_ID_UUID7 = 1  /* time-ordered UUID v7: far faster inserts in large transactions */
};

/* outbox_open flags. */
#define OUTBOX_OPEN_CREATE   0x1 /* create the database file if it does not exist */
#define OUTBOX_OPEN_EXISTING 0x2 /* neither create nor migrate the schema: a database
                                    without the current outbox schema is OUTBOX_ESCHEMA
                                    and is left untouched (for inspection tools) */
#define OUTBOX_OPEN_MIGRATE  0x4 /* migrate an older outbox schema but never create one:
                                    a database without an outbox schema is OUTBOX_ESCHEMA
                                    and is left untouched (for the relay) */

/*
 * Open a database file for producing (or administering) events: sets WAL mode, a busy
 * timeout of 5 s and synchronous=NORMAL, then creates or migrates the outbox schema.
 * Without OUTBOX_OPEN_CREATE a missing file is an error (OUTBOX_ESQLITE) and nothing is
 * created. On failure *out is still set, so that outbox_errmsg(*out) explains, unless
 * memory ran out (then *out is NULL); close it with outbox_close.
 */
int outbox_open(const char *path, int flags, outbox **out);

/*
 * Bind a handle to the application's own connection, which stays the caller's: it is not
 * closed by outbox_close. Creates or migrates the schema (in its own transaction, so call
 * it outside any transaction of yours). Same *out rule as outbox_open.
 */
int outbox_attach(sqlite3 *db, outbox **out);

/* Finalise cached statements; close the connection if outbox_open opened it. NULL is fine. */
void outbox_close(outbox *ob);

/* The connection under the handle. */
sqlite3 *outbox_db(outbox *ob);

/* Message for the last failed call on this handle ("" after success). NULL-safe. */
const char *outbox_errmsg(const outbox *ob);

/* Fixed description of a return code, e.g. "invalid argument". */
const char *outbox_errstr(int code);

/* Package version, e.g. "0.1.0". */
const char *outbox_version(void);

/* Choose how ids are generated for later enqueues on this handle. */
int outbox_set_id_format(outbox *ob, enum outbox_id_format format);

/*
 * One event. Only name and payload are required.
 *   name     1..OUTBOX_NAME_MAX bytes, no spaces or control characters ("user.login").
 *   payload  JSON text: the event's "data" (any JSON value).
 *   headers  NULL or a JSON object: metadata, sent as AMQP headers / envelope "metadata".
 *   key      NULL or an ordering key: events with the same key reach a sink in order.
 *   id       NULL (a fresh id is generated) or the caller's own id for idempotent
 *            enqueue: enqueueing an id that is already present fails with
 *            OUTBOX_EDUPLICATE and writes nothing.
 */
struct outbox_event {
	const char *name;
	const char *payload;
	const char *headers;
	const char *key;
	const char *id;
};

/*
 * Enqueue an event. Inside a transaction of the caller's, the event commits or rolls back
 * with it; outside one, it is committed at once. On success *id_out (if not NULL) points
 * to the event's id, owned by the handle until its next call.
 */
int outbox_enqueue_event(outbox *ob, const struct outbox_event *ev, const char **id_out);

/* Shorthand for an event with just a name and a JSON payload. */
int outbox_enqueue(outbox *ob, const char *name, const char *payload, const char **id_out);

/*
 * The same with cJSON values (from <cjson/cJSON.h>), serialised compactly. headers may be
 * NULL and must otherwise be an object. key and id as in struct outbox_event.
 */
struct cJSON;
int outbox_enqueue_cjson(outbox *ob, const char *name, const struct cJSON *payload,
                         const struct cJSON *headers, const char *key, const char *id,
                         const char **id_out);

#ifdef __cplusplus
}
#endif

#endif /* OUTBOX_H */
