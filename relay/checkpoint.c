/*
 * checkpoint.c: the relay's WAL checkpoints, off the loop's path.
 *
 * Why (issue 16, docs/performance.md): behind producers committing thousands of
 * times a second, the relay's bookkeeping commit ran SQLite's autocheckpoint, fsyncs
 * included, on the loop's path; and the WAL starts over only when a checkpoint has copied
 * every frame and no reader still uses the WAL, a moment that a relay reading without
 * pause seldom leaves, so the WAL grew by tens to hundreds of megabytes.
 *
 * How: the store's connection runs no checkpoint (autocheckpoint off) and reports the
 * WAL's length after each of its commits through a WAL hook (checkpoint_note). Past
 * CHECKPOINT_PAGES, this thread, on a connection of its own that no other thread touches,
 * runs a PASSIVE checkpoint (copies the frames and fsyncs, holding no lock that a writer
 * or reader waits for), then a RESTART one: it takes the write lock, copies the few
 * frames committed meanwhile, waits for the readers to leave the WAL (CHECKPOINT_WAIT_MS
 * at most, polling finely) and lets the next commit write the WAL from its start. So the
 * WAL stays near CHECKPOINT_PAGES, and producers are held off for one short checkpoint.
 * RESTART reuses the file (TRUNCATE, which empties it, measured slower: every commit
 * then grows the file again); when the file has grown past CHECKPOINT_FILE_PAGES anyway
 * (resets that failed for a while), the reset is a TRUNCATE. The threshold is half of
 * SQLite's default autocheckpoint, which producers run: below it their checkpoints never
 * start, and so never hold the checkpoint lock that ours needs; when the relay has fallen
 * behind and they do, ours tries again every millisecond until it gets that lock.
 * Reports come at the relay's commits, which a relay short of CPU makes seldom: for a
 * second after each reset the thread also reads the WAL's length itself, every
 * CHECKPOINT_POLL_MS (under three CPU hogs on two cores, two producers at 2,500
 * commits/s: peak WAL 3.7-7.2 MB, against 5.5-11.8 MB on reports alone).
 * A checkpoint writes no row; a failed one is logged and tried again at the next report.
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "checkpoint.h"
#include "log.h"
#include "util.h"

/* Checkpoint when the WAL passes this many frames. */
#define CHECKPOINT_PAGES 500
/* Empty the WAL file when it is larger than this many pages. */
#define CHECKPOINT_FILE_PAGES (4 * CHECKPOINT_PAGES)
/* How long a RESTART may hold off writers while it waits for readers (ms). */
#define CHECKPOINT_WAIT_MS 20
/* Tries, a millisecond apart, while another connection's checkpoint is in the way. */
#define CHECKPOINT_RETRIES 200
/* After a reset, look at the WAL's length this often (ms), for this long (ms). */
#define CHECKPOINT_POLL_MS 2
#define CHECKPOINT_WATCH_MS 1000
/* mxFrame, the WAL's length in frames: the wal-index header's 32-bit word at byte 16. */
#define WAL_INDEX_MX_FRAME 4

struct checkpoint {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;                   /* under lock */
	int due;                    /* under lock: a report past the threshold came */
	int64_t watch_until_us;     /* poll the WAL's length until then */
	volatile const uint32_t *wal_index; /* its header, mapped by db's VFS; NULL: none */
	sqlite3 *db;                /* the thread's alone once started */
	struct checkpoint_busy busy;
	char *wal_path;
	off_t wal_max;              /* CHECKPOINT_FILE_PAGES in bytes */
	long runs, busy_runs;       /* for the log line at the end */
	int failing;                /* the last checkpoint failed (it was logged) */
};

int
checkpoint_busy(void *arg, int count)
{
	struct checkpoint_busy *b = arg;
	int64_t now = util_monotonic_us();
	struct timespec pause = { 0, 0 };

	if (count == 0)
		b->since_us = now;
	if (b->no_wait || now - b->since_us >= (int64_t)b->limit_ms * 1000)
		return 0;
	pause.tv_nsec = count < 2 ? 50000L << count : 200000L;
	nanosleep(&pause, NULL);
	return 1;
}

/* Run one checkpoint of mode; log what went wrong. 1 if another connection was running
 * a checkpoint (a producer's autocheckpoint: SQLite then returns at once, without calling
 * the busy handler), 0 otherwise (readers that stayed in the WAL past the busy handler's
 * limit included: the next report tries again). */
static int
checkpoint_run(struct checkpoint *ck, int mode, const char *name)
{
	int rc, log_frames = 0, done = 0;

	rc = sqlite3_wal_checkpoint_v2(ck->db, NULL, mode, &log_frames, &done);
	ck->runs++;
	if (rc == SQLITE_BUSY) {
		ck->busy_runs++;
		log_debug("checkpoint (%s): the database was busy; %d of %d frames copied", name,
		    done, log_frames);
		return log_frames < 0;
	} else if (rc != SQLITE_OK) {
		/* Once, not at every commit of the relay while it lasts (a full disk). */
		if (!ck->failing)
			log_warn("checkpoint (%s): %s", name, sqlite3_errmsg(ck->db));
		ck->failing = 1;
	} else if (ck->failing) {
		log_info("checkpoints work again");
		ck->failing = 0;
	}
	return 0;
}

/* Copy the WAL into the database, then have it start over (see the top of the file).
 * 1 if another connection's checkpoint was in the way. */
static int
checkpoint_reset(struct checkpoint *ck)
{
	struct stat sb;

	if (checkpoint_run(ck, SQLITE_CHECKPOINT_PASSIVE, "passive"))
		return 1;
	if (stat(ck->wal_path, &sb) == 0 && sb.st_size > ck->wal_max)
		return checkpoint_run(ck, SQLITE_CHECKPOINT_TRUNCATE, "truncate");
	return checkpoint_run(ck, SQLITE_CHECKPOINT_RESTART, "restart");
}

/*
 * The wal-index (the -shm file's shared memory) as db's VFS has it mapped, or NULL. Its
 * header holds the WAL's length in frames, mxFrame, a native-order 32-bit integer at byte
 * 16 (https://www.sqlite.org/walformat.html), read here without SQLite's locks: a torn
 * value only makes one poll early or late. Not through a descriptor of our own on the
 * -shm file: closing it would drop every POSIX lock the process holds on that file, the
 * relay's connection's included.
 */
static volatile const uint32_t *
checkpoint_map_wal_index(sqlite3 *db)
{
	sqlite3_file *f = NULL;
	volatile void *p = NULL;

	if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK ||
	    f == NULL || f->pMethods == NULL || f->pMethods->iVersion < 2 ||
	    f->pMethods->xShmMap(f, 0, 32768, 0, &p) != SQLITE_OK)
		return NULL;
	return p;
}

/* Wait, with ck->lock held, for ms or until stopped (all of ms if until_due is 0) or
 * due. */
static void
checkpoint_pause(struct checkpoint *ck, long ms, int until_due)
{
	struct timespec at = util_monotonic_deadline(ms);

	while (!ck->stop && !(until_due && ck->due) &&
	    pthread_cond_timedwait(&ck->cond, &ck->lock, &at) == 0)
		;
}

/*
 * Wait, with ck->lock held, until stopped or due; for a while after a reset, poll the
 * WAL's length meanwhile (producers at thousands of commits a second grow it by
 * megabytes in a tenth of a second; a thread that mostly sleeps gets the CPU back
 * within a millisecond or so even on a loaded machine).
 */
static void
checkpoint_wait(struct checkpoint *ck)
{
	while (!ck->stop && !ck->due) {
		if (ck->wal_index == NULL || util_monotonic_us() >= ck->watch_until_us) {
			pthread_cond_wait(&ck->cond, &ck->lock);
			continue;
		}
		checkpoint_pause(ck, CHECKPOINT_POLL_MS, 1);
		if (ck->wal_index[WAL_INDEX_MX_FRAME] >= CHECKPOINT_PAGES)
			ck->due = 1;
	}
}

static void *
checkpoint_main(void *arg)
{
	struct checkpoint *ck = arg;
	int in_the_way, tries;

	pthread_mutex_lock(&ck->lock);
	for (;;) {
		checkpoint_wait(ck);
		/*
		 * Past SQLite's default autocheckpoint (a relay that fell behind its reports),
		 * producers checkpoint after each of their commits and ours finds the lock
		 * taken: try again every millisecond rather than at the next report, or the
		 * WAL grows on while we lose every time.
		 */
		for (tries = 0; !ck->stop && tries < CHECKPOINT_RETRIES; tries++) {
			pthread_mutex_unlock(&ck->lock);
			in_the_way = checkpoint_reset(ck);
			pthread_mutex_lock(&ck->lock);
			if (!in_the_way)
				break;
			checkpoint_pause(ck, 1, 0);
		}
		if (ck->stop)
			break;
		/* Reports made meanwhile may count frames from before the reset. */
		ck->due = 0;
		ck->watch_until_us = util_monotonic_us() + (int64_t)CHECKPOINT_WATCH_MS * 1000;
	}
	pthread_mutex_unlock(&ck->lock);
	return NULL;
}

/* The thread's connection, with the relay's durability (synchronous = NORMAL, as
 * liboutbox sets it). */
static int
checkpoint_open(struct checkpoint *ck, const char *path, char **cause)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_open_v2(path, &ck->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
	    NULL) != SQLITE_OK ||
	    sqlite3_exec(ck->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(ck->db, "PRAGMA page_size", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		*cause = xasprintf("checkpoints: cannot open '%s': %s", path,
		    ck->db != NULL ? sqlite3_errmsg(ck->db) : "out of memory");
		sqlite3_finalize(s);
		return -1;
	}
	ck->wal_max = (off_t)sqlite3_column_int64(s, 0) * (off_t)CHECKPOINT_FILE_PAGES;
	sqlite3_finalize(s);
	ck->wal_path = xstrdup(sqlite3_filename_wal(sqlite3_db_filename(ck->db, "main")));
	/* Mapped since the statement above read the database; until sqlite3_close. */
	ck->wal_index = checkpoint_map_wal_index(ck->db);
	ck->busy.limit_ms = CHECKPOINT_WAIT_MS;
	sqlite3_busy_handler(ck->db, checkpoint_busy, &ck->busy);
	return 0;
}

/* What checkpoint_open made, and ck. */
static void
checkpoint_free(struct checkpoint *ck)
{
	sqlite3_close(ck->db);
	free(ck->wal_path);
	free(ck);
}

struct checkpoint *
checkpoint_start(const char *path, char **cause)
{
	struct checkpoint *ck = xcalloc(1, sizeof *ck);
	sigset_t all, old;
	int rc;

	if (checkpoint_open(ck, path, cause) != 0) {
		checkpoint_free(ck);
		return NULL;
	}
	pthread_mutex_init(&ck->lock, NULL);
	util_cond_init_monotonic(&ck->cond);
	/* Signals stay the main thread's (its handlers set the loop's flags). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&ck->thread, NULL, checkpoint_main, ck);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		*cause = xasprintf("checkpoints: cannot start a thread: %s", strerror(rc));
		pthread_cond_destroy(&ck->cond);
		pthread_mutex_destroy(&ck->lock);
		checkpoint_free(ck);
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
	log_debug("checkpoints: %ld run, %ld of them found the database busy", ck->runs,
	    ck->busy_runs);
	pthread_cond_destroy(&ck->cond);
	pthread_mutex_destroy(&ck->lock);
	checkpoint_free(ck);
}

void
checkpoint_note(struct checkpoint *ck, int pages)
{
	if (pages < CHECKPOINT_PAGES)
		return;
	pthread_mutex_lock(&ck->lock);
	ck->due = 1;
	pthread_cond_signal(&ck->cond);
	pthread_mutex_unlock(&ck->lock);
}
