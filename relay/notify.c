/*
 * notify.c: the sd_notify datagram protocol, written out (it is a few lines; libsystemd
 * would add a dependency for them). See notify.h.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"
#include "util.h"

struct notify {
	int fd;
	struct sockaddr_un addr;
	socklen_t addrlen;
	int64_t watchdog_ms;      /* half of WATCHDOG_USEC; 0: no watchdog */
	int64_t fed_at;           /* monotonic ms of the last WATCHDOG=1 */
};

/* Half of WATCHDOG_USEC when it is meant for us, else 0. */
static int64_t
notify_read_watchdog(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	int64_t v, p;
	char *cause = NULL;

	if (usec == NULL)
		return 0;
	if (pid != NULL && (util_parse_int(pid, 1, INT32_MAX, &p, &cause) != 0 ||
	    p != (int64_t)getpid())) {
		free(cause);
		return 0;
	}
	if (util_parse_int(usec, 1, INT64_MAX / 2, &v, &cause) != 0) {
		log_warn("WATCHDOG_USEC: %s: the watchdog is not fed", cause);
		free(cause);
		return 0;
	}
	v /= 2000;
	return v > 0 ? v : 1;
}

struct notify *
notify_open(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct notify *n;
	size_t len;

	if (path == NULL || *path == '\0')
		return NULL;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof n->addr.sun_path) {
		log_warn("NOTIFY_SOCKET=%s: not a unix socket path: systemd is not notified", path);
		return NULL;
	}
	n = xcalloc(1, sizeof *n);
	if ((n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
		log_warn("NOTIFY_SOCKET: cannot make a socket: %s", strerror(errno));
		free(n);
		return NULL;
	}
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, path, len);
	if (path[0] == '@')
		n->addr.sun_path[0] = '\0';    /* abstract: no terminating NUL counts */
	n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
	    (path[0] == '@' ? 0 : 1));
	n->watchdog_ms = notify_read_watchdog();
	return n;
}

void
notify_close(struct notify *n)
{
	if (n == NULL)
		return;
	close(n->fd);
	free(n);
}

void
notify_send(struct notify *n, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int len;

	if (n == NULL)
		return;
	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if ((size_t)len >= sizeof buf)
		len = sizeof buf - 1;
	if (sendto(n->fd, buf, (size_t)len, MSG_NOSIGNAL, (const struct sockaddr *)&n->addr,
	    n->addrlen) < 0)
		log_debug("NOTIFY_SOCKET: cannot send %.*s: %s", (int)strcspn(buf, "="), buf,
		    strerror(errno));
}

int64_t
notify_watchdog_ms(const struct notify *n)
{
	return n != NULL ? n->watchdog_ms : 0;
}

void
notify_watchdog(struct notify *n)
{
	int64_t now;

	if (n == NULL || n->watchdog_ms == 0)
		return;
	now = util_monotonic_ms();
	if (n->fed_at != 0 && now - n->fed_at < n->watchdog_ms)
		return;
	n->fed_at = now;
	notify_send(n, "WATCHDOG=1");
}
