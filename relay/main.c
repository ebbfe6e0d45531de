/*
 * main.c: outboxd start-up and shutdown: flags, configuration, the one-relay-per-database
 * lock, signals. The work itself is relay_run's.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <hiredis/hiredis.h>
#include <mosquitto.h>
#include <nats/nats.h>

#include "conf.h"
#include "exit.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "outbox.h"
#include "redis_url.h"
#include "relay.h"
#include "store.h"
#include "util.h"
#include "wake.h"

static volatile sig_atomic_t main_stop;
static volatile sig_atomic_t main_hup;
static int main_signal_pipe[2] = { -1, -1 };

struct main_args {
	const char *config;
	const char *log_file;
	int once;
	int standby;
	int verbosity;  /* -v raises, -q lowers */
	const char *argv_password; /* "--redis", "--amqp"... when its URL held a password */
	cJSON *overrides;
};

static void
main_usage(FILE *out)
{
	fputs(
	    "usage: outboxd [-c FILE] [--db PATH]\n"
	    "               [--redis URL | --amqp URL | --nats URL | --mqtt URL | --http URL |\n"
	    "                --stdout] [--channel NAME] [--queue NAME] [--once] [--standby]\n"
	    "               [-v] [-q] [--log-file PATH] [--metrics ADDR:PORT]\n"
	    "\n"
	    "Relay the events of an SQLite outbox table to Redis, RabbitMQ, NATS, MQTT, HTTP\n"
	    "or stdout, at least once, in order, recording what was delivered.\n"
	    "\n"
	    "  -c, --config FILE   JSON configuration (push-events keys, outbox.*, relay.*, sinks)\n"
	    "      --db PATH       the outbox database (outbox.database)\n"
	    "      --redis URL     publish to Redis: redis://[user:pass@]host:port/db or\n"
	    "                      unix:///path.sock (system.queue-adapter redis, redis.url)\n"
	    "      --channel NAME  Redis channel, {name} expands (redis.channel-name)\n"
	    "      --amqp URL      publish to RabbitMQ: amqp[s]://user:pass@host:port/vhost\n"
	    "                      (system.queue-adapter rabbitmq, rabbitmq.connectionString)\n"
	    "      --queue NAME    RabbitMQ queue (rabbitmq.channel-name)\n"
	    "      --nats URL      publish to NATS JetStream: nats://[user:pass@]host:port or\n"
	    "                      tls://... (system.queue-adapter nats, nats.url)\n"
	    "      --mqtt URL      publish to MQTT at QoS 1: mqtt[s]://[user:pass@]host:port\n"
	    "                      (system.queue-adapter mqtt, mqtt.url)\n"
	    "      --http URL      POST each event to URL, {name} expands\n"
	    "                      (system.queue-adapter http, http.url)\n"
	    "      --stdout        write envelopes to standard output as JSON lines (default)\n"
	    "      --once          publish everything due now, then exit\n"
	    "      --standby       if another relay is active on the database, wait and take\n"
	    "                      over when it stops, instead of exiting\n"
	    "  -v, --verbose       more logging (repeat for debug)\n"
	    "  -q, --quiet         warnings and errors only\n"
	    "      --log-file PATH log there instead of stderr\n"
	    "      --metrics ADDR  serve /metrics, /healthz, /readyz on ADDR:PORT, [ADDR]:PORT\n"
	    "                      or a unix socket path (metrics.listen)\n"
	    "  -h, --help          this help\n"
	    "      --version       versions of outboxd and its libraries\n"
	    "\n"
	    "Passwords: OUTBOXD_REDIS_PASSWORD, OUTBOXD_AMQP_PASSWORD, OUTBOXD_NATS_PASSWORD\n"
	    "and OUTBOXD_MQTT_PASSWORD keep them out of URLs on the command line;\n"
	    "OUTBOXD_HTTP_SECRET signs HTTP requests.\n"
	    "SIGHUP reloads the configuration and reopens the log file.\n"
	    "Flags override the configuration file. Exit status: 0 done, 1 runtime error,\n"
	    "2 usage, 3 another relay is active, 65 not an outbox database, 66 no such\n"
	    "database, 75 --once could not reach a sink, 78 configuration error.\n"
	    "See outboxd(8) and outbox(5).\n", out);
}

/* Where a password given in the URL of flag should go instead ("" when nowhere else). */
static const char *
main_password_hint(const char *flag)
{
	static const char *const hints[][2] = {
		{ "--redis", "OUTBOXD_REDIS_PASSWORD or" },
		{ "--amqp", "OUTBOXD_AMQP_PASSWORD or" },
		{ "--nats", "OUTBOXD_NATS_PASSWORD or" },
		{ "--mqtt", "OUTBOXD_MQTT_PASSWORD or" },
		{ "--http", "an Authorization header (http.headers) or" },
	};
	size_t i;

	for (i = 0; i < sizeof hints / sizeof hints[0]; i++) {
		if (strcmp(flag, hints[i][0]) == 0)
			return hints[i][1];
	}
	return "";
}

static void
main_version(void)
{
	int major, minor, patch;

	mosquitto_lib_version(&major, &minor, &patch);
	printf("outboxd %s (SQLite %s, hiredis %d.%d.%d, rabbitmq-c %s, nats.c %s, "
	    "libmosquitto %d.%d.%d)\n", PACKAGE_VERSION, sqlite3_libversion(), HIREDIS_MAJOR,
	    HIREDIS_MINOR, HIREDIS_PATCH, amqp_version(), nats_GetVersion(), major, minor, patch);
}

static void
main_override(struct main_args *a, const char *key, const char *value)
{
	cJSON_DeleteItemFromObjectCaseSensitive(a->overrides, key);
	cJSON_AddStringToObject(a->overrides, key, value);
}

/*
 * Hide the password of a URL given on the command line from ps: its bytes are overwritten
 * in place (the kernel shows argv from our own memory), once the URL has been copied into
 * the overrides. The URL is shown redacted ("redis://:***@host"), cut short or padded with
 * NUL bytes to its original length. Returns 1 if there was a password.
 */
static int
main_scrub_url(char *arg)
{
	char *red = redis_url_redact(arg);
	size_t len = strlen(arg), rlen = strlen(red);
	int changed = strcmp(red, arg) != 0;

	if (changed) {
		memcpy(arg, red, rlen < len ? rlen : len);
		if (rlen < len)
			memset(arg + rlen, '\0', len - rlen);
	}
	free(red);
	return changed;
}

/* Parse the command line; returns -1 (after a message) on a usage error, 1 if done. */
static int
main_parse_args(int argc, char **argv, struct main_args *a)
{
	enum { OPT_DB = 256, OPT_REDIS, OPT_AMQP, OPT_NATS, OPT_MQTT, OPT_HTTP, OPT_CHANNEL,
	    OPT_QUEUE, OPT_STDOUT, OPT_ONCE, OPT_STANDBY, OPT_LOG_FILE, OPT_VERSION, OPT_METRICS };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "db", required_argument, NULL, OPT_DB },
		{ "redis", required_argument, NULL, OPT_REDIS },
		{ "amqp", required_argument, NULL, OPT_AMQP },
		{ "nats", required_argument, NULL, OPT_NATS },
		{ "mqtt", required_argument, NULL, OPT_MQTT },
		{ "channel", required_argument, NULL, OPT_CHANNEL },
		{ "queue", required_argument, NULL, OPT_QUEUE },
		{ "http", required_argument, NULL, OPT_HTTP },
		{ "stdout", no_argument, NULL, OPT_STDOUT },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "standby", no_argument, NULL, OPT_STANDBY },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "log-file", required_argument, NULL, OPT_LOG_FILE },
		{ "metrics", required_argument, NULL, OPT_METRICS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:vqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': a->config = optarg; break;
		case OPT_DB: main_override(a, "outbox.database", optarg); break;
		case OPT_REDIS:
			main_override(a, "system.queue-adapter", "redis");
			main_override(a, "redis.url", optarg);
			if (main_scrub_url(optarg))
				a->argv_password = "--redis";
			break;
		case OPT_AMQP:
			main_override(a, "system.queue-adapter", "rabbitmq");
			main_override(a, "rabbitmq.connectionString", optarg);
			if (main_scrub_url(optarg))
				a->argv_password = "--amqp";
			break;
		case OPT_NATS:
			main_override(a, "system.queue-adapter", "nats");
			main_override(a, "nats.url", optarg);
			if (main_scrub_url(optarg))
				a->argv_password = "--nats";
			break;
		case OPT_MQTT:
			main_override(a, "system.queue-adapter", "mqtt");
			main_override(a, "mqtt.url", optarg);
			if (main_scrub_url(optarg))
				a->argv_password = "--mqtt";
			break;
		case OPT_HTTP:
			main_override(a, "system.queue-adapter", "http");
			main_override(a, "http.url", optarg);
			if (main_scrub_url(optarg))
				a->argv_password = "--http";
			break;
		case OPT_CHANNEL: main_override(a, "redis.channel-name", optarg); break;
		case OPT_QUEUE: main_override(a, "rabbitmq.channel-name", optarg); break;
		case OPT_STDOUT: main_override(a, "system.queue-adapter", "stdout"); break;
		case OPT_ONCE: a->once = 1; break;
		case OPT_STANDBY: a->standby = 1; break;
		case 'v': a->verbosity++; break;
		case 'q': a->verbosity--; break;
		case OPT_LOG_FILE: a->log_file = optarg; break;
		case OPT_METRICS: main_override(a, "metrics.listen", optarg); break;
		case 'h': main_usage(stdout); return 1;
		case OPT_VERSION: main_version(); return 1;
		case ':':
			fprintf(stderr, "outboxd: option '%s' needs an argument\n", argv[optind - 1]);
			goto usage;
		default:
			fprintf(stderr, "outboxd: unknown option '%s'\n", argv[optind - 1]);
			goto usage;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "outboxd: unexpected argument '%s'\n", argv[optind]);
		goto usage;
	}
	return 0;
usage:
	fputs("usage: outboxd [-c FILE] [--db PATH] [--redis URL | --amqp URL | --http URL | "
	    "--stdout] [--once] (see --help)\n", stderr);
	return -1;
}

static void
main_on_signal(int sig)
{
	int saved = errno;

	if (sig == SIGHUP)
		main_hup = 1;
	else
		main_stop = 1;
	if (main_signal_pipe[1] >= 0)
		(void)!write(main_signal_pipe[1], "", 1);
	errno = saved;
}

static int
main_signals(void)
{
	struct sigaction sa;

	if (pipe2(main_signal_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = main_on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/*
 * One active relay per database: an exclusive flock on DB-outboxd.lock, which the kernel
 * drops when the holder dies, however it dies. With standby, wait for it.
 */
static int
main_lock(const char *database, int standby, int *fd_out)
{
	char *path = xasprintf("%s-outboxd.lock", database);
	int fd, waiting = 0, rc = 0;

	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
		log_error("cannot open lock file %s: %s", path, strerror(errno));
		free(path);
		return EXIT_RUNTIME;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK) {
			log_error("cannot lock %s: %s", path, strerror(errno));
			rc = EXIT_RUNTIME;
		} else if (!standby) {
			log_error("another relay is active on %s (it holds %s); use --standby to "
			    "wait and take over when it stops", database, path);
			rc = EXIT_LOCKED;
		} else if (main_stop) {
			rc = -1;
		} else {
			if (!waiting++)
				log_info("another relay is active on %s: standing by", database);
			poll(NULL, 0, 500);
			continue;
		}
		close(fd);
		free(path);
		return rc;
	}
	if (waiting)
		log_info("the other relay stopped: taking over");
	free(path);
	*fd_out = fd;
	return 0;
}

/* The log level: the configuration's, moved by -v and -q. */
static void
main_log_level(const struct main_args *a, const struct conf *cf)
{
	int level = cf->log_level + a->verbosity;

	log_set_level(level < LOG_LEVEL_ERROR ? LOG_LEVEL_ERROR : level > LOG_LEVEL_DEBUG ? LOG_LEVEL_DEBUG : level);
	log_set_format(cf->log_format);
}

/* Load the configuration: at start-up, and again on SIGHUP (relay_options.load). */
static int
main_load(struct conf *cf, void *arg, char **cause)
{
	struct main_args *a = arg;

	if (conf_load(cf, a->config, a->overrides, cause) != 0)
		return -1;
	if (cf->metrics_listen != NULL && metrics_check_listen(cf->metrics_listen, cause) != 0) {
		conf_free(cf);
		return -1;
	}
	main_log_level(a, cf);
	return 0;
}

/*
 * The metrics, when someone watches: an HTTP listener (metrics.listen) or systemd (its
 * STATUS= line comes from them). Listening happens once the lock is held, so a standby
 * relay does not take the port. -1 if the listener cannot start.
 */
static int
main_watch(const struct conf *cf, struct relay_options *opt)
{
	char *labels, *cause = NULL;

	opt->notify = notify_open();
	if (cf->metrics_listen == NULL && opt->notify == NULL)
		return 0;
	labels = xasprintf("version=\"%s\",sqlite=\"%s\",hiredis=\"%d.%d.%d\",rabbitmq_c=\"%s\"",
	    PACKAGE_VERSION, sqlite3_libversion(), HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH,
	    amqp_version());
	opt->metrics = metrics_new(labels);
	free(labels);
	if (cf->metrics_listen == NULL)
		return 0;
	if (metrics_listen(opt->metrics, cf->metrics_listen, &cause) != 0) {
		log_error("%s", cause);
		free(cause);
		return -1;
	}
	log_info("metrics: serving /metrics, /healthz and /readyz on %s", cf->metrics_listen);
	return 0;
}

static int
main_run(struct main_args *a, struct conf *cf)
{
	struct relay_options opt = { .once = a->once, .stop = &main_stop, .hup = &main_hup,
	    .load = main_load, .load_arg = a };
	struct store *st = NULL;
	struct wake *wake;
	enum store_error kind;
	char *cause = NULL;
	int status, lock_fd = -1;

	/* Each connection is used by one thread only (this one's by the loop, the checkpoint
	 * thread's by it; the metrics thread never touches SQLite): no mutex per call, no
	 * global memory statistics. Before any other call; SQLITE_MISUSE if SQLite was
	 * already initialized, and then it keeps its defaults. */
	sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	/* Open (and so check) the database first, so that no lock file is left next to a
	 * file that is missing or not an outbox. */
	if (store_open(&st, cf->database, &kind, &cause) != 0) {
		log_error("%s", cause);
		free(cause);
		return kind == STORE_ERR_MISSING ? EXIT_NO_DATABASE :
		    kind == STORE_ERR_NOT_OUTBOX ? EXIT_NOT_OUTBOX : EXIT_RUNTIME;
	}
	if ((status = main_lock(cf->database, a->standby, &lock_fd)) != 0) {
		store_close(st);
		return status < 0 ? EXIT_OK : status;
	}
	if (main_watch(cf, &opt) != 0) {
		metrics_free(opt.metrics);
		notify_close(opt.notify);
		store_close(st);
		close(lock_fd);
		return EXIT_RUNTIME;
	}
	if (store_take_checkpoints(st, &cause) != 0) {
		log_warn("%s (SQLite's own checkpoints go on)", cause);
		free(cause);
	}
	/* --once never sleeps for a commit: no inotify, whose descriptor takes 10-15 ms to
	 * close (the kernel waits for a grace period), a few percent of a short drain. */
	wake = wake_open(opt.once ? NULL : cf->database, main_signal_pipe[0]);
	log_info("outboxd %s relaying %s (%zu sink%s, batch %d)", PACKAGE_VERSION, cf->database,
	    cf->nsinks, cf->nsinks == 1 ? "" : "s", cf->batch_size);
	status = relay_run(cf, st, wake, &opt);
	metrics_free(opt.metrics);
	notify_close(opt.notify);
	wake_close(wake);
	store_close(st);
	close(lock_fd);
	return status;
}

int
main(int argc, char **argv)
{
	struct main_args a = { 0 };
	struct conf cf;
	char *cause = NULL;
	int status;

	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	a.overrides = cJSON_CreateObject();
	if ((status = main_parse_args(argc, argv, &a)) != 0) {
		cJSON_Delete(a.overrides);
		return status < 0 ? EXIT_USAGE : EXIT_OK;
	}
	if (a.log_file != NULL && log_open(a.log_file) != 0) {
		fprintf(stderr, "outboxd: cannot open log file %s: %s\n", a.log_file, strerror(errno));
		cJSON_Delete(a.overrides);
		return EXIT_RUNTIME;
	}
	if (main_load(&cf, &a, &cause) != 0) {
		log_error("%s", cause);
		free(cause);
		cJSON_Delete(a.overrides);
		return EXIT_CONFIG;
	}
	if (a.argv_password != NULL) {
		log_warn("the %s URL on the command line holds a password: it is hidden from ps "
		    "now, but was visible while outboxd started and stays in shell histories; "
		    "give it in %s a configuration file only its owner can read",
		    a.argv_password, main_password_hint(a.argv_password));
	}
	if (main_signals() != 0) {
		log_error("cannot set up signals: %s", strerror(errno));
		conf_free(&cf);
		cJSON_Delete(a.overrides);
		return EXIT_RUNTIME;
	}
	status = main_run(&a, &cf);
	conf_free(&cf);
	cJSON_Delete(a.overrides);
	return status;
}
