/*
 * bench-mqtt-publisher.c: the baseline for the relay's MQTT figures: a bare libmosquitto
 * QoS 1 publisher doing what the relay's sink does per message (MQTT 3.1.1, a persistent
 * session, the same max-inflight, the same bodies, libmosquitto's network loop driven
 * from the publishing thread as the sink does) and nothing else: it keeps max-inflight
 * messages unacknowledged until every PUBACK came.
 *
 *   bench-mqtt-publisher HOST PORT TOPIC_PREFIX BODIES [MAX_INFLIGHT]
 * BODIES holds one message a line: "ID NAME BODY" (tools/bench-lines.h); each goes to
 * TOPIC_PREFIX + NAME. Prints "N messages in S s: R msg/s".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "bench-lines.h"

struct bench_mqtt {
	long long acked;
	int connack;
};

static void
bench_mqtt_on_connect(struct mosquitto *mosq, void *arg, int rc)
{
	struct bench_mqtt *b = arg;

	(void)mosq;
	b->connack = rc;
}

static void
bench_mqtt_on_publish(struct mosquitto *mosq, void *arg, int mid)
{
	struct bench_mqtt *b = arg;

	(void)mosq;
	(void)mid;
	b->acked++;
}

/* One turn of the network loop; exits when the connection is gone. */
static void
bench_mqtt_loop(struct mosquitto *mosq)
{
	int rc = mosquitto_loop(mosq, 1000, 1);

	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "bench-mqtt: %s\n", mosquitto_strerror(rc));
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	struct bench_lines bl;
	struct bench_mqtt b = { 0, -1 };
	struct mosquitto *mosq;
	char topic[256];
	long long port, inflight = 256;
	size_t i;
	int rc;
	double t0, secs;

	if (argc < 5 || bench_lines_int(argv[2], 1, 65535, &port) != 0) {
		fprintf(stderr, "usage: bench-mqtt-publisher HOST PORT TOPIC_PREFIX BODIES "
		    "[MAX_INFLIGHT]\n");
		return 2;
	}
	if (argc > 5 && bench_lines_int(argv[5], 1, 65535, &inflight) != 0) {
		fprintf(stderr, "bench-mqtt: MAX_INFLIGHT must be 1 to 65535\n");
		return 2;
	}
	if (bench_lines_read(argv[4], &bl) != 0)
		return 1;
	mosquitto_lib_init();
	if ((mosq = mosquitto_new("bench-mqtt-bare", false, &b)) == NULL) {
		fprintf(stderr, "bench-mqtt: cannot make a client\n");
		return 1;
	}
	mosquitto_connect_callback_set(mosq, bench_mqtt_on_connect);
	mosquitto_publish_callback_set(mosq, bench_mqtt_on_publish);
	mosquitto_max_inflight_messages_set(mosq, (unsigned)inflight);
	if ((rc = mosquitto_connect(mosq, argv[1], (int)port, 60)) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "bench-mqtt: connect: %s\n", mosquitto_strerror(rc));
		return 1;
	}
	while (b.connack < 0)
		bench_mqtt_loop(mosq);
	if (b.connack != 0) {
		fprintf(stderr, "bench-mqtt: %s\n", mosquitto_connack_string(b.connack));
		return 1;
	}

	t0 = bench_lines_now();
	for (i = 0; i < bl.n; i++) {
		while ((long long)i - b.acked >= inflight)
			bench_mqtt_loop(mosq);
		snprintf(topic, sizeof topic, "%s%s", argv[3], bl.v[i].name);
		rc = mosquitto_publish(mosq, NULL, topic, (int)bl.v[i].body_len, bl.v[i].body, 1,
		    false);
		if (rc != MOSQ_ERR_SUCCESS) {
			fprintf(stderr, "bench-mqtt: publish: %s\n", mosquitto_strerror(rc));
			return 1;
		}
	}
	while (b.acked < (long long)bl.n)
		bench_mqtt_loop(mosq);
	secs = bench_lines_now() - t0;

	printf("%zu messages in %.3f s: %.0f msg/s\n", bl.n, secs, (double)bl.n / secs);
	mosquitto_disconnect(mosq);
	mosquitto_destroy(mosq);
	mosquitto_lib_cleanup();
	bench_lines_free(&bl);
	return 0;
}
