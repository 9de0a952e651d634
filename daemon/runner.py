"""Running one daemon in the foreground: logging, signals, the heartbeat loop.

**An arbiter that dies takes its daemons along.** A daemon run by the circus arbiter (whose
environment sets ``WGOPS_WATCH_PARENT=1``) remembers its parent and looks at every heartbeat:
when it has been re-parented (the arbiter died: SIGKILL, the OOM killer), it stops as on
SIGTERM, so a scheduler hands its graphs back and a worker lets its unfinished tasks be
redelivered. A daemon run by hand (``wgops daemon run``, perhaps under ``nohup``) does not
watch unless asked to; ``WGOPS_WATCH_PARENT=0`` before ``wgops daemon start`` turns the watch
off (tests make orphans this way). The parent-death signal (``PR_SET_PDEATHSIG``) is not
used: it fires when the parent's *thread* that spawned the daemon ends, not the parent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from typing import Any

from wgops.daemon import eventloop
from wgops.store.config import Settings
from wgops.store.errors import WgopsError

logger = logging.getLogger("wgops.daemon")


def default_id(kind: str) -> str:
    host = socket.gethostname().split(".")[0]
    return f"{kind[0]}-{host}-{os.getpid()}"


def parent_to_follow() -> int | None:
    """The parent pid this daemon stops with, or None (no watch)."""
    parent = os.getppid()
    wanted = os.environ.get("WGOPS_WATCH_PARENT", "").strip().lower() in ("1", "on", "true",
                                                                          "yes")
    return parent if wanted and parent > 1 else None


def configure_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO, stream=sys.stderr, force=True,
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
    for noisy in ("aio_pika", "aiormq", "peewee"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def serve(daemon: Any, heartbeat: float) -> None:
    """initialize, tick every ``heartbeat`` seconds until SIGTERM/SIGINT, shutdown."""
    stop = asyncio.Event()
    parent = parent_to_follow()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    starting = asyncio.ensure_future(daemon.initialize())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():                 # stopped while waiting for the broker
        starting.cancel()
        logger.info("%s %s stopped before it was up", type(daemon).__name__, daemon.id)
        return
    stopping.cancel()
    starting.result()
    logger.info("%s %s up", type(daemon).__name__, daemon.id)
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), heartbeat)
            except TimeoutError:
                pass
            if stop.is_set():
                break
            if parent is not None and os.getppid() != parent:
                logger.warning("%s %s: its parent %d is gone (the arbiter died?); stopping",
                               type(daemon).__name__, daemon.id, parent)
                break
            try:
                await daemon.tick()
            except Exception:  # noqa: BLE001 - loop boundary: log and go on
                logger.exception("periodic work failed")
    finally:
        logger.info("%s %s stopping", type(daemon).__name__, daemon.id)
        await daemon.shutdown()


def run_daemon(settings: Settings, kind: str, slots: int = 4,
               pools: tuple[str, ...] = ("default",), daemon_id: str | None = None,
               debug: bool = False) -> None:
    configure_logging(debug)
    daemon_id = daemon_id or default_id(kind)
    masked = settings.masked()
    logger.info("starting %s %s pid %d broker %s database %s namespace %s loop %s", kind,
                daemon_id, os.getpid(), masked["broker"], masked["database"], settings.namespace,
                eventloop.name())
    daemon: Any
    if kind == "scheduler":
        from wgops.daemon.scheduler import SchedulerDaemon

        daemon = SchedulerDaemon(settings, daemon_id)
    else:
        from wgops.daemon.worker import WorkerDaemon

        daemon = WorkerDaemon(settings, daemon_id, slots, pools)
    try:
        eventloop.run(serve(daemon, settings.heartbeat))
    except WgopsError:
        raise
    logger.info("%s %s stopped", kind, daemon_id)
