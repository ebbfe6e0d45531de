#!/usr/bin/env python3
"""test_outboxctl_ops.py: outboxctl's operator commands end to end: ls, show, tail, purge,
sinks, status as a health check, replay by time, and progress bars on a terminal. Exact
output and exit statuses; bad input writes nothing; purge is checked against a model over
random delivery states. TAP through tap.py.
"""

import json
import os
import pty
import random
import re
import select
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tap  # noqa: E402
from harness import OUTBOXCTL, OUTBOXD, SRCDIR, TempDir  # noqa: E402
from test_outboxctl import ctl, rows  # noqa: E402

if not os.access(OUTBOXCTL, os.X_OK):
    tap.skip_all("%s is not built" % OUTBOXCTL)

LS_USAGE = ("usage: outboxctl [-d DB] ls [--sink S] [--state STATE] [--name GLOB] "
            "[--since TIME] [--limit N] [--json]")
SHOW_USAGE = "usage: outboxctl [-d DB] show ID|SEQ [--json]"
PURGE_USAGE = "usage: outboxctl [-d DB] purge --older-than DURATION [--batch N] [--dry-run]"
SINKS_USAGE = "usage: outboxctl [-d DB] sinks [--json] | sinks rm NAME [--yes]"
TAIL_USAGE = "usage: outboxctl [-d DB] tail [-f] [-n N] [--name GLOB]"
HOUR_MS = 3600 * 1000


def now_ms():
    return int(time.time() * 1000)


def snapshot(db):
    """Everything the commands could change."""
    return (rows(db, "SELECT * FROM outbox ORDER BY seq"),
            rows(db, "SELECT * FROM outbox_sink ORDER BY name"),
            rows(db, "SELECT * FROM outbox_retry ORDER BY sink, seq"))


def run_on_terminal(argv, stdin_text=None, timeout=60):
    """Run argv with stdin and stderr on a pseudo-terminal, stdout piped.
    (exit status, stdout, what the terminal showed)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, stdin=slave, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    if stdin_text is not None:
        os.write(master, stdin_text.encode())
    shown = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
        elif p.poll() is not None:
            break
    out = p.stdout.read().decode()
    p.stdout.close()
    rc = p.wait(timeout)
    os.close(master)
    return rc, out, shown.decode(errors="replace")


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir("ops")
        self.addCleanup(self.tmp.cleanup)
        self.db = self.tmp.join("app.db")
        self.assertEqual(ctl("-d", self.db, "init")[0], 0)

    def ok(self, *args):
        rc, out, err = ctl("-d", self.db, *args)
        self.assertEqual((rc, err), (0, ""), "outboxctl %s" % " ".join(map(str, args)))
        return out

    def fails(self, status, message, usage, *args):
        """Exit status, one error line (and a usage line), no output, nothing written."""
        before = snapshot(self.db)
        rc, out, err = ctl("-d", self.db, *args)
        want = "outboxctl: %s\n" % message + ("%s\n" % usage if usage else "")
        self.assertEqual((rc, out, err), (status, "", want))
        self.assertEqual(snapshot(self.db), before)

    def sql(self, script, args=()):
        c = sqlite3.connect(self.db)
        try:
            if args:
                c.execute(script, args)
            else:
                c.executescript(script)
            c.commit()
        finally:
            c.close()

    def fixture(self):
        """Six events and two sinks in every state:
        a (no filter), cursor 5: 1 delivered, 2 failed, 3 retry, 4-5 delivered, 6 pending
        b (user.*), cursor 2: 1 delivered, 2 retry, 3 and 5 pending; 4, 6 filtered out."""
        names = ["user.login", "user.login", "user.logout", "order.paid", "user.login",
                 "order.paid"]
        for i, name in enumerate(names, 1):
            self.ok("enqueue", name, '{"i":%d}' % i, "--id", "ev%d" % i)
        base = now_ms() - 10 * HOUR_MS
        self.sql("UPDATE outbox SET created_at = ? + seq * 3600000", (base,))
        self.sql("""
            INSERT INTO outbox_sink(name, type, cursor) VALUES ('a', 'redis', 5);
            INSERT INTO outbox_sink(name, type, cursor, filter)
              VALUES ('b', 'rabbitmq', 2, '["user.*"]');
            INSERT INTO outbox_retry VALUES ('a', 2, 'failed', 10, 0, 'ERR boom', 1);
            INSERT INTO outbox_retry VALUES ('a', 3, 'retry', 4, 4102444800000, 'slow', 1);
            INSERT INTO outbox_retry VALUES ('b', 2, 'retry', 1, 4102444800000, 'nack', 1);
        """)

    def ls_json(self, *args):
        return [json.loads(line) for line in self.ok("ls", "--json", *args).splitlines()]


class TestLs(Base):
    def test_every_state_newest_last(self):
        self.fixture()
        got = [(r["seq"], r["sink"], r["state"], r["attempts"], r["last_error"])
               for r in self.ls_json()]
        self.assertEqual(got, [
            (1, "a", "delivered", 0, None), (1, "b", "delivered", 0, None),
            (2, "a", "failed", 10, "ERR boom"), (2, "b", "retry", 1, "nack"),
            (3, "a", "retry", 4, "slow"), (3, "b", "pending", 0, None),
            (4, "a", "delivered", 0, None),
            (5, "a", "delivered", 0, None), (5, "b", "pending", 0, None),
            (6, "a", "pending", 0, None)])
        row = self.ls_json("--state", "retry", "--sink", "a")[0]
        self.assertEqual(row, {"seq": 3, "id": "ev3", "name": "user.logout", "sink": "a",
                               "state": "retry", "attempts": 4,
                               "next_attempt": "2100-01-01T00:00:00.000Z",
                               "last_error": "slow", "created": row["created"]})
        self.assertRegex(row["created"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_selectors(self):
        self.fixture()
        def seqs(*args):
            return [(r["seq"], r["sink"]) for r in self.ls_json(*args)]
        self.assertEqual(seqs("--state", "pending"), [(3, "b"), (5, "b"), (6, "a")])
        self.assertEqual(seqs("-S", "failed"), [(2, "a")])
        self.assertEqual(seqs("--sink", "b", "--state", "delivered"), [(1, "b")])
        self.assertEqual(seqs("--name", "order.*"), [(4, "a"), (6, "a")])
        self.assertEqual(seqs("--limit", "3"), [(5, "a"), (5, "b"), (6, "a")])
        self.assertEqual(len(seqs("--limit", "0")), 10)
        # Events were created 9h, 8h, ... 4h ago.
        self.assertEqual(seqs("--since", "450m", "--until", "330m"),
                         [(3, "a"), (3, "b"), (4, "a")])
        created = rows(self.db, "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1000.0, "
                                "'unixepoch') FROM outbox WHERE seq = 5")[0][0]
        self.assertEqual(seqs("--since", created), [(5, "a"), (5, "b"), (6, "a")])
        self.assertEqual(seqs("--until", created[:10] + " " + created[11:23] + "+00:00",
                              "--name", "user.login", "--sink", "a"), [(1, "a"), (2, "a")])

    def test_table(self):
        self.fixture()
        out = self.ok("ls", "--state", "failed").splitlines()
        self.assertEqual(out[0].split(), ["SEQ", "ID", "NAME", "SINK", "STATE", "ATTEMPTS",
                                          "NEXT", "ATTEMPT", "LAST", "ERROR", "CREATED"])
        self.assertEqual(out[1].split()[:9], ["2", "ev2", "user.login", "a", "failed", "10",
                                              "-", "ERR", "boom"])
        self.assertEqual(len(out), 2)
        # A long error is cut in the table, whole in --json.
        self.sql("UPDATE outbox_retry SET last_error = 'E' || printf('%.200c', 'x') "
                 "WHERE seq = 2 AND sink = 'a'")
        line = self.ok("ls", "--state", "failed").splitlines()[1]
        self.assertIn(" E" + "x" * 56 + "... ", line)
        self.assertEqual(len(self.ls_json("--state", "failed")[0]["last_error"]), 201)

    def test_events_no_sink_wants(self):
        self.ok("enqueue", "user.login", "{}", "--id", "lonely")
        self.assertEqual(self.ls_json(), [{
            "seq": 1, "id": "lonely", "name": "user.login", "sink": None, "state": None,
            "attempts": None, "next_attempt": None, "last_error": None,
            "created": self.ls_json()[0]["created"]}])
        self.assertEqual(self.ok("ls", "--state", "pending"), "no events\n")

    def test_filtered_out_events(self):
        """An event that no sink takes shows as filtered out on each sink, as in show."""
        self.fixture()
        self.sql("UPDATE outbox_sink SET filter = '[\"user.*\", \"cart.*\"]' WHERE name = 'a'")
        got = [(r["seq"], r["sink"], r["state"], r["attempts"]) for r in self.ls_json()]
        self.assertEqual(got, [
            (1, "a", "delivered", 0), (1, "b", "delivered", 0),
            (2, "a", "failed", 10), (2, "b", "retry", 1),
            (3, "a", "retry", 4), (3, "b", "pending", 0),
            (4, "a", "filtered out", 0), (4, "b", "filtered out", 0),
            (5, "a", "delivered", 0), (5, "b", "pending", 0),
            (6, "a", "filtered out", 0), (6, "b", "filtered out", 0)])
        out = self.ok("ls", "--name", "order.*").splitlines()
        self.assertEqual([line.split()[:6] for line in out[1:]],
                         [["4", "ev4", "order.paid", "a", "filtered", "out"],
                          ["4", "ev4", "order.paid", "b", "filtered", "out"],
                          ["6", "ev6", "order.paid", "a", "filtered", "out"],
                          ["6", "ev6", "order.paid", "b", "filtered", "out"]])
        # One sink: the events it does not take, whatever the other sinks do.
        self.sql("UPDATE outbox_sink SET filter = NULL WHERE name = 'a'")
        self.assertEqual([(r["seq"], r["state"]) for r in self.ls_json("--sink", "b")],
                         [(1, "delivered"), (2, "retry"), (3, "pending"), (4, "filtered out"),
                          (5, "pending"), (6, "filtered out")])
        self.assertEqual([(r["seq"], r["sink"]) for r in self.ls_json("--name", "order.*")],
                         [(4, "a"), (6, "a")])
        # A prefix counts, as in the relay: b publishes "app.order.paid".
        self.sql("UPDATE outbox_sink SET filter = '[\"app.order.*\"]', prefix = 'app.' "
                 "WHERE name = 'b'")
        self.assertEqual([(r["seq"], r["state"]) for r in self.ls_json("--sink", "b")][3:],
                         [(4, "pending"), (5, "filtered out"), (6, "pending")])

    def test_bad_arguments(self):
        self.fixture()
        self.fails(2, "--state: expected pending, retry, failed or delivered, got \"stuck\"",
                   LS_USAGE, "ls", "--state", "stuck")
        self.fails(2, "--limit: -1 is out of range (0 to 9223372036854775807)", LS_USAGE,
                   "ls", "--limit", "-1")
        for bad in ("yesterday", "2026-02-30", "2026-11-23T25:00:00Z", "10x", "2026-11-23Z1"):
            self.fails(2, "--since: expected an ISO 8601 time (2026-11-23T08:00:00Z) or an "
                       "age such as 10m, 2h or 7d, got \"%s\"" % bad, LS_USAGE,
                       "ls", "--since", bad)
        self.fails(2, "unexpected argument 'x'", LS_USAGE, "ls", "x")
        self.fails(1, "no sink named 'c'", None, "ls", "--sink", "c")


class TestShow(Base):
    def test_by_id_and_by_seq(self):
        self.fixture()
        self.sql("UPDATE outbox SET headers = '{\"trace\":\"t1\"}', key = 'k' WHERE seq = 2")
        text = self.ok("show", "ev2")
        self.assertEqual(self.ok("show", "2"), text)
        lines = text.splitlines()
        self.assertEqual(lines[:4], ["seq:     2", "id:      ev2", "name:    user.login",
                                     "key:     k"])
        self.assertIn("headers:\n  {\n    \"trace\": \"t1\"\n  }\npayload:\n  {\n"
                      "    \"i\": 2\n  }\nsinks:\n", text)
        sink_rows = [line.split()[:3] for line in text.split("sinks:\n")[1].splitlines()[1:]]
        self.assertEqual(sink_rows, [["a", "failed", "10"], ["b", "retry", "1"]])
        obj = json.loads(self.ok("show", "ev2", "--json"))
        self.assertEqual(obj["headers"], {"trace": "t1"})
        self.assertEqual(obj["payload"], {"i": 2})
        self.assertEqual([(s["sink"], s["state"], s["last_error"]) for s in obj["sinks"]],
                         [("a", "failed", "ERR boom"), ("b", "retry", "nack")])
        obj = json.loads(self.ok("show", "4", "--json"))
        self.assertEqual([(s["sink"], s["state"]) for s in obj["sinks"]],
                         [("a", "delivered"), ("b", "filtered out")])
        self.assertIsNone(obj["headers"])

    def test_an_id_wins_over_a_seq(self):
        self.ok("enqueue", "a.b", "1", "--id", "x")
        self.ok("enqueue", "a.b", "2", "--id", "1")
        self.assertEqual(json.loads(self.ok("show", "1", "--json"))["payload"], 2)

    def test_errors(self):
        self.fails(1, "no event with id or seq 'nope'", None, "show", "nope")
        self.fails(2, "show needs the ID or SEQ of an event", SHOW_USAGE, "show")
        self.fails(2, "unexpected argument 'b'", SHOW_USAGE, "show", "a", "b")


class TestTail(Base):
    def test_last_lines_as_envelopes(self):
        self.fixture()
        self.sql("UPDATE outbox SET headers = '{\"h\":1}' WHERE seq = 6")
        out = self.ok("tail", "-n", "2").splitlines()
        self.assertEqual(out, ['{"id":"ev5","name":"user.login","data":{"i":5}}',
                               '{"id":"ev6","name":"order.paid","data":{"i":6},'
                               '"metadata":{"h":1}}'])
        self.assertEqual(len(self.ok("tail").splitlines()), 6)
        self.assertEqual([json.loads(x)["id"] for x in
                          self.ok("tail", "--name", "user.*", "-n", "2").splitlines()],
                         ["ev3", "ev5"])
        self.assertEqual(self.ok("tail", "-n", "0"), "")
        self.fails(2, "--lines: expected an integer, got \"x\"", TAIL_USAGE, "tail", "-n", "x")

    def test_follow_prints_commits(self):
        self.ok("enqueue", "old", "1", "--id", "old")
        p = subprocess.Popen([OUTBOXCTL, "-d", self.db, "tail", "-f", "-n", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(p.kill)
        time.sleep(0.5)
        self.ok("enqueue", "new", '{"n":1}', "--id", "new")
        ready, _, _ = select.select([p.stdout], [], [], 20)
        self.assertTrue(ready, "tail -f printed nothing for 20 s")
        self.assertEqual(p.stdout.readline(), '{"id":"new","name":"new","data":{"n":1}}\n')
        self.assertIsNone(p.poll())
        p.terminate()
        p.wait(10)
        self.assertEqual(p.stderr.read(), "")


class TestPurge(Base):
    def test_deletes_only_what_every_sink_delivered(self):
        self.fixture()
        # 1 is delivered by both sinks; 2 and 3 have retry rows; 4+ are past b's cursor.
        self.assertEqual(self.ok("purge", "--older-than", "1h", "--dry-run"),
                         "would purge 1 event\n")
        self.assertEqual(len(rows(self.db, "SELECT seq FROM outbox")), 6)
        self.assertEqual(self.ok("purge", "--older-than", "1h"), "purged 1 event\n")
        self.assertEqual([r[0] for r in rows(self.db, "SELECT seq FROM outbox")],
                         [2, 3, 4, 5, 6])
        self.assertEqual(self.ok("purge", "--older-than", "1h"), "purged 0 events\n")

    def test_age(self):
        self.fixture()
        self.sql("UPDATE outbox_sink SET cursor = 6; DELETE FROM outbox_retry")
        # Events are 9h .. 4h old.
        self.assertEqual(self.ok("purge", "--older-than", "450m"), "purged 2 events\n")
        self.assertEqual(self.ok("purge", "--older-than", "1d"), "purged 0 events\n")
        self.assertEqual(self.ok("purge", "-o", "0s", "--batch", "1"), "purged 4 events\n")

    def test_never_removes_an_undelivered_event(self):
        """Property: over random cursors, filters, retry rows and ages, purge deletes exactly
        the old events that every sink handed off and none has a retry row for."""
        seed = int(os.environ.get("OUTBOX_TEST_SEED", random.randrange(1 << 30)))
        rnd = random.Random(seed)
        print("# seed %d (OUTBOX_TEST_SEED)" % seed)
        names = ["user.login", "order.paid", "cart.add"]
        n = 60
        for case in range(12):
            self.sql("DELETE FROM outbox_retry; DELETE FROM outbox_sink; DELETE FROM outbox")
            start = rows(self.db, "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'")
            base = start[0][0] if start else 0
            c = sqlite3.connect(self.db)
            c.executemany("INSERT INTO outbox(name, payload, created_at) VALUES (?, '{}', ?)",
                          [(rnd.choice(names), now_ms() - rnd.randrange(0, 4) * HOUR_MS
                            - 60000) for _ in range(n)])
            sinks = []
            for s in range(rnd.randrange(0, 4)):
                cursor = base + rnd.randrange(0, n + 1)
                flt = rnd.choice([None, '["user.*"]', '["order.*","cart.*"]'])
                c.execute("INSERT INTO outbox_sink(name, type, cursor, filter) "
                          "VALUES (?, 'redis', ?, ?)", ("s%d" % s, cursor, flt))
                sinks.append(cursor)
                for seq in rnd.sample(range(base + 1, base + n + 1), rnd.randrange(0, 6)):
                    c.execute("INSERT INTO outbox_retry VALUES (?, ?, ?, 1, 0, 'e', 0)",
                              ("s%d" % s, seq, rnd.choice(["retry", "failed"])))
            c.commit()
            events = c.execute("SELECT seq, created_at FROM outbox").fetchall()
            retried = {r[0] for r in c.execute("SELECT seq FROM outbox_retry")}
            c.close()
            age_h = rnd.randrange(0, 4)
            cutoff = now_ms() - age_h * HOUR_MS
            want_gone = {seq for seq, created in events
                         if sinks and seq <= min(sinks) and seq not in retried
                         and created < cutoff - 5000}
            maybe = {seq for seq, created in events if abs(created - cutoff) <= 5000}
            out = self.ok("purge", "--older-than", "%dh" % age_h,
                          "--batch", str(rnd.choice([1, 7, 1000])))
            left = {r[0] for r in rows(self.db, "SELECT seq FROM outbox")}
            gone = {seq for seq, _ in events} - left
            msg = "seed %d case %d" % (seed, case)
            self.assertEqual(gone - maybe, want_gone - maybe, msg)
            self.assertFalse(gone & retried, msg)
            self.assertTrue(all(seq <= min(sinks) for seq in gone) if gone else True, msg)
            self.assertEqual(out, "purged %d event%s\n" % (len(gone), "" if len(gone) == 1
                                                            else "s"), msg)

    def test_bad_arguments(self):
        self.fixture()
        self.fails(2, "say how old: --older-than DURATION (e.g. 7d)", PURGE_USAGE, "purge")
        self.fails(2, "--older-than: unknown unit in duration \"7y\" (use ms, s, m, h, d or w)",
                   PURGE_USAGE, "purge", "--older-than", "7y")
        self.fails(2, "--older-than: expected a duration such as 30s, 10m, 2h or 7d, got "
                   "\"-1d\"", PURGE_USAGE, "purge", "--older-than", "-1d")
        self.fails(2, "--batch: 0 is out of range (1 to 1000000)", PURGE_USAGE,
                   "purge", "-o", "1d", "--batch", "0")


class TestSinks(Base):
    def test_list(self):
        self.assertEqual(self.ok("sinks"),
                         "no sinks yet: outboxd registers its sinks when it starts\n")
        self.assertEqual(self.ok("sinks", "--json"), "")
        self.fixture()
        self.sql("UPDATE outbox_sink SET prefix = 'app.', progress_at = 1700000000000 "
                 "WHERE name = 'b'")
        out = self.ok("sinks").splitlines()
        self.assertEqual(out[0].split(), ["SINK", "TYPE", "CURSOR", "FILTER", "PREFIX",
                                          "CREATED", "LAST", "PROGRESS"])
        self.assertEqual([line.split()[:5] for line in out[1:]],
                         [["a", "redis", "5", "-", "-"],
                          ["b", "rabbitmq", "2", '["user.*"]', "app."]])
        self.assertTrue(out[2].endswith("2023-11-14T22:13:20.000Z"), out[2])
        objs = [json.loads(x) for x in self.ok("sinks", "--json").splitlines()]
        self.assertEqual([(o["name"], o["cursor"], o["filter"], o["prefix"]) for o in objs],
                         [("a", 5, None, None), ("b", 2, '["user.*"]', "app.")])

    def test_rm(self):
        self.fixture()
        self.fails(2, "not forgetting sink 'a' without confirmation: add --yes", SINKS_USAGE,
                   "sinks", "rm", "a")
        self.fails(1, "no sink named 'c'", None, "sinks", "rm", "c", "--yes")
        self.fails(2, "sinks rm needs the NAME of a sink", SINKS_USAGE, "sinks", "rm")
        self.fails(2, "unknown sinks command 'del' (only 'rm NAME')", SINKS_USAGE,
                   "sinks", "del", "a")
        self.assertEqual(self.ok("sinks", "rm", "a", "--yes"),
                         "forgot sink 'a' and its 2 retrying or failed events\n")
        self.assertEqual(rows(self.db, "SELECT name FROM outbox_sink"), [("b",)])
        self.assertEqual(rows(self.db, "SELECT sink, seq FROM outbox_retry"), [("b", 2)])

    def test_rm_asks_on_a_terminal(self):
        self.fixture()
        rc, out, shown = run_on_terminal([OUTBOXCTL, "-d", self.db, "sinks", "rm", "b"], "n\n")
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("Forget sink 'b'", shown)
        self.assertIn("outboxctl: sink 'b' kept", shown)
        self.assertEqual(len(rows(self.db, "SELECT name FROM outbox_sink")), 2)
        rc, out, shown = run_on_terminal([OUTBOXCTL, "-d", self.db, "sinks", "rm", "b"], "y\n")
        self.assertEqual((rc, out), (0, "forgot sink 'b' and its 1 retrying or failed event\n"))
        self.assertEqual(rows(self.db, "SELECT name FROM outbox_sink"), [("a",)])


class TestHealth(Base):
    def test_max_age_and_failed(self):
        self.ok("enqueue", "user.login", "{}")
        self.sql("INSERT INTO outbox_sink(name, type) VALUES ('a', 'redis');"
                 "UPDATE outbox SET created_at = created_at - 600000")
        self.assertEqual(ctl("-d", self.db, "status", "--max-age", "1h")[0], 0)
        rc, out, err = ctl("-d", self.db, "status", "--max-age", "5m")
        self.assertEqual((rc, err), (3, ""))
        self.assertTrue(out.endswith("unhealthy: the oldest undelivered event is older than "
                                     "--max-age\n"), out)
        rc, out, err = ctl("-d", self.db, "status", "--json", "-a", "5m")
        self.assertEqual((rc, err), (3, ""))
        self.assertEqual(json.loads(out)["pending"], 1)
        self.sql("UPDATE outbox_sink SET cursor = 1")
        self.assertEqual(ctl("-d", self.db, "status", "--max-age", "5m")[0], 0)
        self.sql("INSERT INTO outbox_retry VALUES ('a', 1, 'failed', 3, 0, 'x', 0)")
        self.assertEqual(ctl("-d", self.db, "status")[0], 3)
        self.fails(2, "--max-age: unknown unit in duration \"5q\" (use ms, s, m, h, d or w)",
                   "usage: outboxctl [-d DB] status [--json] [--max-age DURATION]",
                   "status", "--max-age", "5q")


class TestReplayByTime(Base):
    def test_since_until_pick_events_by_creation(self):
        self.fixture()
        # Retry rows a/2 and b/2 are of an event 8h old, a/3 of one 7h old.
        self.assertEqual(self.ok("replay", "--since", "510m", "--until", "450m", "--dry-run"),
                         "a\t2\tev2\tuser.login\tfailed\nb\t2\tev2\tuser.login\tretry\n"
                         "would replay 2 events\n")
        # From 7.5h ago: a/3 retrying, a/4 and a/5 delivered; b's 3 and 5 are pending and
        # 4 and 6 filtered out, a/6 pending: left alone.
        self.assertEqual(self.ok("replay", "--since", "450m", "--dry-run"),
                         "a\t3\tev3\tuser.logout\tretry\na\t4\tev4\torder.paid\tdelivered\n"
                         "a\t5\tev5\tuser.login\tdelivered\nwould replay 3 events\n")
        self.assertEqual(self.ok("replay", "--since", "450m"), "replayed 3 events\n")
        self.assertEqual(rows(self.db, "SELECT sink, seq, attempts FROM outbox_retry "
                                       "ORDER BY sink, seq"),
                         [("a", 2, 10), ("a", 3, 0), ("a", 4, 0), ("a", 5, 0), ("b", 2, 1)])
        self.assertEqual(self.ok("replay", "--failed", "--until", "1h"), "replayed 1 event\n")


class TestProgress(Base):
    N = 100001

    def big_backlog(self):
        self.sql("""
            INSERT INTO outbox(seq, id, name, payload, created_at)
              WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
              SELECT i, 'e' || i, 'x', '{}', 0 FROM n;
            INSERT INTO outbox_sink(name, type, cursor) VALUES ('a', 'redis', %d);
        """ % (self.N, self.N))

    def test_replay_and_purge_show_progress_only_on_a_terminal(self):
        self.big_backlog()
        self.sql("INSERT INTO outbox_retry SELECT 'a', seq, 'failed', 1, 0, 'e', 0 "
                 "FROM outbox")
        rc, out, shown = run_on_terminal([OUTBOXCTL, "-d", self.db, "replay", "--failed"])
        self.assertEqual((rc, out), (0, "replayed 100001 events\n"))
        self.assertIn("replay [", shown)
        self.assertIn("100% 100001/100001", shown)
        self.sql("DELETE FROM outbox_retry")
        rc, out, err = ctl("-d", self.db, "purge", "--older-than", "1d")
        self.assertEqual((rc, out, err), (0, "purged 100001 events\n", ""))

    def test_purge_progress(self):
        self.big_backlog()
        rc, out, shown = run_on_terminal([OUTBOXCTL, "-d", self.db, "purge", "-o", "1d"])
        self.assertEqual((rc, out), (0, "purged 100001 events\n"))
        self.assertIn("purge [", shown)
        self.assertTrue(shown.endswith("\r\x1b[K"), repr(shown[-80:]))


class TestEveryCommandRefusesBadDatabases(unittest.TestCase):
    COMMANDS = [["status"], ["ls"], ["show", "1"], ["tail"], ["sinks"], ["sinks", "rm", "a",
                "--yes"], ["purge", "-o", "1d"], ["replay", "--failed"]]

    def test_missing_and_foreign(self):
        with TempDir("ops") as tmp:
            missing = tmp.join("none.db")
            foreign = tmp.join("app.db")
            c = sqlite3.connect(foreign)
            c.execute("CREATE TABLE users(id INTEGER PRIMARY KEY)")
            c.commit()
            c.close()
            with open(foreign, "rb") as f:
                before = f.read()
            for cmd in self.COMMANDS:
                self.assertEqual(ctl("-d", missing, *cmd),
                                 (1, "", "outboxctl: cannot open database '%s': No such file "
                                  "or directory\n" % missing), cmd)
                self.assertEqual(ctl("-d", foreign, *cmd),
                                 (1, "", "outboxctl: '%s': no outbox schema in this database "
                                  "(create it with: outboxctl -d DB init)\n" % foreign), cmd)
            self.assertEqual(sorted(os.listdir(tmp.path)), ["app.db"])
            with open(foreign, "rb") as f:
                self.assertEqual(f.read(), before)


def long_options(text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))


def man_long_options(page):
    with open(os.path.join(SRCDIR, "man", page)) as f:
        return long_options(f.read().replace("\\-", "-"))


class TestHelpMatchesManPages(unittest.TestCase):
    def test_outboxctl(self):
        rc, out, _ = ctl("--help")
        commands = re.findall(r"^  ([a-z]+) +\S", out.split("Commands:\n")[1], re.MULTILINE)
        helped = long_options(out)
        with open(os.path.join(SRCDIR, "man", "outboxctl.1")) as f:
            man = f.read().replace("\\-", "-")
        for cmd in commands:
            rc, text, _ = ctl(cmd, "--help")
            self.assertEqual(rc, 0, cmd)
            helped |= long_options(text)
            self.assertRegex(man, r"\n\.(TP\n\.BR? |TP\n\\fB)%s\b" % cmd,
                             "command %s is not described in outboxctl(1)" % cmd)
        self.assertEqual(man_long_options("outboxctl.1"), helped)

    def test_outboxd(self):
        out = subprocess.run([OUTBOXD, "--help"], capture_output=True, text=True).stdout
        self.assertEqual(man_long_options("outboxd.8") - {"--"}, long_options(out))


if __name__ == "__main__":
    tap.main()
