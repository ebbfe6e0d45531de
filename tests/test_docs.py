#!/usr/bin/env python3
"""test_docs.py: the documentation says what the code does. The options section of
outbox(5) is the output of tools/options-man, which prints the option tables.

    tests/test_docs.py --write man/outbox.5    rewrite the section from the tables
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tap  # noqa: E402
from harness import BUILDDIR, SRCDIR  # noqa: E402
import unittest  # noqa: E402

OPTIONS_MAN = os.path.join(BUILDDIR, "tools", "options-man")
BEGIN = '.\\" BEGIN OPTIONS: generated from the option tables by make man-options\n'
END = '.\\" END OPTIONS\n'


def generated():
    return subprocess.run([OPTIONS_MAN], capture_output=True, text=True,
                          check=True).stdout


def split(text):
    """(before, section, after) of a manual page's text."""
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END, start)
    return text[:start], text[start:end], text[end:]


class TestManual(unittest.TestCase):
    def test_outbox5_options_match_the_tables(self):
        with open(os.path.join(SRCDIR, "man", "outbox.5")) as f:
            _, section, _ = split(f.read())
        self.assertEqual(section, generated(),
                         "man/outbox.5 differs from the option tables: run make man-options")


def write(path):
    with open(path) as f:
        before, _, after = split(f.read())
    text = before + generated() + after
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        write(sys.argv[2])
    else:
        tap.require_programs(OPTIONS_MAN)
        tap.main()
