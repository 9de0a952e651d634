"""``wgops daemon``: run one daemon in the foreground (what circus runs) and, through circus,
start, stop, scale and inspect the daemons of an installation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from wgops.console.cli.base import AppContext, cli

if TYPE_CHECKING:
    from wgops.daemon.supervisor import Supervisor


@cli.group()
def daemon() -> None:
    """Run and supervise scheduler and worker daemons."""


@daemon.command()
@click.argument("kind", type=click.Choice(["scheduler", "worker"]))
@click.option("--slots", type=click.IntRange(1, 1024), default=4, show_default=True,
              help="Worker: tasks run at once (the AMQP prefetch).")
@click.option("--pool", "pools", multiple=True, metavar="NAME",
              help="Worker: a pool to serve (repeatable; default: default).")
@click.option("--id", "daemon_id", help="Daemon id (default: KIND-HOST-PID).")
@click.pass_obj
def run(app: AppContext, kind: str, slots: int, pools: tuple[str, ...],
        daemon_id: str | None) -> None:
    """Run one scheduler or worker in the foreground until SIGTERM/SIGINT."""
    from wgops.daemon.runner import run_daemon

    run_daemon(app.settings, kind, slots=slots, pools=pools or ("default",),
               daemon_id=daemon_id, debug=app.debug)


# -- supervision through circus ------------------------------------------------------------

KIND = click.Choice(["scheduler", "worker"])


def _supervisor(app: AppContext) -> Supervisor:
    from wgops.daemon.supervisor import Supervisor

    return Supervisor(app.settings)


def _progress(message: str) -> None:
    click.echo(message, err=True)


def _counts(watchers: dict) -> str:
    text = ", ".join(f"{w.numprocesses} {name}{'s' if w.numprocesses != 1 else ''}"
                     for name, w in watchers.items() if name in ("scheduler", "worker"))
    return text + (", the metrics exporter" if "metrics" in watchers else "")


@daemon.command()
@click.option("--schedulers", type=click.IntRange(0, 64), default=1, show_default=True,
              help="Scheduler daemons (0 for a worker-only host).")
@click.option("--workers", type=click.IntRange(0, 256), default=1, show_default=True,
              help="Worker daemons.")
@click.option("--slots", type=click.IntRange(1, 1024), default=4, show_default=True,
              help="Tasks each worker runs at once.")
@click.option("--pool", "pools", multiple=True, metavar="NAME",
              help="A pool the workers serve (repeatable; default: default).")
@click.option("--managed-broker", is_flag=True,
              help="If no broker is reachable, run a private RabbitMQ node under circus.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None, metavar="P",
              help="Also run the Prometheus exporter (wgops metrics) on this port.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              help="Address the exporter listens on (with --metrics-port).")
@click.option("--timeout", type=float, default=60.0, show_default=True,
              help="Seconds to wait for every daemon to announce itself.")
@click.pass_obj
def start(app: AppContext, schedulers: int, workers: int, slots: int, pools: tuple[str, ...],
          managed_broker: bool, metrics_port: int | None, metrics_host: str,
          timeout: float) -> None:
    """Start the circus arbiter in the background; return when every daemon is up."""
    from wgops.daemon.circus_config import Plan
    from wgops.store.document import POOL_RE

    for name in pools:
        if not POOL_RE.fullmatch(name):
            raise click.BadParameter(f"bad pool name {name!r}", param_hint="--pool")
    sup = _supervisor(app)
    plan = Plan(schedulers, workers, slots, tuple(dict.fromkeys(pools)) or ("default",),
                managed_broker, metrics_port, metrics_host)
    watchers = sup.start(plan, timeout=timeout, progress=_progress)
    if watchers is None:
        proc = sup.process()
        click.echo(f"already running: arbiter pid {proc.pid if proc else '?'} for "
                   f"{app.settings.home} (nothing changed)")
        return
    proc = sup.process()
    click.echo(f"started: arbiter pid {proc.pid if proc else '?'}, {_counts(watchers)} "
               f"(logs in {sup.layout.logs})")
    if metrics_port is not None:
        click.echo(f"metrics: http://{metrics_host}:{metrics_port}/metrics")


@daemon.command()
@click.option("--timeout", type=float, default=None,
              help="Seconds before what is left is killed (default: grace + 25).")
@click.pass_obj
def stop(app: AppContext, timeout: float | None) -> None:
    """Stop the arbiter gracefully: workers drain, schedulers hand back their graphs."""
    result = _supervisor(app).stop(timeout=timeout)
    if result is None:
        click.echo(f"no arbiter running for {app.settings.home}")
        return
    note = f"; killed {len(result.killed)} that outlived the timeout" if result.killed else ""
    if result.orphans:
        note += (f"; and {len(result.orphans)} daemons that ran outside any arbiter (pids "
                 f"{', '.join(map(str, result.orphans))})")
    if result.pid is None:
        click.echo(f"no arbiter running for {app.settings.home}; stopped "
                   f"{len(result.orphans)} daemons that ran outside it (pids "
                   f"{', '.join(map(str, result.orphans))}) in {result.seconds:.1f}s")
        return
    click.echo(f"stopped: arbiter pid {result.pid} and {result.processes} processes in "
               f"{result.seconds:.1f}s{note}")


@daemon.command()
@click.option("--timeout", type=float, default=None,
              help="Seconds each rolling step may take (default: grace + 70).")
@click.pass_obj
def restart(app: AppContext, timeout: float | None) -> None:
    """Rolling restart: new daemons start, then the old ones stop gracefully."""
    from wgops.console.cli.base import fail

    sup = _supervisor(app)
    if sup.process() is None:
        raise fail(f"no arbiter running for {app.settings.home} (use wgops daemon start)")
    watchers = sup.restart(timeout=timeout)
    click.echo(f"restarted: {_counts(watchers)}")


@daemon.command()
@click.option("--json", "as_json", is_flag=True, help="The DESIGN §6 status document.")
@click.option("--all", "full", is_flag=True,
              help="With --json: also the arbiter and per-daemon details.")
@click.pass_obj
def status(app: AppContext, as_json: bool, full: bool) -> None:
    """Arbiter, daemons, broker, database and queues."""
    from wgops.console.cli.output import echo_json
    from wgops.daemon.status import collect_status, contract

    data = collect_status(app.settings)
    if as_json:
        echo_json(data if full else contract(data))
        return
    click.echo(_render_status(data))


def _render_status(data: dict) -> str:
    from wgops.console.cli.output import duration, table

    arbiter = data["arbiter"]
    lines = [f"home      {data['home']}  namespace {data['namespace']}"]
    if arbiter["running"]:
        watchers = ", ".join(f"{name} {w['state']} {len(w['pids'])}/{w['numprocesses']}"
                             for name, w in arbiter["watchers"].items())
        lines.append(f"arbiter   pid {arbiter['pid']}  {arbiter['endpoint']}  {watchers}")
    else:
        lines.append(f"arbiter   {arbiter['error']}")
    for part in ("broker", "database"):
        item = data[part]
        state = "ok" if item["ok"] and not item.get("error") else item.get("error") or "down"
        lines.append(f"{part:<9} {item['url']}  {state}")
    for group in ("schedulers", "workers"):
        rows = data[group]
        lines.append("")
        if not rows:
            lines.append(f"no {group}")
            continue
        extra = ["graphs"] if group == "schedulers" else ["busy/slots", "pools"]
        lines.append(table(
            ["id", "pid", "state", *extra, "uptime", "cpu%", "mem MB"],
            [[d["id"], d["pid"], d["state"],
              *([d["graphs"]] if group == "schedulers" else
                [f"{d['busy']}/{d['slots']}", ",".join(d["pools"])]),
              duration(d["uptime"]),
              "-" if d["cpu_percent"] is None else f"{d['cpu_percent']:.0f}",
              "-" if d["memory"] is None else f"{d['memory'] / 1e6:.0f}"] for d in rows]))
    orphans = [f"{group[:-1]} {d['id']} (pid {d['pid']})" for group in ("schedulers", "workers")
               for d in data[group] if d.get("orphan")]
    if orphans:
        lines += ["", f"orphans   {len(orphans)} daemons of this installation run outside any "
                  f"arbiter: {', '.join(orphans)}; wgops daemon stop (or start) stops them"]
    lines.append("")
    if data["queues"]:
        lines.append(table(["queue", "messages", "consumers"],
                           [[q["name"], q["messages"], q["consumers"]] for q in data["queues"]]))
    else:
        lines.append("no queues" if data["broker"]["ok"] else "queues unknown (broker down)")
    return "\n".join(lines)


def _scale(app: AppContext, kind: str, delta: int, wait: bool, timeout: float | None) -> None:
    from wgops.console.cli.base import fail

    sup = _supervisor(app)
    if sup.process() is None:
        raise fail(f"no arbiter running for {app.settings.home} (use wgops daemon start)")
    count = sup.scale(kind, delta, wait=wait, timeout=timeout)
    click.echo(f"{kind}s: {count}")


@daemon.command()
@click.argument("kind", type=KIND)
@click.argument("n", type=click.IntRange(1, 256), default=1)
@click.option("--no-wait", is_flag=True, help="Return without waiting for the new daemons.")
@click.option("--timeout", type=float, default=None)
@click.pass_obj
def incr(app: AppContext, kind: str, n: int, no_wait: bool, timeout: float | None) -> None:
    """Add N schedulers or workers (they announce themselves before this returns)."""
    _scale(app, kind, n, not no_wait, timeout)


@daemon.command()
@click.argument("kind", type=KIND)
@click.argument("n", type=click.IntRange(1, 256), default=1)
@click.option("--no-wait", is_flag=True, help="Return without waiting for them to stop.")
@click.option("--timeout", type=float, default=None)
@click.pass_obj
def decr(app: AppContext, kind: str, n: int, no_wait: bool, timeout: float | None) -> None:
    """Remove N schedulers or workers; they stop gracefully (workers drain)."""
    _scale(app, kind, -n, not no_wait, timeout)


@daemon.command()
@click.argument("which", type=click.Choice(["scheduler", "worker", "metrics", "circus",
                                           "rabbitmq"]),
                required=False)
@click.option("-n", "lines", type=click.IntRange(0, 100_000), default=20, show_default=True,
              help="Lines to show from the end of each log.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
@click.pass_obj
def logs(app: AppContext, which: str | None, lines: int, follow: bool) -> None:
    """The daemons' logs under $WGOPS_HOME/logs (default: scheduler and worker)."""
    from wgops.daemon.circus_config import Layout
    from wgops.daemon.logfiles import follow_files, tail_lines

    layout = Layout(app.settings.home)
    names = [which] if which else ["scheduler", "worker"]
    paths = [layout.log(name) for name in names]
    if not any(p.exists() for p in paths):
        click.echo(f"no logs yet in {layout.logs}", err=True)
        if not follow:
            return
    prefix = len(paths) > 1
    for name, path in zip(names, paths):
        for line in tail_lines(path, lines):
            click.echo(f"{name}: {line}" if prefix else line)
    if follow:
        try:
            for name, line in follow_files(dict(zip(names, paths))):
                click.echo(f"{name}: {line}" if prefix else line)
        except KeyboardInterrupt:
            pass
