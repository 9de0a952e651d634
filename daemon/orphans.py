"""Daemons of this installation on this host that run outside its arbiter: found, and stopped.

A daemon outlives its arbiter when the arbiter dies and the daemon does not notice (it was
started with the parent watch off, or it was started by hand with ``wgops daemon run``).
``wgops daemon start`` and ``wgops daemon stop`` stop such daemons so that a crashed arbiter
never leaves a second, unsupervised set; ``wgops daemon status`` marks them ``orphan``.

They are found from their rows (``host`` is this host, the row not ``stopped``) and checked
against the process, never by name: the pid must run, its start time must be the row's
``started`` (the kernel's start time of the process that wrote the row, so a reused pid never
matches), its command line must be ``... -m wgops daemon run KIND``, and its environment must
name this installation (the home and namespace its settings load to: another installation on
the same host and database, or a process whose environment cannot be read, is left alone).
Stopping is SIGTERM (a scheduler hands its graphs back, a worker drains), then SIGKILL after
the grace.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from wgops.daemon.circus_config import STOP_MARGIN
from wgops.daemon.probes import db_session
from wgops.daemon.processes import alive, send_signal, tree
from wgops.store.config import Settings
from wgops.store.errors import WgopsError
from wgops.store.liveness import HOST
from wgops.store.models import Scheduler, Worker

logger = logging.getLogger(__name__)

START_SLACK = 1.0       # seconds between a process's start and its row's ``started``
POLL = 0.1


@dataclass(frozen=True)
class Orphan:
    """A daemon of this installation on this host, outside the arbiter."""

    kind: str
    id: str
    pid: int
    process: psutil.Process


def daemon_process(settings: Settings, kind: str, pid: int, started: float | None) \
        -> psutil.Process | None:
    """The live process ``pid`` if it is the ``kind`` daemon of this installation that
    started at ``started``; None otherwise (gone, a reused pid, another program)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if started is None or proc.create_time() > started + START_SLACK:
            return None
        args = proc.cmdline()
        if not _runs_daemon(args, kind):
            return None
        env = proc.environ()
    except psutil.Error:
        return None
    try:
        theirs = Settings.load(env=env)
    except WgopsError:
        return None
    if theirs.namespace != settings.namespace or not _same_path(theirs.home, settings.home):
        return None
    return proc


def _runs_daemon(args: list[str], kind: str) -> bool:
    for i in range(len(args) - 4):
        if args[i:i + 5] == ["-m", "wgops", "daemon", "run", kind]:
            return True
    return False


def _same_path(a: Path, b: Path) -> bool:
    try:
        return Path(a).expanduser().resolve() == b.expanduser().resolve()
    except OSError:
        return False


def find_orphans(settings: Settings, arbiter: psutil.Process | None = None) -> list[Orphan]:
    """This installation's daemons on this host that run outside ``arbiter`` (the running
    arbiter, or None when there is none)."""
    managed = {p.pid for p in tree(arbiter)} if arbiter is not None else set()
    found = []
    with db_session(settings):
        for kind, model in (("scheduler", Scheduler), ("worker", Worker)):
            rows = model.select(model.id, model.pid, model.started).where(
                model.host == HOST, model.state != "stopped")
            for row in rows:
                if row.pid in managed:
                    continue
                proc = daemon_process(settings, kind, row.pid, row.started)
                if proc is not None:
                    found.append(Orphan(kind, row.id, row.pid, proc))
    return found


def stop_orphans(orphans: list[Orphan], grace: float) -> list[int]:
    """SIGTERM each, wait up to ``grace`` (+ a margin) for them to stop, SIGKILL what is
    left (with the processes below it); return the pids that had to be killed."""
    if not orphans:
        return []
    for orphan in orphans:
        logger.warning("stopping %s %s (pid %d): it runs outside any arbiter", orphan.kind,
                       orphan.id, orphan.pid)
        send_signal(orphan.process, signal.SIGTERM)
    deadline = time.monotonic() + grace + STOP_MARGIN
    while time.monotonic() < deadline and any(alive(o.process) for o in orphans):
        time.sleep(POLL)
    killed = []
    for orphan in orphans:
        if alive(orphan.process):
            below = tree(orphan.process)
            logger.warning("%s %s (pid %d) outlived the grace; killing it", orphan.kind,
                           orphan.id, orphan.pid)
            for proc in below:
                send_signal(proc, signal.SIGKILL)
            killed.append(orphan.pid)
            psutil.wait_procs(list(below), timeout=5)
    return killed
