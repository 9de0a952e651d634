"""Task logs against the real system (DESIGN §12), on SQLite and PostgreSQL: what python, async
and shell tasks print and log is kept per attempt, bounded (the tail), shown by
``wgops graph logs`` and the client, and kept when a task is killed mid-print."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cluster import Cluster, wait_for

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (INFO|WARNING) tests\.\w+: .+$")


def up(db_url: str, cluster: Cluster, **env: str) -> Cluster:
    cluster.env.update({"WGOPS_DB_URL": db_url, **env})
    cluster.cli("init")
    cluster.scheduler()
    cluster.worker(slots=4)
    return cluster


def logs(cluster: Cluster, gid: int, task: str, *args: str) -> dict:
    return json.loads(cluster.cli("graph", "logs", str(gid), task, "--json", *args).stdout)


def stored(cluster: Cluster, gid: int, task: str) -> list[tuple[int, int, bool]]:
    """(attempt, bytes of text, complete) of each stored row of the task."""
    from wgops.store.models import Task, TaskLog

    def rows() -> list[tuple[int, int, bool]]:
        t = Task.get(Task.graph == gid, Task.name == task)
        return [(r.attempt, len(r.text.encode()), r.complete)
                for r in TaskLog.select().where(TaskLog.task == t.id).order_by(TaskLog.attempt)]
    return cluster.db(rows)


def test_python_async_shell_mapped_and_retried_tasks_keep_their_output(
        db_url: str, cluster: Cluster, tmp_path: Path) -> None:
    up(db_url, cluster)
    marker = tmp_path / "flaky"
    gid = cluster.submit({"name": "chatter", "inputs": {"tags": [1, 2, 3]}, "tasks": {
        "py": {"run": "tests.tasks:chatty", "args": {"tag": "P"}},
        "aio": {"run": "tests.tasks:async_chatty", "args": {"tag": "A"}},
        "aio2": {"run": "tests.tasks:async_chatty", "args": {"tag": "B"}},
        "sh": {"shell": "echo shell out; echo shell err >&2; echo ${py}"},
        "quiet": {"run": "tests.tasks:noop"},
        "copies": {"map": "${inputs.tags}", "run": "tests.tasks:chatty",
                   "args": {"tag": "${item}"}},
        "retried": {"run": "tests.tasks:flaky_chatty",
                    "args": {"marker": str(marker), "fail_times": 2}, "retries": 2},
    }})
    assert finished(cluster, gid)

    py = logs(cluster, gid, "py")
    assert set(py) >= {"graph", "task", "attempt", "text"}
    assert (py["graph"], py["task"], py["attempt"]) == (gid, "py", 1)
    lines = py["text"].splitlines()
    assert lines[:2] == ["out line P", "err line P"]
    assert [line for line in lines if "record" in line] == lines[2:]
    assert len(lines) == 4 and all(LINE.match(line) for line in lines[2:])
    assert " INFO tests.chatty: info record P" in lines[2]
    assert " WARNING tests.chatty: warning record P" in lines[3]
    assert "not shown" not in py["text"]

    # async tasks run together on the worker's loop: each keeps only its own output
    for name, tag in (("aio", "A"), ("aio2", "B")):
        text = logs(cluster, gid, name)["text"]
        other = "B" if tag == "A" else "A"
        assert f"async out {tag}\n" in text and f"async child {tag}\n" in text
        assert re.search(rf" WARNING tests\.async: async record {tag}$", text, re.M)
        assert f" {other}\n" not in text

    sh = logs(cluster, gid, "sh")["text"]
    assert sorted(sh.splitlines()) == ["P", "shell err", "shell out"]

    assert logs(cluster, gid, "quiet")["text"] == ""
    assert stored(cluster, gid, "quiet") == []          # nothing printed: no row written

    out = cluster.cli("graph", "logs", str(gid), "copies[1]")
    assert out.stdout.splitlines()[:2] == ["out line 2", "err line 2"]

    # each attempt has its own log; the last by default
    assert logs(cluster, gid, "retried")["attempt"] == 3
    for attempt in (1, 2, 3):
        text = logs(cluster, gid, "retried", "--attempt", str(attempt))["text"]
        assert text == f"attempt {attempt} here\n"
    assert [row[0] for row in stored(cluster, gid, "retried")] == [1, 2, 3]

    # the Python client gives the same documents
    import wgops

    with wgops.Client(settings=cluster_settings(cluster)) as client:
        assert client.logs(gid, "retried", attempt=2)["text"] == "attempt 2 here\n"
        assert client.logs(gid, "py") == py
        with pytest.raises(wgops.NotFound):
            client.logs(gid, "retried", attempt=4)
        with pytest.raises(wgops.NotFound):
            client.logs(gid, "ghost")
        with pytest.raises(wgops.NotFound):
            client.logs(gid + 1000, "py")


def finished(cluster: Cluster, gid: int, timeout: float = 60) -> bool:
    """The graph finished; else what its tasks and daemons say."""
    try:
        return cluster.wait_graph(gid, timeout)["state"] == "finished"
    except AssertionError:
        states = {n: (t["state"], t["attempts"], t["worker"])
                  for n, t in cluster.tasks(gid).items()}
        logs = "\n".join(cluster.log(p.pid) for p in cluster.procs)
        raise AssertionError(f"graph {gid} did not finish: {states}\n{logs}") from None


def cluster_settings(cluster: Cluster):  # noqa: ANN201 - a Settings
    from wgops.store.config import Settings

    return Settings.load(env=cluster.env)


def test_a_task_printing_20_mb_keeps_the_tail(db_url: str, cluster: Cluster) -> None:
    up(db_url, cluster)
    gid = cluster.submit({"name": "flood", "tasks": {
        "flood": {"run": "tests.tasks:flood", "args": {"megabytes": 20, "tag": "T"}},
        "shflood": {"shell": "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 20000000; "
                             "echo; echo shell end"},
        "after": {"run": "tests.tasks:add", "args": {"a": "${flood}", "b": 0}}}})
    shown = cluster.wait_graph(gid, timeout=120)
    assert shown["state"] == "finished", shown
    for name, last in (("flood", "end T"), ("shflood", "shell end")):
        data = logs(cluster, gid, name)
        assert data["text"].endswith(f"\n{last}\n")
        assert 990_000 <= len(data["text"].encode()) <= 1_000_000
        assert data["dropped"] >= 19_000_000
        ((attempt, size, complete),) = stored(cluster, gid, name)
        assert size <= 1_000_000 and complete
    numbers = [int(line.split()[0]) for line in logs(cluster, gid, "flood")["text"]
               .splitlines()[1:-1]]
    assert numbers == list(range(numbers[0], 200_000))      # the tail, in order, nothing lost
    out = cluster.cli("graph", "logs", str(gid), "flood")
    assert "were not kept (max_log_bytes)" in out.stderr


def test_a_task_killed_mid_print_keeps_what_it_printed(db_url: str, cluster: Cluster,
                                                       tmp_path: Path) -> None:
    up(db_url, cluster, WGOPS_MAX_LOG_BYTES="5000")
    never = str(tmp_path / "never")
    gid = cluster.submit({"name": "killed", "tasks": {
        "timed": {"run": "tests.tasks:print_then_gate",
                  "args": {"path": never, "text": "before the timeout"}, "timeout": 2},
        "held": {"run": "tests.tasks:print_then_gate",
                 "args": {"path": never, "text": "y" * 6000 + "\nbefore the kill"}},
        "shell": {"shell": "echo shell before the kill; exec sleep 120"}}})
    # followed live: what the running tasks printed so far is there before they end
    for name, text in (("held", "before the kill"), ("shell", "shell before the kill")):
        data = wait_for(lambda n=name, t=text: (d := logs(cluster, gid, n))["text"].endswith(
            t + "\n") and d, 60, 0.2, f"{name}'s output while it runs")
        assert data["running"]
    held = logs(cluster, gid, "held")
    assert len(held["text"]) <= 5000 and held["dropped"] > 1000      # bounded while running
    wait_for(lambda: cluster.tasks(gid)["timed"]["state"] == "failed", 60, 0.2, "the timeout")
    assert logs(cluster, gid, "timed")["text"] == "before the timeout\n"
    cluster.cli("graph", "kill", str(gid))
    assert cluster.wait_graph(gid)["state"] == "killed"
    wait_for(lambda: all(complete for name in ("held", "shell")
                         for _, _, complete in stored(cluster, gid, name)), 30, 0.2,
             "the killed tasks' last log writes")
    assert logs(cluster, gid, "held")["text"].endswith("\nbefore the kill\n")
    assert logs(cluster, gid, "shell")["text"] == "shell before the kill\n"
    assert not logs(cluster, gid, "held")["running"]


def test_logs_bad_input_is_one_line_and_exit_2(cluster: Cluster) -> None:
    cluster.scheduler()
    cluster.worker(slots=1)
    gid = cluster.submit({"name": "one", "tasks": {"a": {"run": "tests.tasks:chatty"},
                                                   "b": {"run": "tests.tasks:noop",
                                                         "after": ["a"]}}})
    assert cluster.wait_graph(gid)["state"] == "finished"
    cases = [(["graph", "logs", "999999", "a"], "no graph 999999"),
             (["graph", "logs", str(gid), "ghost"], "no task 'ghost'"),
             (["graph", "logs", str(gid), "a", "--attempt", "2"], "no attempt 2"),
             (["graph", "logs", str(gid), "a", "--attempt", "0"], "--attempt"),
             (["graph", "logs", str(gid), "a", "--attempt", "x"], "--attempt"),
             (["graph", "logs", "x", "a"], "GRAPH_ID"),
             (["graph", "logs", str(gid)], "TASK")]
    for args, says in cases:
        out = cluster.cli(*args, check=False)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert out.stderr.count("\n") == 1 and says in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr and out.stdout == ""
    ok = cluster.cli("graph", "logs", str(gid), "a", "--attempt", "1")
    assert ok.stdout.startswith("out line \nerr line \n")
