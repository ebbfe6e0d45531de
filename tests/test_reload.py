#!/usr/bin/env python3
"""test_reload.py: SIGHUP reloads outboxd's configuration while a producer commits, with a
real redis-server and subscriber: a changed channel, a removed sink, a sink added with
start-at latest, a batch size, and a broken file that is refused while the old
configuration keeps running. Every event is counted at the subscriber: none lost, none
published twice. Skipped when redis-server is missing (a failure when
OUTBOX_TEST_REQUIRE_SERVERS=1).
"""

import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tap  # noqa: E402
from harness import (OUTBOXD, BrokerCase, OutboxDB, Producer, RedisServer,  # noqa: E402
                     Subscriber, TempDir, wait_for)

tap.require_programs("redis-server", OUTBOXD)



class TestReload(BrokerCase):
    def setUp(self):
        self.tmp = TempDir("reload")
        self.addCleanup(self.tmp.cleanup)
        self.redis = RedisServer(self.tmp)
        self.redis.start()
        self.addCleanup(self.redis.stop)
        self.db = OutboxDB(self.tmp.join("app.db"))
        self.sub = Subscriber(self.redis, patterns=["*"])
        self.addCleanup(self.sub.close)

    def config(self, sinks, **keys):
        cf = self.make_config({"outbox.database": self.db.path, "sinks": sinks}, **keys)
        return cf

    def redis_sink(self, channel, **more):
        return dict({"type": "redis", "port": self.redis.port, "channel-name": channel},
                    **more)

    def write(self, relay, config=None, text=None):
        with open(relay.config_path, "w") as f:
            f.write(text if text is not None else json.dumps(config, indent=1))

    def reload(self, relay, expect):
        """SIGHUP, then wait for the count-th line containing expect."""
        before = relay.log().count(expect)
        relay.signal(signal.SIGHUP)
        wait_for(lambda: relay.log().count(expect) > before, 10,
                 what="%r in the log after SIGHUP" % expect)

    def by_channel(self):
        out = {}
        for m in self.sub.received():
            out.setdefault(m["channel"], []).append(json.loads(m["data"])["data"]["i"])
        return out

    def test_sighup_reopens_the_log_file(self):
        """logrotate's way: the log file is renamed, SIGHUP, and the relay writes to a new
        file at the path; lines written meanwhile went to the renamed one."""
        path = self.tmp.join("outboxd.log")

        def text(p):
            if not os.path.exists(p):
                return ""
            with open(p) as f:
                return f.read()

        relay = self.relay(self.config({"one": self.redis_sink("one")}),
                           args=["--log-file", path])
        relay.start()
        wait_for(lambda: "relaying" in text(path), 10,
                 what="the relay's first lines in its log file")
        os.rename(path, path + ".1")
        relay.signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in text(path), 10,
                 what="the reload's line in a new log file")
        self.assertNotIn("configuration reloaded", text(path + ".1"))
        self.assertIn("relaying", text(path + ".1"))
        # Still relaying after the reopen.
        self.db.insert("after.rotate", "{\"i\":0}")
        wait_for(lambda: len(self.sub.received()) == 1, 10, what="the event after SIGHUP")

    def test_reload_under_load_loses_nothing(self):
        relay = self.relay(self.config({"one": self.redis_sink("one"),
                                        "two": self.redis_sink("two")}))
        relay.start()
        producer = Producer(self.db, per_tx=5, pause=0.005)
        producer.start()
        self.addCleanup(producer.stop)
        wait_for(lambda: len(self.sub.received()) >= 200, 20, what="200 messages")

        # Change one's channel, drop two, add three from the latest event, a new batch size.
        self.write(relay, self.config({
            "one": self.redis_sink("one-b"),
            "three": self.redis_sink("three", **{"start-at": "latest"})},
            relay__batch_size=7))
        self.reload(relay, "configuration reloaded")
        log = relay.log()
        self.assertIn("configuration reloaded (2 sinks, batch 7)", log)
        self.assertIn("sink one: changed, now redis://127.0.0.1:%d/0 channel one-b"
                      % self.redis.port, log)
        self.assertIn("sink two: removed from the configuration: stopped", log)
        added = re.search(r"sink three: added: \S+ channel three, from seq (\d+)", log)
        self.assertIsNotNone(added, log)
        three_from = int(added.group(1))
        self.assertGreater(three_from, 0)

        # A file that does not parse is refused, naming the place; the relay goes on.
        wait_for(lambda: len(self.by_channel().get("one-b", [])) >= 50, 20,
                 what="messages on one-b")
        self.write(relay, text='{"outbox.database": "%s",\n "sinks": {},\n}\n' % self.db.path)
        self.reload(relay, "reload refused")
        self.assertRegex(relay.log(), r"reload refused, the running configuration stays: "
                         r"\S+relay-\d+\.json:\d+:\d+: invalid JSON")
        seen = len(self.sub.received())
        wait_for(lambda: len(self.sub.received()) > seen + 50, 20,
                 what="messages after the refused reload")

        producer.stop()
        last = self.db.max_seq()
        wait_for(lambda: self.db.cursor("one") == last and self.db.cursor("three") == last,
                 30, what="one and three to catch up")
        got = self.by_channel()
        everything = list(range(producer.count))
        # one: every event exactly once, on the old channel then on the new one.
        self.assertEqual(got["one"] + got["one-b"], everything)
        # two: stopped where it was; its row stays.
        two = self.db.cursor("two")
        self.assertIsNotNone(two)
        self.assertEqual(got["two"], everything[:two])
        # three: only what was committed after it was added, each once.
        self.assertEqual(got["three"], everything[three_from:])
        self.assertEqual(self.db.retry_rows(), [])

    def test_invalid_configuration_keeps_the_old_one(self):
        relay = self.relay(self.config({"one": self.redis_sink("one")}))
        relay.start()
        relay.wait_log("sink one:")
        cases = [
            ({"outbox.database": self.db.path, "sinks": {"x": {"type": "kafka"}}},
             'sinks.x: unknown sink type "kafka" (use stdout, redis, rabbitmq, nats, mqtt or http)'),
            ({"outbox.database": self.db.path, "relay.batch-size": 0},
             "relay.batch-size: 0 is out of range (1 to 10000)"),
            ({"outbox.database": self.tmp.join("other.db")},
             "outbox.database changed to %s (restart outboxd to relay another database)"
             % self.tmp.join("other.db")),
        ]
        for config, message in cases:
            with self.subTest(message=message):
                self.write(relay, config)
                self.reload(relay, message)
                self.assertIn("reload refused, the running configuration stays: ",
                              relay.log())
        self.db.insert("tick", {"i": 0})
        got = self.sub.wait(1, timeout=10)
        self.assertEqual(got[0]["channel"], "one")
        self.assertNotIn("configuration reloaded", relay.log())


if __name__ == "__main__":
    tap.main()
