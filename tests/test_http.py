#!/usr/bin/env python3
"""test_http.py: outboxd's HTTP sink against real HTTP servers started here.

Each test starts a scripted receiver (tests/http_receiver.py) on a free loopback port and
its own database. What is checked is what the receiver got (raw bodies, headers, order)
and what the relay recorded (outbox_sink, outbox_retry): every outcome of the sink
(delivered, rejected, unsent with Retry-After, 410 Gone, timeouts, refused connections),
signatures checked by a verifier written here with hmac/hashlib (not the sink's code),
TLS with a CA made here, and a receiver SIGKILLed mid-run (nothing lost).
"""

import base64
import email.utils
import hashlib
import hmac
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tap  # noqa: E402
from harness import (OUTBOXD, BrokerCase, OutboxDB, Process, TempDir,  # noqa: E402
                     free_port, make_ca, make_server_cert, wait_for)
from http_receiver import Receiver  # noqa: E402

tap.require_programs(OUTBOXD, "openssl")

# Never through a proxy of the machine running the tests.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

SECRET_A = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRET_B = "whsec_" + base64.b64encode(b"another key, for rotation").decode()


def sw_verify(secret, headers, body):
    """A Standard Webhooks verifier of our own: does one of the v1 signatures in headers
    match secret over the raw body?"""
    key = base64.b64decode(secret[len("whsec_"):])
    signed = ("%s.%s." % (headers["webhook-id"], headers["webhook-timestamp"])).encode() + body
    want = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    sigs = headers["webhook-signature"].split(" ")
    return any(s.startswith("v1,") and hmac.compare_digest(s[3:], want) for s in sigs)


class HttpCase(BrokerCase):
    def setUp(self):
        self.tmp = TempDir("http")
        self.addCleanup(self.tmp.cleanup)
        self.db = OutboxDB(self.tmp.join("app.db"))

    def receiver(self, script=None, **kw):
        r = Receiver(script, **kw)
        self.addCleanup(r.close)
        return r

    def config(self, url, **opts):
        # One request at a time unless a test asks for more: requests in flight together
        # may arrive in any order, and most tests compare what arrived with the events.
        sink = {"type": "http", "url": url, "concurrency": 1}
        sink.update({k.replace("_", "-"): v for k, v in opts.items()})
        return self.make_config({"outbox.database": self.db.path, "relay.max-attempts": 3,
                                 "sinks": {"web": sink}})

    def drained(self, sink="web", timeout=20):
        top = self.db.max_seq()
        wait_for(lambda: self.db.cursor(sink) == top, timeout,
                 what="cursor of %s to reach %d" % (sink, top))

    def assert_envelope(self, raw, event):
        env = json.loads(raw)
        want = {"id": event["id"], "name": event["name"], "data": json.loads(event["payload"])}
        if event["headers"] is not None:
            want["metadata"] = json.loads(event["headers"])
        self.assertEqual(env, want)

    # ---- delivered -----------------------------------------------------------------

    def test_delivered_exactly_the_envelope(self):
        rcv = self.receiver()
        self.db.insert("user.login", {"user": {"_id": "42"}})
        self.db.insert("user.follow", {"a": [1, 2]}, headers={"trace": "t-1"})
        relay = self.relay(self.config(rcv.url("/hooks/{name}"),
                                       headers={"Authorization": "Bearer tok", "X-Empty": ""}))
        relay.start()
        self.drained()
        got = rcv.received()
        events = self.db.events()
        self.assertEqual(len(got), 2)
        for req, ev in zip(got, events):
            self.assertEqual(req.method, "POST")
            self.assertEqual(req.path, "/hooks/" + ev["name"])
            self.assertEqual(req.headers["content-type"], "application/json")
            self.assertEqual(req.headers["authorization"], "Bearer tok")
            self.assertEqual(req.headers["x-empty"], "")
            self.assertNotIn("webhook-signature", req.headers)
            self.assert_envelope(req.body, ev)
        # Byte for byte what the stdout sink prints.
        self.assertEqual(got[0].body.decode(), '{"id":"%s","name":"user.login","data":'
                         '{"user":{"_id":"42"}}}' % events[0]["id"])
        self.assertEqual(self.db.retry_rows(), [])

    def test_put_and_names_percent_encoded(self):
        rcv = self.receiver()
        self.db.insert("a/b%c")
        self.once(self.config(rcv.url("/e/{name}"), method="PUT"))
        got = rcv.received()
        self.assertEqual([(r.method, r.path) for r in got], [("PUT", "/e/a%2Fb%25c")])

    def test_command_line_flag(self):
        rcv = self.receiver()
        self.db.insert("user.login")
        self.once(None, ["--db", self.db.path, "--http", rcv.url("/x")])
        self.assertEqual(len(rcv.received()), 1)
        self.assertEqual(self.db.cursor("http"), 1)

    # ---- rejected ------------------------------------------------------------------

    def test_rejections_count_attempts_and_show_the_response(self):
        long_body = ("x" * 190 + "0123456789ABCDEFGHIJ").encode()

        def script(req):
            code = int(req.path.strip("/")[1:]) if req.path.startswith("/s") else 204
            if code == 302:
                return 302, {"Location": "/s204"}, b"moved"
            return (code, {}, long_body) if code != 204 else None

        rcv = self.receiver(script)
        for code in (500, 501, 404, 400, 302):
            self.db.insert("s%d" % code)
        self.db.insert("s204")
        self.relay(self.config(rcv.url("/{name}"))).start()
        wait_for(lambda: len(self.db.failed_rows("web")) == 5, 30, what="5 failed events")
        rows = {r["seq"]: r for r in self.db.retry_rows("web")}
        self.assertEqual(sorted(rows), [1, 2, 3, 4, 5])
        for seq, line in ((1, "HTTP/1.1 500 Internal Server Error"),
                          (2, "HTTP/1.1 501 Not Implemented"), (3, "HTTP/1.1 404 Not Found"),
                          (4, "HTTP/1.1 400 Bad Request"), (5, "HTTP/1.1 302 Found")):
            self.assertEqual(rows[seq]["attempts"], 3)
            want = line + ": " + ("x" * 190 + "0123456789" if seq != 5 else "moved")
            self.assertEqual(rows[seq]["last_error"][:len(want)], want)
            self.assertNotIn("ABCDEFGHIJ", rows[seq]["last_error"])
        # The redirect was not followed; the poison events did not pin the sink.
        paths = [r.path for r in rcv.received()]
        self.assertEqual(paths.count("/s204"), 1)
        self.assertEqual(paths.count("/s500"), 3)
        self.drained()

    # ---- unsent: the endpoint is down ------------------------------------------------

    def test_outages_burn_no_attempts(self):
        codes = [408, 429, 502, 503, 504]
        answers = list(codes)

        def script(req):
            return (answers.pop(0), {}, b"later") if answers else None

        rcv = self.receiver(script)
        self.db.insert("e1")
        self.db.insert("e2")
        relay = self.relay(self.config(rcv.url("/")))
        relay.start()
        self.drained()
        self.assertEqual(self.db.retry_rows(), [])
        self.assertGreaterEqual(len(rcv.received()), len(codes) + 2)
        log = relay.log()
        self.assertIn("connection lost: http://127.0.0.1:%d/: HTTP/1.1 408 Request Timeout"
                      % rcv.port, log)

    def test_retry_after_seconds_and_date(self):
        for form in ("seconds", "date"):
            value = "2" if form == "seconds" else email.utils.formatdate(time.time() + 3,
                                                                         usegmt=True)
            with self.subTest(retry_after=value):
                answers = [(503, {"Retry-After": value}, b"")]
                rcv = self.receiver(lambda req: answers.pop(0) if answers else None)
                self.db.insert("e")
                cf = self.config(rcv.url("/"))
                cf["relay.backoff-max-ms"] = 10000
                relay = self.relay(cf)
                relay.start()
                self.drained()
                relay.stop()
                got = rcv.received()
                self.assertEqual(len(got), 2)
                # Seconds are whole: an HTTP-date 3 s ahead is at least 2 s away.
                self.assertGreater(got[1].time - got[0].time, 1.8)
                self.assertIn("Retry-After: waiting", relay.log())
                self.assertEqual(self.db.retry_rows(), [])

    def test_retry_after_capped_by_backoff_max(self):
        answers = [(429, {"Retry-After": "3600"}, b"")]
        rcv = self.receiver(lambda req: answers.pop(0) if answers else None)
        self.db.insert("e")
        cf = self.config(rcv.url("/"))
        cf["relay.backoff-max-ms"] = 300
        cf["relay.backoff-initial-ms"] = 100
        self.relay(cf).start()
        self.drained(timeout=10)
        got = rcv.received()
        self.assertLess(got[1].time - got[0].time, 5)

    def test_connection_refused_then_receiver_starts(self):
        port = free_port()
        self.db.insert_many([("e%d" % i,) for i in range(5)])
        relay = self.relay(self.config("http://127.0.0.1:%d/in" % port))
        relay.start()
        relay.wait_log("Couldn't connect to server")
        rcv = self.receiver(port=port)
        self.drained()
        self.assertEqual(sorted(json.loads(r.body)["name"] for r in rcv.received()),
                         ["e%d" % i for i in range(5)])
        self.assertEqual(self.db.retry_rows(), [])

    def test_stalled_receiver_times_out(self):
        stall = [True]

        def script(req):
            if stall[0]:
                stall[0] = False
                time.sleep(2)
            return None

        rcv = self.receiver(script)
        self.db.insert("slow")
        relay = self.relay(self.config(rcv.url("/"), timeout_ms=400))
        relay.start()
        relay.wait_log("no response within 400 ms (timeout-ms)")
        self.drained()
        self.assertEqual(self.db.retry_rows(), [])
        self.assertEqual(len(rcv.received()), 2)

    def test_gone_keeps_the_sink_down_until_the_config_changes(self):
        rcv = self.receiver(lambda req: (410, {}, b"retired") if req.path == "/old" else None)
        self.db.insert_many([("e1",), ("e2",)])
        cf = self.config(rcv.url("/old"), concurrency=16)
        relay = self.relay(cf)
        relay.start()
        log = relay.wait_log("the endpoint is gone")
        self.assertIn("error: sink web: http://127.0.0.1:%d/old: HTTP/1.1 410 Gone: the "
                      "endpoint is gone; the sink stays down until its configuration "
                      "changes (nothing is dropped)" % rcv.port, log)
        # The requests in flight (one per event), then none: no retries against a
        # retired endpoint, and nothing recorded.
        time.sleep(1.0)
        self.assertEqual(len(rcv.received()), 2)
        self.assertEqual(self.db.cursor("web"), 0)
        self.assertEqual(self.db.retry_rows(), [])
        cf["sinks"]["web"]["url"] = rcv.url("/new")
        with open(relay.config_path, "w") as f:
            json.dump(cf, f)
        relay.signal(signal.SIGHUP)
        self.drained()
        self.assertEqual([r.path for r in rcv.received()], ["/old", "/old", "/new", "/new"])

    # ---- signatures ------------------------------------------------------------------

    def test_standard_webhooks_signatures(self):
        rcv = self.receiver()
        ids = [eid for _, eid in self.db.insert_many([("a", {"x": "é"}), ("b", "[1, 2]")])]
        before = int(time.time())
        log = self.once(self.config(rcv.url("/"), signing_secret=[SECRET_A, SECRET_B]),
                        ["-v", "-v"])
        got = rcv.received()
        self.assertEqual([r.headers["webhook-id"] for r in got], ids)
        for r in got:
            self.assertTrue(sw_verify(SECRET_A, r.headers, r.body))
            self.assertTrue(sw_verify(SECRET_B, r.headers, r.body))
            self.assertEqual(len(r.headers["webhook-signature"].split(" ")), 2)
            self.assertLessEqual(abs(int(r.headers["webhook-timestamp"]) - before), 60)
            # Re-serialized JSON is another body: verifying it fails, as it should.
            self.assertFalse(sw_verify(SECRET_A, r.headers,
                                       json.dumps(json.loads(r.body)).encode()))
        self.assertFalse(sw_verify("whsec_" + base64.b64encode(b"wrong").decode(),
                                   got[0].headers, got[0].body))
        for s in (SECRET_A, SECRET_B, SECRET_A[6:]):
            self.assertNotIn(s, log)

    def test_hex_signature_from_the_environment(self):
        rcv = self.receiver()
        self.db.insert("user.login", {"u": 1})
        secret = "push-events-secret-1234"
        env = dict(os.environ, OUTBOXD_HTTP_SECRET=secret)
        relay = self.relay(self.config(rcv.url("/"), signature="hmac-sha256-hex",
                                       signature_header="X-Sig"))
        relay.env = env
        relay.argv += ["-v", "-v"]
        relay.start()
        self.drained()
        req = rcv.received()[0]
        self.assertEqual(req.headers["x-sig"],
                         hmac.new(secret.encode(), req.body, hashlib.sha256).hexdigest())
        self.assertNotIn("webhook-signature", req.headers)
        self.assertNotIn(secret, relay.log())
        with open("/proc/%d/cmdline" % relay.pid, "rb") as f:
            self.assertNotIn(secret.encode(), f.read())

    # ---- batches and order -----------------------------------------------------------

    def test_batch_sends_arrays(self):
        rcv = self.receiver()
        rows = self.db.insert_many([("e%d" % i, {"i": i}) for i in range(7)])
        # The requests of one publish go out together: their order of arrival is not
        # promised (events without a key have none), so sort them by their first event.
        self.once(self.config(rcv.url("/"), batch=3, signing_secret=SECRET_A))
        got = sorted(rcv.received(), key=lambda r: r.json()[0]["data"]["i"])
        self.assertEqual([len(r.json()) for r in got], [3, 3, 1])
        self.assertEqual([e["id"] for r in got for e in r.json()], [eid for _, eid in rows])
        for r in got:
            self.assertEqual(r.headers["content-type"], "application/json")
            self.assertTrue(sw_verify(SECRET_A, r.headers, r.body))

    def test_batch_rejected_as_a_whole(self):
        rcv = self.receiver(lambda req: (422, {}, b"bad batch"))
        self.db.insert_many([("e%d" % i,) for i in range(4)])
        self.once(self.config(rcv.url("/"), batch=4))
        rows = self.db.retry_rows("web")
        self.assertEqual([r["seq"] for r in rows], [1, 2, 3, 4])
        self.assertTrue(all(r["last_error"].startswith("HTTP/1.1 422 Unprocessable Entity: "
                                                       "bad batch") for r in rows))

    def test_order_per_key_with_concurrency(self):
        import random
        rnd = random.Random(7)
        rcv = self.receiver(lambda req: time.sleep(rnd.random() * 0.01))
        rows = [("e", {"n": i}, None, "k%d" % (i % 4)) for i in range(80)]
        self.db.insert_many(rows)
        self.relay(self.config(rcv.url("/"), concurrency=8)).start()
        self.drained()
        seen = {}
        for r in rcv.received():
            env = r.json()
            seen.setdefault(env["data"]["n"] % 4, []).append(env["data"]["n"])
        for key, ns in seen.items():
            self.assertEqual(ns, sorted(ns), "key k%d out of order" % key)
        self.assertEqual(sum(len(v) for v in seen.values()), 80)

    # ---- CloudEvents -------------------------------------------------------------------

    def ce_events(self):
        self.db.insert("user.login", '{"user": {"_id": "42"}, "n": 1.50}',
                       headers={"traceparent": "00-abc", "Bad_Name": "x", "tenant": 7})
        self.db.insert("user.logout", "[1, 2]", headers={"Bad_Name": "y"})
        return self.db.events()

    def assert_ce_attributes(self, attrs, ev, source):
        """The attributes of event ev, one by one (attrs: a dict of strings or values)."""
        created = self.db.query("SELECT created_at FROM outbox WHERE seq = ?",
                                (ev["seq"],))[0][0]
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created // 1000))
        self.assertEqual(attrs["specversion"], "1.0")
        self.assertEqual(attrs["id"], ev["id"])
        self.assertEqual(attrs["source"], source)
        self.assertEqual(attrs["type"], "app." + ev["name"])
        self.assertEqual(attrs["time"], "%s.%03dZ" % (when, created % 1000))
        self.assertNotIn("bad_name", {k.lower() for k in attrs})

    def test_cloudevents_structured(self):
        rcv = self.receiver()
        events = self.ce_events()
        cf = self.config(rcv.url("/"), format="cloudevents", prefix="app.")
        log = self.once(cf)
        got = rcv.received()
        self.assertEqual(len(got), 2)
        host = os.uname().nodename
        for req, ev in zip(got, events):
            self.assertEqual(req.headers["content-type"], "application/cloudevents+json")
            ce = req.json()
            self.assert_ce_attributes(ce, ev, "//outboxd/%s%s" % (host, self.db.path))
            self.assertEqual(ce["datacontenttype"], "application/json")
            self.assertEqual(ce["data"], json.loads(ev["payload"]))
        self.assertEqual(got[0].json()["traceparent"], "00-abc")
        self.assertEqual(got[0].json()["tenant"], 7)
        # data holds the payload's bytes as the producer wrote them, made compact.
        self.assertTrue(got[0].body.endswith(b',"data":{"user":{"_id":"42"},"n":1.50}}'))
        self.assertEqual(log.count('header "Bad_Name" is not a CloudEvents extension'), 1)

    def test_cloudevents_binary(self):
        rcv = self.receiver()
        events = self.ce_events()
        self.once(self.config(rcv.url("/"), format="cloudevents", prefix="app.",
                              cloudevents_mode="binary", cloudevents_source="urn:my app",
                              signing_secret=SECRET_A))
        got = rcv.received()
        for req, ev in zip(got, events):
            self.assertEqual(req.headers["content-type"], "application/json")
            attrs = {k[3:]: v for k, v in req.headers.items() if k.startswith("ce-")}
            self.assertEqual(attrs["source"], "urn:my%20app")
            attrs["source"] = "urn:my app"
            self.assert_ce_attributes(attrs, ev, "urn:my app")
            self.assertNotIn("data", attrs)
            self.assertEqual(json.loads(req.body), json.loads(ev["payload"]))
            self.assertTrue(sw_verify(SECRET_A, req.headers, req.body))
        self.assertEqual(got[0].headers["ce-traceparent"], "00-abc")
        self.assertEqual(got[0].headers["ce-tenant"], "7")

    def test_cloudevents_batch(self):
        rcv = self.receiver()
        events = self.ce_events()
        self.once(self.config(rcv.url("/"), format="cloudevents", prefix="app.", batch=10,
                              cloudevents_source="/s"))
        (req,) = rcv.received()
        self.assertEqual(req.headers["content-type"], "application/cloudevents-batch+json")
        for ce, ev in zip(req.json(), events):
            self.assert_ce_attributes(ce, ev, "/s")

    def test_cloudevents_on_stdout(self):
        events = self.ce_events()
        cf = self.make_config({"outbox.database": self.db.path, "sinks": {"out": {
            "type": "stdout", "format": "cloudevents", "prefix": "app.",
            "cloudevents-source": "/here"}}})
        relay = self.relay(cf)
        rc, _ = relay.once()
        self.assertEqual(rc, 0)
        lines = [json.loads(line) for line in relay.output().splitlines()]
        self.assertEqual(len(lines), 2)
        for ce, ev in zip(lines, events):
            self.assert_ce_attributes(ce, ev, "/here")
            self.assertEqual(ce["data"], json.loads(ev["payload"]))

    # ---- TLS ---------------------------------------------------------------------------

    def test_tls_with_a_ca_made_here(self):
        pki = self.tmp.join("pki")
        os.makedirs(pki)
        ca = make_ca(pki, "ca")
        wrong = make_ca(pki, "wrong")
        make_server_cert(pki, "ca")
        rcv = self.receiver(tls=(os.path.join(pki, "server.crt"),
                                 os.path.join(pki, "server.key")))
        self.db.insert("secure")
        url = rcv.url("/", scheme="https", host="localhost")
        relay = self.relay(self.config(url, tls_ca_file=wrong))
        relay.start()
        relay.wait_log("connection lost")
        relay.stop()
        self.assertEqual(rcv.received(), [])
        self.assertEqual(self.db.cursor("web"), 0)
        self.assertEqual(self.db.retry_rows(), [])
        self.once(self.config(url, tls_ca_file=ca))
        self.assertEqual(len(rcv.received()), 1)
        self.assertEqual(self.db.cursor("web"), 1)

    # ---- nothing lost --------------------------------------------------------------------

    def test_receiver_killed_mid_run_loses_nothing(self):
        port = free_port()
        log = self.tmp.join("received.jsonl")
        here = os.path.dirname(os.path.abspath(__file__))

        def start():
            p = Process([sys.executable, os.path.join(here, "http_receiver.py"), port, log],
                        self.tmp.join("receiver.out"))
            p.start()
            self.addCleanup(p.kill)
            wait_for(lambda: "listening" in p.output(), 10, what="the receiver")
            return p

        def ids():
            try:
                with open(log) as f:
                    return {json.loads(json.loads(line)["body"])["id"]
                            for line in f if line.endswith("\n")}
            except FileNotFoundError:
                return set()

        rcv = start()
        relay = self.relay(self.config("http://127.0.0.1:%d/" % port, concurrency=4))
        relay.start()
        want = set()
        for i in range(30):
            want |= {eid for _, eid in self.db.insert_many([("e", {"i": i, "j": j})
                                                            for j in range(10)])}
            if i == 10:
                wait_for(lambda: len(ids()) >= 50, 20, what="50 events received")
                rcv.kill()
            if i == 20:
                rcv = start()
        self.drained(timeout=60)
        self.assertEqual(want - ids(), set())
        self.assertEqual(self.db.retry_rows(), [])


if __name__ == "__main__":
    tap.main()
