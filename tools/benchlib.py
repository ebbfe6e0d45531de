"""benchlib.py: what tools/bench-nats, bench-mqtt and bench-http share.

- The relay side: one outbox database filled once (bench-redis's fill()), copied fresh for
  every run, drained with `outboxd --once` (bench-redis's run_relay_once()).
- The bare side: the same envelopes the relay publishes, written one a line as
  "ID NAME BODY" (tools/bench-lines.c reads them), so both send the same bodies.
- Runs alternate relay, bare, relay, bare...: on a shared machine a slow spell then hits
  both sides, and the medians are what gets reported (with every run's figure).
"""

import importlib.machinery
import importlib.util
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests"))


def load_bench_redis():
    """fill() and run_relay_once() live in tools/bench-redis."""
    path = os.path.join(TOP, "tools", "bench-redis")
    loader = importlib.machinery.SourceFileLoader("bench_redis", path)
    spec = importlib.util.spec_from_loader("bench_redis", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def setup(prog, builddir, publisher=None):
    """(harness module, bench-redis module, path of the bare publisher or None); exits
    when something is not built."""
    os.environ["OUTBOX_BUILDDIR"] = os.path.abspath(builddir)
    os.environ.setdefault("OUTBOX_SRCDIR", TOP)
    import harness
    bench = load_bench_redis()
    path = os.path.join(builddir, "tools", publisher) if publisher else None
    for p in (harness.OUTBOXD, path):
        if p is not None and not os.access(p, os.X_OK):
            sys.exit("%s: %s not found: run make first" % (prog, p))
    ldd = subprocess.run(["ldd", harness.OUTBOXD], capture_output=True, text=True).stdout
    if "libasan" in ldd:
        print("%s: warning: %s is built with sanitizers; figures will be low"
              % (prog, harness.OUTBOXD))
    return harness, bench, path


def write_bodies(db_path, out_path):
    """The envelopes the relay publishes for db_path's events, "ID NAME BODY" a line
    (the fill() events have no headers: the envelope is id, name and the raw payload)."""
    c = sqlite3.connect(db_path)
    n = 0
    with open(out_path, "w") as f:
        for eid, name, payload in c.execute(
                "SELECT id, name, payload FROM outbox ORDER BY seq"):
            f.write('%s %s {"id":"%s","name":"%s","data":%s}\n'
                    % (eid, name, eid, name, payload))
            n += 1
    c.close()
    return n


def fresh_db(template, path):
    """A copy of the filled (and checkpointed) template database at path."""
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    shutil.copyfile(template, path)
    # Written out now: the relay's last checkpoint at exit syncs the file, and would pay
    # for the copy's dirty pages (~11 ms for 21 MB), which a real database does not have.
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    return path


def bare_rate(argv, prog):
    """Runs a bare publisher; its msg/s (it prints "N messages in S s: R msg/s")."""
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("%s: %s exited %d: %s" % (prog, os.path.basename(argv[0]), r.returncode,
                                           r.stderr.strip()[-2000:]))
    return float(re.search(r": (\d+) msg/s", r.stdout).group(1))


def alternate(runs, relay_run, bare_run):
    """relay_run(i) and bare_run(i) in turn, runs times each: two lists of rates."""
    relay, bare = [], []
    for i in range(runs):
        relay.append(relay_run(i))
        bare.append(bare_run(i))
    return relay, bare


def figures(rates):
    """'median (a b c)' of a list of rates."""
    return "%10.0f  (runs: %s)" % (statistics.median(rates),
                                   " ".join("%.0f" % r for r in rates))


def ratio(relay, bare):
    """The ratio of the medians, and the spread of the per-pair ratios."""
    pairs = [r / b for r, b in zip(relay, bare)]
    return "%10.2f  (per pair: %s)" % (statistics.median(relay) / statistics.median(bare),
                                       " ".join("%.2f" % p for p in pairs))


def summary_rates(bench, measure, relay, bare, bare_name):
    """A table row from the rates of alternating runs: medians, and their ratio."""
    r, b = statistics.median(relay), statistics.median(bare)
    summary(bench, measure, "%.0f events/s" % r, "%s %.0f/s" % (bare_name, b), r / b)


def summary(bench, measure, relay, baseline, ratio=None):
    """One row of tools/bench-all's table, appended to the file $OUTBOX_BENCH_SUMMARY
    names (JSON lines), when it is set: what was measured, the relay's figure and its
    baseline's (text, units included), and their ratio (None where none applies)."""
    import json
    path = os.environ.get("OUTBOX_BENCH_SUMMARY")
    if not path:
        return
    with open(path, "a") as f:
        f.write(json.dumps({"bench": bench, "measure": measure, "outboxd": relay,
                            "baseline": baseline, "ratio": ratio}) + "\n")
