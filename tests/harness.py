"""harness.py: helpers for outboxd's integration tests (Python 3 standard library only).

- Paths: BUILDDIR and SRCDIR (from OUTBOX_BUILDDIR / OUTBOX_SRCDIR, set by `make check`).
- TempDir: a private directory under the build tree, removed afterwards even on failure
  (kept when OUTBOX_KEEP_TMP=1, to look at logs).
- free_port(), wait_for(): a loopback port nobody uses; poll a condition with a deadline.
- Process: a child we started (start/stop/kill/pause/resume). We only ever signal our own
  children, never a server or relay we did not start.
- RedisServer: a private redis-server on 127.0.0.1:<free port>, no persistence unless
  asked. Resp: a minimal RESP2 client on a raw socket. Subscriber: SUBSCRIBE/PSUBSCRIBE on
  its own thread, collecting messages.
- Relay: outboxd with a JSON config (a dict) and flags; stderr captured to a file.
- OutboxDB: create an outbox database, insert events with plain SQL, read the relay's state.
"""

import atexit
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("OUTBOX_SRCDIR") or os.path.dirname(HERE)
BUILDDIR = os.environ.get("OUTBOX_BUILDDIR") or SRCDIR
OUTBOXD = os.path.join(BUILDDIR, "relay", "outboxd")
OUTBOXCTL = os.path.join(BUILDDIR, "tools", "outboxctl")
SCHEMA = os.path.join(SRCDIR, "schema", "outbox.sql")



def read_exit_statuses(path=os.path.join(SRCDIR, "relay", "exit.h")):
    """{"EXIT_OK": 0, ...}: the exit statuses of outboxd and outboxctl, from the one file
    that defines them."""
    with open(path) as f:
        found = re.findall(r"^#define (EXIT_[A-Z_]+)\s+(\d+)", f.read(), re.M)
    if not found:
        raise AssertionError("no exit statuses in %s" % path)
    return {name: int(value) for name, value in found}


EXIT_STATUSES = read_exit_statuses()
globals().update(EXIT_STATUSES)  # EXIT_OK, EXIT_CONFIG, ... as module names


# ---- small things -----------------------------------------------------------------------

def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, interval=0.01, what="condition"):
    """Poll predicate until it returns a true value (which is returned); AssertionError
    after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


class TempDir:
    """A temporary directory under BUILDDIR/tests/tmp (short, so unix socket paths fit
    when possible); removed on exit unless OUTBOX_KEEP_TMP=1."""

    def __init__(self, prefix="t"):
        base = os.path.join(BUILDDIR, "tests", "tmp")
        try:
            os.makedirs(base, exist_ok=True)
        except OSError:
            base = None
        self.path = tempfile.mkdtemp(prefix=prefix + "-", dir=base)

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def cleanup(self):
        if os.environ.get("OUTBOX_KEEP_TMP") == "1":
            print("# kept %s" % self.path)
            return
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


# ---- processes ----------------------------------------------------------------------------

# Every child started here, so none outlives the test run, however the run ends.
_children = []


@atexit.register
def _reap_children():
    for p in _children:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass


class Process:
    """A child process we started; its stderr (and stdout unless piped) go to files."""

    def __init__(self, argv, log_path, stdout_path=None, env=None, cwd=None):
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.stdout_path = stdout_path or log_path
        self.env = env
        self.cwd = cwd
        self.proc = None

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        err = open(self.log_path, "ab")
        out = err if self.stdout_path == self.log_path else open(self.stdout_path, "ab")
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, env=self.env, cwd=self.cwd)
            _children[:] = [p for p in _children if p.poll() is None]
            _children.append(self.proc)
        finally:
            err.close()
            if out is not err:
                out.close()
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout=30):
        return self.proc.wait(timeout)

    def signal(self, sig):
        if self.running():
            self.proc.send_signal(sig)

    def stop(self, timeout=10):
        """SIGTERM (after SIGCONT, in case it is paused), then SIGKILL if it lingers.
        Returns the exit status."""
        if self.proc is None:
            return None
        if self.running():
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()

    def wait_listening(self, port, timeout, what):
        """Wait until something accepts on 127.0.0.1:port; AssertionError if this process
        exits first or after timeout."""
        def ready():
            if not self.running():
                raise AssertionError("%s exited with %s:\n%s"
                                     % (what, self.proc.returncode, self.log()))
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
            except OSError:
                return False
            return True
        wait_for(ready, timeout, what="%s on port %d" % (what, port))

    def kill(self):
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    def pause(self):
        self.signal(signal.SIGSTOP)

    def resume(self):
        self.signal(signal.SIGCONT)

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def output(self):
        try:
            with open(self.stdout_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


# ---- TLS: a CA and a server certificate made with openssl ------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True,
                   timeout=60)


def make_ca(dir, name):
    """A CA (name.crt, name.key) in dir."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=outboxd test CA %s" % name, "-keyout", name + ".key",
            "-out", name + ".crt", cwd=dir)
    return os.path.join(dir, name + ".crt")


def make_server_cert(dir, ca):
    """server.crt/server.key for localhost and 127.0.0.1, signed by the CA ca."""
    with open(os.path.join(dir, "san.ext"), "w") as f:
        f.write("subjectAltName = DNS:localhost, IP:127.0.0.1\n"
                "extendedKeyUsage = serverAuth\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "server.key", "-out", "server.csr", cwd=dir)
    openssl("x509", "-req", "-in", "server.csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt",
            cwd=dir)


# ---- Redis --------------------------------------------------------------------------------

class RespError(Exception):
    """An error reply."""


class LineSocket:
    """A TCP connection to a server speaking a text protocol: lines ending in CRLF, and
    payloads of a known length followed by CRLF (RESP, NATS)."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data


class Resp(LineSocket):
    """A minimal RESP2 client over a raw socket."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, password=None, username=None):
        super().__init__(port, host, timeout)
        if password is not None:
            self.call(*(["AUTH", username, password] if username else ["AUTH", password]))

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def send(self, *args):
        self.sock.sendall(self.encode(*args))

    def read(self):
        """The next reply: str (status), bytes (bulk), int, None, list, or RespError."""
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ValueError("bad RESP line %r" % line)

    def call(self, *args):
        """Send a command and return its reply; an error reply raises RespError."""
        self.send(*args)
        reply = self.read()
        if isinstance(reply, RespError):
            raise reply
        return reply


class RedisServer(Process):
    """A private redis-server on 127.0.0.1 and a free port. args are extra config
    directives as command-line options, e.g. ["--proto-max-bulk-len", "1mb"]."""

    def __init__(self, tmp, args=(), password=None, port=None, name="redis"):
        self.port = port or free_port()
        self.password = password
        self.dir = os.path.join(tmp.path if isinstance(tmp, TempDir) else tmp,
                                "%s-%d" % (name, self.port))
        os.makedirs(self.dir, exist_ok=True)
        argv = [shutil.which("redis-server") or "redis-server",
                "--port", self.port, "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
                "--logfile", "", "--loglevel", "warning"]
        if password is not None:
            argv += ["--requirepass", password]
        argv += list(args)
        super().__init__(argv, os.path.join(self.dir, "server.log"))

    def url(self, db=None, password=None):
        auth = ":%s@" % password if password else ""
        return "redis://%s127.0.0.1:%d%s" % (auth, self.port, "/%d" % db if db else "")

    def start(self, timeout=10):
        super().start()

        def ready():
            if not self.running():
                raise AssertionError("redis-server exited with %s:\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                c = self.client()
            except (OSError, RespError):
                return False
            try:
                return c.call("PING") == "PONG"
            except (OSError, RespError):
                return False
            finally:
                c.close()
        wait_for(ready, timeout, what="redis-server on port %d" % self.port)
        return self

    def restart(self, timeout=10):
        self.stop()
        return self.start(timeout)

    def client(self, timeout=10.0):
        return Resp(self.port, timeout=timeout, password=self.password)

    def call(self, *args):
        c = self.client()
        try:
            return c.call(*args)
        finally:
            c.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Subscriber:
    """SUBSCRIBE / PSUBSCRIBE on a connection of its own; a thread collects messages as
    dicts {"channel": str, "data": bytes, "pattern": str or None}, in arrival order."""

    def __init__(self, server, channels=(), patterns=(), timeout=10.0):
        port = server.port if isinstance(server, RedisServer) else server
        password = server.password if isinstance(server, RedisServer) else None
        self.conn = Resp(port, timeout=timeout, password=password)
        self.messages = []
        self.confirmed = 0
        self.closed = False
        self.cond = threading.Condition()
        self.conn.sock.settimeout(None)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if channels:
            self.subscribe(*channels)
        if patterns:
            self.psubscribe(*patterns)

    def _run(self):
        try:
            while True:
                reply = self.conn.read()
                if not isinstance(reply, list) or not reply:
                    continue
                kind = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
                with self.cond:
                    if kind == "message":
                        self.messages.append({"channel": reply[1].decode(),
                                              "data": reply[2], "pattern": None})
                    elif kind == "pmessage":
                        self.messages.append({"channel": reply[2].decode(),
                                              "data": reply[3],
                                              "pattern": reply[1].decode()})
                    elif kind in ("subscribe", "psubscribe"):
                        self.confirmed += 1
                    self.cond.notify_all()
        except (OSError, ConnectionError, ValueError):
            pass
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def _subscribe(self, command, names, timeout=10.0):
        with self.cond:
            want = self.confirmed + len(names)
        self.conn.send(command, *names)
        with self.cond:
            if not self.cond.wait_for(lambda: self.confirmed >= want or self.closed, timeout):
                raise AssertionError("%s %s: no confirmation" % (command, names))
            if self.closed:
                raise AssertionError("%s %s: connection closed" % (command, names))

    def subscribe(self, *channels):
        self._subscribe("SUBSCRIBE", channels)

    def psubscribe(self, *patterns):
        self._subscribe("PSUBSCRIBE", patterns)

    def wait(self, n, timeout=10.0):
        """The first n messages; AssertionError if fewer arrive within timeout."""
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.messages) >= n or self.closed, timeout)
            got = list(self.messages)
        if not ok or len(got) < n:
            raise AssertionError("expected %d messages, got %d within %.1fs%s"
                                 % (n, len(got), timeout,
                                    " (connection closed)" if self.closed else ""))
        return got[:n]

    def settle(self, quiet=0.3, timeout=10.0):
        """All messages, once none arrived for quiet seconds."""
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            with self.cond:
                n = len(self.messages)
            if n == last:
                break
            last = n
            time.sleep(quiet)
        with self.cond:
            return list(self.messages)

    def received(self):
        with self.cond:
            return list(self.messages)

    def envelopes(self):
        return [json.loads(m["data"]) for m in self.received()]

    def wait_closed(self, timeout=10.0):
        with self.cond:
            return self.cond.wait_for(lambda: self.closed, timeout)

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(5)
        self.conn.close()


# ---- the relay ------------------------------------------------------------------------------

class Relay(Process):
    """outboxd with config (a dict, written as JSON; None: no -c) and extra args."""

    _count = 0

    def __init__(self, tmp, config=None, args=(), name=None):
        Relay._count += 1
        base = tmp.path if isinstance(tmp, TempDir) else tmp
        name = name or "relay-%d" % Relay._count
        self.config_path = None
        argv = [OUTBOXD]
        if config is not None:
            self.config_path = os.path.join(base, name + ".json")
            # Private, as a config that may hold a password should be (outboxd warns
            # about one that other users can read).
            fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(config, f, indent=1)
            argv += ["-c", self.config_path]
        argv += list(args)
        super().__init__(argv, os.path.join(base, name + ".stderr"),
                         stdout_path=os.path.join(base, name + ".stdout"))

    def once(self, timeout=60):
        """Run with --once; returns (exit status, stderr)."""
        self.argv.append("--once")
        self.start()
        try:
            rc = self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("outboxd --once did not finish within %ds:\n%s"
                                 % (timeout, self.log()))
        finally:
            self.argv.remove("--once")
        return rc, self.log()

    def wait_log(self, text, timeout=10.0):
        """Wait until stderr contains text; returns the log."""
        return wait_for(lambda: self.log() if text in self.log() else None, timeout,
                        what="%r in the relay's log" % text)

    def sanitizer_report(self):
        """A sanitizer's report in stderr, or None."""
        log = self.log()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                       "runtime error:"):
            if marker in log:
                return log[log.index(marker):][:4000]
        return None


def run_once(tmp, config=None, args=(), timeout=60):
    """outboxd --once; (exit status, stderr)."""
    return Relay(tmp, config, args).once(timeout)


# ---- the database ---------------------------------------------------------------------------

class OutboxDB:
    """An outbox database at path: created with `outboxctl -d DB init` when outboxctl is
    built, else from schema/outbox.sql. Producers use plain SQL, as any language would."""

    def __init__(self, path, create=True):
        self.path = path
        if create and not os.path.exists(path):
            self.create()

    def create(self):
        if os.access(OUTBOXCTL, os.X_OK):
            r = subprocess.run([OUTBOXCTL, "-d", self.path, "init"], capture_output=True,
                               text=True)
            if r.returncode == 0:
                return
            raise AssertionError("outboxctl init failed (%d): %s"
                                 % (r.returncode, r.stderr))
        with open(SCHEMA) as f:
            schema = f.read()
        c = sqlite3.connect(self.path)
        try:
            c.executescript(schema)
            c.execute("PRAGMA journal_mode=WAL")
        finally:
            c.close()

    def connect(self):
        c = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        c.execute("PRAGMA busy_timeout=30000")
        return c

    def query(self, sql, args=()):
        c = self.connect()
        try:
            return c.execute(sql, args).fetchall()
        finally:
            c.close()

    def insert(self, name, payload="{}", headers=None, key=None, id=None):
        """One event in its own transaction; returns (seq, id)."""
        return self.insert_many([(name, payload, headers, key, id)])[0]

    def insert_many(self, rows):
        """rows of (name, payload[, headers[, key[, id]]]) in one transaction; returns
        [(seq, id)]. payload and headers may be dicts/lists (dumped as JSON) or text."""
        out = []
        c = self.connect()
        try:
            c.execute("BEGIN IMMEDIATE")
            for row in rows:
                row = tuple(row) + (None,) * (5 - len(row))
                name, payload, headers, key, eid = row
                if not isinstance(payload, str):
                    payload = json.dumps(payload)
                if headers is not None and not isinstance(headers, str):
                    headers = json.dumps(headers)
                if eid is None:
                    cur = c.execute("INSERT INTO outbox(name, payload, headers, key) "
                                    "VALUES (?, ?, ?, ?) RETURNING seq, id",
                                    (name, payload, headers, key))
                else:
                    cur = c.execute("INSERT INTO outbox(id, name, payload, headers, key) "
                                    "VALUES (?, ?, ?, ?, ?) RETURNING seq, id",
                                    (eid, name, payload, headers, key))
                out.append(tuple(cur.fetchone()))
            c.execute("COMMIT")
        finally:
            c.close()
        return out

    def events(self):
        """[{seq, id, name, payload, headers, key}] in seq order."""
        rows = self.query("SELECT seq, id, name, payload, headers, key FROM outbox "
                          "ORDER BY seq")
        return [dict(zip(("seq", "id", "name", "payload", "headers", "key"), r))
                for r in rows]

    def sinks(self):
        """{name: cursor}"""
        return dict(self.query("SELECT name, cursor FROM outbox_sink"))

    def cursor(self, sink):
        rows = self.query("SELECT cursor FROM outbox_sink WHERE name = ?", (sink,))
        return rows[0][0] if rows else None

    def retry_rows(self, sink=None):
        """[{sink, seq, state, attempts, next_attempt_at, last_error}] in seq order."""
        sql = ("SELECT sink, seq, state, attempts, next_attempt_at, last_error "
               "FROM outbox_retry")
        args = ()
        if sink is not None:
            sql += " WHERE sink = ?"
            args = (sink,)
        rows = self.query(sql + " ORDER BY sink, seq", args)
        return [dict(zip(("sink", "seq", "state", "attempts", "next_attempt_at",
                          "last_error"), r)) for r in rows]

    def failed_rows(self, sink=None):
        return [r for r in self.retry_rows(sink) if r["state"] == "failed"]

    def max_seq(self):
        return self.query("SELECT coalesce(max(seq), 0) FROM outbox")[0][0]


class Producer(threading.Thread):
    """Commits events named name with payload {"i": i} (i = 0, 1, ...), per_tx a
    transaction, until stopped; count says how many it committed."""

    def __init__(self, db, name="tick", per_tx=1, pause=0.002):
        super().__init__(daemon=True)
        self.db, self.name, self.per_tx, self.pause = db, name, per_tx, pause
        self.stopping = threading.Event()
        self.count = 0

    def run(self):
        while not self.stopping.is_set():
            self.db.insert_many([(self.name, {"i": self.count + k})
                                 for k in range(self.per_tx)])
            self.count += self.per_tx
            time.sleep(self.pause)

    def stop(self):
        self.stopping.set()
        self.join(10)


# ---- a test case with relays ----------------------------------------------------------------

# Fast retries so rejected events reach their verdict quickly.
FAST_RETRIES = {
    "relay.backoff-initial-ms": 20,
    "relay.backoff-max-ms": 200,
    "relay.poll-interval-ms": 200,
}


class BrokerCase(unittest.TestCase):
    """What the broker tests share: relays that are stopped, and checked for sanitizer
    reports, when the test ends; config dicts written with Python keyword names."""

    def make_config(self, base, **keys):
        """base + FAST_RETRIES + keys, '_' in a keyword read as '-' and '__' as '.':
        redis__channel_name=... is "redis.channel-name"."""
        cf = dict(base)
        cf.update(FAST_RETRIES)
        for k, v in keys.items():
            cf[k.replace("__", ".").replace("_", "-")] = v
        return cf

    def relay(self, config, args=()):
        r = Relay(self.tmp, config, args)
        self.addCleanup(self.finish_relay, r)
        return r

    def relay_env(self, config, args=(), **env):
        """A relay whose environment has no OUTBOXD_* variable but those in env."""
        r = self.relay(config, args)
        r.env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOXD_")}
        r.env.update(env)
        return r

    def finish_relay(self, r):
        if r.proc is not None:
            r.stop()
        self.assertIsNone(r.sanitizer_report(), "sanitizer report in the relay's stderr")

    def once(self, config, args=(), expect=EXIT_OK):
        """outboxd --once, which must exit with expect; returns its log."""
        rc, log = self.relay(config, args).once()
        self.assertEqual(rc, expect, "outboxd --once exited %d:\n%s" % (rc, log))
        return log

