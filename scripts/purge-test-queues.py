"""Delete the broker queues and exchanges left behind by test and benchmark namespaces.

Usage: python scripts/purge-test-queues.py PREFIX_REGEX   (e.g. '^t[0-9a-f]{10}\\.')
Needs rabbitmqctl (root on the broker's host) to list them; deletes over AMQP.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import aio_pika


def listed(kind: str) -> list[str]:
    out = subprocess.run(["rabbitmqctl", f"list_{kind}", "-q", "name"], capture_output=True,
                         text=True, timeout=60, check=False).stdout
    return [line.strip() for line in out.splitlines()[1:] if line.strip()]


async def purge(pattern: str, url: str = "amqp://guest:guest@127.0.0.1:5672/") -> int:
    rx = re.compile(pattern)
    queues = [q for q in listed("queues") if rx.search(q)]
    exchanges = [x for x in listed("exchanges") if rx.search(x)]
    conn = await aio_pika.connect(url)
    try:
        channel = await conn.channel()
        for name in queues:
            await channel.queue_delete(name)
        for name in exchanges:
            await channel.exchange_delete(name)
    finally:
        await conn.close()
    return len(queues) + len(exchanges)


if __name__ == "__main__":
    print(asyncio.run(purge(sys.argv[1])), "deleted")
