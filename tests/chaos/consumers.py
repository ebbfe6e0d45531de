"""consumers.py: the chaos suite's consumers. Each runs on a thread of its own, records
every event id it receives (with how many times), and reconnects after any outage.

- RedisStreamConsumer: XREAD BLOCK from the last entry id it saw, on a raw RESP
  connection (harness.Resp); it trims what it has read (XTRIM MINID) so Redis stays small.
- RabbitConsumer: pika, manual acks (acknowledged after the id is recorded, in small
  groups), prefetch bounded; a lost ack means a redelivery, counted as a duplicate.
"""

import collections
import json
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
