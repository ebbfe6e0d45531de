/*
 * sink_redis.c: publish envelopes to Redis, with PUBLISH (pub/sub, the push-events
 * default) or XADD (streams), over one blocking hiredis connection (TCP or unix socket).
 *
 * A batch is pipelined: every command is appended and written (in chunks, so the output
 * buffer stays small), then the replies are read in order. A reply decides its message:
 * a result is delivered, an error reply is the broker refusing that message (rejected),
 * except errors that describe the server rather than the message (LOADING, OOM, ...),
 * which leave it unsent. A connection that breaks or times out leaves the message waiting
 * for its reply, and every one after it, unsent.
 *
 * When Redis refuses a command it cannot parse (a bulk larger than proto-max-bulk-len) it
 * replies with an error and closes the connection, often while we are still writing the
 * rest of the batch. The replies it sent before closing still sit in our socket, so a
 * failed write is followed by reading what arrived: the culprit is rejected, not retried
 * for ever as unsent.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "redis_url.h"
#include "sink.h"
#include "sink_redis.h"
#include "util.h"

/* Write the pipeline out whenever this much is buffered. */
#define SINK_REDIS_FLUSH_BYTES ((size_t)256 * 1024)
struct sink_redis {
	const struct sink_redis_options *o;  /* the sink's own (sk->options) */
	struct redis_url url;
	char *desc;               /* the URL for messages, password masked */
	char maxlen[24];          /* "" for no trimming */

	redisContext *c;
	unsigned char *sent;      /* per message of the batch: command written */
	size_t sent_size;
	char *cmd;                /* one command in the protocol's form, before appending */
	size_t cmd_size;
	char key[SINK_REDIS_KEY_MAX];
};

static void
sink_redis_open(struct sink *sk)
{
	struct sink_redis *sr = xcalloc(1, sizeof *sr);
	char *cause = NULL;

	sr->o = sk->options;
	/* The type's check accepted these options: this cannot fail. */
	if (sink_redis_endpoint(sr->o, sk->name, &sr->url, &cause) != 0)
		abort();
	sr->desc = sr->o->master_name != NULL ? sink_redis_sentinel_describe(sr->o) :
	    redis_url_describe(&sr->url);
	if (sr->o->stream_maxlen > 0)
		snprintf(sr->maxlen, sizeof sr->maxlen, "%" PRId64, sr->o->stream_maxlen);
	sk->priv = sr;
}

static void
sink_redis_close(struct sink *sk)
{
	struct sink_redis *sr = sk->priv;

	if (sr->c != NULL)
		redisFree(sr->c);
	redis_url_free(&sr->url);
	free(sr->desc);
	free(sr->sent);
	free(sr->cmd);
	free(sr);
	sk->priv = NULL;
}

/* ---- replies and errors ------------------------------------------------------------ */

/* text with every occurrence of the password masked, into buf. */
static const char *
sink_redis_scrub(const struct sink_redis *sr, const char *text, char *buf, size_t len)
{
	const char *pw = sr->url.password, *p = text, *hit;
	size_t used = 0, n;

	if (pw == NULL || *pw == '\0' || strstr(text, pw) == NULL)
		return text;
	buf[0] = '\0';
	while ((hit = strstr(p, pw)) != NULL && used < len) {
		n = (size_t)(hit - p);
		used += (size_t)snprintf(buf + used, len - used, "%.*s***", (int)n, p);
		p = hit + strlen(pw);
	}
	if (used < len)
		snprintf(buf + used, len - used, "%s", p);
	return buf;
}

/* Why the connection failed, malloc'd. */
static char *
sink_redis_conn_error(const struct sink_redis *sr, const redisContext *c, int saved_errno)
{
	if (c->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK))
		return xasprintf("%s: no reply within %d ms (redis.timeout-ms)", sr->desc,
		    sr->o->timeout_ms);
	if (c->err == REDIS_ERR_EOF)
		return xasprintf("%s: the server closed the connection", sr->desc);
	return xasprintf("%s: %s", sr->desc, c->errstr[0] != '\0' ? c->errstr :
	    "connection error");
}

/* The next reply; -1 when the connection failed (c->err says why). */
static int
sink_redis_read(redisContext *c, redisReply **reply)
{
	void *aux = NULL;

	while (1) {
		if (redisGetReplyFromReader(c, &aux) != REDIS_OK)
			return -1;
		if (aux != NULL)
			break;
		if (redisBufferRead(c) != REDIS_OK)
			return -1;
	}
	*reply = aux;
	return 0;
}

/* Write out what the pipeline holds; -1 when the connection failed. */
static int
sink_redis_flush(redisContext *c)
{
	int done = 0;

	while (!done) {
		if (redisBufferWrite(c, &done) != REDIS_OK)
			return -1;
	}
	return 0;
}

/* Error replies about the server's state, not the message: retry without an attempt. */
static int
sink_redis_transient(const char *err)
{
	static const char *const prefixes[] = {
		"LOADING", "BUSY", "MASTERDOWN", "READONLY", "NOAUTH", "OOM", "TRYAGAIN",
		"CLUSTERDOWN", "MISCONF", "NOREPLICAS", "MOVED", "ASK ", NULL
	};
	size_t i;

	for (i = 0; prefixes[i] != NULL; i++) {
		if (strncmp(err, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	}
	return 0;
}

/* ---- connecting -------------------------------------------------------------------- */

/*
 * AUTH, SELECT and PING in one round trip; the first error says what went wrong. PING is
 * there so a server that wants a password we do not have fails the connection, rather
 * than every message.
 */
static int
sink_redis_handshake(struct sink_redis *sr, char **cause)
{
	const char *argv[3], *what[4];
	size_t argvlen[3];
	char db[16], scrubbed[512];
	redisReply *reply;
	int argc, i, n = 0, saved;

	if (sr->url.password != NULL) {
		argc = 0;
		argv[argc++] = "AUTH";
		if (sr->url.username != NULL)
			argv[argc++] = sr->url.username;
		argv[argc++] = sr->url.password;
		for (i = 0; i < argc; i++)
			argvlen[i] = strlen(argv[i]);
		redisAppendCommandArgv(sr->c, argc, argv, argvlen);
		what[n++] = "authentication failed";
	}
	if (sr->url.db != 0) {
		snprintf(db, sizeof db, "%d", sr->url.db);
		argv[0] = "SELECT";
		argv[1] = db;
		argvlen[0] = 6;
		argvlen[1] = strlen(db);
		redisAppendCommandArgv(sr->c, 2, argv, argvlen);
		what[n++] = "cannot select the database";
	}
	if (sr->o->client_name != NULL) {
		argv[0] = "CLIENT";
		argv[1] = "SETNAME";
		argv[2] = sr->o->client_name;
		for (i = 0; i < 3; i++)
			argvlen[i] = strlen(argv[i]);
		redisAppendCommandArgv(sr->c, 3, argv, argvlen);
		what[n++] = "cannot set the client name";
	}
	argv[0] = "PING";
	argvlen[0] = 4;
	redisAppendCommandArgv(sr->c, 1, argv, argvlen);
	what[n++] = "the server refuses commands";
	if (sink_redis_flush(sr->c) != 0)
		goto broken;
	for (i = 0; i < n; i++) {
		if (sink_redis_read(sr->c, &reply) != 0)
			goto broken;
		if (reply->type == REDIS_REPLY_ERROR && *cause == NULL) {
			*cause = xasprintf("%s: %s: %s", sr->desc, what[i],
			    sink_redis_scrub(sr, reply->str, scrubbed, sizeof scrubbed));
		}
		freeReplyObject(reply);
	}
	return *cause != NULL ? -1 : 0;
broken:
	saved = errno;
	free(*cause);
	*cause = sink_redis_conn_error(sr, sr->c, saved);
	return -1;
}

/*
 * With replicas-ack, a master with fewer replicas connected than that would take every
 * batch and then fail its WAIT: call it an outage now, rather than publish batches that
 * are bound to be published again (as right after a failover, before the old master
 * comes back as a replica).
 */
static int
sink_redis_check_replicas(struct sink_redis *sr, char **cause)
{
	redisReply *reply = redisCommand(sr->c, "INFO replication");
	const char *at;
	long replicas = 0;

	if (reply == NULL) {
		*cause = sink_redis_conn_error(sr, sr->c, errno);
		return -1;
	}
	/* Replicas still loading the master's data do not count: WAIT would not either. */
	for (at = reply->type == REDIS_REPLY_STRING ? reply->str : ""; (at = strstr(at,
	    ",state=online,")) != NULL; at++)
		replicas++;
	freeReplyObject(reply);
	if (replicas < sr->o->replicas_ack) {
		*cause = xasprintf("%s: %ld replica%s online, replicas-ack wants %d", sr->desc,
		    replicas, replicas == 1 ? "" : "s", sr->o->replicas_ack);
		return -1;
	}
	return 0;
}

/* What one sentinel says the master's address is; NULL, or why not (malloc'd). */
static char *
sink_redis_ask_sentinel(struct sink_redis *sr, const char *host, int port)
{
	struct timeval tv = util_timeval_ms(sr->o->connect_timeout_ms);
	redisContext *c = redisConnectWithTimeout(host, port, tv);
	redisReply *reply = NULL;
	char *why = NULL;
	int64_t master_port;

	if (c == NULL || c->err != 0) {
		why = xstrdup(c != NULL ? c->errstr : "out of memory");
		goto out;
	}
	redisSetTimeout(c, tv);
	if (sr->o->sentinel_password != NULL) {
		reply = redisCommand(c, "AUTH %s", sr->o->sentinel_password);
		if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
			why = xasprintf("authentication failed: %s", reply != NULL ? reply->str :
			    c->errstr);
			goto out;
		}
		freeReplyObject(reply);
	}
	reply = redisCommand(c, "SENTINEL get-master-addr-by-name %s", sr->o->master_name);
	if (reply == NULL)
		why = xstrdup(c->errstr[0] != '\0' ? c->errstr : "no reply");
	else if (reply->type == REDIS_REPLY_NIL)
		why = xasprintf("does not know a master named %s", sr->o->master_name);
	else if (reply->type == REDIS_REPLY_ERROR)
		why = xstrdup(reply->str);
	else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    reply->element[1]->type != REDIS_REPLY_STRING ||
	    util_parse_int(reply->element[1]->str, 1, 65535, &master_port, &why) != 0) {
		free(why);
		why = xstrdup("an unexpected reply to SENTINEL get-master-addr-by-name");
	} else {
		free(sr->url.host);
		sr->url.host = xstrdup(reply->element[0]->str);
		sr->url.port = (int)master_port;
	}
out:
	if (reply != NULL)
		freeReplyObject(reply);
	if (c != NULL)
		redisFree(c);
	return why;
}

/* Ask the sentinels in turn where the master is; on success sr->url points there. */
static int
sink_redis_discover(struct sink_redis *sr, char **cause)
{
	char *host, *why, *all = NULL, *next, *url;
	size_t i;
	int port;

	for (i = 0; i < sr->o->sentinels.n; i++) {
		if (sink_redis_hostport(sr->o->sentinels.v[i], &host, &port) != 0)
			continue; /* the type's check refused such a sentinel already */
		why = sink_redis_ask_sentinel(sr, host, port);
		free(host);
		if (why == NULL) {
			free(all);
			url = redis_url_describe(&sr->url);
			free(sr->desc);
			sr->desc = xasprintf("%s (master %s)", url, sr->o->master_name);
			free(url);
			return 0;
		}
		next = xasprintf("%s%ssentinel %s: %s", all != NULL ? all : "",
		    all != NULL ? "; " : "", sr->o->sentinels.v[i], why);
		free(all);
		free(why);
		all = next;
	}
	*cause = xasprintf("no sentinel gave the address of master %s: %s",
	    sr->o->master_name, all != NULL ? all : "no sentinels");
	free(all);
	return -1;
}

static int
sink_redis_connect(struct sink *sk, char **cause)
{
	struct sink_redis *sr = sk->priv;
	struct timeval ctv = util_timeval_ms(sr->o->connect_timeout_ms);

	if (sr->c != NULL) {
		redisFree(sr->c);
		sr->c = NULL;
	}
	/* Behind Sentinel, the master is wherever the sentinels say now: a failover moved it,
	 * or a demoted master answered READONLY and the loop reconnects. */
	if (sr->o->master_name != NULL && sink_redis_discover(sr, cause) != 0)
		return -1;
	if (sr->url.path != NULL)
		sr->c = redisConnectUnixWithTimeout(sr->url.path, ctv);
	else
		sr->c = redisConnectWithTimeout(sr->url.host, sr->url.port, ctv);
	if (sr->c == NULL) {
		*cause = xasprintf("%s: out of memory", sr->desc);
		return -1;
	}
	*cause = NULL;
	if (sr->c->err != 0) /* the relay's message says "cannot connect" already */
		*cause = xasprintf("%s: %s", sr->desc, sr->c->errstr);
	else if (redisSetTimeout(sr->c, util_timeval_ms(sr->o->timeout_ms)) != REDIS_OK)
		*cause = xasprintf("%s: cannot set the timeout: %s", sr->desc, sr->c->errstr);
	else if (sr->url.path == NULL && redisEnableKeepAlive(sr->c) != REDIS_OK)
		*cause = xasprintf("%s: cannot enable TCP keepalive: %s", sr->desc, sr->c->errstr);
	if (*cause != NULL || sink_redis_handshake(sr, cause) != 0 ||
	    (sr->o->replicas_ack > 0 && sink_redis_check_replicas(sr, cause) != 0)) {
		redisFree(sr->c);
		sr->c = NULL;
		return -1;
	}
	return 0;
}

/* ---- publishing -------------------------------------------------------------------- */

/* "<mark><n>\r\n" at p (a RESP array or bulk header); returns its length. */
static size_t
sink_redis_put_header(char *p, char mark, size_t n)
{
	char digits[24];
	size_t nd = 0, len = 0;

	do {
		digits[nd++] = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0);
	p[len++] = mark;
	while (nd > 0)
		p[len++] = digits[--nd];
	p[len++] = '\r';
	p[len++] = '\n';
	return len;
}

/* The command argv[0..argc-1] in the protocol's form, into sr->cmd; returns its length.
 * (hiredis's redisAppendCommandArgv does the same through a printf per argument.) */
static size_t
sink_redis_format(struct sink_redis *sr, int argc, const char *const *argv,
    const size_t *argvlen)
{
	size_t need = 16, len;
	int i;

	for (i = 0; i < argc; i++)
		need += argvlen[i] + 24;
	if (need > sr->cmd_size) {
		free(sr->cmd);
		sr->cmd_size = need * 2;
		sr->cmd = xcalloc(sr->cmd_size, 1);
	}
	len = sink_redis_put_header(sr->cmd, '*', (size_t)argc);
	for (i = 0; i < argc; i++) {
		len += sink_redis_put_header(sr->cmd + len, '$', argvlen[i]);
		memcpy(sr->cmd + len, argv[i], argvlen[i]);
		len += argvlen[i];
		sr->cmd[len++] = '\r';
		sr->cmd[len++] = '\n';
	}
	return len;
}

/* Append the command for m; -1 (m rejected) if its channel does not fit. */
static int
sink_redis_append(struct sink_redis *sr, struct sink_message *m, size_t *bytes)
{
	const char *argv[8];
	size_t argvlen[8], plen = strlen(sr->o->key_prefix), klen, len;
	int argc = 0, i;

	if (sr->o->mode == SINK_REDIS_STREAM)
		memcpy(sr->key, sr->o->key_prefix, plen);
	else
		plen = 0;
	if (sink_expand(sr->o->channel, m->name, sr->key + plen, sizeof sr->key - plen) != 0) {
		sink_set_status(m, SINK_REJECTED, "the %s name is longer than %d bytes",
		    sr->o->mode == SINK_REDIS_STREAM ? "stream" : "channel", SINK_REDIS_KEY_MAX - 1);
		return -1;
	}
	klen = strlen(sr->key);
	if (sr->o->mode == SINK_REDIS_PUBSUB) {
		argv[argc++] = "PUBLISH";
		argv[argc++] = sr->key;
	} else {
		argv[argc++] = "XADD";
		argv[argc++] = sr->key;
		if (*sr->maxlen != '\0') {
			argv[argc++] = "MAXLEN";
			argv[argc++] = "~";
			argv[argc++] = sr->maxlen;
		}
		argv[argc++] = "*";
		argv[argc++] = "message";
	}
	for (i = 0; i < argc; i++)
		argvlen[i] = argv[i] == sr->key ? klen : strlen(argv[i]);
	argv[argc] = m->envelope;
	argvlen[argc++] = m->envelope_len;
	/* Formatted first: it may move sr->cmd. */
	len = sink_redis_format(sr, argc, argv, argvlen);
	if (redisAppendFormattedCommand(sr->c, sr->cmd, len) != REDIS_OK)
		abort(); /* only on out of memory */
	*bytes += m->envelope_len + klen + 64;
	return 0;
}

/* Record what reply says about m; 1 if it is a transient server error. */
static int
sink_redis_outcome(struct sink_redis *sr, struct sink_message *m, const redisReply *reply)
{
	char scrubbed[SINK_ERROR_MAX];
	const char *text;

	switch (reply->type) {
	case REDIS_REPLY_ERROR:
		text = sink_redis_scrub(sr, reply->str, scrubbed, sizeof scrubbed);
		if (sink_redis_transient(reply->str)) {
			sink_set_status(m, SINK_UNSENT, "%s", text);
			return 1;
		}
		sink_set_status(m, SINK_REJECTED, "%s", text);
		return 0;
	case REDIS_REPLY_INTEGER:
		if (sr->o->mode == SINK_REDIS_PUBSUB && sr->o->require_subscribers &&
		    reply->integer == 0) {
			/* Replies are read after the whole batch went out: sr->key holds the
			 * last message's channel by now, so expand m's own again (it fitted). */
			char channel[SINK_REDIS_KEY_MAX];

			sink_expand(sr->o->channel, m->name, channel, sizeof channel);
			sink_set_status(m, SINK_REJECTED, "no subscribers on channel %s", channel);
			return 0;
		}
		break;
	case REDIS_REPLY_STRING:
	case REDIS_REPLY_STATUS:
		break;
	default:
		sink_set_status(m, SINK_REJECTED, "unexpected reply of type %d", reply->type);
		return 0;
	}
	m->status = SINK_DELIVERED;
	m->error[0] = '\0';
	return 0;
}

/* Every message from i on whose outcome is unknown is unsent, because of why. */
static void
sink_redis_unsent(struct sink_message *msgs, size_t i, size_t n, const char *why)
{
	for (; i < n; i++) {
		if (msgs[i].status == SINK_UNSENT)
			sink_set_status(&msgs[i], SINK_UNSENT, "%s", why);
	}
}

/* WAIT replicas-ack replicas-ack-timeout-ms, after the batch in the same pipeline. */
static void
sink_redis_append_wait(struct sink_redis *sr)
{
	char count[16], ms[16];
	const char *argv[3] = { "WAIT", count, ms };
	size_t argvlen[3];
	int i;

	snprintf(count, sizeof count, "%d", sr->o->replicas_ack);
	snprintf(ms, sizeof ms, "%d", sr->o->replicas_ack_timeout_ms);
	for (i = 0; i < 3; i++)
		argvlen[i] = strlen(argv[i]);
	if (redisAppendCommandArgv(sr->c, 3, argv, argvlen) != REDIS_OK)
		abort(); /* only on out of memory */
}

/* WAIT's reply: NULL when enough replicas have the batch, else why not (malloc'd). */
static char *
sink_redis_read_wait(struct sink_redis *sr)
{
	redisReply *reply;
	char *why = NULL;
	int saved;

	if (sink_redis_read(sr->c, &reply) != 0) {
		saved = errno;
		return sink_redis_conn_error(sr, sr->c, saved);
	}
	if (reply->type == REDIS_REPLY_ERROR)
		why = xasprintf("%s: WAIT: %s", sr->desc, reply->str);
	else if (reply->type != REDIS_REPLY_INTEGER || reply->integer < sr->o->replicas_ack)
		why = xasprintf("%s: only %lld of %d replicas acknowledged the batch within %d ms "
		    "(replicas-ack)", sr->desc, reply->type == REDIS_REPLY_INTEGER ?
		    (long long)reply->integer : 0LL, sr->o->replicas_ack,
		    sr->o->replicas_ack_timeout_ms);
	freeReplyObject(reply);
	return why;
}

/* Messages the master took, but no replica confirmed: not delivered after all. */
static void
sink_redis_unreplicated(struct sink_message *msgs, size_t n, const char *why)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (msgs[i].status == SINK_DELIVERED)
			sink_set_status(&msgs[i], SINK_UNSENT, "%s", why);
	}
}

static int
sink_redis_publish(struct sink *sk, struct sink_message *msgs, size_t n, char **cause)
{
	struct sink_redis *sr = sk->priv;
	size_t i, appended, bytes = 0;
	redisReply *reply;
	char *werr = NULL, transient[SINK_ERROR_MAX] = "";
	int saved = 0;

	for (i = 0; i < n; i++) {
		msgs[i].status = SINK_UNSENT;
		msgs[i].error[0] = '\0';
	}
	if (sr->c == NULL) {
		*cause = xasprintf("%s: not connected", sr->desc);
		sink_redis_unsent(msgs, 0, n, *cause);
		return -1;
	}
	if (sr->sent_size < n) {
		free(sr->sent);
		sr->sent = xcalloc(n, 1);
		sr->sent_size = n;
	}
	for (appended = 0; appended < n && werr == NULL; appended++) {
		sr->sent[appended] = sink_redis_append(sr, &msgs[appended], &bytes) == 0;
		if (bytes >= SINK_REDIS_FLUSH_BYTES) {
			bytes = 0;
			if (sink_redis_flush(sr->c) != 0) {
				saved = errno;
				werr = sink_redis_conn_error(sr, sr->c, saved);
			}
		}
	}
	if (werr == NULL && sr->o->replicas_ack > 0)
		sink_redis_append_wait(sr);
	if (werr == NULL && sink_redis_flush(sr->c) != 0) {
		saved = errno;
		werr = sink_redis_conn_error(sr, sr->c, saved);
	}
	if (werr == NULL)
		sink_meanwhile(sk);
	if (werr != NULL) {
		/* Not after a timeout: the server is stalled, its replies will not come. */
		if (sr->c->err == REDIS_ERR_IO && (saved == EAGAIN || saved == EWOULDBLOCK))
			appended = 0;
		/* Read the replies that arrived before the failure. */
		sr->c->err = 0;
		sr->c->errstr[0] = '\0';
	}
	for (i = 0; i < appended; i++) {
		if (!sr->sent[i])
			continue;
		if (sink_redis_read(sr->c, &reply) != 0) {
			saved = errno;
			if (werr == NULL)
				werr = sink_redis_conn_error(sr, sr->c, saved);
			break;
		}
		if (sink_redis_outcome(sr, &msgs[i], reply) && transient[0] == '\0')
			snprintf(transient, sizeof transient, "%s", msgs[i].error);
		freeReplyObject(reply);
	}
	if (werr == NULL && sr->o->replicas_ack > 0)
		werr = sink_redis_read_wait(sr);
	if (werr != NULL) {
		sink_redis_unsent(msgs, i, n, werr);
		/* Taken by the master is not enough: without the replicas' word it may be lost
		 * in a failover, so it is published again (duplicates, never loss). */
		if (sr->o->replicas_ack > 0)
			sink_redis_unreplicated(msgs, n, werr);
		*cause = werr;
		return -1;
	}
	if (transient[0] != '\0') {
		/* The server is not ready (loading, out of memory...): back off. */
		*cause = xasprintf("%s: %s", sr->desc, transient);
		return -1;
	}
	return 0;
}

/* Notice a connection the server closed while we were idle, without a round trip. */
static int
sink_redis_idle(struct sink *sk, char **cause)
{
	struct sink_redis *sr = sk->priv;
	ssize_t r;
	char b;

	if (sr->c == NULL)
		return 0;
	r = recv(sr->c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (r == 0) {
		*cause = xasprintf("%s: the server closed the connection", sr->desc);
		return -1;
	}
	if (r > 0) {
		*cause = xasprintf("%s: unexpected data from the server", sr->desc);
		return -1;
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		*cause = xasprintf("%s: %s", sr->desc, strerror(errno));
		return -1;
	}
	return 0;
}

static void
sink_redis_disconnect(struct sink *sk)
{
	struct sink_redis *sr = sk->priv;

	if (sr != NULL && sr->c != NULL) {
		redisFree(sr->c);
		sr->c = NULL;
	}
}

const struct sink_ops sink_redis_ops = {
	.type = &sink_redis_type,
	.open = sink_redis_open,
	.connect = sink_redis_connect,
	.publish = sink_redis_publish,
	.idle = sink_redis_idle,
	.disconnect = sink_redis_disconnect,
	.close = sink_redis_close,
};
