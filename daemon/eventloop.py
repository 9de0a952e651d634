"""The daemons' event loop: uvloop where it is installed, asyncio's own otherwise.

A daemon's time goes to small I/O callbacks (frames in, frames out, futures resolved by the
database thread); uvloop runs them in C. Measured with ``python -m bench.profile``: the
worker's CPU per no-op task fell by about a fifth. The benchmark's bare broker loop runs on
the same loop, so the ratios compare like with like. ``WGOPS_EVENT_LOOP=asyncio`` turns it
off (to rule it out when chasing a problem).
"""

from __future__ import annotations

import asyncio
import os
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
