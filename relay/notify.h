/*
 * notify.h: telling systemd how the relay is (sd_notify(3)), without libsystemd: the
 * protocol is one datagram of "KEY=VALUE" lines sent to the unix socket named by
 * NOTIFY_SOCKET ('@' at its start: the abstract namespace). Outside systemd (no
 * NOTIFY_SOCKET) every call is a no-op, and so is every call on a NULL handle.
 *
 * The watchdog (WATCHDOG_USEC, for this pid when WATCHDOG_PID is set) is fed by the loop
 * itself with notify_watchdog, never by a thread of its own: a wedged loop stops feeding
 * it and systemd restarts the relay.
 */
#ifndef RELAY_NOTIFY_H
#define RELAY_NOTIFY_H

#include <stdint.h>

struct notify;

/* A handle from the environment, or NULL when outboxd does not run under systemd's
 * Type=notify (a warning says why if NOTIFY_SOCKET is set but unusable). */
struct notify *notify_open(void);
void notify_close(struct notify *n);

/* Send one message ("READY=1", "STATUS=..."); failures are logged at debug level. */
void notify_send(struct notify *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* How often the loop must call notify_watchdog (half of WATCHDOG_USEC), in ms; 0: never. */
int64_t notify_watchdog_ms(const struct notify *n);
/* WATCHDOG=1 if half the watchdog interval passed since the last one. */
void notify_watchdog(struct notify *n);

#endif
