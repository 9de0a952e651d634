"""Daemons, queues, slots and pools: one :class:`Status` picture per poll.

Daemons come from circus (``supervision.collect``) when an arbiter answers, else from the
store's heartbeats (with CPU and memory from ``psutil`` for local pids). Queue depths come from
passive declares on the console's own broker link; rates from the events seen.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

import psutil

from wgops.console.data import supervision
from wgops.console.data.events import BrokerLink
from wgops.console.data.model import Connection, DaemonRow, PoolRow, QueueRow, SlotRow, Status
from wgops.console.data.store import StoreReader
from wgops.daemon.status import LISTED_FOR
from wgops.store.config import Settings, mask_url
from wgops.store.errors import Unreachable
from wgops.store.liveness import is_alive

logger = logging.getLogger(__name__)
HISTORY = 40                # depth samples kept per queue (the sparkline)
CIRCUS_EVERY = 5.0          # seconds between circus polls (heavy: they compete with the UI)


def daemon_state(row: dict[str, Any], alive_default: bool = False) -> str:
    state = row.get("state")
    if row.get("orphan") and state in ("running", "stopping"):
        return "orphan"                 # outside any arbiter: daemon start/stop stop it
    if state in ("running", "stopped", "flapping", "starting", "stopping", "dead"):
        return str(state)
    return "running" if row.get("alive", alive_default) else "stopped"


def status_daemons(doc: dict[str, Any], now: float) -> list[DaemonRow]:
    """Daemon rows from a DESIGN §6 status document (plus the arbiter, when it is there)."""
    rows: list[DaemonRow] = []
    arbiter = doc.get("arbiter")
    if isinstance(arbiter, dict) and (arbiter.get("running") or arbiter.get("pid")):
        flapping = any(w.get("state") == "flapping" or w.get("status") == "flapping"
                       for w in (arbiter.get("watchers") or {}).values())
        rows.append(_daemon("arbiter", {
            "id": "circus arbiter", **arbiter,
            "state": "flapping" if flapping else "running" if arbiter.get("running")
            else "stopped"}, now))
    for kind in ("schedulers", "workers"):
        for row in doc.get(kind) or []:
            rows.append(_daemon(kind[:-1], row, now))
    return rows


def _daemon(kind: str, row: dict[str, Any], now: float) -> DaemonRow:
    uptime = row.get("uptime")
    if uptime is None and row.get("started"):
        uptime = now - float(row["started"])
    cpu = row.get("cpu_percent", row.get("cpu"))
    return DaemonRow(kind, str(row.get("id") or row.get("name") or "?"), row.get("pid"),
                     daemon_state(row, kind == "arbiter"), uptime, cpu,
                     row.get("memory"), row.get("graphs"))


def status_slots(doc: dict[str, Any],
                 heartbeats: dict[str, dict[str, Any]] | None = None) -> list[SlotRow]:
    """Per worker: executing (busy), reserved (delivered, not started: from its heartbeat
    event when the status document does not say), free."""
    out = []
    for w in doc.get("workers") or []:
        beat = (heartbeats or {}).get(str(w.get("id")), {})
        slots = int(w.get("slots") or 0)
        busy = int(w.get("busy") or 0)
        reserved = int(w.get("reserved", beat.get("reserved")) or 0)
        out.append(SlotRow(str(w.get("id")), slots, min(busy, slots),
                           max(0, min(reserved, slots - busy)), tuple(w.get("pools") or ()),
                           bool(w.get("alive", True))))
    return out


class StatusPoller:
    """Builds a :class:`Status`; keeps the depth history that the sparklines draw."""

    def __init__(self, settings: Settings, reader: StoreReader, link: BrokerLink | None):
        self.settings = settings
        self.reader = reader
        self.link = link
        self.history: dict[str, deque[int]] = {}
        self._procs: dict[int, psutil.Process] = {}
        self._last: Status | None = None
        self._circus: dict[str, Any] | None = None
        self._circus_at = 0.0

    async def poll(self) -> Status:
        now = time.time()
        db = Connection(True, mask_url(self.settings.db_url))
        try:
            pools = await self.reader.pools()
            fallback = await self.reader.daemons()
        except Unreachable as exc:
            db = Connection(False, db.url, str(exc).split(": ", 1)[-1][:120])
            pools, fallback = list(self._last.pools) if self._last else [], None
        if self._circus is None or time.monotonic() - self._circus_at >= CIRCUS_EVERY \
                or fallback is None:
            doc = await asyncio.to_thread(self._collect)
            self._circus, self._circus_at = doc, time.monotonic()
        else:                           # between circus polls: heartbeats from the store
            doc = {**self._from_store(fallback, now),
                   "arbiter": dict(self._circus.get("arbiter") or {})}
        supervised = bool(doc and (doc.get("arbiter") or {}).get("running"))
        if doc is None and fallback is not None:
            doc = self._from_store(fallback, now)
        self._arbiter_usage(doc, now)
        daemons = status_daemons(doc, now) if doc else list(self._last.daemons if self._last
                                                            else ())
        beats = self.link.buffer.heartbeats if self.link else None
        slots = status_slots(doc, beats) if doc else list(self._last.slots if self._last else ())
        queues = await self._queues(pools, doc)
        broker = self.link.state if self.link else Connection(False, "", "no broker")
        self._last = Status(broker, db, tuple(daemons), tuple(queues), tuple(slots),
                            tuple(pools), supervised, now)
        return self._last

    def _collect(self) -> dict[str, Any] | None:
        try:
            return supervision.collect(self.settings)
        except Exception:  # noqa: BLE001 - the status is best effort; logged, poll goes on
            logger.exception("collecting the daemon status")
            return None

    def _from_store(self, rows: dict[str, Any], now: float) -> dict[str, Any]:
        stale = self.settings.stale_after
        now = rows.get("db_time", now)       # heartbeats are the database's time
        doc: dict[str, Any] = {"schedulers": [], "workers": []}
        for kind in ("schedulers", "workers"):
            for row in rows[kind]:
                alive = is_alive(row["state"], row["heartbeat"], now, stale)
                if not alive and now - row["heartbeat"] > LISTED_FOR:
                    continue                       # long gone: not worth a row
                cpu, mem = self._usage(row["pid"]) if alive else (None, None)
                doc[kind].append({**row, "alive": alive, "cpu": cpu, "memory": mem,
                                  "state": "running" if alive else "stopped"})
        return doc

    def _arbiter_usage(self, doc: dict[str, Any] | None, now: float) -> None:
        arbiter = (doc or {}).get("arbiter")
        if isinstance(arbiter, dict) and arbiter.get("pid"):
            cpu, mem = self._usage(int(arbiter["pid"]))
            proc = self._procs.get(int(arbiter["pid"]))
            try:
                uptime = now - proc.create_time() if proc else None
            except (psutil.Error, OSError):
                uptime = None
            arbiter.update(cpu_percent=cpu, memory=mem, uptime=uptime)

    def _usage(self, pid: int) -> tuple[float | None, int | None]:
        try:
            proc = self._procs.get(pid) or self._procs.setdefault(pid, psutil.Process(pid))
            return proc.cpu_percent(None), proc.memory_info().rss
        except (psutil.Error, OSError):
            self._procs.pop(pid, None)
            return None, None

    async def _queues(self, pools: list[PoolRow], doc: dict[str, Any] | None) -> list[QueueRow]:
        names = self.link.names if self.link else None
        if names is None:
            return []
        wanted = [names.graphs] + [names.tasks(p.name) for p in pools] + [names.dead]
        for row in (doc or {}).get("queues") or []:
            if row.get("name") and row["name"] not in wanted:
                wanted.append(row["name"])
        buffer = self.link.buffer if self.link else None
        out = []
        for name in wanted:
            try:
                depth = await self.link.depth_from(name) if self.link else None
            except Exception:  # noqa: BLE001 - a broken link shows as unknown depth
                logger.debug("depth of %s", name, exc_info=True)
                depth = None
            if depth is None and name not in (names.graphs, names.dead) and \
                    name not in self.history:
                continue
            hist = self.history.setdefault(name, deque(maxlen=HISTORY))
            if depth is not None:
                hist.append(depth[0])
            rate_in = rate_out = None
            if buffer is not None:
                rate_in, rate_out = self._rates(name, buffer)
            out.append(QueueRow(name, depth[0] if depth else None, depth[1] if depth else None,
                                rate_in, rate_out, tuple(hist)))
        return out

    def _rates(self, name: str, buffer: Any) -> tuple[float, float]:
        assert self.link is not None
        names = self.link.names
        if name == names.graphs:
            return buffer.rate("graph.queued"), buffer.rate("graph.running", "graph.claimed")
        prefix = f"{names.ns}.tasks."
        if name.startswith(prefix):
            pool = name[len(prefix):]
            ins = [f"task.queued@{pool}"] + (["task.queued"] if pool == "default" else [])
            outs = [f"task.running@{pool}"] + (["task.running"] if pool == "default" else [])
            return buffer.rate(*ins), buffer.rate(*outs)
        return 0.0, 0.0
