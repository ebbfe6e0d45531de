#!/usr/bin/env python3
"""test_metrics.py: watching a running outboxd, against real servers started here on free
ports: a real Prometheus scrapes /metrics and its count of published events matches what a
real Redis subscriber received; promtool checks the exposition; a Redis outage shows in
outboxd_sink_up, /readyz and the backlog, then recovers; /healthz follows the loop; a
fake systemd (our own NOTIFY_SOCKET) sees READY, STATUS, the watchdog's cadence, RELOADING
and STOPPING, and no petting from a stopped relay; JSON logs parse line by line.
Skipped when redis-server, prometheus or promtool is missing (a failure when
OUTBOX_TEST_REQUIRE_SERVERS=1).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tap  # noqa: E402
from harness import (EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, OUTBOXD, BrokerCase,  # noqa: E402
                     OutboxDB, Process, RedisServer, Subscriber, TempDir, free_port,
                     wait_for)

tap.require_programs("redis-server", "prometheus", "promtool", OUTBOXD)

FAMILIES = {
    "outboxd_events_published_total": "counter",
    "outboxd_events_rejected_total": "counter",
    "outboxd_events_failed_total": "counter",
    "outboxd_backlog_events": "gauge",
    "outboxd_oldest_pending_age_seconds": "gauge",
    "outboxd_sink_up": "gauge",
    "outboxd_sink_reconnects_total": "counter",
    "outboxd_publish_batch_seconds": "histogram",
    "outboxd_event_lag_seconds": "histogram",
    "outboxd_build_info": "gauge",
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_start_time_seconds": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
}


def http_get(url, timeout=5.0):
    """(status, body) of GET url; errors statuses are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def unix_get(path, target, timeout=5.0):
    """(status, body) of GET target over the unix socket at path."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b"GET %s HTTP/1.0\r\nHost: outboxd\r\n\r\n" % target.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def stopped(pid):
    """Is process pid stopped (state T)?"""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} of the samples in an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, "bad sample line %r" % line
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out


class Prometheus(Process):
    """A private prometheus scraping targets every second, on a free port."""

    def __init__(self, tmp, targets):
        self.port = free_port()
        self.dir = tmp.join("prometheus-%d" % self.port)
        os.makedirs(self.dir)
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: outboxd\n    static_configs:\n"
                    "      - targets: [%s]\n" % ", ".join('"%s"' % t for t in targets))
        super().__init__([shutil.which("prometheus"), "--config.file", config,
                          "--storage.tsdb.path", os.path.join(self.dir, "data"),
                          "--web.listen-address", "127.0.0.1:%d" % self.port],
                         os.path.join(self.dir, "prometheus.log"))

    def start(self):
        super().start()
        wait_for(lambda: self.ready(), 30, 0.1, "prometheus to be ready")
        return self

    def ready(self):
        if not self.running():
            raise AssertionError("prometheus exited:\n" + self.log()[-3000:])
        try:
            return http_get("http://127.0.0.1:%d/-/ready" % self.port)[0] == 200
        except OSError:
            return False

    def query(self, expr):
        """The value of an instant query with one result, or None."""
        status, body = http_get("http://127.0.0.1:%d/api/v1/query?query=%s"
                                % (self.port, urllib.parse.quote(expr)))
        result = json.loads(body)["data"]["result"] if status == 200 else []
        return float(result[0]["value"][1]) if len(result) == 1 else None


class MetricsCase(BrokerCase):
    def setUp(self):
        self.tmp = TempDir("metrics")
        self.addCleanup(self.tmp.cleanup)
        self.db = OutboxDB(self.tmp.join("app.db"))
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port

    def start_redis(self):
        self.redis = RedisServer(self.tmp)
        self.redis.start()
        self.addCleanup(self.redis.stop)
        return self.redis

    def redis_relay(self, **keys):
        cf = self.make_config({"outbox.database": self.db.path,
                               "sinks": {"redis": {"type": "redis", "port": self.redis.port,
                                                   "channel-name": "events"}}}, **keys)
        relay = self.relay(cf, ["--metrics", "127.0.0.1:%d" % self.port])
        relay.start()
        wait_for(lambda: self.get("/healthz")[0] == 200, 20, 0.05, "/healthz 200")
        return relay

    def get(self, path):
        try:
            return http_get(self.base + path)
        except OSError:
            return None, ""

    def metrics(self):
        status, body = self.get("/metrics")
        self.assertEqual(status, 200, body)
        return parse_metrics(body)

    def sample(self, name, sink="redis"):
        return self.metrics().get((name, frozenset({"sink": sink}.items())))


class TestEndpoint(MetricsCase):
    def test_prometheus_counts_what_the_subscriber_received(self):
        self.start_redis()
        sub = Subscriber(self.redis, channels=["events"])
        self.addCleanup(sub.close)
        self.redis_relay()
        prom = Prometheus(self.tmp, ["127.0.0.1:%d" % self.port])
        prom.start()
        self.addCleanup(prom.stop)
        for i in range(5):
            self.db.insert_many([("tick", {"i": i * 40 + k}) for k in range(40)])
        sub.wait(200, 20)
        received = len(sub.settle())
        self.assertEqual(received, 200)
        got = wait_for(lambda: prom.query('outboxd_events_published_total{sink="redis"}')
                       == received, 30, 0.2, "prometheus to see %d published" % received)
        self.assertTrue(got)
        self.assertEqual(prom.query('outboxd_backlog_events{sink="redis"}'), 0)
        self.assertEqual(prom.query('outboxd_sink_up{sink="redis"}'), 1)
        self.assertEqual(prom.query('up{job="outboxd"}'), 1)
        # The histograms count every delivered event (lag) and at least one batch.
        self.assertEqual(prom.query('outboxd_event_lag_seconds_count{sink="redis"}'), 200)
        self.assertGreaterEqual(prom.query('outboxd_publish_batch_seconds_count{sink="redis"}'),
                                1)

    def test_exposition_passes_promtool_with_every_family(self):
        self.start_redis()
        self.redis_relay()
        self.db.insert_many([("tick", {}) for _ in range(10)])
        wait_for(lambda: self.sample("outboxd_events_published_total") == 10, 10,
                 what="10 published")
        status, body = self.get("/metrics")
        r = subprocess.run(["promtool", "check", "metrics"], input=body, text=True,
                           capture_output=True)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))
        for name, kind in FAMILIES.items():
            self.assertIn("# HELP %s " % name, body)
            self.assertIn("# TYPE %s %s\n" % (name, kind), body)
        build = [k for k in parse_metrics(body) if k[0] == "outboxd_build_info"]
        self.assertEqual(len(build), 1)
        self.assertEqual(sorted(dict(build[0][1])), ["hiredis", "rabbitmq_c", "sqlite",
                                                     "version"])
        m = parse_metrics(body)
        self.assertGreater(m[("process_resident_memory_bytes", frozenset())], 1 << 20)
        self.assertGreater(m[("process_open_fds", frozenset())], 3)
        self.assertAlmostEqual(m[("process_start_time_seconds", frozenset())], time.time(),
                               delta=120)
        self.assertEqual(self.get("/nothing")[0], 404)
        self.assertEqual(self.get("/metrics/")[0], 404)

    def test_broker_outage_shows_and_recovers(self):
        self.start_redis()
        self.redis_relay()
        wait_for(lambda: self.get("/readyz")[0] == 200, 10, what="/readyz 200")
        self.assertEqual(self.sample("outboxd_sink_reconnects_total"), 1)
        self.redis.stop()
        self.db.insert_many([("tick", {}) for _ in range(30)])
        wait_for(lambda: self.sample("outboxd_sink_up") == 0, 10, what="sink_up 0")
        status, body = self.get("/readyz")
        self.assertEqual(status, 503)
        self.assertIn("redis", body)
        wait_for(lambda: self.sample("outboxd_backlog_events") == 30, 10,
                 what="backlog 30")
        self.db.insert_many([("tick", {}) for _ in range(20)])
        wait_for(lambda: self.sample("outboxd_backlog_events") == 50, 10,
                 what="backlog to grow to 50")
        wait_for(lambda: self.sample("outboxd_oldest_pending_age_seconds") >= 1, 10,
                 what="the oldest pending event to age")
        self.redis.start()
        wait_for(lambda: self.sample("outboxd_sink_up") == 1, 20, what="sink_up back to 1")
        wait_for(lambda: self.sample("outboxd_backlog_events") == 0, 20, what="backlog 0")
        self.assertEqual(self.get("/readyz")[0], 200)
        self.assertEqual(self.sample("outboxd_sink_reconnects_total"), 2)
        self.assertEqual(self.sample("outboxd_events_published_total"), 50)
        self.assertEqual(self.sample("outboxd_oldest_pending_age_seconds"), 0)

    def test_healthz_follows_the_loop(self):
        self.start_redis()
        relay = self.redis_relay(relay__poll_interval_ms=50)
        self.assertEqual(self.get("/healthz")[0], 200)
        # A wedged loop: Redis frozen, the loop waits in a publish for its reply (3 s),
        # far past 2 x 50 ms, while the HTTP thread answers.
        self.redis.pause()
        self.db.insert("tick")
        status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(
            self.get("/healthz")), 5, 0.02, "/healthz 503 while the loop is stuck")
        self.assertIn("stalled", body)
        self.redis.resume()
        wait_for(lambda: self.get("/healthz")[0] == 200, 10, what="/healthz 200 again")
        # A stopped relay answers nothing at all: a prober's timeout is its failure.
        relay.pause()
        wait_for(lambda: stopped(relay.pid), 5, what="the relay to stop")
        try:
            with self.assertRaises(OSError):
                http_get(self.base + "/healthz", timeout=0.5)
        finally:
            relay.resume()
        wait_for(lambda: self.get("/healthz")[0] == 200, 10, what="/healthz 200 after SIGCONT")

    def test_sinks_follow_a_reload(self):
        cf = {"outbox.database": self.db.path,
              "sinks": {"a": {"type": "stdout"}, "b": {"type": "stdout"}}}
        relay = self.relay(cf, ["--metrics", "127.0.0.1:%d" % self.port])
        relay.start()
        wait_for(lambda: self.get("/readyz")[0] == 200, 10, what="/readyz 200")
        self.db.insert_many([("tick", {}) for _ in range(3)])
        wait_for(lambda: self.sample("outboxd_events_published_total", "b") == 3, 10,
                 what="b published 3")
        with open(relay.config_path, "w") as f:
            json.dump({"outbox.database": self.db.path,
                       "sinks": {"b": {"type": "stdout"}, "c": {"type": "stdout"}}}, f)
        relay.signal(signal.SIGHUP)
        relay.wait_log("configuration reloaded")

        def sinks():
            return {dict(k[1]).get("sink") for k in self.metrics()
                    if k[0] == "outboxd_sink_up"}
        wait_for(lambda: sinks() == {"b", "c"}, 10, what="sinks b and c only")
        # b kept its counters; c starts from the table's beginning (start-at oldest).
        self.assertEqual(self.sample("outboxd_events_published_total", "b"), 3)
        wait_for(lambda: self.sample("outboxd_events_published_total", "c") == 3, 10,
                 what="c published 3")

    def test_unix_socket_and_bad_addresses(self):
        path = self.tmp.join("m.sock")
        cf = {"outbox.database": self.db.path, "relay.poll-interval-ms": 100}
        relay = self.relay(cf, ["--stdout", "--metrics", path])
        relay.start()
        wait_for(lambda: os.path.exists(path) and unix_get(path, "/healthz")[0] == 200, 10,
                 what="/healthz on the unix socket")
        status, body = unix_get(path, "/metrics")
        self.assertEqual(status, 200)
        self.assertIn('outboxd_sink_up{sink="stdout"} 1', body)
        self.assertEqual(relay.stop(), EXIT_OK)
        self.assertFalse(os.path.exists(path), "the socket is removed at exit")
        for addr, message in [
                ("9464", 'metrics.listen: expected ADDR:PORT (127.0.0.1:9464, [::1]:9464) '
                         'or a unix socket path, got "9464"'),
                ("localhost:9464", '"localhost" is not an IPv4 address'),
                ("127.0.0.1:99999", "metrics.listen: port in"),
                ("[::1]9464", "expected ADDR:PORT")]:
            with self.subTest(addr=addr):
                rc, log = self.relay(cf, ["--stdout", "--metrics", addr]).once()
                self.assertEqual(rc, EXIT_CONFIG, log)
                self.assertIn(message, log)
        # A port someone else holds: a runtime error, said once, at start-up.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            taken = s.getsockname()[1]
            rc, log = self.relay(cf, ["--stdout", "--metrics", "127.0.0.1:%d" % taken]).once()
        self.assertEqual(rc, EXIT_RUNTIME, log)
        self.assertIn("cannot listen on 127.0.0.1:%d: Address already in use" % taken, log)

    def test_ipv6(self):
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback here")
        cf = {"outbox.database": self.db.path}
        relay = self.relay(cf, ["--stdout", "--metrics", "[::1]:%d" % self.port])
        relay.start()
        wait_for(lambda: (lambda r: r[0] == 200)(self._get6("/readyz")), 10,
                 what="/readyz on [::1]")

    def _get6(self, path):
        try:
            return http_get("http://[::1]:%d%s" % (self.port, path))
        except OSError:
            return None, ""


class FakeSystemd:
    """A NOTIFY_SOCKET: collects (monotonic time, message) on a thread."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append((time.monotonic(), data.decode()))

    def got(self):
        with self.lock:
            return list(self.messages)

    def wait(self, text, after=0, timeout=10):
        """The first message containing text that came after index `after`."""
        def find():
            for i, (t, m) in enumerate(self.got()):
                if i >= after and text in m.splitlines():
                    return i + 1, t, m
            return None
        return wait_for(find, timeout, 0.02, "%r from the relay" % text)

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


class TestSystemd(MetricsCase):
    def test_notify_and_watchdog(self):
        systemd = FakeSystemd(self.tmp.join("notify.sock"))
        self.addCleanup(systemd.close)
        cf = {"outbox.database": self.db.path, "relay.poll-interval-ms": 5000}
        relay = self.relay(cf, ["--stdout"])
        relay.env = dict(os.environ, NOTIFY_SOCKET=systemd.path, WATCHDOG_USEC="600000")
        relay.start()
        i, _, first = systemd.wait("READY=1")
        self.assertEqual(i, 1, "READY=1 is the first message: %r" % systemd.got())
        _, _, status = systemd.wait("STATUS=stdout up, backlog 0")

        # The watchdog: every 300 ms (half of WATCHDOG_USEC), although the idle loop could
        # sleep 5 s; never a gap as long as WATCHDOG_USEC.
        time.sleep(2.5)
        pets = [t for t, m in systemd.got() if m == "WATCHDOG=1"]
        self.assertGreaterEqual(len(pets), 6, pets)
        gaps = [b - a for a, b in zip(pets, pets[1:])]
        self.assertLess(max(gaps), 0.6, gaps)
        self.assertGreater(min(gaps), 0.25, gaps)

        # A stopped relay stops petting, and starts again when it runs.
        relay.pause()
        wait_for(lambda: stopped(relay.pid), 5, what="the relay to stop")
        stopped_at = time.monotonic()
        time.sleep(1.5)
        relay.resume()
        n = len(systemd.got())
        systemd.wait("WATCHDOG=1", after=n)
        during = [t for t, m in systemd.got() if m == "WATCHDOG=1" and
                  stopped_at + 0.05 < t < stopped_at + 1.45]
        self.assertEqual(during, [])

        # SIGHUP: RELOADING=1, then READY=1.
        n = len(systemd.got())
        relay.signal(signal.SIGHUP)
        i, _, m = systemd.wait("RELOADING=1", after=n)
        self.assertRegex(m, r"MONOTONIC_USEC=\d+")
        systemd.wait("READY=1", after=i)

        # SIGTERM: STOPPING=1, then a clean exit.
        n = len(systemd.got())
        relay.signal(signal.SIGTERM)
        self.assertEqual(relay.wait(10), EXIT_OK)
        systemd.wait("STOPPING=1", after=n)

    def test_abstract_socket(self):
        name = "outboxd-test-%d-%d" % (os.getpid(), self.port)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.bind("\0" + name)
            s.settimeout(10)
            relay = self.relay({"outbox.database": self.db.path}, ["--stdout"])
            relay.env = dict(os.environ, NOTIFY_SOCKET="@" + name)
            rc, log = relay.once()
            self.assertEqual(rc, EXIT_OK, log)
            self.assertEqual(s.recv(4096), b"READY=1")


class TestJsonLogs(MetricsCase):
    def test_every_line_is_an_object(self):
        dead = free_port()
        cf = {"outbox.database": self.db.path, "relay.log-format": "json",
              "relay.backoff-initial-ms": 20, "relay.backoff-max-ms": 50,
              "sinks": {"cache": {"type": "redis",
                                  "url": "redis://:s3cret-pw@127.0.0.1:%d" % dead}}}
        relay = self.relay(cf, ["-v"])
        relay.start()
        relay.wait_log("cannot connect")
        relay.wait_log("attempt 3")
        self.assertEqual(relay.stop(), EXIT_OK)
        log = relay.log()
        self.assertNotIn("s3cret-pw", log)
        lines = [json.loads(line) for line in log.splitlines()]
        for obj in lines:
            self.assertLessEqual({"ts", "level", "msg"}, set(obj))
            self.assertRegex(obj["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(obj["level"], ("error", "warn", "info", "debug"))
        about = [o for o in lines if o.get("sink") == "cache"]
        self.assertTrue(any(o["level"] == "warn" and o["msg"].startswith("cannot connect")
                            for o in about), lines)
        self.assertTrue(any(o["msg"].startswith("stopping") for o in lines))


if __name__ == "__main__":
    tap.main()
