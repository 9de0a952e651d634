"""What a keyed compare-and-set costs on PostgreSQL beside a deep queue, written as the store
writes it (``column || ''``: no index but the key's) and as it was written before.

    .venv/bin/python -m bench.plans [--rows 10000]

A fresh database with ``--rows`` graphs owned by one scheduler and as many queued tasks (never
analysed, as after a burst of submissions); for each statement: its plan's index, the rows it
read and threw away, and its time over 2,000 executions (rolled back).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

import psycopg2

from bench.harness import PG_ADMIN_URL, _pg_admin
from wgops.store.db import Store
from wgops.store.migrations import migrate

STATEMENTS = {
    "task start, plain": "UPDATE task SET attempts = attempts WHERE id = %s AND "
                         "state = 'queued' AND attempts = 0",
    "task start, as stored": "UPDATE task SET attempts = attempts WHERE id = %s AND "
                             "(state || '') = 'queued' AND attempts = 0",
    "graph fence, plain": "UPDATE graph SET epoch = epoch WHERE id = %s AND scheduler = 's1' "
                          "AND epoch = 1 AND state IN ('running')",
    "graph fence, as stored": "UPDATE graph SET epoch = epoch WHERE id = %s AND "
                              "(scheduler || '') = 's1' AND epoch = 1 AND "
                              "(state || '') IN ('running')",
}


def fill(url: str, rows: int) -> None:
    store = Store(url).connect()
    try:
        migrate(store)
        with store.write():
            store.db.execute_sql(
                "INSERT INTO graph (name, state, priority, scheduler, epoch, depth, created, "
                "document, inputs) SELECT 'g' || i, 'running', 0, 's1', 1, 0, 0, '{}', '{}' "
                f"FROM generate_series(1, {rows}) i")
            store.db.execute_sql(
                "INSERT INTO task (graph_id, name, kind, spec, deps, pool, state, attempts, "
                "lost, condition_false) SELECT 1 + mod(i, %s), 't' || i, 'python', '{}', '[]', "
                f"'default', 'queued', 0, 0, false FROM generate_series(1, {rows}) i", (rows,))
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    name = "wgops_plans_" + uuid.uuid4().hex[:8]
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        fill(url, args.rows)
        conn = psycopg2.connect(url)
        try:
            cur = conn.cursor()
            for label, sql in STATEMENTS.items():
                cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, (args.rows // 2,))
                scan = cur.fetchone()[0][0]["Plan"]["Plans"][0]
                conn.rollback()
                t0 = time.perf_counter()
                for i in range(1, 2001):
                    cur.execute(sql, (1 + i % args.rows,))
                conn.rollback()
                micros = (time.perf_counter() - t0) / 2000 * 1e6
                print(f"{label:24s} {micros:8.1f} us  via "
                      f"{scan.get('Index Name', scan['Node Type'])}, rows thrown away "
                      f"{scan.get('Rows Removed by Filter', 0)}")
        finally:
            conn.close()
    finally:
        _pg_admin(f'DROP DATABASE "{name}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
