"""Deleting what test namespaces leave on the shared broker.

Durable queues outlive the tests that declared them; thousands of them make a RabbitMQ
restart exhaust its file handles. Every namespace a test used is purged at the end of the
session (and by tests that restart the broker, right after themselves).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable

import aio_pika

BROKER = "amqp://guest:guest@127.0.0.1:5672/"

# every namespace a test of this session used (the ``namespace`` fixture adds to it)
USED: set[str] = set()


def remember(namespaces: Iterable[str]) -> None:
    """Append the namespaces to ``$WGOPS_TEST_NAMESPACES`` (a file, when set):
    ``scripts/run-tests.sh`` purges them all once more after both phases, in case a process
    a test started re-declared its queues after its session's purge."""
    path = os.environ.get("WGOPS_TEST_NAMESPACES")
    if path and namespaces:
        with open(path, "a") as out:
            out.writelines(f"{ns}\n" for ns in namespaces)


def purge_finished(current: str) -> int:
    """Delete what the session's earlier tests left (they ran one after the other and have
    stopped their processes): a test that restarts the broker wants few queues to recover."""
    return purge(USED - {current})


def _listed(kind: str) -> list[str] | None:
    if shutil.which("rabbitmqctl") is None:
        return None
    try:
        out = subprocess.run(["rabbitmqctl", f"list_{kind}", "name", "-q",
                              "--no-table-headers"], capture_output=True, text=True,
                             timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [n.strip() for n in out.stdout.splitlines() if n.strip()] if out.returncode == 0 \
        else None


def purge(namespaces: Iterable[str]) -> int:
    """Delete every queue and exchange named ``{ns}.…`` for the given namespaces."""
    prefixes = tuple(f"{ns}." for ns in namespaces)
    if not prefixes:
        return 0
    queues = _listed("queues")
    if queues is None:      # no rabbitmqctl here: the names wgops always declares
        queues = [f"{p}{q}" for p in prefixes for q in ("graphs", "dead", "tasks.default")]
    queues = [q for q in queues if q.startswith(prefixes)]
    exchanges = [f"{p}events" for p in prefixes]

    async def go() -> int:
        conn = None
        for attempt in range(6):            # a broker busy at the end of a run answers late
            try:
                conn = await aio_pika.connect(BROKER, timeout=10)
                break
            except Exception as exc:  # noqa: BLE001 - retried, then reported
                if attempt == 5:
                    print(f"broker_cleanup: could not reach the broker to delete "
                          f"{len(queues)} queues: {exc!r}", file=sys.stderr)
                    return 0
                await asyncio.sleep(2)
        assert conn is not None
        try:
            for name in queues + exchanges:
                channel = await conn.channel()
                try:
                    if name in exchanges:
                        await channel.exchange_delete(name)
                    else:
                        await channel.queue_delete(name)
                finally:
                    if not channel.is_closed:
                        await channel.close()
        finally:
            await conn.close()
        return len(queues)
    return asyncio.run(go())
