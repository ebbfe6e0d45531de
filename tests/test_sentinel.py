#!/usr/bin/env python3
"""test_sentinel.py: outboxd behind Redis Sentinel: a master, one replica and three
sentinels on free loopback ports, a producer committing while the test SIGKILLs the master.
Sentinel promotes the replica, the relay follows it. With replicas-ack 1 every committed
event is in the stream on the new master; without it the test reports how many were lost
(Redis replication is asynchronous). Skipped when redis-sentinel is missing (a failure when
OUTBOX_TEST_REQUIRE_SERVERS=1).
"""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tap  # noqa: E402
from harness import (EXIT_CONFIG, OUTBOXD, BrokerCase, OutboxDB, Process,  # noqa: E402
                     Producer, RedisServer, Resp, RespError, TempDir, free_port, wait_for)

tap.require_programs("redis-server", "redis-sentinel", OUTBOXD)

MASTER = "mymaster"
STREAM = "events"


class Sentinel(Process):
    """redis-sentinel on a free port, watching the master at master_port."""

    def __init__(self, tmp, master_port, index):
        self.port = free_port()
        self.dir = tmp.join("sentinel-%d" % index)
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(self.dir, "sentinel.conf")
        with open(conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndir %s\nlogfile \"\"\n"
                    "sentinel monitor %s 127.0.0.1 %d 2\n"
                    "sentinel down-after-milliseconds %s 1000\n"
                    "sentinel failover-timeout %s 5000\n"
                    % (self.port, self.dir, MASTER, master_port, MASTER, MASTER))
        super().__init__(["redis-sentinel", conf], os.path.join(self.dir, "sentinel.log"))

    def call(self, *args):
        c = Resp(self.port, timeout=5)
        try:
            return c.call(*args)
        finally:
            c.close()

    def master_port(self):
        try:
            reply = self.call("SENTINEL", "get-master-addr-by-name", MASTER)
        except (OSError, RespError):
            return None
        return int(reply[1]) if reply else None



class TestSentinel(BrokerCase):
    def setUp(self):
        self.tmp = TempDir("sentinel")
        self.addCleanup(self.tmp.cleanup)
        aof = ["--appendonly", "yes", "--appendfsync", "always"]
        self.master = RedisServer(self.tmp, args=aof, name="master")
        self.master.start()
        self.addCleanup(self.master.stop)
        self.replica = RedisServer(self.tmp, args=aof + [
            "--replicaof", "127.0.0.1", str(self.master.port)], name="replica")
        self.replica.start()
        self.addCleanup(self.replica.stop)
        wait_for(lambda: b"master_link_status:up" in self.replica.call("INFO", "replication"),
                 10, what="the replica to sync")
        self.sentinels = [Sentinel(self.tmp, self.master.port, i) for i in range(3)]
        for s in self.sentinels:
            s.start()
            self.addCleanup(s.stop)
        for s in self.sentinels:
            wait_for(lambda s=s: s.master_port() == self.master.port, 10,
                     what="sentinel %d to know the master" % s.port)
        # Each sentinel must see the others before a failover can be agreed on.
        wait_for(lambda: all(self.other_sentinels(s) == 2 for s in self.sentinels), 20,
                 what="the sentinels to find each other")
        self.db = OutboxDB(self.tmp.join("app.db"))

    def other_sentinels(self, s):
        fields = s.call("SENTINEL", "master", MASTER)
        info = dict(zip(fields[::2], fields[1::2]))
        return int(info.get(b"num-other-sentinels", b"0"))

    def config(self, **keys):
        """A stream sink behind the sentinels; a key given as None is left out."""
        sink = {"type": "redis", "mode": "stream", "channel-name": STREAM,
                "url": "redis+sentinel://%s/%s" % (",".join(
                    "127.0.0.1:%d" % s.port for s in self.sentinels), MASTER)}
        sink.update(keys)
        sink = {k: v for k, v in sink.items() if v is not None}
        return self.make_config({"outbox.database": self.db.path, "sinks": {"cache": sink}})

    def stream_ids(self, server):
        entries = server.call("XRANGE", STREAM, "-", "+")
        return [json.loads(fields[1])["data"]["i"] for _, fields in entries]

    def failover(self, relay):
        """Commit while the master is SIGKILLed and the replica promoted; then bring the
        old master back (Sentinel makes it a replica of the new one). Returns the number
        of events committed and the seconds from the kill to the new master."""
        producer = Producer(self.db)
        producer.start()
        self.addCleanup(producer.stop)
        wait_for(lambda: (self.db.cursor("cache") or 0) >= 300, 30, what="300 delivered")
        killed_at = time.monotonic()
        self.master.signal(signal.SIGKILL)
        self.master.wait(10)
        wait_for(lambda: self.sentinels[0].master_port() == self.replica.port, 30,
                 what="Sentinel to promote the replica")
        promoted = time.monotonic() - killed_at
        self.master.start()   # comes back, and Sentinel makes it a replica of the new one
        wait_for(lambda: (self.db.cursor("cache") or 0) > producer.count - 50, 60,
                 what="the relay to publish to the new master")
        producer.stop()
        last = self.db.max_seq()
        wait_for(lambda: self.db.cursor("cache") == last, 60, what="the relay to catch up")
        return producer.count, promoted

    def test_replicas_ack_loses_nothing_across_a_failover(self):
        relay = self.relay(self.config(**{"replicas-ack": 1}))
        relay.start()
        committed, promoted = self.failover(relay)
        got = self.stream_ids(self.replica)
        lost = set(range(committed)) - set(got)
        print("# replicas-ack 1: %d committed, %d in the stream (%d duplicates), %d lost; "
              "replica promoted %.1f s after the kill"
              % (committed, len(got), len(got) - len(set(got)), len(lost), promoted))
        self.assertEqual(lost, set(), "events lost in the failover")
        self.assertIn("connected again", relay.log())
        self.assertEqual(self.db.retry_rows(), [])

    def test_without_replicas_ack_the_relay_follows_the_failover(self):
        relay = self.relay(self.config())
        relay.start()
        committed, promoted = self.failover(relay)
        got = set(self.stream_ids(self.replica))
        # Asynchronous replication: what the old master acknowledged but had not passed
        # on is gone. The count is the figure docs/scaling.md reports; it may be 0.
        print("# replicas-ack 0: %d committed, %d lost in the failover (promoted after "
              "%.1f s)" % (committed, len(set(range(committed)) - got), promoted))
        self.assertIn("(master %s)" % MASTER, relay.log())
        self.assertIn("connected again", relay.log())

    def test_configuration(self):
        hosts = ",".join("127.0.0.1:%d" % s.port for s in self.sentinels)
        # (The data nodes have no password: AUTH fails, and says so without showing it.)
        rc, log = self.relay(self.config(url="redis+sentinel://:s3cret@%s/%s/2"
                                         % (hosts, MASTER))).once()
        self.assertIn("redis+sentinel://:***@%s/%s/2 stream events" % (hosts, MASTER), log)
        self.assertNotIn("s3cret", log)
        for url, message in [
                ("redis+sentinel://%s" % hosts, "cache.url: expected redis+sentinel://"),
                ("redis+sentinel://127.0.0.1/%s" % MASTER,
                 'cache.sentinels: expected host:port, got "127.0.0.1"')]:
            rc, log = self.relay(self.config(url=url)).once()
            self.assertEqual(rc, EXIT_CONFIG, log)
            self.assertIn(message, log)
        rc, log = self.relay(self.config(url=None, sentinels=[hosts.split(",")[0]])).once()
        self.assertEqual(rc, EXIT_CONFIG, log)
        self.assertIn("cache: sentinels and master-name go together", log)
        rc, log = self.relay(self.config(url=None, sentinels=["127.0.0.1:1"],
                                         **{"master-name": "nosuch"})).once()
        self.assertNotEqual(rc, 0, log)
        self.assertIn("no sentinel gave the address of master nosuch: sentinel 127.0.0.1:1: "
                      "Connection refused", log)


if __name__ == "__main__":
    tap.main()
