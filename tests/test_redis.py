#!/usr/bin/env python3
"""test_redis.py: outboxd against a real redis-server with real subscribers.

Each test starts its own redis-server on a free loopback port and its own database in a
temporary directory under the build tree. What is checked is what a consumer sees (the
messages and their order) and what the relay recorded (outbox_sink, outbox_retry).
Skipped when redis-server is missing (a failure when OUTBOX_TEST_REQUIRE_SERVERS=1).
"""

import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tap  # noqa: E402
from harness import (EXIT_CONFIG, EXIT_UNREACHABLE, FAST_RETRIES, OUTBOXD,  # noqa: E402
                     BrokerCase, OutboxDB, RedisServer, Subscriber, TempDir, wait_for)

tap.require_programs("redis-server", OUTBOXD)



class RedisCase(BrokerCase):
    server_args = ()
    password = None

    def setUp(self):
        self.tmp = TempDir("redis")
        self.addCleanup(self.tmp.cleanup)
        self.redis = RedisServer(self.tmp, self.server_args, password=self.password)
        self.redis.start()
        self.addCleanup(self.redis.stop)
        self.db = OutboxDB(self.tmp.join("app.db"))

    # ---- helpers ----

    def config(self, **keys):
        """A push-events style config for one redis sink on our server."""
        return self.make_config({"outbox.database": self.db.path,
                                 "system.queue-adapter": "redis",
                                 "redis.port": self.redis.port}, **keys)

    def subscriber(self, channels=(), patterns=()):
        s = Subscriber(self.redis, channels, patterns)
        self.addCleanup(s.close)
        return s


    def assert_envelope(self, raw, event, published=None):
        """raw is exactly the push-events envelope of event (a row of db.events())."""
        env = json.loads(raw)
        want = {"id": event["id"], "name": published or event["name"],
                "data": json.loads(event["payload"])}
        keys = ["id", "name", "data"]
        if event["headers"] is not None:
            want["metadata"] = json.loads(event["headers"])
            keys.append("metadata")
        self.assertEqual(env, want)
        self.assertEqual(list(env), keys, "envelope keys out of order")

    def assert_drained(self, sink="redis", timeout=20):
        top = self.db.max_seq()
        wait_for(lambda: self.db.cursor(sink) == top, timeout,
                 what="cursor of %s to reach %d" % (sink, top))

    def xlen(self, key, db=0):
        """XLEN of key in database db (a connection of its own, to SELECT it)."""
        c = self.redis.client()
        try:
            c.call("SELECT", db)
            return c.call("XLEN", key)
        finally:
            c.close()

    def xrange(self, key):
        """[(entry id, {field: value})] of a stream."""
        out = []
        for eid, fields in self.redis.call("XRANGE", key, "-", "+"):
            out.append((eid.decode(), {fields[i].decode(): fields[i + 1]
                                       for i in range(0, len(fields), 2)}))
        return out


class TestPubSub(RedisCase):

    def test_envelopes_in_seq_order(self):
        sub = self.subscriber(["liquid"])
        rows = []
        for i in range(60):
            payload = {"i": i, "user": {"_id": str(i)}, "text": "h\u00e9llo \"q\" \\ \u2603"}
            headers = {"trace": "t%d" % i, "n": i} if i % 3 == 0 else None
            rows.append(("user.login" if i % 2 else "user.follow", payload, headers))
        rows.append(("weird.payload", "[1,2.5,null,true,\"x\"]"))
        rows.append(("scalar.payload", "42"))
        self.db.insert_many(rows)
        self.once(self.config())
        events = self.db.events()
        msgs = sub.wait(len(events))
        for m, ev in zip(msgs, events):
            self.assertEqual(m["channel"], "liquid")
            self.assert_envelope(m["data"], ev)
        self.assertEqual(len(sub.settle()), len(events), "duplicates or extra messages")
        self.assertEqual(self.db.cursor("redis"), self.db.max_seq())
        self.assertEqual(self.db.retry_rows(), [])

    def test_many_batches_keep_seq_order(self):
        sub = self.subscriber(["liquid"])
        self.db.insert_many([("bulk.%d" % (i % 7), {"i": i}) for i in range(3000)])
        self.once(self.config(relay__batch_size=128))
        msgs = sub.wait(3000, timeout=30)
        self.assertEqual([json.loads(m["data"])["data"]["i"] for m in msgs],
                         list(range(3000)))
        self.assertEqual(len(sub.settle(quiet=0.2)), 3000)

    def test_unix_socket_and_db(self):
        # A short directory: socket paths are limited to 107 bytes.
        short = tempfile.mkdtemp(prefix="obx-", dir="/tmp")
        self.addCleanup(shutil.rmtree, short, True)
        sock = os.path.join(short, "redis.sock")
        # unixsocket cannot be set at run time: start again with it.
        self.redis.stop()
        self.redis = RedisServer(self.tmp, ["--unixsocket", sock, "--unixsocketperm", "700"],
                                 port=self.redis.port)
        self.redis.start()
        self.addCleanup(self.redis.stop)
        seq, eid = self.db.insert("user.login", {"x": 1})
        # Streams, which live in a database (PUBLISH ignores SELECT).
        log = self.once(self.config(redis__url="unix://%s?db=2" % sock, redis__port=1,
                                    redis__mode="stream"))
        self.assertIn("unix://%s?db=2 stream liquid" % sock, log)
        self.assertEqual((self.xlen("liquid", db=2), self.xlen("liquid", db=0)), (1, 0))
        c = self.redis.client()
        try:
            c.call("SELECT", 2)
            entries = c.call("XRANGE", "liquid", "-", "+")
        finally:
            c.close()
        self.assertEqual(json.loads(entries[0][1][1])["id"], eid)

    def test_filter_and_prefix(self):
        sub = self.subscriber(["liquid"])
        self.db.insert_many([("user.login", {"a": 1}), ("user.logout", {"a": 2}),
                             ("order.created", {"a": 3}), ("audit", {"a": 4}),
                             ("other", {"a": 5}), ("order.paid", {"a": 6})])
        cf = self.config(system__push_events=["user.login", "order.*", "myapp.audit"])
        cf["system.push-events.prefix"] = "myapp."
        self.once(cf)
        msgs = sub.wait(4)
        got = [json.loads(m["data"])["name"] for m in msgs]
        self.assertEqual(got, ["myapp.user.login", "myapp.order.created", "myapp.audit",
                               "myapp.order.paid"])
        by_name = {e["name"]: e for e in self.db.events()}
        for m in msgs:
            name = json.loads(m["data"])["name"][len("myapp."):]
            self.assert_envelope(m["data"], by_name[name], "myapp." + name)
        self.assertEqual(len(sub.settle()), 4)
        # Filtered-out events are handed off too: nothing pending for this sink.
        self.assertEqual(self.db.cursor("redis"), self.db.max_seq())
        self.assertEqual(self.db.query("SELECT count(*) FROM outbox_backlog")[0][0], 0)

    def test_fan_out_to_two_sinks(self):
        sub = self.subscriber(["all"], ["ev.*"])
        self.db.insert_many([("user.login", {"n": 1}), ("order.created", {"n": 2}),
                             ("user.follow", {"n": 3})])
        cf = {"outbox.database": self.db.path,
              "sinks": {
                  "everything": {"type": "redis", "port": self.redis.port,
                                 "channel-name": "all"},
                  "users": {"type": "redis", "url": self.redis.url(),
                            "channel": "ev.{name}", "events": ["user.*"],
                            "prefix": "app."}}}
        cf.update(FAST_RETRIES)
        self.once(cf)
        msgs = sub.wait(5)
        self.assertEqual(len(sub.settle()), 5)
        everything = [m for m in msgs if m["channel"] == "all"]
        users = [m for m in msgs if m["pattern"] == "ev.*"]
        events = self.db.events()
        self.assertEqual(len(everything), 3)
        for m, ev in zip(everything, events):
            self.assert_envelope(m["data"], ev)
        self.assertEqual([m["channel"] for m in users],
                         ["ev.app.user.login", "ev.app.user.follow"])
        self.assert_envelope(users[0]["data"], events[0], "app.user.login")
        self.assert_envelope(users[1]["data"], events[2], "app.user.follow")
        self.assertEqual(self.db.sinks(), {"everything": 3, "users": 3})

    def test_once_then_restart_resumes_from_cursor(self):
        sub = self.subscriber(["liquid"])
        first = self.db.insert_many([("a.%d" % i, {"i": i}) for i in range(10)])
        self.once(self.config())
        self.assertEqual([json.loads(m["data"])["id"] for m in sub.wait(10)],
                         [eid for _, eid in first])
        # Nothing new: a second --once publishes nothing and exits 0.
        self.once(self.config())
        second = self.db.insert_many([("b.%d" % i, {"i": i}) for i in range(5)])
        self.once(self.config())
        msgs = sub.wait(15)
        self.assertEqual([json.loads(m["data"])["id"] for m in msgs[10:]],
                         [eid for _, eid in second])
        # A long-running relay picks up where --once stopped and sees new commits.
        r = self.relay(self.config())
        r.start()
        third = [self.db.insert("c.%d" % i, {"i": i}) for i in range(3)]
        msgs = sub.wait(18)
        self.assertEqual([json.loads(m["data"])["id"] for m in msgs[15:]],
                         [eid for _, eid in third])
        self.assert_drained()
        self.assertEqual(r.stop(), 0, r.log())
        self.assertEqual(len(sub.settle()), 18, "an event was sent twice")

    def test_key_prefix_is_not_applied_to_channels(self):
        sub = self.subscriber(["liquid"], ["app:*"])
        self.db.insert("user.login", {"x": 1})
        self.once(self.config(redis__key_prefix="app:"))
        msgs = sub.settle()
        self.assertEqual([m["channel"] for m in msgs], ["liquid"])

    def test_require_subscribers_retries_until_someone_listens(self):
        seq, eid = self.db.insert("user.login", {"x": 1})
        cf = self.config(redis__require_subscribers=True, relay__max_attempts=50)
        self.once(cf)
        rows = self.db.retry_rows()
        self.assertEqual(len(rows), 1)
        # Full jitter may make the retry due within the same --once run: 1 or more.
        self.assertEqual((rows[0]["seq"], rows[0]["state"]), (seq, "retry"))
        self.assertGreaterEqual(rows[0]["attempts"], 1)
        self.assertEqual(rows[0]["last_error"], "no subscribers on channel liquid")
        sub = self.subscriber(["liquid"])
        # The retry falls due within backoff-max; --once publishes what is due.
        time.sleep(0.25)
        self.once(cf)
        self.assertEqual(json.loads(sub.wait(1)[0]["data"])["id"], eid)
        self.assertEqual(self.db.retry_rows(), [])

    def test_no_subscribers_names_each_events_own_channel(self):
        # One batch, two channels: each rejection names its own (replies are read after
        # the whole batch is sent).
        a, _ = self.db.insert("a.x", {"x": 1})
        b, _ = self.db.insert("b.y", {"x": 2})
        self.once(self.config(redis__require_subscribers=True, redis__channel_name="{name}",
                              relay__max_attempts=50))
        self.assertEqual([(r["seq"], r["last_error"]) for r in self.db.retry_rows()],
                         [(a, "no subscribers on channel a.x"),
                          (b, "no subscribers on channel b.y")])

    def test_wrong_password_is_clear_and_secret(self):
        self.redis.call("CONFIG", "SET", "requirepass", "right-pw-1")
        self.redis.password = "right-pw-1"
        self.db.insert("user.login", {"x": 1})
        secret = "Wr0ng-S3cret-pw"
        for cf in (self.config(redis__password=secret),
                   self.config(redis__url=self.redis.url(password=secret)),
                   self.config(redis__username="default", redis__password=secret)):
            log = self.once(cf, expect=EXIT_UNREACHABLE)
            self.assertIn(":***@127.0.0.1:%d/0: authentication failed: WRONGPASS"
                          % self.redis.port, log)
            self.assertNotIn(secret, log)
        # No password at all: the connection fails, no event is charged an attempt.
        log = self.once(self.config(), expect=EXIT_UNREACHABLE)
        self.assertIn("redis://127.0.0.1:%d/0: the server refuses commands: NOAUTH"
                      % self.redis.port, log)
        self.assertEqual(self.db.retry_rows(), [])
        self.assertEqual(self.db.cursor("redis"), 0)
        # The right password, and an ACL user, deliver.
        sub = self.subscriber(["liquid"])
        self.once(self.config(redis__password="right-pw-1"))
        sub.wait(1)
        self.redis.call("ACL", "SETUSER", "alice", "on", ">alice-pw", "~*", "&*", "+@all")
        self.db.insert("user.login", {"x": 2})
        log = self.once(self.config(redis__url="redis://alice:alice-pw@127.0.0.1:%d"
                                    % self.redis.port))
        self.assertNotIn("alice-pw", log)
        self.assertEqual(len(sub.wait(2)), 2)

    def test_select_db_and_bad_db(self):
        self.db.insert("user.login", {"x": 1})
        log = self.once(self.config(redis__db=100000, redis__mode="stream"),
                        expect=EXIT_UNREACHABLE)
        self.assertIn("cannot select the database: ERR DB index is out of range", log)
        self.assertEqual(self.db.retry_rows(), [])
        # Streams, which live in a database (PUBLISH ignores SELECT).
        self.once(self.config(redis__db=3, redis__mode="stream"))
        self.assertEqual((self.xlen("liquid", db=3), self.xlen("liquid", db=0)), (1, 0))

    def test_client_name(self):
        sub = self.subscriber(["liquid"])
        relay = self.relay(self.config(redis__client_name="outboxd-app1"))
        relay.start()
        self.db.insert("user.login", {"x": 1})
        sub.wait(1)
        clients = self.redis.call("CLIENT", "LIST", "TYPE", "normal").decode()
        self.assertIn(" name=outboxd-app1 ", clients)

    def test_unreachable_with_once_exits_75(self):
        self.db.insert("user.login", {"x": 1})
        self.redis.stop()
        log = self.once(self.config(), expect=EXIT_UNREACHABLE)
        self.assertIn(" warn: sink redis: cannot connect: redis://127.0.0.1:%d/0: Connection "
                      "refused\n" % self.redis.port, log)
        self.assertEqual(self.db.retry_rows(), [])
        self.assertEqual(self.db.cursor("redis"), 0)

    def test_bad_url_is_a_config_error(self):
        self.db.insert("user.login", {"x": 1})
        r = self.relay(None, ["--db", self.db.path, "--redis",
                              "rediss://:t0p-secret@127.0.0.1:6379"])
        rc, log = r.once()
        self.assertEqual(rc, EXIT_CONFIG, log)
        self.assertIn("rediss:// (TLS) is not supported by this build", log)
        self.assertNotIn("t0p-secret", log)


class TestStream(RedisCase):
    # Small stream nodes, so that approximate trimming (MAXLEN ~) shows on a few events.
    server_args = ("--stream-node-max-entries", "10")

    def test_xadd_with_maxlen_and_key_prefix(self):
        sub = self.subscriber(["liquid", "events"], ["*"])
        rows = [("user.login", {"i": i}, {"h": i} if i % 2 else None) for i in range(100)]
        self.db.insert_many(rows)
        self.once(self.config(redis__mode="stream", redis__key_prefix="app:",
                              redis__channel_name="events", redis__stream_maxlen=10))
        entries = self.xrange("app:events")
        self.assertGreaterEqual(len(entries), 10)
        self.assertLess(len(entries), 100, "MAXLEN ~ 10 did not trim")
        events = self.db.events()
        for (_, fields), ev in zip(entries, events[-len(entries):]):
            self.assertEqual(list(fields), ["message"])
            self.assert_envelope(fields["message"], ev)
        self.assertEqual(self.redis.call("TYPE", "events"), "none")
        self.assertEqual(sub.settle(quiet=0.2), [], "stream mode must not PUBLISH")

    def test_stream_per_name_without_trimming(self):
        self.db.insert_many([("user.%d" % (i % 3), {"i": i}) for i in range(30)])
        self.once(self.config(redis__mode="stream", redis__channel="s:{name}"))
        events = self.db.events()
        for k in range(3):
            entries = self.xrange("s:user.%d" % k)
            mine = [e for e in events if e["name"] == "user.%d" % k]
            self.assertEqual(len(entries), len(mine))
            for (_, fields), ev in zip(entries, mine):
                self.assert_envelope(fields["message"], ev)

    def test_out_of_memory_is_an_outage_not_a_rejection(self):
        # XADD is refused with -OOM while Redis is over maxmemory: the server's state,
        # not the event's fault, so no attempt is counted and it goes through later.
        self.redis.call("CONFIG", "SET", "maxmemory", "1")
        seq, eid = self.db.insert("user.login", {"x": 1})
        r = self.relay(self.config(redis__mode="stream", relay__max_attempts=2))
        r.start()
        r.wait_log("OOM command not allowed")
        time.sleep(0.3)
        self.assertEqual(self.db.retry_rows(), [])
        self.assertEqual(self.db.cursor("redis"), 0)
        self.redis.call("CONFIG", "SET", "maxmemory", "0")
        wait_for(lambda: self.redis.call("XLEN", "liquid") == 1, 10, what="the event")
        self.assert_drained()
        self.assertEqual(self.db.retry_rows(), [])
        self.assertEqual(json.loads(self.xrange("liquid")[0][1]["message"])["id"], eid)

    def test_wrongtype_is_a_rejection(self):
        self.redis.call("SET", "s:blocked", "not a stream")
        seq, _ = self.db.insert("blocked", {"x": 1})
        self.db.insert("fine", {"x": 2})
        self.once(self.config(redis__mode="stream", redis__channel="s:{name}",
                              relay__max_attempts=5))
        rows = self.db.retry_rows()
        self.assertEqual([(r["seq"], r["state"]) for r in rows], [(seq, "retry")])
        self.assertGreaterEqual(rows[0]["attempts"], 1)
        self.assertTrue(rows[0]["last_error"].startswith("WRONGTYPE"), rows[0])
        self.assertEqual(len(self.xrange("s:fine")), 1)


class TestOversize(RedisCase):
    server_args = ("--proto-max-bulk-len", "1mb")

    def test_oversize_event_fails_while_others_flow(self):
        sub = self.subscriber(["liquid"])
        big = {"blob": "x" * 1500000}
        rows = [("small.%d" % i, {"i": i}) for i in range(5)]
        rows.append(("big", big))
        rows += [("small.%d" % i, {"i": i}) for i in range(5, 10)]
        ids = self.db.insert_many(rows)
        big_seq = ids[5][0]
        r = self.relay(self.config(relay__max_attempts=3))
        r.start()
        wait_for(lambda: self.db.failed_rows(), 30, what="the big event to fail")
        failed = self.db.failed_rows()
        self.assertEqual([(f["seq"], f["attempts"]) for f in failed], [(big_seq, 3)])
        self.assertIn("invalid bulk length", failed[0]["last_error"])
        msgs = sub.wait(10)
        got = [json.loads(m["data"])["id"] for m in msgs]
        self.assertEqual(sorted(set(got)), sorted(eid for i, (_, eid) in enumerate(ids)
                                                  if i != 5))
        self.assertNotIn(ids[5][1], got)
        # Later events keep flowing after the failure.
        seq, eid = self.db.insert("after", {"ok": True})
        wait_for(lambda: eid in [json.loads(m["data"])["id"] for m in sub.received()], 10,
                 what="an event after the failure")
        self.assert_drained()
        self.assertEqual(r.stop(), 0)


class TestOrderingKeys(RedisCase):
    """Channels are named after events and subscribers are required, so an event whose
    channel nobody listens to is rejected until a subscriber appears."""

    def setup_events(self):
        sub = self.subscriber(["ok1", "ok2", "other"])
        ids = self.db.insert_many([("blocked", {"n": 1}, None, "k"),
                                   ("ok1", {"n": 2}, None, "k"),
                                   ("other", {"n": 3}, None, "j"),
                                   ("ok2", {"n": 4}, None, "k"),
                                   ("free", {"n": 5}, None, None)])
        return sub, ids

    def config_keys(self, attempts):
        return self.config(redis__channel_name="{name}", redis__require_subscribers=True,
                           relay__max_attempts=attempts)

    def test_later_events_wait_until_the_blocker_is_delivered(self):
        sub, ids = self.setup_events()
        sub.subscribe("free")
        r = self.relay(self.config_keys(1000))
        r.start()
        sub.wait(2)
        wait_for(lambda: [x for x in self.db.retry_rows() if x["seq"] == ids[0][0] and
                          x["attempts"] >= 2], 10, what="the blocker to be retried")
        time.sleep(0.3)
        self.assertEqual(sorted(m["channel"] for m in sub.received()), ["free", "other"])
        sub.subscribe("blocked")
        msgs = sub.wait(5)
        self.assertEqual([m["channel"] for m in msgs[2:]], ["blocked", "ok1", "ok2"])
        wait_for(lambda: self.db.retry_rows() == [], 10, what="outbox_retry to empty")
        self.assert_drained()

    def test_later_events_wait_until_the_blocker_fails(self):
        sub, ids = self.setup_events()
        r = self.relay(self.config_keys(3))
        r.start()
        # The blocker, and "free" whose channel nobody listens to either.
        wait_for(lambda: len(self.db.failed_rows()) == 2, 20, what="the blocker to fail")
        msgs = sub.wait(3)
        chans = [m["channel"] for m in msgs]
        self.assertEqual(chans.index("ok1") < chans.index("ok2"), True, chans)
        self.assertEqual(sorted(chans), ["ok1", "ok2", "other"])
        failed = self.db.failed_rows()
        self.assertEqual([(f["seq"], f["attempts"]) for f in failed],
                         [(ids[0][0], 3), (ids[4][0], 3)])
        self.assertEqual(failed[0]["last_error"], "no subscribers on channel blocked")
        wait_for(lambda: all(x["state"] == "failed" for x in self.db.retry_rows()), 10,
                 what="only failed rows left")
        self.assert_drained()


class TestOutages(RedisCase):

    def test_redis_killed_while_idle_loses_nothing(self):
        sub = self.subscriber(["liquid"])
        r = self.relay(self.config())
        r.start()
        self.db.insert_many([("a", {"i": i}) for i in range(20)])
        sub.wait(20)
        self.redis.kill()
        sub.wait_closed()
        during = [self.db.insert("b", {"i": i}) for i in range(20)]
        r.wait_log("sink redis: c")  # "connection lost" or "cannot connect"
        time.sleep(0.3)
        # Hold the relay while the server comes back, so the new subscriber is in place
        # before anything is published (pub/sub keeps nothing for absent subscribers).
        r.pause()
        try:
            self.redis.start()
            sub2 = self.subscriber(["liquid"])
        finally:
            r.resume()
        msgs = sub2.wait(20, timeout=20)
        self.assertEqual({json.loads(m["data"])["id"] for m in msgs},
                         {eid for _, eid in during})
        self.assert_drained()
        self.assertEqual(self.db.retry_rows(), [], "an outage burned attempts")
        self.assertIn("connected again", r.log())

    def test_redis_killed_mid_stream_loses_nothing(self):
        # Stream mode with appendfsync always: an entry Redis acknowledged survives the
        # kill, so "every event at least once" can be checked exactly after the restart.
        self.redis.stop()
        self.redis = RedisServer(self.tmp, ["--appendonly", "yes", "--appendfsync", "always"],
                                 port=self.redis.port)
        self.redis.start()
        self.addCleanup(self.redis.stop)
        cf = self.config(redis__mode="stream", redis__channel_name="events",
                         relay__batch_size=64)
        inserted = self.db.insert_many([("e", {"i": i, "pad": "p" * 200})
                                        for i in range(20000)])
        r = self.relay(cf)
        r.start()
        # Kill it in the middle of the drain, with batches in flight.
        wait_for(lambda: self.redis.call("XLEN", "events") >= 3000, 30,
                 what="the drain to get going")
        self.redis.kill()
        time.sleep(0.3)
        self.redis.start(timeout=30)
        more = [self.db.insert("f", {"i": i}) for i in range(10)]
        self.assert_drained(timeout=60)
        ids = [json.loads(f["message"])["id"] for _, f in self.xrange("events")]
        missing = {eid for _, eid in inserted + more} - set(ids)
        self.assertEqual(missing, set(), "events lost")
        self.assertEqual(self.db.retry_rows(), [], "an outage burned attempts")
        self.assertIn("connection lost", r.log())
        print("# %d events, %d entries (%d sent again after the kill)"
              % (len(inserted) + len(more), len(ids), len(ids) - len(set(ids))))
        self.assertEqual(r.stop(), 0)

    def test_connection_cut_mid_batch(self):
        # One batch of 10,000 in flight when the relay's connection is killed, and a
        # password set in the same transaction, so the outage lasts (a reconnect gets
        # NOAUTH) until we clear it. Streams: what Redis took is in the stream, in seq order.
        n = 10000
        self.db.insert_many([("e", {"i": i, "pad": "p" * 300}) for i in range(n)])
        r = self.relay(self.config(redis__mode="stream", redis__channel_name="events",
                                   relay__batch_size=n))
        c = self.redis.client()
        self.addCleanup(c.close)
        r.start()
        wait_for(lambda: c.call("XLEN", "events") >= 1000, 30, interval=0.0005,
                 what="the batch to get going")
        c.send("MULTI")
        c.send("CONFIG", "SET", "requirepass", "cut-pw")
        c.send("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        c.send("XLEN", "events")
        c.send("EXEC")
        replies = [c.read() for _ in range(5)]
        self.assertEqual(replies[:4], ["OK", "QUEUED", "QUEUED", "QUEUED"], replies)
        killed, taken = replies[4][1:]
        self.assertEqual(killed, 1, "the relay's connection was not killed")
        self.assertLess(taken, n, "the batch was through before the cut")
        first_unsent = taken + 1   # seqs start at 1, the stream was empty
        r.wait_log("connection lost")
        r.wait_log("NOAUTH")   # it tried again, and is kept out
        time.sleep(0.5)
        cursor = self.db.cursor("redis")
        self.assertEqual(self.db.retry_rows(), [], "the outage burned attempts")
        self.assertLess(cursor, first_unsent, "the cursor passed events Redis never got")
        self.assertEqual(c.call("XLEN", "events"), taken)
        print("# cut after %d of %d entries; cursor at %d during the outage"
              % (taken, n, cursor))
        c.call("CONFIG", "SET", "requirepass", "")
        self.assert_drained(timeout=60)
        ids = {json.loads(f["message"])["id"] for _, f in self.xrange("events")}
        self.assertEqual({ev["id"] for ev in self.db.events()} - ids, set(), "events lost")
        self.assertEqual(self.db.retry_rows(), [])
        self.assertIn("connected again", r.log())
        self.assertEqual(r.stop(), 0)

    def test_outage_logs_retries_then_reminders(self):
        # Refused connections: a warning, the next retries' delays at info, then quiet
        # but for a reminder each period (a minute; shortened here) with the outage's
        # length and the backlog, then "connected again" with the outage's length.
        self.db.insert_many([("a", {"i": i}) for i in range(3)])
        self.redis.stop()
        r = self.relay(self.config())
        r.env = dict(os.environ, OUTBOXD_TEST_REMINDER_MS="1500")
        r.start()
        wait_for(lambda: r.log().count("still cannot connect") >= 2, 10,
                 what="two reminders")
        time.sleep(0.5)
        lines = [ln.split("] ", 1)[1] for ln in r.log().splitlines()]
        why = "cannot connect: redis://127.0.0.1:%d/0: Connection refused" % self.redis.port
        outage = [ln for ln in lines if "cannot connect" in ln]
        self.assertRegex(outage[0], r"^warn: sink redis: %s \(attempt 1; retrying in "
                         r"\d+ms\)$" % why)
        for i in range(2, 5):
            self.assertRegex(outage[i - 1], r"^info: sink redis: %s \(attempt %d; retrying "
                             r"in \d+ms\)$" % (why, i))
        self.assertRegex(outage[4], r"^info: sink redis: %s \(attempt 5; retrying in \d+ms, "
                         r"then quiet but for a reminder every minute\)$" % why)
        reminders = outage[5:]
        self.assertIn(len(reminders), (2, 3), r.log())
        for ln in reminders:
            self.assertRegex(ln, r"^warn: sink redis: still cannot connect after \d+s "
                             r"\(\d+ attempts; 3 events waiting\): redis://127.0.0.1:%d/0: "
                             r"Connection refused$" % self.redis.port)
        self.redis.start()
        r.wait_log("connected again", timeout=10)
        self.assertRegex(r.log().splitlines()[-1], r"info: sink redis: connected again to "
                         r"redis://127.0.0.1:%d/0 channel liquid after \d+s$" % self.redis.port)
        self.assert_drained()

    def test_stalled_redis_times_out_and_recovers(self):
        sub = self.subscriber(["liquid"])
        r = self.relay(self.config(redis__timeout_ms=300, redis__connect_timeout_ms=300))
        r.start()
        self.db.insert("a", {"i": 0})
        sub.wait(1)
        self.redis.pause()
        try:
            stalled = [self.db.insert("b", {"i": i}) for i in range(5)]
            r.wait_log("no reply within 300 ms", timeout=10)
        finally:
            self.redis.resume()
        wait_for(lambda: {eid for _, eid in stalled} <=
                 {json.loads(m["data"])["id"] for m in sub.received()}, 20,
                 what="the events sent while Redis was stalled")
        self.assert_drained()
        self.assertEqual(self.db.retry_rows(), [])

    def test_sigterm_finishes_and_exits_0(self):
        sub = self.subscriber(["liquid"])
        r = self.relay(self.config())
        r.start()
        self.db.insert_many([("a", {"i": i}) for i in range(2000)])
        sub.wait(1)
        self.assertEqual(r.stop(), 0, r.log())
        cursor = self.db.cursor("redis")
        got = sub.settle(quiet=0.2)
        self.assertGreaterEqual(len(got), cursor, "the cursor passed unsent events")


if __name__ == "__main__":
    tap.main()
