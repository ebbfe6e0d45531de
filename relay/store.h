/*
 * store.h: the outbox database as the relay and outboxctl use it. Every write to the
 * delivery state (outbox_sink, outbox_retry) and every statement of the relay lives in
 * store.c; the loop (relay.c) and outboxctl never write a statement of their own.
 * Strings passed in are borrowed for the call.
 */
#ifndef RELAY_STORE_H
#define RELAY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "outbox.h"

struct store;

/* Why a database cannot be opened; main maps each to an exit status (exit.h). */
enum store_error {
	STORE_ERR_OTHER,       /* the database failed */
	STORE_ERR_NOT_OUTBOX,  /* no outbox schema, or one newer than this code */
	STORE_ERR_MISSING      /* no such file */
};

/* An event as read for publishing; its strings live in the arena given to the read. */
struct store_event {
	int64_t seq;
	char *id;
	char *name;
	char *payload;   /* compact JSON */
	char *headers;   /* compact JSON object, or NULL */
	char *key;       /* ordering key, or NULL */
	int64_t created_at;
	int attempts;    /* for retries: attempts so far */
};

/* What became of one event on a sink, to be recorded. */
enum store_outcome_kind {
	STORE_DELIVERED,  /* a retried event got through: forget its retry row */
	STORE_RETRY,      /* (re)schedule: attempts and next_attempt_at as given */
	STORE_FAILED,     /* gave up after max attempts */
	STORE_WAITING     /* fresh event held behind an earlier one with the same key */
};

struct store_outcome {
	int64_t seq;
	enum store_outcome_kind kind;
	int attempts;
	int64_t next_attempt_at;
	const char *error;
};

/*
 * Open and migrate the database (through liboutbox). On failure *kind says why. The
 * connection waits for locks with a fine busy handler (checkpoint_busy: 5 s in all, as
 * liboutbox's timeout) rather than SQLite's 1 to 25 ms sleeps.
 */
int store_open(struct store **out, const char *path, enum store_error *kind, char **cause);
/* A store over a handle opened elsewhere (outboxctl's, which never migrates); the store
 * owns ob from then on, even on failure. */
int store_adopt(struct store **out, outbox *ob, char **cause);
void store_close(struct store *st);

/*
 * For the relay, under producer load: the store's connection stops running checkpoints on
 * its commits (they fsync on the loop's path) and hands them to a thread with a connection
 * of its own (checkpoint.c), which also keeps the WAL from growing without bound. On
 * failure nothing changed: SQLite's checkpoints go on.
 */
int store_take_checkpoints(struct store *st, char **cause);

/* Create or update a sink's row; return its cursor. A new row starts before the first
 * event, or with latest after the last one committed. */
int store_sink_register(struct store *st, const char *name, const char *type,
    const char *filter, const char *prefix, int latest, int64_t *cursor, char **cause);

/* Up to limit events with seq > after, in seq order, into events[]; *n says how many.
 * Their strings are allocated from text (payload and headers made compact). */
int store_read_new(struct store *st, int64_t after, int limit, struct store_event *events,
    int *n, struct arena *text, char **cause);

/* Up to limit retry rows of sink due at now, oldest first, leaving out rows that wait
 * behind an earlier retrying event with the same key. */
int store_read_due(struct store *st, const char *sink, int64_t now, int limit,
    struct store_event *events, int *n, struct arena *text, char **cause);

/* Earliest next_attempt_at among the sink's retrying events, or -1 if none. */
int store_next_due(struct store *st, const char *sink, int64_t *at, char **cause);

/* Does an event of sink with this key wait in retry? *blocker gets its seq (0 if not). */
int store_key_waiting(struct store *st, const char *sink, const char *key, int64_t *blocker,
    char **cause);

/*
 * In one transaction: move the sink's cursor from from to to, and record the outcomes.
 * If the cursor was no longer at from (an operator rewound it meanwhile), it is left
 * alone and *moved is set: the caller reloads it with store_sink_cursor.
 * With wait 0, a write lock that another connection holds is not waited for: 1, nothing
 * written (a store from store_open; one from store_adopt keeps its handle's busy
 * timeout and waits).
 */
int store_record(struct store *st, const char *sink, int64_t from, int64_t to,
    const struct store_outcome *outcomes, size_t n, int wait, int *moved, char **cause);

/* Did the last failure come from a state that passes (the database locked past the busy
 * timeout, a full disk) rather than from the database itself? */
int store_failure_passes(struct store *st);

/* The sink's cursor as stored (-1 if the sink has no row). */
int store_sink_cursor(struct store *st, const char *sink, int64_t *cursor, char **cause);

/* Delete up to limit events created before cutoff (unix ms) that every sink has handed off
 * and that are in no retry row. *deleted says how many. */
int store_purge(struct store *st, int64_t cutoff, int limit, int *deleted, char **cause);

/* How many events store_purge would delete with this cutoff, all batches together. */
int store_purge_count(struct store *st, int64_t cutoff, int64_t *n, char **cause);

/* How many events wait for the sink: pending after its cursor (through its filter) plus
 * those in retry; -1 if the sink has no row. */
int store_sink_backlog(struct store *st, const char *sink, int64_t *n, char **cause);

/* For the metrics, cheaply (index seeks and one index range, no table scan): the last
 * seq committed (0 when none), and for a sink the number of its events in state retry and
 * the created_at of the oldest event waiting for it (after cursor, or retrying), -1 if
 * none. */
int store_max_seq(struct store *st, int64_t *max, char **cause);
int store_sink_waiting(struct store *st, const char *sink, int64_t cursor, int64_t *retrying,
    int64_t *oldest_at, char **cause);

/* ---- operations (outboxctl) ------------------------------------------------------------ */

/* An IMMEDIATE transaction around several of the calls below, so that a running relay
 * sees all of an operation or none of it. store_rollback never fails. */
int store_begin(struct store *st, char **cause);
int store_commit(struct store *st, char **cause);
void store_rollback(struct store *st);

/*
 * Which (sink, event) pairs a replay puts back in line: those in state retry, failed or
 * delivered (with failed, only failed ones) that every selector given holds for. NULL,
 * 0 and INT64_MIN / INT64_MAX mean a selector is not given.
 */
struct store_replay_select {
	const char *sink;
	int failed;
	int64_t seq;              /* this event only */
	const char *name;         /* GLOB on the event's name */
	int64_t since, until;     /* created_at in [since, until), unix ms */
};

/* One pair chosen by a replay, for the caller to show; strings valid during the call. */
struct store_replay_row {
	const char *sink;
	int64_t seq;
	const char *id;
	const char *name;
	const char *state;        /* before the replay: retry, failed or delivered */
};

typedef void (*store_replay_cb)(const struct store_replay_row *row, void *arg);

/* How many pairs the selection chooses. */
int store_replay_count(struct store *st, const struct store_replay_select *sel, int64_t *n,
    char **cause);

/*
 * Put the chosen pairs back in line: state retry, attempts 0, due now, no last error (a
 * delivered event gets a retry row, so the relay publishes it again by itself). Calls
 * each(row, arg) for every pair, in (seq, sink) order; with dry_run, writes nothing.
 * *n says how many pairs there were.
 */
int store_replay(struct store *st, const struct store_replay_select *sel, int dry_run,
    store_replay_cb each, void *arg, int64_t *n, char **cause);

/* Rewind the cursor of sink (NULL: every sink) to just before seq, so every event from seq
 * on is handed off again; a cursor already behind stays. *sinks says how many moved. */
int store_rewind(struct store *st, const char *sink, int64_t seq, int64_t *sinks,
    char **cause);

/* How many (sink, event) pairs store_rewind would hand off again. */
int store_rewind_count(struct store *st, const char *sink, int64_t seq, int64_t *n,
    char **cause);

/* Forget a sink: its row and its retry rows, in one transaction. *retry says how many
 * retry rows went. */
int store_sink_remove(struct store *st, const char *sink, int64_t *retry, char **cause);

#endif
