"""harness_mqtt.py: a private mosquitto broker, and a minimal MQTT subscriber.

- Mosquitto: `mosquitto -c FILE` on 127.0.0.1 and a free port, with persistence in a
  directory of its own (so a restart keeps sessions and their queued messages) and an
  optional ACL file.
- MqttSubscriber: MQTT 3.1.1 or 5 on a raw socket (Python 3 standard library only): a
  session (clean or persistent), SUBSCRIBE at QoS 1 or 2, and a thread that acknowledges
  every PUBLISH (PUBACK, or PUBREC/PUBREL/PUBCOMP) and collects the messages.
"""

import getpass
import os
import shutil
import socket
import struct
import threading

from harness import Process, free_port


def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


class MqttSubscriber:
    """Messages are dicts {topic, payload, qos, dup, props}; props (MQTT 5) holds
    "content_type" and "user" (a list of (name, value))."""

    def __init__(self, port, client_id, topic, qos=1, clean=False, v5=False, timeout=10.0):
        self.port, self.client_id, self.topic, self.qos = port, client_id, topic, qos
        self.clean, self.v5, self.timeout = clean, v5, timeout
        self.messages = []
        self.cond = threading.Condition()
        self.sock = None
        self.thread = None
        self.connect()

    # ---- packets ----

    def _send(self, ptype, body):
        self.sock.sendall(bytes([ptype]) + _varint(len(body)) + body)

    def _recv_exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            data += chunk
        return data

    def _recv(self):
        first = self._recv_exact(1)[0]
        n, mult = 0, 1
        while True:
            b = self._recv_exact(1)[0]
            n += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        return first, self._recv_exact(n)

    @staticmethod
    def _read_varint(buf, i):
        n, mult = 0, 1
        while True:
            b = buf[i]
            i += 1
            n += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                return n, i

    def _props(self, buf, i):
        """MQTT 5 properties at buf[i:]: (dict, index after them)."""
        n, i = self._read_varint(buf, i)
        end, props = i + n, {"user": []}
        while i < end:
            pid = buf[i]
            i += 1
            if pid in (0x01,):
                i += 1
            elif pid == 0x02:
                i += 4
            elif pid == 0x23:
                i += 2
            elif pid == 0x0B:
                _, i = self._read_varint(buf, i)
            elif pid in (0x03, 0x08, 0x09):
                ln = struct.unpack(">H", buf[i:i + 2])[0]
                if pid == 0x03:
                    props["content_type"] = buf[i + 2:i + 2 + ln].decode()
                i += 2 + ln
            elif pid == 0x26:
                ln = struct.unpack(">H", buf[i:i + 2])[0]
                k = buf[i + 2:i + 2 + ln].decode()
                i += 2 + ln
                ln = struct.unpack(">H", buf[i:i + 2])[0]
                props["user"].append((k, buf[i + 2:i + 2 + ln].decode()))
                i += 2 + ln
            else:
                raise ValueError("unexpected property 0x%02x" % pid)
        return props, end

    def connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        body = _str("MQTT") + bytes([5 if self.v5 else 4, 0x02 if self.clean else 0x00])
        body += struct.pack(">H", 60)
        if self.v5:
            # Session expiry: keep the session for an hour after a disconnect.
            body += _varint(5) + b"\x11" + struct.pack(">I", 3600)
        body += _str(self.client_id)
        self._send(0x10, body)
        ptype, data = self._recv()
        if ptype != 0x20 or data[1] != 0:
            raise ConnectionError("CONNACK %r" % data)
        body = struct.pack(">H", 1) + (b"\x00" if self.v5 else b"")
        self._send(0x82, body + _str(self.topic) + bytes([self.qos]))
        # A persistent session's queued messages may come before the SUBACK.
        while True:
            ptype, data = self._recv()
            if ptype >> 4 != 3:
                break
            self._on_publish(ptype, data)
        if ptype != 0x90 or data[-1] >= 0x80:
            raise ConnectionError("SUBACK %r" % data)
        self.sock.settimeout(None)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while True:
                ptype, data = self._recv()
                kind = ptype >> 4
                if kind == 3:
                    self._on_publish(ptype, data)
                elif kind == 6:  # PUBREL
                    self._send(0x70, data[:2])
        except (OSError, ConnectionError, ValueError):
            pass

    def _on_publish(self, ptype, data):
        qos = (ptype >> 1) & 3
        tlen = struct.unpack(">H", data[:2])[0]
        topic = data[2:2 + tlen].decode()
        i = 2 + tlen
        pid = None
        if qos:
            pid = data[i:i + 2]
            i += 2
        props = {}
        if self.v5:
            props, i = self._props(data, i)
        with self.cond:
            self.messages.append({"topic": topic, "payload": data[i:], "qos": qos,
                                  "dup": bool(ptype & 0x08), "props": props})
            self.cond.notify_all()
        if qos == 1:
            self._send(0x40, pid)
        elif qos == 2:
            self._send(0x50, pid)

    def disconnect(self):
        """A clean DISCONNECT; the session stays when it is persistent."""
        try:
            self._send(0xE0, b"")
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self.thread is not None:
            self.thread.join(5)
        self.sock.close()

    close = disconnect

    def wait(self, n, timeout=15.0):
        with self.cond:
            self.cond.wait_for(lambda: len(self.messages) >= n, timeout)
            got = list(self.messages)
        if len(got) < n:
            raise AssertionError("expected %d messages, got %d within %.1fs"
                                 % (n, len(got), timeout))
        return got


class Mosquitto(Process):
    """A private mosquitto on 127.0.0.1 and a free port; acl is the text of an ACL file
    (what anonymous clients may do), or None for everything."""

    def __init__(self, tmp, port=None, acl=None):
        self.port = port or free_port()
        base = tmp.path if hasattr(tmp, "path") else tmp
        self.dir = os.path.join(base, "mosquitto-%d" % self.port)
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        self.logfile = os.path.join(self.dir, "mosquitto.log")
        lines = ["listener %d 127.0.0.1" % self.port, "allow_anonymous true",
                 "persistence true", "persistence_location %s/" % self.dir,
                 "autosave_interval 1", "max_queued_messages 0", "log_dest file %s" % self.logfile,
                 "log_type all", "user %s" % getpass.getuser()]
        if acl is not None:
            path = os.path.join(self.dir, "acl")
            with open(path, "w") as f:
                f.write(acl)
            lines.append("acl_file %s" % path)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        super().__init__([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                          self.conf], os.path.join(self.dir, "stderr.log"))

    def url(self):
        return "mqtt://127.0.0.1:%d" % self.port

    def broker_log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self, timeout=15):
        super().start()
        self.wait_listening(self.port, timeout, "mosquitto")
        return self

    def subscriber(self, client_id, topic, **kw):
        return MqttSubscriber(self.port, client_id, topic, **kw)
