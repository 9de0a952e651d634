"""The one place the console meets circus supervision (``daemon.status``/``daemon.supervisor``).

Written against the DESIGN §6 status contract; while the supervision modules are missing the
console falls back to what the store knows (daemon heartbeats) and says that actions on the
daemons are not available. Everything here is blocking: call it from a thread.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from wgops.store.config import Settings
from wgops.store.errors import ConfigError


def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def available() -> bool:
    return _module("daemon.supervisor") is not None


def collect(settings: Settings) -> dict[str, Any] | None:
    """The daemon status document without queue depths (the console has its own), or None
    when supervision is not there.

    ``collect_status`` opens a broker connection on every call to read the depths; polled
    every two seconds from the console's process, that work competes with the UI for the
    interpreter (key presses went from 15 ms to 120 ms at p95 under load). So the console asks
    for it without queues (``queues=False``).
    """
    status = _module("daemon.status")
    if status is None or not hasattr(status, "collect_status"):
        return None
    import inspect

    if "queues" in inspect.signature(status.collect_status).parameters:
        return status.collect_status(settings, queues=False)
    return status.collect_status(settings)


def _supervisor(settings: Settings) -> Any:
    supervisor = _module("daemon.supervisor")
    if supervisor is None or not hasattr(supervisor, "Supervisor"):
        raise ConfigError("daemon supervision is not available in this installation")
    return supervisor.Supervisor(settings)


def start(settings: Settings, schedulers: int = 1, workers: int = 1) -> str:
    from wgops.daemon.circus_config import Plan

    started = _supervisor(settings).start(Plan(schedulers=schedulers, workers=workers))
    return "daemons started" if started is not None else "the arbiter already runs"


def stop(settings: Settings) -> str:
    result = _supervisor(settings).stop()
    return "no arbiter was running" if result is None else "daemons stopped"


def scale(settings: Settings, kind: str, delta: int) -> str:
    """Add or remove daemons; returns at once (the daemons panel shows them arrive)."""
    count = _supervisor(settings).scale(kind, delta, wait=False)
    return f"{kind}s: {count}"
