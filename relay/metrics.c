/*
 * metrics.c: the snapshot the loop fills, and the HTTP endpoints that read it (see
 * metrics.h): Prometheus text format 0.0.4 on /metrics, /healthz, /readyz.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <microhttpd.h>

#include "metrics.h"
#include "util.h"

#define METRICS_NAME_MAX 64    /* CONF_SINK_NAME_MAX */

/* Upper bounds of the histograms' buckets, in seconds. */
static const double metrics_batch_le[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
static const double metrics_lag_le[] = {
	0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600
};
#define METRICS_NBATCH (sizeof metrics_batch_le / sizeof metrics_batch_le[0])
#define METRICS_NLAG (sizeof metrics_lag_le / sizeof metrics_lag_le[0])

struct metrics_histogram {
	uint64_t bucket[METRICS_NLAG > METRICS_NBATCH ? METRICS_NLAG : METRICS_NBATCH];
	uint64_t count;
	double sum;
};

struct metrics_sink {
	char name[METRICS_NAME_MAX + 1];
	int64_t published, rejected, failed, reconnects;
	int up;
	int64_t cursor;
	int64_t retrying;
	int64_t oldest_at;         /* unix ms; -1: nothing waits */
	struct metrics_histogram batch, lag;
	/* Derived at scrape time, in the scrape's copy. */
	int64_t backlog, age_ms, up_value;
};

struct metrics {
	pthread_mutex_t lock;
	/* Under lock: */
	struct metrics_sink *sinks;
	size_t nsinks;
	int64_t max_seq;
	int64_t pass_at;           /* monotonic ms of the last pass; 0: none yet */
	int64_t quiet_ms;          /* how long the loop may be silent and still be healthy */
	/* Set once: */
	char *build_labels;
	double start_time;         /* unix seconds */
	struct MHD_Daemon *daemon;
	char *socket_path;         /* a unix socket we made, removed at the end */
};

/* ---- the loop's side ------------------------------------------------------------------ */

/* Fields of /proc/self/stat (proc(5) numbers them from 1), f[n] for n in [4, 24]; 0
 * where unreadable. Field 2, the command, may hold spaces: count from its ')'. */
#define METRICS_STAT_FIELDS 25
static void
metrics_read_stat(unsigned long long f[METRICS_STAT_FIELDS])
{
	char buf[4096], *p, *end;
	FILE *fp;
	int i;

	memset(f, 0, METRICS_STAT_FIELDS * sizeof *f);
	if ((fp = fopen("/proc/self/stat", "r")) == NULL)
		return;
	if (fgets(buf, sizeof buf, fp) != NULL && (p = strrchr(buf, ')')) != NULL &&
	    (p = strchr(p + 2, ' ')) != NULL) {
		for (i = 4; i < METRICS_STAT_FIELDS; i++) {
			f[i] = strtoull(p, &end, 10);
			if (end == p)
				break;
			p = end;
		}
	}
	fclose(fp);
}

/* Seconds since boot at which we started, plus the boot time: process_start_time_seconds. */
static double
metrics_read_start_time(void)
{
	unsigned long long f[METRICS_STAT_FIELDS], btime = 0;
	char buf[256];
	FILE *fp;

	metrics_read_stat(f);
	if ((fp = fopen("/proc/stat", "r")) != NULL) {
		while (fgets(buf, sizeof buf, fp) != NULL) {
			if (strncmp(buf, "btime ", 6) == 0)
				btime = strtoull(buf + 6, NULL, 10);
		}
		fclose(fp);
	}
	return (double)btime + (double)f[22] / (double)sysconf(_SC_CLK_TCK);
}

struct metrics *
metrics_new(const char *build_labels)
{
	struct metrics *m = xcalloc(1, sizeof *m);

	pthread_mutex_init(&m->lock, NULL);
	m->build_labels = xstrdup(build_labels);
	m->start_time = metrics_read_start_time();
	return m;
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	if (m->daemon != NULL)
		MHD_stop_daemon(m->daemon);
	if (m->socket_path != NULL)
		unlink(m->socket_path);
	pthread_mutex_destroy(&m->lock);
	free(m->sinks);
	free(m->build_labels);
	free(m->socket_path);
	free(m);
}

void
metrics_set_sinks(struct metrics *m, const char *const *names, size_t n)
{
	struct metrics_sink *next;
	size_t i, j;

	if (m == NULL)
		return;
	next = xcalloc(n > 0 ? n : 1, sizeof *next);
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < n; i++) {
		for (j = 0; j < m->nsinks; j++) {
			if (strcmp(m->sinks[j].name, names[i]) == 0) {
				next[i] = m->sinks[j];
				break;
			}
		}
		if (j == m->nsinks) {
			snprintf(next[i].name, sizeof next[i].name, "%s", names[i]);
			next[i].oldest_at = -1;
		}
	}
	free(m->sinks);
	m->sinks = next;
	m->nsinks = n;
	pthread_mutex_unlock(&m->lock);
}

void
metrics_pass(struct metrics *m, int64_t poll_ms, int64_t backoff_ms)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	m->pass_at = util_monotonic_ms();
	m->quiet_ms = 2 * poll_ms + backoff_ms;
	pthread_mutex_unlock(&m->lock);
}

void
metrics_sink_state(struct metrics *m, size_t i, int up, int64_t cursor)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	if (i < m->nsinks) {
		m->sinks[i].up = up;
		m->sinks[i].cursor = cursor;
	}
	pthread_mutex_unlock(&m->lock);
}

void
metrics_sink_reconnected(struct metrics *m, size_t i)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	if (i < m->nsinks) {
		m->sinks[i].reconnects++;
		m->sinks[i].up = 1;
	}
	pthread_mutex_unlock(&m->lock);
}

static void
metrics_observe(struct metrics_histogram *h, const double *le, size_t nle, double v)
{
	size_t i;

	for (i = 0; i < nle; i++) {
		if (v <= le[i]) {
			h->bucket[i]++;
			break;
		}
	}
	h->count++;
	h->sum += v;
}

void
metrics_batch(struct metrics *m, size_t i, double seconds, const struct sink_message *msgs,
    size_t n, int64_t upto, int64_t failed)
{
	struct metrics_sink *ms;
	int64_t now = util_now_ms();
	double lag;
	size_t k;

	if (m == NULL || n == 0)
		return;
	pthread_mutex_lock(&m->lock);
	if (i < m->nsinks) {
		ms = &m->sinks[i];
		metrics_observe(&ms->batch, metrics_batch_le, METRICS_NBATCH, seconds);
		for (k = 0; k < n && msgs[k].seq <= upto; k++) {
			if (msgs[k].status == SINK_REJECTED) {
				ms->rejected++;
			} else if (msgs[k].status == SINK_DELIVERED) {
				ms->published++;
				lag = msgs[k].created_at < now ? (double)(now - msgs[k].created_at) / 1000 : 0;
				metrics_observe(&ms->lag, metrics_lag_le, METRICS_NLAG, lag);
			}
		}
		ms->failed += failed;
	}
	pthread_mutex_unlock(&m->lock);
}

void
metrics_max_seq(struct metrics *m, int64_t max_seq)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	m->max_seq = max_seq;
	pthread_mutex_unlock(&m->lock);
}

void
metrics_sink_waiting(struct metrics *m, size_t i, int64_t retrying, int64_t oldest_at)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	if (i < m->nsinks) {
		m->sinks[i].retrying = retrying > 0 ? retrying : 0;
		m->sinks[i].oldest_at = oldest_at;
	}
	pthread_mutex_unlock(&m->lock);
}

/* Events after the cursor (seq is dense there: producers never set it, retention only
 * deletes what every sink handed off) plus the retrying ones. */
static int64_t
metrics_backlog(const struct metrics_sink *ms, int64_t max_seq)
{
	return (max_seq > ms->cursor ? max_seq - ms->cursor : 0) + ms->retrying;
}

void
metrics_status(struct metrics *m, char *buf, size_t len)
{
	size_t i, used = 0;
	int w;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->nsinks && used < len; i++) {
		w = snprintf(buf + used, len - used, "%s%s %s, backlog %lld", i > 0 ? "; " : "",
		    m->sinks[i].name, m->sinks[i].up ? "up" : "down",
		    (long long)metrics_backlog(&m->sinks[i], m->max_seq));
		if (w < 0)
			break;
		used += (size_t)w;
	}
	pthread_mutex_unlock(&m->lock);
}

/* ---- the exposition ------------------------------------------------------------------- */

struct metrics_buf {
	char *s;
	size_t len, cap;
};

static void metrics_printf(struct metrics_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
metrics_printf(struct metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			abort();
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap = b->cap * 2 + (size_t)n + 1;
		b->s = xreallocarray(b->s, b->cap, 1);
	}
}

static void
metrics_family(struct metrics_buf *b, const char *name, const char *type, const char *help)
{
	metrics_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One value per sink of the int64 field at offset. */
static void
metrics_per_sink(struct metrics_buf *b, const struct metrics_sink *sinks, size_t n,
    const char *name, const char *type, const char *help, size_t offset)
{
	size_t i;

	metrics_family(b, name, type, help);
	for (i = 0; i < n; i++)
		metrics_printf(b, "%s{sink=\"%s\"} %lld\n", name, sinks[i].name,
		    (long long)*(const int64_t *)(const void *)((const char *)&sinks[i] + offset));
}

static void
metrics_histograms(struct metrics_buf *b, const struct metrics_sink *sinks, size_t n,
    const char *name, const char *help, size_t offset, const double *le, size_t nle)
{
	const struct metrics_histogram *h;
	uint64_t cum;
	size_t i, k;

	metrics_family(b, name, "histogram", help);
	for (i = 0; i < n; i++) {
		h = (const void *)((const char *)&sinks[i] + offset);
		for (k = 0, cum = 0; k < nle; k++) {
			cum += h->bucket[k];
			metrics_printf(b, "%s_bucket{sink=\"%s\",le=\"%g\"} %llu\n", name,
			    sinks[i].name, le[k], (unsigned long long)cum);
		}
		metrics_printf(b, "%s_bucket{sink=\"%s\",le=\"+Inf\"} %llu\n", name, sinks[i].name,
		    (unsigned long long)h->count);
		metrics_printf(b, "%s_sum{sink=\"%s\"} %.6f\n", name, sinks[i].name, h->sum);
		metrics_printf(b, "%s_count{sink=\"%s\"} %llu\n", name, sinks[i].name,
		    (unsigned long long)h->count);
	}
}

/* process_* from /proc, as the Prometheus client libraries export them. */
static void
metrics_process(struct metrics_buf *b, double start_time)
{
	/* utime(14) stime(15) in clock ticks, vsize(23) in bytes, rss(24) in pages. */
	unsigned long long f[METRICS_STAT_FIELDS];
	long fds = 0;
	struct rlimit rl;
	struct dirent *de;
	DIR *dir;

	metrics_read_stat(f);
	if ((dir = opendir("/proc/self/fd")) != NULL) {
		while ((de = readdir(dir)) != NULL)
			fds += de->d_name[0] != '.';
		closedir(dir);
		fds--;    /* the directory's own */
	}
	metrics_family(b, "process_cpu_seconds_total", "counter",
	    "Total user and system CPU time spent in seconds.");
	metrics_printf(b, "process_cpu_seconds_total %.2f\n",
	    (double)(f[14] + f[15]) / (double)sysconf(_SC_CLK_TCK));
	metrics_family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
	metrics_printf(b, "process_resident_memory_bytes %llu\n",
	    f[24] * (unsigned long long)sysconf(_SC_PAGESIZE));
	metrics_family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
	metrics_printf(b, "process_virtual_memory_bytes %llu\n", f[23]);
	metrics_family(b, "process_start_time_seconds", "gauge",
	    "Start time of the process since unix epoch in seconds.");
	metrics_printf(b, "process_start_time_seconds %.2f\n", start_time);
	metrics_family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
	metrics_printf(b, "process_open_fds %ld\n", fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		metrics_family(b, "process_max_fds", "gauge",
		    "Maximum number of open file descriptors.");
		metrics_printf(b, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	}
}

/* A copy of the sinks and of max_seq, taken under the lock. */
static struct metrics_sink *
metrics_copy(struct metrics *m, size_t *n, int64_t *max_seq)
{
	struct metrics_sink *copy;

	pthread_mutex_lock(&m->lock);
	*n = m->nsinks;
	*max_seq = m->max_seq;
	copy = xcalloc(*n > 0 ? *n : 1, sizeof *copy);
	if (*n > 0)
		memcpy(copy, m->sinks, *n * sizeof *copy);
	pthread_mutex_unlock(&m->lock);
	return copy;
}

#define MS(field) offsetof(struct metrics_sink, field)

static char *
metrics_exposition(struct metrics *m, size_t *len)
{
	struct metrics_buf b = { .s = xcalloc(1, 8192), .cap = 8192 };
	struct metrics_sink *s;
	int64_t max_seq, now = util_now_ms();
	size_t n, i;

	s = metrics_copy(m, &n, &max_seq);
	for (i = 0; i < n; i++) {
		/* The gauges derived at scrape time, in place in the copy. */
		s[i].backlog = metrics_backlog(&s[i], max_seq);
		/* oldest_at may be up to a refresh old: with nothing waiting it is 0 at once. */
		s[i].age_ms = s[i].backlog == 0 || s[i].oldest_at < 0 || s[i].oldest_at > now ? 0 :
		    now - s[i].oldest_at;
		s[i].up_value = s[i].up;
	}
	metrics_per_sink(&b, s, n, "outboxd_events_published_total", "counter",
	    "Events the sink confirmed (handed off).", MS(published));
	metrics_per_sink(&b, s, n, "outboxd_events_rejected_total", "counter",
	    "Events the broker rejected (each counts an attempt).", MS(rejected));
	metrics_per_sink(&b, s, n, "outboxd_events_failed_total", "counter",
	    "Events that became failed after the last attempt.", MS(failed));
	metrics_per_sink(&b, s, n, "outboxd_backlog_events", "gauge",
	    "Events waiting for the sink: after its cursor, plus those in retry.", MS(backlog));
	metrics_family(&b, "outboxd_oldest_pending_age_seconds", "gauge",
	    "Age of the oldest event waiting for the sink, 0 when none.");
	for (i = 0; i < n; i++)
		metrics_printf(&b, "outboxd_oldest_pending_age_seconds{sink=\"%s\"} %.3f\n",
		    s[i].name, (double)s[i].age_ms / 1000);
	metrics_per_sink(&b, s, n, "outboxd_sink_up", "gauge",
	    "1 when the sink is connected, 0 during an outage.", MS(up_value));
	metrics_per_sink(&b, s, n, "outboxd_sink_reconnects_total", "counter",
	    "Connections to the sink (re)established.", MS(reconnects));
	metrics_histograms(&b, s, n, "outboxd_publish_batch_seconds",
	    "Time to publish one batch, from the first message to the last confirmation.",
	    MS(batch), metrics_batch_le, METRICS_NBATCH);
	metrics_histograms(&b, s, n, "outboxd_event_lag_seconds",
	    "Time from an event's created_at to its confirmation by the sink.", MS(lag),
	    metrics_lag_le, METRICS_NLAG);
	metrics_family(&b, "outboxd_build_info", "gauge",
	    "Versions of outboxd and of its libraries; always 1.");
	metrics_printf(&b, "outboxd_build_info{%s} 1\n", m->build_labels);
	metrics_process(&b, m->start_time);
	free(s);
	*len = b.len;
	return b.s;
}

/* ---- HTTP ----------------------------------------------------------------------------- */

static enum MHD_Result
metrics_reply(struct MHD_Connection *c, unsigned int status, const char *type, char *body,
    size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result rc;

	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result
metrics_text(struct MHD_Connection *c, unsigned int status, char *text)
{
	return metrics_reply(c, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* 200 while the loop turns: a pass within 2 * poll interval + the backoff in force. */
static enum MHD_Result
metrics_healthz(struct metrics *m, struct MHD_Connection *c)
{
	int64_t pass_at, quiet, ago;

	pthread_mutex_lock(&m->lock);
	pass_at = m->pass_at;
	quiet = m->quiet_ms;
	pthread_mutex_unlock(&m->lock);
	if (pass_at == 0)
		return metrics_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		    xstrdup("starting: the loop has not completed a pass yet\n"));
	ago = util_monotonic_ms() - pass_at;
	if (ago > quiet)
		return metrics_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, xasprintf("stalled: the "
		    "loop's last pass was %lld ms ago (limit %lld ms)\n", (long long)ago,
		    (long long)quiet));
	return metrics_text(c, MHD_HTTP_OK, xasprintf("ok: the loop's last pass was %lld ms "
	    "ago\n", (long long)ago));
}

/* 200 when every sink is connected, else 503 naming those that are not. */
static enum MHD_Result
metrics_readyz(struct metrics *m, struct MHD_Connection *c)
{
	struct metrics_buf b = { .s = xcalloc(1, 256), .cap = 256 };
	size_t i, down = 0;

	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->nsinks; i++) {
		if (!m->sinks[i].up)
			metrics_printf(&b, "%s%s", down++ > 0 ? ", " : "not ready: not connected: ",
			    m->sinks[i].name);
	}
	if (m->nsinks == 0 || m->pass_at == 0)
		metrics_printf(&b, "%snot ready: starting", down > 0 ? "; " : "");
	pthread_mutex_unlock(&m->lock);
	if (b.len > 0) {
		metrics_printf(&b, "\n");
		return metrics_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, b.s);
	}
	free(b.s);
	return metrics_text(c, MHD_HTTP_OK, xstrdup("ready: every sink is connected\n"));
}

static enum MHD_Result
metrics_handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct metrics *m = cls;
	size_t len;
	char *body;

	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return metrics_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, xstrdup("only GET\n"));
	if (strcmp(url, "/metrics") == 0) {
		body = metrics_exposition(m, &len);
		return metrics_reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
		    body, len);
	}
	if (strcmp(url, "/healthz") == 0)
		return metrics_healthz(m, c);
	if (strcmp(url, "/readyz") == 0)
		return metrics_readyz(m, c);
	return metrics_text(c, MHD_HTTP_NOT_FOUND,
	    xstrdup("not found: try /metrics, /healthz or /readyz\n"));
}

/* ---- listening ------------------------------------------------------------------------ */

/* Parse addr into *sa; -1 with *cause. */
static int
metrics_parse(const char *addr, struct sockaddr_storage *sa, socklen_t *salen, char **cause)
{
	struct sockaddr_un *un = (struct sockaddr_un *)sa;
	struct sockaddr_in *in4 = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
	const char *path = addr, *colon;
	char host[INET6_ADDRSTRLEN + 1];
	int64_t port;
	size_t hlen;

	memset(sa, 0, sizeof *sa);
	if (strncmp(addr, "unix:", 5) == 0)
		path = addr + 5;
	if (path != addr || addr[0] == '/' || addr[0] == '.') {
		if (*path == '\0' || strlen(path) >= sizeof un->sun_path) {
			*cause = xasprintf("metrics.listen: a unix socket path of 1 to %zu bytes, "
			    "got \"%s\"", sizeof un->sun_path - 1, path);
			return -1;
		}
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, path, strlen(path) + 1);
		*salen = sizeof *un;
		return 0;
	}
	if (addr[0] == '[') {
		colon = strstr(addr, "]:");
		hlen = colon != NULL ? (size_t)(colon - addr - 1) : 0;
		colon = colon != NULL ? colon + 1 : NULL;
	} else {
		colon = strrchr(addr, ':');
		hlen = colon != NULL ? (size_t)(colon - addr) : 0;
	}
	if (colon == NULL || hlen == 0 || hlen >= sizeof host) {
		*cause = xasprintf("metrics.listen: expected ADDR:PORT (127.0.0.1:9464, "
		    "[::1]:9464) or a unix socket path, got \"%s\"", addr);
		return -1;
	}
	memcpy(host, addr + (addr[0] == '['), hlen);
	host[hlen] = '\0';
	if (util_parse_int(colon + 1, 1, 65535, &port, cause) != 0) {
		char *why = *cause;
		*cause = xasprintf("metrics.listen: port in \"%s\": %s", addr, why);
		free(why);
		return -1;
	}
	if (addr[0] == '[' && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*salen = sizeof *in6;
		return 0;
	}
	if (addr[0] != '[' && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*salen = sizeof *in4;
		return 0;
	}
	*cause = xasprintf("metrics.listen: \"%s\" is not an IPv4 address (or an IPv6 one in "
	    "brackets, [::1]:9464), in \"%s\"", host, addr);
	return -1;
}

int
metrics_check_listen(const char *addr, char **cause)
{
	struct sockaddr_storage sa;
	socklen_t salen;

	return metrics_parse(addr, &sa, &salen, cause);
}

/* Is there a socket file at path that nobody listens on (left by a relay that died)? */
static int
metrics_stale_socket(const struct sockaddr_un *un)
{
	struct stat sb;
	int fd, stale;

	if (stat(un->sun_path, &sb) != 0 || !S_ISSOCK(sb.st_mode))
		return 0;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 0;
	stale = connect(fd, (const struct sockaddr *)un, sizeof *un) != 0 &&
	    errno == ECONNREFUSED;
	close(fd);
	return stale;
}

static int
metrics_socket(const char *addr, const struct sockaddr_storage *sa, socklen_t salen,
    char **cause)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
	int fd, one = 1, rc;

	if ((fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
		*cause = xasprintf("metrics.listen: cannot make a socket for %s: %s", addr,
		    strerror(errno));
		return -1;
	}
	if (sa->ss_family != AF_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (sa->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	rc = bind(fd, (const struct sockaddr *)sa, salen);
	if (rc != 0 && errno == EADDRINUSE && sa->ss_family == AF_UNIX &&
	    metrics_stale_socket(un) && unlink(un->sun_path) == 0)
		rc = bind(fd, (const struct sockaddr *)sa, salen);
	if (rc != 0 || listen(fd, 64) != 0) {
		*cause = xasprintf("metrics.listen: cannot listen on %s: %s", addr,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int
metrics_listen(struct metrics *m, const char *addr, char **cause)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	sigset_t all, old;
	int fd;

	if (metrics_parse(addr, &sa, &salen, cause) != 0 ||
	    (fd = metrics_socket(addr, &sa, salen, cause)) < 0)
		return -1;
	if (sa.ss_family == AF_UNIX)
		m->socket_path = xstrdup(((struct sockaddr_un *)&sa)->sun_path);
	/* The thread blocks every signal: they stay the loop's, whose sleeps they cut short. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	m->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL,
	    NULL, metrics_handle, m, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)32, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)10, MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (m->daemon == NULL) {
		*cause = xasprintf("metrics.listen: cannot serve on %s (libmicrohttpd failed to "
		    "start)", addr);
		close(fd);
		if (m->socket_path != NULL)
			unlink(m->socket_path);
		free(m->socket_path);
		m->socket_path = NULL;
		return -1;
	}
	return 0;
}
