"""``python -m bench.soak`` (``make soak``): graphs flow while a seeded schedule of faults runs.

    python -m bench.soak                         # 30 minutes, 1,000 graphs, seed 1
    python -m bench.soak --minutes 5 --graphs 300 --seed 7 --json soak.json

Everything runs on private servers under a temporary directory (:mod:`bench.soak_world`): a
PostgreSQL cluster made with initdb, a RabbitMQ node, and ``--hosts`` hosts (network namespaces
of :mod:`tests.hosts`, each with its circus arbiter, a scheduler and a worker). Graphs of mixed
shapes (:mod:`bench.soak_shapes`) are submitted evenly over the first 80 % of the run (at most
``--active`` at a time). Meanwhile the fault schedule, seeded by ``--seed``, injects one fault
at a time, 3 to 9 s apart: SIGKILL of a host's scheduler, worker or whole arbiter (the arbiter
is started again), a restart of the RabbitMQ node or of PostgreSQL (each at most once a
minute), a cut of one host from everything, from the broker or from the database for 1.5 to 3
times ``stale_after``. After each fault the soak waits (at most 120 s) until the system has
recovered: every host's arbiter, scheduler and worker run and beat in the database, and a task
has ended since. At the end it waits for every graph, checks each against its expected
outputs, counts every task's runs (:mod:`bench.soak_check`), runs ``wgops doctor --json`` and
prints the figures. Needs root (namespaces), ``ip``, PostgreSQL's binaries and RabbitMQ.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.soak_check import Fault, judge, render
from bench.soak_shapes import make
from bench.soak_world import ArbiterHost, Postgres, Rabbit, make_hosts
from tests.hosts import network, unavailable

ROOT = Path(__file__).resolve().parent.parent
STALE_AFTER = 3.0
RECOVERY_BOUND = 120.0
FINAL_WAIT = 300.0


class Soak:
    def __init__(self, args: argparse.Namespace, base: Path):
        self.args = args
        self.base = base
        self.rng = random.Random(args.seed)
        self.log = base / "runs.log"
        self.markers = base / "markers"
        self.markers.mkdir()
        self.expected: dict[int, dict[str, Any]] = {}
        self.skipped: list[str] = []
        self.faults: list[Fault] = []
        self.hosts: list[ArbiterHost] = []
        self.stop = threading.Event()
        self.submit_errors = 0
        self.inject_errors: list[str] = []
        self.start_failures = 0         # `daemon start` after an arbiter's SIGKILL that failed
        self.last_restart = {"restart-broker": 0.0, "restart-postgres": 0.0}

    # -- the database, from the soak's side ------------------------------------------------------

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]] | None:
        import psycopg2

        try:
            conn = psycopg2.connect(self.pg.url(), connect_timeout=3)
        except psycopg2.Error:
            return None
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return list(cur.fetchall())
        except psycopg2.Error:
            return None
        finally:
            conn.close()

    def active(self) -> int | None:
        rows = self.sql("SELECT count(*) FROM graph WHERE parent_task_id IS NULL "
                        "AND state IN ('queued', 'running', 'paused')")
        return None if rows is None else int(rows[0][0])

    # -- submitting ---------------------------------------------------------------------------

    def submitter(self, client: Any, duration: float) -> None:
        total = self.args.graphs
        t0 = time.monotonic()
        for i in range(total):
            due = t0 + 0.8 * duration * i / max(1, total)
            while not self.stop.is_set() and (time.monotonic() < due or
                                              (self.active() or 0) >= self.args.active):
                time.sleep(0.1)
            attempt = 0
            while not self.stop.is_set():
                plan = make(random.Random(f"{self.args.seed}-{i}"), f"g{i}a{attempt}",
                            str(self.log), str(self.markers))
                try:
                    gid = client.submit(plan.doc)["id"]
                except Exception:  # noqa: BLE001 - the broker or the database restarting
                    self.submit_errors += 1
                    attempt += 1
                    time.sleep(1)
                    continue
                self.expected[gid] = plan.outputs
                self.skipped.extend(plan.skipped)
                break
            if self.stop.is_set():
                return

    # -- faults -------------------------------------------------------------------------------

    def pick(self) -> tuple[str, int | None]:
        now = time.monotonic()
        kinds = ["kill-scheduler"] * 3 + ["kill-worker"] * 3 + ["kill-arbiter"] * 2 + \
            ["cut-all", "cut-broker", "cut-db"] * 1
        for name, last in self.last_restart.items():
            if now - last > 60:
                kinds.append(name)
        kind = self.rng.choice(kinds)
        host = None if kind.startswith("restart") else self.rng.randrange(len(self.hosts))
        return kind, host

    def inject(self, fault: Fault) -> None:
        kind, host = fault.kind, fault.host
        if kind.startswith("kill-"):
            h = self.hosts[host]  # type: ignore[index]
            what = kind.removeprefix("kill-")
            h.kill(what)
            if what == "arbiter":
                self.start_failures += h.start()
        elif kind == "restart-broker":
            self.last_restart[kind] = time.monotonic()
            self.rabbit.restart()
        elif kind == "restart-postgres":
            self.last_restart[kind] = time.monotonic()
            self.pg.restart()
        else:
            h = self.hosts[host]  # type: ignore[index]
            h.host.cut(kind.removeprefix("cut-"))
            time.sleep(self.rng.uniform(1.5, 3.0) * STALE_AFTER)
            h.host.heal()
        # a kill's recovery counts from the kill (the arbiter's restart included); a restart's
        # and a cut's from when the server is back or the cut healed
        fault.end = fault.start if kind.startswith("kill-") else time.time()

    def whole(self, since: float) -> bool:
        """Every host's arbiter, scheduler and worker run and beat; a task ended since."""
        pids = []
        for h in self.hosts:
            found = h.pids()
            if not (found["arbiter"] and found["scheduler"] and found["worker"]):
                return False
            pids += found["scheduler"] + found["worker"]
        rows = self.sql("SELECT pid FROM scheduler WHERE state = 'running' AND heartbeat > %s "
                        "UNION SELECT pid FROM worker WHERE state = 'running' "
                        "AND heartbeat > %s", since, since)
        if rows is None or not set(pids) <= {r[0] for r in rows}:
            return False
        return self.ended_since(since) or self.active() == 0

    def ended_since(self, since: float) -> bool:
        try:
            with open(self.log, "rb") as fh:
                fh.seek(max(0, os.path.getsize(self.log) - 65536))
                tail = fh.read().decode(errors="replace").splitlines()[1:]
        except OSError:
            return False
        for line in reversed(tail):
            parts = line.split()
            if len(parts) == 4 and parts[0] in ("end", "fail") and float(parts[3]) > since:
                return True
        return False

    def wait_recovered(self, fault: Fault) -> None:
        deadline = time.time() + RECOVERY_BOUND
        while time.time() < deadline:
            if self.whole(fault.end):
                fault.recovered = time.time()
                return
            time.sleep(0.2)

    def fault_loop(self, duration: float) -> None:
        t_end = time.monotonic() + duration
        while time.monotonic() < t_end:
            pause = self.rng.uniform(3, 9)
            if time.monotonic() + pause >= t_end:
                break
            time.sleep(pause)
            kind, host = self.pick()
            print(f"[{time.strftime('%H:%M:%S')}] {kind}"
                  f"{'' if host is None else f' host {host}'}", flush=True)
            fault = Fault(kind, host, time.time())
            self.faults.append(fault)
            try:
                self.inject(fault)
            except Exception as exc:  # noqa: BLE001 - reported, and the soak goes on
                fault.end = time.time()
                self.inject_errors.append(f"{kind}: {exc}")
                print(f"  fault {kind} could not be injected: {exc}", flush=True)
            self.wait_recovered(fault)
            print(f"  recovered in {fault.recovery:.1f} s" if fault.recovery is not None
                  else "  NOT recovered within the bound", flush=True)

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.pg, self.rabbit = Postgres(self.base), Rabbit(self.base)
        ns = "soak" + uuid.uuid4().hex[:8]
        env = {**os.environ, "WGOPS_NAMESPACE": ns, "WGOPS_ALLOW": "bench.soak_tasks:*",
               "WGOPS_HEARTBEAT": "0.5", "WGOPS_STALE_AFTER": str(STALE_AFTER),
               "WGOPS_GRACE": "5", "PYTHONPATH": str(ROOT) + os.pathsep
               + os.environ.get("PYTHONPATH", "")}
        env = {k: v for k, v in env.items() if not (k.startswith("WGOPS_") and k not in (
            "WGOPS_NAMESPACE", "WGOPS_ALLOW", "WGOPS_HEARTBEAT", "WGOPS_STALE_AFTER",
            "WGOPS_GRACE"))}
        try:
            self.pg.start()
            self.rabbit.start()
            return self._run(env, ns)
        finally:
            self.rabbit.stop()
            self.pg.stop()

    def _run(self, env: dict[str, str], ns: str) -> dict[str, Any]:
        import wgops

        a = self.args
        duration = a.minutes * 60
        with network(env, self.pg.url(), self.base, ("127.0.0.1", self.rabbit.port),
                     ("127.0.0.1", self.pg.port)) as net:
            self.hosts = make_hosts(net, a.hosts, a.slots)
            try:
                for h in self.hosts:
                    h.start()
                direct = self.hosts[0].host.direct
                client = wgops.Client(home=direct["WGOPS_HOME"],
                                      broker_url=direct["WGOPS_BROKER_URL"],
                                      db_url=direct["WGOPS_DB_URL"], namespace=ns)
                started = time.time()
                sub = threading.Thread(target=self.submitter, args=(client, duration),
                                       daemon=True)
                sub.start()
                self.fault_loop(duration)
                sub.join(max(0.0, started + duration - time.time()) + 5)
                self.stop.set()
                sub.join(30)
                print(f"[{time.strftime('%H:%M:%S')}] faults over; waiting for "
                      f"{len(self.expected)} graphs", flush=True)
                shows = self.final(client)
                seconds = time.time() - started
                doctor = self.doctor(direct)
                client.close()
            finally:
                for h in self.hosts:
                    h.stop()
        verdict = judge(shows, self.expected, self.skipped, self.log, self.faults)
        print(render(verdict, self.faults, doctor, seconds, a.seed))
        if self.start_failures:
            print(f"daemon start failed {self.start_failures} times after an arbiter's SIGKILL "
                  f"(then retried): {[e for h in self.hosts for e in h.failures][:3]}")
        return {"seed": a.seed, "minutes": a.minutes, "seconds": round(seconds, 1),
                "hosts": a.hosts, "submit_errors": self.submit_errors,
                "arbiter_start_failures": self.start_failures,
                "inject_errors": self.inject_errors,
                "arbiter_start_errors": [e for h in self.hosts for e in h.failures][:20],
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                **verdict.as_dict(),
                "faults": [{"kind": f.kind, "host": f.host,
                            "recovery": None if f.recovery is None else round(f.recovery, 2)}
                           for f in self.faults],
                "longest_recovery": max((f.recovery for f in self.faults
                                         if f.recovery is not None), default=None),
                "doctor": doctor}

    def final(self, client: Any) -> dict[int, dict[str, Any] | None]:
        deadline = time.time() + FINAL_WAIT
        while time.time() < deadline and (self.active() or 0) > 0:
            time.sleep(1)
        shows: dict[int, dict[str, Any] | None] = {}
        for gid in self.expected:
            try:
                shows[gid] = client.show(gid)
            except Exception:  # noqa: BLE001 - counted as lost
                shows[gid] = None
        return shows

    def doctor(self, direct: dict[str, str]) -> dict[str, Any] | None:
        out = subprocess.run([sys.executable, "-m", "wgops", "doctor", "--json"], env=direct,
                             capture_output=True, text=True, timeout=120, cwd=str(ROOT))
        try:
            return json.loads(out.stdout)
        except ValueError:
            return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--graphs", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--hosts", type=int, default=3)
    p.add_argument("--slots", type=int, default=4)
    p.add_argument("--active", type=int, default=60, help="graphs in flight at most")
    p.add_argument("--json", dest="json_out", metavar="PATH", help="also write the figures")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = p.parse_args(argv)
    if a.minutes <= 0 or a.graphs < 1 or a.hosts < 2:
        print("soak: --minutes must be > 0, --graphs >= 1, --hosts >= 2", file=sys.stderr)
        return 2
    # the submitting client's reconnection noise while the broker restarts: not the soak's news
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    for noisy in ("aiormq", "aio_pika"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    why = unavailable()
    if why is not None:
        print(f"soak: cannot make hosts: {why}", file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="wgops-soak-"))
    base.chmod(0o755)
    try:
        result = Soak(a, base).run()
    finally:
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept {base}")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(result, indent=2) + "\n")
    bad = result["graphs_lost"] or result["wrong_outputs"] or result["finished_tasks_run_twice"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
