"""The one place the console meets circus supervision (:mod:`wgops.daemon.status`,
:mod:`wgops.daemon.supervisor`). Everything here is blocking: call it from a thread."""

from __future__ import annotations

from typing import Any

from wgops.daemon.circus_config import Plan
from wgops.daemon.status import collect_status
from wgops.daemon.supervisor import Supervisor
from wgops.store.config import Settings


def collect(settings: Settings) -> dict[str, Any]:
    """The daemon status document without queue depths (the console reads those on its own
    broker link).

    ``collect_status`` with queues opens a broker connection on every call; polled every two
    seconds from the console's process, that work competes with the UI for the interpreter
    (key presses went from 15 ms to 120 ms at p95 under load).
    """
    return collect_status(settings, queues=False)


def start(settings: Settings, schedulers: int = 1, workers: int = 1) -> str:
    started = Supervisor(settings).start(Plan(schedulers=schedulers, workers=workers))
    return "daemons started" if started is not None else "the arbiter already runs"


def stop(settings: Settings) -> str:
    result = Supervisor(settings).stop()
    return "no arbiter was running" if result is None else "daemons stopped"


def scale(settings: Settings, kind: str, delta: int) -> str:
    """Add or remove daemons; returns at once (the daemons panel shows them arrive)."""
    count = Supervisor(settings).scale(kind, delta, wait=False)
    return f"{kind}s: {count}"
