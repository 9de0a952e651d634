"""Celery on the benchmark's two shapes, for ``make bench --peers`` (``bench.peers``).

Run by the Python of the peers' own virtual environment (``bench/.peers-venv``: Celery is not
a dependency of wgops), from the repository's root::

    python -m bench.celery_peer --backend redis --tasks 1000 --chain 200

It starts a Celery worker (prefork, 2 processes: one per core, as wgops' worker has its slots)
on a queue of its own on the shared RabbitMQ, measures, stops the worker by PID, deletes the
queue and the results it stored, and prints one JSON line:

* ``tasks_per_s``: ``--tasks`` independent no-ops sent at once, first send to last result;
* ``hop_user_ms``: a chain of ``--chain`` no-ops, first task's start to the last one's end,
  divided by the hops (each task returns the time it ran), as wgops' ``hop_user_ms``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from celery import Celery, chain, group

ROOT = Path(__file__).resolve().parent.parent
BROKER = os.environ.get("WGOPS_BENCH_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
REDIS = os.environ.get("WGOPS_BENCH_REDIS", "redis://127.0.0.1:6379/15")
QUEUE = os.environ.get("WGOPS_BENCH_CELERY_QUEUE", "wgops-bench-celery")
BACKEND = os.environ.get("WGOPS_BENCH_CELERY_BACKEND", "redis")

app = Celery("wgops_bench_peer", broker=BROKER, backend=REDIS if BACKEND == "redis" else "rpc://")
app.conf.update(task_default_queue=QUEUE, worker_enable_remote_control=False,
                worker_send_task_events=False, task_send_sent_event=False,
                broker_connection_retry_on_startup=True, result_expires=600,
                worker_hijack_root_logger=False)


@app.task(name="bench.noop")
def noop() -> float:
    """Nothing but the time it ran."""
    return time.time()


def _start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench.celery_peer", "worker", "-P", "prefork",
         "-c", "2", "-Q", QUEUE, "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-l", "WARNING"], env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)


def _stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)      # its own session: the worker and its pool
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _delete_queue() -> None:
    """The queue and the exchange of the same name Celery declared for it."""
    with app.connection_for_write() as conn:
        for delete in (conn.default_channel.queue_delete, conn.default_channel.exchange_delete):
            try:
                delete(QUEUE)
            except Exception:  # noqa: BLE001 - best effort: it may be gone already
                pass


def measure(tasks: int, hops: int) -> dict[str, float]:
    sent: list = []
    try:
        warm = [noop.delay() for _ in range(20)]        # the worker is up and warm
        for r in warm:
            r.get(timeout=120)
        sent += warm
        start = time.time()
        results = group(noop.si() for _ in range(tasks)).apply_async()
        results.get(timeout=600)
        rate = tasks / (time.time() - start)
        sent.append(results)
        res = chain(*(noop.si() for _ in range(hops))).apply_async()
        res.get(timeout=600)
        times, node = [], res
        while node is not None:
            times.append(node.get(timeout=60))
            sent.append(node)
            node = node.parent
        times.reverse()
        return {"tasks_per_s": rate, "hop_user_ms": 1000 * (times[-1] - times[0]) / (hops - 1)}
    finally:
        for r in sent:
            try:
                r.forget()
            except Exception:  # noqa: BLE001 - rpc results cannot be forgotten: nothing stored
                pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("redis", "rpc"), default="redis")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--chain", type=int, default=200)
    args = parser.parse_args()
    if args.backend != BACKEND or os.environ.get("WGOPS_BENCH_CELERY_QUEUE") is None:
        # the app is configured at import: run again with the backend and a queue of its own
        env = dict(os.environ, WGOPS_BENCH_CELERY_BACKEND=args.backend,
                   WGOPS_BENCH_CELERY_QUEUE=f"wgops-bench-celery-{uuid.uuid4().hex[:8]}",
                   PYTHONPATH=str(ROOT))
        return subprocess.run([sys.executable, "-m", "bench.celery_peer", *sys.argv[1:]],
                              env=env, cwd=str(ROOT)).returncode
    worker = _start_worker(dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        figures = measure(args.tasks, args.chain)
    finally:
        _stop_worker(worker)
        _delete_queue()
    print(json.dumps({"backend": args.backend, **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
