/*
 * bench-rabbitmq-publisher.c: the baseline for the relay's RabbitMQ figures: a bare rabbitmq-c
 * publisher doing what the relay's sink does per message (persistent, mandatory, the same
 * properties, publisher confirms with the same window) and nothing else.
 *
 *   bench-rabbitmq-publisher HOST PORT QUEUE COUNT [WINDOW] [PAYLOAD_BYTES]
 * prints "N messages in S s: R msg/s".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

static double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
bench_check(amqp_rpc_reply_t r, const char *what)
{
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		fprintf(stderr, "bench-rabbitmq: %s failed\n", what);
		exit(1);
	}
}

/* Read frames until fewer than limit messages are unconfirmed. */
static void
bench_wait(amqp_connection_state_t conn, uint64_t *confirmed, uint64_t published,
    uint64_t limit)
{
	amqp_frame_t frame;

	while (published - *confirmed > limit) {
		if (amqp_simple_wait_frame(conn, &frame) != AMQP_STATUS_OK) {
			fprintf(stderr, "bench-rabbitmq: connection lost\n");
			exit(1);
		}
		if (frame.frame_type == AMQP_FRAME_METHOD &&
		    frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
			amqp_basic_ack_t *ack = frame.payload.method.decoded;
			/* RabbitMQ confirms in publish order on a channel. */
			if (ack->delivery_tag > *confirmed)
				*confirmed = ack->delivery_tag;
		} else if (frame.frame_type == AMQP_FRAME_METHOD) {
			fprintf(stderr, "bench-rabbitmq: unexpected method 0x%08x\n",
			    frame.payload.method.id);
			exit(1);
		}
	}
}

int
main(int argc, char **argv)
{
	amqp_connection_state_t conn;
	amqp_socket_t *sock;
	amqp_basic_properties_t props;
	uint64_t count, window = 256, size = 300, published = 0, confirmed = 0;
	char *body, id[40];
	double t0, secs;

	if (argc < 5) {
		fprintf(stderr, "usage: bench-rabbitmq-publisher HOST PORT QUEUE COUNT [WINDOW] "
		    "[PAYLOAD_BYTES]\n");
		return 2;
	}
	count = strtoull(argv[4], NULL, 10);
	if (argc > 5)
		window = strtoull(argv[5], NULL, 10);
	if (argc > 6 && (size = strtoull(argv[6], NULL, 10)) < 2) {
		fprintf(stderr, "bench-rabbitmq: PAYLOAD_BYTES must be at least 2\n");
		return 2;
	}
	if ((body = malloc(size + 1)) == NULL) {
		fprintf(stderr, "bench-rabbitmq: out of memory\n");
		return 1;
	}
	memset(body, 'x', size);
	body[0] = '{';
	body[size - 1] = '}';
	body[size] = '\0';

	conn = amqp_new_connection();
	sock = amqp_tcp_socket_new(conn);
	if (amqp_socket_open(sock, argv[1], (int)strtol(argv[2], NULL, 10)) != AMQP_STATUS_OK) {
		fprintf(stderr, "bench-rabbitmq: cannot connect\n");
		free(body);
		return 1;
	}
	bench_check(amqp_login(conn, "/", 0, 131072, 60, AMQP_SASL_METHOD_PLAIN, "guest",
	    "guest"), "login");
	amqp_channel_open(conn, 1);
	bench_check(amqp_get_rpc_reply(conn), "channel.open");
	amqp_confirm_select(conn, 1);
	bench_check(amqp_get_rpc_reply(conn), "confirm.select");
	amqp_queue_declare(conn, 1, amqp_cstring_bytes(argv[3]), 0, 1, 0, 0, amqp_empty_table);
	bench_check(amqp_get_rpc_reply(conn), "queue.declare");

	memset(&props, 0, sizeof props);
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
	    AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	props.type = amqp_cstring_bytes("bench.event");
	t0 = bench_now();
	for (published = 0; published < count; ) {
		snprintf(id, sizeof id, "%036llu", (unsigned long long)published);
		props.message_id = amqp_cstring_bytes(id);
		props.timestamp = (uint64_t)time(NULL);
		if (amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(argv[3]), 1, 0,
		    &props, (amqp_bytes_t){ size, body }) != AMQP_STATUS_OK) {
			fprintf(stderr, "bench-rabbitmq: publish failed\n");
			return 1;
		}
		published++;
		bench_wait(conn, &confirmed, published, window - 1);
	}
	bench_wait(conn, &confirmed, published, 0);
	secs = bench_now() - t0;
	printf("%llu messages in %.3f s: %.0f msg/s\n", (unsigned long long)count, secs,
	    (double)count / secs);
	amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
	free(body);
	return 0;
}
