"""The worker daemon: N slots (= the AMQP prefetch, shared across its pools' queues).

For each task message: start it (compare-and-set), run it, commit the result, then publish
the event and notify the owner, then ack. A stale or duplicate delivery is acked and dropped
(and the owner re-notified if the task already ended). SIGTERM: stop consuming, let running
tasks finish within the grace period, hand the rest back to the queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from wgops.daemon import allow, delivery
from wgops.daemon.broker import BROKER_ERRORS, Broker, event, refuse
from wgops.daemon.delivery import Incoming
from wgops.daemon.executors import Job, PythonExecutor, ShellExecutor, ShellFailed
from wgops.daemon.notify import Notifier
from wgops.daemon.protocol import (
    WORKER_OPS,
    Control,
    Reply,
    RunTask,
    TaskDone,
    check_control,
)
from wgops.daemon.results import TaskFailed
from wgops.daemon.tasklog import TaskLogs
from wgops.store import execution, liveness, loading
from wgops.store.config import Settings
from wgops.store.db import AsyncStore, Store
from wgops.store.errors import ProtocolError
from wgops.store.migrations import migrate

logger = logging.getLogger(__name__)
NOTIFY_PATIENCE = 60.0     # seconds a finished task's notification is retried (broker away)


def detach_after(consumer_timeout: float) -> float:
    """Seconds after delivery when a message must be acked or handed back: the broker's
    consumer_timeout less a margin (its check runs on a timer; a DB write and an ack take
    time)."""
    return consumer_timeout - min(60.0, max(1.0, 0.4 * consumer_timeout))


class WorkerDaemon:
    def __init__(self, settings: Settings, wid: str, slots: int, pools: tuple[str, ...],
                 clock: Callable[[], float] = time.time):
        self.settings = settings
        self.id = wid
        self.slots = slots
        self.pools = tuple(dict.fromkeys(pools)) or ("default",)
        self.clock = clock
        self.store = Store(settings.db_url)
        self.db = AsyncStore(self.store)
        self.broker = Broker(settings, f"wgops-worker-{wid}")
        self.notifier = Notifier(self.broker)
        self.names = self.broker.names
        self.python = PythonExecutor(settings, wid, slots)
        self.shell = ShellExecutor(settings, wid)
        self.logs = TaskLogs(self.db, settings.max_log_bytes, max(1.0, settings.heartbeat))
        self.executing: dict[int, asyncio.Task[Any]] = {}   # task id -> its handler
        self.reserved = 0                                    # delivered, not yet started
        # At most `slots` tasks execute, also when detached tasks (acked early, see
        # docs/reliability.md) let the broker deliver more than the prefetch would.
        self.free = asyncio.Semaphore(slots)
        self.detached: set[int] = set()
        self.starting: set[int] = set()                      # start CAS in flight
        self.detach_after = detach_after(settings.consumer_timeout)
        self._consumers: list[tuple[Any, str]] = []
        self._handlers: set[asyncio.Task[Any]] = set()
        self.stopping = False

    async def initialize(self) -> None:
        for line in allow.shadowing(self.settings.task_path):
            logger.warning("%s", line)
        self.python.start()
        self.db.start()
        await self.db.read(migrate, self.store)
        await self.broker.connect_retrying()
        await self.broker.declare(self.names.dead)
        # its queues exist before it is listed (its heartbeat): what is sent to a listed
        # worker waits for it, never goes unrouted; it consumes once it is listed
        channel = await self.broker.new_channel()
        await channel.set_qos(prefetch_count=self.slots, global_=len(self.pools) > 1)
        task_queues = [await self.broker.declare(self.names.tasks(pool), channel)
                       for pool in self.pools]
        control_channel = await self.broker.new_channel(prefetch=10)
        control = await self.broker.declare(self.names.worker(self.id), control_channel)
        await self.db.write(liveness.heartbeat_worker, self.id, os.getpid(), self.slots,
                            list(self.pools), [])
        for queue in task_queues:      # the hot path: deliveries without aio-pika's message
            self._consumers.append((queue, await delivery.consume(queue, self._on_task)))
        self._consumers.append((control, await control.consume(self._on_control)))
        await self.broker.emit(event("daemon.started", data={
            "kind": "worker", "id": self.id, "pid": os.getpid(), "slots": self.slots,
            "pools": list(self.pools)}))

    async def tick(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        executing = sorted(self.executing)
        logs = self.logs.flush()         # running tasks' output so far, one write for all
        await self.db.write(liveness.heartbeat_worker, self.id, os.getpid(), self.slots,
                            list(self.pools), executing)
        await self.logs.settle(logs)
        await self.broker.emit(event("daemon.heartbeat", data={
            "kind": "worker", "id": self.id, "pid": os.getpid(), "slots": self.slots,
            "busy": len(executing), "reserved": self.reserved, "executing": executing,
            "pools": list(self.pools)}))

    async def shutdown(self) -> None:
        self.stopping = True
        for queue, tag in self._consumers:
            try:
                await queue.cancel(tag)
            except Exception:  # noqa: BLE001 - channel already gone
                logger.debug("cancel consumer", exc_info=True)
        if self._handlers:
            done, pending = await asyncio.wait(set(self._handlers), timeout=self.settings.grace)
            for handler in pending:
                handler.cancel()
            if pending:
                logger.warning("handing %d unfinished tasks back to the queue", len(pending))
                await asyncio.wait(pending, timeout=5)
        await self.db.write(liveness.heartbeat_worker, self.id, os.getpid(), self.slots,
                            list(self.pools), [], "stopped")
        await self.broker.emit(event("daemon.stopped", data={"kind": "worker", "id": self.id}))
        logger.info("worker %s notified %d task ends in %d messages", self.id,
                    self.notifier.notified, self.notifier.messages)
        self.python.close()
        await self.broker.close()
        await self.db.stop()

    # -- messages -------------------------------------------------------------------------

    async def _on_control(self, message: AbstractIncomingMessage) -> None:
        async with message.process(ignore_processed=True):
            try:
                decoded = self.broker.decode(message, (Control,))
                assert isinstance(decoded, Control)
                msg = check_control(decoded, WORKER_OPS)
            except ProtocolError as exc:
                await self._dead_letter(message, self.names.worker(self.id), str(exc))
                return
            assert isinstance(msg, Control)
            if msg.op == "cancel" and msg.task is not None:
                found = self.python.cancel(msg.task) or self.shell.cancel(msg.task)
                logger.info("cancel task %s: %s", msg.task, "stopped" if found else "not here")
            elif msg.op == "ping" and message.reply_to:
                await self.broker.publish(message.reply_to, Reply(ok=True, data={
                    "id": self.id, "slots": self.slots, "busy": len(self.executing)}),
                    persistent=False, mandatory=False)

    async def _dead_letter(self, message: Incoming, queue: str,
                           reason: str) -> None:
        await refuse(self.broker, self.db, queue, reason, message.body, self.id, self.clock())

    async def _on_task(self, message: Incoming) -> None:
        handler = asyncio.get_running_loop().create_task(self._guarded(message))
        self._handlers.add(handler)
        handler.add_done_callback(self._handlers.discard)

    async def _guarded(self, message: Incoming) -> None:
        """Loop boundary of one delivery. A failure here (the broker went away under an ack or
        a publish) loses nothing: the unacked message comes back and the database decides."""
        try:
            await self._handle(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - logged; the broker redelivers the message
            if message.processed:
                logger.warning("task message %s: %s: %s", message.delivery_tag,
                               type(exc).__name__, exc)
                return
            try:
                if message.redelivered and not isinstance(exc, BROKER_ERRORS):
                    # it failed before too, and not because the broker went away: a poison
                    # message must not loop through the queue forever
                    await self._dead_letter(message, message.routing_key or "tasks",
                                            f"handling failed twice: {type(exc).__name__}: "
                                            f"{exc}")
                    await message.ack()
                else:
                    logger.warning("task message %s: %s: %s (it will be redelivered)",
                                   message.delivery_tag, type(exc).__name__, exc)
                    await message.nack(requeue=True)
            except Exception:  # noqa: BLE001 - channel gone: requeued by the broker
                logger.debug("after a failed delivery", exc_info=True)

    async def _handle(self, message: Incoming) -> None:
        # the broker closes the channel of a delivery left unacked for consumer_timeout:
        # before then, the message is acked (task detached) or handed back (not started)
        deadline = self.clock() + self.detach_after
        queue = message.routing_key or "tasks"
        try:
            msg = self.broker.decode(message, (RunTask,))
            assert isinstance(msg, RunTask)
            if msg.kind not in ("python", "shell", "build"):
                raise ProtocolError(f"RunTask.kind: unknown kind {msg.kind!r}")
        except ProtocolError as exc:
            await self._dead_letter(message, queue, str(exc))
            await message.ack()
            return
        if self.stopping:
            await message.nack(requeue=True)
            return
        self.reserved += 1
        try:
            if not await self._acquire_slot(deadline):
                # every slot still busy (detached tasks) as the consumer_timeout nears:
                # hand the message back unstarted
                await message.nack(requeue=True)
                return
        finally:
            self.reserved -= 1
        try:
            if await self._started(message, msg, queue, deadline):
                return
        finally:
            self.free.release()
        await message.ack()

    async def _acquire_slot(self, deadline: float) -> bool:
        """Take an execution slot, or give up at ``deadline`` (False)."""
        if not self.free.locked():
            await self.free.acquire()        # a free slot: taken at once, nothing to time
            return True
        acquire = asyncio.ensure_future(self.free.acquire())
        try:
            await asyncio.wait({acquire}, timeout=max(0.0, deadline - self.clock()))
        except asyncio.CancelledError:
            acquire.cancel()
            await asyncio.wait({acquire})
            if not acquire.cancelled():
                self.free.release()
            raise
        if not acquire.done():
            acquire.cancel()
            await asyncio.wait({acquire})   # Semaphore.acquire undoes itself on cancel
        return not acquire.cancelled()

    async def _started(self, message: Incoming, msg: RunTask, queue: str,
                       deadline: float) -> bool:
        """Start (compare-and-set) and run a task holding a slot; True if its message was
        already acked (detached)."""
        self.reserved += 1
        try:
            verdict, detail = await self._start(msg, bool(message.redelivered))
        finally:
            self.reserved -= 1
        if verdict == "run":
            return await self._execute(message, msg, Job.of(msg.task, detail), deadline)
        if verdict == "quarantined":
            logger.error("task %s quarantined: lost its worker %d times", msg.task,
                         self.settings.max_lost)
            await self._notify(detail, TaskDone(task=msg.task, graph=msg.graph, state="failed",
                                                attempt=msg.attempt, worker=self.id))
            await self.broker.dead_letter(queue, f"task {msg.task} quarantined: lost its worker "
                                          f"{self.settings.max_lost} times", message.body,
                                          self.id)
        elif detail in ("finished", "failed", "skipped", "killed"):
            # a duplicate of a task that already ended: the owner may have missed the news
            owner = await self.db.read(loading.current_owner, msg.graph)
            await self._notify(owner, TaskDone(task=msg.task, graph=msg.graph, state=detail,
                                               attempt=msg.attempt, worker=self.id))
        return False

    async def _execute(self, message: Incoming, msg: RunTask, job: Job,
                       deadline: float) -> bool:
        """Run a started task, detaching it if it outlives ``deadline``; True if detached."""
        attempts = job.attempts
        run = asyncio.ensure_future(self._run(job))
        self.executing[msg.task] = run
        detached = False
        try:
            await asyncio.wait({run}, timeout=max(0.0, deadline - self.clock()))
            if not run.done():
                detached = await self._detach(message, msg, attempts)
            await run
        except asyncio.CancelledError:
            # graceful stop past the grace period: give the task back, requeue
            run.cancel()
            await asyncio.wait({run}, timeout=5)
            await self.db.write(execution.abandon, msg.task, attempts, self.id)
            if detached:
                await self.broker.publish(self.names.tasks(job.pool), msg)
            else:
                await message.nack(requeue=True)
            raise
        finally:
            # until its outcome is committed, a copy of its message is dropped here; _run
            # lets go once it is (a retry may be delivered before this handler resumes)
            if self.executing.get(msg.task) is run:
                del self.executing[msg.task]
            self.detached.discard(msg.task)
        return detached

    async def _detach(self, message: Incoming, msg: RunTask,
                      attempts: int) -> bool:
        """Ack a long task's message before the broker's consumer_timeout closes the channel.
        The row (running, this worker, ``detached`` set) is marked first: if this worker dies
        the scheduler's liveness check re-queues it; the result is committed as usual."""
        if not await self.db.write(execution.detach, msg.task, attempts, self.id, self.clock()):
            return False            # superseded (killed): acked when it ends, as usual
        self.detached.add(msg.task)
        logger.info("task %s has run %.0fs, near the broker's consumer_timeout (%.0fs): its "
                    "message is acked now, the database keeps it running here", msg.task,
                    self.detach_after, self.settings.consumer_timeout)
        try:
            await message.ack()
        except Exception as exc:  # noqa: BLE001 - the copy that comes back is dropped here
            logger.warning("could not ack detached task %s: %s", msg.task, exc)
        return True

    async def _start(self, msg: RunTask, redelivered: bool) -> tuple[str, Any]:
        """The start CAS. A task being started or executed here is never started twice
        (``starting`` covers the database round trip; ``_execute`` registers the task in
        ``executing`` before its next await)."""
        if msg.task in self.executing or msg.task in self.starting:
            return "drop", "running here"
        self.starting.add(msg.task)
        try:
            deadline = self.clock() + 4 * self.settings.stale_after
            while True:
                verdict, detail = await self._writer()(
                    execution.start, msg.task, msg.attempt, self.id, redelivered,
                    self.settings.max_lost, self.settings.stale_after, self.clock())
                if verdict != "wait" or self.clock() > deadline or self.stopping:
                    return (verdict, detail) if verdict != "wait" else ("drop",
                                                                        "running elsewhere")
                await asyncio.sleep(self.settings.heartbeat / 2)
        finally:
            self.starting.discard(msg.task)

    def _writer(self) -> Callable[..., Any]:
        """How a task's start or outcome is written: on the event loop when it is the only
        task here (a chain's hop: no hand-off to the database thread and back), through the
        thread when others run beside it (whose writes the thread commits together)."""
        alone = len(self.executing) + len(self.starting) <= 1
        return self.db.quick_write if alone else self.db.write

    async def _run(self, job: Job) -> None:
        current = asyncio.current_task()
        assert current is not None
        self.executing[job.task] = current
        attempts = job.attempts
        started = self.clock()
        await self.broker.emit(event("task.running", graph=job.graph, task=job.task,
                                     name=job.name, state="running",
                                     data={"worker": self.id, "attempt": attempts,
                                           "pool": job.pool}))
        result: str | None = None
        error: dict[str, Any] | None = None
        log = self.logs.open(job.task, attempts)
        try:
            executor = self.shell if job.kind == "shell" else self.python
            result = await executor.execute(job, log)
            state = "finished"
        except ShellFailed as exc:
            state, result = "failed", json.dumps(exc.result)
            error = {"type": exc.kind, "message": exc.message, "traceback": exc.tb}
        except TaskFailed as exc:
            state = "failed"
            error = {"type": exc.kind, "message": exc.message, "traceback": exc.tb}
        except BaseException:
            self.logs.discard(log)       # handed back (stopping): the next run writes anew
            raise
        saving = self.logs.close(log)    # queued before the outcome: one transaction
        now = self.clock()
        not_before = None
        if state == "failed" and attempts <= job.retries and error and \
                error["type"] not in ("NotAllowed", "Cancelled"):
            state, not_before = "queued", now + job.retry_delay
        if job.kind == "build" and state == "finished":
            # a builder's part is over, its task's is not: the scheduler spawns the graph
            state = "running"
            owner = await self.db.write(execution.built, job.task, attempts, self.id,
                                        result or "null", now)
        else:
            owner = await self._writer()(execution.finish, job.task, attempts, self.id, state,
                                         result, error, not_before, now)
        await self.logs.settle(saving)
        # committed: a message for the task's next attempt (a retry, dispatched as soon as
        # the owner hears of this one) must start it, not be dropped as "running here"
        if self.executing.get(job.task) is current:
            del self.executing[job.task]
        if owner is False:
            logger.info("task %s attempt %d was superseded (killed or re-run); result dropped",
                        job.task, attempts)
            return
        topic = "task.built" if job.kind == "build" and state == "running" else f"task.{state}"
        await self.broker.emit(event(topic, graph=job.graph, task=job.task,
                                     name=job.name, state=state, data={
                                         "worker": self.id, "attempt": attempts,
                                         "pool": job.pool,
                                         "duration": round(now - started, 6),
                                         "error": error["message"] if error else None}))
        await self._notify(owner, TaskDone(task=job.task, graph=job.graph, state=state,
                                           attempt=attempts, worker=self.id,
                                           not_before=not_before))

    async def _notify(self, owner: Any, done: TaskDone) -> None:
        """Tell the owner; while the broker is away, retry until it is back (bounded: past
        the deadline the unacked task message is redelivered and re-notifies)."""
        if not owner:
            return
        deadline = self.clock() + NOTIFY_PATIENCE
        while True:
            try:
                await self.notifier.send(owner, done)
                return
            except Exception as exc:  # noqa: BLE001 - broker unavailable: wait and retry
                if self.clock() > deadline or self.stopping:
                    raise
                logger.warning("could not notify %s of task %s (%s); retrying", owner,
                               done.task, type(exc).__name__)
                await asyncio.sleep(0.5)
