"""The circus client of one installation: start, stop, restart and scale its daemons.

The arbiter runs as its own detached ``circusd`` process with the configuration that
:mod:`wgops.daemon.circus_config` renders. "Up" means more than "spawned": a process counts
once its daemon row says it is alive and accepts work (it has announced itself,
:func:`wgops.daemon.probes.announced_pids`).

Nothing here imports click or textual: the CLI and the console both use :class:`Supervisor`.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from wgops.daemon.circus_config import (
    BROKER_WATCHER,
    KINDS,
    METRICS_WATCHER,
    STOP_MARGIN,
    Layout,
    Plan,
    daemon_environment,
    logger_config,
    render_ini,
)
from wgops.daemon.logfiles import last_line
from wgops.daemon.managed_broker import ManagedBroker
from wgops.daemon.orphans import Orphan, find_orphans, stop_orphans
from wgops.daemon.probes import (
    announced_pids,
    check_broker,
    check_database,
    check_port_free,
    http_answers,
)
from wgops.daemon.processes import alive, send_signal, tree
from wgops.store.config import Settings
from wgops.store.errors import SupervisorError

logger = logging.getLogger(__name__)

CALL_TIMEOUT = 5.0
POLL = 0.1
START_GRACE = 10.0      # s a watcher may stay not-yet-started at an arbiter's start


# -- talking to the arbiter ----------------------------------------------------------------


@dataclass
class WatcherInfo:
    name: str
    status: str                 # active | stopped | stopping | starting
    numprocesses: int
    pids: list[int] = field(default_factory=list)

    @property
    def state(self) -> str:
        """``running``, ``idle`` (asked for none), ``flapping`` (circus stopped it although
        processes are asked for) or circus's transient status."""
        if self.status == "stopped":
            return "flapping" if self.numprocesses > 0 else "idle"
        return "running" if self.status == "active" else self.status


@dataclass
class StopResult:
    pid: int | None                 # the arbiter's (None: none ran, only orphans were stopped)
    processes: int
    killed: list[int]
    seconds: float
    orphans: list[int] = field(default_factory=list)   # daemons that ran outside any arbiter


def arbiter_process(layout: Layout) -> psutil.Process | None:
    """The installation's live circusd, from its pid file (checked against its command line)."""
    try:
        pid = int(layout.pidfile.read_text().strip())
        proc = psutil.Process(pid)
        cmdline = " ".join(proc.cmdline())
        if proc.status() == psutil.STATUS_ZOMBIE or str(layout.ini) not in cmdline:
            return None
        return proc
    except (OSError, ValueError, psutil.Error):
        return None


class Supervisor:
    """One installation's arbiter: start, stop, restart, scale, inspect."""

    def __init__(self, settings: Settings, python: str | None = None):
        self.settings = settings
        self.layout = Layout(settings.home)
        self.python = python or sys.executable
        self.orphans_killed: list[int] = []

    # -- low level ------------------------------------------------------------------------

    def process(self) -> psutil.Process | None:
        return arbiter_process(self.layout)

    def call(self, command: str, timeout: float = CALL_TIMEOUT, retry_for: float = 0.0,
             **props: Any) -> dict[str, Any]:
        """One circus command. A conflict with a command still running in the arbiter (a
        graceful decr, a reload) is retried for ``retry_for`` seconds."""
        from circus.client import CircusClient
        from circus.exc import CallError

        endpoint = self.layout.endpoint()
        if endpoint is None:
            raise SupervisorError(f"no arbiter configuration in {self.layout.dir}")
        deadline = time.monotonic() + retry_for
        while True:
            client = CircusClient(endpoint=endpoint, timeout=timeout)
            try:
                reply = client.send_message(command, **props)
            except CallError as exc:
                raise SupervisorError(f"arbiter at {endpoint} does not answer {command!r}: "
                                      f"{exc}") from None
            finally:
                client.stop()
            if reply.get("status") == "ok":
                return reply
            reason = str(reply.get("reason", reply))
            busy = "already running" in reason or "restarting" in reason
            if busy and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            raise SupervisorError(f"circus {command}: {reason}")

    def watchers(self, timeout: float = CALL_TIMEOUT) -> dict[str, WatcherInfo]:
        """The wgops watchers (the daemons, the exporter's, the managed broker's), as circus
        sees them now."""
        statuses = self.call("status", timeout=timeout)["statuses"]
        out = {}
        for name in (*KINDS, METRICS_WATCHER, BROKER_WATCHER):
            if name not in statuses:
                continue
            pids = self.call("list", timeout=timeout, name=name)["pids"]
            num = self.call("get", timeout=timeout, name=name,
                            keys=["numprocesses"])["options"]["numprocesses"]
            out[name] = WatcherInfo(name, statuses[name], int(num), sorted(int(p) for p in pids))
        return out

    def announced(self, kind: str, pids: list[int]) -> set[int]:
        """Those of ``pids`` whose daemon has a running row with a fresh heartbeat."""
        return announced_pids(self.settings, kind, pids)

    # -- start ----------------------------------------------------------------------------

    def start(self, plan: Plan, timeout: float = 60.0,
              progress: Callable[[str], None] | None = None) -> dict[str, WatcherInfo] | None:
        """Start the arbiter and wait until every daemon has announced itself.

        Returns None (and changes nothing) when the arbiter already runs. Raises
        :class:`~store.errors.Unreachable` when the broker or database cannot be reached and
        :class:`SupervisorError` otherwise; on failure, whatever was started is stopped."""
        self.layout.dir.mkdir(parents=True, exist_ok=True)
        say = progress or (lambda _msg: None)
        with open(self.layout.dir / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)        # two starts at once: one starts, one waits
            for orphan in self.stop_orphans():
                say(f"stopped {orphan.kind} {orphan.id} (pid {orphan.pid}): it ran outside "
                    "any arbiter")
            if self.process() is not None:
                return None
            return self._start(plan, timeout, say)

    def _start(self, plan: Plan, timeout: float,
               say: Callable[[str], None]) -> dict[str, WatcherInfo]:
        check_database(self.settings)
        if plan.metrics_port is not None:
            check_port_free(plan.metrics_host, plan.metrics_port)
        extra_env: dict[str, str] = {}
        managed = None
        if not check_broker(self.settings, raise_error=not plan.managed_broker):
            managed = ManagedBroker.prepare(self.settings)
            extra_env["WGOPS_BROKER_URL"] = managed.url
            say(f"starting a private RabbitMQ node {managed.node} on 127.0.0.1:{managed.port}"
                f" (its broker_url is in {self.settings.config_file})")
            if os.environ.get("WGOPS_BROKER_URL"):
                say("note: WGOPS_BROKER_URL in this environment overrides config.toml; "
                    f"unset it or export WGOPS_BROKER_URL={managed.url}")
        elif plan.managed_broker:
            plan = dataclasses.replace(plan, managed_broker=False)
            say("a broker is reachable; --managed-broker not needed")
        self._write_config(plan, managed)
        proc = self._spawn(daemon_environment(self.settings, extra_env))
        try:
            self._wait_arbiter(proc, deadline=time.monotonic() + 20)
            if managed is not None:
                managed.wait_ready(deadline=time.monotonic() + 60, alive=lambda: self.process()
                                   is not None)
                for kind in KINDS:
                    self.call("start", name=kind, retry_for=10, waiting=True)
            deadline = time.monotonic() + timeout
            watchers = self.wait_up(deadline=deadline)
            if plan.metrics_port is not None:
                self.wait_metrics(plan.metrics_host, plan.metrics_port, deadline)
            return watchers
        except BaseException:
            say("start failed; stopping what was started")
            try:
                self.stop(timeout=self.settings.grace + STOP_MARGIN + 10)
            except Exception:  # noqa: BLE001 - the first error is the one to report
                logger.exception("stopping after a failed start")
            raise

    def _write_config(self, plan: Plan, broker: ManagedBroker | None) -> None:
        layout = self.layout
        layout.dir.mkdir(parents=True, exist_ok=True)
        layout.logs.mkdir(parents=True, exist_ok=True)
        for stale in (layout.pidfile, *layout.sockets()):
            stale.unlink(missing_ok=True)
        layout.logger_config.write_text(json.dumps(logger_config(layout), indent=2))
        text = render_ini(self.settings, layout, plan, layout.new_endpoints(), self.python,
                          os.getcwd(), broker)
        layout.ini.write_text(text)

    def _spawn(self, env: dict[str, str]) -> subprocess.Popen[bytes]:
        circusd = Path(self.python).with_name("circusd")
        cmd = [str(circusd)] if circusd.exists() else [self.python, "-m", "circus.circusd"]
        with open(self.layout.bootstrap_log, "ab") as out:
            proc = subprocess.Popen([*cmd, str(self.layout.ini)], env=env, cwd=self.layout.dir,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    start_new_session=True, close_fds=True)
        # reap it if it exits while this process lives on (the console)
        threading.Thread(target=proc.wait, name="circusd-reaper", daemon=True).start()
        return proc

    def _wait_arbiter(self, proc: subprocess.Popen[bytes], deadline: float) -> None:
        while True:
            if proc.poll() is not None:
                raise SupervisorError(f"circusd exited with {proc.returncode}: "
                                      f"{last_line(self.layout.bootstrap_log)}")
            if self.process() is not None:
                try:
                    self.call("status", timeout=1.0)
                    return
                except SupervisorError:
                    pass
            if time.monotonic() > deadline:
                raise SupervisorError("circusd did not answer within 20s: "
                                      f"{last_line(self.layout.bootstrap_log)}")
            time.sleep(POLL)

    def wait_up(self, deadline: float,
                replaced: dict[str, set[int]] | None = None) -> dict[str, WatcherInfo]:
        """Wait until each watcher runs its count of processes, all announced, and none of the
        ``replaced`` pids is left. Fails early when daemons keep exiting (a crash loop)."""
        replaced = replaced or {}
        initial: dict[str, set[int]] | None = None
        seen: dict[str, set[int]] = {k: set() for k in KINDS}
        began = time.monotonic()
        active: set[str] = set()
        while True:
            watchers = self.watchers()
            if initial is None:
                initial = {k: set(w.pids) for k, w in watchers.items()}
            pending = []
            for kind in KINDS:
                info = watchers.get(kind)
                if info is None:
                    continue
                if info.status == "active":
                    active.add(kind)
                # a new arbiter answers before it has started every watcher: one it has not
                # started yet is "stopped" too; flapping is stopped after running (or late)
                if info.state == "flapping" and (kind in active or
                                                 time.monotonic() - began > START_GRACE):
                    raise SupervisorError(f"{kind} daemons keep exiting and circus stopped them:"
                                          f" {self.log_hint(kind)}")
                before = initial.get(kind, set())
                seen[kind].update(set(info.pids) - before)
                kept = len(before - replaced.get(kind, set()))
                if len(seen[kind]) - max(0, info.numprocesses - kept) > 2:
                    raise SupervisorError(f"{kind} daemons keep exiting: {self.log_hint(kind)}")
                if (len(info.pids) != info.numprocesses or replaced.get(kind, set()) & set(
                        info.pids) or self.announced(kind, info.pids) != set(info.pids)):
                    pending.append(kind)
            if not pending:
                return watchers
            if time.monotonic() > deadline:
                raise SupervisorError(f"timed out waiting for {' and '.join(pending)} daemons "
                                      f"to announce themselves: {self.log_hint(pending[0])}")
            time.sleep(POLL * 2)

    def wait_metrics(self, host: str, port: int, deadline: float) -> None:
        """Wait until the exporter answers on ``/metrics``; fail early if it keeps exiting."""
        while not http_answers(host, port, "/metrics"):
            info = self.watchers().get(METRICS_WATCHER)
            if info is not None and info.state == "flapping":
                raise SupervisorError("the metrics exporter keeps exiting and circus stopped "
                                      f"it: {self.log_hint(METRICS_WATCHER)}")
            if time.monotonic() > deadline:
                raise SupervisorError(f"the metrics exporter does not answer on {host}:{port}:"
                                      f" {self.log_hint(METRICS_WATCHER)}")
            time.sleep(POLL * 2)

    def log_hint(self, name: str) -> str:
        path = self.layout.log(name)
        return f"{last_line(path) or 'no output'} (see {path})"

    # -- stop -----------------------------------------------------------------------------

    def stop(self, timeout: float | None = None) -> StopResult | None:
        """Quit the arbiter gracefully (workers drain, schedulers hand back their graphs) and
        wait until it and every process below it are gone; what outlives ``timeout`` is
        killed by pid. None when no arbiter runs."""
        started = time.monotonic()
        timeout = timeout if timeout is not None else self.settings.grace + STOP_MARGIN + 15
        arbiter = self.process()
        if arbiter is None:
            self._clean()
            orphans = self.stop_orphans()
            if not orphans:
                return None
            return StopResult(None, 0, self.orphans_killed, time.monotonic() - started,
                              [o.pid for o in orphans])
        tracked = tree(arbiter)
        self._stop_daemons_before_broker()
        try:
            self.call("quit", retry_for=min(timeout, 5.0), waiting=False)
        except SupervisorError as exc:
            logger.warning("%s; sending SIGTERM to circusd %d", exc, arbiter.pid)
            send_signal(arbiter, signal.SIGTERM)
        deadline = started + timeout
        while time.monotonic() < deadline:
            tracked |= tree(arbiter)  # anything spawned while stopping
            if not [p for p in tracked if alive(p)]:
                break
            time.sleep(POLL)
        killed = [p.pid for p in tracked if alive(p)]
        for proc in tracked:
            if alive(proc):
                logger.warning("process %d outlived the stop; killing it", proc.pid)
                send_signal(proc, signal.SIGKILL)
        psutil.wait_procs([p for p in tracked if p.pid in killed], timeout=5)
        self._clean()
        orphans = self.stop_orphans()
        return StopResult(arbiter.pid, len(tracked) - 1, killed + self.orphans_killed,
                          time.monotonic() - started, [o.pid for o in orphans])

    def orphans(self) -> list[Orphan]:
        """This installation's daemons on this host that run outside its arbiter (see
        :mod:`wgops.daemon.orphans`); empty when the database cannot be read."""
        try:
            return find_orphans(self.settings, self.process())
        except Exception:  # noqa: BLE001 - a stop or start goes on without them (no tables yet)
            logger.debug("looking for daemons outside the arbiter", exc_info=True)
            return []

    def stop_orphans(self) -> list[Orphan]:
        """Stop :meth:`orphans` (SIGTERM, SIGKILL after the grace); the pids that had to be
        killed are in ``orphans_killed``."""
        found = self.orphans()
        self.orphans_killed = stop_orphans(found, self.settings.grace)
        return found

    def _stop_daemons_before_broker(self) -> None:
        """With a managed broker, the daemons stop (drain, hand back) while it still runs."""
        try:
            if BROKER_WATCHER not in self.call("status", timeout=2.0)["statuses"]:
                return
            for kind in KINDS:
                self.call("stop", name=kind, waiting=True, retry_for=5.0,
                          timeout=self.settings.grace + STOP_MARGIN + 5)
        except SupervisorError as exc:
            logger.warning("stopping the daemons before the broker: %s", exc)

    def _clean(self) -> None:
        if self.process() is None:
            for path in (self.layout.pidfile, *self.layout.sockets()):
                path.unlink(missing_ok=True)

    # -- restart and scale ----------------------------------------------------------------

    def restart(self, timeout: float | None = None) -> dict[str, WatcherInfo]:
        """Rolling restart, schedulers first: circus starts the new processes, then stops the
        old ones gracefully, so graphs keep running throughout."""
        timeout = timeout if timeout is not None else self.settings.grace + STOP_MARGIN + 60
        watchers = self.watchers()
        for kind in KINDS:
            info = watchers.get(kind)
            if info is None or info.numprocesses == 0:
                continue
            old = {kind: set(info.pids)}
            if info.status == "stopped":
                self.call("start", name=kind, retry_for=timeout, waiting=True)
            else:
                self.call("reload", name=kind, graceful=True, retry_for=timeout)
            self.wait_up(time.monotonic() + timeout, replaced=old)
        if METRICS_WATCHER in watchers:
            self.call("restart", name=METRICS_WATCHER, retry_for=timeout, waiting=True)
        return self.watchers()

    def scale(self, kind: str, delta: int, wait: bool = True,
              timeout: float | None = None) -> int:
        """Add (``delta`` > 0) or remove daemons of one kind; returns the new count. Removed
        daemons stop gracefully; with ``wait``, returns once the count is reached and every
        new daemon has announced itself."""
        if kind not in KINDS:
            raise SupervisorError(f"unknown daemon kind {kind!r}")
        timeout = timeout if timeout is not None else self.settings.grace + STOP_MARGIN + 60
        before = self.watchers()[kind]
        if delta > 0:
            reply = self.call("incr", name=kind, nb=delta, retry_for=timeout, waiting=False)
            if before.status == "stopped":
                self.call("start", name=kind, retry_for=timeout, waiting=True)
        elif delta < 0:
            reply = self.call("decr", name=kind, nb=-delta, retry_for=timeout, waiting=False)
        else:
            return before.numprocesses
        target = int(reply.get("numprocesses", max(0, before.numprocesses + delta)))
        if wait:
            self.wait_up(time.monotonic() + timeout)
        return target

