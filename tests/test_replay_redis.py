#!/usr/bin/env python3
"""test_replay_redis.py: outboxctl against a running outboxd and a real redis-server.
Events that failed (nobody subscribed, require-subscribers on) reach a subscriber once
replayed, and replay --from-seq delivers delivered events again, without restarting the
relay. Skipped when redis-server is missing (a failure when OUTBOX_TEST_REQUIRE_SERVERS=1).
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tap  # noqa: E402
from harness import (EXIT_UNHEALTHY, OUTBOXCTL, OUTBOXD, BrokerCase,  # noqa: E402
                     OutboxDB, RedisServer, Subscriber, TempDir, wait_for)

tap.require_programs("redis-server", OUTBOXD, OUTBOXCTL)


class TestReplayToRedis(BrokerCase):
    def setUp(self):
        self.tmp = TempDir("replay")
        self.addCleanup(self.tmp.cleanup)
        self.redis = RedisServer(self.tmp)
        self.redis.start()
        self.addCleanup(self.redis.stop)
        self.db = OutboxDB(self.tmp.join("app.db"))
        self.relay_proc = self.relay(self.make_config({
            "outbox.database": self.db.path, "system.queue-adapter": "redis",
            "redis.port": self.redis.port, "redis.require-subscribers": True,
            "relay.max-attempts": 2}))
        self.relay_proc.start()

    def outboxctl(self, *args):
        p = subprocess.run([OUTBOXCTL, "-d", self.db.path] + list(args),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual((p.returncode, p.stderr), (0, ""), args)
        return p.stdout

    def subscriber(self):
        s = Subscriber(self.redis, ["liquid"])
        self.addCleanup(s.close)
        return s

    def test_failed_events_reach_a_subscriber_once_replayed(self):
        ids = [self.db.insert("user.login", {"i": i})[1] for i in range(3)]
        wait_for(lambda: len(self.db.failed_rows()) == 3, 20, what="3 failed events")
        status = subprocess.run([OUTBOXCTL, "-d", self.db.path, "status"],
                                capture_output=True, text=True)
        self.assertEqual(status.returncode, EXIT_UNHEALTHY, status.stdout)
        failed = [json.loads(x) for x in self.outboxctl("ls", "--state", "failed",
                                                       "--json").splitlines()]
        self.assertEqual([f["id"] for f in failed], ids)
        self.assertEqual({f["last_error"] for f in failed}, {"no subscribers on channel liquid"})
        sub = self.subscriber()
        self.assertEqual(self.outboxctl("replay", "--failed"), "replayed 3 events\n")
        got = [json.loads(m["data"])["id"] for m in sub.wait(3, timeout=20)]
        self.assertEqual(got, ids)
        wait_for(lambda: self.db.retry_rows() == [], 10, what="retry rows to go")
        self.assertEqual(subprocess.run([OUTBOXCTL, "-d", self.db.path, "status"],
                                        capture_output=True).returncode, 0)

    def test_from_seq_delivers_again(self):
        sub = self.subscriber()
        ids = [self.db.insert("order.paid", {"i": i})[1] for i in range(4)]
        self.assertEqual([json.loads(m["data"])["id"] for m in sub.wait(4, timeout=20)], ids)
        wait_for(lambda: self.db.cursor("redis") == 4, 10, what="the cursor to reach 4")
        self.assertEqual(self.outboxctl("replay", "--from-seq", "3"),
                         "replayed 0 events; rewound 1 sink to seq 3\n")
        got = [json.loads(m["data"])["id"] for m in sub.wait(6, timeout=20)]
        self.assertEqual(got, ids + ids[2:])
        self.assertEqual(self.db.retry_rows(), [])


if __name__ == "__main__":
    tap.main()
