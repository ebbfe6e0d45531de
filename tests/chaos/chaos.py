#!/usr/bin/env python3
"""chaos.py: prove outboxd's at-least-once delivery under faults (loopback only).

For each broker (Redis streams, RabbitMQ, NATS JetStream, MQTT, HTTP), on private servers
started here:

  producers   N processes (tests/chaos/producer.py) write an `orders` row and 1-4 outbox
              events in the same SQLite transaction; ~10% are rolled back on purpose.
  relay       outboxd from the build directory, with a JSON config.
  consumer    a real consumer (XREAD from its last id / pika with manual acks / a durable
              JetStream pull consumer / a persistent MQTT QoS 1 session / the file the HTTP
              receiver appends to) that records every event id it receives and reconnects
              after outages.
  faults      at random moments drawn from random.Random(seed):
                relay-kill    SIGKILL of the relay, restarted after 0-1.5 s
                broker-kill   Redis: SIGKILL (appendonly yes, appendfsync always) and
                              restart; RabbitMQ: SIGKILL of the node and restart, or
                              stop_app/start_app; nats-server: SIGKILL and restart on
                              its store (-sd); mosquitto: SIGTERM (it saves its
                              persistence file) and restart; HTTP receiver: SIGKILL and
                              restart
                broker-stall  SIGSTOP of the server for 1-5 s, then SIGCONT
                write-hold    a transaction holding the write lock for 0.5-3 s, one in
                              five for 5.5-7 s, past the relay's 5 s busy timeout
                              (BEGIN IMMEDIATE ... sleep ... COMMIT or ROLLBACK)
                disk-full     the database lives on a private tmpfs; its size is cut to
                              what is used (so SQLite gets SQLITE_FULL) for 1-5 s
  check       after the faults stop: the relay drains (bounded wait), then
                committed = events in `outbox` whose `orders` row exists (the database
                            is the truth)
                lost      = committed events the consumer never received   (must be 0)
                rolled-back published = rolled-back ids the consumer saw  (must be 0)
                failed    = events left `failed` in outbox_retry           (must be 0)
              plus duplicates, faults per kind, relay restarts and the relay's peak RSS
              (VmHWM sampled from /proc), and no sanitizer report in its stderr.
              NATS: duplicates in the stream must be 0 too (Nats-Msg-Id de-duplication),
              and every republished copy must come well within the duplicate window.

Exit status: 0 if every check passed, 1 if one failed, 2 on a harness error.
Re-run a run exactly (same fault schedule and producer choices) with --seed.
"""

import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
KINDS = ("relay-kill", "broker-kill", "broker-stall", "write-hold", "disk-full")
# Mean faults per minute of each kind (each kind is its own Poisson process). A RabbitMQ
# node takes ~5 s to boot again after a SIGKILL, so it is killed less often.
RATES = {"relay-kill": 20.0, "broker-kill": 4.0, "broker-stall": 4.0, "write-hold": 6.0,
         "disk-full": 3.0}
RATES_RABBITMQ = dict(RATES, **{"broker-kill": 2.0, "broker-stall": 3.0})


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        prog="chaos.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]) +
        "\n\nexamples:\n"
        "  chaos.py --builddir build --broker redis --duration 60\n"
        "  chaos.py --builddir build --broker both --duration 600 --producers 4\n"
        "  chaos.py --builddir build --broker rabbitmq --seed 1234   # replay a run\n")
    ap.add_argument("--broker", choices=("redis", "rabbitmq", "nats", "mqtt", "http", "both",
                                         "all"), default="both",
                    help="which broker to run against (both: Redis, then RabbitMQ; all: "
                    "Redis, RabbitMQ, NATS JetStream, MQTT, HTTP)")
    ap.add_argument("--duration", type=float, default=60.0,
                    help="seconds of producing and faults per broker (default 60)")
    ap.add_argument("--seed", type=int, default=None,
                    help="seed of the fault schedule and producers (default: random, printed)")
    ap.add_argument("--producers", type=int, default=4,
                    help="producer processes (default 4)")
    ap.add_argument("--rate", type=float, default=50.0,
                    help="transactions per second per producer, 1-4 events each (default 50)")
    ap.add_argument("--builddir", default=os.environ.get("OUTBOX_BUILDDIR"),
                    help="build directory holding relay/outboxd (default $OUTBOX_BUILDDIR)")
    ap.add_argument("--drain-timeout", type=float, default=180.0,
                    help="longest wait for the relay to drain after the faults (default 180)")
    ap.add_argument("--faults", default=",".join(KINDS),
                    help="comma-separated fault kinds to inject (default: all): " +
                    ", ".join(KINDS))
    ap.add_argument("--mqtt-kill", choices=("SIGTERM", "SIGKILL"), default="SIGTERM",
                    help="how a broker-kill stops mosquitto (default SIGTERM: it saves its "
                    "persistence then; SIGKILL may lose what it acknowledged since its last "
                    "autosave, see docs/reliability.md)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory (also kept when a check fails)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every fault")
    a = ap.parse_args(argv)
    if a.seed is None:
        a.seed = int.from_bytes(os.urandom(4), "big") % 1000000
    a.faults = [k.strip() for k in a.faults.split(",") if k.strip()]
    for k in a.faults:
        if k not in KINDS:
            ap.error("unknown fault kind %r" % k)
    if a.builddir:
        a.builddir = os.path.abspath(a.builddir)
        os.environ["OUTBOX_BUILDDIR"] = a.builddir
    return a


ARGS = parse_args() if __name__ == "__main__" else None

sys.path.insert(0, TESTS)
sys.path.insert(0, HERE)
import harness  # noqa: E402  (reads OUTBOX_BUILDDIR when imported)
from harness import OutboxDB, Process, RedisServer, Relay, TempDir, wait_for  # noqa: E402
import consumers  # noqa: E402


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ---- the database's disk: a private, size-limited tmpfs ------------------------------------

class DiskFull:
    """A tmpfs mounted under the test directory for the database. fill() cuts its size to
    what is used (+ a little), so SQLite soon gets SQLITE_FULL; restore() gives the space
    back. Without permission to mount (not root, no CAP_SYS_ADMIN) it is unavailable: the
    database then lives on the test directory's own disk and disk-full is not injected."""

    SIZE = "4g"

    def __init__(self, path):
        self.path = path
        self.mounted = False
        self.why = None
        os.makedirs(path, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % self.SIZE,
                            "tmpfs", path], capture_output=True, text=True)
        if r.returncode == 0:
            self.mounted = True
        else:
            self.why = (r.stderr or r.stdout).strip() or "mount exited %d" % r.returncode

    def used(self):
        st = os.statvfs(self.path)
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    def remount(self, size):
        return subprocess.run(["mount", "-o", "remount,size=%s" % size, self.path],
                              capture_output=True, text=True).returncode == 0

    def fill(self, slack):
        """Cut the size to used + slack bytes; True if it took."""
        for extra in (0, 64 << 10, 256 << 10, 1 << 20):
            size = self.used() + slack + extra
            size = (size + 4095) // 4096 * 4096
            if self.remount("%dk" % (size // 1024)):
                return True
        return False

    def restore(self):
        if self.mounted:
            self.remount(self.SIZE)

    def unmount(self):
        if not self.mounted:
            return
        self.restore()
        if subprocess.run(["umount", self.path], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", self.path], capture_output=True)
        self.mounted = False


# ---- brokers -------------------------------------------------------------------------------

class Broker:
    """What the run asks of a broker: start, pid, kill(down, how), stop, consumer,
    relay_config (the sink is named after the broker), logs, and extra checks."""
    rates = RATES

    def extra(self, res, relay_log):
        """Broker-specific results, and problems (a list of strings)."""
        return []


class ServerBroker(Broker):
    """A broker that is one process of ours (harness.Process) on a fixed port: killed with
    SIGKILL and started again on the same port, with the same data directory."""

    def start(self):
        self.server.start(timeout=60)

    def pid(self):
        return self.server.pid if self.server.running() else None

    def kill(self, down, how=None):
        self.server.kill()
        time.sleep(down)
        self.server.start(timeout=120)
        return "SIGKILL"

    def stop(self):
        self.server.stop()

    def logs(self):
        return [self.server.log_path]


class RedisBroker(ServerBroker):
    name = "redis"
    stream = "chaos"

    def __init__(self, tmp):
        self.server = RedisServer(tmp, ["--appendonly", "yes", "--appendfsync", "always"],
                                  name="redis")
        self.port = self.server.port

    def consumer(self):
        return consumers.RedisStreamConsumer(self.port, self.stream)

    def relay_config(self):
        return {"system.queue-adapter": "redis", "redis.port": self.port,
                "redis.mode": "stream", "redis.channel-name": self.stream,
                "redis.timeout-ms": 1000, "redis.connect-timeout-ms": 1000}


class RabbitBroker(Broker):
    name = "rabbitmq"
    rates = RATES_RABBITMQ
    queue = "chaos"

    def __init__(self, tmp):
        from harness_rabbitmq import RabbitNode
        self.node = RabbitNode(tmp.join("rabbit"))
        self.port = self.node.port

    def start(self):
        self.node.start()

    def pid(self):
        return self.node.pid()

    def kill(self, down, how):
        if how == "stop_app":
            self.node.stop_app()
            time.sleep(down)
            self.node.start_app()
            return "stop_app"
        pid = self.node.pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_for(lambda: not os.path.exists("/proc/%d" % pid), 20, what="node to die")
        time.sleep(down)
        try:
            os.unlink(self.node.env["RABBITMQ_PID_FILE"])
        except FileNotFoundError:
            pass
        self.node.start()
        return "SIGKILL"

    def stop(self):
        pid = self.node.pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.node.stop()

    def consumer(self):
        return consumers.RabbitConsumer(self.port, self.queue)

    def relay_config(self):
        return {"system.queue-adapter": "rabbitmq",
                "rabbitmq.connectionString": self.node.url() + "?heartbeat=10",
                "rabbitmq.channel-name": self.queue,
                "rabbitmq.timeout-ms": 3000, "rabbitmq.connect-timeout-ms": 2000}

    def logs(self):
        d = self.node.env["RABBITMQ_LOG_BASE"]
        return [os.path.join(d, f) for f in sorted(os.listdir(d))] if os.path.isdir(d) else []


class NatsBroker(ServerBroker):
    """nats-server -js with its store (-sd) kept across kills, and a stream CHAOS that
    captures chaos.> with a duplicate window of DUPLICATE_WINDOW_S (see docs/reliability.md:
    far longer than any republish delay the faults can cause)."""
    name = "nats"
    stream = "CHAOS"
    DUPLICATE_WINDOW_S = 120

    def __init__(self, tmp):
        from harness_nats import NatsServer
        self.server = NatsServer(tmp, name="nats")
        self.port = self.server.port
        self.tap = None

    def start(self):
        self.server.start(timeout=60)
        self.server.stream_create(self.stream, ["chaos.>"],
                                  duplicate_window_s=self.DUPLICATE_WINDOW_S)
        # A plain subscriber sees every copy the relay publishes, before the stream
        # drops the duplicates: it measures how late copies come.
        self.tap = consumers.NatsTap(self.port, "chaos.>").start()

    def stop(self):
        if self.tap is not None:
            self.tap.stopping.set()
        super().stop()

    def consumer(self):
        return consumers.NatsConsumer(self.port, self.stream, "chaos-reader")

    def relay_config(self):
        return {"system.queue-adapter": "nats", "nats.url": self.server.url(),
                "nats.subject": "chaos.{name}", "nats.timeout-ms": 2000,
                "nats.connect-timeout-ms": 1000}

    def logs(self):
        return [self.server.log_path, os.path.join(self.server.dir, "server.log")]

    def extra(self, res, relay_log):
        from harness_nats import NatsError
        try:
            stored = self.server.stream_count(self.stream)
        except (OSError, ConnectionError, NatsError) as e:
            stored = "unknown (%s)" % e
        self.tap.stop()
        res.update({"stream_messages": stored, "duplicate_window_s": self.DUPLICATE_WINDOW_S,
                    "copies_on_the_wire": self.tap.copies(),
                    "latest_copy_s": round(self.tap.max_gap(), 1),
                    "duplicate_pubacks": sum(int(n) for n in re.findall(
                        r"the stream already had (\d+) of", relay_log))})
        problems = []
        # JetStream de-duplicates by Nats-Msg-Id: the stream must hold each event once.
        if res["duplicates"]:
            problems.append("%d duplicates in the stream (Nats-Msg-Id de-duplication)"
                            % res["duplicates"])
        if stored != res["received_unique"]:
            problems.append("the stream holds %s messages for %d unique events"
                            % (stored, res["received_unique"]))
        if res["latest_copy_s"] >= self.DUPLICATE_WINDOW_S / 2:
            problems.append("a copy came %.1fs after the first, over half the duplicate "
                            "window (%ds)" % (res["latest_copy_s"], self.DUPLICATE_WINDOW_S))
        return problems


class MqttBroker(ServerBroker):
    """mosquitto with persistence. A broker kill is a SIGTERM (mosquitto writes its
    persistence file then) and a restart, unless --mqtt-kill SIGKILL: mosquitto saves only
    every autosave_interval, so a SIGKILL may lose what it acknowledged since and had not
    passed on (see docs/reliability.md)."""
    name = "mqtt"
    client_id = "chaos-consumer"
    topic = "chaos/#"

    def __init__(self, tmp):
        from harness_mqtt import Mosquitto
        self.server = Mosquitto(tmp)
        self.port = self.server.port
        self.signal = "SIGTERM"

    def start(self):
        self.server.start(timeout=60)
        # The consumer's persistent session and subscription exist before the relay
        # publishes, so the broker queues for it whenever it is away.
        from harness_mqtt import MqttSubscriber
        MqttSubscriber(self.port, self.client_id, self.topic, qos=1, clean=False).disconnect()

    def kill(self, down, how=None):
        if self.signal == "SIGKILL":
            return super().kill(down, how)
        self.server.stop(30)
        time.sleep(down)
        self.server.start(timeout=120)
        return "SIGTERM"

    def consumer(self):
        return consumers.MqttConsumer(self.port, self.client_id, self.topic)

    def relay_config(self):
        return {"system.queue-adapter": "mqtt", "mqtt.url": self.server.url(),
                "mqtt.topic": "chaos/{name}", "mqtt.timeout-ms": 2000}

    def logs(self):
        return [self.server.log_path, self.server.logfile]


class HttpBroker(ServerBroker):
    """tests/http_receiver.py as a process of its own: it appends every request's body to
    a file (line-buffered, before it answers 204), and is SIGKILLed and SIGSTOPped."""
    name = "http"

    def __init__(self, tmp):
        self.port = harness.free_port()
        self.received = tmp.join("http-received.jsonl")
        self.server = Process([sys.executable, os.path.join(TESTS, "http_receiver.py"),
                               self.port, self.received], tmp.join("http-receiver.log"))

    def start(self, timeout=60):
        self.server.start()
        self.server.wait_listening(self.port, timeout, "the HTTP receiver")

    def kill(self, down, how=None):
        self.server.kill()
        time.sleep(down)
        self.start(timeout=120)
        return "SIGKILL"

    def consumer(self):
        return consumers.FileConsumer(self.received)

    def relay_config(self):
        return {"system.queue-adapter": "http",
                "http.url": "http://127.0.0.1:%d/chaos/{name}" % self.port,
                "http.timeout-ms": 2000, "http.connect-timeout-ms": 1000}


BROKERS = {"redis": RedisBroker, "rabbitmq": RabbitBroker, "nats": NatsBroker,
           "mqtt": MqttBroker, "http": HttpBroker}
GROUPS = {"both": ["redis", "rabbitmq"], "all": list(BROKERS)}


# ---- the relay, supervised ----------------------------------------------------------------

class Supervisor:
    """Keeps one outboxd running: restarts it after our SIGKILLs and after any exit of
    its own (recorded: an exit we did not cause is reported). Samples its memory."""

    def __init__(self, tmp, config):
        self.relay = Relay(tmp, config, name="relay")
        self.lock = threading.RLock()
        self.starts = 0
        self.kills = 0
        self.exits = []          # (status, log tail) of exits we did not cause
        self.exit_reasons = collections.Counter()
        self.peak_hwm_kb = 0
        self.peak_rss_kb = 0
        self.stopping = False
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def start(self):
        with self.lock:
            self.relay.start()
            self.starts += 1
        if not self.thread.is_alive():
            self.thread.start()

    def kill_and_restart(self, delay):
        with self.lock:
            if not self.relay.running():
                return False
            self.relay.signal(signal.SIGKILL)
            self.relay.wait(30)
            self.kills += 1
            time.sleep(delay)
            self.relay.start()
            self.starts += 1
            return True

    def _sample(self, pid):
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.peak_hwm_kb = max(self.peak_hwm_kb, int(line.split()[1]))
                    elif line.startswith("VmRSS:"):
                        self.peak_rss_kb = max(self.peak_rss_kb, int(line.split()[1]))
        except (OSError, ValueError):
            pass

    def _watch(self):
        while not self.done.wait(0.1):
            with self.lock:
                if self.relay.running():
                    self._sample(self.relay.pid)
                elif not self.stopping and self.relay.proc is not None:
                    rc = self.relay.proc.returncode
                    pid = self.relay.proc.pid
                    text = self.relay.log()
                    tail = text[-1500:]
                    mine = [ln for ln in text.splitlines() if "outboxd[%d]" % pid in ln]
                    why = (mine[-1] if mine else "").split(": ", 1)[-1]
                    self.exits.append((rc, tail))
                    self.exit_reasons[why] += 1
                    log("relay exited by itself with status %s (%s); restarting it"
                        % (rc, why))
                    time.sleep(0.5)
                    self.relay.start()
                    self.starts += 1

    def stop(self):
        with self.lock:
            self.stopping = True
            rc = self.relay.stop(30)
        self.done.set()
        self.thread.join(5)
        return rc


# ---- faults ----------------------------------------------------------------------------------

def plan_faults(rng, duration, kinds, rates=RATES):
    """The fault schedule: [(t, kind, params)] sorted by t, all drawn from rng, so a seed
    replays it. Each kind is a Poisson process; a kind that drew no fault gets one."""
    plan = []
    for kind in KINDS:     # fixed order: the same draws whatever --faults selects
        t, times = 0.0, []
        while True:
            t += rng.expovariate(rates[kind] / 60.0)
            if t > duration * 0.95:
                break
            times.append(t)
        if not times:
            times.append(rng.uniform(0.1, 0.8) * duration)
        for t in times:
            if kind == "relay-kill":
                p = {"delay": rng.uniform(0.0, 1.5)}
            elif kind == "broker-kill":
                p = {"down": rng.uniform(0.2, 3.0),
                     "how": "stop_app" if rng.random() < 0.3 else "kill"}
            elif kind == "broker-stall":
                p = {"secs": rng.uniform(1.0, 5.0)}
            elif kind == "write-hold":
                # One in five outlasts the relay's 5 s busy timeout: SQLITE_BUSY for it.
                p = {"secs": rng.uniform(5.5, 7.0) if rng.random() < 0.2
                     else rng.uniform(0.5, 3.0), "rollback": rng.random() < 0.25}
            else:
                p = {"secs": rng.uniform(1.0, 5.0), "slack": rng.randrange(0, 64 << 10)}
            if kind in kinds:
                plan.append((t, kind, p))
    plan.sort(key=lambda f: f[0])
    return plan


class Faults:
    def __init__(self, run):
        self.run = run
        self.counts = collections.Counter()
        self.detail = collections.Counter()
        self.skipped = collections.Counter()
        self.errors = []
        self.locks = {"relay-kill": threading.Lock(), "broker": threading.Lock(),
                      "write-hold": threading.Lock(), "disk-full": threading.Lock()}
        self.threads = []
        self.closing = threading.Event()   # the fault window is over: start no more
        self.stalled_pid = None
        self.hold_rolled_back = []
        self.hold_events = 0
        self.holds = 0

    def inject(self, kind, p):
        th = threading.Thread(target=self._one, args=(kind, p), daemon=True)
        th.start()
        self.threads.append(th)

    def _one(self, kind, p):
        lock = self.locks["broker" if kind.startswith("broker") else kind]
        try:
            with lock:
                # A fault that waited for the previous one of its kind past the end of
                # the window is dropped (counted as skipped), unless it is the only one
                # of its kind.
                if self.closing.is_set() and self.counts[kind] > 0:
                    done = False
                else:
                    done = getattr(self, "_" + kind.replace("-", "_"))(p)
            if done:
                self.counts[kind] += 1
                if isinstance(done, str):
                    self.detail["%s (%s)" % (kind, done)] += 1
            else:
                self.skipped[kind] += 1
        except Exception:
            self.errors.append("%s: %s" % (kind, traceback.format_exc()))
            log("fault %s failed:\n%s" % (kind, traceback.format_exc()))

    def _relay_kill(self, p):
        if self.run.verbose:
            log("fault: SIGKILL the relay, restart after %.2fs" % p["delay"])
        return self.run.supervisor.kill_and_restart(p["delay"])

    def _broker_kill(self, p):
        if self.run.verbose:
            log("fault: kill %s%s, down %.2fs" % (self.run.broker.name, " (%s)" % p["how"]
                                                  if self.run.broker.name == "rabbitmq" else "",
                                                  p["down"]))
        return self.run.broker.kill(p["down"], p["how"])

    def _broker_stall(self, p):
        pid = self.run.broker.pid()
        if pid is None:
            return False
        if self.run.verbose:
            log("fault: SIGSTOP %s for %.2fs" % (self.run.broker.name, p["secs"]))
        self.stalled_pid = pid
        try:
            os.kill(pid, signal.SIGSTOP)
            time.sleep(p["secs"])
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.stalled_pid = None
        return True

    def _write_hold(self, p):
        if self.run.verbose:
            log("fault: hold the write lock %.2fs%s" % (p["secs"],
                                                        " then roll back" if p["rollback"]
                                                        else ""))
        c = sqlite3.connect(self.run.db.path, timeout=30, isolation_level=None)
        try:
            c.execute("PRAGMA busy_timeout=30000")
            c.execute("BEGIN IMMEDIATE")
            self.holds += 1
            order = "hold-%d" % self.holds
            c.execute("INSERT INTO orders(order_id, producer, amount, events, created_at) "
                      "VALUES (?, -1, 1, 1, ?)", (order, int(time.time() * 1000)))
            eid = c.execute("INSERT INTO outbox(name, payload) VALUES ('order.held', ?) "
                            "RETURNING id", (json.dumps({"order": order}),)).fetchone()[0]
            time.sleep(p["secs"])
            if p["rollback"]:
                self.hold_rolled_back.append(eid)
                c.execute("ROLLBACK")
                return "rolled back"
            c.execute("COMMIT")
            self.hold_events += 1
            return "committed"
        except sqlite3.Error as e:
            # A full disk may refuse it: that is a fault meeting a fault, not a failure.
            try:
                if c.in_transaction:
                    c.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            if self.run.verbose:
                log("write-hold: %s" % e)
            return "refused"
        finally:
            c.close()

    def _disk_full(self, p):
        disk = self.run.disk
        if not disk.mounted:
            return False
        if self.run.verbose:
            log("fault: disk full for %.2fs" % p["secs"])
        if not disk.fill(p["slack"]):
            return False
        try:
            time.sleep(p["secs"])
        finally:
            disk.restore()
        return True

    def finish(self):
        self.closing.set()
        for th in self.threads:
            th.join(180)


# ---- one run against one broker -------------------------------------------------------------

SCHEMA_ORDERS = ("CREATE TABLE IF NOT EXISTS orders(order_id TEXT PRIMARY KEY, producer "
                 "INTEGER NOT NULL, amount INTEGER NOT NULL, events INTEGER NOT NULL, "
                 "created_at INTEGER NOT NULL)")


class Run:
    def __init__(self, broker_name, a):
        self.a = a
        self.broker_name = broker_name
        self.verbose = a.verbose
        self.rng = random.Random(a.seed)
        self.tmp = TempDir("chaos-" + broker_name)
        self.disk = None
        self.broker = None
        self.supervisor = None
        self.consumer = None
        self.producers = []
        self.faults = None
        self.db = None

    def config(self):
        cf = {"outbox.database": self.db.path, "relay.batch-size": 256,
              "relay.backoff-initial-ms": 50, "relay.backoff-max-ms": 1000,
              "relay.poll-interval-ms": 500}
        cf.update(self.broker.relay_config())
        return cf

    def execute(self):
        a = self.a
        res = {"broker": self.broker_name, "seed": a.seed, "duration_s": a.duration,
               "producers": a.producers}
        self.disk = DiskFull(self.tmp.join("dbfs"))
        res["disk_full_available"] = self.disk.mounted
        if not self.disk.mounted:
            log("disk-full unavailable (cannot mount a tmpfs: %s); the database is on the "
                "test directory's disk and no disk-full fault is injected" % self.disk.why)
        self.db = OutboxDB(os.path.join(self.disk.path, "app.db"))
        c = self.db.connect()
        c.execute(SCHEMA_ORDERS)
        c.close()

        self.broker = BROKERS[self.broker_name](self.tmp)
        if self.broker_name == "mqtt":
            self.broker.signal = a.mqtt_kill
        t0 = time.monotonic()
        self.broker.start()
        log("%s up on 127.0.0.1:%d in %.1fs" % (self.broker_name, self.broker.port,
                                                 time.monotonic() - t0))
        self.consumer = self.broker.consumer().start()
        self.supervisor = Supervisor(self.tmp, self.config())
        self.supervisor.start()

        out = self.tmp.join("producers")
        os.makedirs(out)
        for i in range(a.producers):
            p = Process([sys.executable, os.path.join(HERE, "producer.py"), "--db",
                         self.db.path, "--index", i, "--seed", a.seed, "--out", out,
                         "--rate", a.rate], self.tmp.join("producer-%d.log" % i))
            p.start()
            self.producers.append(p)

        kinds = list(a.faults)
        if not self.disk.mounted and "disk-full" in kinds:
            kinds.remove("disk-full")
        plan = plan_faults(self.rng, a.duration, kinds, self.broker.rates)
        res["planned"] = dict(collections.Counter(k for _, k, _ in plan))
        log("%s: %d producers for %.0fs, %d faults planned %s"
            % (self.broker_name, a.producers, a.duration, len(plan), res["planned"]))
        self.faults = Faults(self)
        start = time.monotonic()
        next_report = start + 15
        for t, kind, p in plan:
            while time.monotonic() < start + t:
                time.sleep(min(0.05, start + t - time.monotonic() + 0.001))
                if time.monotonic() >= next_report:
                    next_report += 15
                    self.progress(start)
            self.check_producers()
            self.faults.inject(kind, p)
        while time.monotonic() < start + a.duration:
            time.sleep(0.05)
            if time.monotonic() >= next_report:
                next_report += 15
                self.progress(start)
        log("faults stop; waiting for the last ones to end")
        self.faults.finish()
        log("faults over; stopping the producers")
        self.disk.restore()
        self.check_producers()
        for p in self.producers:
            p.signal(signal.SIGTERM)
        for p in self.producers:
            p.wait(60)
        produce_s = time.monotonic() - start
        res["produce_s"] = round(produce_s, 1)

        # Drain: the relay hands off everything, then the consumer catches up.
        t0 = time.monotonic()
        top = self.db.max_seq()
        sink = self.broker_name

        def drained():
            cur = self.db.query("SELECT cursor FROM outbox_sink WHERE name = ?", (sink,))
            retrying = self.db.query("SELECT count(*) FROM outbox_retry WHERE sink = ? "
                                     "AND state = 'retry'", (sink,))[0][0]
            return cur and cur[0][0] >= top and retrying == 0
        try:
            wait_for(drained, a.drain_timeout, 0.2, what="the relay to drain")
            res["drained"] = True
        except AssertionError:
            res["drained"] = False
            log("the relay did not drain within %.0fs" % a.drain_timeout)
        res["drain_s"] = round(time.monotonic() - t0, 1)
        log("relay drained in %.1fs; waiting for the consumer" % res["drain_s"])
        committed = self.committed()
        t1 = time.monotonic()
        while time.monotonic() - t1 < 60:
            if self.consumer.has_all(committed) and self.consumer.quiet_for() > 1.0:
                break
            time.sleep(0.2)
        res["consumer_wait_s"] = round(time.monotonic() - t1, 1)
        rc = self.supervisor.stop()
        res["relay_final_exit"] = rc
        self.consumer.stop()
        log("consumer done in %.1fs; checking" % res["consumer_wait_s"])
        self.evaluate(res, committed)
        return res

    def progress(self, start):
        seen = self.consumer.snapshot()
        log("t=%3.0fs: top seq %d, received %d (%d unique), faults %s, relay starts %d"
            % (time.monotonic() - start, self.db.max_seq(), sum(seen.values()), len(seen),
               dict(self.faults.counts), self.supervisor.starts))

    def check_producers(self):
        for i, p in enumerate(self.producers):
            if not p.running():
                raise RuntimeError("producer %d exited with %s:\n%s"
                                   % (i, p.proc.returncode, p.log()[-2000:]))

    def committed(self):
        rows = self.db.query("SELECT o.id FROM outbox o JOIN orders b ON b.order_id = "
                             "json_extract(o.payload, '$.order')")
        return {r[0] for r in rows}

    def read_ids(self, pattern):
        out = set()
        d = self.tmp.join("producers")
        for f in os.listdir(d):
            if f.startswith(pattern):
                with open(os.path.join(d, f)) as fh:
                    out.update(line.strip() for line in fh if line.strip())
        return out

    def evaluate(self, res, committed):
        db = self.db
        all_ids = {r[0] for r in db.query("SELECT id FROM outbox")}
        rolled = self.read_ids("rolledback-") | set(self.faults.hold_rolled_back)
        aborted = self.read_ids("aborted-")
        got = self.consumer.snapshot()
        received = set(got)
        stats = collections.Counter()
        errors = collections.Counter()
        for f in os.listdir(self.tmp.join("producers")):
            if f.startswith("stats-"):
                with open(self.tmp.join("producers", f)) as fh:
                    s = json.load(fh)
                for k, v in s.items():
                    if k == "errors":
                        errors.update(v)
                    else:
                        stats[k] += v
        # Counted here: SQLite plans the same check as a join it scans (quadratic).
        per_order = collections.Counter(
            r[0] for r in db.query("SELECT json_extract(payload, '$.order') FROM outbox"))
        bad_orders = sum(1 for order, n in db.query("SELECT order_id, events FROM orders")
                         if per_order.get(order, 0) != n)
        res.update({
            "transactions": stats["transactions"] + self.faults.counts["write-hold"],
            "committed": len(committed),
            "received": sum(got.values()),
            "received_unique": len(received),
            "lost": len(committed - received),
            "lost_ids": sorted(committed - received)[:20],
            "rolled_back": len(rolled),
            "rolled_back_published": len(rolled & received),
            "rolled_back_in_db": len(rolled & all_ids),
            "aborted_by_errors": len(aborted),
            "aborted_but_committed": len(aborted & committed),
            "unknown_received": len(received - all_ids),
            "orphan_events": len(all_ids - committed),
            "orders_with_wrong_event_count": bad_orders,
            "duplicates": sum(got.values()) - len(received),
            "failed": db.query("SELECT count(*) FROM outbox_retry WHERE state = 'failed'")[0][0],
            "retrying": db.query("SELECT count(*) FROM outbox_retry WHERE state = 'retry'")[0][0],
            "faults": {k: self.faults.counts.get(k, 0) for k in KINDS},
            "fault_detail": dict(self.faults.detail),
            "faults_skipped": dict(self.faults.skipped),
            "fault_errors": self.faults.errors,
            "relay_starts": self.supervisor.starts,
            "relay_restarts": self.supervisor.starts - 1,
            "relay_kills": self.supervisor.kills,
            "relay_own_exits": [rc for rc, _ in self.supervisor.exits],
            "relay_own_exit_reasons": dict(self.supervisor.exit_reasons),
            "relay_peak_hwm_kb": self.supervisor.peak_hwm_kb,
            "relay_peak_rss_kb": self.supervisor.peak_rss_kb,
            "consumer_reconnects": self.consumer.reconnects,
            "consumer_redeliveries": self.consumer.redeliveries,
            "consumer_bad_messages": self.consumer.bad,
            "producer_errors": dict(errors),
        })
        res.update(self.consumer.details())
        rel = self.supervisor.relay.log()
        res["relay_log_counts"] = {
            k: rel.count(k) for k in ("connection lost", "cannot connect", "connected again",
                                      "database or disk is full", "database is locked",
                                      "no reply within", "rejected", "failed after")}
        san = self.supervisor.relay.sanitizer_report()
        res["sanitizer_report"] = san
        crashes = [(rc, tail) for rc, tail in self.supervisor.exits
                   if rc is None or rc < 0 or rc not in (0, 1, 75)]
        res["relay_crashes"] = len(crashes)
        problems = []
        if res["lost"]:
            problems.append("%d committed events lost (first: %s)"
                            % (res["lost"], ", ".join(res["lost_ids"][:5])))
        if res["rolled_back_published"]:
            problems.append("%d rolled-back events published" % res["rolled_back_published"])
        if res["unknown_received"]:
            problems.append("%d received ids are not in the outbox" % res["unknown_received"])
        if res["failed"]:
            problems.append("%d events left failed" % res["failed"])
        if res["rolled_back_in_db"] or res["orphan_events"] or bad_orders:
            problems.append("atomicity: %d rolled-back ids in the outbox, %d events without "
                            "their order, %d orders with a wrong event count"
                            % (res["rolled_back_in_db"], res["orphan_events"], bad_orders))
        if not res["drained"]:
            problems.append("the relay did not drain within %.0fs" % self.a.drain_timeout)
        if san:
            problems.append("sanitizer report in the relay's stderr:\n" + san)
        if crashes:
            problems.append("the relay crashed %d times; last status %s:\n%s"
                            % (len(crashes), crashes[-1][0], crashes[-1][1]))
        if res["relay_final_exit"] != 0:
            problems.append("the relay exited %s on SIGTERM" % res["relay_final_exit"])
        if self.faults.errors:
            problems.append("%d fault injections failed (harness)" % len(self.faults.errors))
        problems += self.broker.extra(res, rel)
        res["problems"] = problems
        res["ok"] = not problems

    def cleanup(self, keep):
        for p in self.producers:
            p.kill()
        if self.faults is not None and self.faults.stalled_pid:
            try:
                os.kill(self.faults.stalled_pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        if self.supervisor is not None:
            try:
                self.supervisor.stop()
            except Exception:
                pass
        if self.consumer is not None:
            self.consumer.stopping.set()
        if self.broker is not None:
            try:
                self.broker.stop()
            except Exception:
                traceback.print_exc()
        if self.disk is not None:
            if keep and self.disk.mounted:
                # Save the database out of the tmpfs before it goes.
                for f in os.listdir(self.disk.path):
                    shutil.copy2(os.path.join(self.disk.path, f), self.tmp.path)
            self.disk.unmount()
        if keep:
            print("# kept %s" % self.tmp.path, flush=True)
        else:
            self.tmp.cleanup()


# ---- report -----------------------------------------------------------------------------

def table(results):
    rows = [
        ("seed", "seed"), ("duration of faults, s", "produce_s"),
        ("drain after faults, s", "drain_s"),
        ("transactions", "transactions"), ("committed events", "committed"),
        ("received (with duplicates)", "received"), ("received unique", "received_unique"),
        ("LOST (must be 0)", "lost"),
        ("rolled back on purpose", "rolled_back"),
        ("ROLLED-BACK PUBLISHED (must be 0)", "rolled_back_published"),
        ("received but not in outbox (must be 0)", "unknown_received"),
        ("aborted by errors (busy/full)", "aborted_by_errors"),
        ("duplicates", "duplicates"), ("FAILED (must be 0)", "failed"),
        ("NATS: messages in the stream", "stream_messages"),
        ("NATS: copies published (wire)", "copies_on_the_wire"),
        ("NATS: Duplicate PubAcks (relay log)", "duplicate_pubacks"),
        ("NATS: latest copy after 1st, s", "latest_copy_s"),
        ("NATS: duplicate window, s", "duplicate_window_s"),
        ("consumer redeliveries (not counted)", "consumer_redeliveries"),
        ("MQTT: re-sent by the broker (DUP flag)", "mqtt_dup_flagged"),
        ("left retrying", "retrying"),
    ]
    rows += [("faults: " + k, ("faults", k)) for k in KINDS]
    rows += [("relay restarts", "relay_restarts"), ("relay exits of its own", "relay_own_exits"),
             ("relay peak RSS (VmHWM), MB", "hwm_mb"),
             ("consumer reconnects", "consumer_reconnects"), ("verdict", "verdict")]
    for r in results:
        r["hwm_mb"] = "%.1f" % (r.get("relay_peak_hwm_kb", 0) / 1024.0)
        r["verdict"] = "PASS" if r.get("ok") else "FAIL"
    w = max(len(label) for label, _ in rows)
    out = ["%-*s  %s" % (w, "", "  ".join("%14s" % r["broker"] for r in results))]
    for label, key in rows:
        if label.startswith(("NATS:", "MQTT:")) and not any(key in r for r in results):
            continue
        vals = []
        for r in results:
            v = r.get(key[0], {}).get(key[1], "") if isinstance(key, tuple) else r.get(key, "")
            if isinstance(v, list):
                v = ",".join(str(x) for x in v) or "-"
            vals.append("%14s" % v)
        out.append("%-*s  %s" % (w, label, "  ".join(vals)))
    return "\n".join(out)


def main(a):
    if not os.access(harness.OUTBOXD, os.X_OK):
        print("chaos.py: %s not found: give --builddir (or OUTBOX_BUILDDIR)" % harness.OUTBOXD,
              file=sys.stderr)
        return 2
    brokers = GROUPS.get(a.broker, [a.broker])
    log("seed %d (re-run with --seed %d)" % (a.seed, a.seed))
    results = []
    status = 0

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    for b in brokers:
        run = Run(b, a)
        keep = a.keep
        try:
            res = run.execute()
            results.append(res)
            if not res["ok"]:
                keep = True
                status = 1
        except BaseException as e:
            keep = True
            status = 2
            interrupted = isinstance(e, KeyboardInterrupt)
            why = "interrupted (SIGTERM or ^C)" if interrupted else "harness error: %s" % e
            log("%s run: %s" % (b, why))
            traceback.print_exc()
            results.append({"broker": b, "seed": a.seed, "ok": False, "problems": [why]})
        else:
            interrupted = False
        finally:
            run.cleanup(keep)
        if interrupted:
            break
    print()
    print(table(results))
    for r in results:
        for p in r.get("problems", []):
            print("%s: FAIL: %s" % (r["broker"], p))
        if r.get("fault_detail"):
            print("%s: fault detail %s; skipped %s" % (r["broker"], r["fault_detail"],
                                                       r.get("faults_skipped") or "none"))
        if r.get("producer_errors"):
            print("%s: producer errors %s" % (r["broker"], r["producer_errors"]))
        if r.get("relay_log_counts"):
            print("%s: relay log lines %s" % (r["broker"], r["relay_log_counts"]))
        if r.get("relay_own_exits"):
            print("%s: note: the relay exited by itself %d times (statuses %s): %s"
                  % (r["broker"], len(r["relay_own_exits"]), r["relay_own_exits"],
                     r.get("relay_own_exit_reasons")))
    print("seed %d: %s" % (a.seed, "PASS" if status == 0 else "FAIL"))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    return status


if __name__ == "__main__":
    sys.exit(main(ARGS))
