"""What the chaos soak runs on: a private PostgreSQL, a private RabbitMQ, hosts with arbiters.

Nothing shared is touched: the PostgreSQL cluster is made with ``initdb`` under the soak's
temporary directory (run as the ``postgres`` user when the soak runs as root) and listens on a
free port of 127.0.0.1; the RabbitMQ node is a private one (:mod:`wgops.daemon.managed_broker`'s
layout, under the same directory) on another free port. Hosts are network namespaces of
:mod:`tests.hosts` reaching both through relays; each runs its own circus arbiter
(``wgops daemon start`` inside the namespace) with a scheduler and a worker. Every process is
found and stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import psutil

from tests.hosts import Host, Net
from wgops.daemon.managed_broker import ManagedBroker
from wgops.store.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        raise SystemExit("soak: PostgreSQL's initdb is not installed")
    return versions[-1].parent


class Postgres:
    """A private PostgreSQL cluster under ``base`` (initdb/pg_ctl)."""

    def __init__(self, base: Path):
        self.dir = base / "pg"
        self.port = free_port()
        self.bin = _pg_bin()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str, timeout: float = 120) -> None:
        # never a pipe: the server started by pg_ctl would inherit it and hold it open
        with open(self.dir.parent / "pg_ctl.out", "ab") as out:
            subprocess.run([*self.as_user, *args], check=True, stdin=subprocess.DEVNULL,
                           stdout=out, stderr=subprocess.STDOUT, timeout=timeout)

    def start(self) -> None:
        self.dir.mkdir(parents=True)
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.dir), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8")
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} "
                "-c max_connections=300 -c fsync=off -c synchronous_commit=off")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir), "-l",
                  str(self.dir / "server.log"), "-o", opts, "-w", "start")
        import psycopg2

        conn = psycopg2.connect(self.url("postgres"))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE soak")
        conn.close()

    def url(self, db: str = "soak") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def restart(self) -> None:
        """A fast restart: every connection is cut, open transactions roll back."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir), "-l",
                  str(self.dir / "server.log"), "-m", "fast", "-w", "restart")

    def stop(self) -> None:
        if (self.dir / "postmaster.pid").exists():
            subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.dir), "-m",
                            "immediate", "-w", "stop"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)


class Rabbit:
    """A private RabbitMQ node under ``base``, on a free port of 127.0.0.1."""

    def __init__(self, base: Path):
        home = base / "rabbit-home"
        home.mkdir(parents=True)
        self.node = ManagedBroker.prepare(Settings(home=home, broker_url="amqp://x/",
                                                   db_url="sqlite://"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self.node.port

    def start(self) -> None:
        log = open(self.node.base / "server.log", "ab")  # noqa: SIM115 - the node's whole life
        self.proc = subprocess.Popen([str(self.node.server)], env={**os.environ,
                                                                   **self.node.env()},
                                     stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        proc = self.proc
        self.node.wait_ready(time.monotonic() + 120, lambda: proc.poll() is None)

    def ctl(self, *args: str) -> None:
        # the script beside the server's (Debian's /usr/sbin wrapper switches to the rabbitmq
        # user, whose erlang cookie is not this node's)
        ctl = self.node.server.parent / "rabbitmqctl"
        subprocess.run([str(ctl) if ctl.exists() else "rabbitmqctl", "-n", self.node.node,
                        *args], check=True,
                       capture_output=True, timeout=120, env={**os.environ, **self.node.env()})

    def restart(self) -> None:
        """stop_app / start_app: every connection is closed, durable queues are recovered."""
        self.ctl("stop_app")
        self.ctl("start_app")
        proc = self.proc
        assert proc is not None
        self.node.wait_ready(time.monotonic() + 120, lambda: proc.poll() is None)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.ctl("stop")
            self.proc.wait(60)
        except (subprocess.SubprocessError, OSError):
            _kill_tree(self.proc.pid)


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` first (it can do nothing more), then what it had started."""
    try:
        proc = psutil.Process(pid)
        children = proc.children(recursive=True)
        proc.kill()
    except psutil.NoSuchProcess:
        return
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


class ArbiterHost:
    """A :class:`~tests.hosts.Host` whose daemons run under its own circus arbiter."""

    def __init__(self, host: Host, slots: int):
        self.host = host
        self.slots = slots
        self.pidfile = Path(host.env["WGOPS_HOME"]) / "circus" / "circusd.pid"
        self.known: dict[int, float] = {}  # pid -> start time of every arbiter and daemon seen
        self.failures: list[str] = []      # why a `daemon start` failed (then retried)

    def start(self, tries: int = 3) -> int:
        """``wgops daemon start`` inside the namespace, again (at most ``tries`` times) while
        it fails; returns how many attempts failed (``failures`` keeps their messages)."""
        failed = 0
        while True:
            out = subprocess.run(self.host.ns_command([
                sys.executable, "-m", "wgops", "daemon", "start", "--schedulers", "1",
                "--workers", "1", "--slots", str(self.slots), "--timeout", "120"]),
                env=self.host.env, capture_output=True, text=True, timeout=180,
                cwd=str(self.host.net.root))
            self.pids()
            if out.returncode == 0:
                return failed
            failed += 1
            self.failures.append((out.stdout + out.stderr).strip().splitlines()[-1:][0]
                                 if (out.stdout + out.stderr).strip() else "no output")
            if failed >= tries:
                raise RuntimeError(f"daemon start on {self.host.ns}: {out.stdout}{out.stderr}")
            time.sleep(1)

    def arbiter(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if psutil.pid_exists(pid) else None

    def pids(self) -> dict[str, list[int]]:
        """``{"arbiter": [pid], "scheduler": [...], "worker": [...]}`` as running now."""
        out: dict[str, list[int]] = {"arbiter": [], "scheduler": [], "worker": []}
        arbiter = self.arbiter()
        if arbiter is None:
            return out
        out["arbiter"].append(arbiter)
        try:
            children = psutil.Process(arbiter).children(recursive=True)
        except psutil.NoSuchProcess:
            return out
        for child in children:
            try:
                cmd = child.cmdline()
            except psutil.Error:
                continue
            for kind in ("scheduler", "worker"):
                if "run" in cmd and kind in cmd and "-c" not in cmd:
                    out[kind].append(child.pid)
        for pid in (p for pids in out.values() for p in pids):
            with suppress(psutil.Error):
                self.known.setdefault(pid, psutil.Process(pid).create_time())
        return out

    def kill(self, kind: str) -> int | None:
        """SIGKILL this host's ``kind`` (``arbiter``: with every process under it)."""
        pids = self.pids()[kind]
        if not pids:
            return None
        if kind == "arbiter":
            _kill_tree(pids[0])
        else:
            os.kill(pids[0], signal.SIGKILL)
        return pids[0]

    def stop(self) -> None:
        """``daemon stop`` (graceful), then SIGKILL whatever of ours still runs."""
        subprocess.run(self.host.ns_command([sys.executable, "-m", "wgops", "daemon", "stop",
                                             "--timeout", "30"]), env=self.host.env,
                       capture_output=True, timeout=90, cwd=str(self.host.net.root))
        self.pids()
        for pid, started in self.known.items():
            with suppress(psutil.Error):     # only if it is still the very process we saw
                if psutil.Process(pid).create_time() == started:
                    _kill_tree(pid)


def make_hosts(net: Net, count: int, slots: int) -> list[ArbiterHost]:
    hosts = []
    for _ in range(count):
        host = net.host()
        host.cli("init")
        hosts.append(ArbiterHost(host, slots))
    return hosts
