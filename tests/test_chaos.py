#!/usr/bin/env python3
"""test_chaos.py: a short run of the chaos suite (tests/chaos/chaos.py) per broker.

Each test runs the harness in a process of its own for OUTBOX_CHAOS_DURATION seconds
(default 45) against Redis streams or RabbitMQ, and OUTBOX_CHAOS_DURATION_NEW seconds
(default 25, at most OUTBOX_CHAOS_DURATION) against NATS JetStream, MQTT (mosquitto) and
an HTTP receiver, with every fault kind (relay SIGKILL, broker kill and stall, write-lock
holds, full disk), and asserts: no committed event lost, no rolled-back event published,
nothing left failed, no sanitizer report, and at least one fault of each kind injected
(disk-full only where a tmpfs can be mounted). For NATS also: no duplicate in the stream
(Nats-Msg-Id). The seed is random and printed; OUTBOX_CHAOS_SEED=N replays one. `make
chaos-long` runs it longer.
Skipped when a server is missing (a failure when OUTBOX_TEST_REQUIRE_SERVERS=1).
"""

import json
import os
import random
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "chaos"))

import tap  # noqa: E402
from harness import (BUILDDIR, OUTBOXD, OutboxDB, RedisServer, Relay,  # noqa: E402
                     TempDir, wait_for)
from harness_rabbitmq import RABBIT_BIN  # noqa: E402
from chaos import DiskFull  # noqa: E402

tap.require_programs(OUTBOXD)

CHAOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "chaos", "chaos.py")
DURATION = float(os.environ.get("OUTBOX_CHAOS_DURATION", "45"))
# The newer brokers get shorter runs, to keep make check's chaos part near 4 minutes
# (and no longer than the others when OUTBOX_CHAOS_DURATION is cut, as distcheck does).
DURATION_NEW = float(os.environ.get("OUTBOX_CHAOS_DURATION_NEW", min(DURATION, 25.0)))
SEED = int(os.environ.get("OUTBOX_CHAOS_SEED") or random.SystemRandom().randrange(1000000))
KINDS = ("relay-kill", "broker-kill", "broker-stall", "write-hold", "disk-full")


class TestChaos(unittest.TestCase):

    def chaos(self, broker, duration=DURATION):
        tmp = TempDir("chaos-test")
        self.addCleanup(tmp.cleanup)
        out = tmp.join("result.json")
        print("# %s: seed %d, %.0fs (replay: OUTBOX_CHAOS_SEED=%d, or %s --builddir %s "
              "--broker %s --duration %.0f --seed %d)"
              % (broker, SEED, duration, SEED, CHAOS, BUILDDIR, broker, duration, SEED))
        sys.stdout.flush()
        p = subprocess.Popen([sys.executable, CHAOS, "--builddir", BUILDDIR, "--broker", broker,
                              "--duration", str(duration), "--seed", str(SEED),
                              "--drain-timeout", "120", "--json", out],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            text, _ = p.communicate(timeout=duration + 420)
        except subprocess.TimeoutExpired:
            # SIGTERM first: chaos.py then stops its servers and unmounts its tmpfs.
            p.terminate()
            try:
                text, _ = p.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                p.kill()
                text, _ = p.communicate()
            text += "\n(chaos.py did not finish within %.0fs)" % (duration + 420)
        for line in text.splitlines():
            print("# " + line)
        sys.stdout.flush()
        self.assertTrue(os.path.exists(out), "chaos.py wrote no results (exit %d)"
                        % p.returncode)
        with open(out) as f:
            r = json.load(f)[0]
        self.assertEqual(r.get("problems"), [], "chaos.py found problems")
        self.assertEqual(p.returncode, 0)
        self.assertGreater(r["committed"], 1000, "too few events to mean anything")
        self.assertEqual(r["lost"], 0, "committed events lost")
        self.assertEqual(r["rolled_back_published"], 0, "rolled-back events published")
        self.assertEqual(r["unknown_received"], 0)
        self.assertEqual(r["failed"], 0, "events left failed")
        self.assertIsNone(r["sanitizer_report"])
        self.assertGreater(r["rolled_back"], 0)
        for kind in KINDS:
            if kind == "disk-full" and not r["disk_full_available"]:
                self.assertFalse(tap.servers_required(), "disk-full not injected: no tmpfs "
                                 "could be mounted (OUTBOX_TEST_REQUIRE_SERVERS is set)")
                print("# disk-full not injected: no tmpfs could be mounted")
                continue
            self.assertGreater(r["faults"][kind], 0, "no %s fault was injected" % kind)
        # Relay kills come at 20 a minute; a short run (distcheck's) gets at least one.
        self.assertGreaterEqual(r["relay_restarts"], 4 if duration >= 30 else 1)
        return r

    def test_redis_streams(self):
        if not shutil.which("redis-server"):
            self.skipTest("redis-server not found")
        self.chaos("redis")

    def test_rabbitmq(self):
        if not os.access(os.path.join(RABBIT_BIN, "rabbitmq-server"), os.X_OK):
            self.skipTest("rabbitmq-server not found")
        try:
            import pika  # noqa: F401
        except ImportError:
            self.skipTest("python3-pika is not installed")
        self.chaos("rabbitmq")

    def test_nats_jetstream(self):
        if not shutil.which("nats-server"):
            self.skipTest("nats-server not found")
        r = self.chaos("nats", DURATION_NEW)
        # Copies the relay published again reach the stream's consumers once.
        self.assertEqual(r["duplicates"], 0, "duplicates in the JetStream stream")
        self.assertEqual(r["stream_messages"], r["committed"])
        self.assertLess(r["latest_copy_s"], r["duplicate_window_s"])

    def test_mqtt(self):
        if not shutil.which("mosquitto") and not os.access("/usr/sbin/mosquitto", os.X_OK):
            self.skipTest("mosquitto not found")
        self.chaos("mqtt", DURATION_NEW)

    def test_http(self):
        self.chaos("http", DURATION_NEW)


class TestFullDisk(unittest.TestCase):
    """What the chaos suite found: with the database's disk full the relay could not
    record a batch it had published, woke at once on its own write to the WAL and
    published the batch again, hundreds of thousands of times in a few seconds."""

    def test_full_disk_does_not_republish_in_a_loop(self):
        if not shutil.which("redis-server"):
            self.skipTest("redis-server not found")
        tmp = TempDir("chaos-disk")
        self.addCleanup(tmp.cleanup)
        disk = DiskFull(tmp.join("fs"))
        self.addCleanup(disk.unmount)
        if not disk.mounted:
            # A skip, which fails the run when servers are required (CI runs as root).
            self.skipTest("cannot mount a tmpfs: %s" % disk.why)
        db = OutboxDB(os.path.join(disk.path, "app.db"))
        first = db.insert_many([("e", {"i": i}) for i in range(1000)])
        redis = RedisServer(tmp)
        redis.start()
        self.addCleanup(redis.stop)
        relay = Relay(tmp, {"outbox.database": db.path, "system.queue-adapter": "redis",
                            "redis.port": redis.port, "redis.mode": "stream",
                            "redis.channel-name": "s", "relay.batch-size": 256})
        relay.start()
        self.addCleanup(relay.stop)
        wait_for(lambda: redis.call("XLEN", "s") >= 1000, 30, what="the first 1000")
        # Paused, so that it meets the full disk with a batch to record.
        relay.pause()
        second = db.insert_many([("f", {"i": i}) for i in range(1000)])
        try:
            self.assertTrue(disk.fill(0), "could not shrink the tmpfs")
            relay.resume()
            time.sleep(3)
            published = redis.call("XLEN", "s") - 1000
        finally:
            disk.restore()
        wait_for(lambda: db.cursor("redis") == db.max_seq(), 30, what="the drain")
        self.assertEqual(relay.stop(), 0)
        self.assertIsNone(relay.sanitizer_report())
        failures = relay.log().count("database or disk is full")
        print("# 3 s of full disk: %d entries published for 1000 events, %d failed "
              "commits" % (published, failures))
        self.assertGreater(failures, 0, "the disk was never full for the relay")
        # A pause of 100 ms doubling to 1 s: a handful of attempts of 256 events each.
        self.assertLess(published, 1000 + 20 * 256, "the relay published in a loop")
        ids = {json.loads(f[1])["id"] for _, f in redis.call("XRANGE", "s", "-", "+")}
        self.assertEqual({eid for _, eid in first + second} - ids, set())


if __name__ == "__main__":
    tap.main()
