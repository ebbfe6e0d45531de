-- producer.sql: a producer in plain SQL, the contract every language can use.
--   sqlite3 app.db < examples/producer.sql
-- The business write and the event commit together, or not at all.
CREATE TABLE IF NOT EXISTS follows (source TEXT, target TEXT, PRIMARY KEY (source, target));

BEGIN;
INSERT INTO follows(source, target) VALUES ('43', '7');
INSERT INTO outbox(name, payload, key)
     VALUES ('user.follow', json_object('source', '43', 'target', '7'), '43');
COMMIT;

-- An event with metadata (AMQP headers / envelope "metadata") and the caller's own id:
-- inserting the same id again fails (UNIQUE), so a retried request enqueues once.
INSERT OR IGNORE INTO outbox(id, name, payload, headers)
     VALUES ('order-1001-paid', 'order.paid', '{"order":1001,"amount":"19.90"}',
             '{"tenant":"acme"}');

SELECT seq, id, name FROM outbox ORDER BY seq DESC LIMIT 3;
