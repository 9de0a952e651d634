"""A private RabbitMQ node run by the installation's circus arbiter (``--managed-broker``).

For a machine where ``rabbitmq-server`` is installed but no broker is reachable: the node is
named ``wgops-<hash of $WGOPS_HOME>@localhost``, listens on 127.0.0.1 on a free port (the same
one again at the next start when it is still free), keeps its database and logs under
``$WGOPS_HOME/rabbitmq`` and its erlang cookie there too (its ``HOME``). Its
``consumer_timeout`` is the installation's (``settings.consumer_timeout``), so long tasks and
the workers agree. ``broker_url`` is written into ``config.toml`` so every later command of
this installation finds the node.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wgops.daemon.logfiles import last_line
from wgops.daemon.probes import check_broker
from wgops.store.config import Settings
from wgops.store.errors import ConfigError, SupervisorError

REAL_SCRIPT = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
GRACEFUL = 60


def find_server() -> Path:
    """The ``rabbitmq-server`` start script that runs the node in the foreground as the
    current user (Debian's /usr/sbin wrapper would switch to the rabbitmq user)."""
    if REAL_SCRIPT.exists():
        return REAL_SCRIPT
    found = shutil.which("rabbitmq-server")
    if found is None:
        raise ConfigError("--managed-broker needs rabbitmq-server (Debian/Ubuntu: "
                          "apt-get install rabbitmq-server), or point WGOPS_BROKER_URL at a "
                          "running broker")
    return Path(found)


def _free_port(preferred: int | None = None) -> int:
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise ConfigError("no free port for the managed broker")  # pragma: no cover


@dataclass(frozen=True)
class ManagedBroker:
    settings: Settings
    base: Path
    node: str
    port: int
    dist_port: int
    server: Path

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @classmethod
    def prepare(cls, settings: Settings) -> ManagedBroker:
        """Choose ports, write rabbitmq.conf and enabled_plugins, record the node."""
        server = find_server()
        base = settings.home / "rabbitmq"
        for sub in ("mnesia", "log"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(str(settings.home.resolve()).encode()).hexdigest()[:8]
        record = base / "node.json"
        try:
            old = json.loads(record.read_text())
        except (OSError, ValueError):
            old = {}
        port = _free_port(old.get("port"))
        dist_port = _free_port(old.get("dist_port"))
        while dist_port == port:
            dist_port = _free_port()
        broker = cls(settings, base, f"wgops-{digest}@localhost", port, dist_port, server)
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{port}\n"
            f"consumer_timeout = {int(settings.consumer_timeout * 1000)}\n"
            "log.console = true\nlog.file = false\n")
        (base / "enabled_plugins").write_text("[].\n")
        record.write_text(json.dumps({"node": broker.node, "port": port,
                                      "dist_port": dist_port, "url": broker.url}))
        broker.remember_url()
        return broker

    def env(self) -> dict[str, str]:
        b = self.base
        return {"HOME": str(b), "RABBITMQ_NODENAME": self.node,
                "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(b / "mnesia"), "RABBITMQ_LOG_BASE": str(b / "log"),
                "RABBITMQ_CONFIG_FILE": str(b / "rabbitmq.conf"), "RABBITMQ_LOGS": "-",
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(b / "enabled_plugins"),
                "RABBITMQ_PID_FILE": str(b / "rabbitmq.pid")}

    def ini_sections(self, name: str, stream: list[str]) -> list[str]:
        """The circus watcher ``name`` running the node, and its environment section."""
        return [f"[watcher:{name}]", f"cmd = {self.server}", "numprocesses = 1",
                "singleton = True", "copy_env = True", f"working_dir = {self.base}",
                "stop_signal = TERM", f"graceful_timeout = {GRACEFUL}", "priority = 10",
                "autostart = True", *stream, "",
                f"[env:{name}]", *(f"{k} = {v}" for k, v in self.env().items()), ""]

    def remember_url(self) -> None:
        """Write ``broker_url`` into config.toml unless it already names another broker."""
        config = self.settings.config_file
        try:
            text = config.read_text()
            current = tomllib.loads(text).get("broker_url")
        except FileNotFoundError:
            text, current = "", None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{config}: {exc}") from None
        line = f'broker_url = "{self.url}"  # private node (wgops daemon start --managed-broker)'
        if current == self.url:
            return
        if current is None:
            config.write_text(line + "\n" + text)
            return
        if "--managed-broker" in text:
            lines = [line if ln.startswith("broker_url") else ln for ln in text.splitlines()]
            config.write_text("\n".join(lines) + "\n")

    def wait_ready(self, deadline: float, alive: Callable[[], bool]) -> None:
        """Wait until the node accepts AMQP connections."""
        probe = Settings(home=self.settings.home, broker_url=self.url,
                         db_url=self.settings.db_url)
        while True:
            if _port_open(self.port) and check_broker(probe, raise_error=False, timeout=3):
                return
            if not alive():
                raise SupervisorError("the arbiter exited while the broker started")
            if time.monotonic() > deadline:
                log = self.settings.home / "logs" / "rabbitmq.log"
                raise SupervisorError(f"the private RabbitMQ node did not open port {self.port}: "
                                      f"{last_line(log)} (see {log})")
            time.sleep(0.25)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
