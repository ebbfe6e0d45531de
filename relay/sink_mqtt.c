/*
 * sink_mqtt.c: publish envelopes to an MQTT broker with libmosquitto, at QoS 1 or 2.
 *
 * No thread: libmosquitto's loop is driven from publish (until every message of the batch
 * is acknowledged, or timeout-ms) and from idle (keep-alive pings). A PUBACK (QoS 1) or
 * PUBCOMP (QoS 2) delivers its message; with MQTT 5 a reason code of 0x80 or more on it
 * is the broker refusing that message (rejected, with the reason's name). A lost
 * connection or a missing acknowledgement leaves the message unsent.
 *
 * The libmosquitto handle lives as long as the sink, across reconnects: with a persistent
 * session (clean-session false) it completes the flows of the messages it had in flight
 * under their own packet ids, so a QoS 2 packet id the broker still holds is never reused
 * for another message. Those messages were also left unsent and are published again:
 * at least once, duplicates possible, nothing lost.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "sink.h"
#include "sink_mqtt.h"
#include "util.h"

struct sink_mqtt {
	const struct sink_mqtt_options *o;  /* the sink's own (sk->options) */
	struct sink_mqtt_endpoint ep;
	char *client_id;
	char *desc;
	struct mosquitto *mosq;
	int connected;             /* CONNACK accepted, connection not lost */
	int connack;               /* -1 until the CONNACK came, then its code */

	/* The batch being published: the packet id of each message awaiting its ack. */
	struct sink_message *batch;
	int *mid;                  /* 0: not awaiting */
	size_t n, mid_size, waiting, hint;
	char topic[SINK_MQTT_TOPIC_MAX];
};

/* ---- callbacks (inside mosquitto_loop, on our thread) ------------------------------------ */

static void
sink_mqtt_on_connect(struct mosquitto *mosq, void *arg, int rc, int flags,
    const mosquitto_property *props)
{
	struct sink_mqtt *sm = arg;

	(void)mosq;
	(void)flags;
	(void)props;
	sm->connack = rc;
	sm->connected = rc == 0;
}

static void
sink_mqtt_on_disconnect(struct mosquitto *mosq, void *arg, int rc,
    const mosquitto_property *props)
{
	struct sink_mqtt *sm = arg;

	(void)mosq;
	(void)rc;
	(void)props;
	sm->connected = 0;
}

static void
sink_mqtt_on_publish(struct mosquitto *mosq, void *arg, int mid, int reason,
    const mosquitto_property *props)
{
	struct sink_mqtt *sm = arg;
	struct sink_message *m;
	char topic[SINK_ERROR_MAX];
	size_t i, k;

	(void)mosq;
	(void)props;
	/* Acks of messages from an earlier batch (resent after a reconnect) decide nothing:
	 * those messages were left unsent and published again. */
	for (k = 0; sm->batch != NULL && k < sm->n; k++) {
		i = (sm->hint + k) % sm->n;
		if (sm->mid[i] != mid)
			continue;
		m = &sm->batch[i];
		if (reason >= 0x80) {
			snprintf(topic, sizeof topic, "%s", m->error);
			sink_set_status(m, SINK_REJECTED, "topic %s: the broker refused it: %s "
			    "(reason code 0x%02x)", topic, mosquitto_reason_string(reason),
			    (unsigned)reason);
		} else {
			m->status = SINK_DELIVERED;
			m->error[0] = '\0';
		}
		sm->mid[i] = 0;
		sm->hint = i + 1;
		sm->waiting--;
		return;
	}
}

/* ---- life cycle ---------------------------------------------------------------------------- */

static void
sink_mqtt_open(struct sink *sk)
{
	struct sink_mqtt *sm = xcalloc(1, sizeof *sm);
	char *cause = NULL;

	sm->o = sk->options;
	/* The type's check accepted these options: this cannot fail. */
	if (sink_mqtt_endpoint(sm->o, sk->name, &sm->ep, &cause) != 0)
		abort();
	sm->client_id = sm->o->client_id != NULL ? xstrdup(sm->o->client_id) :
	    xasprintf("outboxd-%s", sk->name);
	sm->desc = xstrdup(sk->target);
	sm->connack = -1;
	mosquitto_lib_init();
	sk->priv = sm;
}

/* The handle, made once: it keeps the session's messages in flight across reconnects. */
static int
sink_mqtt_handle(struct sink_mqtt *sm, char **cause)
{
	const struct sink_mqtt_options *o = sm->o;
	int rc;

	if (sm->mosq != NULL)
		return 0;
	if ((sm->mosq = mosquitto_new(sm->client_id, o->clean_session, sm)) == NULL) {
		*cause = xasprintf("%s: cannot make a client", sm->desc);
		return -1;
	}
	mosquitto_connect_v5_callback_set(sm->mosq, sink_mqtt_on_connect);
	mosquitto_disconnect_v5_callback_set(sm->mosq, sink_mqtt_on_disconnect);
	mosquitto_publish_v5_callback_set(sm->mosq, sink_mqtt_on_publish);
	rc = mosquitto_int_option(sm->mosq, MOSQ_OPT_PROTOCOL_VERSION,
	    o->protocol == SINK_MQTT_V5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_max_inflight_messages_set(sm->mosq, (unsigned)o->max_inflight);
	if (rc == MOSQ_ERR_SUCCESS && sm->ep.username != NULL)
		rc = mosquitto_username_pw_set(sm->mosq, sm->ep.username, sm->ep.password);
	if (rc == MOSQ_ERR_SUCCESS && sm->ep.tls) {
		if (o->tls_ca == NULL)
			rc = mosquitto_int_option(sm->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
		if (rc == MOSQ_ERR_SUCCESS)
			rc = mosquitto_tls_set(sm->mosq, o->tls_ca, NULL, o->tls_cert, o->tls_key,
			    NULL);
		if (rc == MOSQ_ERR_SUCCESS && !o->tls_verify)
			rc = mosquitto_tls_insecure_set(sm->mosq, true);
	}
	if (rc != MOSQ_ERR_SUCCESS) {
		*cause = xasprintf("%s: %s", sm->desc, mosquitto_strerror(rc));
		mosquitto_destroy(sm->mosq);
		sm->mosq = NULL;
		return -1;
	}
	return 0;
}

static int
sink_mqtt_connect(struct sink *sk, char **cause)
{
	struct sink_mqtt *sm = sk->priv;
	int64_t deadline = util_monotonic_ms() + sm->o->timeout_ms;
	int rc;

	if (sink_mqtt_handle(sm, cause) != 0)
		return -1;
	sm->connected = 0;
	sm->connack = -1;
	rc = mosquitto_connect_bind_v5(sm->mosq, sm->ep.host, sm->ep.port, sm->o->keepalive_s,
	    NULL, NULL);
	while (rc == MOSQ_ERR_SUCCESS && sm->connack < 0 && util_monotonic_ms() < deadline)
		rc = mosquitto_loop(sm->mosq, 50, 1);
	if (rc != MOSQ_ERR_SUCCESS) {
		*cause = xasprintf("%s: %s", sm->desc, rc == MOSQ_ERR_ERRNO ? strerror(errno) :
		    mosquitto_strerror(rc));
	} else if (sm->connack < 0) {
		*cause = xasprintf("%s: no CONNACK within %d ms (mqtt.timeout-ms)", sm->desc,
		    sm->o->timeout_ms);
	} else if (sm->connack != 0) {
		*cause = xasprintf("%s: the broker refused the connection: %s", sm->desc,
		    sm->o->protocol == SINK_MQTT_V5 ? mosquitto_reason_string(sm->connack) :
		    mosquitto_connack_string(sm->connack));
	} else {
		return 0;
	}
	mosquitto_disconnect(sm->mosq);
	sm->connected = 0;
	return -1;
}

static void
sink_mqtt_disconnect(struct sink *sk)
{
	struct sink_mqtt *sm = sk->priv;

	if (sm != NULL && sm->mosq != NULL)
		mosquitto_disconnect(sm->mosq);
	if (sm != NULL)
		sm->connected = 0;
}

static void
sink_mqtt_close(struct sink *sk)
{
	struct sink_mqtt *sm = sk->priv;

	if (sm->mosq != NULL)
		mosquitto_destroy(sm->mosq);
	mosquitto_lib_cleanup();
	sink_mqtt_endpoint_free(&sm->ep);
	free(sm->client_id);
	free(sm->desc);
	free(sm->mid);
	free(sm);
	sk->priv = NULL;
}

/* ---- publishing -------------------------------------------------------------------------- */

/* Why the connection is gone, after mosquitto_loop returned rc (malloc'd). */
static char *
sink_mqtt_lost(const struct sink_mqtt *sm, int rc)
{
	if (rc == MOSQ_ERR_SUCCESS || rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_NO_CONN)
		return xasprintf("%s: the connection was lost", sm->desc);
	return xasprintf("%s: the connection was lost: %s", sm->desc,
	    rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
}

/* MQTT 5 properties of m: content type and the event's headers as user properties. -1
 * with m rejected if a header cannot be one. */
static int
sink_mqtt_properties(struct sink_message *m, mosquitto_property **props)
{
	cJSON *h, *v;
	char *text;
	int rc = MOSQ_ERR_SUCCESS;

	if (mosquitto_property_add_string(props, MQTT_PROP_CONTENT_TYPE, "application/json") !=
	    MOSQ_ERR_SUCCESS)
		abort();
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
		rc = mosquitto_property_add_string_pair(props, MQTT_PROP_USER_PROPERTY,
		    v->string, text);
		free(text);
		if (rc != MOSQ_ERR_SUCCESS) {
			sink_set_status(m, SINK_REJECTED, "header \"%.64s\" cannot be a user "
			    "property: %s", v->string, mosquitto_strerror(rc));
			break;
		}
	}
	cJSON_Delete(h);
	return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

/* Publish m; 1 if the connection is no longer usable. */
static int
sink_mqtt_send(struct sink_mqtt *sm, struct sink_message *m, size_t i)
{
	mosquitto_property *props = NULL;
	int rc, mid = 0;

	if (sink_expand(sm->o->topic, m->name, sm->topic, sizeof sm->topic) != 0) {
		sink_set_status(m, SINK_REJECTED, "the topic is longer than %d bytes",
		    SINK_MQTT_TOPIC_MAX - 1);
		return 0;
	}
	if (strpbrk(sm->topic, "+#") != NULL) {
		sink_set_status(m, SINK_REJECTED, "\"%s\" is not a topic to publish to "
		    "(wildcards + or #)", sm->topic);
		return 0;
	}
	if (sm->o->protocol == SINK_MQTT_V5 && sink_mqtt_properties(m, &props) != 0) {
		mosquitto_property_free_all(&props);
		return 0;
	}
	rc = mosquitto_publish_v5(sm->mosq, &mid, sm->topic, (int)m->envelope_len, m->envelope,
	    sm->o->qos, sm->o->retain, props);
	mosquitto_property_free_all(&props);
	switch (rc) {
	case MOSQ_ERR_SUCCESS:
		/* The topic, kept for a refusal's message until the ack comes. */
		snprintf(m->error, sizeof m->error, "%.200s", sm->topic);
		sm->mid[i] = mid;
		sm->waiting++;
		return 0;
	case MOSQ_ERR_PAYLOAD_SIZE:
	case MOSQ_ERR_OVERSIZE_PACKET:
	case MOSQ_ERR_MALFORMED_UTF8:
	case MOSQ_ERR_INVAL:
	case MOSQ_ERR_QOS_NOT_SUPPORTED:
		sink_set_status(m, SINK_REJECTED, "topic %s: %s", sm->topic,
		    mosquitto_strerror(rc));
		return 0;
	default: {
		/* The connection broke while writing: said as when the loop notices it. */
		char *why = sink_mqtt_lost(sm, rc);
		sink_set_status(m, SINK_UNSENT, "%s", why);
		free(why);
		return 1;
	}
	}
}

static int
sink_mqtt_publish(struct sink *sk, struct sink_message *msgs, size_t n, char **cause)
{
	struct sink_mqtt *sm = sk->priv;
	int64_t deadline;
	size_t i;
	int rc = MOSQ_ERR_SUCCESS, broken = 0;

	*cause = NULL;
	for (i = 0; i < n; i++) {
		msgs[i].status = SINK_UNSENT;
		msgs[i].error[0] = '\0';
	}
	if (sm->mid_size < n) {
		free(sm->mid);
		sm->mid = xcalloc(n, sizeof *sm->mid);
		sm->mid_size = n;
	}
	sm->batch = msgs;
	sm->n = n;
	sm->waiting = sm->hint = 0;
	for (i = 0; i < n && sm->connected && !broken; i++) {
		if ((broken = sink_mqtt_send(sm, &msgs[i], i)))
			*cause = xstrdup(msgs[i].error);
	}
	if (!broken)
		sink_meanwhile(sk);   /* the broker has the window's worth to work on */
	deadline = util_monotonic_ms() + sm->o->timeout_ms;
	while (!broken && sm->waiting > 0 && sm->connected && util_monotonic_ms() < deadline) {
		if ((rc = mosquitto_loop(sm->mosq, 50, 1)) != MOSQ_ERR_SUCCESS)
			broken = 1;
	}
	if (sm->waiting > 0 || !sm->connected || broken) {
		if (*cause == NULL && (rc != MOSQ_ERR_SUCCESS || !sm->connected))
			*cause = sink_mqtt_lost(sm, rc);
		else if (*cause == NULL)
			*cause = xasprintf("%s: no acknowledgement within %d ms (mqtt.timeout-ms)",
			    sm->desc, sm->o->timeout_ms);
		broken = 1;
	}
	for (i = 0; i < n; i++) {
		if (msgs[i].status == SINK_UNSENT)
			sink_set_status(&msgs[i], SINK_UNSENT, "%s", *cause);
		sm->mid[i] = 0;
	}
	sm->batch = NULL;
	sm->waiting = 0;
	return broken ? -1 : 0;
}

/* Keep-alive pings, and notice a lost connection. */
static int
sink_mqtt_idle(struct sink *sk, char **cause)
{
	struct sink_mqtt *sm = sk->priv;
	int rc;

	if (sm->mosq == NULL)
		return 0;
	rc = mosquitto_loop(sm->mosq, 0, 1);
	if (rc != MOSQ_ERR_SUCCESS || !sm->connected) {
		*cause = sink_mqtt_lost(sm, rc);
		return -1;
	}
	return 0;
}

const struct sink_ops sink_mqtt_ops = {
	.type = &sink_mqtt_type,
	.open = sink_mqtt_open,
	.connect = sink_mqtt_connect,
	.publish = sink_mqtt_publish,
	.idle = sink_mqtt_idle,
	.disconnect = sink_mqtt_disconnect,
	.close = sink_mqtt_close,
};
