"""tap.py: run a test module's unittest cases and report them in TAP, for automake's
tap-driver.sh, so each case shows in test-suite.log.

    import tap
    tap.require_programs("redis-server")      # skip the whole file if one is missing
    ...
    if __name__ == "__main__":
        tap.main()

A missing server skips the file ("1..0 # SKIP why", exit 0), except when the environment
sets OUTBOX_TEST_REQUIRE_SERVERS=1 (CI, tools/run-tests): then it is a failure.
Python 3 standard library only.
"""

import os
import shutil
import sys
import time
import traceback
import unittest


def servers_required():
    """Is a missing server (or other requirement) a failure rather than a skip?"""
    return os.environ.get("OUTBOX_TEST_REQUIRE_SERVERS", "") not in ("", "0")


def skip_all(reason):
    """Skip every test of this file, or fail loudly when servers are required."""
    if servers_required():
        print("1..1")
        print("not ok 1 - requirements # %s (OUTBOX_TEST_REQUIRE_SERVERS is set)" % reason)
        sys.stdout.flush()
        sys.exit(1)
    print("1..0 # SKIP %s" % reason)
    sys.stdout.flush()
    sys.exit(0)


def require_programs(*names):
    """Skip the file unless every program is found on PATH (or is an executable path)."""
    missing = [n for n in names if not (os.access(n, os.X_OK) if os.sep in n
                                       else shutil.which(n))]
    if missing:
        skip_all("not found: %s" % ", ".join(missing))


def _diag(text):
    for line in str(text).rstrip("\n").splitlines():
        print("# " + line)


class TapResult(unittest.TestResult):
    """Prints one TAP line per finished test, with diagnostics for failures. A failing
    subtest gets a line of its own; a test that ends with no line at all (a failure
    swallowed somewhere) is reported as a failure by name, in report_missing()."""

    def __init__(self):
        super().__init__()
        self.n = 0
        self.bad = 0
        self._started = 0.0
        self.reported = set()   # ids of the tests that printed a line

    def _name(self, test):
        desc = getattr(test, "_testMethodName", None)
        if desc is None:
            return str(test)
        return "%s.%s" % (type(test).__name__, desc)

    def startTest(self, test):
        super().startTest(test)
        self._started = time.monotonic()

    def _line(self, ok, test, directive="", name=None):
        self.n += 1
        self.reported.add(test.id())
        secs = time.monotonic() - self._started
        print("%s %d - %s%s" % ("ok" if ok else "not ok", self.n, name or self._name(test),
                                directive))
        if not directive:
            print("# %.2fs" % secs)
        sys.stdout.flush()

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line(True, test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.bad += 1
        self._line(False, test)
        _diag(self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self.bad += 1
        self._line(False, test)
        _diag(self._exc_info_to_string(err, test))

    def addSubTest(self, test, subtest, err):
        # Passing subtests stay quiet: their test's own line, or the failures, say it all.
        super().addSubTest(test, subtest, err)
        if err is None:
            return
        self.bad += 1
        self._line(False, test, name="%s %s" % (self._name(test),
                                                subtest._subDescription()))
        _diag(self._exc_info_to_string(err, test))

    def report_missing(self, tests):
        """A failure line for every test of tests that printed nothing."""
        for test in tests:
            if test.id() not in self.reported:
                self.bad += 1
                self._line(False, test, " # no result reported")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if servers_required():
            self.bad += 1
            self._line(False, test, " # skipped while servers are required: %s" % reason)
        else:
            self._line(True, test, " # SKIP %s" % reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._line(True, test, " # TODO expected failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.bad += 1
        self._line(False, test, " # unexpected success")


def main(module="__main__"):
    """Run the TestCases of module (default: the script), print TAP, exit 0 if all pass.
    Arguments on the command line select tests by name (TestClass or TestClass.test)."""
    loader = unittest.TestLoader()
    mod = sys.modules[module] if isinstance(module, str) else module
    names = sys.argv[1:]
    try:
        suite = (loader.loadTestsFromNames(names, mod) if names
                 else loader.loadTestsFromModule(mod))
    except Exception:
        print("1..1")
        print("not ok 1 - loading tests")
        _diag(traceback.format_exc())
        sys.exit(1)
    tests = list(_flatten(suite))   # the suite forgets each test once it has run
    result = TapResult()
    suite.run(result)
    result.report_missing(tests)
    # The plan comes last: failing subtests add lines that no count made beforehand.
    print("1..%d" % result.n)
    sys.stdout.flush()
    # An error outside any test (setUpClass, a module fixture) still fails the file.
    sys.exit(0 if result.bad == 0 and result.wasSuccessful() else 1)


def _flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t
