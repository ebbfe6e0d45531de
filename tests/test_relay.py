#!/usr/bin/env python3
"""test_relay.py: outboxd end to end with the stdout sink, no broker needed.

Envelopes on stdout, the cursor and views, push-events filters and prefixes, config errors
and exit statuses, the one-relay lock and --standby, SIGTERM, wake-up on commit, ordering
keys and retention. Uses tests/harness.py (processes, databases) and tests/tap.py (TAP).
"""

import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import tap  # noqa: E402
from harness import OutboxDB, Relay, TempDir, wait_for  # noqa: E402

tap.require_programs(harness.OUTBOXD)

EXIT_USAGE = harness.EXIT_USAGE
EXIT_LOCKED = harness.EXIT_LOCKED
EXIT_NOT_OUTBOX = harness.EXIT_NOT_OUTBOX
EXIT_MISSING = harness.EXIT_NO_DATABASE

# One log line: "2026-11-22T13:50:11.136Z outboxd[42] error: ..."
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z outboxd\[\d+\] (\w+): (.*)")

FAST = {"relay.backoff-initial-ms": 20, "relay.backoff-max-ms": 200}


def log_lines(text):
    """[(level, message)] of a relay's stderr; fails on a line that is not a log line."""
    out = []
    for line in text.splitlines():
        m = LOG_LINE.fullmatch(line)
        if m is None:
            raise AssertionError("not a log line: %r" % line)
        out.append((m.group(1), m.group(2)))
    return out


class RelayCase(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir("relay")
        self.db = OutboxDB(self.tmp.join("app.db"))
        self.relays = []

    def tearDown(self):
        for r in self.relays:
            if r.running():
                r.stop()
        reports = [r.sanitizer_report() for r in self.relays]
        self.tmp.cleanup()
        for rep in reports:
            self.assertIsNone(rep)

    def relay(self, config=None, args=(), db=True, name=None):
        """A relay (not started) on self.db, with config (a dict) or raw config text."""
        argv = (["--db", self.db.path] if db else []) + list(args)
        if isinstance(config, str):
            path = self.tmp.join("raw-%d.json" % (len(self.relays) + 1))
            with open(path, "w") as f:
                f.write(config)
            r = Relay(self.tmp, None, ["-c", path] + argv, name=name)
            r.config_path = path
        else:
            r = Relay(self.tmp, config, argv, name=name)
        self.relays.append(r)
        return r

    def once(self, config=None, args=(), db=True):
        """--once; returns (status, stdout lines, stderr)."""
        r = self.relay(config, args, db)
        rc, err = r.once()
        return rc, r.output().splitlines(), err

    def start(self, config=None, args=(), name=None):
        r = self.relay(config, args, name=name).start()
        r.wait_log("sink ", timeout=10)
        return r

    def table_rows(self, table):
        return self.db.query("SELECT count(*) FROM %s" % table)[0][0]

    def status(self):
        c = self.db.connect()
        c.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in c.execute("SELECT * FROM outbox_status ORDER BY sink")]
        finally:
            c.close()


class TestEnvelopes(RelayCase):
    def test_exact_envelopes_in_seq_order(self):
        pretty = '{\n  "user" : {\n    "_id" : "42",\n    "tags" : [ 1, 2 ]\n  }\n}'
        rows = self.db.insert_many([
            ("user.login", pretty),
            ("user.follow", '{"a":"\\u00e9\\n"}', '{ "trace" : "t-1" , "n" : 2 }'),
            ("order.created", "[1, 2.5, true, null]"),
            ("plain", '"just text"'),
        ])
        ids = [i for _, i in rows]
        rc, lines, err = self.once()
        self.assertEqual(rc, 0, err)
        self.assertEqual(lines, [
            '{"id":"%s","name":"user.login","data":{"user":{"_id":"42","tags":[1,2]}}}'
            % ids[0],
            '{"id":"%s","name":"user.follow","data":{"a":"\\u00e9\\n"},'
            '"metadata":{"trace":"t-1","n":2}}' % ids[1],
            '{"id":"%s","name":"order.created","data":[1,2.5,true,null]}' % ids[2],
            '{"id":"%s","name":"plain","data":"just text"}' % ids[3],
        ])
        for line in lines:
            env = json.loads(line)
            self.assertEqual(list(env)[:3], ["id", "name", "data"])
            self.assertTrue(set(env) <= {"id", "name", "data", "metadata"})
        self.assertEqual(json.loads(lines[1])["metadata"], {"trace": "t-1", "n": 2})
        self.assertNotIn("metadata", json.loads(lines[0]))

    def test_once_twice_cursor_persisted(self):
        self.db.insert_many([("e.%d" % i, {"i": i}) for i in range(5)])
        rc, lines, err = self.once()
        self.assertEqual(rc, 0, err)
        self.assertEqual([json.loads(l)["data"]["i"] for l in lines], list(range(5)))
        self.assertEqual(self.db.sinks(), {"stdout": 5})
        st = self.status()
        self.assertEqual(len(st), 1)
        self.assertEqual((st[0]["sink"], st[0]["cursor"], st[0]["pending"], st[0]["retrying"],
                          st[0]["failed"], st[0]["oldest_age_s"]),
                         ("stdout", 5, 0, 0, 0, None))
        self.assertIsNotNone(st[0]["last_progress"])
        rc, lines, err = self.once()
        self.assertEqual(rc, 0, err)
        self.assertEqual(lines, [])
        # And the next event is the only one published.
        _, eid = self.db.insert("e.5", {"i": 5})
        rc, lines, err = self.once()
        self.assertEqual(rc, 0, err)
        self.assertEqual(lines, ['{"id":"%s","name":"e.5","data":{"i":5}}' % eid])
        self.assertEqual(self.db.cursor("stdout"), 6)

    def test_db_flag_overrides_file(self):
        self.db.insert("a", {})
        cfg = dict(FAST, **{"outbox.database": self.tmp.join("elsewhere.db")})
        rc, lines, err = self.once(cfg)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(lines), 1)
        self.assertFalse(os.path.exists(self.tmp.join("elsewhere.db")))

    def test_batches_cut_at_repeated_keys_lose_and_repeat_nothing(self):
        # A batch is cut into runs where a key repeats: every event must still go out
        # once, in seq order. The stdout sink never rejects, so events held behind a
        # retry (ordering under rejection) cannot show here: test_redis's TestOrderingKeys
        # covers that against a real broker, and the unit tests with a fake sink
        # (tests/check_relay.c) each rejection case.
        rows = []
        for i in range(60):
            key = None if i % 7 == 0 else "k%d" % (i % 4)
            rows.append(("ev.%d" % i, {"i": i, "key": key}, None, key))
        self.db.insert_many(rows[:30])
        self.db.insert_many(rows[30:])
        rc, lines, err = self.once(dict(FAST, **{"relay.batch-size": 5}))
        self.assertEqual(rc, 0, err)
        got = [json.loads(l)["data"]["i"] for l in lines]
        self.assertEqual(got, list(range(60)))
        self.assertEqual(self.db.cursor("stdout"), 60)
        self.assertEqual(self.table_rows("outbox_retry"), 0)


class TestFilters(RelayCase):
    CONFIG = {
        "system.queue-adapter": "stdout",
        "system.push-events": ["user.login", "myapp.order.*", "audit.?x"],
        "system.push-events.prefix": "myapp.",
    }

    def test_filter_and_prefix(self):
        self.db.insert_many([
            ("user.login", {"n": 1}),       # its name matches
            ("user.logout", {"n": 2}),      # no
            ("order.created", {"n": 3}),    # its prefixed name matches the glob
            ("order", {"n": 4}),            # "myapp.order" does not match "myapp.order.*"
            ("audit.1x", {"n": 5}),         # ? is one character
            ("audit.12x", {"n": 6}),        # no
            ("myapp.user.login", {"n": 7}), # published as myapp.myapp.user.login: no
            ("user.login.extra", {"n": 8}), # exact names are exact: no
        ])
        rc, lines, err = self.once(dict(FAST, **self.CONFIG))
        self.assertEqual(rc, 0, err)
        got = [(json.loads(l)["name"], json.loads(l)["data"]["n"]) for l in lines]
        self.assertEqual(got, [("myapp.user.login", 1), ("myapp.order.created", 3),
                               ("myapp.audit.1x", 5)])
        # Filtered-out events still move the cursor, up to the last one.
        self.assertEqual(self.db.cursor("stdout"), 8)
        self.assertEqual(self.db.query("SELECT filter, prefix, type FROM outbox_sink"),
                         [('["user.login","myapp.order.*","audit.?x"]', "myapp.", "stdout")])
        self.assertEqual(self.status()[0]["pending"], 0)
        # Only filtered-out events: nothing printed, the cursor still advances.
        self.db.insert_many([("user.logout", {}), ("nope", {})])
        rc, lines, err = self.once(dict(FAST, **self.CONFIG))
        self.assertEqual(rc, 0, err)
        self.assertEqual(lines, [])
        self.assertEqual(self.db.cursor("stdout"), 10)

    def test_sinks_entry_own_filter_and_prefix(self):
        self.db.insert_many([("audit.login", {"n": 1}), ("user.login", {"n": 2}),
                             ("audit.logout", {"n": 3})])
        cfg = dict(FAST, **{"system.push-events": ["user.*"],
                            "sinks": {"audit": {"type": "stdout", "events": ["audit.*"],
                                                "prefix": "p."}}})
        rc, lines, err = self.once(cfg)
        self.assertEqual(rc, 0, err)
        self.assertEqual([json.loads(l)["name"] for l in lines],
                         ["p.audit.login", "p.audit.logout"])
        # Only the configured sink exists: no default stdout sink beside it.
        self.assertEqual(self.db.sinks(), {"audit": 3})


class TestConfigErrors(RelayCase):
    def config_error(self, text, want, db=True):
        """The relay exits 78 with one error line, want (FILE for the config's path), and
        writes nothing to the database."""
        r = self.relay(text, db=db)
        rc, err = r.once()
        self.assertEqual(rc, harness.EXIT_CONFIG, err)
        self.assertEqual(log_lines(err), [("error", want.replace("FILE", r.config_path))])
        self.assertEqual(r.output(), "")
        self.assertEqual(self.table_rows("outbox_sink"), 0)
        self.assertFalse(os.path.exists(self.db.path + "-outboxd.lock"))

    def test_invalid_json_names_line_and_column(self):
        self.config_error('{\n  "system.queue-adapter": "stdout",\n  "relay.batch-size": ,\n}\n',
                          """FILE:3:23: invalid JSON at ',': '"relay.batch-size": -->,'""")

    def test_trailing_comma(self):
        self.config_error('{\n  "system.queue-adapter": "stdout",\n  "relay.batch-size": 5,\n}\n',
                          "FILE:3:24: invalid JSON: a trailing comma, which JSON does not allow: "
                          """'"relay.batch-size": 5-->,'""")

    def test_truncated_json(self):
        self.config_error('{"relay.batch-size": 5', "FILE:1:23: invalid JSON: unexpected "
                          "end of file")

    def test_not_an_object(self):
        self.config_error("[]", "FILE: the configuration must be a JSON object")

    def test_wrong_type_names_key(self):
        self.config_error('{"relay.batch-size": "many"}',
                          'FILE: relay.batch-size: expected an integer, got "many"')

    def test_out_of_range(self):
        self.config_error('{"relay.max-attempts": 0}',
                          "FILE: relay.max-attempts: 0 is out of range (1 to 1000000)")

    def test_bad_retention(self):
        self.config_error('{"outbox.retention": "7 days"}',
                          'FILE: outbox.retention: unknown unit in duration "7 days" (use ms, '
                          's, m, h, d or w)')

    def test_unknown_adapter(self):
        self.config_error('{"system.queue-adapter": "kafka"}',
                          'FILE: system.queue-adapter: expected "redis", "rabbitmq", '
                          '"nats", "mqtt", "http" or "stdout", got "kafka"')

    def test_sink_without_type(self):
        self.config_error('{"sinks": {"audit": {"events": ["a.*"]}}}',
                          'FILE: sinks.audit: missing "type" (stdout, redis, rabbitmq, nats, mqtt or http)')

    def test_duplicate_sink(self):
        self.config_error('{"system.queue-adapter": "stdout", "sinks": {"stdout": '
                          '{"type": "stdout"}}}',
                          'FILE: sinks.stdout: a sink named "stdout" is already configured '
                          '(stdout)')

    def test_missing_database_key(self):
        self.config_error('{"system.queue-adapter": "stdout"}',
                          'FILE: no database: set "outbox.database" or use --db PATH', db=False)

    def test_privilege_push_events_false(self):
        self.config_error('{"privilege.can-use-push-events": false}',
                          "FILE: privilege.can-use-push-events is false: push events are "
                          "disabled by this configuration, so there is nothing to relay")

    def test_unreadable_config(self):
        missing = self.tmp.join("nope.json")
        r = self.relay(None, ["-c", missing])
        rc, err = r.once()
        self.assertEqual(rc, harness.EXIT_CONFIG, err)
        self.assertEqual(log_lines(err), [("error", "%s: cannot open: No such file or "
                                           "directory" % missing)])
        self.assertEqual(self.table_rows("outbox_sink"), 0)

    def test_unknown_keys_warn(self):
        self.db.insert("a", {})
        cfg = dict(FAST, **{"colour": "red", "relay.batchsize": 9,
                            "sinks": {"out": {"type": "stdout", "channel": "x"}}})
        rc, lines, err = self.once(cfg)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(lines), 1)
        warnings = [m for lvl, m in log_lines(err) if lvl == "warn"]
        self.assertEqual(warnings, [
            "ignoring unknown configuration keys: colour, relay.batchsize",
            "ignoring unknown configuration keys: sinks.out.channel",
        ])


class TestDatabases(RelayCase):
    def test_start_waits_while_the_database_is_locked(self):
        # Registering the sink is a write: a lock held past the busy timeout (5 s) at
        # start-up is waited out, not an exit.
        self.db.insert("a.b", {"x": 1})
        holder = sqlite3.connect(self.db.path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        r = self.relay(FAST).start()
        try:
            r.wait_log("sink stdout: cannot register the sink: database is locked; trying "
                       "again until it passes", timeout=30)
            self.assertTrue(r.running())
        finally:
            holder.execute("COMMIT")
            holder.close()
        r.wait_log("sink stdout: registered", timeout=30)
        wait_for(lambda: len(r.output().splitlines()) == 1, 10, what="the event")
        self.assertEqual(r.stop(), 0)
        levels = [level for level, _ in log_lines(r.log())]
        self.assertEqual(levels.count("warn"), 1, r.log())
        self.assertNotIn("error", levels)

    def test_once_gives_up_when_recording_keeps_failing(self):
        # A database that refuses every bookkeeping write (here a trigger; a corrupt or
        # read-only file alike): --once must not publish the same batch forever.
        self.db.insert("a.b", {"x": 1})
        c = self.db.connect()
        c.execute("CREATE TRIGGER no_progress BEFORE UPDATE OF cursor ON outbox_sink "
                  "BEGIN SELECT RAISE(ABORT, 'no progress today'); END")
        c.commit()
        c.close()
        rc, out, err = self.once(FAST)
        self.assertEqual(rc, 1, err)
        self.assertEqual(len(out), 5)
        lines = log_lines(err)
        self.assertEqual(lines.count(("error", "sink stdout: cannot move the cursor: no "
                                      "progress today")), 5, err)
        self.assertEqual(lines[-1], ("error", "--once: giving up after 5 passes in a row "
                                     "that failed"))

    def test_once_does_not_wait_for_a_locked_database(self):
        holder = sqlite3.connect(self.db.path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            rc, _, err = self.once(FAST)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        self.assertEqual(rc, 1, err)
        self.assertIn(("error", "sink stdout: cannot register the sink: database is locked"),
                      log_lines(err))

    def test_missing_database(self):
        for path in (self.tmp.join("missing.db"), self.tmp.join("no", "dir", "x.db")):
            before = sorted(os.listdir(self.tmp.path))
            r = self.relay(None, ["--db", path], db=False)
            rc, err = r.once()
            self.assertEqual(rc, EXIT_MISSING, err)
            self.assertEqual(log_lines(err), [
                ("error", "database '%s' does not exist (create it with: outboxctl -d %s "
                 "init)" % (path, path))])
            # Nothing created: no database, no lock file (the relay's own files aside).
            after = [f for f in sorted(os.listdir(self.tmp.path)) if not f.startswith("relay-")]
            self.assertEqual(after, [f for f in before if not f.startswith("relay-")])
            self.assertFalse(os.path.exists(self.tmp.join("no")))

    def refused_untouched(self, path, want=None):
        """outboxd --db path exits 65 with one error line (want, if given) and leaves the
        file byte for byte as it was, with nothing next to it (no -wal, -shm, -journal or
        lock file). Returns the error message."""
        with open(path, "rb") as f:
            before = f.read()
        files = sorted(f for f in os.listdir(self.tmp.path) if not f.startswith("relay-"))
        r = self.relay(None, ["--db", path], db=False)
        rc, err = r.once()
        self.assertEqual(rc, EXIT_NOT_OUTBOX, err)
        lines = log_lines(err)
        self.assertEqual(len(lines), 1, err)
        self.assertEqual(lines[0][0], "error")
        if want is not None:
            self.assertEqual(lines[0][1], want)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), before)
        self.assertEqual(sorted(f for f in os.listdir(self.tmp.path)
                                if not f.startswith("relay-")), files)
        return lines[0][1]

    def test_not_an_outbox(self):
        path = self.tmp.join("foreign.db")
        c = sqlite3.connect(path)
        c.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, what TEXT)")
        c.execute("INSERT INTO outbox(what) VALUES ('mine')")
        c.commit()
        c.close()
        msg = self.refused_untouched(path)
        self.assertIn("not an outbox", msg)
        self.assertIn(path, msg)

    def test_plain_sqlite_refused_untouched(self):
        # Another application's database, given by mistake: not given the outbox tables.
        path = self.tmp.join("plain.db")
        c = sqlite3.connect(path)
        c.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        c.execute("INSERT INTO users(name) VALUES ('ann')")
        c.commit()
        c.close()
        self.refused_untouched(path, "'%s': no outbox schema in this database (create it "
                               "with: outboxctl -d DB init)" % path)

    def test_not_sqlite(self):
        path = self.tmp.join("text.db")
        with open(path, "w") as f:
            f.write("hello, not a database\n")
        self.refused_untouched(path, "'%s' is not an SQLite database" % path)


class TestCommandLine(RelayCase):
    def run_args(self, *args):
        r = self.relay(None, args, db=False)
        r.start()
        rc = r.wait(30)
        return rc, r.output(), r.log()

    def test_usage_errors(self):
        for args, why in ((["--bogus"], "unknown option '--bogus'"),
                          (["-x"], "unknown option '-x'"),
                          (["--db"], "option '--db' needs an argument"),
                          (["-c"], "option '-c' needs an argument"),
                          (["--db", self.db.path, "extra"], "unexpected argument 'extra'")):
            rc, out, err = self.run_args(*args)
            self.assertEqual(rc, EXIT_USAGE, (args, err))
            self.assertEqual(out, "")
            self.assertEqual(err.splitlines()[0], "outboxd: " + why)
            self.assertTrue(err.splitlines()[1].startswith("usage: outboxd "), err)
        self.assertEqual(self.table_rows("outbox_sink"), 0)

    def test_help_and_version(self):
        rc, out, err = self.run_args("--help")
        self.assertEqual((rc, err), (0, ""))
        self.assertTrue(out.startswith("usage: outboxd "), out)
        self.assertIn("--standby", out)
        rc, out, err = self.run_args("-h")
        self.assertEqual((rc, err), (0, ""))
        self.assertTrue(out.startswith("usage: outboxd "), out)
        rc, out, err = self.run_args("--version")
        self.assertEqual((rc, err), (0, ""))
        self.assertRegex(out, r"\Aoutboxd \S+ \(SQLite \S+, hiredis \S+, rabbitmq-c \S+, "
                         r"nats.c \S+, libmosquitto \S+\)\n\Z")


class TestRunning(RelayCase):
    def test_second_relay_refused(self):
        first = self.start(FAST)
        second = self.relay(FAST)
        rc, err = second.once()
        self.assertEqual(rc, EXIT_LOCKED, err)
        lock = self.db.path + "-outboxd.lock"
        self.assertEqual(log_lines(err), [
            ("error", "another relay is active on %s (it holds %s); use --standby to wait "
             "and take over when it stops" % (self.db.path, lock))])
        self.assertEqual(second.output(), "")
        self.assertTrue(first.running())
        self.assertEqual(first.stop(), 0)

    def test_standby_takes_over(self):
        first = self.start(FAST, name="first")
        standby = self.relay(FAST, ["--standby"], name="standby").start()
        standby.wait_log("standing by")
        _, id1 = self.db.insert("one", {"n": 1})
        wait_for(lambda: id1 in first.output(), 5, what="the first relay to publish")
        self.assertEqual(standby.output(), "")
        first.signal(signal.SIGTERM)
        self.assertEqual(first.wait(10), 0)
        standby.wait_log("taking over")
        _, id2 = self.db.insert("two", {"n": 2})
        wait_for(lambda: id2 in standby.output(), 5, what="the standby to publish")
        # The standby starts at the cursor the first one left: event one is not repeated.
        self.assertEqual(standby.output().splitlines(),
                         ['{"id":"%s","name":"two","data":{"n":2}}' % id2])
        self.assertEqual(first.output().splitlines(),
                         ['{"id":"%s","name":"one","data":{"n":1}}' % id1])
        self.assertEqual(standby.stop(), 0)
        self.assertEqual(self.db.cursor("stdout"), 2)

    def test_standby_stops_while_waiting(self):
        first = self.start(FAST, name="first")
        standby = self.relay(FAST, ["--standby"], name="standby").start()
        standby.wait_log("standing by")
        standby.signal(signal.SIGTERM)
        self.assertEqual(standby.wait(10), 0)
        self.assertTrue(first.running())
        self.assertEqual(first.stop(), 0)

    def test_sigterm_while_idle(self):
        r = self.start(FAST)
        time.sleep(0.3)
        r.signal(signal.SIGTERM)
        self.assertEqual(r.wait(10), 0)
        self.assertIn("stopping", r.log())
        self.assertEqual([lvl for lvl, _ in log_lines(r.log())], ["info"] * len(
            log_lines(r.log())))

    def test_wakeup_on_commit(self):
        # A long poll interval: only the wake-up on commit can be quick. Idle, the relay
        # looks again after 0.1 ms, then twice as long each time (the adaptive poll): its
        # sleep that spans 2 s after the last event runs from ~1.64 s to ~3.28 s, so polling
        # alone would see a commit made at 2 s some 1.3 s later. inotify must see it at once.
        r = self.start(dict(FAST, **{"relay.poll-interval-ms": 10000}))
        latencies = []
        for i in range(5):
            time.sleep(2.0)
            _, eid = self.db.insert("tick", {"i": i})
            t0 = time.monotonic()   # COMMIT has returned
            wait_for(lambda: eid in r.output(), 5, interval=0.001,
                     what="event %d on stdout" % i)
            latencies.append((time.monotonic() - t0) * 1000)
        print("# COMMIT to line on stdout, ms (polled every 1 ms): %s; median %.1f, max %.1f" % (
            ", ".join("%.1f" % x for x in latencies), statistics.median(latencies),
            max(latencies)))
        for x in latencies:
            self.assertLess(x, 50, "woken by the poll, not by the commit: %s" % latencies)
        self.assertEqual(r.stop(), 0)
        self.assertEqual(len(r.output().splitlines()), 5)

    def test_delivery_goes_on_while_a_producer_holds_the_write_lock(self):
        # A batch whose bookkeeping is only the cursor's move does not wait for the write
        # lock: the relay, stopped while 200 events were committed and a producer took
        # the lock, publishes all 10 batches with the lock still held (before, the first
        # batch's bookkeeping waited for it, 5 s at most, then failed), and writes its
        # cursor once the lock is free.
        r = self.start(dict(FAST, **{"relay.batch-size": 20}))
        os.kill(r.pid, signal.SIGSTOP)
        holder = self.db.connect()
        try:
            self.db.insert_many([("h.%d" % i, {"i": i}) for i in range(200)])
            holder.execute("BEGIN IMMEDIATE")
            os.kill(r.pid, signal.SIGCONT)
            wait_for(lambda: len(r.output().splitlines()) == 200, 4,
                     what="200 events while the lock is held")
            self.assertEqual(self.db.cursor("stdout"), 0)
        finally:
            os.kill(r.pid, signal.SIGCONT)
            holder.rollback()
            holder.close()
        wait_for(lambda: self.db.cursor("stdout") == 200, 10, what="the cursor at 200")
        names = [json.loads(l)["name"] for l in r.output().splitlines()]
        self.assertEqual(names, ["h.%d" % i for i in range(200)])
        self.assertEqual(r.stop(), 0)

    def test_replay_while_running(self):
        # outboxctl replay changes the database under a running relay, which picks it up.
        r = self.start(FAST)
        self.db.insert_many([("r.%d" % i, {"i": i}) for i in range(1, 4)])
        wait_for(lambda: len(r.output().splitlines()) == 3, 10, what="3 events")
        p = subprocess.run([harness.OUTBOXCTL, "-d", self.db.path, "replay", "--from-seq",
                            "2"], capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stdout), (0, "replayed 0 events; rewound 1 sink "
                                                       "to seq 2\n"), p.stderr)
        wait_for(lambda: len(r.output().splitlines()) == 5, 10, what="2 events again")
        names = [json.loads(l)["name"] for l in r.output().splitlines()]
        self.assertEqual(names, ["r.1", "r.2", "r.3", "r.2", "r.3"])
        self.assertEqual(r.stop(), 0)

    def test_retention(self):
        self.db.insert_many([("r.%d" % i, {"i": i}) for i in range(1, 6)])
        cfg = dict(FAST, **{"outbox.retention": "1h"})
        rc, lines, err = self.once(cfg)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(lines), 5)
        # Events 1-4 are two hours old, 5 is new (an hour is far from any timing noise). Event 3 failed on the stdout sink (a row in
        # outbox_retry), and a second sink, "laggard", has handed off events up to 3 only:
        # retention may delete 1 and 2, never 3 (failed), 4 (laggard needs it) or 5 (new).
        hours_ago = int(time.time() * 1000) - 2 * 3600 * 1000
        c = self.db.connect()
        try:
            c.execute("BEGIN IMMEDIATE")
            c.execute("UPDATE outbox SET created_at = ? WHERE seq <= 4", (hours_ago,))
            c.execute("INSERT INTO outbox_retry(sink, seq, state, attempts, next_attempt_at, "
                      "last_error, updated_at) VALUES ('stdout', 3, 'failed', 10, 0, "
                      "'refused', ?)", (hours_ago,))
            c.execute("INSERT INTO outbox_sink(name, type, cursor) VALUES ('laggard', "
                      "'stdout', 3)")
            c.execute("COMMIT")
        finally:
            c.close()
        rc, lines, err = self.once(cfg)
        self.assertEqual(rc, 0, err)
        self.assertEqual(lines, [])
        self.assertIn("retention: deleted 2 delivered events", err)
        self.assertEqual([e["seq"] for e in self.db.events()], [3, 4, 5])
        # Once the laggard has them, 4 goes too; 3 stays while it is failed.
        self.db.query("UPDATE outbox_sink SET cursor = 5 WHERE name = 'laggard'")
        rc, lines, err = self.once(cfg)
        self.assertEqual(rc, 0, err)
        self.assertEqual([e["seq"] for e in self.db.events()], [3, 5])
        # Without retention nothing is deleted.
        self.db.query("UPDATE outbox SET created_at = ? WHERE seq = 5", (hours_ago,))
        rc, lines, err = self.once(FAST)
        self.assertEqual(rc, 0, err)
        self.assertEqual([e["seq"] for e in self.db.events()], [3, 5])


# A producer for TestWalUnderLoad: one event per transaction (BEGIN IMMEDIATE, WAL,
# synchronous=NORMAL, SQLite's own busy timeout and autocheckpoint), paced to RATE a second
# for SECONDS; prints how many it committed.
PRODUCER = r"""
import sqlite3, sys, time
path, rate, seconds, tag = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
c = sqlite3.connect(path, timeout=30, isolation_level=None)
c.execute("PRAGMA synchronous=NORMAL")
start = time.monotonic()
n = 0
while time.monotonic() - start < seconds:
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO outbox(name, payload) VALUES ('load', ?)",
              ('{"p":"%s","i":%d,"pad":"%s"}' % (tag, n, "x" * 250),))
    c.execute("COMMIT")
    n += 1
    ahead = start + n / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
print(n)
"""


class TestWalUnderLoad(RelayCase):
    """The relay's checkpoints (relay/checkpoint.c) keep the WAL bounded while producers
    commit without a pause and the relay reads without one: with SQLite's checkpoints
    alone the file grew to 12-65 MB in 10-30 s, and to hundreds of MB once the relay
    waited for locks with a fine busy handler. No figure here is a time."""

    def wal_size(self):
        try:
            return os.path.getsize(self.db.path + "-wal")
        except FileNotFoundError:
            return 0

    def test_wal_stays_bounded_under_producer_load(self):
        r = self.start(FAST)
        seconds, rate = 6.0, 2500
        producers = [subprocess.Popen([sys.executable, "-c", PRODUCER, self.db.path,
                                       str(rate), str(seconds), str(k)],
                                      stdout=subprocess.PIPE, text=True) for k in range(2)]
        peak = 0
        while any(p.poll() is None for p in producers):
            peak = max(peak, self.wal_size())
            time.sleep(0.005)
        committed = sum(int(p.communicate()[0]) for p in producers)
        wait_for(lambda: len(r.output().splitlines()) >= committed, 60,
                 what="%d events on stdout" % committed)
        print("# %d events committed in %.0f s; WAL file peak %.1f MB" % (
            committed, seconds, peak / 1e6))
        # A reset is due past 500 frames (2 MB at 4 KB pages), and the file is emptied
        # once it has grown past 2000 pages (8 MB). The relay before the checkpoint thread:
        # 12.6 and 14.5 MB in this test; with it: 3.4-5.6 MB (release and ASan builds),
        # and with three CPU hogs on two cores 3.7-7.2 MB (5.5-11.8 MB before the thread
        # polled the WAL's length between the relay's reports).
        self.assertLess(peak, 9e6, "the WAL grew to %.1f MB" % (peak / 1e6))
        self.assertEqual(r.stop(), 0)
        self.assertEqual(len(r.output().splitlines()), committed)
        self.assertNotIn("checkpoint", r.log())


if __name__ == "__main__":
    tap.main()
