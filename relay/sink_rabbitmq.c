/*
 * sink_rabbitmq.c: publish envelopes to RabbitMQ with rabbitmq-c, publisher confirms and
 * mandatory routing.
 *
 * By default the queue is declared durable with no arguments (what amqplib's
 * assertQueue(queue) declares, so existing consumers stay compatible) and messages go
 * through the default exchange; a named exchange with a routing-key template is the
 * alternative. Every message is persistent, with content type application/json,
 * message_id = event id, type = published name, timestamp, and the event's headers; with
 * format cloudevents the event's attributes are cloudEvents_ headers instead and the
 * payload is the body (the AMQP 1.0 binding's convention).
 *
 * Confirms: up to confirm-window messages are unconfirmed at once. Delivery tags count
 * from 1 after confirm.select, so message i of a batch has tag first_tag + i. An ack
 * (multiple honoured) delivers, a nack rejects. A basic.return (unroutable, thanks to
 * mandatory) comes before the ack of its message and carries no tag, so it is matched by
 * message_id and turns that ack into a rejection, except through the default exchange,
 * where it means the queue was deleted under us: then the connection is dropped and made
 * again (declaring the queue) and the message is published again. rabbitmq-c 0.11 has no
 * amqp_publisher_confirm_wait: frames are read with amqp_simple_wait_frame_noblock.
 *
 * Writing: over plain TCP the sink encodes a message's frames itself (rabbitmq-c's public
 * amqp_encode_method and amqp_encode_properties) into a buffer written once before each
 * wait for confirms, or every SINK_RABBITMQ_FLUSH bytes, within timeout-ms. rabbitmq-c's
 * amqp_basic_publish makes three send calls a message and waits without end for a socket
 * the broker no longer reads (a memory or disk alarm blocks publishers that way), where
 * the loop then stopped, deaf to SIGTERM. With TLS the frames go through
 * amqp_basic_publish.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include "amqp_url.h"
#include "log.h"
#include "sink.h"
#include "sink_rabbitmq.h"
#include "util.h"

#define SINK_RABBITMQ_CHANNEL 1
#define SINK_RABBITMQ_KEY_MAX 256 /* AMQP short strings */
#define SINK_RABBITMQ_FLUSH 65536  /* bytes of frames worth one write */

struct sink_rabbitmq {
	const struct sink_rabbitmq_options *o;  /* the sink's own (sk->options) */
	struct amqp_url *urls;      /* tried in order on connect */
	size_t nurls;

	/* What every message of the sink shares, made once: a routing key without "{name}"
	 * is the same for all. */
	amqp_bytes_t exchange;
	amqp_bytes_t fixed_key;     /* .bytes NULL: the key expands per message */
	amqp_basic_properties_t props;

	amqp_connection_state_t conn;
	int fd;                     /* plain TCP: the sink writes frames here; -1 with TLS */
	unsigned char *out;         /* frames encoded, not yet written */
	size_t out_len, out_size;
	uint64_t next_tag;          /* delivery tag of the next publish */
	size_t *order;              /* message index of delivery tag first_tag + k */
	unsigned char *returned;    /* per message of the batch: came back unroutable */
	size_t size;                /* of order and returned */
	size_t unsettled;           /* published, neither acked nor nacked yet */
	size_t nacked;              /* of this batch */
	int queue_gone;             /* a return through the default exchange: no queue */
};

static amqp_table_entry_t *sink_rabbitmq_table(const char *json, int *n, cJSON **tree,
    char ***texts);
static void sink_rabbitmq_table_free(amqp_table_entry_t *entries, int n, cJSON *tree,
    char **texts);

static void
sink_rabbitmq_open(struct sink *sk)
{
	struct sink_rabbitmq *r = xcalloc(1, sizeof *r);
	char *cause = NULL;

	r->o = sk->options;
	/* The type's check accepted these options: this cannot fail. */
	if (sink_rabbitmq_urls(r->o, sk->name, &r->urls, &r->nurls, &cause) != 0)
		abort();
	r->exchange = amqp_cstring_bytes(r->o->exchange);
	if (strstr(r->o->routing_key, "{name}") == NULL &&
	    strlen(r->o->routing_key) < SINK_RABBITMQ_KEY_MAX)
		r->fixed_key = amqp_cstring_bytes(r->o->routing_key);
	r->props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
	    AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG;
	r->props.content_type = amqp_cstring_bytes("application/json");
	r->props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	r->fd = -1;
	sk->priv = r;
}

static void
sink_rabbitmq_close(struct sink *sk)
{
	struct sink_rabbitmq *r = sk->priv;

	if (r->conn != NULL)
		amqp_destroy_connection(r->conn);
	sink_rabbitmq_urls_free(r->urls, r->nurls);
	free(r->out);
	free(r->returned);
	free(r->order);
	free(r);
	sk->priv = NULL;
}

/* ---- connecting -------------------------------------------------------------------- */

/* Why an RPC failed, with the broker's own words when it closed on us. */
static char *
sink_rabbitmq_reply_error(amqp_rpc_reply_t reply, const char *what)
{
	if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
		return xasprintf("%s: %s", what, amqp_error_string2(reply.library_error));
	if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
		if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *c = reply.reply.decoded;
			return xasprintf("%s: the broker closed the connection: %u %.*s", what,
			    c->reply_code, (int)c->reply_text.len, (const char *)c->reply_text.bytes);
		}
		if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *c = reply.reply.decoded;
			return xasprintf("%s: the broker closed the channel: %u %.*s", what,
			    c->reply_code, (int)c->reply_text.len, (const char *)c->reply_text.bytes);
		}
		return xasprintf("%s: unexpected reply from the broker (method 0x%08x)", what,
		    reply.reply.id);
	}
	if (reply.reply_type == AMQP_RESPONSE_NONE)
		return xasprintf("%s: no reply from the broker", what);
	return NULL;
}

static amqp_socket_t *
sink_rabbitmq_socket(struct sink_rabbitmq *r, const struct amqp_url *au, char **cause)
{
	amqp_socket_t *sock;

	if (!au->tls) {
		if ((sock = amqp_tcp_socket_new(r->conn)) == NULL)
			*cause = xasprintf("cannot create a socket");
		return sock;
	}
	if ((sock = amqp_ssl_socket_new(r->conn)) == NULL) {
		*cause = xasprintf("cannot create a TLS socket");
		return NULL;
	}
	amqp_ssl_socket_set_verify_peer(sock, r->o->tls.verify_peer);
	amqp_ssl_socket_set_verify_hostname(sock, r->o->tls.verify_hostname);
	if (r->o->tls.ca != NULL && amqp_ssl_socket_set_cacert(sock, r->o->tls.ca) != AMQP_STATUS_OK) {
		*cause = xasprintf("cannot read the CA file %s", r->o->tls.ca);
		return NULL;
	}
	if (r->o->tls.cert != NULL &&
	    amqp_ssl_socket_set_key(sock, r->o->tls.cert, r->o->tls.key) != AMQP_STATUS_OK) {
		*cause = xasprintf("cannot read the client certificate %s or key %s", r->o->tls.cert,
		    r->o->tls.key);
		return NULL;
	}
	return sock;
}

/* Declare what the messages are routed through. */
static int
sink_rabbitmq_declare(struct sink_rabbitmq *r, char **cause)
{
	amqp_table_t args = amqp_empty_table;
	amqp_table_entry_t *entries;
	cJSON *tree = NULL;
	char **texts;
	int n;

	if (r->o->exchange[0] != '\0') {
		amqp_exchange_declare(r->conn, SINK_RABBITMQ_CHANNEL,
		    amqp_cstring_bytes(r->o->exchange), amqp_cstring_bytes(r->o->exchange_type),
		    r->o->exchange_declare == SINK_RABBITMQ_PASSIVE, 1, 0, 0, args);
	} else if (r->o->declare_queue) {
		/* No arguments unless asked for: what amqplib's assertQueue(queue) declares. */
		if ((entries = sink_rabbitmq_table(r->o->queue_arguments, &n, &tree, &texts)) !=
		    NULL) {
			args.num_entries = n;
			args.entries = entries;
		}
		amqp_queue_declare(r->conn, SINK_RABBITMQ_CHANNEL, amqp_cstring_bytes(r->o->queue), 0,
		    1, 0, 0, args);
		sink_rabbitmq_table_free(entries, n, tree, texts);
	} else {
		return 0;
	}
	*cause = sink_rabbitmq_reply_error(amqp_get_rpc_reply(r->conn), r->o->exchange[0] != '\0' ?
	    "cannot declare the exchange" : "cannot declare the queue");
	return *cause != NULL ? -1 : 0;
}

/* The errno of one non-blocking TCP connect to ai within timeout_ms (0: it connected). */
static int
sink_rabbitmq_probe_one(const struct addrinfo *ai, int timeout_ms)
{
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	int fd, rc, err = 0;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    ai->ai_protocol);
	if (fd < 0)
		return errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && (err = errno) == EINPROGRESS) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if ((rc = poll(&pfd, 1, timeout_ms)) == 0)
			err = ETIMEDOUT;
		else if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
	}
	close(fd);
	return err;
}

/*
 * Why the TCP connection to host:port failed, or NULL if it no longer does. rabbitmq-c
 * 0.11 says only "a socket error occurred" or "hostname lookup failed" (it reads SO_ERROR
 * but keeps no errno), so ask the system again: resolve, then connect the same way.
 */
static char *
sink_rabbitmq_socket_why(const char *host, int port, int timeout_ms)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP };
	struct addrinfo *list, *ai;
	char service[16];
	int rc, err = 0;

	snprintf(service, sizeof service, "%d", port);
	if ((rc = getaddrinfo(host, service, &hints, &list)) != 0)
		return xasprintf("cannot resolve host '%s': %s", host,
		    rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
	for (ai = list; ai != NULL; ai = ai->ai_next) {
		if ((err = sink_rabbitmq_probe_one(ai, timeout_ms)) == 0)
			break;
	}
	freeaddrinfo(list);
	return err != 0 ? xstrdup(strerror(err)) : NULL;
}

/* What amqp_socket_open_noblock's status means, for the log (malloc'd). */
static char *
sink_rabbitmq_open_error(const struct amqp_url *au, int status, int timeout_ms)
{
	char *why = NULL;

	if (status == AMQP_STATUS_TIMEOUT)
		return xasprintf("timed out after %d ms", timeout_ms);
	if (status == AMQP_STATUS_SOCKET_ERROR || status == AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED)
		why = sink_rabbitmq_socket_why(au->host, au->port, timeout_ms);
	if (why != NULL)
		return why;
	return xasprintf("%s%s", amqp_error_string2(status),
	    status == AMQP_STATUS_SSL_PEER_VERIFY_FAILED ? " (TLS: the server's certificate "
	    "is not signed by a trusted CA: check tls-ca-file)" :
	    status == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED ? " (TLS: the server's "
	    "certificate does not name the host of the URL)" : "");
}

static int
sink_rabbitmq_connect_one(struct sink_rabbitmq *r, const struct amqp_url *au, char **cause)
{
	struct timeval tv = util_timeval_ms(r->o->connect_timeout_ms);
	amqp_socket_t *sock;
	int status;

	if ((r->conn = amqp_new_connection()) == NULL) {
		*cause = xasprintf("out of memory");
		return -1;
	}
	if ((sock = sink_rabbitmq_socket(r, au, cause)) == NULL)
		return -1;
	if (au->connection_timeout_ms < r->o->connect_timeout_ms) {
		tv = util_timeval_ms(au->connection_timeout_ms);
	}
	amqp_set_handshake_timeout(r->conn, &tv);
	amqp_set_rpc_timeout(r->conn, &tv);
	/* The relay's message says "cannot connect" already: give just the reason. */
	if ((status = amqp_socket_open_noblock(sock, au->host, au->port, &tv)) != AMQP_STATUS_OK) {
		*cause = sink_rabbitmq_open_error(au, status,
		    (int)(tv.tv_sec * 1000 + tv.tv_usec / 1000));
		return -1;
	}
	*cause = sink_rabbitmq_reply_error(amqp_login(r->conn, au->vhost, au->channel_max,
	    au->frame_max, au->heartbeat, AMQP_SASL_METHOD_PLAIN, au->user, au->password),
	    "login refused (check the user, password and vhost)");
	if (*cause != NULL)
		return -1;
	amqp_channel_open(r->conn, SINK_RABBITMQ_CHANNEL);
	if ((*cause = sink_rabbitmq_reply_error(amqp_get_rpc_reply(r->conn),
	    "cannot open a channel")) != NULL)
		return -1;
	amqp_confirm_select(r->conn, SINK_RABBITMQ_CHANNEL);
	if ((*cause = sink_rabbitmq_reply_error(amqp_get_rpc_reply(r->conn),
	    "cannot turn on publisher confirms")) != NULL)
		return -1;
	r->next_tag = 1;
	r->fd = au->tls ? -1 : amqp_socket_get_sockfd(sock);
	r->out_len = 0;
	return sink_rabbitmq_declare(r, cause);
}

static void
sink_rabbitmq_drop(struct sink_rabbitmq *r)
{
	if (r->conn != NULL)
		amqp_destroy_connection(r->conn);
	r->conn = NULL;
	r->fd = -1;
	r->out_len = 0;
}

static int
sink_rabbitmq_connect(struct sink *sk, char **cause)
{
	struct sink_rabbitmq *r = sk->priv;
	char *why = NULL, *all = NULL, *desc, *next;
	size_t i;

	for (i = 0; i < r->nurls; i++) {
		if (sink_rabbitmq_connect_one(r, &r->urls[i], &why) == 0) {
			if (all != NULL) {
				desc = amqp_url_describe(&r->urls[i]);
				log_info("sink %s: connected to %s after: %s", sk->name, desc, all);
				free(desc);
				free(all);
			}
			return 0;
		}
		sink_rabbitmq_drop(r);
		desc = amqp_url_describe(&r->urls[i]);
		next = xasprintf("%s%s%s: %s", all != NULL ? all : "", all != NULL ? "; " : "", desc,
		    why);
		free(all);
		free(desc);
		free(why);
		why = NULL;
		all = next;
	}
	*cause = all;
	return -1;
}

static void
sink_rabbitmq_disconnect(struct sink *sk)
{
	struct sink_rabbitmq *r = sk->priv;

	/* Closing politely needs a live connection; a broken one is just dropped. */
	sink_rabbitmq_drop(r);
}

/* ---- publishing -------------------------------------------------------------------- */

/* A JSON object (an event's headers, queue arguments) as an AMQP table. The entries point
 * into *tree and *texts (nested values travel as their JSON text); the caller frees all
 * three with sink_rabbitmq_table_free. */
static amqp_table_entry_t *
sink_rabbitmq_table(const char *json, int *n, cJSON **tree, char ***texts)
{
	amqp_table_entry_t *entries;
	cJSON *item;
	int i = 0, size;

	*n = 0;
	*texts = NULL;
	if (json == NULL || (*tree = cJSON_Parse(json)) == NULL)
		return NULL;
	size = cJSON_GetArraySize(*tree);
	entries = xcalloc((size_t)size + 1, sizeof *entries);
	*texts = xcalloc((size_t)size + 1, sizeof **texts);
	cJSON_ArrayForEach(item, *tree) {
		amqp_table_entry_t *e = &entries[i];
		e->key = amqp_cstring_bytes(item->string);
		if (cJSON_IsString(item)) {
			e->value.kind = AMQP_FIELD_KIND_UTF8;
			e->value.value.bytes = amqp_cstring_bytes(item->valuestring);
		} else if (cJSON_IsBool(item)) {
			e->value.kind = AMQP_FIELD_KIND_BOOLEAN;
			e->value.value.boolean = cJSON_IsTrue(item);
		} else if (cJSON_IsNumber(item) &&
		    item->valuedouble == (double)(int64_t)item->valuedouble) {
			e->value.kind = AMQP_FIELD_KIND_I64;
			e->value.value.i64 = (int64_t)item->valuedouble;
		} else if (cJSON_IsNumber(item)) {
			e->value.kind = AMQP_FIELD_KIND_F64;
			e->value.value.f64 = item->valuedouble;
		} else if (cJSON_IsNull(item)) {
			e->value.kind = AMQP_FIELD_KIND_VOID;
		} else {
			(*texts)[i] = cJSON_PrintUnformatted(item);
			e->value.kind = AMQP_FIELD_KIND_UTF8;
			e->value.value.bytes = amqp_cstring_bytes((*texts)[i] != NULL ?
			    (*texts)[i] : "");
		}
		i++;
	}
	*n = i;
	return entries;
}

static void
sink_rabbitmq_table_free(amqp_table_entry_t *entries, int n, cJSON *tree, char **texts)
{
	int i;

	for (i = 0; texts != NULL && i < n; i++)
		cJSON_free(texts[i]);
	free(texts);
	free(entries);
	cJSON_Delete(tree);
}

/*
 * CloudEvents over AMQP 0-9-1, which has no binding of its own: the AMQP 1.0 binding's
 * convention. Every attribute of the structured event m->envelope but data and
 * datacontenttype (that is the content type) as a header named cloudEvents_ + its name;
 * the payload is the body. Returns the headers as a JSON object (malloc'd).
 */
static char *
sink_rabbitmq_ce_headers(const struct sink_message *m)
{
	cJSON *ev = cJSON_Parse(m->envelope), *out = cJSON_CreateObject(), *a;
	char *name, *json;

	if (ev == NULL || out == NULL)
		abort(); /* the loop built it */
	cJSON_ArrayForEach(a, ev) {
		if (strcmp(a->string, "data") == 0 || strcmp(a->string, "datacontenttype") == 0)
			continue;
		name = xasprintf("cloudEvents_%s", a->string);
		cJSON_AddItemToObject(out, name, cJSON_Duplicate(a, 1));
		free(name);
	}
	if ((json = cJSON_PrintUnformatted(out)) == NULL)
		abort();
	cJSON_Delete(out);
	cJSON_Delete(ev);
	return json;
}

/* ---- writing frames (plain TCP) ------------------------------------------------------ */

static unsigned char *
sink_rabbitmq_put(unsigned char *p, uint64_t v, int bytes)
{
	int i;

	for (i = bytes - 1; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
	return p + bytes;
}

/* Frame header (type, channel, size) at p, the frame-end octet after size bytes of
 * payload; returns the end of the frame. */
static unsigned char *
sink_rabbitmq_frame(unsigned char *p, int type, size_t size)
{
	p[0] = (unsigned char)type;
	sink_rabbitmq_put(p + 1, SINK_RABBITMQ_CHANNEL, 2);
	sink_rabbitmq_put(p + 3, size, 4);
	p[7 + size] = AMQP_FRAME_END;
	return p + 8 + size;
}

/* What amqp_basic_publish sends for one message (basic.publish, the content header, the
 * body in frame_max pieces), appended to r->out. An AMQP status < 0 if it cannot be
 * encoded (headers larger than a frame); nothing is appended then. */
static int
sink_rabbitmq_encode(struct sink_rabbitmq *r, amqp_bytes_t key,
    amqp_basic_properties_t *props, amqp_bytes_t body)
{
	amqp_basic_publish_t m = { .exchange = r->exchange, .routing_key = key, .mandatory = 1 };
	size_t frame_max = (size_t)amqp_get_frame_max(r->conn), chunk = frame_max - 8, off, len;
	size_t need = r->out_len + 2 * frame_max + body.len + (body.len / chunk + 1) * 8;
	unsigned char *p;
	amqp_bytes_t enc;
	int n;

	if (r->out_size < need) {
		r->out = xreallocarray(r->out, need, 1);
		r->out_size = need;
	}
	p = r->out + r->out_len;
	enc.bytes = p + 7 + 4;
	enc.len = frame_max - 8 - 4;
	if ((n = amqp_encode_method(AMQP_BASIC_PUBLISH_METHOD, &m, enc)) < 0)
		return n;
	sink_rabbitmq_put(p + 7, AMQP_BASIC_PUBLISH_METHOD, 4);
	p = sink_rabbitmq_frame(p, AMQP_FRAME_METHOD, 4 + (size_t)n);
	enc.bytes = p + 7 + 12;
	enc.len = frame_max - 8 - 12;
	if ((n = amqp_encode_properties(AMQP_BASIC_CLASS, props, enc)) < 0)
		return n;
	sink_rabbitmq_put(sink_rabbitmq_put(sink_rabbitmq_put(p + 7, AMQP_BASIC_CLASS, 2), 0, 2),
	    body.len, 8);
	p = sink_rabbitmq_frame(p, AMQP_FRAME_HEADER, 12 + (size_t)n);
	for (off = 0; off < body.len; off += len) {
		len = body.len - off < chunk ? body.len - off : chunk;
		memcpy(p + 7, (const unsigned char *)body.bytes + off, len);
		p = sink_rabbitmq_frame(p, AMQP_FRAME_BODY, len);
	}
	r->out_len = (size_t)(p - r->out);
	return 0;
}

/* Write what r->out holds within timeout-ms; -1 with *cause if the connection is lost or
 * the broker does not read it in time. */
static int
sink_rabbitmq_flush(struct sink_rabbitmq *r, char **cause)
{
	int64_t deadline = util_monotonic_ms() + r->o->timeout_ms, left;
	struct pollfd pfd = { .fd = r->fd, .events = POLLOUT };
	size_t off = 0;
	ssize_t n;

	while (off < r->out_len) {
		if ((n = send(r->fd, r->out + off, r->out_len - off, MSG_NOSIGNAL)) > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if ((left = deadline - util_monotonic_ms()) <= 0) {
				*cause = xasprintf("writing to the broker did not finish within %d ms "
				    "(timeout-ms): it stopped reading (a memory or disk alarm blocks "
				    "publishers?)", r->o->timeout_ms);
				return -1;
			}
			(void)poll(&pfd, 1, (int)left); /* EINTR: the deadline still holds */
			continue;
		}
		*cause = xasprintf("connection lost: %s", n == 0 ? "nothing written" :
		    strerror(errno));
		return -1;
	}
	r->out_len = 0;
	return 0;
}

/* amqp_cstring_bytes without the call: it runs five times a message. */
static amqp_bytes_t
sink_rabbitmq_bytes(const char *s)
{
	amqp_bytes_t b = { strlen(s), (void *)s };

	return b;
}

static int
sink_rabbitmq_publish_one(struct sink_rabbitmq *r, struct sink_message *m, char **cause)
{
	amqp_basic_properties_t props = r->props;
	char key[SINK_RABBITMQ_KEY_MAX];
	amqp_bytes_t routing_key = r->fixed_key;
	amqp_table_entry_t *entries = NULL;
	amqp_bytes_t body = { m->envelope_len, (void *)m->envelope };
	cJSON *tree = NULL;
	char **texts = NULL, *ce = NULL;
	const char *headers = m->headers;
	int n = 0, status;

	if (routing_key.bytes == NULL) {
		if (sink_expand(r->o->routing_key, m->name, key, sizeof key) != 0) {
			sink_set_status(m, SINK_REJECTED, "the routing key is longer than %d bytes",
			    SINK_RABBITMQ_KEY_MAX - 1);
			return 1;
		}
		routing_key = sink_rabbitmq_bytes(key);
	}
	props.message_id = sink_rabbitmq_bytes(m->id);
	props.type = sink_rabbitmq_bytes(m->name);
	props.timestamp = (uint64_t)(m->created_at / 1000);
	if (m->format == SINK_FORMAT_CLOUDEVENTS) {
		headers = ce = sink_rabbitmq_ce_headers(m);
		body = sink_rabbitmq_bytes(m->payload);
	}
	if (headers != NULL &&
	    (entries = sink_rabbitmq_table(headers, &n, &tree, &texts)) != NULL) {
		props._flags |= AMQP_BASIC_HEADERS_FLAG;
		props.headers.num_entries = n;
		props.headers.entries = entries;
	}
	if (r->fd >= 0) {
		status = sink_rabbitmq_encode(r, routing_key, &props, body);
		if (status < 0)
			sink_set_status(m, SINK_REJECTED, "cannot encode the message: %s",
			    amqp_error_string2(status));
	} else {
		status = amqp_basic_publish(r->conn, SINK_RABBITMQ_CHANNEL, r->exchange,
		    routing_key, 1, 0, &props, body);
	}
	if (headers != NULL) {
		sink_rabbitmq_table_free(entries, n, tree, texts);
		cJSON_free(ce);
	}
	if (r->fd >= 0) {
		if (status < 0)
			return 1;
		return r->out_len >= SINK_RABBITMQ_FLUSH ? sink_rabbitmq_flush(r, cause) : 0;
	}
	if (status != AMQP_STATUS_OK) {
		*cause = xasprintf("cannot publish: %s", amqp_error_string2(status));
		return -1;
	}
	return 0;
}

/* Settle the message with delivery tag tag (and all before it, if multiple). */
static void
sink_rabbitmq_settle(struct sink_rabbitmq *r, struct sink_message *msgs, size_t sent,
    uint64_t first_tag, uint64_t tag, int multiple, int ack)
{
	size_t k, from = 0, to, i;

	if (tag < first_tag || tag >= first_tag + sent)
		return;
	to = (size_t)(tag - first_tag);
	if (!multiple)
		from = to;
	for (k = from; k <= to; k++) {
		i = r->order[k];
		if (msgs[i].status != SINK_UNSENT)
			continue;
		if (!ack) {
			sink_set_status(&msgs[i], SINK_REJECTED, "nacked by the broker");
			r->nacked++;
		}
		else if (r->returned[i])
			msgs[i].status = SINK_REJECTED;   /* the return set the reason */
		else
			msgs[i].status = SINK_DELIVERED;
		r->unsettled--;
	}
}

/* A basic.return: read its content, find the message by message_id, mark it. */
static int
sink_rabbitmq_returned(struct sink_rabbitmq *r, struct sink_message *msgs, size_t sent,
    const amqp_basic_return_t *ret, char **cause)
{
	amqp_message_t message;
	amqp_rpc_reply_t reply;
	size_t i;

	reply = amqp_read_message(r->conn, SINK_RABBITMQ_CHANNEL, &message, 0);
	if ((*cause = sink_rabbitmq_reply_error(reply, "cannot read a returned message")) != NULL)
		return -1;
	/* Through the default exchange, unroutable means our queue is gone (deleted while we
	 * were connected): not the message's fault. Reconnecting declares it again. */
	if (r->o->exchange[0] == '\0' && r->o->declare_queue)
		r->queue_gone = 1;
	for (size_t k = 0; k < sent; k++) {
		const amqp_bytes_t *id = &message.properties.message_id;
		i = r->order[k];
		if ((message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) &&
		    id->len == strlen(msgs[i].id) && memcmp(id->bytes, msgs[i].id, id->len) == 0) {
			r->returned[i] = 1;
			snprintf(msgs[i].error, sizeof msgs[i].error,
			    "unroutable: %u %.*s (exchange '%.*s', routing key '%.*s')",
			    ret->reply_code, (int)ret->reply_text.len, (char *)ret->reply_text.bytes,
			    (int)ret->exchange.len, (char *)ret->exchange.bytes,
			    (int)ret->routing_key.len, (char *)ret->routing_key.bytes);
			break;
		}
	}
	amqp_destroy_message(&message);
	return 0;
}

/* Wait for one frame and act on it. -1 with *cause when the connection is unusable. */
static int
sink_rabbitmq_read(struct sink_rabbitmq *r, struct sink_message *msgs, size_t sent,
    uint64_t first_tag, struct timeval *tv, char **cause)
{
	amqp_frame_t frame;
	int status;

	status = amqp_simple_wait_frame_noblock(r->conn, &frame, tv);
	if (status == AMQP_STATUS_TIMEOUT) {
		*cause = xasprintf("no publisher confirm within %d ms", r->o->timeout_ms);
		return -1;
	}
	if (status != AMQP_STATUS_OK) {
		*cause = xasprintf("connection lost: %s", amqp_error_string2(status));
		return -1;
	}
	if (frame.frame_type != AMQP_FRAME_METHOD)
		return 0;
	switch (frame.payload.method.id) {
	case AMQP_BASIC_ACK_METHOD: {
		amqp_basic_ack_t *a = frame.payload.method.decoded;
		sink_rabbitmq_settle(r, msgs, sent, first_tag, a->delivery_tag, a->multiple, 1);
		return 0;
	}
	case AMQP_BASIC_NACK_METHOD: {
		amqp_basic_nack_t *n = frame.payload.method.decoded;
		sink_rabbitmq_settle(r, msgs, sent, first_tag, n->delivery_tag, n->multiple, 0);
		return 0;
	}
	case AMQP_BASIC_RETURN_METHOD:
		return sink_rabbitmq_returned(r, msgs, sent, frame.payload.method.decoded, cause);
	case AMQP_CHANNEL_CLOSE_METHOD:
	case AMQP_CONNECTION_CLOSE_METHOD: {
		/* Not a designated initializer: cppcheck 2.10 reads ".reply =" as the variable. */
		amqp_rpc_reply_t reply = { 0 };

		reply.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
		reply.reply = frame.payload.method;
		*cause = sink_rabbitmq_reply_error(reply, "publishing");
		return -1;
	}
	default:
		return 0;
	}
}

static int
sink_rabbitmq_publish(struct sink *sk, struct sink_message *msgs, size_t n, char **cause)
{
	struct sink_rabbitmq *r = sk->priv;
	uint64_t first_tag = r->next_tag;
	size_t next = 0, sent = 0, i;
	struct timeval tv;
	int rc;

	if (r->conn == NULL) {
		*cause = xasprintf("not connected");
		return -1;
	}
	if (r->size < n) {
		free(r->returned);
		free(r->order);
		r->returned = xcalloc(n, 1);
		r->order = xcalloc(n, sizeof *r->order);
		r->size = n;
	}
	memset(r->returned, 0, n);
	r->unsettled = 0;
	r->nacked = 0;
	r->queue_gone = 0;
	while (next < n || r->unsettled > 0) {
		if (next < n && r->unsettled < (size_t)r->o->confirm_window) {
			if ((rc = sink_rabbitmq_publish_one(r, &msgs[next], cause)) < 0)
				return -1;
			if (rc == 0) {
				/* Published: it has the next delivery tag. */
				r->order[sent++] = next;
				r->next_tag++;
				r->unsettled++;
			}
			next++;
			continue;
		}
		if (r->out_len > 0 && sink_rabbitmq_flush(r, cause) != 0)
			return -1;
		if (next == n)
			sink_meanwhile(sk);   /* all written: the broker confirms meanwhile */
		tv = util_timeval_ms(r->o->timeout_ms);
		if (sink_rabbitmq_read(r, msgs, sent, first_tag, &tv, cause) != 0)
			return -1;
	}
	if (r->queue_gone) {
		for (i = 0; i < n; i++) {
			if (r->returned[i])
				sink_set_status(&msgs[i], SINK_UNSENT, "queue %s disappeared", r->o->queue);
		}
		*cause = xasprintf("queue %s disappeared (deleted?): declaring it again", r->o->queue);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (msgs[i].status == SINK_DELIVERED)
			msgs[i].error[0] = '\0';
	}
	/*
	 * Nothing acked, everything nacked: the queue is not taking messages (a quorum queue
	 * whose leader died kept nacking on the same channel for minutes after a new leader
	 * was elected). The nacks stand, and a new connection starts a fresh channel.
	 */
	if (sent > 0 && r->nacked == sent) {
		*cause = xasprintf("every message of the batch was nacked: reconnecting");
		return -1;
	}
	return 0;
}

/* While idle: let rabbitmq-c answer heartbeats, and notice a broker that closed on us. */
static int
sink_rabbitmq_idle(struct sink *sk, char **cause)
{
	struct sink_rabbitmq *r = sk->priv;
	struct timeval zero = { 0, 0 };
	amqp_frame_t frame;
	int status;

	if (r->conn == NULL)
		return 0;
	while ((status = amqp_simple_wait_frame_noblock(r->conn, &frame, &zero)) ==
	    AMQP_STATUS_OK) {
		if (frame.frame_type == AMQP_FRAME_METHOD &&
		    (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
		    frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
			amqp_rpc_reply_t reply = { 0 };

			reply.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
			reply.reply = frame.payload.method;
			*cause = sink_rabbitmq_reply_error(reply, "while idle");
			return -1;
		}
	}
	if (status != AMQP_STATUS_TIMEOUT) {
		*cause = xasprintf("connection lost: %s", amqp_error_string2(status));
		return -1;
	}
	amqp_maybe_release_buffers(r->conn);
	return 0;
}

const struct sink_ops sink_rabbitmq_ops = {
	.type = &sink_rabbitmq_type,
	.open = sink_rabbitmq_open,
	.connect = sink_rabbitmq_connect,
	.publish = sink_rabbitmq_publish,
	.idle = sink_rabbitmq_idle,
	.disconnect = sink_rabbitmq_disconnect,
	.close = sink_rabbitmq_close,
};
