/*
 * sink_nats.c: publish envelopes to NATS with nats.c: to a JetStream stream (default), or
 * core NATS.
 *
 * JetStream: every message of a batch is published asynchronously (js_PublishMsgAsync,
 * up to max-pending in flight) with the event id as Nats-Msg-Id, so a stream drops what
 * it stored already within its duplicate window. Then the batch waits for its PubAcks,
 * which nats.c hands to sink_nats_on_ack on a thread of its own: a PubAck is delivered
 * (a Duplicate one too: the stream has the message), an error naming the message is a
 * rejection, "no responders" means no stream captures the subject (a rejection saying so),
 * errors about the server's state leave the message unsent. When the connection closes
 * or the PubAcks do not all come within timeout-ms, the messages still waiting are taken
 * back from nats.c (js_PublishAsyncGetPendingList), so no late PubAck can decide them
 * after the batch ended: they are unsent, published again after reconnecting, and the
 * stream drops the copies it already has.
 *
 * Core NATS: publish, then flush (a PING/PONG round trip): delivered means the server
 * has the message, not that anyone received it.
 *
 * nats.c reconnects by itself; we turn that off so that the loop alone decides when to
 * reconnect (with backoff) and a batch never straddles two connections.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <nats/nats.h>

#include "log.h"
#include "redis_url.h"
#include "sink.h"
#include "sink_nats.h"
#include "util.h"

struct sink_nats {
	const struct sink_nats_options *o;   /* the sink's own (sk->options) */
	char *desc;                          /* for messages, passwords masked */
	natsConnection *nc;
	jsCtx *js;

	/* The batch being published, shared with sink_nats_on_ack under mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sink_message *batch;          /* NULL between batches: late PubAcks are ignored */
	void **sent;                         /* per message: its natsMsg awaiting a PubAck */
	size_t n, sent_size, waiting, hint;
	size_t duplicates;                   /* in this batch */
	char subject[SINK_NATS_SUBJECT_MAX];
};

/* JetStream errors about the server's state, not the message: no attempt counts. */
static int
sink_nats_transient(int code)
{
	static const int codes[] = {
		10002, /* account resources exceeded */
		10005, /* no suitable peers */
		10008, /* JetStream temporarily unavailable */
		10009, /* cluster cannot handle the request (no leader) */
		10023, /* insufficient resources */
		10028, /* memory resources exceeded */
		10039, /* JetStream not enabled for the account */
		10047, /* storage resources exceeded */
		10076, /* JetStream not enabled */
		10077, /* storing failed (a full stream with discard new) */
	};
	size_t i;

	for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		if (codes[i] == code)
			return 1;
	}
	return 0;
}

/* nats.c's last error, passwords masked (malloc'd). */
static char *
sink_nats_last_error(natsStatus s)
{
	const char *text = nats_GetLastError(NULL), *end;

	if (text == NULL || *text == '\0')
		text = natsStatus_GetText(s);
	/* Without nats.c's "(conn.c:2088): " */
	if (*text == '(' && (end = strstr(text, "): ")) != NULL)
		text = end + 3;
	return redis_url_redact_text(text);
}

/* ---- PubAcks (on nats.c's thread) ---------------------------------------------------- */

static void
sink_nats_outcome(struct sink_nats *sn, struct sink_message *m, natsMsg *msg,
    const jsPubAck *pa, const jsPubAckErr *pae)
{
	const char *subject = natsMsg_GetSubject(msg);

	if (pa != NULL) {
		m->status = SINK_DELIVERED;
		m->error[0] = '\0';
		if (pa->Duplicate)
			sn->duplicates++;
	} else if (pae->Err == NATS_NO_RESPONDERS) {
		sink_set_status(m, SINK_REJECTED, "no JetStream stream captures subject %s: "
		    "create one whose subjects match it (see outbox(5))", subject);
	} else if (pae->Err == NATS_TIMEOUT || sink_nats_transient((int)pae->ErrCode)) {
		sink_set_status(m, SINK_UNSENT, "subject %s: %s (%d)", subject,
		    pae->ErrText != NULL ? pae->ErrText : natsStatus_GetText(pae->Err),
		    (int)pae->ErrCode);
	} else {
		sink_set_status(m, SINK_REJECTED, "subject %s: %s (JetStream error %d)", subject,
		    pae->ErrText != NULL ? pae->ErrText : natsStatus_GetText(pae->Err),
		    (int)pae->ErrCode);
	}
}

static void
sink_nats_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct sink_nats *sn = closure;
	size_t i, k;

	(void)js;
	pthread_mutex_lock(&sn->mu);
	/* PubAcks mostly come in order: look from the last one found. A message of this
	 * batch is alive until its PubAck, so its address is unique among those waiting. */
	for (k = 0; sn->batch != NULL && k < sn->n; k++) {
		i = (sn->hint + k) % sn->n;
		if (sn->sent[i] != msg)
			continue;
		sink_nats_outcome(sn, &sn->batch[i], msg, pa, pae);
		sn->sent[i] = NULL;
		sn->hint = i + 1;
		if (--sn->waiting == 0)
			pthread_cond_signal(&sn->cv);
		break;
	}
	pthread_mutex_unlock(&sn->mu);
	/* With an AckHandler, the message is ours to destroy. */
	natsMsg_Destroy(msg);
}

/* ---- life cycle ------------------------------------------------------------------------ */

static void
sink_nats_open(struct sink *sk)
{
	struct sink_nats *sn = xcalloc(1, sizeof *sn);

	sn->o = sk->options;
	sn->desc = xstrdup(sk->target);
	pthread_mutex_init(&sn->mu, NULL);
	util_cond_init_monotonic(&sn->cv);   /* the wait for PubAcks */
	sk->priv = sn;
}

static void
sink_nats_disconnect(struct sink *sk)
{
	struct sink_nats *sn = sk->priv;

	if (sn == NULL)
		return;
	if (sn->js != NULL)
		jsCtx_Destroy(sn->js);
	sn->js = NULL;
	if (sn->nc != NULL)
		natsConnection_Destroy(sn->nc);
	sn->nc = NULL;
}

static void
sink_nats_close(struct sink *sk)
{
	struct sink_nats *sn = sk->priv;

	sink_nats_disconnect(sk);
	pthread_mutex_destroy(&sn->mu);
	pthread_cond_destroy(&sn->cv);
	free(sn->sent);
	free(sn->desc);
	free(sn);
	sk->priv = NULL;
}

/*
 * The servers, and the user when a password (OUTBOXD_NATS_PASSWORD) comes without the
 * user option: the user of nats://user@host, taken out of the URLs, as nats.c would read
 * a user without a password in a URL as a token. The check made sure every URL has one.
 */
static natsStatus
sink_nats_servers(const struct sink_nats_options *o, natsOptions *no)
{
	char **urls, *user = NULL, *name;
	natsStatus s;
	size_t i;

	if (o->user != NULL || o->password == NULL)
		return natsOptions_SetServers(no, (const char **)o->url.v, (int)o->url.n);
	urls = xcalloc(o->url.n, sizeof *urls);
	for (i = 0; i < o->url.n; i++) {
		if ((name = sink_nats_url_user(o->url.v[i], &urls[i])) == NULL) {
			urls[i] = xstrdup(o->url.v[i]);  /* user:password@: it keeps its own */
			continue;
		}
		free(user);
		user = name;
	}
	s = natsOptions_SetServers(no, (const char **)urls, (int)o->url.n);
	if (s == NATS_OK && user != NULL)
		s = natsOptions_SetUserInfo(no, user, o->password);
	for (i = 0; i < o->url.n; i++)
		free(urls[i]);
	free(urls);
	free(user);
	return s;
}

/* The connection options; NATS_OK or the first failure. */
static natsStatus
sink_nats_options(const struct sink_nats *sn, const char *name, natsOptions *no)
{
	const struct sink_nats_options *o = sn->o;
	int tls = o->tls_ca != NULL || o->tls_cert != NULL;
	natsStatus s;
	size_t i;
	char *client = xasprintf("outboxd %s", name);

	for (i = 0; i < o->url.n; i++)
		tls |= strncmp(o->url.v[i], "tls://", 6) == 0;
	s = sink_nats_servers(o, no);
	if (s == NATS_OK)
		s = natsOptions_SetName(no, client);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(no, o->connect_timeout_ms);
	if (s == NATS_OK)
		s = natsOptions_SetAllowReconnect(no, false);
	/*
	 * Without a write deadline nats.c's socket blocks: once a stopped server leaves the
	 * kernel's buffers full (a few MB on loopback), a publish call, or the flusher
	 * holding the connection's lock that every other call takes, waits until the server
	 * reads again, however long. With one, a write gives up after timeout-ms and nats.c
	 * shuts the socket, which closes the connection.
	 */
	if (s == NATS_OK)
		s = natsOptions_SetWriteDeadline(no, o->timeout_ms);
	if (s == NATS_OK && o->user != NULL)
		s = natsOptions_SetUserInfo(no, o->user, o->password);
	if (s == NATS_OK && o->token != NULL)
		s = natsOptions_SetToken(no, o->token);
	if (s == NATS_OK && o->creds != NULL)
		s = natsOptions_SetUserCredentialsFromFiles(no, o->creds, NULL);
	if (s == NATS_OK && tls)
		s = natsOptions_SetSecure(no, true);
	if (s == NATS_OK && o->tls_ca != NULL)
		s = natsOptions_LoadCATrustedCertificates(no, o->tls_ca);
	if (s == NATS_OK && o->tls_cert != NULL)
		s = natsOptions_LoadCertificatesChain(no, o->tls_cert, o->tls_key);
	if (s == NATS_OK && tls && !o->tls_verify)
		s = natsOptions_SkipServerVerification(no, true);
	free(client);
	return s;
}

static int
sink_nats_connect(struct sink *sk, char **cause)
{
	struct sink_nats *sn = sk->priv;
	natsOptions *no = NULL;
	jsOptions jo;
	natsStatus s;
	char *why;

	sink_nats_disconnect(sk);
	s = natsOptions_Create(&no);
	if (s == NATS_OK)
		s = sink_nats_options(sn, sk->name, no);
	if (s == NATS_OK)
		s = natsConnection_Connect(&sn->nc, no);
	if (s == NATS_OK && sn->o->jetstream) {
		jsOptions_Init(&jo);
		jo.Wait = sn->o->timeout_ms;
		jo.PublishAsync.MaxPending = sn->o->max_pending;
		jo.PublishAsync.StallWait = sn->o->timeout_ms;
		jo.PublishAsync.AckHandler = sink_nats_on_ack;
		jo.PublishAsync.AckHandlerClosure = sn;
		s = natsConnection_JetStream(&sn->js, sn->nc, &jo);
	}
	natsOptions_Destroy(no);
	if (s != NATS_OK) {
		why = sink_nats_last_error(s);
		*cause = xasprintf("%s: %s", sn->desc, why);
		free(why);
		sink_nats_disconnect(sk);
		return -1;
	}
	return 0;
}

/* ---- publishing -------------------------------------------------------------------------- */

/* The event's headers as NATS headers; -1 with m rejected if one cannot be one. */
static int
sink_nats_headers(natsMsg *nm, struct sink_message *m)
{
	cJSON *h, *v;
	char *text;
	int rc = 0;

	if (m->headers == NULL)
		return 0;
	if ((h = cJSON_Parse(m->headers)) == NULL || !cJSON_IsObject(h)) {
		cJSON_Delete(h);
		sink_set_status(m, SINK_REJECTED, "headers are not a JSON object");
		return -1;
	}
	cJSON_ArrayForEach(v, h) {
		text = cJSON_IsString(v) ? xstrdup(v->valuestring) : cJSON_PrintUnformatted(v);
		if (text == NULL)
			abort();
		if (*v->string == '\0' || strpbrk(v->string, " \t\r\n:") != NULL ||
		    strpbrk(text, "\r\n") != NULL) {
			sink_set_status(m, SINK_REJECTED, "header \"%.64s\" cannot be a NATS header "
			    "(a name without spaces or colons, a value on one line)", v->string);
			rc = -1;
		} else if (natsMsgHeader_Add(nm, v->string, text) != NATS_OK) {
			sink_set_status(m, SINK_REJECTED, "header \"%.64s\": %s", v->string,
			    nats_GetLastError(NULL));
			rc = -1;
		}
		free(text);
		if (rc != 0)
			break;
	}
	cJSON_Delete(h);
	return rc;
}

/* A NATS message for m, or NULL with m rejected. */
static natsMsg *
sink_nats_message(struct sink_nats *sn, struct sink_message *m)
{
	natsMsg *nm = NULL;
	const char *bad;

	if (sink_expand(sn->o->subject, m->name, sn->subject, sizeof sn->subject) != 0) {
		sink_set_status(m, SINK_REJECTED, "the subject is longer than %d bytes",
		    SINK_NATS_SUBJECT_MAX - 1);
		return NULL;
	}
	bad = sn->subject[strlen(sn->subject) - 1] == '.' ? "." :
	    strstr(sn->subject, "..") != NULL ? ".." : NULL;
	if (bad != NULL || strpbrk(sn->subject, " \t\r\n*>") != NULL) {
		sink_set_status(m, SINK_REJECTED, "\"%s\" is not a subject to publish to "
		    "(empty tokens, spaces or wildcards)", sn->subject);
		return NULL;
	}
	if (natsMsg_Create(&nm, sn->subject, NULL, m->envelope, (int)m->envelope_len) !=
	    NATS_OK)
		abort(); /* only on out of memory */
	if (sink_nats_headers(nm, m) != 0 ||
	    (!sn->o->jetstream && natsMsgHeader_Set(nm, "Nats-Msg-Id", m->id) != NATS_OK)) {
		if (m->status != SINK_REJECTED)
			sink_set_status(m, SINK_REJECTED, "cannot set Nats-Msg-Id");
		natsMsg_Destroy(nm);
		return NULL;
	}
	return nm;
}

/* A failed publish call: m's outcome; 1 if the connection is no longer usable. */
static int
sink_nats_publish_failed(struct sink_nats *sn, struct sink_message *m, natsStatus s)
{
	char *why;

	if (s == NATS_MAX_PAYLOAD) {
		sink_set_status(m, SINK_REJECTED, "the message (%zu bytes) is larger than the "
		    "server's max_payload (%lld bytes)", m->envelope_len,
		    (long long)natsConnection_GetMaxPayload(sn->nc));
		return 0;
	}
	why = sink_nats_last_error(s);
	/* A bare "Timeout" is the write deadline (the stall wait says what it was). */
	if (s == NATS_TIMEOUT && strcmp(why, natsStatus_GetText(s)) == 0)
		sink_set_status(m, SINK_UNSENT, "%s: a write did not finish within %d ms "
		    "(nats.timeout-ms): the server is not reading", sn->desc, sn->o->timeout_ms);
	else
		sink_set_status(m, SINK_UNSENT, "%s: %s", sn->desc, why);
	free(why);
	return 1;
}

/* Wait until every PubAck of the batch came, the connection closed or the time is up. */
static void
sink_nats_wait(struct sink_nats *sn, int *closed)
{
	int64_t deadline = util_monotonic_ms() + sn->o->timeout_ms, left;
	struct timespec ts;

	*closed = 0;
	pthread_mutex_lock(&sn->mu);
	while (sn->waiting > 0 && (left = deadline - util_monotonic_ms()) > 0) {
		pthread_mutex_unlock(&sn->mu);
		if (natsConnection_IsClosed(sn->nc)) {
			*closed = 1;
			pthread_mutex_lock(&sn->mu);
			break;
		}
		pthread_mutex_lock(&sn->mu);
		/* Wake up every 50 ms to notice a closed connection. */
		if (left > 50)
			left = 50;
		ts = util_monotonic_deadline(left);
		if (sn->waiting > 0)
			pthread_cond_timedwait(&sn->cv, &sn->mu, &ts);
	}
	pthread_mutex_unlock(&sn->mu);
}

/*
 * End the batch: messages still waiting for a PubAck are taken back from nats.c, so none
 * is decided later, and are unsent because of why.
 */
static void
sink_nats_end_batch(struct sink_nats *sn, const char *why)
{
	natsMsgList pending;
	size_t i;

	memset(&pending, 0, sizeof pending);
	if (sn->waiting > 0 && sn->js != NULL &&
	    js_PublishAsyncGetPendingList(&pending, sn->js) == NATS_OK)
		natsMsgList_Destroy(&pending);
	pthread_mutex_lock(&sn->mu);
	for (i = 0; i < sn->n; i++) {
		if (sn->sent[i] == NULL)
			continue;
		sink_set_status(&sn->batch[i], SINK_UNSENT, "%s", why);
		sn->sent[i] = NULL;
	}
	sn->waiting = 0;
	sn->batch = NULL;
	pthread_mutex_unlock(&sn->mu);
}

static int
sink_nats_publish_js(struct sink *sk, struct sink_message *msgs, size_t n, char **cause)
{
	struct sink_nats *sn = sk->priv;
	jsPubOptions po;
	natsMsg *nm;
	natsStatus s;
	size_t i;
	int closed, broken = 0;

	pthread_mutex_lock(&sn->mu);
	sn->batch = msgs;
	sn->n = n;
	sn->waiting = sn->hint = sn->duplicates = 0;
	pthread_mutex_unlock(&sn->mu);
	for (i = 0; i < n && !broken; i++) {
		if ((nm = sink_nats_message(sn, &msgs[i])) == NULL)
			continue;
		jsPubOptions_Init(&po);
		po.MsgId = msgs[i].id;
		/* Registered before publishing: its PubAck may come before the call returns. */
		pthread_mutex_lock(&sn->mu);
		sn->sent[i] = nm;
		sn->waiting++;
		pthread_mutex_unlock(&sn->mu);
		s = js_PublishMsgAsync(sn->js, &nm, &po);
		if (s == NATS_OK)
			continue;
		/* nats.c gave the message back: it was not sent, no PubAck will come. */
		pthread_mutex_lock(&sn->mu);
		sn->sent[i] = NULL;
		sn->waiting--;
		pthread_mutex_unlock(&sn->mu);
		broken = sink_nats_publish_failed(sn, &msgs[i], s);
		if (broken)
			*cause = xstrdup(msgs[i].error);
		natsMsg_Destroy(nm);
	}
	if (!broken)
		sink_meanwhile(sk);   /* nats.c's flusher writes them, the server acks meanwhile */
	sink_nats_wait(sn, &closed);
	if (sn->waiting > 0 && *cause == NULL) {
		*cause = closed ? xasprintf("%s: the connection closed", sn->desc) :
		    xasprintf("%s: no PubAck within %d ms (nats.timeout-ms)", sn->desc,
		    sn->o->timeout_ms);
	}
	if (closed)
		broken = 1;
	if (sn->waiting > 0)
		broken = 1;
	sink_nats_end_batch(sn, *cause != NULL ? *cause : "not published");
	if (sn->duplicates > 0)
		log_info("%s: the stream already had %zu of %zu messages (Nats-Msg-Id): "
		    "dropped as duplicates, counted delivered", sn->desc, sn->duplicates, n);
	return broken ? -1 : 0;
}

static int
sink_nats_publish_core(struct sink *sk, struct sink_message *msgs, size_t n,
    char **cause)
{
	struct sink_nats *sn = sk->priv;
	natsMsg *nm;
	natsStatus s;
	size_t i;
	int broken = 0;
	char *why;

	for (i = 0; i < n && !broken; i++) {
		if ((nm = sink_nats_message(sn, &msgs[i])) == NULL)
			continue;
		s = natsConnection_PublishMsg(sn->nc, nm);
		natsMsg_Destroy(nm);
		if (s == NATS_OK)
			msgs[i].status = SINK_DELIVERED; /* once the flush says so, below */
		else if ((broken = sink_nats_publish_failed(sn, &msgs[i], s)))
			*cause = xstrdup(msgs[i].error);
	}
	if (!broken)
		sink_meanwhile(sk);
	if (!broken && (s = natsConnection_FlushTimeout(sn->nc, sn->o->timeout_ms)) !=
	    NATS_OK) {
		why = sink_nats_last_error(s);
		*cause = xasprintf("%s: flush: %s", sn->desc, why);
		free(why);
		broken = 1;
	}
	for (i = 0; i < n && broken; i++) {
		if (msgs[i].status == SINK_DELIVERED)
			sink_set_status(&msgs[i], SINK_UNSENT, "%s", *cause);
	}
	return broken ? -1 : 0;
}

static int
sink_nats_publish(struct sink *sk, struct sink_message *msgs, size_t n, char **cause)
{
	struct sink_nats *sn = sk->priv;
	size_t i;
	int rc;

	*cause = NULL;
	for (i = 0; i < n; i++) {
		msgs[i].status = SINK_UNSENT;
		msgs[i].error[0] = '\0';
	}
	if (sn->nc == NULL || natsConnection_IsClosed(sn->nc)) {
		*cause = xasprintf("%s: not connected", sn->desc);
		for (i = 0; i < n; i++)
			sink_set_status(&msgs[i], SINK_UNSENT, "%s", *cause);
		return -1;
	}
	if (sn->sent_size < n) {
		free(sn->sent);
		sn->sent = xcalloc(n, sizeof *sn->sent);
		sn->sent_size = n;
	}
	rc = sn->o->jetstream ? sink_nats_publish_js(sk, msgs, n, cause) :
	    sink_nats_publish_core(sk, msgs, n, cause);
	/* Those after the message that broke the connection were not even tried. */
	for (i = 0; rc != 0 && i < n; i++) {
		if (msgs[i].status == SINK_UNSENT && msgs[i].error[0] == '\0')
			sink_set_status(&msgs[i], SINK_UNSENT, "%s", *cause);
	}
	return rc;
}

/* Notice a connection that closed while we were idle. */
static int
sink_nats_idle(struct sink *sk, char **cause)
{
	struct sink_nats *sn = sk->priv;

	if (sn->nc != NULL && natsConnection_IsClosed(sn->nc)) {
		*cause = xasprintf("%s: the connection closed", sn->desc);
		return -1;
	}
	return 0;
}

const struct sink_ops sink_nats_ops = {
	.type = &sink_nats_type,
	.open = sink_nats_open,
	.connect = sink_nats_connect,
	.publish = sink_nats_publish,
	.idle = sink_nats_idle,
	.disconnect = sink_nats_disconnect,
	.close = sink_nats_close,
};
