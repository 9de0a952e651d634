"""The event loop: the daemons run on uvloop where it is installed (asyncio's own otherwise), and
synchronous code runs a coroutine with :func:`run_coroutine`.

A daemon's time goes to small I/O callbacks (frames in, frames out, futures resolved by the
database thread); uvloop runs them in C. Measured with ``python -m bench.profile``: the
worker's CPU per no-op task fell by about a fifth. The benchmark's bare broker loop runs on
the same loop, so the ratios compare like with like. ``WGOPS_EVENT_LOOP=asyncio`` turns it
off (to rule it out when chasing a problem).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    if os.environ.get("WGOPS_EVENT_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def name() -> str:
    return "uvloop" if loop_factory() else "asyncio"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the daemons' event loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end from synchronous code, even on a thread whose loop runs
    (then on a thread of its own)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            error.append(exc)

    thread = threading.Thread(target=target, name="wgops-run-coroutine")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
