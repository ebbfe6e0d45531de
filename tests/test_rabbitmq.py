#!/usr/bin/env python3
"""test_rabbitmq.py: outboxd against a real RabbitMQ node with a real consumer (pika).

One private node serves the whole file (it takes seconds to boot): its own name, ports,
HOME (so its own Erlang cookie) and data under the build tree, started with
`rabbitmq-server -detached` and stopped at the end, whatever happens. Each test uses its
own queue or exchange. Skipped when rabbitmq-server or pika is missing (a failure when
OUTBOX_TEST_REQUIRE_SERVERS=1).
"""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tap  # noqa: E402
from harness import (EXIT_CONFIG, EXIT_UNREACHABLE, OUTBOXD, BrokerCase, OutboxDB,  # noqa: E402
                     TempDir, wait_for)
from harness_rabbitmq import (RABBIT_BIN, get_messages, start_module_node,  # noqa: E402
                              stop_module_node)

tap.require_programs(os.path.join(RABBIT_BIN, "rabbitmq-server"), OUTBOXD)
try:
    import pika  # noqa: E402,F401 (the consumer; imported here to skip cleanly)
except ImportError:
    tap.skip_all("python3-pika is not installed")



NODE = None
TMP = None


def setUpModule():
    global NODE, TMP
    NODE, TMP = start_module_node("rabbitmq")


def tearDownModule():
    stop_module_node(NODE, TMP)


class RabbitCase(BrokerCase):
    def setUp(self):
        self.tmp = TempDir("rabbitmq-case")
        self.addCleanup(self.tmp.cleanup)
        self.db = OutboxDB(self.tmp.join("app.db"))
        self.queue = "q-" + self.id().rsplit(".", 1)[-1]
        self.conn, self.ch = NODE.channel()
        self.addCleanup(self.close_conn)

    def close_conn(self):
        try:
            self.conn.close()
        except Exception:
            pass

    def config(self, **keys):
        return self.make_config({"outbox.database": self.db.path,
                                 "system.queue-adapter": "rabbitmq",
                                 "rabbitmq.connectionString": NODE.url(),
                                 "rabbitmq.channel-name": self.queue}, **keys)

    def consume(self, n, queue=None, timeout=20):
        """Get n messages (then anything more within a short quiet time)."""
        got = get_messages(self.ch, queue or self.queue, n, timeout)
        self.assertGreaterEqual(len(got), n, "only %d of %d messages" % (len(got), n))
        return got

    def drained(self, sink="rabbitmq", timeout=30):
        top = self.db.max_seq()
        wait_for(lambda: (self.db.cursor(sink) or 0) == top, timeout,
                 what="cursor of %s to reach %d" % (sink, top))


class TestDelivery(RabbitCase):

    def test_properties_and_order(self):
        rows = []
        for i in range(40):
            headers = {"trace": "t%d" % i, "n": i, "ok": True, "nested": {"a": [1]}} \
                if i % 4 == 0 else None
            rows.append(("user.login", {"i": i, "user": {"_id": str(i)}}, headers))
        self.db.insert_many(rows)
        self.once(self.config(**{"system.push-events.prefix": "app."}))
        events = self.db.events()
        created = dict(self.db.query("SELECT id, created_at FROM outbox"))
        got = self.consume(len(events))
        self.assertEqual(len(got), len(events), "duplicates or extra messages")
        for (props, body), ev in zip(got, events):
            env = json.loads(body)
            want = {"id": ev["id"], "name": "app." + ev["name"],
                    "data": json.loads(ev["payload"])}
            if ev["headers"] is not None:
                want["metadata"] = json.loads(ev["headers"])
            self.assertEqual(env, want)
            self.assertEqual(props.content_type, "application/json")
            self.assertEqual(props.delivery_mode, 2)
            self.assertEqual(props.message_id, ev["id"])
            self.assertEqual(props.type, "app." + ev["name"])
            self.assertEqual(props.timestamp, created[ev["id"]] // 1000)
            if ev["headers"] is None:
                self.assertFalse(props.headers)
            else:
                h = json.loads(ev["headers"])
                self.assertEqual(props.headers["trace"], h["trace"].encode()
                                 if isinstance(props.headers["trace"], bytes) else h["trace"])
                self.assertEqual(props.headers["n"], h["n"])
                self.assertEqual(props.headers["ok"], True)
                nested = props.headers["nested"]
                nested = nested.decode() if isinstance(nested, bytes) else nested
                self.assertEqual(json.loads(nested), {"a": [1]})
        self.assertEqual(self.db.retry_rows(), [])

    def test_cloudevents_as_headers(self):
        """format cloudevents: attributes as cloudEvents_ headers (the AMQP 1.0 binding's
        convention), content type application/json, the payload as the body."""
        self.db.insert("user.login", '{"user": {"_id": "42"}, "n": 1.50}',
                       headers={"traceparent": "00-abc", "Bad_Name": "x", "tenant": 7})
        self.db.insert("user.logout", "[1, 2]")
        log = self.once(self.config(**{"system.push-events.prefix": "app.",
                                       "rabbitmq.format": "cloudevents",
                                       "rabbitmq.cloudevents-source": "urn:test"}))
        events = self.db.events()
        created = dict(self.db.query("SELECT id, created_at FROM outbox"))
        got = self.consume(len(events))
        self.assertEqual(len(got), 2)

        def text(v):
            return v.decode() if isinstance(v, bytes) else v
        for (props, body), ev in zip(got, events):
            self.assertEqual(props.content_type, "application/json")
            self.assertEqual(props.message_id, ev["id"])
            self.assertEqual(json.loads(body), json.loads(ev["payload"]))
            h = {k: text(v) for k, v in props.headers.items()}
            ms = created[ev["id"]]
            when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000))
            self.assertEqual(h.pop("cloudEvents_specversion"), "1.0")
            self.assertEqual(h.pop("cloudEvents_id"), ev["id"])
            self.assertEqual(h.pop("cloudEvents_source"), "urn:test")
            self.assertEqual(h.pop("cloudEvents_type"), "app." + ev["name"])
            self.assertEqual(h.pop("cloudEvents_time"), "%s.%03dZ" % (when, ms % 1000))
            if ev["headers"] is not None:
                self.assertEqual(h.pop("cloudEvents_traceparent"), "00-abc")
                self.assertEqual(h.pop("cloudEvents_tenant"), 7)
            self.assertEqual(h, {})     # no data, no datacontenttype, no Bad_Name
        # The payload's bytes as the producer wrote them, made compact.
        self.assertEqual(got[0][1], b'{"user":{"_id":"42"},"n":1.50}')
        self.assertEqual(log.count('header "Bad_Name" is not a CloudEvents extension'), 1)
        self.assertEqual(self.db.retry_rows(), [])

    def test_consumer_declared_the_queue_first(self):
        # amqplib's assertQueue(queue) with default options: durable, no arguments.
        self.ch.queue_declare(self.queue, durable=True)
        self.db.insert("user.create", {"u": 1})
        self.once(self.config())
        self.assertEqual(len(self.consume(1)), 1)

    def test_inequivalent_queue_is_a_clear_error(self):
        self.ch.queue_declare(self.queue, durable=False)
        self.db.insert("user.create", {"u": 1})
        log = self.once(self.config(), expect=EXIT_UNREACHABLE)
        self.assertIn("406 PRECONDITION_FAILED", log)
        self.assertIn("inequivalent arg 'durable'", log)
        self.assertEqual(self.db.cursor("rabbitmq"), 0)

    def queue_info(self):
        """{name: (type, arguments)} of the node's queues, from rabbitmqctl."""
        out = NODE.ctl("list_queues", "-q", "--no-table-headers", "name", "type",
                       "arguments")
        info = {}
        for line in out.splitlines():
            name, qtype, args = line.split("\t", 2)
            info[name] = (qtype, args)
        return info

    def test_quorum_queue_with_arguments(self):
        self.db.insert_many([("user.create", {"u": i}) for i in range(5)])
        self.once(self.config(rabbitmq__queue_type="quorum",
                              rabbitmq__queue_arguments={"x-max-length": 1000,
                                                         "x-overflow": "reject-publish"}))
        qtype, args = self.queue_info()[self.queue]
        self.assertEqual(qtype, "quorum")
        self.assertIn("x-max-length", args)
        self.assertIn("reject-publish", args)
        self.assertEqual(len(self.consume(5)), 5)
        # The same options again: the queue is equivalent, so declaring it passes.
        self.db.insert("user.create", {"u": 5})
        self.once(self.config(rabbitmq__queue_type="quorum",
                              rabbitmq__queue_arguments={"x-max-length": 1000,
                                                         "x-overflow": "reject-publish"}))
        self.assertEqual(len(self.consume(1)), 1)

    def test_full_queue_nacks_are_rejections(self):
        # x-overflow reject-publish: the broker nacks what does not fit. A nack counts an
        # attempt; a batch nacked whole also makes the relay reconnect (a fresh channel).
        self.db.insert_many([("user.create", {"u": i}) for i in range(5)])
        log = self.once(self.config(rabbitmq__queue_arguments={
            "x-max-length": 3, "x-overflow": "reject-publish"}, relay__max_attempts=1,
            relay__batch_size=1))
        self.assertEqual([json.loads(body)["data"]["u"] for _, body in self.consume(3)],
                         [0, 1, 2])
        failed = self.db.failed_rows("rabbitmq")
        self.assertEqual([(r["seq"], r["last_error"]) for r in failed],
                         [(4, "nacked by the broker"), (5, "nacked by the broker")])
        self.assertIn("every message of the batch was nacked: reconnecting", log)

    def test_queue_of_another_type_is_a_clear_error(self):
        self.ch.queue_declare(self.queue, durable=True)   # classic
        self.db.insert("user.create", {"u": 1})
        log = self.once(self.config(rabbitmq__queue_type="quorum"), expect=EXIT_UNREACHABLE)
        self.assertIn("406 PRECONDITION_FAILED - inequivalent arg 'x-queue-type'", log)
        self.assertEqual(self.db.cursor("rabbitmq"), 0)

    def test_queue_type_given_twice_differently(self):
        log = self.once(self.config(rabbitmq__queue_type="quorum",
                                    rabbitmq__queue_arguments={"x-queue-type": "classic"}),
                        expect=EXIT_CONFIG)
        self.assertIn("rabbitmq: queue-type is quorum but queue-arguments has another "
                      "x-queue-type: give one of them", log)
        log = self.once(self.config(rabbitmq__queue_arguments=["x"]), expect=EXIT_CONFIG)
        self.assertIn("rabbitmq.queue-arguments: expected an object, got [\"x\"]", log)

    def test_failover_to_the_next_host(self):
        from harness_rabbitmq import rabbit_port
        dead = "amqp://guest:guest@127.0.0.1:%d/" % rabbit_port()
        self.db.insert("user.create", {"u": 1})
        log = self.once(self.config(rabbitmq__connectionString=[dead, NODE.url()]))
        self.assertEqual(len(self.consume(1)), 1)
        self.assertIn("127.0.0.1:%d/: Connection refused" % int(dead.rsplit(":", 1)[1].strip("/")),
                      log)
        self.assertNotIn("warn", log)

    def test_heartbeats_keep_an_idle_relay_connected(self):
        # With a 1 s heartbeat the broker drops a client that stays silent for ~2 s.
        r = self.relay(self.config(rabbitmq__connectionString=NODE.url() + "?heartbeat=1"))
        r.start()
        self.db.insert("user.login", {"first": True})
        self.drained()
        time.sleep(4)
        self.db.insert("user.login", {"first": False})
        self.drained()
        self.assertEqual(len(self.consume(2)), 2)
        self.assertNotIn("connection lost", r.log())

    def test_queue_survives_broker_restart(self):
        self.db.insert_many([("order.paid", {"i": i}) for i in range(100)])
        self.once(self.config())
        self.close_conn()
        NODE.stop()
        NODE.start()
        self.conn, self.ch = NODE.channel()
        got = self.consume(100)
        self.assertEqual([json.loads(b)["data"]["i"] for _, b in got], list(range(100)))


class TestFailures(RabbitCase):

    def test_unroutable_fails_then_replay_delivers(self):
        ex = "ex-" + self.queue
        self.db.insert("user.follow", {"a": 1})
        self.db.insert("other.event", {"b": 2})
        cf = self.config(rabbitmq__exchange=ex, relay__max_attempts=3)
        r = self.relay(cf)
        r.start()
        wait_for(lambda: len(self.db.failed_rows()) == 2, 20, what="both events to fail")
        failed = self.db.failed_rows()
        self.assertEqual(len(failed), 2)
        for row in failed:
            self.assertEqual(row["attempts"], 3)
            self.assertIn("unroutable: 312 NO_ROUTE", row["last_error"])
        # Rejections are summed up per batch in the log, not one line per event.
        lines = [l for l in r.log().splitlines() if "failed after the last attempt" in l]
        self.assertTrue(1 <= len(lines) <= 2, lines)
        self.assertIn("(see outbox_failed)", lines[0])
        # A binding appears; replay by hand (what outboxctl replay does).
        self.ch.queue_declare(self.queue, durable=True)
        self.ch.queue_bind(self.queue, ex, routing_key="user.#")
        self.ch.queue_bind(self.queue, ex, routing_key="other.#")
        self.db.query("UPDATE outbox_retry SET state = 'retry', attempts = 0, "
                      "next_attempt_at = 0")
        wait_for(lambda: not self.db.retry_rows(), 20, what="the replay to deliver")
        got = self.consume(2)
        self.assertEqual(sorted(p.type for p, _ in got), ["other.event", "user.follow"])

    def test_deleted_queue_is_declared_again(self):
        r = self.relay(self.config())
        r.start()
        self.db.insert("user.login", {"i": 0})
        self.drained()
        self.ch.queue_delete(self.queue)
        self.db.insert_many([("user.login", {"i": i}) for i in range(1, 21)])
        self.drained()
        got = self.consume(20)
        self.assertEqual(sorted(json.loads(b)["data"]["i"] for _, b in got),
                         list(range(1, 21)))
        self.assertEqual(self.db.retry_rows(), [], "a deleted queue cost attempts")
        self.assertIn("disappeared", r.log())

    def test_wrong_password(self):
        self.db.insert("user.create", {"u": 1})
        cf = self.config(rabbitmq__connectionString=NODE.url(password="s3cret-pw"))
        log = self.once(cf, expect=EXIT_UNREACHABLE)
        self.assertIn("login refused", log)
        self.assertIn("ACCESS_REFUSED", log)
        self.assertNotIn("s3cret-pw", log)
        self.assertEqual(self.db.retry_rows(), [])

    def test_wrong_vhost(self):
        self.db.insert("user.create", {"u": 1})
        log = self.once(self.config(rabbitmq__connectionString=NODE.url(vhost="nosuch")),
                        expect=EXIT_UNREACHABLE)
        self.assertIn("login refused", log)
        self.assertIn("vhost", log)
        self.assertIn("guest:***@", log)

    def test_unreachable_says_why(self):
        # The reason in the system's words (rabbitmq-c itself says only "a socket error
        # occurred"), and "cannot connect" once.
        from harness_rabbitmq import rabbit_port
        self.db.insert("user.create", {"u": 1})
        port = rabbit_port()
        for url, why in (("amqp://guest:guest@127.0.0.1:%d/" % port, "Connection refused"),
                         ("amqp://guest:guest@nosuch.invalid/", "cannot resolve host "
                          "'nosuch.invalid': ")):
            log = self.once(self.config(rabbitmq__connectionString=url),
                            expect=EXIT_UNREACHABLE)
            shown = url.replace("guest:guest", "guest:***").replace(".invalid/",
                                                                    ".invalid:5672/")
            line = [ln for ln in log.splitlines() if " warn: " in ln]
            self.assertEqual(len(line), 1, log)
            self.assertIn(" warn: sink rabbitmq: cannot connect: %s: %s" % (shown, why),
                          line[0])
            self.assertEqual(line[0].count("cannot connect"), 1, log)
        self.assertEqual(self.db.retry_rows(), [])

    def test_broker_outage_loses_nothing_and_burns_no_attempts(self):
        self.db.insert_many([("user.login", {"i": i}) for i in range(200)])
        r = self.relay(self.config())
        r.start()
        self.drained()
        self.close_conn()
        NODE.stop_app()
        try:
            self.db.insert_many([("user.login", {"i": i}) for i in range(200, 400)])
            time.sleep(1)
        finally:
            NODE.start_app()
        self.drained(timeout=60)
        self.assertEqual(self.db.retry_rows(), [])
        self.conn, self.ch = NODE.channel()
        got = self.consume(400, timeout=30)
        ids = {json.loads(b)["id"] for _, b in got}
        self.assertEqual(ids, {ev["id"] for ev in self.db.events()})
        self.assertIn("connection lost", r.log() + "")

    def depth(self):
        return self.ch.queue_declare(self.queue, passive=True).method.message_count

    def test_connection_closed_mid_batch(self):
        # The broker closes the relay's connection while a batch of 10,000 is being
        # confirmed. The relay has a user of its own whose password has changed since it
        # logged in, so its reconnects are refused until the password is put back.
        user, pw = "cut-user", "cut-pw"
        NODE.ctl("add_user", user, pw)
        self.addCleanup(NODE.ctl, "delete_user", user, check=False)
        NODE.ctl("set_permissions", "-p", "/", user, ".*", ".*", ".*")
        # A small confirm window keeps the relay publishing a batch for seconds, so that
        # the close (rabbitmqctl takes a second or two) lands inside one, not between two.
        r = self.relay(self.config(rabbitmq__connectionString=NODE.url(user, pw),
                                   rabbitmq__confirm_window=32, relay__batch_size=10000))
        r.start()
        self.db.insert("first", {})
        self.drained()   # connected, queue declared
        NODE.ctl("change_password", user, "changed")
        n = 20000
        self.db.insert_many([("e", {"i": i, "pad": "p" * 200}) for i in range(n)])
        wait_for(lambda: self.depth() >= 1000, 30, interval=0.005,
                 what="the batch to get going")
        NODE.ctl("close_all_user_connections", user, "cut by the test")
        r.wait_log("connection lost")
        r.wait_log("login refused")   # it tried again, and is kept out
        time.sleep(0.5)
        taken = self.depth()   # seqs 1..taken: one channel keeps them in order
        cursor = self.db.cursor("rabbitmq")
        self.assertLess(taken, n + 1, "the relay was through before the cut")
        self.assertEqual(self.db.retry_rows(), [], "the outage burned attempts")
        self.assertLess(cursor, taken + 1, "the cursor passed events RabbitMQ never got")
        print("# cut after %d of %d messages; cursor at %d during the outage"
              % (taken, n + 1, cursor))
        NODE.ctl("change_password", user, pw)
        self.drained(timeout=60)
        self.assertEqual(self.db.retry_rows(), [])
        got = self.consume(n + 1, timeout=60)
        self.assertEqual({json.loads(b)["id"] for _, b in got},
                         {ev["id"] for ev in self.db.events()})
        self.assertIn("connected again", r.log())

    def test_broker_that_stops_reading_times_out_and_sigterm_works(self):
        # A memory alarm makes RabbitMQ stop reading publishers' sockets. With more bytes
        # in flight than the socket buffers hold, rabbitmq-c's own publish waited without
        # end (and ignored SIGTERM); the sink's writes give up after timeout-ms.
        n = 300
        self.db.insert_many([("big.event", {"i": i, "pad": "x" * 100000}) for i in range(n)])
        NODE.ctl("set_vm_memory_high_watermark", "0.00001")
        try:
            r = self.relay(self.config(rabbitmq__timeout_ms=2000))
            r.start()
            r.wait_log("did not finish within 2000 ms", timeout=20)
            t0 = time.time()
            self.assertEqual(r.stop(timeout=15), 0)
            self.assertLess(time.time() - t0, 10, "SIGTERM took too long")
            self.assertEqual(self.db.retry_rows(), [], "the alarm burned attempts")
        finally:
            NODE.ctl("set_vm_memory_high_watermark", "0.4")
        self.once(self.config())
        got = self.consume(n, timeout=60)
        self.assertEqual({json.loads(b)["id"] for _, b in got},
                         {ev["id"] for ev in self.db.events()})

    def test_relay_killed_mid_batch_loses_nothing(self):
        n = 5000
        self.db.insert_many([("bulk.event", {"i": i}) for i in range(n)])
        r = self.relay(self.config(relay__batch_size=256))
        r.start()
        wait_for(lambda: (self.db.cursor("rabbitmq") or 0) > 0, 30, what="some progress")
        r.signal(signal.SIGKILL)
        r.wait(10)
        self.assertLess(self.db.cursor("rabbitmq"), self.db.max_seq(),
                        "the relay finished before it could be killed")
        self.once(self.config())
        got = self.consume(n, timeout=60)
        seen = [json.loads(b)["id"] for _, b in got]
        self.assertEqual(set(seen), {ev["id"] for ev in self.db.events()})
        print("# killed mid-run: %d events, %d messages, %d duplicates"
              % (n, len(seen), len(seen) - len(set(seen))))


if __name__ == "__main__":
    tap.main()
