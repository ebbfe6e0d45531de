#!/usr/bin/env python3
"""test_chaos.py: a short run of the chaos suite (tests/chaos/chaos.py) per broker.

Each test runs the harness in a process of its own for OUTBOX_CHAOS_DURATION seconds
(default 45) against Redis streams or RabbitMQ, with every fault kind (relay SIGKILL,
broker kill and stall, write-lock holds, full disk), and asserts: no committed event lost,
no rolled-back event published, nothing left failed, no sanitizer report, and at least one
fault of each kind injected (disk-full only where a tmpfs can be mounted). The seed is
random and printed; OUTBOX_CHAOS_SEED=N replays one. `make chaos-long` runs it longer.
Skipped when a server is missing (a failure when OUTBOX_TEST_REQUIRE_SERVERS=1).
"""

import json
import os
import random
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tap  # noqa: E402
from harness import BUILDDIR, OUTBOXD, TempDir  # noqa: E402
from harness_rabbitmq import RABBIT_BIN  # noqa: E402

tap.require_programs(OUTBOXD)

CHAOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "chaos", "chaos.py")
DURATION = float(os.environ.get("OUTBOX_CHAOS_DURATION", "45"))
SEED = int(os.environ.get("OUTBOX_CHAOS_SEED") or random.SystemRandom().randrange(1000000))
KINDS = ("relay-kill", "broker-kill", "broker-stall", "write-hold", "disk-full")


class TestChaos(unittest.TestCase):

    def chaos(self, broker):
        tmp = TempDir("chaos-test")
        self.addCleanup(tmp.cleanup)
        out = tmp.join("result.json")
        print("# %s: seed %d, %.0fs (replay: OUTBOX_CHAOS_SEED=%d, or %s --builddir %s "
              "--broker %s --duration %.0f --seed %d)"
              % (broker, SEED, DURATION, SEED, CHAOS, BUILDDIR, broker, DURATION, SEED))
        sys.stdout.flush()
        p = subprocess.Popen([sys.executable, CHAOS, "--builddir", BUILDDIR, "--broker", broker,
                              "--duration", str(DURATION), "--seed", str(SEED),
                              "--drain-timeout", "120", "--json", out],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            text, _ = p.communicate(timeout=DURATION + 420)
        except subprocess.TimeoutExpired:
            # SIGTERM first: chaos.py then stops its servers and unmounts its tmpfs.
            p.terminate()
            try:
                text, _ = p.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                p.kill()
                text, _ = p.communicate()
            text += "\n(chaos.py did not finish within %.0fs)" % (DURATION + 420)
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
                print("# disk-full not injected: no tmpfs could be mounted")
                continue
            self.assertGreater(r["faults"][kind], 0, "no %s fault was injected" % kind)
        self.assertGreater(r["relay_restarts"], 3)

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


if __name__ == "__main__":
    tap.main()
