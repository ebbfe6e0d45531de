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

#include "conf.h"
#include "redis_url.h"
#include "sink.h"
#include "util.h"

/* Write the pipeline out whenever this much is buffered. */
#define SINK_REDIS_FLUSH_BYTES ((size_t)256 * 1024)
/* Longest channel or stream key, key prefix included. */
#define SINK_REDIS_KEY_MAX 4096

enum sink_redis_mode {
	SINK_REDIS_PUBSUB,
	SINK_REDIS_STREAM
};

struct sink_redis {
	struct redis_url url;
	char *desc;               /* the URL for messages, password masked */
	char *key_prefix;         /* for stream keys, not channels */
	char *channel;            /* template: "{name}" is the published name */
	enum sink_redis_mode mode;
	char maxlen[24];          /* "" for no trimming */
	int require_subscribers;
	int connect_timeout_ms;
	int timeout_ms;

	redisContext *c;
	unsigned char *sent;      /* per message of the batch: command written */
	size_t sent_size;
	char key[SINK_REDIS_KEY_MAX];
};

/* ---- configuration ----------------------------------------------------------------- */

/* A string option whose value is secret or may hold a secret: never quoted in errors. */
static int
sink_redis_secret(const cJSON *opts, const char *where, const char *key, char **out,
    char **cause)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(opts, key);

	if (v == NULL)
		return 0;
	if (!cJSON_IsString(v)) {
		*cause = xasprintf("%s.%s: expected a string", where, key);
		return -1;
	}
	free(*out);
	*out = xstrdup(v->valuestring);
	return 0;
}

static int
sink_redis_ms(const cJSON *opts, const char *where, const char *key, int *out, char **cause)
{
	int64_t v = *out;

	if (conf_get_int(opts, where, key, 1, 3600000, &v, cause) != 0)
		return -1;
	*out = (int)v;
	return 0;
}

/* url, or host/port/username/password/db. */
static int
sink_redis_endpoint(struct sink_redis *sr, const cJSON *opts, const char *where,
    char **cause)
{
	char *url = NULL, *why = NULL;
	int64_t port = REDIS_URL_DEFAULT_PORT, db = 0;
	struct redis_url *ru = &sr->url;

	if (sink_redis_secret(opts, where, "url", &url, cause) != 0)
		return -1;
	if (url != NULL) {
		if (redis_url_parse(url, ru, &why) != 0) {
			*cause = xasprintf("%s.url: %s", where, why);
			free(why);
			free(url);
			return -1;
		}
		free(url);
		/* A password kept out of the URL (OUTBOXD_REDIS_PASSWORD, or a file only its
		 * owner reads) goes with it; one in the URL wins. */
		if (ru->password == NULL &&
		    sink_redis_secret(opts, where, "password", &ru->password, cause) != 0)
			return -1;
		if (ru->password != NULL && *ru->password == '\0') {
			free(ru->password);
			ru->password = NULL;
		}
		return 0;
	}
	ru->host = xstrdup(REDIS_URL_DEFAULT_HOST);
	if (conf_get_string(opts, where, "host", &ru->host, cause) != 0 ||
	    conf_get_int(opts, where, "port", 1, 65535, &port, cause) != 0 ||
	    conf_get_string(opts, where, "username", &ru->username, cause) != 0 ||
	    sink_redis_secret(opts, where, "password", &ru->password, cause) != 0 ||
	    conf_get_int(opts, where, "db", 0, INT32_MAX, &db, cause) != 0)
		return -1;
	if (*ru->host == '\0') {
		*cause = xasprintf("%s.host: must not be empty", where);
		return -1;
	}
	ru->port = (int)port;
	ru->db = (int)db;
	/* As in the URL form, an empty user name or password means none. */
	if (ru->username != NULL && *ru->username == '\0') {
		free(ru->username);
		ru->username = NULL;
	}
	if (ru->password != NULL && *ru->password == '\0') {
		free(ru->password);
		ru->password = NULL;
	}
	return 0;
}

static int
sink_redis_options(struct sink_redis *sr, const cJSON *opts, const char *where,
    char **cause)
{
	char *mode = NULL, *alias = NULL;
	int64_t maxlen = 0;
	int rc = -1;

	if (conf_get_string(opts, where, "key-prefix", &sr->key_prefix, cause) != 0 ||
	    conf_get_string(opts, where, "channel-name", &sr->channel, cause) != 0 ||
	    conf_get_string(opts, where, "channel", &alias, cause) != 0 ||
	    conf_get_string(opts, where, "mode", &mode, cause) != 0 ||
	    conf_get_int(opts, where, "stream-maxlen", 0, INT64_MAX / 2, &maxlen, cause) != 0 ||
	    conf_get_bool(opts, where, "require-subscribers", &sr->require_subscribers,
		cause) != 0 ||
	    sink_redis_ms(opts, where, "connect-timeout-ms", &sr->connect_timeout_ms,
		cause) != 0 ||
	    sink_redis_ms(opts, where, "timeout-ms", &sr->timeout_ms, cause) != 0)
		goto out;
	if (alias != NULL && cJSON_GetObjectItemCaseSensitive(opts, "channel-name") != NULL &&
	    strcmp(alias, sr->channel) != 0) {
		*cause = xasprintf("%s.channel and %s.channel-name differ: give one of them",
		    where, where);
		goto out;
	}
	if (alias != NULL) {
		free(sr->channel);
		sr->channel = alias;
		alias = NULL;
	}
	if (*sr->channel == '\0' || strlen(sr->channel) + strlen(sr->key_prefix) >
	    SINK_REDIS_KEY_MAX / 2) {
		*cause = xasprintf("%s.channel-name: must be 1 to %d characters, key prefix "
		    "included", where, SINK_REDIS_KEY_MAX / 2);
		goto out;
	}
	if (mode == NULL || strcmp(mode, "pubsub") == 0)
		sr->mode = SINK_REDIS_PUBSUB;
	else if (strcmp(mode, "stream") == 0)
		sr->mode = SINK_REDIS_STREAM;
	else {
		*cause = xasprintf("%s.mode: expected \"pubsub\" or \"stream\", got \"%s\"", where,
		    mode);
		goto out;
	}
	if (maxlen > 0)
		snprintf(sr->maxlen, sizeof sr->maxlen, "%" PRId64, maxlen);
	rc = 0;
out:
	free(mode);
	free(alias);
	return rc;
}

static void
sink_redis_release(struct sink_redis *sr)
{
	if (sr->c != NULL)
		redisFree(sr->c);
	redis_url_free(&sr->url);
	free(sr->desc);
	free(sr->key_prefix);
	free(sr->channel);
	free(sr->sent);
	free(sr);
}

static int
sink_redis_configure(struct sink *sk, const cJSON *opts, char **cause)
{
	static const char *const known[] = {
		"url", "host", "port", "username", "password", "db", "key-prefix",
		"channel-name", "channel", "mode", "stream-maxlen", "require-subscribers",
		"connect-timeout-ms", "timeout-ms", NULL
	};
	struct sink_redis *sr = xcalloc(1, sizeof *sr);

	sr->key_prefix = xstrdup("");
	sr->channel = xstrdup("liquid");
	sr->connect_timeout_ms = 5000;
	sr->timeout_ms = 10000;
	conf_warn_unknown(opts, sk->where, known);
	if (sink_redis_endpoint(sr, opts, sk->where, cause) != 0 ||
	    sink_redis_options(sr, opts, sk->where, cause) != 0) {
		sink_redis_release(sr);
		return -1;
	}
	if (sr->url.username != NULL && sr->url.password == NULL) {
		*cause = xasprintf("%s: a user name (%s) is given without a password", sk->where,
		    sr->url.username);
		sink_redis_release(sr);
		return -1;
	}
	sr->desc = redis_url_describe(&sr->url);
	sk->priv = sr;
	if (sr->mode == SINK_REDIS_PUBSUB)
		sk->target = xasprintf("%s channel %s%s", sr->desc, sr->channel,
		    sr->require_subscribers ? " (subscribers required)" : "");
	else
		sk->target = xasprintf("%s stream %s%s%s%s", sr->desc, sr->key_prefix,
		    sr->channel, *sr->maxlen ? " maxlen ~" : "", sr->maxlen);
	return 0;
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
		    sr->timeout_ms);
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

static struct timeval
sink_redis_tv(int ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return tv;
}

/*
 * AUTH, SELECT and PING in one round trip; the first error says what went wrong. PING is
 * there so a server that wants a password we do not have fails the connection, rather
 * than every message.
 */
static int
sink_redis_handshake(struct sink_redis *sr, char **cause)
{
	const char *argv[3], *what[3];
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

static int
sink_redis_connect(struct sink *sk, char **cause)
{
	struct sink_redis *sr = sk->priv;
	struct timeval ctv = sink_redis_tv(sr->connect_timeout_ms);

	if (sr->c != NULL) {
		redisFree(sr->c);
		sr->c = NULL;
	}
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
	else if (redisSetTimeout(sr->c, sink_redis_tv(sr->timeout_ms)) != REDIS_OK)
		*cause = xasprintf("%s: cannot set the timeout: %s", sr->desc, sr->c->errstr);
	else if (sr->url.path == NULL && redisEnableKeepAlive(sr->c) != REDIS_OK)
		*cause = xasprintf("%s: cannot enable TCP keepalive: %s", sr->desc, sr->c->errstr);
	if (*cause != NULL || sink_redis_handshake(sr, cause) != 0) {
		redisFree(sr->c);
		sr->c = NULL;
		return -1;
	}
	return 0;
}

/* ---- publishing -------------------------------------------------------------------- */

/* Append the command for m; -1 (m rejected) if its channel does not fit. */
static int
sink_redis_append(struct sink_redis *sr, struct sink_message *m, size_t *bytes)
{
	const char *argv[8];
	size_t argvlen[8], plen = strlen(sr->key_prefix), klen;
	int argc = 0, i;

	if (sr->mode == SINK_REDIS_STREAM)
		memcpy(sr->key, sr->key_prefix, plen);
	else
		plen = 0;
	if (sink_expand(sr->channel, m->name, sr->key + plen, sizeof sr->key - plen) != 0) {
		sink_set_status(m, SINK_REJECTED, "the %s name is longer than %d bytes",
		    sr->mode == SINK_REDIS_STREAM ? "stream" : "channel", SINK_REDIS_KEY_MAX - 1);
		return -1;
	}
	klen = strlen(sr->key);
	if (sr->mode == SINK_REDIS_PUBSUB) {
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
	if (redisAppendCommandArgv(sr->c, argc, argv, argvlen) != REDIS_OK)
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
		if (sr->mode == SINK_REDIS_PUBSUB && sr->require_subscribers &&
		    reply->integer == 0) {
			/* Replies are read after the whole batch went out: sr->key holds the
			 * last message's channel by now, so expand m's own again (it fitted). */
			char channel[SINK_REDIS_KEY_MAX];

			sink_expand(sr->channel, m->name, channel, sizeof channel);
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
	if (werr == NULL && sink_redis_flush(sr->c) != 0) {
		saved = errno;
		werr = sink_redis_conn_error(sr, sr->c, saved);
	}
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
	if (werr != NULL) {
		sink_redis_unsent(msgs, i, n, werr);
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

static void
sink_redis_free(struct sink *sk)
{
	if (sk->priv != NULL)
		sink_redis_release(sk->priv);
	sk->priv = NULL;
}

const struct sink_ops sink_redis_ops = {
	.type = "redis",
	.configure = sink_redis_configure,
	.connect = sink_redis_connect,
	.publish = sink_redis_publish,
	.idle = sink_redis_idle,
	.disconnect = sink_redis_disconnect,
	.free = sink_redis_free,
};
