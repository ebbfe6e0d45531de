/*
 * sink_mqtt.h: the MQTT sink's options, shared by its type (sink_mqtt_options.c, what the
 * configuration reads and checks) and its implementation (sink_mqtt.c).
 */
#ifndef RELAY_SINK_MQTT_H
#define RELAY_SINK_MQTT_H

/* Longest topic, after {name} expanded. */
#define SINK_MQTT_TOPIC_MAX 1024

enum sink_mqtt_protocol {
	SINK_MQTT_V311,
	SINK_MQTT_V5
};

struct sink_mqtt_options {
	char *url;                /* mqtt:// or mqtts:// */
	char *topic;              /* template: "{name}" is the published name */
	int qos;                  /* 1 or 2: 0 cannot confirm */
	int retain;
	char *client_id;          /* NULL: "outboxd-" and the sink's name */
	int clean_session;
	char *username;
	char *password;
	char *tls_ca;
	char *tls_cert;
	char *tls_key;
	int tls_verify;
	int protocol;             /* enum sink_mqtt_protocol */
	int max_inflight;
	int keepalive_s;
	int timeout_ms;           /* connecting, and a batch's acknowledgements */
};

/* Where to connect, from url: malloc'd strings, freed with sink_mqtt_endpoint_free. */
struct sink_mqtt_endpoint {
	int tls;
	char *host;
	int port;
	char *username;
	char *password;
};

/* Parse o->url (the username and password options fill what it lacks). -1 with *cause
 * naming where (no password in it). */
int sink_mqtt_endpoint(const struct sink_mqtt_options *o, const char *where,
    struct sink_mqtt_endpoint *ep, char **cause);
void sink_mqtt_endpoint_free(struct sink_mqtt_endpoint *ep);

#endif
