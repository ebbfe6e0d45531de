/*
 * checkpoint.h: the relay's WAL checkpoints, run by a thread of their own so that the loop
 * never waits for one (see checkpoint.c for why and how).
 */
#ifndef RELAY_CHECKPOINT_H
#define RELAY_CHECKPOINT_H

#include <stdint.h>

struct checkpoint;

/*
 * Open a connection of its own to the database at path and start the thread; NULL with
 * *cause if either fails (the caller then keeps SQLite's own checkpoints).
 */
struct checkpoint *checkpoint_start(const char *path, char **cause);
/* Stop the thread (a checkpoint under way finishes first) and close its connection. */
void checkpoint_stop(struct checkpoint *ck);

/* The WAL is pages frames long after a commit: a WAL hook's report, from any thread. */
void checkpoint_note(struct checkpoint *ck, int pages);

/*
 * A busy handler that tries again after 50 us, 100 us, then every 200 us, for limit_ms in
 * all: SQLite's own (sqlite3_busy_timeout) sleeps 1, 2, 5, 10, 15, 20, 25 ms between
 * tries.
 * arg is a struct checkpoint_busy, one per connection.
 */
struct checkpoint_busy {
	int limit_ms;
	int no_wait;        /* give up at once (store_record without waiting) */
	int64_t since_us;   /* when the current wait began */
};
int checkpoint_busy(void *arg, int count);

#endif
