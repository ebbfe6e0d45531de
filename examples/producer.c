/*
 * producer.c: a producer in C with liboutbox. The application's own write and its event
 * commit in one transaction, on the application's own connection.
 *
 *   cc producer.c $(pkg-config --cflags --libs liboutbox) -o producer
 *   ./producer app.db 42 7
 */
#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>
#include <outbox.h>

static int
follow(sqlite3 *db, outbox *ob, const char *source, const char *target)
{
	char payload[256];
	const char *id;
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO follows(source, target) VALUES (?, ?)",
	    -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, target, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_OK) {
		fprintf(stderr, "producer: %s\n", sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	/* The payload is the event's "data"; the key keeps one user's events in order. */
	snprintf(payload, sizeof payload, "{\"source\":\"%s\",\"target\":\"%s\"}", source, target);
	struct outbox_event ev = { .name = "user.follow", .payload = payload, .key = source };
	if (outbox_enqueue_event(ob, &ev, &id) != OUTBOX_OK) {
		fprintf(stderr, "producer: %s\n", outbox_errmsg(ob));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "producer: %s\n", sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	printf("%s\n", id);
	return 0;
}

int
main(int argc, char **argv)
{
	sqlite3 *db;
	outbox *ob = NULL;
	int status = 1;

	if (argc != 4) {
		fprintf(stderr, "usage: producer DB SOURCE TARGET\n");
		return 2;
	}
	if (sqlite3_open(argv[1], &db) != SQLITE_OK) {
		fprintf(stderr, "producer: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	sqlite3_busy_timeout(db, 5000);
	sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
	if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS follows(source TEXT, target TEXT, "
	    "PRIMARY KEY (source, target))", NULL, NULL, NULL) != SQLITE_OK)
		fprintf(stderr, "producer: %s\n", sqlite3_errmsg(db));
	else if (outbox_attach(db, &ob) != OUTBOX_OK)
		fprintf(stderr, "producer: %s\n", outbox_errmsg(ob));
	else if (follow(db, ob, argv[2], argv[3]) == 0)
		status = 0;
	outbox_close(ob);
	sqlite3_close(db);
	return status;
}
