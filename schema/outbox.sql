-- outbox.sql: the one source of truth for the outbox schema.
--
-- This file is compiled into liboutbox at build time. It is a list of forward-only
-- migrations; the text after each "-- @migration N" line, up to the next one, moves a
-- database from version N-1 to version N. The version lives in PRAGMA user_version.
-- Never edit a migration that has been released: add a new one below it. Each migration
-- ends by setting user_version, so the file also works on its own in the sqlite3 shell:
--   sqlite3 app.db < schema/outbox.sql
--
-- Producers only ever need the first table:
--   INSERT INTO outbox(name, payload) VALUES ('user.login', '{"user":{"_id":"42"}}');
-- Producers must not set seq: the relay relies on seq values becoming visible in commit
-- order, which SQLite's single writer guarantees only when seq is assigned by SQLite.
-- All times are unix milliseconds (INTEGER); the views show them as ISO 8601 UTC.

-- @migration 1

CREATE TABLE outbox (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  -- A fresh UUID v4 unless the producer supplies its own id (idempotent enqueue).
  id         TEXT NOT NULL UNIQUE DEFAULT (
               lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||
               substr(lower(hex(randomblob(2))), 2) || '-' ||
               substr('89ab', 1 + (abs(random()) % 4), 1) ||
               substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
  name       TEXT NOT NULL
             CONSTRAINT outbox_name_valid CHECK (
               typeof(name) = 'text' AND length(name) BETWEEN 1 AND 255 AND
               name NOT GLOB ('*[' || char(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 127) || ']*')),
  payload    TEXT NOT NULL
             CONSTRAINT outbox_payload_json CHECK (json_valid(payload)),
  headers    TEXT
             CONSTRAINT outbox_headers_object CHECK (
               headers IS NULL OR (json_valid(headers) AND json_type(headers) = 'object')),
  key        TEXT,
  created_at INTEGER NOT NULL
             DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER))
);

-- One row per relay sink. Every event with seq <= cursor has been handed off by that sink:
-- delivered, filtered out, or moved to outbox_retry. The filter (a JSON array of GLOB
-- patterns, NULL for every event) and prefix are those of the running relay, stored here
-- so that the views below are exact.
CREATE TABLE outbox_sink (
  name        TEXT PRIMARY KEY,
  type        TEXT NOT NULL,
  cursor      INTEGER NOT NULL DEFAULT 0,
  filter      TEXT CONSTRAINT outbox_sink_filter_array CHECK (
                filter IS NULL OR (json_valid(filter) AND json_type(filter) = 'array')),
  prefix      TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL
              DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)),
  progress_at INTEGER
);

-- Events that failed on a sink: 'retry' will be published again at next_attempt_at,
-- 'failed' gave up after the relay's max attempts (replay with outboxctl).
-- attempts = 0 marks an event that never failed itself but waits behind an earlier event
-- with the same ordering key.
CREATE TABLE outbox_retry (
  sink            TEXT NOT NULL REFERENCES outbox_sink(name) ON DELETE CASCADE,
  seq             INTEGER NOT NULL,
  state           TEXT NOT NULL CONSTRAINT outbox_retry_state CHECK (state IN ('retry', 'failed')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT,
  updated_at      INTEGER NOT NULL,
  PRIMARY KEY (sink, seq)
) WITHOUT ROWID;

CREATE INDEX outbox_retry_due ON outbox_retry(sink, state, next_attempt_at);
CREATE INDEX outbox_retry_seq ON outbox_retry(seq);

-- Does event o pass sink s's filter? Written out in each view (SQLite has no SQL functions).
-- (s.filter IS NULL OR EXISTS (SELECT 1 FROM json_each(s.filter) f
--    WHERE o.name GLOB f.value OR s.prefix || o.name GLOB f.value))

CREATE VIEW outbox_backlog AS
SELECT s.name AS sink, o.seq, o.id, o.name, 'pending' AS state, 0 AS attempts,
       NULL AS next_attempt, NULL AS last_error,
       strftime('%Y-%m-%dT%H:%M:%fZ', o.created_at / 1000.0, 'unixepoch') AS created
  FROM outbox_sink s JOIN outbox o ON o.seq > s.cursor
 WHERE s.filter IS NULL OR EXISTS (SELECT 1 FROM json_each(s.filter) f
         WHERE o.name GLOB f.value OR s.prefix || o.name GLOB f.value)
UNION ALL
SELECT r.sink, o.seq, o.id, o.name, r.state, r.attempts,
       CASE r.state WHEN 'retry'
         THEN strftime('%Y-%m-%dT%H:%M:%fZ', r.next_attempt_at / 1000.0, 'unixepoch') END,
       r.last_error,
       strftime('%Y-%m-%dT%H:%M:%fZ', o.created_at / 1000.0, 'unixepoch')
  FROM outbox_retry r JOIN outbox o ON o.seq = r.seq;

CREATE VIEW outbox_failed AS
SELECT r.sink, o.seq, o.id, o.name, r.attempts, r.last_error,
       strftime('%Y-%m-%dT%H:%M:%fZ', r.updated_at / 1000.0, 'unixepoch') AS failed_at,
       strftime('%Y-%m-%dT%H:%M:%fZ', o.created_at / 1000.0, 'unixepoch') AS created
  FROM outbox_retry r JOIN outbox o ON o.seq = r.seq
 WHERE r.state = 'failed';

CREATE VIEW outbox_status AS
SELECT b.sink, b.cursor, b.pending, b.retrying, b.failed,
       CASE WHEN b.oldest IS NOT NULL THEN
         round((julianday('now') - 2440587.5) * 86400.0 - b.oldest / 1000.0, 3)
       END AS oldest_age_s,
       strftime('%Y-%m-%dT%H:%M:%fZ', b.progress_at / 1000.0, 'unixepoch') AS last_progress
  FROM (SELECT s.name AS sink, s.cursor, s.progress_at,
               (SELECT count(*) FROM outbox o WHERE o.seq > s.cursor AND (s.filter IS NULL
                  OR EXISTS (SELECT 1 FROM json_each(s.filter) f
                             WHERE o.name GLOB f.value OR s.prefix || o.name GLOB f.value)))
                 AS pending,
               (SELECT count(*) FROM outbox_retry r WHERE r.sink = s.name AND r.state = 'retry')
                 AS retrying,
               (SELECT count(*) FROM outbox_retry r WHERE r.sink = s.name AND r.state = 'failed')
                 AS failed,
               (SELECT min(c) FROM (
                  SELECT * FROM (SELECT o.created_at AS c FROM outbox o
                   WHERE o.seq > s.cursor AND (s.filter IS NULL
                     OR EXISTS (SELECT 1 FROM json_each(s.filter) f
                                WHERE o.name GLOB f.value OR s.prefix || o.name GLOB f.value))
                   ORDER BY o.seq LIMIT 1)
                  UNION ALL
                  SELECT min(o.created_at) FROM outbox_retry r JOIN outbox o ON o.seq = r.seq
                   WHERE r.sink = s.name)) AS oldest
          FROM outbox_sink s) b;

PRAGMA user_version = 1;

-- @migration 2

-- Every event's state on every sink: 'retry' or 'failed' (its retry row), 'filtered out'
-- (the sink's filter does not take it), 'pending' (after the cursor) or 'delivered'.
-- While no sink is registered, each event has one row with a NULL sink and state.
-- outboxctl ls, show and replay read this view; the relay's filter is the C twin of the
-- test below (relay/filter.c; tests/check_store.c runs both over the same events).
CREATE VIEW outbox_delivery AS
SELECT s.name AS sink, o.seq, o.id, o.name,
       CASE WHEN s.name IS NULL THEN NULL
            WHEN r.state IS NOT NULL THEN r.state
            WHEN NOT (s.filter IS NULL OR EXISTS (SELECT 1 FROM json_each(s.filter) f
                        WHERE o.name GLOB f.value OR s.prefix || o.name GLOB f.value))
              THEN 'filtered out'
            WHEN o.seq > s.cursor THEN 'pending'
            ELSE 'delivered' END AS state,
       CASE WHEN s.name IS NOT NULL THEN coalesce(r.attempts, 0) END AS attempts,
       CASE r.state WHEN 'retry'
         THEN strftime('%Y-%m-%dT%H:%M:%fZ', r.next_attempt_at / 1000.0, 'unixepoch') END
         AS next_attempt,
       r.last_error,
       strftime('%Y-%m-%dT%H:%M:%fZ', r.updated_at / 1000.0, 'unixepoch') AS updated,
       strftime('%Y-%m-%dT%H:%M:%fZ', o.created_at / 1000.0, 'unixepoch') AS created
  FROM outbox o LEFT JOIN outbox_sink s
       LEFT JOIN outbox_retry r ON r.sink = s.name AND r.seq = o.seq;

PRAGMA user_version = 2;
