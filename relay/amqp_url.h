/*
 * amqp_url.h: RabbitMQ connection URLs, as push-events' rabbitmq.connectionString has them.
 *
 *   amqp[s]://[user[:password]@]host[:port][/vhost][?heartbeat=S&connection_timeout=MS
 *             &channel_max=N&frame_max=N]
 *
 * user, password and vhost are percent-decoded ("%2f" is "/"); the defaults are
 * guest:guest, port 5672 (5671 for amqps) and vhost "/" (also for an empty path).
 * host may be an IPv6 literal in brackets. amqplib's spellings frameMax, channelMax and
 * locale are accepted too; any other query parameter is an error naming it.
 *
 * Ownership: the strings in struct amqp_url are its own until amqp_url_free. Messages
 * never contain the password (nor the URL, which may hold it).
 */
#ifndef RELAY_AMQP_URL_H
#define RELAY_AMQP_URL_H

struct amqp_url {
	int tls;
	char *host;
	int port;
	char *user;
	char *password;            /* "guest" unless the URL gives one */
	int password_set;          /* the URL gave one */
	char *vhost;
	int heartbeat;             /* seconds, 0: none */
	int connection_timeout_ms;
	int channel_max;
	int frame_max;
};

/* 0, or -1 with *cause (malloc'd). */
int amqp_url_parse(const char *url, struct amqp_url *au, char **cause);
void amqp_url_free(struct amqp_url *au);

/* For logs: "amqp://user:***@host:5672/vhost" (malloc'd). */
char *amqp_url_describe(const struct amqp_url *au);

#endif
