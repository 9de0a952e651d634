"""The circus configuration of an installation, as pure functions of its settings.

One arbiter per ``$WGOPS_HOME``, with a generated ini under ``$WGOPS_HOME/circus/``: control
and pub/sub endpoints as ``ipc://`` sockets there (TCP on 127.0.0.1 with free ports when the
path is too long for a Unix socket), so two installations never clash. Watchers ``scheduler``
and ``worker`` run ``<python> -m wgops daemon run KIND ...``; their output goes to
``$WGOPS_HOME/logs/KIND.log`` (rotated by circus). With a metrics port, a watcher ``metrics``
runs the Prometheus exporter (``<python> -m wgops metrics --host H --port P``, one process,
``logs/metrics.log``). A watcher that crash-loops is stopped by the
:class:`~wgops.daemon.flapping.CrashLoopGuard` plugin.
"""

from __future__ import annotations

import configparser
import os
import shlex
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wgops.store.config import Settings
from wgops.store.errors import SupervisorError

if TYPE_CHECKING:
    from wgops.daemon.managed_broker import ManagedBroker

KINDS = ("scheduler", "worker")
BROKER_WATCHER = "rabbitmq"
METRICS_WATCHER = "metrics"
METRICS_HOST = "127.0.0.1"
METRICS_PORT = 9464
STOP_MARGIN = 10.0          # seconds circus waits on top of settings.grace before SIGKILL
IPC_MAX = 100               # a Unix socket path must stay under 108 bytes
LOG_MAX_BYTES = 10_000_000
LOG_BACKUPS = 5
FLAPPING = {"attempts": 5, "window": 30, "retry_in": 5, "max_retry": 2}
PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
        """``scheduler``, ``worker``, ``metrics``, ``circus`` (the arbiter) or ``rabbitmq``."""
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


@dataclass(frozen=True)
class Plan:
    """What ``wgops daemon start`` asks for."""

    schedulers: int = 1
    workers: int = 1
    slots: int = 4
    pools: tuple[str, ...] = ("default",)
    managed_broker: bool = False
    metrics_port: int | None = None         # run the exporter as the watcher ``metrics``
    metrics_host: str = METRICS_HOST

    def count(self, kind: str) -> int:
        return self.schedulers if kind == "scheduler" else self.workers


def daemon_command(python: str, kind: str, plan: Plan) -> str:
    """The ``cmd``/``args`` of one daemon's watcher: ``sh -c 'exec ... 2>&1'`` (``exec`` keeps
    the pid, ``2>&1`` gives one log per watcher; circus quotes its own ``shell = True``)."""
    args = [python, "-m", "wgops", "daemon", "run", kind]
    if kind == "worker":
        args += ["--slots", str(plan.slots)]
        for pool in plan.pools:
            args += ["--pool", pool]
    script = "exec " + " ".join(_quote(a) for a in args) + " 2>&1"
    return f"cmd = /bin/sh\nargs = -c {_quote(script)}"


def metrics_command(python: str, plan: Plan) -> str:
    """The ``cmd``/``args`` of the exporter's watcher."""
    args = [python, "-m", "wgops", "metrics", "--host", plan.metrics_host, "--port",
            str(plan.metrics_port)]
    script = "exec " + " ".join(_quote(a) for a in args) + " 2>&1"
    return f"cmd = /bin/sh\nargs = -c {_quote(script)}"


def _quote(arg: str) -> str:
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
    env.setdefault("WGOPS_WATCH_PARENT", "1")     # a daemon stops when its arbiter dies
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
    if plan.metrics_port is not None:
        lines += [f"[watcher:{METRICS_WATCHER}]", metrics_command(python, plan),
                  "numprocesses = 1", "copy_env = True", f"working_dir = {cwd}",
                  "stop_signal = TERM", "graceful_timeout = 10", "respawn = True",
                  "max_retry = 5", "priority = 0",
                  *_stream("stdout_stream", layout.log(METRICS_WATCHER)), ""]
    if broker is not None:
        lines += broker.ini_sections(BROKER_WATCHER,
                                     _stream("stdout_stream", layout.log(BROKER_WATCHER)))
    lines += ["[plugin:flapping]", "use = wgops.daemon.flapping.CrashLoopGuard",
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
