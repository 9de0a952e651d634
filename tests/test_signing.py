"""Signed messages (``message_key``): everything works signed, key rotation works, and an
unsigned or wrongly signed message is dead-lettered unread; the key is never shown."""

from __future__ import annotations

import asyncio
import json

import aio_pika
import pytest

from tests.cluster import Cluster, wait_for
from wgops.daemon.signing import Signer
from wgops.store.errors import ProtocolError

OLD, NEW, WRONG = "old-key-0123456789abcdef", "new-key-0123456789abcdef", "x" * 24


def test_sign_verify_rotate_refuse() -> None:
    body = b'{"type": "launch", "v": 1, "graph": 1}'
    old, rotated = Signer((OLD,)), Signer((NEW, OLD))
    rotated.verify(body, old.headers(body))                 # a new key second: still verifies
    Signer((OLD, NEW)).verify(body, rotated.headers(body))
    with pytest.raises(ProtocolError, match="matches no message_key"):
        old.verify(body, rotated.headers(body))
    with pytest.raises(ProtocolError, match="unsigned"):
        old.verify(body, None)
    with pytest.raises(ProtocolError, match="matches no message_key"):
        old.verify(body + b" ", old.headers(body))
    Signer(()).verify(body, None)                           # off: nothing checked
    assert OLD not in repr(old) and Signer(()).headers(body) is None


async def _publish(queue: str, body: bytes, key: str | None) -> None:
    connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
    try:
        channel = await connection.channel()
        headers = Signer((key,)).headers(body) if key else {}
        await channel.default_exchange.publish(aio_pika.Message(body, headers=headers),
                                               routing_key=queue)
    finally:
        await connection.close()


def test_a_signed_installation_runs_and_refuses_what_is_not_signed(cluster: Cluster) -> None:
    cluster.env["WGOPS_MESSAGE_KEY"] = f"{NEW},{OLD}"        # the scheduler signs with NEW
    sched = cluster.scheduler()
    sid = cluster.wait_daemon("scheduler", sched.pid)
    cluster.worker(slots=2, extra_env={"WGOPS_MESSAGE_KEY": f"{OLD},{NEW}"})   # signs with OLD
    gid = cluster.submit({"name": "signed", "tasks": {
        "a": {"run": "tests.tasks:add", "args": {"a": 1, "b": 2}},
        "b": {"run": "tests.tasks:add", "args": {"a": "${a}", "b": 1}},
        "s": {"shell": "echo ${b}"}}})
    shown = cluster.wait_graph(gid)
    assert shown["state"] == "finished", shown
    ns = cluster.env["WGOPS_NAMESPACE"]
    launch = json.dumps({"type": "launch", "v": 1, "graph": gid}).encode()
    asyncio.run(_publish(f"{ns}.graphs", launch, None))
    asyncio.run(_publish(f"{ns}.scheduler.{sid}", launch, WRONG))
    wait_for(lambda: len(json.loads(cluster.cli("dead", "list", "--json").stdout)) >= 2, 20,
             0.2, "two dead letters")
    reasons = [d["reason"] for d in json.loads(cluster.cli("dead", "list", "--json").stdout)]
    assert any("unsigned message" in r for r in reasons), reasons
    assert any("matches no message_key" in r for r in reasons), reasons
    logs = "".join(cluster.log(p.pid) for p in cluster.procs)
    outputs = [cluster.cli(*args).stdout for args in (("daemon", "status", "--json"),
                                                       ("graph", "show", str(gid)))]
    assert not [t for t in [logs, *outputs] if OLD in t or NEW in t]


def test_an_unsigned_daemon_is_not_heard_but_the_database_still_is(cluster: Cluster) -> None:
    """A worker without the key runs a task (it checks nothing); its unsigned report is
    refused by the signed scheduler, which still finishes the graph from the task's committed
    row (its stall check): a message is a wake-up, the database the truth."""
    cluster.env["WGOPS_MESSAGE_KEY"] = OLD
    cluster.scheduler()
    cluster.worker(slots=1, extra_env={"WGOPS_MESSAGE_KEY": ""})
    gid = cluster.submit({"name": "g", "tasks": {"a": {"run": "tests.tasks:noop"}}})
    shown = cluster.wait_graph(gid, timeout=60)
    assert shown["state"] == "finished"
    reasons = [d["reason"] for d in json.loads(cluster.cli("dead", "list", "--json").stdout)]
    assert any("unsigned message" in r for r in reasons), reasons
