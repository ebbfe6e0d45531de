/*
 * wake.h: sleep until the database may have new events, a timeout, or a signal.
 *
 * Commits by producers are noticed through inotify on the database's directory (the WAL
 * file, the database and its journal), so an idle relay publishes within a millisecond of
 * a COMMIT without polling. Where inotify is not available (some network or container file
 * systems), the relay falls back to an adaptive poll.
 */
#ifndef RELAY_WAKE_H
#define RELAY_WAKE_H

#include <stdint.h>

struct wake;

/* Watch the files of the database at db_path (NULL: none, the caller polls); also wake
 * when extra_fd (e.g. a signal self-pipe) is readable (-1: none). Never fails for lack of
 * inotify: see wake_has_inotify. */
struct wake *wake_open(const char *db_path, int extra_fd);
void wake_close(struct wake *w);

/* 1 if inotify watches the database, 0 if the caller must poll. */
int wake_has_inotify(const struct wake *w);

/* Sleep at most timeout_us microseconds. Returns 1 if a file of the database changed
 * (the change may not be visible yet: a commit writes the WAL, then the WAL index in
 * shared memory, which inotify cannot see), 0 otherwise. */
int wake_wait(struct wake *w, int64_t timeout_us);

#endif
