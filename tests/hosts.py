"""Hosts in tests: installations in network namespaces of the test's own, and cuts between them.

A :class:`Net` is one test's network: a private /24 in 10.200.0.0/13 (reserved with a lock file
so that tests running in parallel never share one), and per host a network namespace
``wg<id><i>`` joined to the machine by a veth pair (``wgh<id><i>`` on the machine's side with
``.4i+1``, ``wgn<id><i>`` inside with ``.4i+2``). RabbitMQ and PostgreSQL listen on loopback
only, so each host reaches them through :class:`Relay` s: TCP relays run by the test process
(asyncio, in a thread) bound to the host's machine-side address and forwarding to the broker
and to PostgreSQL. A host's daemons run inside its namespace (``ip netns exec``) with their own
``WGOPS_HOME`` and the test's namespace and database, so they reach the broker and the
database through that host's relays only.

Cuts, each healed by :meth:`Host.heal`:

* :meth:`Host.cut` ``("all")``: the namespace's link goes down and both relays cut;
* ``("broker")`` / ``("db")``: that relay only.

A relay that cuts closes its connections to the server at once (the server sees its client
gone, as it would after its own timeouts: RabbitMQ requeues the unacked messages, PostgreSQL
rolls back) and holds the host's side silent: the host's process sees a network that answers
nothing, new connections included. Healing closes the held connections (the host's process
sees them fail and reconnects) and forwards again. Daemons talk AMQP with a 2 s heartbeat, so a
silent broker connection is noticed in seconds.

Only loopback and the test's own veth addresses are ever used; every namespace, veth pair and
lock file is removed at teardown, and every process is stopped by PID (:class:`Cluster`).
Where namespaces cannot be made (not root, no ``ip``), :func:`unavailable` says why, and the
tests skip with that reason.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tests.cluster import Cluster

LOCKS = Path("/tmp/wgops-test-subnets")
BROKER = ("127.0.0.1", 5672)
POSTGRES = ("127.0.0.1", 5432)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30,
                          check=check)


def unavailable() -> str | None:
    """Why hosts cannot be made here, or None."""
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2) to make network namespaces"
    if os.geteuid() != 0:
        return "network namespaces need root"
    name = "wgprobe" + uuid.uuid4().hex[:6]
    made = _ip("netns", "add", name, check=False)
    if made.returncode != 0:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    _ip("netns", "del", name, check=False)
    return None


# -- relays --------------------------------------------------------------------------------------

class Relay:
    """A TCP relay from ``listen`` (host, port 0 = any) to ``target``, which can be cut."""

    def __init__(self, loop: asyncio.AbstractEventLoop, listen: str, target: tuple[str, int]):
        self.loop = loop
        self.listen = listen
        self.target = target
        self.port = 0
        self.cut_now = False
        self.server: asyncio.AbstractServer | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._held: set[asyncio.StreamWriter] = set()
        self._every: set[asyncio.StreamWriter] = set()   # closed, all of them, at the end
        self._healed = asyncio.Event()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.listen, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        self._healed.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._every.add(writer)
        self._held.add(writer)
        try:
            await self._healed.wait()
            if writer.is_closing():
                return
            self._held.discard(writer)
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                writer.close()
                return
            self._every.add(up_writer)
            pair = (writer, up_writer)
            self._pairs.add(pair)
            try:
                await asyncio.gather(self._pipe(reader, up_writer),
                                     self._pipe(up_reader, writer))
            finally:
                self._pairs.discard(pair)
                up_writer.close()
                if not self.cut_now:        # cut: the host's side stays held, silent
                    writer.close()
        finally:
            if not self.cut_now:            # cut: held until the heal closes it
                self._held.discard(writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(OSError, asyncio.CancelledError):
            while True:
                data = await reader.read(65536)
                if not data or self.cut_now:
                    break
                writer.write(data)
                await writer.drain()
        if not self.cut_now:
            writer.close()

    async def cut(self) -> None:
        """The server side closes at once; the host's side is held silent."""
        self.cut_now = True
        self._healed.clear()
        for down, up in list(self._pairs):
            up.close()
            self._held.add(down)

    async def heal(self) -> None:
        """Close what was held (the host's process sees it fail) and forward again."""
        self.cut_now = False
        for down in list(self._held):
            down.close()
        self._held.clear()
        self._healed.set()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for down, up in list(self._pairs):
            down.close()
            up.close()
        for down in list(self._held):
            down.close()
        for writer in list(self._every):
            writer.close()
            with suppress(Exception):
                await writer.wait_closed()
        self._every.clear()


class RelayLoop:
    """An asyncio loop in a thread of the test process, running the relays."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name="relays")
        self.thread.start()

    def run(self, coro: object, timeout: float = 30) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore

    def relay(self, listen: str, target: tuple[str, int]) -> Relay:
        relay = Relay(self.loop, listen, target)
        self.run(relay.start())
        return relay

    async def _shutdown(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0.05)           # transports finish closing

    def stop(self) -> None:
        with suppress(Exception):
            self.run(self._shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


# -- hosts ---------------------------------------------------------------------------------------

def _reserve_subnet() -> tuple[str, Path]:
    """A /24 of 10.200.0.0/13 that no other test holds and no interface uses."""
    LOCKS.mkdir(exist_ok=True)
    used = _ip("-o", "-4", "addr", "show").stdout
    seed = int(uuid.uuid4().hex[:6], 16)
    for step in range(2048):
        n = (seed + step) % 2048
        prefix = f"10.{200 + n // 256}.{n % 256}"
        if f" {prefix}." in used:
            continue
        lock = LOCKS / prefix
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return prefix, lock
    raise RuntimeError("no free test subnet in 10.200.0.0/13")


class Host(Cluster):
    """One installation in its own network namespace (a :class:`Cluster` whose daemons run
    under ``ip netns exec``). ``env`` is what its daemons see (the relays' addresses);
    ``self.db`` and ``self.cli`` work from the test's side, straight to the servers."""

    def __init__(self, net: Net, index: int, tmp: Path):
        self.net = net
        self.index = index
        self.ns = f"wg{net.id}{index}"
        self.outside = f"{net.prefix}.{4 * index + 1}"
        self.inside = f"{net.prefix}.{4 * index + 2}"
        self.veth_out, self.veth_in = f"wgh{net.id}{index}", f"wgn{net.id}{index}"
        self._make_namespace()
        self.broker = net.relays.relay(self.outside, net.broker)
        self.postgres = net.relays.relay(self.outside, net.postgres)
        home = tmp / f"host{index}"
        home.mkdir(parents=True, exist_ok=True)
        pg = "{}:{}".format(*net.postgres)
        db = net.db_url.replace(pg, f"{self.outside}:{self.postgres.port}")
        env = {**net.env, "WGOPS_HOME": str(home / "home"),
               "WGOPS_BROKER_URL":
                   f"amqp://guest:guest@{self.outside}:{self.broker.port}/?heartbeat=2",
               "WGOPS_DB_URL": db}
        super().__init__(env, home)
        self.direct = {**env, "WGOPS_DB_URL": net.db_url,
                       "WGOPS_BROKER_URL": "amqp://guest:guest@{}:{}/".format(*net.broker)}

    def ns_command(self, args: list[str]) -> list[str]:
        """``args`` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.ns, *args]

    def _make_namespace(self) -> None:
        self.net.namespaces.append(self.ns)
        _ip("netns", "add", self.ns)
        self.net.links.append(self.veth_out)
        _ip("link", "add", self.veth_out, "type", "veth", "peer", "name", self.veth_in)
        _ip("link", "set", self.veth_in, "netns", self.ns)
        _ip("addr", "add", f"{self.outside}/30", "dev", self.veth_out)
        _ip("link", "set", self.veth_out, "up")
        self.exec_ip("addr", "add", f"{self.inside}/30", "dev", self.veth_in)
        self.exec_ip("link", "set", self.veth_in, "up")
        self.exec_ip("link", "set", "lo", "up")

    def exec_ip(self, *args: str) -> None:
        _ip("netns", "exec", self.ns, "ip", *args)

    def _spawn(self, args: list[str], extra_env: dict[str, str] | None = None) \
            -> subprocess.Popen[bytes]:
        log = self.tmp / f"daemon-{len(self.procs)}.log"
        env = {**self.env, **(extra_env or {})}
        with open(log, "wb") as fh:    # `ip netns exec` execs: the PID is the daemon's
            proc = subprocess.Popen(self.ns_command([sys.executable, "-m", "wgops", *args]),
                                    env=env, stdout=fh, stderr=subprocess.STDOUT,
                                    cwd=str(self.net.root))
        self.procs.append(proc)
        self.logs[proc.pid] = log
        return proc

    def db(self, fn):  # type: ignore[no-untyped-def]
        env, self.env = self.env, self.direct
        try:
            return super().db(fn)
        finally:
            self.env = env

    def cli(self, *args: str, timeout: float = 60, check: bool = True) \
            -> subprocess.CompletedProcess[str]:
        env, self.env = self.env, self.direct
        try:
            return super().cli(*args, timeout=timeout, check=check)
        finally:
            self.env = env

    # -- cuts ---------------------------------------------------------------------------------

    def cut(self, what: str = "all") -> None:
        """Cut this host off: ``all`` (link down, both relays), ``broker`` or ``db``."""
        if what not in ("all", "broker", "db"):
            raise ValueError(what)
        if what == "all":
            self.exec_ip("link", "set", self.veth_in, "down")
        for relay in self._relays(what):
            self.net.relays.run(relay.cut())

    def heal(self) -> None:
        self.exec_ip("link", "set", self.veth_in, "up")
        for relay in self._relays("all"):
            self.net.relays.run(relay.heal())

    def _relays(self, what: str) -> list[Relay]:
        return {"all": [self.broker, self.postgres], "broker": [self.broker],
                "db": [self.postgres]}[what]


class Net:
    """One test's network: a private subnet, its hosts and their relays."""

    def __init__(self, env: dict[str, str], db_url: str, tmp: Path, root: Path,
                 broker: tuple[str, int] = BROKER, postgres: tuple[str, int] = POSTGRES):
        self.env = env
        self.db_url = db_url
        self.broker, self.postgres = broker, postgres
        self.tmp = tmp
        self.root = root
        self.id = uuid.uuid4().hex[:8]
        self.prefix, self._lock = _reserve_subnet()
        self.relays = RelayLoop()
        self.namespaces: list[str] = []
        self.links: list[str] = []
        self.hosts: list[Host] = []

    def host(self) -> Host:
        host = Host(self, len(self.hosts), self.tmp)
        self.hosts.append(host)
        return host

    def close(self) -> None:
        for host in self.hosts:
            with suppress(Exception):
                host.heal()
            host.close()
        for host in self.hosts:
            for relay in (host.broker, host.postgres):
                with suppress(Exception):
                    self.relays.run(relay.close())
        self.relays.stop()
        for link in self.links:
            _ip("link", "del", link, check=False)
        for ns in self.namespaces:
            _ip("netns", "del", ns, check=False)
        self._lock.unlink(missing_ok=True)


@contextmanager
def network(env: dict[str, str], db_url: str, tmp: Path, broker: tuple[str, int] = BROKER,
            postgres: tuple[str, int] = POSTGRES) -> Iterator[Net]:
    """A :class:`Net` removed on the way out, whatever happened. ``broker`` and
    ``postgres``: the servers on loopback that the hosts' relays forward to."""
    net = Net(env, db_url, tmp, Path(__file__).resolve().parent.parent, broker, postgres)
    try:
        yield net
    finally:
        net.close()
