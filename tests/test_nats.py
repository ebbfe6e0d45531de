#!/usr/bin/env python3
"""test_nats.py: outboxd against a real nats-server with JetStream.

Each test starts its own `nats-server -js` (own store directory, free port) and its own
database. What is checked is what the stream holds (every event once, in order, with its
id as Nats-Msg-Id and its headers) and what the relay recorded.
Skipped when nats-server is missing (a failure when OUTBOX_TEST_REQUIRE_SERVERS=1).
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tap  # noqa: E402
from harness import (EXIT_CONFIG, EXIT_UNREACHABLE, OUTBOXCTL, OUTBOXD,  # noqa: E402
                     BrokerCase, OutboxDB, TempDir, wait_for)
from harness_nats import Nats, NatsServer  # noqa: E402

tap.require_programs("nats-server", OUTBOXD)


class NatsCase(BrokerCase):

    def setUp(self):
        self.tmp = TempDir("nats")
        self.addCleanup(self.tmp.cleanup)
        self.nats = NatsServer(self.tmp)
        self.nats.start()
        self.addCleanup(self.nats.stop)
        self.db = OutboxDB(self.tmp.join("app.db"))

    def config(self, **keys):
        return self.make_config({"outbox.database": self.db.path,
                                 "system.queue-adapter": "nats",
                                 "nats.url": self.nats.url()}, **keys)

    def assert_envelope(self, raw, event):
        env = json.loads(raw)
        want = {"id": event["id"], "name": event["name"],
                "data": json.loads(event["payload"])}
        if event["headers"] is not None:
            want["metadata"] = json.loads(event["headers"])
        self.assertEqual(env, want)

    def assert_stream_has_each_once(self, stream, events):
        """The stream holds exactly events, in seq order, each with its id as Nats-Msg-Id."""
        msgs = self.nats.stream_messages(stream)
        self.assertEqual([h["Nats-Msg-Id"] for _, h, _ in msgs], [e["id"] for e in events])
        for (subject, _, data), ev in zip(msgs, events):
            self.assertEqual(subject, ev["name"])
            self.assert_envelope(data, ev)
        return msgs


class TestJetStream(NatsCase):

    def test_delivery_with_headers(self):
        self.nats.stream_create("EVENTS", ["user.>", "order.*"])
        rows = []
        for i in range(40):
            headers = {"trace": "t%d" % i, "n": i, "ok": True} if i % 3 == 0 else None
            rows.append(("user.login" if i % 2 else "order.created", {"i": i}, headers))
        self.db.insert_many(rows)
        self.once(self.config())
        events = self.db.events()
        msgs = self.assert_stream_has_each_once("EVENTS", events)
        for (_, h, _), ev in zip(msgs, events):
            extra = {k: v for k, v in h.items() if k != "Nats-Msg-Id"}
            if ev["headers"] is None:
                self.assertEqual(extra, {})
            else:
                want = {k: v if isinstance(v, str) else json.dumps(v)
                        for k, v in json.loads(ev["headers"]).items()}
                self.assertEqual(extra, want)
        self.assertEqual(self.db.cursor("nats"), self.db.max_seq())
        self.assertEqual(self.db.retry_rows(), [])

    def test_subject_template_and_sinks_object(self):
        self.nats.stream_create("APP", ["app.>"])
        self.db.insert_many([("user.login", {"a": 1}), ("order.paid", {"a": 2})])
        cf = self.make_config({"outbox.database": self.db.path, "sinks": {
            "js": {"type": "nats", "url": [self.nats.url()], "subject": "app.{name}.v1"}}})
        log = self.once(cf)
        self.assertIn("sink js: %s jetstream subject app.{name}.v1" % self.nats.url(), log)
        self.assertEqual([s for s, _, _ in self.nats.stream_messages("APP")],
                         ["app.user.login.v1", "app.order.paid.v1"])

    def test_no_stream_is_a_rejection_saying_what_to_do(self):
        self.db.insert("user.login", {"x": 1})
        self.once(self.config(relay__max_attempts=1))
        self.assertEqual(
            [(r["state"], r["attempts"], r["last_error"]) for r in self.db.retry_rows()],
            [("failed", 1, "no JetStream stream captures subject user.login: create one "
              "whose subjects match it (see outbox(5))")])
        # Once the stream exists, a replay delivers it.
        self.nats.stream_create("EVENTS", ["user.>"])
        subprocess.run([OUTBOXCTL, "-d", self.db.path, "replay", "--failed"], check=True,
                       capture_output=True)
        self.once(self.config())
        self.assert_stream_has_each_once("EVENTS", self.db.events())

    def test_pub_ack_error_naming_the_message_is_a_rejection(self):
        self.nats.stream_create("SMALL", ["user.>"], max_msg_size=300)
        self.db.insert_many([("user.small", {"x": 1}), ("user.big", {"x": "y" * 400}),
                             ("user.small", {"x": 2})])
        self.once(self.config(relay__max_attempts=1))
        rows = self.db.retry_rows()
        self.assertEqual([(r["seq"], r["state"]) for r in rows], [(2, "failed")])
        self.assertEqual(rows[0]["last_error"],
                         "subject user.big: message size exceeds maximum allowed "
                         "(JetStream error 10054)")
        self.assertEqual(self.nats.stream_count("SMALL"), 2)

    def test_replayed_events_are_dropped_as_duplicates(self):
        self.nats.stream_create("EVENTS", ["user.>"], duplicate_window_s=120)
        self.db.insert_many([("user.e%d" % i, {"i": i}) for i in range(25)])
        self.once(self.config())
        self.assertEqual(self.nats.stream_count("EVENTS"), 25)
        # Rewind the sink's cursor: every event is published again, as after a crash.
        r = subprocess.run([OUTBOXCTL, "-d", self.db.path, "replay", "--from-seq", "1"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.db.cursor("nats"), 0)
        log = self.once(self.config())
        self.assertIn("the stream already had 25 of 25 messages (Nats-Msg-Id): dropped as "
                      "duplicates, counted delivered", log)
        self.assertEqual(self.db.cursor("nats"), self.db.max_seq())
        self.assertEqual(self.db.retry_rows(), [])
        self.assert_stream_has_each_once("EVENTS", self.db.events())

    def test_server_killed_and_restarted_loses_and_duplicates_nothing(self):
        self.nats.stream_create("EVENTS", ["load.>"], duplicate_window_s=120)
        relay = self.relay(self.config(relay__batch_size=64, nats__timeout_ms=2000))
        relay.start()
        stop = threading.Event()
        total = [0]

        def produce():
            while not stop.is_set() and total[0] < 3000:
                self.db.insert_many([("load.x", {"n": total[0] + i}) for i in range(50)])
                total[0] += 50
                time.sleep(0.01)
        t = threading.Thread(target=produce)
        t.start()
        try:
            for _ in range(3):
                time.sleep(0.4)
                self.nats.kill()
                time.sleep(0.3)
                self.nats.start()
        finally:
            t.join()
        top = self.db.max_seq()
        wait_for(lambda: self.db.cursor("nats") == top, 60,
                 what="the relay to deliver everything after the restarts")
        log = relay.log()
        self.assertIn("the connection closed", log)
        self.assertEqual(self.db.retry_rows(), [])
        events = self.db.events()
        self.assertEqual(len(events), 3000)
        self.assertEqual(self.nats.stream_count("EVENTS"), 3000)
        ids = [h["Nats-Msg-Id"] for _, h, _ in self.nats.stream_messages("EVENTS")]
        self.assertEqual(sorted(ids), sorted(e["id"] for e in events))

    def test_stalled_server_leaves_messages_unsent(self):
        self.nats.stream_create("EVENTS", ["user.>"])
        relay = self.relay(self.config(nats__timeout_ms=300))
        relay.start()
        self.db.insert("user.first")
        wait_for(lambda: self.db.cursor("nats") == 1, 10, what="the first event")
        self.nats.pause()
        try:
            self.db.insert_many([("user.a", {"i": i}) for i in range(5)])
            try:
                relay.wait_log("no PubAck within 300 ms (nats.timeout-ms)")
            except AssertionError:
                raise AssertionError(relay.log())
        finally:
            self.nats.resume()
        top = self.db.max_seq()
        wait_for(lambda: self.db.cursor("nats") == top, 30, what="delivery after the stall")
        self.assertEqual(self.db.retry_rows(), [])  # no attempt was counted
        self.assert_stream_has_each_once("EVENTS", self.db.events())

    def test_stalled_server_with_a_full_socket_leaves_messages_unsent(self):
        """A stopped server stops reading: once the socket's buffers are full, nats.c's
        writes (the relay's own publish call, or its flusher holding the connection's
        lock) block. Without a write deadline they blocked until the server came back,
        and the relay said nothing at all."""
        self.nats.stream_create("EVENTS", ["user.>"])
        relay = self.relay(self.config(nats__timeout_ms=300, relay__batch_size=64))
        relay.start()
        self.db.insert("user.first")
        wait_for(lambda: self.db.cursor("nats") == 1, 10, what="the first event")
        self.nats.pause()
        try:
            # 64 x 200 kB: far more than the kernel buffers of a loopback connection.
            self.db.insert_many([("user.big", {"i": i, "x": "y" * 200000})
                                 for i in range(64)])
            try:
                log = relay.wait_log("(reconnecting)")
            except AssertionError:
                raise AssertionError(relay.log())
        finally:
            self.nats.resume()
        self.assertIn("jetstream subject {name}: a write did not finish within 300 ms "
                      "(nats.timeout-ms): the server is not reading (reconnecting)", log)
        top = self.db.max_seq()
        wait_for(lambda: self.db.cursor("nats") == top, 30, what="delivery after the stall")
        self.assertEqual(self.db.retry_rows(), [])  # no attempt was counted
        self.assert_stream_has_each_once("EVENTS", self.db.events())

    def test_unreachable_server_once(self):
        self.nats.stop()
        self.db.insert("user.login")
        relay = self.relay(self.config())
        rc, log = relay.once()
        self.assertEqual(rc, EXIT_UNREACHABLE, log)
        self.assertIn("nats://127.0.0.1:%d" % self.nats.port, log)
        self.assertEqual(self.db.retry_rows(), [])


class TestCoreNats(NatsCase):

    def test_publish_and_flush_reach_a_subscriber(self):
        sub = Nats(self.nats.port)
        self.addCleanup(sub.close)
        sub.subscribe("ev.>")
        self.db.insert_many([("user.%d" % i, {"i": i}, {"h": "v"}) for i in range(10)])
        log = self.once(self.config(nats__jetstream=False, nats__subject="ev.{name}"))
        self.assertIn("core subject ev.{name}", log)
        events = self.db.events()
        for ev in events:
            subject, headers, data = sub.read()
            self.assertEqual(subject, "ev." + ev["name"])
            self.assertEqual(headers, {"h": "v", "Nats-Msg-Id": ev["id"]})
            self.assert_envelope(data, ev)
        self.assertEqual(self.db.cursor("nats"), self.db.max_seq())


class TestConfigAndSecrets(NatsCase):

    def bad(self, expect, **keys):
        rc, log = self.relay(self.config(**keys)).once()
        self.assertEqual(rc, EXIT_CONFIG, log)
        self.assertIn(expect, log)

    def test_config_errors(self):
        self.bad('nats.url: expected a nats:// or tls:// URL, got "http://h:4222"',
                 nats__url="http://h:4222")
        self.bad('nats.subject: "a.*" is not a subject to publish to', nats__subject="a.*")
        self.bad("nats: a user is given without a password", nats__user="u")
        self.bad("nats: tls-cert and tls-key go together", nats__tls_cert="/x.pem")
        self.bad("nats.max-pending: ", nats__max_pending=0)

    def test_password_in_url_is_never_shown(self):
        self.nats.stop()
        self.nats = NatsServer(self.tmp, port=self.nats.port, name="nats-auth",
                               user="relay", password="s3cret-pw")
        self.nats.start()
        self.db.insert("user.login")
        url = "nats://relay:s3cret-pw@127.0.0.1:%d" % self.nats.port
        relay = self.relay(None, ["--db", self.db.path, "--nats", url])
        rc, log = relay.once()
        self.assertNotIn("s3cret-pw", log)
        self.assertIn("nats://relay:***@127.0.0.1:%d" % self.nats.port, log)
        self.assertIn("the --nats URL on the command line holds a password", log)
        # No stream: rejected, but we got in (a wrong password would be unreachable).
        self.assertEqual(rc, 0, log)
        wrong = url.replace("s3cret-pw", "wrong-pw")
        rc, log = self.relay(None, ["--db", self.db.path, "--nats", wrong]).once()
        self.assertEqual(rc, EXIT_UNREACHABLE, log)
        self.assertNotIn("wrong-pw", log)
        self.assertIn("uthorization", log)

    def test_env_password(self):
        """OUTBOXD_NATS_PASSWORD: the password of the user in --nats nats://user@host."""
        self.nats.stop()
        self.nats = NatsServer(self.tmp, port=self.nats.port, name="nats-env",
                               user="relay", password="s3cret-pw")
        self.nats.start()
        self.nats.stream_create("EVENTS", ["user.>"])
        self.db.insert("user.login")
        url = "nats://relay@127.0.0.1:%d" % self.nats.port
        rc, log = self.relay_env(None, ["--db", self.db.path, "--nats", url],
                                 OUTBOXD_NATS_PASSWORD="s3cret-pw").once()
        self.assertEqual(rc, 0, log)
        self.assertNotIn("s3cret-pw", log)
        self.assertNotIn("holds a password", log)
        self.assertEqual(self.nats.stream_count("EVENTS"), 1)
        relay = self.relay_env(None, ["--db", self.db.path, "--nats", url],
                               OUTBOXD_NATS_PASSWORD="wrong-pw")
        self.db.insert("user.login")
        rc, log = relay.once()
        self.assertEqual(rc, EXIT_UNREACHABLE, log)
        self.assertNotIn("wrong-pw", log)
        # Without a user anywhere, the password is refused with a hint.
        rc, log = self.relay_env(None, ["--db", self.db.path, "--nats", self.nats.url()],
                                 OUTBOXD_NATS_PASSWORD="s3cret-pw").once()
        self.assertEqual(rc, EXIT_CONFIG, log)
        self.assertIn("a password is given without a user (user, or nats://user@host", log)


if __name__ == "__main__":
    tap.main()
