/*
 * check_relay.c: unit tests for the loop (relay.c) with a fake sink, each on a fresh
 * database in a private temporary directory: batching, cuts at repeated ordering keys,
 * retries and `failed`, events waiting behind their key, outages (SINK_UNSENT) that burn
 * no attempt and never let the cursor pass an unsent event, the filter and the prefix.
 *
 * The fake replaces the built-in sinks through relay_options.sink_ops. It is scripted per
 * event and records every batch it was given, so each test asserts both what reached the
 * sink, batch by batch, and what the loop wrote down (outbox_sink.cursor, outbox_retry).
 * The fake lets the loop read ahead (sink_meanwhile) in every publish, as the real sinks
 * do once a batch is written out, so every test also checks that reading ahead changes
 * nothing the loop decides.
 * Every relay_run is one `outboxd --once`: it publishes what is due, retries included
 * (with backoff of 1 ms they are due at once), and returns; a test that wants to look
 * between two passes has the fake raise the stop flag after a given publish, as SIGTERM
 * would.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "conf.h"
#include "exit.h"
#include "log.h"
#include "outbox.h"
#include "relay.h"
#include "sink.h"
#include "store.h"
#include "unit_main.h"
#include "util.h"
#include "wake.h"

#define FAKE_SEQS 64      /* events a test may enqueue */
#define FAKE_TEXT 2048    /* room for the record of batches and names */

static char check_dir[256];

/* ---- the fake sink ----------------------------------------------------------------- */

/*
 * A script is one action per time the event is published: 'D' delivered, 'R' rejected,
 * 'U' the connection breaks there (this message and every later one in the batch stay
 * SINK_UNSENT, publish returns -1). Past its end the event is delivered; a trailing '*'
 * repeats the last action for ever. Events are scripted by seq or by published name.
 */
static struct fake {
	const char *by_seq[FAKE_SEQS + 1];
	const char *name, *name_script;
	int acted[FAKE_SEQS + 1];       /* script steps used: not for messages after a break */
	int seen[FAKE_SEQS + 1];        /* times each event was in a batch */
	int delivered[FAKE_SEQS + 1];
	char batches[FAKE_TEXT];        /* "1,2,3 | 4": each publish, its seqs in order */
	char names[FAKE_TEXT];          /* the published names, in order, space-separated */
	int publishes, connects, disconnects;
	int refuse;                     /* connects still to refuse */
	int stop_after;                 /* raise stop after this publish (0: never) */
	int commit_during;              /* enqueue an event during this publish (0: never) */
	int lock_during;                /* a producer takes the write lock then (0: never) */
	char locked[FAKE_TEXT];         /* per publish: 'L' if the lock was held, else '-' */
} fake;

static volatile sig_atomic_t fake_stop;

static void
fake_append(char *buf, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf + used, FAKE_TEXT - used, fmt, ap);
	va_end(ap);
	ck_assert_msg(n >= 0 && (size_t)n < FAKE_TEXT - used, "the fake's record is full");
}

static void enqueue(const char *name, const char *key);
static void holder_start(void);
static int holder_holds(void);

static char
fake_action(const struct sink_message *m)
{
	const char *s = fake.by_seq[m->seq];
	size_t len;
	int step = fake.acted[m->seq]++;

	if (s == NULL && fake.name != NULL && strcmp(m->name, fake.name) == 0)
		s = fake.name_script;
	if (s == NULL)
		return 'D';
	len = strlen(s);
	if (len > 1 && s[len - 1] == '*' && (size_t)step >= len - 1)
		return s[len - 2];
	return (size_t)step < len ? s[step] : 'D';
}

static int
fake_publish(struct sink *sk, struct sink_message *msgs, size_t n, char **cause)
{
	size_t i;
	int broken = 0;

	ck_assert_int_eq(sk->connected, 1);
	/* "Written out": the loop reads ahead now, then a producer may commit. */
	sink_meanwhile(sk);
	if (fake.commit_during == fake.publishes + 1)
		enqueue("late.commit", NULL);
	if (fake.lock_during == fake.publishes + 1)
		holder_start();
	fake_append(fake.locked, "%c", holder_holds() ? 'L' : '-');
	fake_append(fake.batches, "%s", fake.publishes > 0 ? " | " : "");
	for (i = 0; i < n; i++) {
		struct sink_message *m = &msgs[i];
		ck_assert_msg(m->seq >= 1 && m->seq <= FAKE_SEQS, "seq %lld", (long long)m->seq);
		ck_assert_int_eq(m->status, SINK_UNSENT);
		fake_append(fake.batches, "%s%lld", i > 0 ? "," : "", (long long)m->seq);
		fake_append(fake.names, "%s%s", fake.names[0] != '\0' ? " " : "", m->name);
		fake.seen[m->seq]++;
		switch (broken ? 'U' : fake_action(m)) {
		case 'R':
			sink_set_status(m, SINK_REJECTED, "refused: seq %lld", (long long)m->seq);
			break;
		case 'U':
			sink_set_status(m, SINK_UNSENT, "connection reset");
			broken = 1;
			break;
		default:
			m->status = SINK_DELIVERED;
			fake.delivered[m->seq]++;
		}
	}
	if (++fake.publishes == fake.stop_after)
		fake_stop = 1;
	if (broken) {
		*cause = xstrdup("connection reset by the fake");
		return -1;
	}
	return 0;
}

static int
fake_connect(struct sink *sk, char **cause)
{
	fake.connects++;
	if (fake.refuse > 0) {
		fake.refuse--;
		*cause = xstrdup("connection refused by the fake");
		return -1;
	}
	return 0;
}

static void
fake_disconnect(struct sink *sk)
{
	fake.disconnects++;
}

static char *
fake_describe(const void *opts)
{
	return xstrdup("the fake");
}

static const struct conf_option fake_options[] = {
	OPTION_END
};

static const struct sink_type fake_type = {
	.name = "fake",
	.options = fake_options,
	.options_size = 0,
	.describe = fake_describe,
};

static const struct sink_ops fake_ops = {
	.type = &fake_type,
	.connect = fake_connect,
	.publish = fake_publish,
	.disconnect = fake_disconnect,
};

/* ---- the database, the configuration, one run ------------------------------------- */

static char db_path[320];
static outbox *producer;
static int64_t enqueued;
static struct conf cf;

static void
setup(void)
{
	static int tests;   /* with CK_FORK=no every test runs in this one process */
	int rc;

	snprintf(db_path, sizeof db_path, "%s/t-%d-%d.db", check_dir, (int)getpid(), ++tests);
	rc = outbox_open(db_path, OUTBOX_OPEN_CREATE, &producer);
	ck_assert_msg(rc == OUTBOX_OK, "outbox_open: %s", outbox_errmsg(producer));
	enqueued = 0;
	memset(&fake, 0, sizeof fake);
	memset(&cf, 0, sizeof cf);
	log_set_level(LOG_LEVEL_WARN);
}

static void
teardown(void)
{
	conf_free(&cf);
	outbox_close(producer);
}

/* Enqueue an event (key may be NULL); in a fresh database seqs go 1, 2, 3... */
static void
enqueue(const char *name, const char *key)
{
	struct outbox_event ev = { .name = name, .payload = "{\"n\":1}", .key = key };
	int rc = outbox_enqueue_event(producer, &ev, NULL);

	ck_assert_msg(rc == OUTBOX_OK, "outbox_enqueue: %s", outbox_errmsg(producer));
	ck_assert_int_eq(sqlite3_last_insert_rowid(outbox_db(producer)), ++enqueued);
	ck_assert_int_le(enqueued, FAKE_SEQS);
}

static void
enqueue_n(int n)
{
	while (n-- > 0)
		enqueue("order.created", NULL);
}

/*
 * One sink called "fake" (sink_json: more of its keys, e.g. ", \"prefix\": \"app.\""),
 * read by conf_load as outboxd reads it, then switched to the fake type. Retries and
 * reconnects are due at once: the backoff is at most 1 ms.
 */
static void
configure(int batch_size, int max_attempts, const char *sink_json)
{
	char *text = xasprintf("{\"outbox.database\": \"%s\", \"relay.batch-size\": %d, "
	    "\"relay.max-attempts\": %d, \"relay.backoff-initial-ms\": 1, "
	    "\"relay.backoff-max-ms\": 1, \"relay.poll-interval-ms\": 1, "
	    "\"sinks\": {\"fake\": {\"type\": \"stdout\"%s}}}", db_path, batch_size,
	    max_attempts, sink_json);
	cJSON *o = cJSON_Parse(text);
	char *cause = NULL;

	ck_assert_ptr_nonnull(o);
	ck_assert_msg(conf_load(&cf, NULL, o, &cause) == 0, "conf_load: %s", cause);
	ck_assert_uint_eq(cf.nsinks, 1);
	cf.sinks[0].type = &fake_type;
	cJSON_Delete(o);
	free(text);
}

/* outboxd --once: its own store and wake-up; returns relay_run's exit status. */
static int
run_once(void)
{
	static const struct sink_ops *const ops[] = { &fake_ops, NULL };
	const struct relay_options opt = { .once = 1, .stop = &fake_stop, .sink_ops = ops };
	struct store *st = NULL;
	struct wake *w;
	enum store_error kind;
	char *cause = NULL;
	int status;

	ck_assert_msg(store_open(&st, db_path, &kind, &cause) == 0, "store_open: %s", cause);
	w = wake_open(db_path, -1);
	ck_assert_ptr_nonnull(w);
	fake_stop = 0;
	status = relay_run(&cf, st, w, &opt);
	wake_close(w);
	store_close(st);
	return status;
}

/* The same, stopped (as by SIGTERM) at the end of the pass that makes publish number
 * `publishes` from now. */
static int
run_until(int publishes)
{
	int status;

	fake.stop_after = fake.publishes + publishes;
	status = run_once();
	fake.stop_after = 0;
	return status;
}

/* The first column of the first row of sql, as text ("" for NULL), malloc'd. */
static char *
query(const char *sql)
{
	sqlite3_stmt *s = NULL;
	const unsigned char *v;
	char *out;
	int rc = sqlite3_prepare_v2(outbox_db(producer), sql, -1, &s, NULL);

	ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(outbox_db(producer)));
	rc = sqlite3_step(s);
	ck_assert_msg(rc == SQLITE_ROW, "%s: %s", sql, sqlite3_errmsg(outbox_db(producer)));
	v = sqlite3_column_text(s, 0);
	out = xstrdup(v != NULL ? (const char *)v : "");
	sqlite3_finalize(s);
	return out;
}

#define ck_query(sql, want) do {                                                  \
	char *got_ = query(sql);                                                      \
	ck_assert_str_eq(got_, (want));                                               \
	free(got_);                                                                   \
} while (0)

static int64_t
cursor(void)
{
	char *text = query("SELECT cursor FROM outbox_sink WHERE name = 'fake'");
	int64_t v = strtoll(text, NULL, 10);

	free(text);
	return v;
}

#define ck_cursor(want) ck_assert_int_eq(cursor(), (want))

/* The fake's retry rows, "seq state attempts error | ...", in seq order. */
#define ck_retry(want)                                                            \
	ck_query("SELECT group_concat(r, ' | ') FROM (SELECT seq || ' ' || state || ' ' || " \
	    "attempts || ' ' || coalesce(last_error, '-') AS r FROM outbox_retry "    \
	    "WHERE sink = 'fake' ORDER BY seq)", (want))

#define WAITING "waiting behind an earlier event with the same key"

/* ---- batching and keys --------------------------------------------------------------- */

/* N events in batches of B arrive in ceil(N/B) publishes, in seq order. */
static const struct { int events, batch; const char *want; } batch_cases[] = {
	{ 7, 3, "1,2,3 | 4,5,6 | 7" },
	{ 6, 3, "1,2,3 | 4,5,6" },
	{ 1, 5, "1" },
	{ 4, 1, "1 | 2 | 3 | 4" },
	{ 10, 10, "1,2,3,4,5,6,7,8,9,10" },
};

START_TEST(test_batches)
{
	int events = batch_cases[_i].events, batch = batch_cases[_i].batch;
	int expect = (events + batch - 1) / batch;

	enqueue_n(events);
	configure(batch, 10, "");
	ck_assert_int_eq(run_once(), EXIT_OK);
	ck_assert_str_eq(fake.batches, batch_cases[_i].want);
	ck_assert_int_eq(fake.publishes, expect);
	ck_cursor(events);
	ck_retry("");
	/* Nothing is due any more: a second run publishes nothing. */
	ck_assert_int_eq(run_once(), EXIT_OK);
	ck_assert_int_eq(fake.publishes, expect);
}
END_TEST

START_TEST(test_key_cut)
{
	enqueue("a.1", "a");
	enqueue("b.2", "b");
	enqueue("a.3", "a");
	enqueue("none.4", NULL);
	enqueue("b.5", "b");
	enqueue("c.6", "c");
	enqueue("a.7", "a");
	enqueue("none.8", NULL);
	configure(100, 10, "");
	ck_assert_int_eq(run_once(), EXIT_OK);
	/* A batch is cut before an event whose key it already holds: before 3 (a), then
	 * before 7 (a); 5 (b) is in a new batch by then. */
	ck_assert_str_eq(fake.batches, "1,2 | 3,4,5,6 | 7,8");
	ck_cursor(8);
	ck_retry("");
}
END_TEST

/* ---- rejections, retries, failed ----------------------------------------------------- */

START_TEST(test_reject_waits_then_fails)
{
	enqueue("a.1", "a");
	enqueue("b.2", "b");
	enqueue("a.3", "a");
	enqueue("none.4", NULL);
	enqueue("a.5", "a");
	fake.by_seq[1] = "R*";
	configure(100, 3, "");
	/* One pass: 1 is refused; 3 and 5 wait behind it without being published. */
	ck_assert_int_eq(run_until(1), EXIT_OK);
	ck_assert_str_eq(fake.batches, "1,2 | 4");
	ck_cursor(5);
	ck_retry("1 retry 1 refused: seq 1 | 3 retry 0 " WAITING " | 5 retry 0 " WAITING);
	/* Attempts 2 and 3 fail it; then 3 and 5 go, one at a time, in seq order. */
	ck_assert_int_eq(run_once(), EXIT_OK);
	ck_assert_str_eq(fake.batches, "1,2 | 4 | 1 | 1 | 3 | 5");
	ck_cursor(5);
	ck_retry("1 failed 3 refused: seq 1");
	ck_assert_int_eq(fake.delivered[1], 0);
	ck_assert_int_eq(fake.delivered[3] + fake.delivered[5], 2);
	/* A failed event stays failed: nothing more is published. */
	ck_assert_int_eq(run_once(), EXIT_OK);
	ck_assert_int_eq(fake.publishes, 6);
}
END_TEST

START_TEST(test_reject_then_delivered)
{
	enqueue("a.1", "a");
	enqueue("a.2", "a");
	enqueue("b.3", "b");
	fake.by_seq[1] = "RR";
	configure(100, 5, "");
	ck_assert_int_eq(run_until(2), EXIT_OK);
	/* 2 waits behind 1 (cut, then held); 3 has its own key and goes. */
	ck_assert_str_eq(fake.batches, "1 | 3");
	ck_retry("1 retry 1 refused: seq 1 | 2 retry 0 " WAITING);
	ck_assert_int_eq(run_until(1), EXIT_OK);
	ck_retry("1 retry 2 refused: seq 1 | 2 retry 0 " WAITING);
	ck_assert_int_eq(run_once(), EXIT_OK);
	ck_assert_str_eq(fake.batches, "1 | 3 | 1 | 1 | 2");
	ck_cursor(3);
	ck_retry("");
	ck_assert_int_eq(fake.delivered[1], 1);
	ck_assert_int_eq(fake.delivered[2], 1);
	ck_assert_int_eq(fake.delivered[3], 1);
}
END_TEST

/* ---- outages: SINK_UNSENT ------------------------------------------------------------ */

START_TEST(test_unsent_mid_batch)
{
	int seq;

	enqueue_n(6);
	fake.by_seq[2] = "R";
	fake.by_seq[4] = "U";
	configure(100, 5, "");
	/* The connection breaks at 4: 1 and 3 got through, 2 was refused, 4 to 6 unsent. */
	ck_assert_int_eq(run_until(1), EXIT_OK);
	ck_assert_str_eq(fake.batches, "1,2,3,4,5,6");
	ck_cursor(3);
	ck_retry("2 retry 1 refused: seq 2");
	ck_assert_int_eq(fake.disconnects, 1);
	/* Reconnected: the unsent tail goes again, and 2's retry. */
	ck_assert_int_eq(run_once(), EXIT_OK);
	ck_assert_int_eq(fake.connects, 2);
	ck_assert_str_eq(fake.batches, "1,2,3,4,5,6 | 2 | 4,5,6");
	ck_cursor(6);
	ck_retry("");
	for (seq = 1; seq <= 6; seq++) {
		ck_assert_int_eq(fake.delivered[seq], 1);
		ck_assert_int_eq(fake.seen[seq], seq == 1 || seq == 3 ? 1 : 2);
	}
}
END_TEST

START_TEST(test_unsent_keeps_keys_and_order)
{
	enqueue("a.1", "a");
	enqueue("a.2", "a");
	enqueue("b.3", "b");
	fake.by_seq[1] = "U";
	configure(100, 5, "");
	/* Unsent at the first message: nothing is handed off, nothing waits in retry. */
	ck_assert_int_eq(run_until(1), EXIT_OK);
	ck_assert_str_eq(fake.batches, "1");
	ck_cursor(0);
	ck_retry("");
	ck_assert_int_eq(run_once(), EXIT_OK);
	ck_assert_str_eq(fake.batches, "1 | 1 | 2,3");
	ck_cursor(3);
}
END_TEST

START_TEST(test_unsent_retry_burns_no_attempt)
{
	enqueue_n(2);
	fake.by_seq[1] = "RU";
	configure(100, 5, "");
	ck_assert_int_eq(run_until(1), EXIT_OK);
	ck_retry("1 retry 1 refused: seq 1");
	/* The retry is cut off by an outage: its attempts and error stay as they were. */
	ck_assert_int_eq(run_until(1), EXIT_OK);
	ck_assert_str_eq(fake.batches, "1,2 | 1");
	ck_retry("1 retry 1 refused: seq 1");
	ck_assert_int_eq(run_once(), EXIT_OK);
	ck_assert_str_eq(fake.batches, "1,2 | 1 | 1");
	ck_retry("");
	ck_cursor(2);
}
END_TEST

START_TEST(test_once_unreachable)
{
	enqueue_n(2);
	fake.refuse = 1;
	configure(100, 5, "");
	ck_assert_int_eq(run_once(), EXIT_UNREACHABLE);
	ck_assert_int_eq(fake.publishes, 0);
	ck_cursor(0);
	ck_assert_int_eq(run_once(), EXIT_OK);
	ck_assert_str_eq(fake.batches, "1,2");
	ck_cursor(2);
}
END_TEST

START_TEST(test_once_gives_up_when_broken)
{
	enqueue_n(3);
	fake.by_seq[2] = "U*";
	configure(100, 2, "");
	/* Five passes that break in a row end --once; no attempt is counted for 2. */
	ck_assert_int_eq(run_once(), EXIT_RUNTIME);
	ck_assert_str_eq(fake.batches, "1,2,3 | 2,3 | 2,3 | 2,3 | 2,3");
	ck_assert_int_eq(fake.connects, 5);
	ck_assert_int_eq(fake.disconnects, 5);
	ck_cursor(1);
	ck_retry("");
}
END_TEST

/* ---- filter and prefix --------------------------------------------------------------- */

START_TEST(test_filter_and_prefix)
{
	enqueue("order.created", NULL);
	enqueue("user.signup", NULL);
	enqueue("user.login", NULL);
	enqueue("order.paid", NULL);
	enqueue("invoice.sent", NULL);
	/* A pattern may name the event or its published name. */
	configure(2, 5, ", \"events\": [\"order.*\", \"app.user.login\"], \"prefix\": \"app.\"");
	ck_assert_int_eq(run_once(), EXIT_OK);
	/* Batches of two read events: {1,2} gives 1, {3,4} gives 3,4, {5} gives nothing. */
	ck_assert_str_eq(fake.batches, "1 | 3,4");
	ck_assert_str_eq(fake.names, "app.order.created app.user.login app.order.paid");
	ck_cursor(5);
	ck_retry("");
}
END_TEST

START_TEST(test_filtered_out_do_not_cut_or_wait)
{
	enqueue("order.created", "k");
	enqueue("audit.kept", "k");
	enqueue("order.paid", "j");
	enqueue("order.shipped", "k");
	fake.name = "order.created";
	fake.name_script = "R";
	configure(100, 5, ", \"events\": [\"order.*\"]");
	ck_assert_int_eq(run_until(1), EXIT_OK);
	/* 2 neither cuts the batch nor waits behind 1; 4 waits. */
	ck_assert_str_eq(fake.batches, "1,3");
	ck_retry("1 retry 1 refused: seq 1 | 4 retry 0 " WAITING);
	ck_cursor(4);
}
END_TEST

/* ---- reading ahead ------------------------------------------------------------------ */

/* While a full batch is published the loop reads the next one, and publishes what it
 * read: an event committed after that read waits for the batch after. */
START_TEST(test_read_ahead_is_used)
{
	enqueue_n(5);
	fake.commit_during = 1;
	configure(3, 5, "");
	ck_assert_int_eq(run_once(), EXIT_OK);
	ck_assert_str_eq(fake.batches, "1,2,3 | 4,5 | 6");
	ck_cursor(6);
	ck_retry("");
}
END_TEST

/* An unsent event leaves the cursor before it: what was read ahead from after the batch
 * is dropped, and the next batch starts at the unsent event. */
START_TEST(test_read_ahead_dropped_after_unsent)
{
	int seq;

	enqueue_n(7);
	fake.by_seq[3] = "U";
	configure(3, 5, "");
	ck_assert_int_eq(run_once(), EXIT_OK);
	ck_assert_str_eq(fake.batches, "1,2,3 | 3,4,5 | 6,7");
	ck_cursor(7);
	for (seq = 1; seq <= 7; seq++)
		ck_assert_int_eq(fake.delivered[seq], 1);
}
END_TEST

/* The last event of a full batch is refused: an event read ahead with its key still
 * waits behind it (keys are checked when the events are gathered, not when read). */
START_TEST(test_read_ahead_keeps_keys)
{
	const char *first, *again, *fourth;

	enqueue("x.1", NULL);
	enqueue("x.2", NULL);
	enqueue("k.3", "k");
	enqueue("k.4", "k");
	enqueue("x.5", NULL);
	fake.by_seq[3] = "R";
	configure(3, 5, "");
	ck_assert_int_eq(run_once(), EXIT_OK);
	/* 3's retry goes before 4, whenever its backoff lets it. */
	first = strstr(fake.names, "k.3");
	ck_assert_ptr_nonnull(first);
	again = strstr(first + 1, "k.3");
	fourth = strstr(fake.names, "k.4");
	ck_assert_ptr_nonnull(again);
	ck_assert_ptr_nonnull(fourth);
	ck_assert_msg(again < fourth, "published: %s", fake.names);
	ck_assert_int_eq(fake.seen[4], 1);
	ck_assert_int_eq(fake.delivered[3], 1);
	ck_assert_int_eq(fake.delivered[4], 1);
	ck_cursor(5);
	ck_retry("");
}
END_TEST

/* ---- a producer that holds the write lock -------------------------------------------- */

/* HOLD_MS long, from a thread of its own (the loop's thread is the fake's); its
 * transaction may also move the cursor as an operator would (rewind >= 0). */
#define HOLD_MS 300

static struct {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int state;          /* 0: not started, 1: holding, 2: released */
	int64_t rewind;
} holder = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void
holder_set(int state)
{
	pthread_mutex_lock(&holder.lock);
	holder.state = state;
	pthread_cond_broadcast(&holder.cond);
	pthread_mutex_unlock(&holder.lock);
}

static void *
holder_main(void *arg)
{
	sqlite3 *db = NULL;
	char *sql;

	(void)arg;
	ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	holder_set(1);
	usleep(HOLD_MS * 1000);
	if (holder.rewind >= 0) {
		sql = xasprintf("UPDATE outbox_sink SET cursor = %lld", (long long)holder.rewind);
		ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		free(sql);
	}
	ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	holder_set(2);
	sqlite3_close(db);
	return NULL;
}

/* Start the holder; return once it holds the lock. */
static void
holder_start(void)
{
	ck_assert_int_eq(pthread_create(&holder.thread, NULL, holder_main, NULL), 0);
	pthread_mutex_lock(&holder.lock);
	while (holder.state == 0)
		pthread_cond_wait(&holder.cond, &holder.lock);
	pthread_mutex_unlock(&holder.lock);
}

static int
holder_holds(void)
{
	int state;

	pthread_mutex_lock(&holder.lock);
	state = holder.state;
	pthread_mutex_unlock(&holder.lock);
	return state == 1;
}

static void
holder_join(void)
{
	ck_assert_int_eq(pthread_join(holder.thread, NULL), 0);
	holder.state = 0;
}

/* A producer takes the write lock during the first publish: the loop does not wait for
 * it to record batches that only move the cursor, publishes the next ones meanwhile, and
 * writes the cursor's move, once, before it ends. */
START_TEST(test_cursor_move_does_not_wait_for_the_lock)
{
	enqueue_n(6);
	fake.lock_during = 1;
	holder.rewind = -1;
	configure(2, 5, "");
	ck_assert_int_eq(run_once(), EXIT_OK);
	holder_join();
	ck_assert_str_eq(fake.batches, "1,2 | 3,4 | 5,6");
	ck_assert_str_eq(fake.locked, "LLL");
	ck_cursor(6);
	ck_retry("");
}
END_TEST

/* An operator moves the cursor (outboxctl replay --from-seq 4) while the loop's own move
 * waits: the operator's wins, and the events after it are published again. */
START_TEST(test_cursor_move_left_waiting_yields_to_an_operator)
{
	enqueue_n(6);
	fake.lock_during = 1;
	holder.rewind = 3;
	configure(2, 5, "");
	ck_assert_int_eq(run_once(), EXIT_OK);
	holder_join();
	ck_assert_str_eq(fake.batches, "1,2 | 3,4 | 5,6");
	ck_cursor(3);
	ck_assert_int_eq(run_once(), EXIT_OK);
	ck_assert_str_eq(fake.batches, "1,2 | 3,4 | 5,6 | 4,5 | 6");
	ck_cursor(6);
}
END_TEST

/* ---- wake-up ------------------------------------------------------------------------- */

static void
touch(const char *dir, const char *name)
{
	char path[400];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "a");
	ck_assert_ptr_nonnull(f);
	fputs("x", f);
	fclose(f);
}

/* A write to another file of the directory does not end the sleep; the database's own
 * WAL does, even after such a write. */
START_TEST(test_wake_ignores_other_files)
{
	char dir[340], db[360];
	struct wake *w;
	pid_t pid;
	int status;

	snprintf(dir, sizeof dir, "%s/wake-%d", check_dir, (int)getpid());
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	snprintf(db, sizeof db, "%s/app.db", dir);
	w = wake_open(db, -1);
	ck_assert_int_eq(wake_has_inotify(w), 1);
	touch(dir, "app.log");
	touch(dir, "app.db-shm");
	ck_assert_int_eq(wake_wait(w, 20000), 0);
	touch(dir, "app.log");
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		usleep(100000);
		touch(dir, "app.db-wal");
		_exit(0);
	}
	/* Returns at once with 0 if the log's event ended the sleep. */
	ck_assert_int_eq(wake_wait(w, 20 * 1000000), 1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	wake_close(w);
}
END_TEST

/* ---- main ---------------------------------------------------------------------------- */

static Suite *
relay_suite(void)
{
	Suite *s = suite_create("relay");
	TCase *tc;

	tc = tcase_create("batches");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_batches, 0,
	    (int)(sizeof batch_cases / sizeof batch_cases[0]));
	tcase_add_test(tc, test_key_cut);
	suite_add_tcase(s, tc);

	tc = tcase_create("retries");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_reject_waits_then_fails);
	tcase_add_test(tc, test_reject_then_delivered);
	suite_add_tcase(s, tc);

	tc = tcase_create("outages");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_unsent_mid_batch);
	tcase_add_test(tc, test_unsent_keeps_keys_and_order);
	tcase_add_test(tc, test_unsent_retry_burns_no_attempt);
	tcase_add_test(tc, test_once_unreachable);
	tcase_add_test(tc, test_once_gives_up_when_broken);
	tcase_set_timeout(tc, 30);   /* pauses of 100 ms after each broken pass */
	suite_add_tcase(s, tc);

	tc = tcase_create("filter");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_filter_and_prefix);
	tcase_add_test(tc, test_filtered_out_do_not_cut_or_wait);
	suite_add_tcase(s, tc);

	tc = tcase_create("read-ahead");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_read_ahead_is_used);
	tcase_add_test(tc, test_read_ahead_dropped_after_unsent);
	tcase_add_test(tc, test_read_ahead_keeps_keys);
	tcase_add_test(tc, test_cursor_move_does_not_wait_for_the_lock);
	tcase_add_test(tc, test_cursor_move_left_waiting_yields_to_an_operator);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("wake");
	tcase_add_test(tc, test_wake_ignores_other_files);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_main(relay_suite(), "check_relay", check_dir, sizeof check_dir);
}
