#!/usr/bin/env python3
"""test_mqtt.py: outboxd against a real mosquitto broker.

Each test starts its own mosquitto (own configuration and persistence directory, free
port) and its own database. What is checked is what a QoS 1 or 2 subscriber with a
persistent session receives, and what the relay recorded.
Skipped when mosquitto is missing (a failure when OUTBOX_TEST_REQUIRE_SERVERS=1).
"""

import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tap  # noqa: E402
from harness import (EXIT_CONFIG, EXIT_UNREACHABLE, OUTBOXD,  # noqa: E402
                     BrokerCase, OutboxDB, TempDir, wait_for)
from harness_mqtt import Mosquitto  # noqa: E402

tap.require_programs("mosquitto", OUTBOXD)


class MqttCase(BrokerCase):
    acl = None

    def setUp(self):
        self.tmp = TempDir("mqtt")
        self.addCleanup(self.tmp.cleanup)
        self.broker = Mosquitto(self.tmp, acl=self.acl)
        self.broker.start()
        self.addCleanup(self.broker.stop)
        self.db = OutboxDB(self.tmp.join("app.db"))

    def config(self, **keys):
        return self.make_config({"outbox.database": self.db.path,
                                 "system.queue-adapter": "mqtt",
                                 "mqtt.url": self.broker.url()}, **keys)

    def subscriber(self, client_id="consumer", topic="#", **kw):
        s = self.broker.subscriber(client_id, topic, **kw)
        self.addCleanup(s.close)
        return s

    def assert_envelope(self, raw, event):
        want = {"id": event["id"], "name": event["name"],
                "data": json.loads(event["payload"])}
        if event["headers"] is not None:
            want["metadata"] = json.loads(event["headers"])
        self.assertEqual(json.loads(raw), want)


class TestDelivery(MqttCase):

    def test_qos1_to_a_persistent_session_that_was_offline(self):
        # The consumer's session exists, then it goes away: the broker queues for it.
        self.subscriber("consumer", "ev/#").disconnect()
        self.db.insert_many([("user.%d" % i, {"i": i}, {"h": i} if i % 2 else None)
                             for i in range(30)])
        log = self.once(self.config(mqtt__topic="ev/{name}"))
        self.assertIn("sink mqtt: %s topic ev/{name} qos 1" % self.broker.url(), log)
        self.assertIn("as outboxd-mqtt (p2, c0, k60)", self.broker.broker_log())
        sub = self.subscriber("consumer", "ev/#")
        msgs = sub.wait(30)
        events = self.db.events()
        self.assertEqual([m["topic"] for m in msgs], ["ev/" + e["name"] for e in events])
        for m, ev in zip(msgs, events):
            self.assertEqual(m["qos"], 1)
            self.assert_envelope(m["payload"], ev)
        self.assertEqual(self.db.cursor("mqtt"), self.db.max_seq())
        self.assertEqual(self.db.retry_rows(), [])

    def test_qos2(self):
        sub = self.subscriber("consumer2", "#", qos=2)
        self.db.insert_many([("a", {"i": i}) for i in range(10)])
        self.once(self.config(mqtt__qos=2, mqtt__client_id="relay-q2"))
        msgs = sub.wait(10)
        self.assertEqual([m["qos"] for m in msgs], [2] * 10)
        self.assertEqual([json.loads(m["payload"])["data"]["i"] for m in msgs],
                         list(range(10)))
        self.assertIn("as relay-q2 ", self.broker.broker_log())

    def test_mqttv5_headers_become_user_properties(self):
        sub = self.subscriber("c5", "#", v5=True)
        self.db.insert("user.login", {"x": 1}, {"trace": "abc", "n": 7})
        self.db.insert("user.logout", {"x": 2})
        self.once(self.config(mqtt__protocol="mqttv5"))
        msgs = sub.wait(2)
        self.assertEqual(msgs[0]["props"]["content_type"], "application/json")
        self.assertEqual(msgs[0]["props"]["user"], [("trace", "abc"), ("n", "7")])
        self.assertEqual(msgs[1]["props"]["user"], [])

    def test_broker_restart_loses_nothing(self):
        sub = self.subscriber("consumer", "load/#")
        relay = self.relay(self.config(relay__batch_size=50, mqtt__topic="load/{name}",
                                       mqtt__timeout_ms=2000))
        relay.start()
        done = threading.Event()

        def produce():
            for k in range(40):
                self.db.insert_many([("x", {"n": k * 25 + i}) for i in range(25)])
                time.sleep(0.02)
            done.set()
        t = threading.Thread(target=produce)
        t.start()
        time.sleep(0.3)
        sub.disconnect()
        self.broker.stop()    # SIGTERM: mosquitto saves its sessions
        time.sleep(0.5)
        self.broker.start()
        t.join()
        top = self.db.max_seq()
        wait_for(lambda: self.db.cursor("mqtt") == top, 60, what="delivery after restart")
        self.assertIn("the connection was lost", relay.log())
        before = sub.messages
        sub = self.subscriber("consumer", "load/#")
        want = sorted(e["id"] for e in self.db.events())
        got = lambda: set(json.loads(m["payload"])["id"]  # noqa: E731
                          for m in before + sub.messages)
        try:
            wait_for(lambda: got() >= set(want), 20, what="every event at the subscriber")
        except AssertionError:
            raise AssertionError("%d of %d events missing" % (len(set(want) - got()),
                                                              len(want)))
        self.assertEqual(self.db.retry_rows(), [])


class TestRefusals(MqttCase):
    acl = "topic readwrite ev/#\n"

    def test_mqttv5_reason_code_is_a_rejection(self):
        sub = self.subscriber("c", "ev/#", v5=True)
        self.db.insert_many([("ev/ok", {"i": 1}), ("secret/x", {"i": 2}), ("ev/ok2", {})])
        self.once(self.config(mqtt__protocol="mqttv5", relay__max_attempts=1))
        rows = self.db.retry_rows()
        self.assertEqual([(r["seq"], r["state"], r["last_error"]) for r in rows],
                         [(2, "failed", "topic secret/x: the broker refused it: Not "
                           "authorized (reason code 0x87)")])
        # After the refusal mosquitto 2.0.11 drops the connection: ev/ok2, whose PUBACK
        # had not come, is published again (at least once).
        msgs = sub.wait(2)
        self.assertEqual(sorted(set(m["topic"] for m in msgs)), ["ev/ok", "ev/ok2"])


class TestConfig(MqttCase):

    def bad(self, expect, **keys):
        rc, log = self.relay(self.config(**keys)).once()
        self.assertEqual(rc, EXIT_CONFIG, log)
        self.assertIn(expect, log)

    def test_config_errors(self):
        self.bad("mqtt.qos: 0 cannot confirm delivery: use 1 (at least once) or 2",
                 mqtt__qos=0)
        self.bad('mqtt.url: expected mqtt://[user[:password]@]host[:port] or mqtts://..., '
                 'got "tcp://u:***@h"', mqtt__url="tcp://u:pw@h")
        self.bad('mqtt.url: no host, or a bad port, in "mqtt://h:99999"',
                 mqtt__url="mqtt://h:99999")
        self.bad('mqtt.topic: "a/+/b" is not a topic to publish to', mqtt__topic="a/+/b")
        self.bad('mqtt.protocol: ', mqtt__protocol="mqttv3")

    def test_unreachable_and_password_hidden(self):
        self.broker.stop()
        self.db.insert("a")
        url = "mqtt://u:pw-secret@127.0.0.1:%d" % self.broker.port
        rc, log = self.relay(None, ["--db", self.db.path, "--mqtt", url]).once()
        self.assertEqual(rc, EXIT_UNREACHABLE, log)
        self.assertNotIn("pw-secret", log)
        self.assertIn("mqtt://u:***@127.0.0.1:%d topic {name} qos 1" % self.broker.port, log)

    def test_env_password(self):
        """OUTBOXD_MQTT_PASSWORD: the password of the user in --mqtt mqtt://user@host."""
        self.broker.stop()
        self.broker = Mosquitto(self.tmp, port=self.broker.port)
        pwfile = os.path.join(self.broker.dir, "passwd")
        subprocess.run(["mosquitto_passwd", "-c", "-b", pwfile, "relay", "pw-secret"],
                       check=True, capture_output=True)
        os.chmod(pwfile, 0o600)
        with open(self.broker.conf) as f:
            conf = f.read().replace("allow_anonymous true", "allow_anonymous false")
        with open(self.broker.conf, "w") as f:
            f.write(conf + "password_file %s\n" % pwfile)
        self.broker.start()
        self.db.insert("a")
        url = "mqtt://relay@127.0.0.1:%d" % self.broker.port
        rc, log = self.relay_env(None, ["--db", self.db.path, "--mqtt", url],
                                 OUTBOXD_MQTT_PASSWORD="pw-secret").once()
        self.assertEqual(rc, 0, log)
        self.assertNotIn("pw-secret", log)
        self.assertNotIn("holds a password", log)
        c = self.db.connect()
        self.assertEqual(c.execute("SELECT count(*) FROM outbox_backlog").fetchone()[0], 0)
        c.close()
        self.db.insert("b")
        rc, log = self.relay_env(None, ["--db", self.db.path, "--mqtt", url],
                                 OUTBOXD_MQTT_PASSWORD="wrong-pw").once()
        self.assertEqual(rc, EXIT_UNREACHABLE, log)
        self.assertNotIn("wrong-pw", log)
        self.assertIn("refused", log)


if __name__ == "__main__":
    tap.main()
