#!/usr/bin/env python3
"""producer.py: one producer process of the chaos suite (Python 3 standard library only).

Writes a business row (table `orders`) and 1-4 events (plain SQL `INSERT INTO outbox(name,
payload) ... RETURNING id`) in the same transaction, at a moderate random rate, until
SIGTERM. Each event's payload names its order (`"order": "p<index>-<n>"`), so after the run
the truth is the database itself: an event is committed iff its order row exists.

Some transactions are rolled back on purpose: their event ids are appended to
OUT/rolledback-<index>.ids before the ROLLBACK. A transaction that fails (SQLITE_BUSY past
the busy timeout, SQLITE_FULL on a full disk, ...) is rolled back too and its ids go to
OUT/aborted-<index>.ids (the harness checks in the database what became of them).
Counters go to OUT/stats-<index>.json at exit.

usage: producer.py --db DB --index N --seed S --out DIR [--rate TX_PER_S]
                   [--rollback-pct P]
"""

import argparse
import json
import os
import random
import signal
import sqlite3
import sys
import time

NAMES = ("order.created", "order.paid", "order.shipped", "stock.reserved", "mail.sent")

stop = False


def on_term(signum, frame):
    global stop
    stop = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--index", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rate", type=float, default=50.0, help="transactions per second")
    ap.add_argument("--rollback-pct", type=float, default=10.0)
    a = ap.parse_args()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    rng = random.Random(a.seed * 1000 + a.index)
    rolled = open(os.path.join(a.out, "rolledback-%d.ids" % a.index), "a")
    aborted = open(os.path.join(a.out, "aborted-%d.ids" % a.index), "a")
    stats = {"transactions": 0, "committed_tx": 0, "committed_events": 0,
             "rolled_back_tx": 0, "rolled_back_events": 0, "aborted_tx": 0,
             "aborted_events": 0, "errors": {}}

    c = sqlite3.connect(a.db, timeout=30, isolation_level=None)
    c.execute("PRAGMA busy_timeout=30000")
    n = 0
    while not stop:
        time.sleep(rng.expovariate(a.rate))
        n += 1
        order = "p%d-%d" % (a.index, n)
        nev = rng.randint(1, 4)
        rollback = rng.random() * 100 < a.rollback_pct
        # 10% of transactions use an ordering key (a customer), so keyed batches are cut.
        key = "customer-%d" % rng.randrange(200) if rng.random() < 0.1 else None
        ids = []
        stats["transactions"] += 1
        try:
            c.execute("BEGIN IMMEDIATE")
            c.execute("INSERT INTO orders(order_id, producer, amount, events, created_at) "
                      "VALUES (?, ?, ?, ?, ?)",
                      (order, a.index, rng.randrange(1, 100000), nev, int(time.time() * 1000)))
            for j in range(nev):
                payload = json.dumps({"order": order, "j": j, "amount": rng.randrange(100000),
                                      "note": "x" * rng.randrange(10, 300)})
                if key is None:
                    cur = c.execute("INSERT INTO outbox(name, payload) VALUES (?, ?) "
                                    "RETURNING id", (rng.choice(NAMES), payload))
                else:
                    cur = c.execute("INSERT INTO outbox(name, payload, key) VALUES (?, ?, ?) "
                                    "RETURNING id", (rng.choice(NAMES), payload, key))
                ids.append(cur.fetchone()[0])
            if rollback:
                # Recorded before the ROLLBACK: these ids must never reach a consumer.
                rolled.write("".join(i + "\n" for i in ids))
                rolled.flush()
                c.execute("ROLLBACK")
                stats["rolled_back_tx"] += 1
                stats["rolled_back_events"] += len(ids)
            else:
                c.execute("COMMIT")
                stats["committed_tx"] += 1
                stats["committed_events"] += len(ids)
        except sqlite3.Error as e:
            msg = str(e)
            stats["errors"][msg] = stats["errors"].get(msg, 0) + 1
            stats["aborted_tx"] += 1
            stats["aborted_events"] += len(ids)
            if ids:
                aborted.write("".join(i + "\n" for i in ids))
                aborted.flush()
            try:
                if c.in_transaction:
                    c.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            time.sleep(rng.uniform(0.05, 0.2))
    c.close()
    rolled.close()
    aborted.close()
    with open(os.path.join(a.out, "stats-%d.json" % a.index), "w") as f:
        json.dump(stats, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
