"""``wgops demo``: daemons, the example graphs flowing, and the console (or, ``--headless``,
a run of the examples to the end with a summary).

The console demo submits the paced documents (``examples/demo_*.yaml``: tasks of seconds, a
few transient failures and retries, one two-minute task) so slots fill and queues move while
one watches; ``--fast`` and ``--headless`` use the instant examples."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

from wgops.console.cli.base import AppContext, cli
from wgops.console.cli.output import duration, short, table
from wgops.store.config import Settings
from wgops.store.errors import Unreachable

DEMO_FILES = ("bands.yaml", "fanout.yaml", "sweep.yaml", "converge.yaml", "shell_job.yaml",
              "hello.json")
PACED_FILES = ("demo_bands.yaml", "demo_fanout.yaml", "demo_sweep.yaml", "demo_long.yaml",
               "shell_job.yaml", "hello.json")
PACED_TRICKLE = 8.0       # seconds between two paced graphs: the slots keep up, queues move


def example_paths(paced: bool = False) -> list[Path]:
    from wgops import examples

    root = Path(examples.__file__).parent
    return [root / name for name in (PACED_FILES if paced else DEMO_FILES)
            if (root / name).exists()]


def _spawn(settings: Settings, kind: str, *extra: str) -> subprocess.Popen[bytes]:
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    log = open(settings.logs_dir / f"demo-{kind}.log", "ab")
    env = {**os.environ, "WGOPS_HOME": str(settings.home), "WGOPS_SHELL": "on"}
    return subprocess.Popen([sys.executable, "-m", "wgops", "daemon", "run", kind, *extra],
                            env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_announced(settings: Settings, procs: dict[str, subprocess.Popen[bytes]],
                    timeout: float = 30) -> None:
    from wgops.daemon.probes import announced_pids

    deadline = time.monotonic() + timeout
    while True:
        for kind, proc in procs.items():
            if proc.poll() is not None:
                raise Unreachable(f"the demo {kind} exited with code {proc.returncode}; see "
                                  f"{settings.logs_dir / f'demo-{kind}.log'}")
        if all(announced_pids(settings, kind, [proc.pid]) for kind, proc in procs.items()):
            return
        if time.monotonic() > deadline:
            raise Unreachable("the demo daemons did not announce themselves within "
                              f"{timeout:.0f}s; see {settings.logs_dir}")
        time.sleep(0.2)


def _stop(procs: list[subprocess.Popen[bytes]], grace: float) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(grace + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def _run_examples(settings: Settings, paths: list[Path]) -> list[dict[str, Any]]:
    from wgops.aclient import AsyncClient
    from wgops.store.errors import WaitTimeout

    async def one(client: AsyncClient, path: Path) -> dict[str, Any]:
        started = time.monotonic()
        result = await client.submit(path)
        try:
            shown = await client.wait(result["id"], timeout=120)
        except WaitTimeout:
            shown = await client.show(result["id"])
        return {**result, "state": shown["state"], "outputs": shown["outputs"],
                "error": shown["error"], "took": time.monotonic() - started}

    async with AsyncClient(settings=settings, actor="demo") as client:
        return list(await asyncio.gather(*(one(client, p) for p in paths)))


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def headless(app: AppContext) -> int:
    signal.signal(signal.SIGTERM, _terminate)     # so the daemons below are stopped too
    settings = app.settings
    app.store().close()
    procs = {"scheduler": _spawn(settings, "scheduler"),
             "worker": _spawn(settings, "worker", "--slots", "4")}
    try:
        _wait_announced(settings, procs)
        click.echo(f"scheduler pid {procs['scheduler'].pid} and worker pid "
                   f"{procs['worker'].pid} up; running {len(example_paths())} example graphs")
        results = app.run(_run_examples(settings, example_paths()))
    finally:
        _stop(list(procs.values()), settings.grace)
    from wgops.store.graphs import progress

    store = app.store()
    counts = progress(r["id"] for r in results)
    store.close()
    click.echo(table(["id", "graph", "state", "tasks", "took", "outputs"], [
        [r["id"], r["name"], r["state"], "{1}/{0}".format(*counts[r["id"]]),
         duration(r["took"]), short(r.get("outputs") or r.get("error") or "", 60)]
        for r in results]))
    click.echo("daemons stopped")
    return 0 if all(r["state"] == "finished" for r in results) else 1


def interactive(app: AppContext, workers: int, copies: int, paced: bool = True) -> None:
    from wgops.aclient import AsyncClient
    from wgops.daemon.circus_config import Plan
    from wgops.daemon.supervisor import Supervisor

    os.environ["WGOPS_SHELL"] = "on"
    settings = Settings.load(home=app.home)
    app.store().close()
    supervisor = Supervisor(settings)
    if supervisor.process() is None:
        click.echo("starting the daemons (1 scheduler, "
                   f"{workers} workers with 4 slots) under circus ...")
        supervisor.start(Plan(schedulers=1, workers=workers, slots=4))
    else:
        click.echo("the daemons already run; submitting the examples to them")

    paths = example_paths(paced)
    long_once = [p for p in paths if p.name == "demo_long.yaml"]
    others = [p for p in paths if p not in long_once]

    async def submit_all() -> int:
        n = 0
        async with AsyncClient(settings=settings, actor="demo") as client:
            for path in long_once:                   # the long task: once is enough
                await client.submit(path)
                n += 1
            for _ in range(copies):
                for path in others:
                    await client.submit(path)
                    n += 1
        return n

    n = app.run(submit_all())
    pace = "paced: tasks take seconds, a few fail and retry" if paced else "instant"
    click.echo(f"submitted {n} example graphs ({pace}); opening the console")
    from wgops.console.app import WgopsApp
    from wgops.console.data.backend import LiveBackend
    from wgops.store.db import Store

    stop = threading.Event()
    trickle = threading.Thread(target=_trickle, args=(settings, stop, others,
                                                      PACED_TRICKLE if paced else 3.0),
                               name="demo-trickle", daemon=True)
    trickle.start()
    try:
        WgopsApp(LiveBackend(settings, Store(settings.db_url))).run()
    finally:
        stop.set()
        trickle.join(5)
    click.echo("console closed; the daemons keep running (wgops daemon status, "
               "wgops daemon stop)")


def _trickle(settings: Settings, stop: threading.Event, paths: list[Path],
             every: float = 3.0, most: int = 200) -> None:
    """While the console is open, keep example graphs flowing: one every few seconds."""
    from wgops.client import Client

    with Client(settings=settings, actor="demo") as client:
        for i in range(most):
            if stop.wait(every):
                return
            try:
                client.submit(paths[i % len(paths)], priority=i % 3)
            except Exception:  # noqa: BLE001 - the demo goes on; the console shows the state
                logging.getLogger(__name__).debug("demo submit failed", exc_info=True)


@cli.command()
@click.option("--headless", is_flag=True,
              help="Run the examples to the end on plain subprocesses and print a summary.")
@click.option("--workers", type=click.IntRange(1, 16), default=2, show_default=True)
@click.option("--copies", type=click.IntRange(1, 100), default=3, show_default=True,
              help="How many times each example graph is submitted.")
@click.option("--fast", is_flag=True,
              help="The instant examples instead of the paced ones (tasks of seconds).")
@click.pass_obj
def demo(app: AppContext, headless_: bool = False, workers: int = 2, copies: int = 3,
         fast: bool = False, **kw: Any) -> None:
    """Daemons, the example graphs flowing, and the console."""
    if kw.get("headless") or headless_:
        raise click.exceptions.Exit(headless(app))
    interactive(app, workers, copies, paced=not fast)
