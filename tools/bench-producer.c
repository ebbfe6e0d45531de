/*
 * bench-producer.c: the producer overhead of liboutbox against a bare prepared INSERT of
 * the same row, on the same schema and connection settings (WAL, synchronous=NORMAL).
 *
 * Each case runs on a fresh database: 1 event per transaction and 1000 per transaction,
 * with UUID v4 and UUID v7 ids, ~300-byte JSON payloads. Both sides generate their ids
 * with the same code (client/ids.c) and run the same BEGIN/COMMIT statements, so the
 * difference is what the library adds: argument checks, binding, error mapping.
 * Figures from a sanitizer build are not worth reading; use a release build.
 */
#include "config.h"

#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "ids.h"
#include "outbox.h"
#include "util.h"

#define BENCH_DEFAULT_COUNT	10000
#define BENCH_PAYLOAD_SIZE	300

struct bench_case {
	enum outbox_id_format format;
	int per_txn;
};

static const struct bench_case bench_cases[] = {
	{ OUTBOX_ID_UUID4, 1 },
	{ OUTBOX_ID_UUID7, 1 },
	{ OUTBOX_ID_UUID4, 1000 },
	{ OUTBOX_ID_UUID7, 1000 },
};

/* One database and the statements both sides share. */
struct bench_db {
	outbox *ob;
	sqlite3 *db;
	sqlite3_stmt *begin;
	sqlite3_stmt *commit;
	sqlite3_stmt *insert;	/* the bare side's */
	uint64_t uuid7_ms;
	uint16_t uuid7_counter;
};

static char bench_payload[BENCH_PAYLOAD_SIZE + 1];
static char bench_dir[PATH_MAX];

static void
bench_die(const char *what, const char *why)
{
	fprintf(stderr, "bench-producer: %s: %s\n", what, why);
	exit(1);
}

/* A realistic JSON object, padded to exactly BENCH_PAYLOAD_SIZE bytes. */
static void
bench_make_payload(void)
{
	static const char head[] = "{\"user\":{\"_id\":\"5f2b9c7e41\",\"name\":\"Ada Lovelace\","
	    "\"email\":\"ada@example.com\"},\"action\":\"login\",\"ip\":\"203.0.113.7\","
	    "\"agent\":\"Mozilla/5.0 (X11; Linux x86_64)\",\"pad\":\"";
	size_t n = strlen(head);

	memcpy(bench_payload, head, n); /* NOLINT(bugprone-not-null-terminated-result): ends below */
	memset(bench_payload + n, 'x', BENCH_PAYLOAD_SIZE - n - 2);
	memcpy(bench_payload + BENCH_PAYLOAD_SIZE - 2, "\"}", 3);
}

static double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static sqlite3_stmt *
bench_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		bench_die(sql, sqlite3_errmsg(db));
	return st;
}

static void
bench_step(sqlite3 *db, sqlite3_stmt *st)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		bench_die("step", sqlite3_errmsg(db));
	sqlite3_reset(st);
}

static void
bench_open(struct bench_db *b, const char *path, enum outbox_id_format format)
{
	memset(b, 0, sizeof *b);
	if (outbox_open(path, OUTBOX_OPEN_CREATE, &b->ob) != OUTBOX_OK)
		bench_die(path, outbox_errmsg(b->ob));
	outbox_set_id_format(b->ob, format);
	b->db = outbox_db(b->ob);
	b->begin = bench_prepare(b->db, "BEGIN");
	b->commit = bench_prepare(b->db, "COMMIT");
	b->insert = bench_prepare(b->db, "INSERT INTO outbox(id, name, payload, headers, key) "
	    "VALUES (?1, ?2, ?3, NULL, NULL)");
}

static void
bench_close(struct bench_db *b)
{
	sqlite3_finalize(b->begin);
	sqlite3_finalize(b->commit);
	sqlite3_finalize(b->insert);
	outbox_close(b->ob);
}

static void
bench_insert_bare(struct bench_db *b, enum outbox_id_format format)
{
	char id[IDS_UUID_LEN + 1];

	if (format == OUTBOX_ID_UUID7)
		ids_uuid7(id, &b->uuid7_ms, &b->uuid7_counter);
	else
		ids_uuid4(id);
	sqlite3_bind_text(b->insert, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(b->insert, 2, "user.login", -1, SQLITE_STATIC);
	sqlite3_bind_text(b->insert, 3, bench_payload, -1, SQLITE_STATIC);
	bench_step(b->db, b->insert);
}

static void
bench_insert_lib(struct bench_db *b)
{
	const char *id;

	if (outbox_enqueue(b->ob, "user.login", bench_payload, &id) != OUTBOX_OK)
		bench_die("outbox_enqueue", outbox_errmsg(b->ob));
}

/* Events per second for count events, on a fresh database. */
static double
bench_run(const struct bench_case *c, int lib, int64_t count, int run)
{
	char path[PATH_MAX + 64];
	struct bench_db b;
	double start, secs;
	int64_t i;

	snprintf(path, sizeof path, "%s/run-%d.db", bench_dir, run);
	bench_open(&b, path, c->format);
	start = bench_now();
	for (i = 0; i < count; i++) {
		if (i % c->per_txn == 0)
			bench_step(b.db, b.begin);
		if (lib)
			bench_insert_lib(&b);
		else
			bench_insert_bare(&b, c->format);
		if ((i + 1) % c->per_txn == 0 || i + 1 == count)
			bench_step(b.db, b.commit);
	}
	secs = bench_now() - start;
	bench_close(&b);
	return (double)count / secs;
}

static int
bench_remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
bench_usage(FILE *f)
{
	fprintf(f, "usage: bench-producer [-n COUNT]\n\n"
	    "Compare liboutbox enqueue with a bare prepared INSERT of the same row, at 1 and 1000\n"
	    "events per transaction, with UUID v4 and v7 ids, on fresh temporary databases.\n\n"
	    "  -n, --count COUNT   events per case (default %d)\n"
	    "  -h, --help          show this help\n", BENCH_DEFAULT_COUNT);
}

static int64_t
bench_options(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int64_t count = BENCH_DEFAULT_COUNT;
	char *cause;
	int c;

	while ((c = getopt_long(argc, argv, "n:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (util_parse_int(optarg, 1, INT32_MAX, &count, &cause) != 0) {
				fprintf(stderr, "bench-producer: -n: %s\n", cause);
				free(cause);
				exit(2);
			}
			break;
		case 'h':
			bench_usage(stdout);
			exit(0);
		default:
			bench_usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bench-producer: unexpected argument '%s'\n", argv[optind]);
		bench_usage(stderr);
		exit(2);
	}
	return count;
}

int
main(int argc, char **argv)
{
	const char *tmp = getenv("TMPDIR");
	const struct bench_case *c;
	int64_t count = bench_options(argc, argv);
	double bare, lib;
	size_t i;
	int run = 0;

	bench_make_payload();
	snprintf(bench_dir, sizeof bench_dir, "%s/bench-producer-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(bench_dir) == NULL)
		bench_die(bench_dir, "cannot create the temporary directory");

	printf("liboutbox %s, SQLite %s: %" PRId64 " events per case, %zu-byte payloads, WAL, "
	    "synchronous=NORMAL\n", outbox_version(), sqlite3_libversion(), count,
	    strlen(bench_payload));
#if defined(__SANITIZE_ADDRESS__)
	printf("(sanitizer build: these figures say little; use a release build)\n");
#endif
	printf("%-6s %10s %14s %14s %7s\n", "ids", "events/txn", "bare INSERT/s", "liboutbox/s",
	    "ratio");
	for (i = 0; i < sizeof bench_cases / sizeof bench_cases[0]; i++) {
		c = &bench_cases[i];
		bare = bench_run(c, 0, count, run++);
		lib = bench_run(c, 1, count, run++);
		printf("%-6s %10d %14.0f %14.0f %7.2f\n",
		    c->format == OUTBOX_ID_UUID7 ? "uuid7" : "uuid4", c->per_txn, bare, lib,
		    lib / bare);
		fflush(stdout);
	}
	nftw(bench_dir, bench_remove_one, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}
