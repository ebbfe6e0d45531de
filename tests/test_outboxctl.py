#!/usr/bin/env python3
"""test_outboxctl.py: outboxctl end to end (init, enqueue, status, help, --version), with
exact exit statuses and messages, and the rule that bad input writes nothing and a
missing database is never created except by init. TAP through tap.py.
"""

import json
import os
import re
import sqlite3
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tap  # noqa: E402
from harness import OUTBOXCTL, SCHEMA, TempDir  # noqa: E402

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ENQUEUE_USAGE = ("usage: outboxctl [-d DB] enqueue NAME JSON [--key K] [--header K=V]... "
                 "[--id ID] [--uuid7]")
GLOBAL_USAGE = ("usage: outboxctl [-d DB] COMMAND [ARGS]   "
                "(outboxctl --help lists the commands)")
STATUS_USAGE = "usage: outboxctl [-d DB] status [--json] [--max-age DURATION]"
INIT_USAGE = "usage: outboxctl [-d DB] init"

if not os.access(OUTBOXCTL, os.X_OK):
    tap.skip_all("%s is not built" % OUTBOXCTL)


def ctl(*args, env=None):
    """Run outboxctl; (exit status, stdout, stderr)."""
    e = dict(os.environ)
    e.pop("OUTBOX_DATABASE", None)
    if env:
        e.update(env)
    r = subprocess.run([OUTBOXCTL] + [str(a) for a in args], capture_output=True, text=True,
                       env=e, timeout=60)
    return r.returncode, r.stdout, r.stderr


def rows(db, sql="SELECT id, name, payload, headers, key FROM outbox ORDER BY seq"):
    c = sqlite3.connect(db)
    try:
        return c.execute(sql).fetchall()
    finally:
        c.close()


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir("ctl")
        self.db = self.tmp.join("app.db")

    def tearDown(self):
        self.tmp.cleanup()

    def ok(self, *args, env=None):
        rc, out, err = ctl(*args, env=env)
        self.assertEqual((rc, err), (0, ""), "outboxctl %s" % " ".join(map(str, args)))
        return out

    def fails(self, status, message, usage, *args, env=None):
        """Exit status, one error line, and (for usage errors) one usage line; no stdout."""
        rc, out, err = ctl(*args, env=env)
        want = "outboxctl: %s\n" % message + ("%s\n" % usage if usage else "")
        self.assertEqual((rc, out, err), (status, "", want))

    def init(self):
        self.assertEqual(self.ok("-d", self.db, "init"),
                         "initialised %s (schema version 2)\n" % self.db)


class TestGlobal(Base):
    def test_help(self):
        for args in (["--help"], ["-h"], ["help"], ["-d", "x.db", "--help"]):
            out = self.ok(*args)
            self.assertTrue(out.startswith("usage: outboxctl [-d DB] COMMAND [ARGS]\n"), out)
            commands = re.findall(r"^  ([a-z]+) +\S", out.split("Commands:\n")[1],
                                  re.MULTILINE)
            self.assertEqual(commands, ["init", "enqueue", "status", "ls", "show", "replay",
                                        "purge", "tail", "sinks", "help"])
            for text in ("-d, --database DB", "--version", "OUTBOX_DATABASE",
                         "TIME is ISO 8601", "3 unhealthy"):
                self.assertIn(text, out)
        self.assertEqual(os.listdir(self.tmp.path), [])

    def test_command_help(self):
        out = self.ok("enqueue", "--help")
        self.assertTrue(out.startswith(ENQUEUE_USAGE + "\n"), out)
        for opt in ("--key K", "--header K=V", "--id ID", "--uuid7"):
            self.assertIn(opt, out)
        self.assertEqual(self.ok("help", "enqueue"), out)
        self.assertTrue(self.ok("status", "-h").startswith(STATUS_USAGE + "\n"))
        self.assertTrue(self.ok("help", "init").startswith(INIT_USAGE + "\n"))
        self.fails(2, "unknown command 'nope'", "usage: outboxctl [-d DB] help [COMMAND]",
                   "help", "nope")

    def test_version(self):
        self.assertEqual(self.ok("--version"), "outboxctl 0.1.0\n")

    def test_usage_errors(self):
        self.fails(2, "no command given", GLOBAL_USAGE)
        self.fails(2, "no command given", GLOBAL_USAGE, "-d", self.db)
        self.fails(2, "unknown command 'frobnicate'", GLOBAL_USAGE, "-d", self.db, "frobnicate")
        self.fails(2, "unknown option '-x'", GLOBAL_USAGE, "-x", "status")
        self.fails(2, "unknown option '--bogus'", GLOBAL_USAGE, "--bogus=1", "status")
        self.fails(2, "option '-d' needs an argument", GLOBAL_USAGE, "-d")
        self.fails(2, "option '--database' needs an argument", GLOBAL_USAGE, "--database")
        self.fails(2, "no database: use -d DB or set OUTBOX_DATABASE", STATUS_USAGE, "status")
        self.fails(2, "no database: use -d DB or set OUTBOX_DATABASE", INIT_USAGE, "init",
                   env={"OUTBOX_DATABASE": ""})
        self.fails(2, "unexpected argument 'extra'", INIT_USAGE, "-d", self.db, "init", "extra")
        self.fails(2, "unknown option '--json'", INIT_USAGE, "-d", self.db, "init", "--json")
        self.fails(2, "unexpected argument 'extra'", STATUS_USAGE, "-d", self.db, "status",
                   "extra")
        self.fails(2, "unknown option '--jsn'", STATUS_USAGE, "-d", self.db, "status", "--jsn")
        self.assertEqual(os.listdir(self.tmp.path), [])


class TestInit(Base):
    def test_init_creates_and_is_idempotent(self):
        self.init()
        self.assertEqual(rows(self.db, "PRAGMA user_version"), [(2,)])
        self.assertEqual(rows(self.db, "PRAGMA journal_mode"), [("wal",)])
        self.ok("-d", self.db, "enqueue", "a", "{}")
        self.init()
        self.assertEqual(len(rows(self.db)), 1)

    def test_init_from_environment(self):
        out = self.ok("init", env={"OUTBOX_DATABASE": self.db})
        self.assertEqual(out, "initialised %s (schema version 2)\n" % self.db)
        # -d wins over the environment.
        other = self.tmp.join("other.db")
        self.ok("--database", other, "init", env={"OUTBOX_DATABASE": self.db})
        self.assertTrue(os.path.exists(other))

    def test_init_migrates_version_1(self):
        """A version 1 database (before the outbox_delivery view) is refused by the other
        commands, writing nothing, and migrated by init with its events and state kept."""
        with open(SCHEMA) as f:
            version1 = f.read().split("-- @migration 2")[0]
        c = sqlite3.connect(self.db)
        c.executescript(version1)
        c.executescript("""
            INSERT INTO outbox(id, name, payload) VALUES ('e1', 'user.login', '{}');
            INSERT INTO outbox_sink(name, type, cursor) VALUES ('a', 'redis', 1);
        """)
        c.close()
        with open(self.db, "rb") as f:
            before = f.read()
        self.fails(1, "'%s': outbox schema version 1 is older than this outboxd's (2): "
                   "migrate it with: outboxctl -d DB init" % self.db, None,
                   "-d", self.db, "ls")
        with open(self.db, "rb") as f:
            self.assertEqual(f.read(), before)
        self.init()
        self.assertEqual(rows(self.db, "PRAGMA user_version"), [(2,)])
        self.assertEqual(rows(self.db, "SELECT sink, seq, id, state FROM outbox_delivery"),
                         [("a", 1, "e1", "delivered")])
        out = json.loads(self.ok("-d", self.db, "ls", "--json"))
        self.assertEqual((out["id"], out["sink"], out["state"]), ("e1", "a", "delivered"))

    def test_init_refuses(self):
        junk = self.tmp.join("junk.db")
        with open(junk, "w") as f:
            f.write("not a database\n" * 100)
        self.fails(1, "'%s' is not an SQLite database" % junk, None, "-d", junk, "init")
        with open(junk) as f:
            self.assertEqual(f.read(), "not a database\n" * 100)

        c = sqlite3.connect(self.db)
        c.execute("CREATE TABLE outbox(msg TEXT)")
        c.close()
        self.fails(1, "'%s': the database has a table named 'outbox' that is not an outbox "
                   "schema (user_version 0): refusing to alter it" % self.db, None,
                   "-d", self.db, "init")
        self.assertEqual(rows(self.db, "SELECT name FROM pragma_table_info('outbox')"),
                         [("msg",)])

        c = sqlite3.connect(self.db)
        c.execute("DROP TABLE outbox")
        c.close()
        self.init()
        c = sqlite3.connect(self.db)
        c.execute("PRAGMA user_version = 9")
        c.close()
        self.fails(1, "'%s': database schema version 9 is newer than this outboxd understands "
                   "(2): upgrade outboxd" % self.db, None, "-d", self.db, "status")

        missing = self.tmp.join("no", "such", "dir.db")
        rc, out, err = ctl("-d", missing, "init")
        self.assertEqual((rc, out), (1, ""))
        self.assertTrue(err.startswith("outboxctl: cannot open database '%s': " % missing), err)
        self.assertEqual(err.count("\n"), 1)


class TestEnqueue(Base):
    def setUp(self):
        super().setUp()
        self.init()

    def test_enqueue_plain(self):
        out = self.ok("-d", self.db, "enqueue", "user.login", '{"user":{"_id":"42"}}')
        eid = out.strip()
        self.assertRegex(eid, UUID4)
        self.assertEqual(out, eid + "\n")
        self.assertEqual(rows(self.db), [(eid, "user.login", '{"user":{"_id":"42"}}', None,
                                          None)])

    def test_enqueue_options(self):
        out = self.ok("-d", self.db, "enqueue", "order.paid", "[1, 2]", "--key", "order-7",
                      "--header", "trace=abc", "-H", "empty=", "--header", "eq=a=b",
                      "-H", "sp=with space")
        eid = out.strip()
        self.assertRegex(eid, UUID4)
        (row,) = rows(self.db)
        self.assertEqual(row[:3], (eid, "order.paid", "[1, 2]"))
        self.assertEqual(json.loads(row[3]), {"trace": "abc", "empty": "", "eq": "a=b",
                                              "sp": "with space"})
        self.assertEqual(row[4], "order-7")

        # Options before the arguments; own id; short forms.
        self.assertEqual(self.ok("-d", self.db, "enqueue", "-i", "evt-1", "-k", "k", "a",
                                 "{}"), "evt-1\n")
        self.assertEqual(self.ok("-d", self.db, "enqueue", "--id=evt-2", "a", "{}"),
                         "evt-2\n")
        # A payload that looks like an option, after --.
        self.assertRegex(self.ok("-d", self.db, "enqueue", "--", "neg", "-1").strip(), UUID4)
        self.assertEqual(rows(self.db, "SELECT payload FROM outbox WHERE name = 'neg'"),
                         [("-1",)])

    def test_enqueue_uuid7(self):
        ids = [self.ok("-d", self.db, "enqueue", "--uuid7", "a", "{}").strip()
               for _ in range(5)]
        for eid in ids:
            self.assertRegex(eid, UUID7)
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(set(ids)), 5)
        self.assertRegex(self.ok("-d", self.db, "enqueue", "-7", "a", "{}").strip(), UUID7)

    def test_enqueue_from_environment(self):
        eid = self.ok("enqueue", "a", "{}", env={"OUTBOX_DATABASE": self.db}).strip()
        self.assertEqual(rows(self.db, "SELECT id FROM outbox"), [(eid,)])

    def test_enqueue_library_errors(self):
        self.ok("-d", self.db, "enqueue", "--id", "dup", "a", "{}")
        cases = [
            (["user login", "{}"],
             "name contains a space or control character (0x20) at byte 4"),
            (["", "{}"], "name is empty"),
            (["n" * 256, "{}"], "name is 256 bytes long; the limit is 255"),
            (["tab\tname", "{}"],
             "name contains a space or control character (0x09) at byte 3"),
            (["a", '{"a":'], "payload is not valid JSON (error near byte 5)"),
            (["a", "[1,]"], "payload is not valid JSON (error near byte 3)"),
            (["a", ""], "payload is not valid JSON (error near byte 0)"),
            (["a", "{}", "--key", ""], "key is empty (use NULL for no key)"),
            (["a", "{}", "--id", "has space"],
             "id contains a space or control character (0x20) at byte 3"),
            (["a", "{}", "--id", "dup"], "an event with id 'dup' is already in the outbox"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                self.fails(1, message, None, "-d", self.db, "enqueue", *args)
        self.assertEqual(len(rows(self.db)), 1)

    def test_enqueue_usage_errors(self):
        d = ["-d", self.db, "enqueue"]
        need = "enqueue needs an event NAME and a JSON payload"
        self.fails(2, need, ENQUEUE_USAGE, *d)
        self.fails(2, need, ENQUEUE_USAGE, *d, "a")
        self.fails(2, "unexpected argument 'c'", ENQUEUE_USAGE, *d, "a", "{}", "c")
        self.fails(2, "option '--key' needs an argument", ENQUEUE_USAGE, *d, "a", "{}", "--key")
        self.fails(2, "option '-H' needs an argument", ENQUEUE_USAGE, *d, "a", "{}", "-H")
        self.fails(2, "unknown option '--nope'", ENQUEUE_USAGE, *d, "a", "{}", "--nope")
        self.fails(2, "unknown option '-q'", ENQUEUE_USAGE, *d, "a", "{}", "-q")
        self.fails(2, "--header 'foo' is not KEY=VALUE", ENQUEUE_USAGE, *d, "a", "{}",
                   "--header", "foo")
        self.fails(2, "--header '=v' is not KEY=VALUE", ENQUEUE_USAGE, *d, "a", "{}",
                   "--header", "=v")
        self.fails(2, "--header 'k' given twice", ENQUEUE_USAGE, *d, "a", "{}",
                   "-H", "k=1", "-H", "k=2")
        self.fails(2, "--id and --uuid7 cannot be used together", ENQUEUE_USAGE, *d, "a", "{}",
                   "--id", "x", "--uuid7")
        self.assertEqual(rows(self.db), [])

    def test_enqueue_missing_database(self):
        missing = self.tmp.join("missing.db")
        before = sorted(os.listdir(self.tmp.path))
        self.fails(1, "cannot open database '%s': No such file or directory" % missing, None,
                   "-d", missing, "enqueue", "a", "{}")
        self.assertFalse(os.path.exists(missing))
        self.assertEqual(sorted(os.listdir(self.tmp.path)), before)


class TestStatus(Base):
    def test_status_missing_database(self):
        missing = self.tmp.join("x.db")
        for args in (["status"], ["status", "--json"]):
            self.fails(1, "cannot open database '%s': No such file or directory" % missing,
                       None, "-d", missing, *args)
        # A relative path is named as typed.
        r = subprocess.run([OUTBOXCTL, "-d", "x.db", "status"], cwd=self.tmp.path,
                           capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (1, "", "outboxctl: cannot open database 'x.db': No such file or "
                          "directory\n"))
        self.assertEqual(os.listdir(self.tmp.path), [])

    def test_status_on_an_application_database_writes_nothing(self):
        c = sqlite3.connect(self.db)
        c.execute("CREATE TABLE users(id INTEGER PRIMARY KEY)")
        c.commit()
        c.close()
        with open(self.db, "rb") as f:
            before = f.read()
        self.fails(1, "'%s': no outbox schema in this database (create it with: outboxctl "
                   "-d DB init)" % self.db, None, "-d", self.db, "status")
        with open(self.db, "rb") as f:
            self.assertEqual(f.read(), before)

    def test_status_no_sinks(self):
        self.init()
        self.assertEqual(self.ok("-d", self.db, "status"),
                         "%s: schema version 2, no events\n"
                         "no sinks yet: outboxd registers its sinks when it starts\n" % self.db)
        self.assertEqual(self.ok("-d", self.db, "status", "--json"), "")

    def _sinks(self):
        self.init()
        for i in range(3):
            self.ok("-d", self.db, "enqueue", "user.login" if i < 2 else "order.paid", "{}")
        c = sqlite3.connect(self.db)
        c.executescript("""
            INSERT INTO outbox_sink(name, type) VALUES ('redis', 'redis');
            INSERT INTO outbox_sink(name, type, cursor, filter, progress_at)
              VALUES ('orders-rabbit', 'rabbitmq', 3, '["order.*"]', 1700000000000);
            UPDATE outbox SET created_at = created_at - 3725000 WHERE seq = 1;
            INSERT INTO outbox_retry(sink, seq, state, attempts, next_attempt_at, updated_at)
              VALUES ('orders-rabbit', 3, 'failed', 5, 0, 0);
        """)
        c.close()

    def test_status_table(self):
        self._sinks()
        rc, out, err = ctl("-d", self.db, "status")
        self.assertEqual((rc, err), (3, ""))
        out = out.splitlines()
        self.assertEqual(out[0], "%s: schema version 2, 3 events (seq 1..3)" % self.db)
        self.assertRegex(out[4], r"^total: 3 pending, 0 retrying, 1 failed; oldest "
                                 r"undelivered 1h0[12]m$")
        self.assertEqual(out[5], "unhealthy: 1 failed event (outboxctl ls --state failed)")
        out = out[:4]
        self.assertEqual(out[1].split(), ["SINK", "CURSOR", "PENDING", "RETRYING", "FAILED",
                                          "OLDEST", "LAST", "PROGRESS"])
        self.assertEqual(len(out), 4)
        cells = [line.split() for line in out[2:]]
        self.assertEqual(cells[0][:5], ["orders-rabbit", "3", "0", "0", "1"])
        self.assertRegex(cells[0][5], r"^\d+(ms|s)$")
        self.assertEqual(cells[0][6], "2023-11-14T22:13:20.000Z")
        self.assertEqual(cells[1][:5], ["redis", "0", "3", "0", "0"])
        self.assertRegex(cells[1][5], r"^1h0[12]m$")
        self.assertEqual(cells[1][6], "-")
        # Aligned: numbers end under the end of their heading, text starts under its start.
        header = out[1]
        for col in ("CURSOR", "PENDING", "RETRYING", "FAILED", "OLDEST"):
            end = header.index(col) + len(col)
            for line in out[2:]:
                self.assertNotEqual(line[end - 1], " ", line)
                self.assertEqual(line[end], " ", line)
        for line in out[2:]:
            self.assertEqual(line.rindex(" ") + 1, header.index("LAST PROGRESS"), line)

    def test_status_json(self):
        self._sinks()
        rc, out, err = ctl("-d", self.db, "status", "--json")
        self.assertEqual((rc, err), (3, ""))
        lines = out.splitlines()
        objs = [json.loads(line) for line in lines]
        self.assertEqual([o["sink"] for o in objs], ["orders-rabbit", "redis"])
        a, b = objs
        self.assertEqual({k: a[k] for k in ("cursor", "pending", "retrying", "failed",
                                            "last_progress")},
                         {"cursor": 3, "pending": 0, "retrying": 0, "failed": 1,
                          "last_progress": "2023-11-14T22:13:20.000Z"})
        self.assertEqual(b["pending"], 3)
        self.assertIsNone(b["last_progress"])
        self.assertGreater(b["oldest_age_s"], 3700)
        self.assertEqual(set(a), {"sink", "cursor", "pending", "retrying", "failed",
                                  "oldest_age_s", "last_progress"})
        short = [json.loads(line) for line in ctl("-d", self.db, "status", "-j")[1].split("\n")
                 if line]
        self.assertEqual([o["sink"] for o in short], ["orders-rabbit", "redis"])


class TestReplay(Base):
    USAGE = ("usage: outboxctl [-d DB] replay (--failed | --id ID | --name GLOB | "
             "--since TIME | --until TIME | --from-seq N)... [--sink S] [--dry-run]")

    def setUp(self):
        super().setUp()
        self.init()
        for i in range(1, 6):
            self.ok("-d", self.db, "enqueue", "user.login" if i != 4 else "order.paid",
                    '{"i":%d}' % i, "--id", "ev%d" % i)
        c = sqlite3.connect(self.db)
        c.executescript("""
            INSERT INTO outbox_sink(name, type, cursor) VALUES ('a', 'redis', 5);
            INSERT INTO outbox_sink(name, type, cursor, filter)
              VALUES ('b', 'rabbitmq', 5, '["user.*"]');
            INSERT INTO outbox_retry VALUES ('a', 2, 'failed', 10, 0, 'boom', 1);
            INSERT INTO outbox_retry VALUES ('b', 2, 'failed', 10, 0, 'bang', 1);
            INSERT INTO outbox_retry VALUES ('a', 3, 'retry', 4, 99999999999999, 'slow', 1);
        """)
        c.commit()
        c.close()

    def state(self):
        return (rows(self.db, "SELECT sink, seq, state, attempts, next_attempt_at, last_error "
                              "FROM outbox_retry ORDER BY sink, seq"),
                rows(self.db, "SELECT name, cursor FROM outbox_sink ORDER BY name"))

    def test_failed(self):
        self.assertEqual(self.ok("-d", self.db, "replay", "--failed"), "replayed 2 events\n")
        retry, sinks = self.state()
        self.assertEqual(retry, [("a", 2, "retry", 0, 0, None), ("a", 3, "retry", 4,
                                  99999999999999, "slow"), ("b", 2, "retry", 0, 0, None)])
        self.assertEqual(sinks, [("a", 5), ("b", 5)])

    def test_failed_on_one_sink_dry_run_writes_nothing(self):
        before = self.state()
        self.assertEqual(self.ok("-d", self.db, "replay", "--failed", "--sink", "b",
                                 "--dry-run"),
                         "b\t2\tev2\tuser.login\tfailed\nwould replay 1 event\n")
        self.assertEqual(self.state(), before)

    def test_name_glob_picks_delivered_and_retrying_too(self):
        self.assertEqual(self.ok("-d", self.db, "replay", "--name", "user.*", "--sink", "a"),
                         "replayed 4 events\n")
        self.assertEqual(self.state()[0][:4], [("a", 1, "retry", 0, 0, None),
                                               ("a", 2, "retry", 0, 0, None),
                                               ("a", 3, "retry", 0, 0, None),
                                               ("a", 5, "retry", 0, 0, None)])

    def test_readme_example_selects_a_delivered_event(self):
        """README: replay --name 'order.*' --since T --dry-run finds the delivered
        order.paid (on sink a only: b's filter never took it), and writes nothing."""
        since = rows(self.db, "SELECT strftime('%Y-%m-%dT%H:%M:%SZ', min(created_at) / 1000, "
                              "'unixepoch') FROM outbox")[0][0]
        before = self.state()
        self.assertEqual(self.ok("-d", self.db, "replay", "--name", "order.*", "--since", since,
                                 "--dry-run"),
                         "a\t4\tev4\torder.paid\tdelivered\nwould replay 1 event\n")
        self.assertEqual(self.state(), before)
        self.assertEqual(self.ok("-d", self.db, "replay", "--name", "order.*", "--since",
                                 since), "replayed 1 event\n")
        self.assertEqual(self.state()[0], sorted(before[0] + [("a", 4, "retry", 0, 0, None)]))
        self.assertEqual(self.state()[1], before[1])

    def test_selectors_leave_pending_events_alone(self):
        self.ok("-d", self.db, "enqueue", "user.login", "{}", "--id", "ev6")
        self.assertEqual(self.ok("-d", self.db, "replay", "--name", "user.*", "--since", "1h",
                                 "--dry-run"),
                         "a\t1\tev1\tuser.login\tdelivered\n"
                         "b\t1\tev1\tuser.login\tdelivered\n"
                         "a\t2\tev2\tuser.login\tfailed\n"
                         "b\t2\tev2\tuser.login\tfailed\n"
                         "a\t3\tev3\tuser.login\tretry\n"
                         "b\t3\tev3\tuser.login\tdelivered\n"
                         "a\t5\tev5\tuser.login\tdelivered\n"
                         "b\t5\tev5\tuser.login\tdelivered\n"
                         "would replay 8 events\n")
        self.assertEqual(self.ok("-d", self.db, "replay", "--id", "ev6"), "replayed 0 events\n")
        self.assertEqual(self.ok("-d", self.db, "replay", "--until", "1h"), "replayed 0 events\n")

    def test_failed_stays_the_dead_letter_case(self):
        self.assertEqual(self.ok("-d", self.db, "replay", "--failed", "--name", "user.*",
                                 "--dry-run"),
                         "a\t2\tev2\tuser.login\tfailed\nb\t2\tev2\tuser.login\tfailed\n"
                         "would replay 2 events\n")
        self.assertEqual(self.ok("-d", self.db, "replay", "--failed", "--id", "ev4"),
                         "replayed 0 events\n")
        self.assertEqual(self.ok("-d", self.db, "replay", "--failed", "--since", "1h",
                                 "--sink", "b"), "replayed 1 event\n")
        self.assertEqual(self.state()[0], [("a", 2, "failed", 10, 0, "boom"),
                                           ("a", 3, "retry", 4, 99999999999999, "slow"),
                                           ("b", 2, "retry", 0, 0, None)])

    def test_id_takes_a_seq_as_show_does(self):
        self.assertEqual(self.ok("-d", self.db, "replay", "--id", "4", "--dry-run"),
                         "a\t4\tev4\torder.paid\tdelivered\nwould replay 1 event\n")
        self.assertEqual(self.ok("-d", self.db, "replay", "--id", "ev4", "--dry-run"),
                         "a\t4\tev4\torder.paid\tdelivered\nwould replay 1 event\n")
        # An id wins over a seq, as in show.
        self.ok("-d", self.db, "enqueue", "user.login", "{}", "--id", "2")
        self.sql_cursor(6)
        self.assertEqual(self.ok("-d", self.db, "replay", "--id", "2", "--dry-run"),
                         "a\t6\t2\tuser.login\tdelivered\nb\t6\t2\tuser.login\tdelivered\n"
                         "would replay 2 events\n")

    def test_id_of_no_event_is_an_error_and_writes_nothing(self):
        before = self.state()
        for which in ("nosuch", "99", "0"):
            self.fails(1, "no such event with id or seq '%s'" % which, None,
                       "-d", self.db, "replay", "--id", which)
            self.fails(1, "no such event with id or seq '%s'" % which, None,
                       "-d", self.db, "replay", "--id", which, "--dry-run")
        self.fails(1, "no such event with id or seq 'nosuch'", None,
                   "-d", self.db, "replay", "--id", "nosuch", "--from-seq", "1")
        self.assertEqual(self.state(), before)

    def sql_cursor(self, cursor):
        c = sqlite3.connect(self.db)
        c.execute("UPDATE outbox_sink SET cursor = ?", (cursor,))
        c.commit()
        c.close()

    def test_id_delivers_a_delivered_event_again_where_the_filter_lets_it(self):
        # ev4 (order.paid) was delivered by a; b's filter never let it through.
        self.assertEqual(self.ok("-d", self.db, "replay", "--id", "ev4"), "replayed 1 event\n")
        self.assertIn(("a", 4, "retry", 0, 0, None), self.state()[0])
        self.assertNotIn("b", [r[0] for r in self.state()[0] if r[1] == 4])

    def test_from_seq_rewinds_cursors(self):
        self.assertEqual(self.ok("-d", self.db, "replay", "--from-seq", "4", "--dry-run"),
                         "would replay 0 events and deliver 3 again from seq 4\n")
        self.assertEqual(self.state()[1], [("a", 5), ("b", 5)])
        self.assertEqual(self.ok("-d", self.db, "replay", "--from-seq", "4", "--sink", "a"),
                         "replayed 0 events; rewound 1 sink to seq 4\n")
        self.assertEqual(self.state()[1], [("a", 3), ("b", 5)])
        # A cursor already behind is not moved forward.
        self.assertEqual(self.ok("-d", self.db, "replay", "--from-seq", "5", "--sink", "a"),
                         "replayed 0 events; rewound 0 sinks to seq 5\n")
        self.assertEqual(self.state()[1], [("a", 3), ("b", 5)])

    def test_bad_arguments_write_nothing(self):
        before = self.state()
        self.fails(2, "say what to replay: --failed, --id, --name, --since, --until or "
                   "--from-seq", self.USAGE,
                   "-d", self.db, "replay")
        self.fails(2, "--from-seq: expected an integer, got \"x\"", self.USAGE,
                   "-d", self.db, "replay", "--from-seq", "x")
        self.fails(2, "--from-seq: 0 is out of range (1 to 9223372036854775807)", self.USAGE,
                   "-d", self.db, "replay", "--from-seq", "0")
        self.fails(2, "unknown option '--bogus'", self.USAGE,
                   "-d", self.db, "replay", "--bogus")
        self.fails(1, "no sink named 'nope'", None, "-d", self.db, "replay", "--failed",
                   "--sink", "nope")
        self.assertEqual(self.state(), before)

    def test_missing_database(self):
        missing = self.tmp.join("x.db")
        self.fails(1, "cannot open database '%s': No such file or directory" % missing, None,
                   "-d", missing, "replay", "--failed")
        self.assertFalse(os.path.exists(missing))


if __name__ == "__main__":
    tap.main()
