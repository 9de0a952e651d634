"""The Prometheus exporter (``wgops metrics``): the metric names of DESIGN §12 on ``/metrics``.

Two sources, never a scan of all tasks per scrape:

- **events** (counters and the histogram): task events on ``{ns}.events``, through the
  exporter's own capped subscription (:class:`~wgops.daemon.subscription.EventSubscription`).
  ``wgops_tasks_total{pool,state}`` counts the task events that carry a pool, by the state
  they report (``queued`` by a scheduler's dispatch, ``running``, ``finished`` and ``failed``
  by a worker, ``retried`` for a failed attempt that will run again); a task's attempt that
  ends on a worker is observed in ``wgops_task_duration_seconds{pool}``. Counters start at 0
  when the exporter starts, as Prometheus expects of a counter (``rate()`` handles resets);
  skipped tasks and nested graphs hold no slot and carry no pool, so they are not counted.
- **the store and the broker** (gauges), read at each scrape: one statement of a few
  group-bys (:func:`wgops.store.counts.read_counts`) on a dedicated database thread that keeps
  its connection, and passive declares of the wgops queues on the subscription's connection.

A scrape always answers: while the broker or the database cannot be reached (or does not
answer within a few seconds), ``wgops_up{component}`` is 0 and that part's gauges are left
out. No label names a graph.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import peewee
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from wgops import __version__
from wgops.daemon.circus_config import METRICS_HOST, METRICS_PORT
from wgops.daemon.probes import listen_error
from wgops.daemon.protocol import Names
from wgops.daemon.subscription import EventSubscription
from wgops.store.config import Settings
from wgops.store.counts import Counts, read_counts
from wgops.store.db import Store, first_line
from wgops.store.errors import Unreachable

logger = logging.getLogger(__name__)

DB_TIMEOUT = 3.0            # seconds a scrape waits for the database
BROKER_TIMEOUT = 2.0        # seconds a scrape waits for the queue depths
DURATION_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
                    1800, 3600, float("inf"))
COUNTED = ("queued", "running", "finished", "failed", "killed")


class TaskEvents:
    """``wgops_tasks_total`` and ``wgops_task_duration_seconds``, fed one event at a time."""

    def __init__(self, registry: CollectorRegistry):
        self.tasks = Counter("wgops_tasks", "Task events by pool and the state they report "
                             "(retried: a failed attempt that runs again)",
                             ["pool", "state"], registry=registry)
        self.duration = Histogram("wgops_task_duration_seconds",
                                  "Run time of task attempts on workers", ["pool"],
                                  buckets=DURATION_BUCKETS, registry=registry)
        self.seen = 0

    def observe(self, body: bytes) -> None:
        """One message body of ``{ns}.events``; anything that is not a task event with a pool
        is ignored."""
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(data, dict) or not str(data.get("topic", "")).startswith("task."):
            return
        extra = data.get("data")
        if not isinstance(extra, dict) or not isinstance(extra.get("pool"), str):
            return
        pool, state = extra["pool"], data["topic"][5:]
        duration = extra.get("duration")
        timed = isinstance(duration, (int, float)) and not isinstance(duration, bool) \
            and 0 <= duration < 1e9
        if state == "queued" and "worker" in extra:
            state = "retried"
        elif state not in COUNTED:
            return
        self.seen += 1
        self.tasks.labels(pool=pool, state=state).inc()
        if timed:
            self.duration.labels(pool=pool).observe(float(duration))


class StoreReader:
    """The store's counts, read on one thread that keeps its connection between scrapes."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="metrics-db")
        self._store: Store | None = None
        self.error = ""

    def submit(self) -> concurrent.futures.Future[Counts]:
        """Start a read on the reader's thread (the caller does something else meanwhile)."""
        return self._pool.submit(self._read)

    def result(self, future: concurrent.futures.Future[Counts],
               deadline: float) -> Counts | None:
        """The counts of a read :meth:`submit` started, waited for until ``deadline``
        (``time.monotonic()``); None (and :attr:`error` says why) if there are none."""
        try:
            return future.result(max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            self.error = f"no answer within {DB_TIMEOUT:.0f}s"
        except (Unreachable, peewee.DatabaseError) as exc:
            self.error = first_line(exc)
        return None

    def _read(self) -> Counts:
        parts = urlsplit(self.settings.db_url)
        if parts.scheme == "sqlite":          # never create an SQLite file by looking at it
            path = unquote(parts.path)
            path = path[1:] if path.startswith("//") else path
            if not Path(path).exists():
                raise Unreachable(f"no database at {path}")
        if self._store is None:
            self._store = Store(self.settings.db_url)
        try:
            self._store.connect()
            return read_counts(self.settings.stale_after)
        except peewee.DatabaseError:
            self._store.close()
            raise

    def close(self) -> None:
        if self._store is not None:
            self._pool.submit(self._store.close)
        self._pool.shutdown(wait=True)


class Gauges(Collector):
    """The gauges of one scrape: the store's counts, the queues, ``wgops_up``, the version."""

    def __init__(self, settings: Settings, store: StoreReader, broker: EventSubscription):
        self.names = Names(settings.namespace)
        self.store = store
        self.broker = broker
        self._pools: set[str] = {"default"}     # last known, for the queues when the DB is down

    def collect(self) -> Iterator[Metric]:
        counts, depths = self._read()
        up = GaugeMetricFamily("wgops_up", "Whether the exporter reaches the component",
                               labels=["component"])
        up.add_metric(["broker"], 1 if depths is not None else 0)
        up.add_metric(["database"], 1 if counts is not None else 0)
        yield up
        info = GaugeMetricFamily("wgops_build_info", "The wgops version of the exporter",
                                 labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        if counts is not None:
            yield from _store_metrics(counts)
        if depths is not None:
            messages = GaugeMetricFamily("wgops_queue_messages", "Messages ready in the queue",
                                         labels=["queue"])
            consumers = GaugeMetricFamily("wgops_queue_consumers", "Consumers of the queue",
                                          labels=["queue"])
            for name, (ready, consuming) in sorted(depths.items()):
                messages.add_metric([name], ready)
                consumers.add_metric([name], consuming)
            yield messages
            yield consumers

    def _read(self) -> tuple[Counts | None, dict[str, tuple[int, int]] | None]:
        """The store's counts and the queue depths, read at the same time: the store on its
        reader's thread while the broker is asked for the queues of the pools known from the
        last scrape; a pool new in the counts has its queue asked for after."""
        deadline = time.monotonic() + DB_TIMEOUT
        reading = self.store.submit()
        depths = self.broker.depths(self._queues(self._pools), BROKER_TIMEOUT)
        counts = self.store.result(reading, deadline)
        if counts is None:
            return None, depths
        pools, known = set(counts.pools), self._pools
        self._pools = pools
        if depths is None:
            return counts, None
        if pools - known:
            more = self.broker.depths([self.names.tasks(p) for p in sorted(pools - known)],
                                      BROKER_TIMEOUT)
            if more is None:
                return counts, None
            depths.update(more)
        wanted = set(self._queues(pools))
        return counts, {name: depth for name, depth in depths.items() if name in wanted}

    def _queues(self, pools: set[str]) -> list[str]:
        return [self.names.graphs, self.names.dead, *(self.names.tasks(p) for p in sorted(pools))]


def _store_metrics(counts: Counts) -> Iterator[Metric]:
    graphs = GaugeMetricFamily("wgops_graphs", "Graphs by state (nested graphs included)",
                               labels=["state"])
    for state, n in counts.graphs.items():
        graphs.add_metric([state], n)
    yield graphs
    yield GaugeMetricFamily("wgops_workers", "Live workers", value=counts.workers)
    yield GaugeMetricFamily("wgops_schedulers", "Live schedulers", value=counts.schedulers)
    slots = GaugeMetricFamily("wgops_worker_slots", "Slots of the live workers",
                              labels=["state"])
    slots.add_metric(["busy"], counts.slots_busy)
    slots.add_metric(["free"], counts.slots_free)
    yield slots
    running = GaugeMetricFamily("wgops_pool_running", "Tasks running in the pool",
                                labels=["pool"])
    for pool, n in sorted(counts.pool_running.items()):
        running.add_metric([pool], n)
    yield running
    cap = GaugeMetricFamily("wgops_pool_max_running",
                            "The pool's cap on running tasks (absent when unlimited)",
                            labels=["pool"])
    for pool, n in sorted(counts.pool_max_running.items()):
        cap.add_metric([pool], n)
    yield cap


class Exporter:
    """The exporter's parts: the registry, the event subscription, the store reader."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.registry = CollectorRegistry(auto_describe=False)
        self.events = TaskEvents(self.registry)
        self.broker = EventSubscription(settings, "metrics", self.events.observe,
                                        bindings=("task.#",))
        self.store = StoreReader(settings)
        self.registry.register(Gauges(settings, self.store, self.broker))

    def start(self) -> None:
        self.broker.start()

    def close(self) -> None:
        self.broker.stop()
        self.store.close()


def serve(settings: Settings, host: str = METRICS_HOST, port: int = METRICS_PORT,
          ready: threading.Event | None = None, stop: threading.Event | None = None) -> None:
    """Serve ``/metrics`` on ``host:port`` until SIGTERM/SIGINT (or ``stop``). A port that
    cannot be bound raises :class:`~wgops.store.errors.ConfigError` naming it."""
    from prometheus_client import start_http_server

    exporter = Exporter(settings)
    try:
        server, thread = start_http_server(port, addr=host, registry=exporter.registry)
    except OSError as exc:
        raise listen_error(host, port, exc) from None
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    exporter.start()
    masked = settings.masked()
    logger.info("metrics exporter pid %d on http://%s:%d/metrics broker %s database %s "
                "namespace %s", os.getpid(), host, server.server_port, masked["broker"],
                masked["database"], settings.namespace)
    if ready is not None:
        ready.set()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        logger.info("metrics exporter pid %d stopping", os.getpid())
        server.shutdown()
        server.server_close()
        thread.join(5)
        exporter.close()


__all__ = ["Exporter", "TaskEvents", "serve"]
