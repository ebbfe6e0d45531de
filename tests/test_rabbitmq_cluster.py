#!/usr/bin/env python3
"""test_rabbitmq_cluster.py: outboxd into a quorum queue on a real 3-node RabbitMQ cluster
(three private nodes on free ports, one Erlang cookie, join_cluster). While a producer
commits, the test SIGKILLs the node the relay is connected to, then starts it again: the
relay fails over to the next URL and every committed event is in the queue, read through a
surviving node. Prints the failover time. Skipped when rabbitmq-server or pika is missing
(a failure when OUTBOX_TEST_REQUIRE_SERVERS=1).
"""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tap  # noqa: E402
from harness import (OUTBOXD, BrokerCase, OutboxDB, Producer, TempDir,  # noqa: E402
                     wait_for)
from harness_rabbitmq import RABBIT_BIN, RabbitNode, get_messages  # noqa: E402

tap.require_programs(OUTBOXD, os.path.join(RABBIT_BIN, "rabbitmq-server"))
try:
    import pika  # noqa: E402,F401 (the consumer; imported here to skip cleanly)
except ImportError:
    tap.skip_all("python3-pika is not installed")

QUEUE = "orders"


class Cluster:
    """Three nodes sharing a cookie, clustered with the first."""

    def __init__(self, tmp):
        self.nodes = [RabbitNode(tmp.join("node%d" % i)) for i in range(3)]
        for node in self.nodes:
            cookie = os.path.join(node.env["HOME"], ".erlang.cookie")
            with open(cookie, "w") as f:
                f.write("OUTBOXTESTCLUSTERCOOKIE")
            os.chmod(cookie, 0o400)

    def start(self):
        for node in self.nodes:
            subprocess.run([os.path.join(RABBIT_BIN, "rabbitmq-server"), "-detached"],
                           env=node.env, check=True, capture_output=True, timeout=60)
        for node in self.nodes:
            node.await_startup()
        for node in self.nodes[1:]:
            node.stop_app()
            node.ctl("join_cluster", self.nodes[0].name)
            node.start_app()
        status = self.nodes[0].ctl("cluster_status", "--formatter", "json")
        running = json.loads(status)["running_nodes"]
        if len(running) != 3:
            raise AssertionError("the cluster has %d running nodes: %s" % (len(running), status))

    def stop(self):
        for node in self.nodes:
            node.stop()

    def node_of_connections(self, via):
        """The nodes that hold client connections, asked of node via."""
        ports = via.ctl("list_connections", "-q", "--no-table-headers", "port").split()
        return [n for n in self.nodes if str(n.port) in ports]



class TestQuorumQueueFailover(BrokerCase):
    def setUp(self):
        self.tmp = TempDir("rabbit-cluster")
        self.addCleanup(self.tmp.cleanup)
        self.cluster = Cluster(self.tmp)
        self.addCleanup(self.cluster.stop)
        self.cluster.start()
        self.db = OutboxDB(self.tmp.join("app.db"))
        self.relays = []

    def test_node_killed_under_load_loses_nothing(self):
        try:
            self.node_killed_under_load()
        except AssertionError:
            # What the relay saw is the first thing to read when this fails.
            for r in self.relays:
                print("# relay log (end):\n# " + "\n# ".join(r.log().splitlines()[-8:]))
            for n in self.cluster.nodes:
                print("# node %s:\n# %s" % (n.name, "\n# ".join(n.ctl(
                    "list_queues", "name", "type", "leader", "members", "online",
                    check=False, timeout=30).splitlines())))
            raise

    def relay(self, config, args=()):
        r = super().relay(config, args)
        self.relays.append(r)
        return r

    def node_killed_under_load(self):
        nodes = self.cluster.nodes
        # While the queue has no leader the broker nacks what it cannot take, and a nack
        # counts an attempt. Before the relay reconnected after a batch that was nacked
        # whole, one channel kept being nacked for minutes after the election (found by
        # this test); this test is about loss, so attempts are plenty anyway.
        relay = self.relay(self.make_config({
            "outbox.database": self.db.path,
            "sinks": {"orders": {"type": "rabbitmq", "queue": QUEUE, "queue-type": "quorum",
                                 "url": [n.url() for n in nodes]}}},
            relay__backoff_initial_ms=500, relay__backoff_max_ms=5000,
            relay__max_attempts=1000))
        relay.start()
        producer = Producer(self.db, name="order.paid")
        producer.start()
        self.addCleanup(producer.stop)
        wait_for(lambda: (self.db.cursor("orders") or 0) >= 500, 60, what="500 confirmed")
        victim = self.cluster.node_of_connections(nodes[2])
        self.assertEqual(len(victim), 1, "the relay's connection is on one node")
        victim = victim[0]
        killed_at = time.monotonic()
        os.kill(victim.pid(), signal.SIGKILL)
        # Failover time: from the kill to the confirm of an event committed just after it.
        marker, _ = self.db.insert("order.marker", {"i": -1})
        wait_for(lambda: (self.db.cursor("orders") or 0) >= marker and not self.db.query(
                 "SELECT 1 FROM outbox_retry WHERE seq = ?", (marker,)), 180,
                 what="an event committed after the kill to be confirmed", interval=0.01)
        failover = time.monotonic() - killed_at
        survivor = [n for n in nodes if n is not victim][0]
        wait_for(lambda: victim not in self.cluster.node_of_connections(survivor) and
                 self.cluster.node_of_connections(survivor), 30, what="the relay on another node")
        # The killed node comes back and rejoins; the relay keeps going meanwhile.
        subprocess.run([os.path.join(RABBIT_BIN, "rabbitmq-server"), "-detached"],
                       env=victim.env, check=True, capture_output=True, timeout=60)
        victim.await_startup()
        wait_for(lambda: (self.db.cursor("orders") or 0) > producer.count - 100, 60,
                 what="the relay to keep up")
        producer.stop()
        last = self.db.max_seq()
        wait_for(lambda: self.db.cursor("orders") == last and not self.db.retry_rows(), 180,
                 what="the relay to catch up and its retries to go through")
        conn, ch = survivor.channel()
        self.addCleanup(conn.close)
        got = [json.loads(body)["data"]["i"] for _, body in
               get_messages(ch, QUEUE, producer.count, timeout=60)]
        lost = set(range(producer.count)) - set(got)
        print("# %d committed, %d in the quorum queue (%d duplicates), %d lost; an event "
              "committed after the kill confirmed %.2f s after it"
              % (producer.count, len(got), len(got) - len(set(got)), len(lost), failover))
        nacked = relay.log().count("nacked by the broker")
        print("# nacks during the election: logged in %d batches" % nacked)
        self.assertEqual(self.db.retry_rows(), [], "events failed or still retrying")
        self.assertEqual(lost, set(), "events lost when a node died")


if __name__ == "__main__":
    tap.main()
