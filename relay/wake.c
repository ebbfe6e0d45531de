/* wake.c: inotify on the database's directory, filtered to the database's own files. */
#include "config.h"

#include <errno.h>
#include <libgen.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "wake.h"

struct wake {
	int fd;          /* inotify, or -1 */
	int extra_fd;
	char *base;      /* file name of the database */
	size_t base_len;
};

struct wake *
wake_open(const char *db_path, int extra_fd)
{
	struct wake *w = xcalloc(1, sizeof *w);
	char *dir_copy, *base_copy;
	const char *dir;

	w->extra_fd = extra_fd;
	w->fd = -1;
	if (db_path == NULL)
		return w;
	dir_copy = xstrdup(db_path);
	base_copy = xstrdup(db_path);
	dir = dirname(dir_copy);
	w->base = xstrdup(basename(base_copy));
	w->base_len = strlen(w->base);
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd >= 0 && inotify_add_watch(w->fd, dir, IN_MODIFY | IN_CLOSE_WRITE |
	    IN_MOVED_TO | IN_CREATE) < 0) {
		log_warn("cannot watch %s for commits (%s): polling instead", dir, strerror(errno));
		close(w->fd);
		w->fd = -1;
	} else if (w->fd < 0) {
		log_warn("inotify unavailable (%s): polling for commits instead", strerror(errno));
	}
	free(dir_copy);
	free(base_copy);
	return w;
}

void
wake_close(struct wake *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->base);
	free(w);
}

int
wake_has_inotify(const struct wake *w)
{
	return w->fd >= 0;
}

/* Is name the database, its -wal or its -journal? */
static int
wake_is_ours(const struct wake *w, const char *name)
{
	if (strncmp(name, w->base, w->base_len) != 0)
		return 0;
	name += w->base_len;
	return *name == '\0' || strcmp(name, "-wal") == 0 || strcmp(name, "-journal") == 0;
}

/* Drain queued events; 1 if any concerned the database. */
static int
wake_drain(struct wake *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t len;
	char *p;
	int ours = 0;

	while ((len = read(w->fd, buf, sizeof buf)) > 0) {
		for (p = buf; p < buf + len; p += sizeof *ev + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->len > 0 && wake_is_ours(w, ev->name))
				ours = 1;
			if (ev->mask & IN_Q_OVERFLOW)
				ours = 1;
		}
	}
	return ours;
}

/*
 * Events about other files in the directory (an application's log next to its database)
 * do not end the sleep: waking on each of them made the loop run a pass of queries per
 * write of the other file.
 */
int
wake_wait(struct wake *w, int64_t timeout_us)
{
	int64_t deadline = util_monotonic_us() + timeout_us, left = timeout_us;
	struct timespec ts;
	struct pollfd fds[2];
	nfds_t n = 0;
	int in = -1, extra = -1;

	if (w->fd >= 0) {
		fds[n].fd = w->fd;
		fds[n].events = POLLIN;
		in = (int)n++;
	}
	if (w->extra_fd >= 0) {
		fds[n].fd = w->extra_fd;
		fds[n].events = POLLIN;
		extra = (int)n++;
	}
	for (;;) {
		ts.tv_sec = left / 1000000;
		ts.tv_nsec = (left % 1000000) * 1000;
		if (ppoll(fds, n, &ts, NULL) <= 0)
			return 0;
		if (in >= 0 && (fds[in].revents & POLLIN) && wake_drain(w))
			return 1;
		if (extra >= 0 && fds[extra].revents != 0)
			return 0;
		if ((left = deadline - util_monotonic_us()) <= 0)
			return 0;
	}
}
