"""Slot processes (real forkserver children): results, failures, timeouts, deaths, reuse."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from wgops.daemon.results import TaskFailed
from wgops.daemon.slots import SlotProcesses

ROOT = str(Path(__file__).resolve().parent.parent)


@pytest.fixture
async def pool() -> Any:
    slots = SlotProcesses(2, (ROOT,))
    slots.start()
    yield slots
    slots.close()


async def run(pool: SlotProcesses, target: str, timeout: float | None = None, **args: Any) -> str:
    return await pool.run(1, target, args, timeout, 1_000_000)


async def test_results_and_errors(pool: SlotProcesses) -> None:
    assert await run(pool, "tests.tasks:add", a=1, b=2) == "3"
    with pytest.raises(TaskFailed) as failed:
        await run(pool, "tests.tasks:boom", message="no")
    assert failed.value.kind == "ValueError" and "no" in failed.value.message
    assert failed.value.tb and "Traceback" in failed.value.tb
    with pytest.raises(TaskFailed) as failed:
        await run(pool, "tests.tasks:not_json")
    assert failed.value.kind == "TypeError"
    assert len(pool.idle) == 2          # the slots survived their tasks' errors


async def test_a_slot_that_dies_fails_its_task_and_is_replaced(pool: SlotProcesses) -> None:
    before = {s.process.pid for s in pool.idle}
    with pytest.raises(TaskFailed) as failed:
        await run(pool, "tests.tasks:exit_now", code=3)
    assert failed.value.kind == "SlotDied" and "exit code 3" in failed.value.message
    both = await asyncio.gather(run(pool, "tests.tasks:add", a=2, b=2),
                                run(pool, "tests.tasks:add", a=3, b=3))
    assert both == ["4", "6"]                 # still two slots: a new process took its place
    assert len(pool.idle) == 2 and {s.process.pid for s in pool.idle} != before
    assert all(s.process.is_alive() for s in pool.idle)


async def test_a_timeout_kills_the_slot_and_the_next_task_runs(pool: SlotProcesses) -> None:
    with pytest.raises(TaskFailed) as failed:
        await run(pool, "tests.tasks:sleep", timeout=0.3, seconds=30)
    assert failed.value.kind == "Timeout"
    assert await run(pool, "tests.tasks:add", a=1, b=1) == "2"


async def test_cancel_stops_a_running_task(pool: SlotProcesses) -> None:
    task = asyncio.ensure_future(pool.run(7, "tests.tasks:sleep", {"seconds": 30}, None, 1000))
    while 7 not in pool.busy:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert pool.cancel(7)
    with pytest.raises(TaskFailed) as failed:
        await asyncio.wait_for(task, 10)
    assert failed.value.kind == "SlotDied"
    assert not pool.cancel(7)


async def test_a_slot_that_died_while_idle_is_not_handed_a_task(pool: SlotProcesses) -> None:
    dead = list(pool.idle)
    assert dead and all(slot.alive() for slot in dead)
    for slot in dead:
        slot.process.kill()
        slot.process.join(5)
    assert not any(slot.alive() for slot in dead)
    assert await run(pool, "tests.tasks:add", a=3, b=4) == "7"
    assert pool.idle and not set(pool.idle) & set(dead)
    assert all(s.alive() and s.process.is_alive() for s in pool.idle)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_replies_and_requests_of_every_size_arrive_whole(loop: str) -> None:
    """A reply over 16 KiB is written in two parts; the loop's non-blocking pipe must wait for
    the second (it once failed such a task with "the task's process died")."""
    import uvloop

    async def main() -> list[int]:
        slots = SlotProcesses(3, (ROOT,))
        slots.start()
        try:
            sizes = [10, 4000, 16_380, 16_390, 70_000, 900_000]
            results = await asyncio.gather(*(
                slots.run(i, "tests.tasks:big_result", {"size": size}, 30, 2_000_000)
                for i, size in enumerate(sizes * 3)))
            echoed = await slots.run(99, "tests.tasks:total", {"xs": [1] * 300_000}, 30,
                                     2_000_000)             # a request of about 1 MB
            return [len(r) for r in results] + [int(float(echoed))]
        finally:
            slots.close()

    runner = asyncio.Runner(loop_factory=uvloop.new_event_loop if loop == "uvloop" else None)
    with runner:
        lengths = runner.run(main())
    assert lengths[:-1] == [size + 2 for size in [10, 4000, 16_380, 16_390, 70_000, 900_000] * 3]
    assert lengths[-1] == 300_000
