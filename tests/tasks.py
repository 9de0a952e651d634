"""Task functions used by the tests (allowed by the tests' WGOPS_ALLOW)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path


def add(a: float, b: float) -> float:
    return a + b


def double(x: float) -> dict:
    return {"value": x * 2, "half": x / 2}


def combine(left: float, right: float) -> dict:
    return {"total": left + right}


def noop() -> None:
    return None


def boom(message: str = "boom") -> None:
    raise ValueError(message)


def flaky(marker: str, fail_times: int = 1) -> str:
    """Fails the first ``fail_times`` calls (counted in a file), then succeeds."""
    path = Path(marker)
    count = int(path.read_text()) if path.exists() else 0
    path.write_text(str(count + 1))
    if count < fail_times:
        raise RuntimeError(f"flaky failure {count + 1}")
    return f"ok after {count + 1}"


def not_json() -> object:
    return {1, 2, 3}


async def async_add(a: float, b: float) -> float:
    await asyncio.sleep(0.01)
    return a + b


def sleep(seconds: float, log: str | None = None, tag: str = "") -> dict:
    start = time.time()
    time.sleep(seconds)
    end = time.time()
    if log:
        with open(log, "a") as fh:
            fh.write(f"{tag} {start} {end}\n")
    return {"start": start, "end": end, "tag": tag}


def gate(path: str, log: str | None = None, tag: str = "", limit: float = 120) -> dict:
    """Runs until ``path`` exists (at most ``limit`` seconds, then fails): a task that is
    surely still running when a test acts on it, however slow the machine is today."""
    start = time.time()
    while not os.path.exists(path):
        if time.time() - start > limit:
            raise TimeoutError(f"{path} did not appear within {limit}s")
        time.sleep(0.02)
    end = time.time()
    if log:
        with open(log, "a") as fh:
            fh.write(f"{tag} {start} {end}\n")
    return {"start": start, "end": end, "tag": tag}


def record(log: str, tag: str = "") -> str:
    """Appends one line per execution: lets tests count how often a task ran."""
    with open(log, "a") as fh:
        fh.write(f"{tag} {os.getpid()} {time.time()}\n")
    return tag


def my_worker_pid() -> int:
    """The worker daemon running this task: a sync task runs in a slot process whose parent is
    the forkserver, whose parent is the worker."""
    import psutil

    forkserver = psutil.Process(os.getppid())
    return forkserver.ppid()


def kill_my_worker(log: str | None = None) -> None:
    """SIGKILLs the worker daemon running this task (a task that takes its worker down)."""
    pid = my_worker_pid()
    if log:
        with open(log, "a") as fh:
            fh.write(f"{pid} {time.time()}\n")
    os.kill(pid, signal.SIGKILL)
    os._exit(1)             # the worker is gone: so is this slot


def big_result(size: int) -> str:
    return "x" * size


def slow_record(log: str, seconds: float, tag: str = "") -> str:
    """``record`` at the start and at the end of a long task: counts starts and ends."""
    with open(log, "a") as fh:
        fh.write(f"start {tag} {os.getpid()} {time.time()}\n")
    time.sleep(seconds)
    with open(log, "a") as fh:
        fh.write(f"end {tag} {os.getpid()} {time.time()}\n")
    return tag


async def async_big_result(size: int) -> str:
    return "y" * size


def exit_now(code: int = 3) -> None:
    """Ends its own (slot) process at once, as a segfault or the OOM killer would."""
    os._exit(code)


# -- run-time shapes ----------------------------------------------------------------------------

def numbers(n: int, start: int = 1) -> dict:
    """{"xs": [start, ..., start + n - 1]}: a list known only at run time."""
    return {"xs": list(range(start, start + n)), "n": n}


def square(x: float) -> float:
    return x * x


def square_or_fail(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"{x} is bad")
    return x * x


def total(xs: list) -> float:
    return sum(xs)


def check(value: float, limit: float) -> dict:
    return {"big": value > limit, "value": value}


def countdown_graph(n: int, tag: str = "") -> dict:
    """A builder: a graph that records ``n`` and, while ``n`` > 0, builds the next level
    (a loop written as recursion). Its output ``steps`` counts the levels below."""
    doc: dict = {"name": f"countdown-{n}", "tasks": {
        "here": {"run": "tests.tasks:add", "args": {"a": n, "b": 0}}}}
    if n > 0:
        doc["tasks"]["next"] = {"build": "tests.tasks:countdown_graph",
                                "args": {"n": n - 1, "tag": tag}}
        doc["tasks"]["count"] = {"run": "tests.tasks:add",
                                 "args": {"a": "${next.steps}", "b": 1}}
        doc["outputs"] = {"steps": "${count}", "n": "${here}"}
    else:
        doc["outputs"] = {"steps": 0, "n": "${here}"}
    return doc


def converge(x: float, target: float, step: float = 0.5) -> dict:
    """A builder of a convergence loop: one relaxation step; another level while not close."""
    nxt = x + (target - x) * step
    doc: dict = {"name": "converge", "tasks": {
        "step": {"run": "tests.tasks:add", "args": {"a": nxt, "b": 0}}}}
    if abs(target - nxt) > 0.01:
        doc["tasks"]["again"] = {"build": "tests.tasks:converge",
                                 "args": {"x": nxt, "target": target, "step": step}}
        doc["outputs"] = {"x": "${again.x}"}
    else:
        doc["outputs"] = {"x": "${step}"}
    return doc


def bad_graph() -> dict:
    return {"name": "bad", "tasks": {"a": {"run": "tests.tasks:noop", "after": ["ghost"]}}}


def not_a_graph() -> list:
    return [1, 2, 3]


def builder_fails() -> dict:
    raise RuntimeError("the builder broke")


def python_graph(n: int) -> object:
    """A builder returning a wgops.Graph (built in Python)."""
    import wgops

    g = wgops.Graph("from-python")
    a = g.task("a", "tests.tasks:add", {"a": n, "b": 1})
    g.outputs(value=a)
    return g


# -- task logs ------------------------------------------------------------------------------------

def chatty(tag: str = "") -> str:
    """Prints to stdout and stderr and logs at three levels (task logs)."""
    import logging
    import sys

    print(f"out line {tag}")
    print(f"err line {tag}", file=sys.stderr)
    log = logging.getLogger("tests.chatty")
    log.debug("not shown %s", tag)
    log.info("info record %s", tag)
    log.warning("warning record %s", tag)
    return tag


async def async_chatty(tag: str = "") -> str:
    """An async task's prints and logging, with an await between them and a child task."""
    import logging
    import sys

    print(f"async out {tag}")
    await asyncio.sleep(0.01)
    logging.getLogger("tests.async").warning("async record %s", tag)

    async def child() -> None:
        print(f"async child {tag}", file=sys.stderr)
    await asyncio.create_task(child())
    return tag


def flood(megabytes: float, line: int = 100, tag: str = "") -> int:
    """Prints ``megabytes`` MB in lines of ``line`` characters, numbered, then ``tag``."""
    body = "x" * (line - 12)
    count = int(megabytes * 1_000_000) // line
    for i in range(count):
        print(f"{i:010d} {body}")
    print(f"end {tag}")
    return count


def print_then_gate(path: str, text: str, limit: float = 120) -> dict:
    """Prints ``text`` then holds the slot until ``path`` exists (a task killed mid-print)."""
    print(text, flush=True)
    return gate(path, limit=limit)


def flaky_chatty(marker: str, fail_times: int = 1) -> str:
    """Prints its attempt number, fails the first ``fail_times`` runs (retries' own logs)."""
    path = Path(marker)
    runs = int(path.read_text()) if path.exists() else 0
    path.write_text(str(runs + 1))
    print(f"attempt {runs + 1} here")
    if runs < fail_times:
        raise RuntimeError(f"failing run {runs + 1}")
    return "ok"


def print_between_gates(texts: list[str], gates: list[str]) -> int:
    """Prints ``texts[i]`` then waits for ``gates[i]``; prints the rest at the end (a log
    that grows while a test watches)."""
    for text, path in zip(texts, gates):
        print(text, flush=True)
        gate(path)
    for text in texts[len(gates):]:
        print(text)
    return len(texts)


# -- hosts and partitions (tests/test_hosts.py) -------------------------------------------------

def held(path: str, log: str, tag: str = "", limit: float = 120) -> str:
    """``gate`` that records its start and its end (``start TAG PID`` / ``end TAG PID``):
    counts how often a task held across a cut started, and which runs got to the end."""
    with open(log, "a") as fh:
        fh.write(f"start {tag} {os.getpid()} {time.time()}\n")
    gate(path, limit=limit)
    with open(log, "a") as fh:
        fh.write(f"end {tag} {os.getpid()} {time.time()}\n")
    return tag
