"""harness_nats.py: a private nats-server with JetStream, and a minimal NATS client.

- NatsServer: `nats-server -js -sd DIR -a 127.0.0.1 -p PORT`, its store in a directory of
  its own, so a restart keeps the streams (start/stop/kill/restart on the same port).
- Nats: the NATS text protocol on a raw socket (Python 3 standard library only): publish,
  subscribe, request, and the JetStream API calls the tests need (create a stream, its
  message count, read its messages with their headers).
"""

import base64
import json
import os
import shutil

from harness import LineSocket, Process, free_port, wait_for


class NatsError(Exception):
    """-ERR from the server, or an error in a JetStream API reply."""


class Nats(LineSocket):
    """One connection. Messages are (subject, headers dict or None, data bytes)."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, user=None, password=None):
        super().__init__(port, host, timeout)
        self.inbox_sid = None
        self.sid = 0
        self.inbox_n = 0
        line = self._line()
        if not line.startswith(b"INFO "):
            raise NatsError("expected INFO, got %r" % line)
        self.info = json.loads(line[5:])
        connect = {"verbose": False, "pedantic": False, "headers": True,
                   "no_responders": True, "protocol": 1}
        if user is not None:
            connect.update(user=user, **{"pass": password})
        self._send(b"CONNECT %s\r\nPING\r\n" % json.dumps(connect).encode())
        self._until_pong()

    def _send(self, data):
        self.sock.sendall(data)

    @staticmethod
    def parse_headers(block):
        """{name: value} of a NATS/1.0 header block (the status line as "Status")."""
        lines = block.decode().split("\r\n")
        out = {}
        status = lines[0][len("NATS/1.0"):].strip()
        if status:
            out["Status"] = status
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                out[k.strip()] = v.strip()
        return out

    def read(self):
        """The next message (subject, headers, data), answering PINGs on the way."""
        subject, _reply, headers, data = self.read_msg()
        return subject, headers, data

    def read_msg(self):
        """The next message with its reply subject (None without one):
        (subject, reply, headers, data)."""
        while True:
            line = self._line()
            if line == b"PING":
                self._send(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                raise NatsError(line.decode())
            elif line.startswith(b"MSG "):
                parts = line.split()       # MSG subject sid [reply] size
                reply = parts[3].decode() if len(parts) == 5 else None
                return parts[1].decode(), reply, None, self._exact(int(parts[-1]))
            elif line.startswith(b"HMSG "):
                parts = line.split()       # HMSG subject sid [reply] hsize size
                reply = parts[3].decode() if len(parts) == 6 else None
                hlen, total = int(parts[-2]), int(parts[-1])
                raw = self._exact(total)
                return (parts[1].decode(), reply, self.parse_headers(raw[:hlen]),
                        raw[hlen:])

    def _until_pong(self):
        while True:
            line = self._line()
            if line == b"PONG":
                return
            if line.startswith(b"-ERR"):
                raise NatsError(line.decode())

    def subscribe(self, subject):
        self.sid += 1
        self._send(b"SUB %s %d\r\nPING\r\n" % (subject.encode(), self.sid))
        self._until_pong()
        return self.sid

    def publish(self, subject, data=b"", reply=None):
        if not isinstance(data, bytes):
            data = data.encode()
        self._send(b"PUB %s %s%d\r\n%s\r\n" % (subject.encode(),
                   (reply.encode() + b" ") if reply else b"", len(data), data))

    def request(self, subject, data=b"", timeout=5.0):
        """(headers, data) of the reply."""
        prefix = "_INBOX.t%d.%d." % (os.getpid(), id(self))
        if self.inbox_sid is None:
            self.inbox_sid = self.subscribe(prefix + "*")
        self.inbox_n += 1
        inbox = prefix + str(self.inbox_n)
        self.publish(subject, data, reply=inbox)
        self.sock.settimeout(timeout)
        while True:
            got, headers, body = self.read()
            if got == inbox:
                return headers, body

    # ---- JetStream ----

    def js(self, api, req=None):
        headers, body = self.request("$JS.API." + api, json.dumps(req) if req else b"")
        if headers and headers.get("Status", "").startswith("503"):
            raise NatsError("JetStream is not enabled (no responders)")
        reply = json.loads(body)
        if "error" in reply:
            raise NatsError("%s: %s" % (api, reply["error"]))
        return reply

    def stream_create(self, name, subjects, duplicate_window_s=None, **more):
        cfg = {"name": name, "subjects": list(subjects), "storage": "file",
               "retention": "limits", "num_replicas": 1}
        if duplicate_window_s is not None:
            cfg["duplicate_window"] = int(duplicate_window_s * 1e9)
        cfg.update(more)
        return self.js("STREAM.CREATE." + name, cfg)

    def stream_count(self, name):
        return self.js("STREAM.INFO." + name)["state"]["messages"]

    def stream_messages(self, name):
        """[(subject, headers, data)] of every message in the stream, in order."""
        state = self.js("STREAM.INFO." + name)["state"]
        out = []
        for seq in range(state["first_seq"], state["last_seq"] + 1):
            m = self.js("STREAM.MSG.GET." + name, {"seq": seq})["message"]
            hdrs = (self.parse_headers(base64.b64decode(m["hdrs"]))
                    if m.get("hdrs") else None)
            out.append((m["subject"], hdrs, base64.b64decode(m.get("data", ""))))
        return out


class NatsServer(Process):
    """A private nats-server with JetStream on 127.0.0.1 and a free port."""

    def __init__(self, tmp, port=None, name="nats", jetstream=True, user=None,
                 password=None):
        self.port = port or free_port()
        self.user, self.password = user, password
        base = tmp.path if hasattr(tmp, "path") else tmp
        self.dir = os.path.join(base, "%s-%d" % (name, self.port))
        os.makedirs(self.dir, exist_ok=True)
        argv = [shutil.which("nats-server") or "nats-server", "-a", "127.0.0.1",
                "-p", self.port, "-l", os.path.join(self.dir, "server.log")]
        if jetstream:
            argv += ["-js", "-sd", os.path.join(self.dir, "store")]
        if user is not None:
            argv += ["--user", user, "--pass", password]
        super().__init__(argv, os.path.join(self.dir, "stderr.log"))

    def url(self, auth=""):
        return "nats://%s127.0.0.1:%d" % (auth, self.port)

    def start(self, timeout=15):
        super().start()

        def ready():
            if not self.running():
                raise AssertionError("nats-server exited with %s:\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                c = Nats(self.port, timeout=2, user=self.user, password=self.password)
            except (OSError, NatsError):
                return False
            c.close()
            return True
        wait_for(ready, timeout, what="nats-server on port %d" % self.port)
        return self

    def restart(self):
        self.stop()
        return self.start()

    def client(self):
        return Nats(self.port, user=self.user, password=self.password)

    def call(self, fn, *args, **kw):
        """fn(a fresh client, *args) on a connection of its own."""
        c = self.client()
        try:
            return fn(c, *args, **kw)
        finally:
            c.close()

    def stream_count(self, name):
        return self.call(Nats.stream_count, name)

    def stream_messages(self, name):
        return self.call(Nats.stream_messages, name)

    def stream_create(self, name, subjects, **kw):
        return self.call(Nats.stream_create, name, subjects, **kw)

    def wait_count(self, name, n, timeout=20):
        return wait_for(lambda: self.stream_count(name) == n, timeout,
                        what="stream %s to hold %d messages (has %d)"
                        % (name, n, self.stream_count(name)))

