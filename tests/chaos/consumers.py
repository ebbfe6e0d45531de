"""consumers.py: the chaos suite's consumers. Each runs on a thread of its own, records
every event id it receives (with how many times), and reconnects after any outage.

- RedisStreamConsumer: XREAD BLOCK from the last entry id it saw, on a raw RESP
  connection (harness.Resp); it trims what it has read (XTRIM MINID) so Redis stays small.
- RabbitConsumer: pika, manual acks (acknowledged after the id is recorded, in small
  groups), prefetch bounded; a lost ack means a redelivery, counted as a duplicate.
- NatsConsumer: a durable JetStream pull consumer (explicit acks, after recording) on the
  raw NATS client of harness_nats. It counts each stream sequence once, so its duplicates
  are copies stored in the stream; redeliveries of a sequence (a lost ack) are counted
  apart. NatsTap: a core NATS subscriber that sees every copy the relay publishes, before
  the stream drops duplicates, and how long after the first each copy came.
- MqttConsumer: harness_mqtt's QoS 1 subscriber with a persistent session (clean session
  false, a fixed client id), connected again after any outage; the broker re-sends what
  it had not acknowledged, counted as duplicates (at least once).
- FileConsumer: follows the file the HTTP receiver appends each request to.
"""

import collections
import json
import socket
import threading
import time

from harness import Resp, RespError


class Consumer:
    def __init__(self):
        self.counts = collections.Counter()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.reconnects = 0
        self.errors = collections.Counter()
        self.last_at = time.monotonic()
        self.bad = 0            # messages that were not an envelope with an id
        self.redeliveries = 0   # copies the broker sent again, not counted (NATS)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def record(self, body):
        try:
            eid = json.loads(body)["id"]
        except (ValueError, KeyError, TypeError):
            with self.lock:
                self.bad += 1
            return
        with self.lock:
            self.counts[eid] += 1
            self.last_at = time.monotonic()

    def snapshot(self):
        with self.lock:
            return collections.Counter(self.counts)

    def has_all(self, ids):
        with self.lock:
            return all(i in self.counts for i in ids)

    def quiet_for(self):
        with self.lock:
            return time.monotonic() - self.last_at

    def stop(self):
        self.stopping.set()
        self.thread.join(15)

    def details(self):
        """Consumer-specific figures for the results."""
        return {}

    def _error(self, e):
        self.errors[type(e).__name__] += 1


class RedisStreamConsumer(Consumer):
    def __init__(self, port, stream):
        super().__init__()
        self.port = port
        self.stream = stream
        self.last_id = "0-0"
        self.entries = 0

    def _run(self):
        conn = None
        last_trim = time.monotonic()
        while not self.stopping.is_set():
            try:
                if conn is None:
                    conn = Resp(self.port, timeout=5.0)
                reply = conn.call("XREAD", "COUNT", 2000, "BLOCK", 500, "STREAMS",
                                  self.stream, self.last_id)
                if reply:
                    for _key, entries in reply:
                        for eid, fields in entries:
                            f = {fields[i]: fields[i + 1] for i in range(0, len(fields), 2)}
                            self.record(f.get(b"message", b""))
                            self.entries += 1
                            self.last_id = eid.decode()
                if time.monotonic() - last_trim > 5 and self.last_id != "0-0":
                    # Entries before last_id were recorded: drop them (memory stays flat).
                    conn.call("XTRIM", self.stream, "MINID", self.last_id)
                    last_trim = time.monotonic()
            except (OSError, ConnectionError, RespError, ValueError) as e:
                self._error(e)
                if conn is not None:
                    conn.close()
                    conn = None
                    self.reconnects += 1
                time.sleep(0.2)
        if conn is not None:
            conn.close()


class RabbitConsumer(Consumer):
    def __init__(self, port, queue):
        super().__init__()
        self.port = port
        self.queue = queue

    def _run(self):
        import pika
        params = pika.ConnectionParameters(host="127.0.0.1", port=self.port, heartbeat=10,
                                           socket_timeout=5, blocked_connection_timeout=10,
                                           connection_attempts=1)
        first = True
        while not self.stopping.is_set():
            conn = None
            try:
                conn = pika.BlockingConnection(params)
                if not first:
                    self.reconnects += 1
                first = False
                ch = conn.channel()
                ch.queue_declare(self.queue, durable=True)
                ch.basic_qos(prefetch_count=500)
                unacked, tag = 0, None
                for method, _props, body in ch.consume(self.queue, inactivity_timeout=0.3):
                    if method is not None:
                        self.record(body)
                        tag, unacked = method.delivery_tag, unacked + 1
                    if unacked and (unacked >= 100 or method is None):
                        ch.basic_ack(tag, multiple=True)
                        unacked = 0
                    if self.stopping.is_set():
                        break
                try:
                    ch.cancel()
                    conn.close()
                except Exception:
                    pass
            except Exception as e:  # pika raises many kinds on a lost broker
                self._error(e)
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass
                time.sleep(0.5)


class ReconnectingConsumer(Consumer):
    """connect() opens a session, consume(conn) reads until stopping (or raises on an
    outage), close(conn) ends it; any error is an outage: connect again after a pause."""
    OUTAGES = (OSError, ConnectionError, ValueError)

    def _run(self):
        first = True
        while not self.stopping.is_set():
            conn = None
            try:
                conn = self.connect()
                if not first:
                    self.reconnects += 1
                first = False
                self.consume(conn)
            except self.OUTAGES as e:
                self._error(e)
                time.sleep(0.2)
            finally:
                if conn is not None:
                    self.close(conn)

    def close(self, conn):
        conn.close()


class NatsConsumer(ReconnectingConsumer):
    BATCH = 500

    def __init__(self, port, stream, durable):
        super().__init__()
        from harness_nats import NatsError
        self.OUTAGES = ReconnectingConsumer.OUTAGES + (NatsError,)
        self.port, self.stream, self.durable = port, stream, durable
        self.seen = set()        # stream sequences recorded
        self.requests = 0

    def connect(self):
        from harness_nats import Nats
        c = Nats(self.port, timeout=5.0)
        # Creating it again with the same configuration is a no-op.
        c.js("CONSUMER.DURABLE.CREATE.%s.%s" % (self.stream, self.durable),
             {"stream_name": self.stream,
              "config": {"durable_name": self.durable, "ack_policy": "explicit",
                         "deliver_policy": "all", "ack_wait": 30 * 10**9,
                         "max_ack_pending": 20000}})
        c.subscribe("_INBOX.chaos.*")
        return c

    @staticmethod
    def stream_seq(reply):
        """The stream sequence in a $JS.ACK subject (the old 9-token form or the newer
        one with domain and account hash)."""
        t = reply.split(".")
        return int(t[5] if len(t) == 9 else t[7])

    def consume(self, c):
        nxt = "$JS.API.CONSUMER.MSG.NEXT.%s.%s" % (self.stream, self.durable)
        while not self.stopping.is_set():
            self.requests += 1
            inbox = "_INBOX.chaos.%d" % self.requests
            c.publish(nxt, json.dumps({"batch": self.BATCH, "expires": 10**9}), reply=inbox)
            got, acks = 0, []
            while got < self.BATCH:
                subject, reply, headers, data = c.read_msg()
                if headers and "Status" in headers:
                    if subject == inbox:    # 404/408/409: this request is over
                        break
                    continue
                if not reply or not reply.startswith("$JS.ACK."):
                    continue
                got += 1
                self.record_seq(self.stream_seq(reply), data)
                acks.append(reply)
            # Acknowledged after recording; a lost ack is a redelivery, not a duplicate.
            c.sock.sendall(b"".join(b"PUB %s 0\r\n\r\n" % r.encode() for r in acks))

    def record_seq(self, seq, body):
        if seq in self.seen:
            with self.lock:
                self.redeliveries += 1
            return
        self.seen.add(seq)
        self.record(body)


class NatsTap(ReconnectingConsumer):
    """Every copy published on the subjects, while connected: counts, and the longest
    time between the first copy of an event and a later one."""

    def __init__(self, port, subjects):
        super().__init__()
        from harness_nats import NatsError
        self.OUTAGES = ReconnectingConsumer.OUTAGES + (NatsError,)
        self.port, self.subjects = port, subjects
        self.first = {}
        self.gap = 0.0

    def connect(self):
        from harness_nats import Nats
        c = Nats(self.port, timeout=5.0)
        c.subscribe(self.subjects)
        c.sock.settimeout(1.0)
        return c

    def consume(self, c):
        while not self.stopping.is_set():
            try:
                _subject, headers, _data = c.read()
            except socket.timeout:
                continue
            eid = (headers or {}).get("Nats-Msg-Id")
            if eid is None:
                continue
            now = time.monotonic()
            with self.lock:
                self.counts[eid] += 1
                t0 = self.first.setdefault(eid, now)
                self.gap = max(self.gap, now - t0)

    def copies(self):
        with self.lock:
            return sum(self.counts.values())

    def max_gap(self):
        with self.lock:
            return self.gap


class MqttConsumer(ReconnectingConsumer):
    def __init__(self, port, client_id, topic):
        super().__init__()
        self.port, self.client_id, self.topic = port, client_id, topic
        self.dup_flagged = 0    # re-sent by the broker (DUP flag), not by the relay

    def details(self):
        return {"mqtt_dup_flagged": self.dup_flagged}

    def connect(self):
        from harness_mqtt import MqttSubscriber
        return MqttSubscriber(self.port, self.client_id, self.topic, qos=1, clean=False,
                              timeout=5.0)

    def consume(self, sub):
        # The subscriber's thread acknowledges each PUBLISH after appending it.
        while not self.stopping.is_set():
            with sub.cond:
                sub.cond.wait_for(lambda: sub.messages or not sub.thread.is_alive(), 0.3)
                msgs, sub.messages = sub.messages, []
            for m in msgs:
                self.dup_flagged += m["dup"]
                self.record(m["payload"])
            if not msgs and not sub.thread.is_alive():
                raise ConnectionError("the broker closed the connection")


class FileConsumer(ReconnectingConsumer):
    """The JSON lines {"path", "body"} the HTTP receiver appends; a partial last line is
    left for the next read."""

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.offset = 0

    def connect(self):
        f = open(self.path, "rb")
        f.seek(self.offset)
        return f

    def consume(self, f):
        rest = b""
        while not self.stopping.is_set():
            chunk = f.read(1 << 20)
            if not chunk:
                time.sleep(0.1)
                continue
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for ln in lines:
                self.offset += len(ln) + 1
                if ln.strip():
                    self.record(json.loads(ln)["body"])
