/*
 * checkpoint.c: the relay's WAL checkpoints, off the loop's path.
 *
 * Why (issue 16, docs/performance-latency.md): behind producers committing thousands of
 * times a second, the relay's bookkeeping commit ran SQLite's autocheckpoint, fsyncs
 * included, on the loop's path; and a WAL restarts only when a checkpoint has copied every
 * frame and no reader still uses the WAL, a moment that a relay reading without pause
 * seldom leaves, so the WAL grew by hundreds of megabytes.
 *
 * How: the store's connection runs no checkpoint (autocheckpoint off) and reports the
 * WAL's length after each of its commits through a WAL hook (checkpoint_note). When that
 * passes CHECKPOINT_PAGES, this thread, on a connection of its own that no other thread
 * touches, runs a PASSIVE checkpoint (copies the frames, fsyncs the database file, takes
 * no lock a writer or reader waits for), then a TRUNCATE checkpoint: it takes the write
 * lock, copies the few frames committed meanwhile, waits for the readers to leave the WAL
 * (CHECKPOINT_RESET_MS at most, polling finely) and empties the file, so the WAL stays
 * bounded. The PASSIVE one first keeps the time producers are held off short. A
 * checkpoint writes no row; a failed one is logged and tried again at the next report.
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "checkpoint.h"
#include "log.h"
#include "util.h"

/* Checkpoint when the WAL passes this many frames: SQLite's autocheckpoint default. */
#define CHECKPOINT_PAGES 1000
/* How long the TRUNCATE checkpoint may hold off writers waiting for readers (ms). */
#define CHECKPOINT_RESET_MS 20

struct checkpoint {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;                   /* under lock */
	int pages;                  /* under lock: last report past the threshold, 0 none */
	sqlite3 *db;                /* the thread's alone once started */
	struct checkpoint_busy busy;
};

static int64_t
checkpoint_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
checkpoint_busy(void *arg, int count)
{
	struct checkpoint_busy *b = arg;
	int64_t now = checkpoint_now_us();
	struct timespec pause = { 0, 0 };

	if (count == 0)
		b->since_us = now;
	if (now - b->since_us >= (int64_t)b->limit_ms * 1000)
		return 0;
	pause.tv_nsec = count < 5 ? 50000L << count : 1000000L;
	nanosleep(&pause, NULL);
	return 1;
}

/* Run one checkpoint of mode; log what went wrong (SQLITE_BUSY: readers stayed). */
static void
checkpoint_run(struct checkpoint *ck, int mode, const char *name)
{
	int rc, log_frames = 0, done = 0;

	rc = sqlite3_wal_checkpoint_v2(ck->db, NULL, mode, &log_frames, &done);
	if (rc == SQLITE_BUSY)
		log_debug("checkpoint (%s): the database was busy; %d of %d frames copied", name,
		    done, log_frames);
	else if (rc != SQLITE_OK)
		log_warn("checkpoint (%s): %s", name, sqlite3_errmsg(ck->db));
}

static void *
checkpoint_main(void *arg)
{
	struct checkpoint *ck = arg;

	pthread_mutex_lock(&ck->lock);
	for (;;) {
		while (!ck->stop && ck->pages == 0)
			pthread_cond_wait(&ck->cond, &ck->lock);
		if (ck->stop)
			break;
		ck->pages = 0;
		pthread_mutex_unlock(&ck->lock);
		checkpoint_run(ck, SQLITE_CHECKPOINT_PASSIVE, "passive");
		checkpoint_run(ck, SQLITE_CHECKPOINT_TRUNCATE, "truncate");
		pthread_mutex_lock(&ck->lock);
	}
	pthread_mutex_unlock(&ck->lock);
	return NULL;
}

/* The thread's connection, with the relay's durability (synchronous = NORMAL, as
 * liboutbox sets it). */
static int
checkpoint_open(struct checkpoint *ck, const char *path, char **cause)
{
	if (sqlite3_open_v2(path, &ck->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
	    NULL) != SQLITE_OK ||
	    sqlite3_exec(ck->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
		*cause = xasprintf("checkpoints: cannot open '%s': %s", path,
		    ck->db != NULL ? sqlite3_errmsg(ck->db) : "out of memory");
		return -1;
	}
	ck->busy.limit_ms = CHECKPOINT_RESET_MS;
	sqlite3_busy_handler(ck->db, checkpoint_busy, &ck->busy);
	return 0;
}

struct checkpoint *
checkpoint_start(const char *path, char **cause)
{
	struct checkpoint *ck = xcalloc(1, sizeof *ck);
	sigset_t all, old;
	int rc;

	if (checkpoint_open(ck, path, cause) != 0) {
		sqlite3_close(ck->db);
		free(ck);
		return NULL;
	}
	pthread_mutex_init(&ck->lock, NULL);
	pthread_cond_init(&ck->cond, NULL);
	/* Signals stay the main thread's (its handlers set the loop's flags). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&ck->thread, NULL, checkpoint_main, ck);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		*cause = xasprintf("checkpoints: cannot start a thread: %s", strerror(rc));
		pthread_cond_destroy(&ck->cond);
		pthread_mutex_destroy(&ck->lock);
		sqlite3_close(ck->db);
		free(ck);
		return NULL;
	}
	return ck;
}

void
checkpoint_stop(struct checkpoint *ck)
{
	if (ck == NULL)
		return;
	pthread_mutex_lock(&ck->lock);
	ck->stop = 1;
	pthread_cond_signal(&ck->cond);
	pthread_mutex_unlock(&ck->lock);
	pthread_join(ck->thread, NULL);
	pthread_cond_destroy(&ck->cond);
	pthread_mutex_destroy(&ck->lock);
	sqlite3_close(ck->db);
	free(ck);
}

void
checkpoint_note(struct checkpoint *ck, int pages)
{
	if (pages < CHECKPOINT_PAGES)
		return;
	pthread_mutex_lock(&ck->lock);
	ck->pages = pages;
	pthread_cond_signal(&ck->cond);
	pthread_mutex_unlock(&ck->lock);
}
