#!/usr/bin/env python3
"""test_docs.py: the documentation stays true.

- The README's C example is a whole program: it is cut out of README.md, compiled against a
  staged `make install DESTDIR=...` through the installed liboutbox.pc (as a user would,
  with pkg-config), run, and its event relayed by outboxd.
- Every manual page renders without troff warnings ("cannot adjust line") at 80 and 100
  columns.
- The options section of outbox(5) is the output of tools/options-man, which prints the
  option tables (tests/test_docs.py --write man/outbox.5, or make man-options, rewrites it).
"""

import glob
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import tap  # noqa: E402
from harness import TempDir  # noqa: E402

README = os.path.join(harness.SRCDIR, "README.md")
MAN_DIR = os.path.join(harness.SRCDIR, "man")
OPTIONS_MAN = os.path.join(harness.BUILDDIR, "tools", "options-man")
BEGIN = '.\\" BEGIN OPTIONS: generated from the option tables by make man-options\n'
END = '.\\" END OPTIONS\n'


def options_section():
    return subprocess.run([OPTIONS_MAN], capture_output=True, text=True,
                          check=True).stdout


def split_options(text):
    """(before, options section, after) of a manual page's text."""
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END, start)
    return text[:start], text[start:end], text[end:]


def write_options(path):
    with open(path) as f:
        before, _, after = split_options(f.read())
    text = before + options_section() + after
    with open(path, "w") as f:
        f.write(text)


def readme_c_example():
    """The text of the README's C code block (there is exactly one)."""
    with open(README) as f:
        blocks = re.findall(r"^```c\n(.*?)^```$", f.read(), re.S | re.M)
    assert len(blocks) == 1, "README.md has %d C blocks, expected 1" % len(blocks)
    return blocks[0]


def child_env(**extra):
    """The environment without make's jobserver (a make run from make check must not try
    to join it) plus extra."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    env.update(extra)
    return env


def run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise AssertionError("%s exited %d:\n%s%s" % (" ".join(argv), r.returncode, r.stdout,
                                                       r.stderr))
    return r


class TestReadme(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir("docs")
        self.addCleanup(self.tmp.cleanup)

    def test_c_example_builds_against_the_installed_library(self):
        for prog in ("pkg-config", "make"):
            if shutil.which(prog) is None:
                self.skipTest("%s not found" % prog)
        stage = self.tmp.join("stage")
        run(["make", "-s", "install", "DESTDIR=" + stage], cwd=harness.BUILDDIR,
            env=child_env())
        pcs = glob.glob(os.path.join(stage, "**", "liboutbox.pc"), recursive=True)
        self.assertEqual(len(pcs), 1, pcs)
        libdir = glob.glob(os.path.join(stage, "**", "liboutbox.so"), recursive=True)
        self.assertEqual(len(libdir), 1, libdir)
        libdir = os.path.dirname(libdir[0])

        src = self.tmp.join("app.c")
        with open(src, "w") as f:
            f.write(readme_c_example())
        # pkg-config as the README says, pointed at the staged tree; the compiler and the
        # sanitizer flags of this build (an ASan liboutbox needs an ASan program).
        pc_env = child_env(PKG_CONFIG_PATH=os.path.dirname(pcs[0]),
                           PKG_CONFIG_SYSROOT_DIR=stage)
        flags = run(["pkg-config", "--cflags", "--libs", "liboutbox"], env=pc_env).stdout
        cc = os.environ.get("OUTBOX_CC", "cc").split()
        san = os.environ.get("OUTBOX_SAN_FLAGS", "").split()
        app = self.tmp.join("app")
        run(cc + san + ["-Wall", "-Wextra", "-Werror", src, "-o", app] + flags.split())

        out = run([app], cwd=self.tmp.path, env=child_env(LD_LIBRARY_PATH=libdir)).stdout
        m = re.fullmatch(r"enqueued ([0-9a-f-]{36})\n", out)
        self.assertIsNotNone(m, out)
        db = self.tmp.join("app.db")
        c = sqlite3.connect(db)
        try:
            self.assertEqual(c.execute("SELECT id, name, key FROM outbox").fetchall(),
                             [(m.group(1), "user.follow", "42")])
            self.assertEqual(c.execute("SELECT * FROM follows").fetchall(), [("42", "7")])
        finally:
            c.close()
        # And the relay publishes it.
        r = subprocess.run([harness.OUTBOXD, "--db", db, "--once", "-q"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, '{"id":"%s","name":"user.follow","data":{"source":"42",'
                         '"target":"7"}}\n' % m.group(1))


class TestManPages(unittest.TestCase):
    def test_no_troff_warnings(self):
        if shutil.which("man") is None:
            self.skipTest("man not found")
        pages = sorted(glob.glob(os.path.join(MAN_DIR, "*.[1-8]")))
        self.assertGreaterEqual(len(pages), 4)
        for page in pages:
            for width in ("80", "100"):
                r = subprocess.run(["man", "-l", page], capture_output=True, text=True,
                                   env=dict(os.environ, MANWIDTH=width, MANPAGER="cat"))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stderr, "", "%s at %s columns" % (page, width))
                self.assertIn("NAME", r.stdout)

    def test_outboxd_exit_statuses_are_documented(self):
        """Every status of relay/exit.h that outboxd uses is in --help and outboxd(8)."""
        names = ("EXIT_OK", "EXIT_RUNTIME", "EXIT_USAGE", "EXIT_LOCKED", "EXIT_NOT_OUTBOX",
                 "EXIT_NO_DATABASE", "EXIT_UNREACHABLE", "EXIT_CONFIG")
        r = subprocess.run([harness.OUTBOXD, "--help"], capture_output=True, text=True)
        usage = " ".join(r.stdout.split("Exit status:")[1].split())
        with open(os.path.join(MAN_DIR, "outboxd.8")) as f:
            man = f.read().split(".SH EXIT STATUS")[1].split(".SH ")[0]
        for name in names:
            status = harness.EXIT_STATUSES[name]
            self.assertRegex(usage, r"(^|, )%d " % status, "%s in --help" % name)
            self.assertIn(".B %d\n" % status, man, "%s in outboxd(8)" % name)

    def test_outbox5_options_match_the_tables(self):
        with open(os.path.join(MAN_DIR, "outbox.5")) as f:
            _, section, _ = split_options(f.read())
        self.assertEqual(section, options_section(),
                         "man/outbox.5 differs from the option tables: run make man-options")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        write_options(sys.argv[2])
    else:
        tap.main()
