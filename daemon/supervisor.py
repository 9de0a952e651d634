"""Circus supervision of an installation's daemons (``wgops daemon start|stop|restart|incr|decr``).

One circus arbiter per ``$WGOPS_HOME``. It runs as its own detached ``circusd`` process with a
generated ini under ``$WGOPS_HOME/circus/``: its control and pub/sub endpoints are ``ipc://``
sockets there (TCP on 127.0.0.1 with free ports when the path is too long for a Unix socket),
so two installations never clash. Watchers ``scheduler`` and ``worker`` run
``<python> -m console daemon run KIND ...``; their output goes to ``$WGOPS_HOME/logs/KIND.log``
(rotated by circus). A watcher that crash-loops is stopped by the
:class:`~daemon.flapping.CrashLoopGuard` plugin and reported as ``flapping``.

"Up" means more than "spawned": a process counts once its pid has a row in the Scheduler or
Worker table with state ``running`` and a fresh heartbeat (it has announced itself).

Nothing here imports click or textual: the CLI and the console both use :class:`Supervisor`.
"""

from __future__ import annotations

import configparser
import dataclasses
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from store.config import Settings
from store.errors import WgopsError
from store.transitions import HOST  # the host name daemons record in their rows

if TYPE_CHECKING:
    from daemon.managed_broker import ManagedBroker

logger = logging.getLogger(__name__)

KINDS = ("scheduler", "worker")
BROKER_WATCHER = "rabbitmq"
STOP_MARGIN = 10.0          # seconds circus waits on top of settings.grace before SIGKILL
CALL_TIMEOUT = 5.0
POLL = 0.1
IPC_MAX = 100               # a Unix socket path must stay under 108 bytes
LOG_MAX_BYTES = 10_000_000
LOG_BACKUPS = 5
FLAPPING = {"attempts": 5, "window": 30, "retry_in": 5, "max_retry": 2}
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SupervisorError(WgopsError):
    """The arbiter could not be started, reached or stopped as asked."""


# -- where things live ---------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """The files of one installation's arbiter."""

    home: Path

    @property
    def dir(self) -> Path:
        return self.home / "circus"

    @property
    def ini(self) -> Path:
        return self.dir / "circus.ini"

    @property
    def pidfile(self) -> Path:
        return self.dir / "circusd.pid"

    @property
    def logger_config(self) -> Path:
        return self.dir / "logging.json"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    def log(self, name: str) -> Path:
        """``scheduler``, ``worker``, ``circus`` (the arbiter) or ``rabbitmq``."""
        return self.logs / f"{name}.log"

    @property
    def bootstrap_log(self) -> Path:
        """circusd's own stdout/stderr: what it says before its logging is set up."""
        return self.dir / "circusd.out"

    def sockets(self) -> list[Path]:
        return [self.dir / f"{name}.sock" for name in ("endpoint", "pubsub")]

    def new_endpoints(self) -> dict[str, str]:
        """ipc:// sockets under the home; free TCP ports on 127.0.0.1 if the path is too long."""
        paths = dict(zip(("endpoint", "pubsub_endpoint"), self.sockets()))
        if all(len(str(p)) < IPC_MAX for p in paths.values()):
            return {k: f"ipc://{p}" for k, p in paths.items()}
        return {k: f"tcp://127.0.0.1:{free_port()}" for k in paths}

    def endpoint(self) -> str | None:
        """The control endpoint recorded in the generated ini, if any."""
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(self.ini)
            return parser.get("circus", "endpoint")
        except (configparser.Error, OSError):
            return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- what to run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What ``wgops daemon start`` asks for."""

    schedulers: int = 1
    workers: int = 1
    slots: int = 4
    pools: tuple[str, ...] = ("default",)
    managed_broker: bool = False

    def count(self, kind: str) -> int:
        return self.schedulers if kind == "scheduler" else self.workers


def daemon_command(python: str, kind: str, plan: Plan) -> str:
    """The ``cmd``/``args`` of one daemon's watcher: ``sh -c 'exec ... 2>&1'`` (``exec`` keeps
    the pid, ``2>&1`` gives one log per watcher; circus quotes its own ``shell = True``)."""
    args = [python, "-m", "console", "daemon", "run", kind]
    if kind == "worker":
        args += ["--slots", str(plan.slots)]
        for pool in plan.pools:
            args += ["--pool", pool]
    script = "exec " + " ".join(_quote(a) for a in args) + " 2>&1"
    return f"cmd = /bin/sh\nargs = -c {_quote(script)}"


def _quote(arg: str) -> str:
    import shlex

    quoted = shlex.quote(arg)
    if "$" in quoted or "%" in quoted:
        raise SupervisorError(f"unsupported character in {arg!r} ('$' and '%' are reserved)")
    return quoted


def daemon_environment(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment circusd (and, through ``copy_env``, every daemon) gets."""
    env = dict(os.environ)
    env["WGOPS_HOME"] = str(settings.home)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(PROJECT_ROOT) not in paths:
        paths.append(str(PROJECT_ROOT))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def _stream(name: str, path: Path) -> list[str]:
    return [f"{name}.class = FileStream", f"{name}.filename = {path}",
            f"{name}.max_bytes = {LOG_MAX_BYTES}", f"{name}.backup_count = {LOG_BACKUPS}"]


def render_ini(settings: Settings, layout: Layout, plan: Plan, endpoints: dict[str, str],
               python: str, cwd: str, broker: ManagedBroker | None = None) -> str:
    """The circus configuration of this installation."""
    lines = ["# generated by wgops daemon start; rewritten at every start", "[circus]",
             *(f"{k} = {v}" for k, v in endpoints.items()),
             "statsd = False", "check_delay = 1", f"pidfile = {layout.pidfile}",
             f"loggerconfig = {layout.logger_config}", "loglevel = info", ""]
    graceful = settings.grace + STOP_MARGIN
    for kind in KINDS:
        lines += [f"[watcher:{kind}]", daemon_command(python, kind, plan),
                  f"numprocesses = {plan.count(kind)}", "copy_env = True",
                  f"working_dir = {cwd}", "stop_signal = TERM", f"graceful_timeout = {graceful}",
                  "respawn = True", "max_retry = 5", "priority = 0",
                  f"autostart = {not plan.managed_broker}",
                  *_stream("stdout_stream", layout.log(kind)), ""]
    if broker is not None:
        lines += broker.ini_sections(BROKER_WATCHER,
                                     _stream("stdout_stream", layout.log(BROKER_WATCHER)))
    lines += ["[plugin:flapping]", "use = daemon.flapping.CrashLoopGuard",
              *(f"{k} = {v}" for k, v in FLAPPING.items()), f"logs = {layout.logs}", ""]
    return "\n".join(lines)


def logger_config(layout: Layout) -> dict[str, Any]:
    """circusd's own log: rotated like the watchers' logs."""
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(name)s[%(process)d] "
                                           "[%(levelname)s] %(message)s"}},
        "handlers": {"file": {"class": "logging.handlers.RotatingFileHandler",
                              "filename": str(layout.log("circus")), "formatter": "plain",
                              "maxBytes": LOG_MAX_BYTES, "backupCount": LOG_BACKUPS}},
        "root": {"level": "INFO", "handlers": ["file"]},
    }


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
    pid: int
    processes: int
    killed: list[int]
    seconds: float


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
        """The wgops watchers (and the managed broker's), as circus sees them now."""
        statuses = self.call("status", timeout=timeout)["statuses"]
        out = {}
        for name in (*KINDS, BROKER_WATCHER):
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
        with open(self.layout.dir / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)        # two starts at once: one starts, one waits
            if self.process() is not None:
                return None
            return self._start(plan, timeout, progress or (lambda _msg: None))

    def _start(self, plan: Plan, timeout: float,
               say: Callable[[str], None]) -> dict[str, WatcherInfo]:
        check_database(self.settings)
        extra_env: dict[str, str] = {}
        managed = None
        if not check_broker(self.settings, raise_error=not plan.managed_broker):
            from daemon.managed_broker import ManagedBroker

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
            return self.wait_up(deadline=time.monotonic() + timeout)
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
        while True:
            watchers = self.watchers()
            if initial is None:
                initial = {k: set(w.pids) for k, w in watchers.items()}
            pending = []
            for kind in KINDS:
                info = watchers.get(kind)
                if info is None:
                    continue
                if info.state == "flapping":
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
            return None
        tracked = _tree(arbiter)
        self._stop_daemons_before_broker()
        try:
            self.call("quit", retry_for=min(timeout, 5.0), waiting=False)
        except SupervisorError as exc:
            logger.warning("%s; sending SIGTERM to circusd %d", exc, arbiter.pid)
            _signal(arbiter, signal.SIGTERM)
        deadline = started + timeout
        while time.monotonic() < deadline:
            tracked |= _tree(arbiter)  # anything spawned while stopping
            if not [p for p in tracked if _alive(p)]:
                break
            time.sleep(POLL)
        killed = [p.pid for p in tracked if _alive(p)]
        for proc in tracked:
            if _alive(proc):
                logger.warning("process %d outlived the stop; killing it", proc.pid)
                _signal(proc, signal.SIGKILL)
        psutil.wait_procs([p for p in tracked if p.pid in killed], timeout=5)
        self._clean()
        return StopResult(arbiter.pid, len(tracked) - 1, killed, time.monotonic() - started)

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


# -- helpers -------------------------------------------------------------------------------


def announced_pids(settings: Settings, kind: str, pids: list[int]) -> set[int]:
    """Pids on this host with a running row and a fresh heartbeat in the daemon table."""
    if not pids:
        return set()
    from daemon.status import db_session
    from store.models import Scheduler, Worker

    model = Scheduler if kind == "scheduler" else Worker
    with db_session(settings):
        fresh = time.time() - settings.stale_after
        rows = model.select(model.pid).where(
            model.pid.in_(pids), model.host == HOST, model.state == "running",
            model.heartbeat >= fresh)
        return {row.pid for row in rows}


def check_database(settings: Settings) -> None:
    """Raise Unreachable if the database cannot be reached; create the schema if needed."""
    from store.db import Store
    from store.migrations import migrate

    store = Store(settings.db_url).connect()
    try:
        migrate(store)
    finally:
        store.close()


def check_broker(settings: Settings, raise_error: bool = True, timeout: float = 5.0) -> bool:
    """Whether the broker accepts a connection (with the configured credentials)."""
    import aio_pika

    from store.config import mask_url
    from store.errors import Unreachable

    async def attempt() -> None:
        connection = await aio_pika.connect(settings.broker_url, timeout=timeout)
        await connection.close()

    from daemon.status import quiet_amqp, run_coroutine

    try:
        with quiet_amqp():
            run_coroutine(attempt())
        return True
    except Exception as exc:  # noqa: BLE001 - any failure to connect means unreachable
        if raise_error:
            raise Unreachable(f"broker {mask_url(settings.broker_url)} unreachable: "
                              f"{exc or type(exc).__name__}") from None
        return False


def last_line(path: Path, limit: int = 200) -> str:
    """The last non-empty line of a log file, shortened; '' when there is none."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            lines = [ln.strip() for ln in fh.read().decode("utf-8", "replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln]
    text = lines[-1] if lines else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tail_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of a log file (reading only its end)."""
    if count <= 0:
        return []
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            block = 8192
            data = b""
            while size > 0 and data.count(b"\n") <= count:
                step = min(block, size)
                size -= step
                fh.seek(size)
                data = fh.read(step) + data
                block *= 2
    except OSError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-count:]


def follow_files(paths: dict[str, Path], interval: float = 0.25,
                 stop: Callable[[], bool] = lambda: False) -> Iterator[tuple[str, str]]:
    """Yield (name, line) as lines are appended to the files; follows rotation."""
    offsets: dict[str, tuple[int, int]] = {}
    for name, path in paths.items():
        try:
            st = path.stat()
            offsets[name] = (st.st_ino, st.st_size)
        except OSError:
            offsets[name] = (0, 0)
    partial: dict[str, bytes] = {name: b"" for name in paths}
    while not stop():
        for name, path in paths.items():
            try:
                st = path.stat()
            except OSError:
                continue
            inode, offset = offsets[name]
            if st.st_ino != inode or st.st_size < offset:
                offset = 0          # rotated or truncated: read the new file from its start
            if st.st_size == offset:
                offsets[name] = (st.st_ino, offset)
                continue
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = partial[name] + fh.read()
                offsets[name] = (st.st_ino, fh.tell())
            *complete, partial[name] = data.split(b"\n")
            for line in complete:
                yield name, line.decode("utf-8", "replace")
        time.sleep(interval)


def _tree(proc: psutil.Process) -> set[psutil.Process]:
    try:
        return {proc, *proc.children(recursive=True)}
    except psutil.Error:
        return {proc}


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)   # psutil checks the pid still names the same process
    except psutil.Error:
        pass


__all__ = [
    "Layout",
    "Plan",
    "StopResult",
    "Supervisor",
    "SupervisorError",
    "WatcherInfo",
    "announced_pids",
    "arbiter_process",
    "check_broker",
    "check_database",
    "follow_files",
    "last_line",
    "tail_lines",
]
