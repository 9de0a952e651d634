"""The command line, through real subprocesses: exit codes, one-line errors, JSON shapes."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pytest

from tests.conftest import ROOT, wgops

EXAMPLES = ROOT / "examples"
BROKER = "amqp://guest:guest@127.0.0.1:5672/"
LIST_KEYS = {"id", "name", "state", "priority", "scheduler", "tasks_total", "tasks_done"}
SHOW_KEYS = {"id", "name", "state", "priority", "scheduler", "parent", "outputs", "tasks"}
TASK_KEYS = {"name", "state", "attempts", "worker", "started", "finished", "result", "error"}


def one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("wgops: error: ")
    return lines[0]


async def _queue_depth(name: str) -> int | None:
    connection = await aio_pika.connect(BROKER)
    try:
        channel = await connection.channel()
        try:
            queue = await channel.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return None
        return queue.declaration_result.message_count
    finally:
        await connection.close()


async def _delete_topology(ns: str) -> None:
    connection = await aio_pika.connect(BROKER)
    try:
        channel = await connection.channel()
        for queue in (f"{ns}.graphs", f"{ns}.dead"):
            await channel.queue_delete(queue)
        await channel.exchange_delete(f"{ns}.events")
    finally:
        await connection.close()


@pytest.fixture
def env(wgops_env: dict[str, str], namespace: str) -> Iterator[dict[str, str]]:
    """An initialised installation whose broker names are deleted afterwards."""
    wgops("init", env=wgops_env, check=True)
    yield wgops_env
    asyncio.run(_delete_topology(namespace))


def submit_json(env: dict[str, str], *args: str) -> dict:
    proc = wgops("graph", "submit", *args, "--json", env=env, check=True)
    return json.loads(proc.stdout)


# -- init ---------------------------------------------------------------------------------


def test_init_is_idempotent(wgops_env: dict[str, str]) -> None:
    home = Path(wgops_env["WGOPS_HOME"])
    first = wgops("init", env=wgops_env, check=True)
    assert "applied" in first.stdout and (home / "wgops.db").exists()
    config = home / "config.toml"
    config.write_text(config.read_text() + 'namespace = "' + wgops_env["WGOPS_NAMESPACE"] + '"\n')
    edited = config.read_text()
    second = wgops("init", env=wgops_env, check=True)
    assert "up to date" in second.stdout
    assert config.read_text() == edited                      # an existing config is kept
    assert "guest:***@" in second.stdout and "guest:guest" not in second.stdout


# -- validate -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bands.yaml", "bands_sub.yaml", "fanout.yaml",
                                  "shell_job.yaml", "hello.json"])
def test_validate_examples(wgops_env: dict[str, str], name: str) -> None:
    proc = wgops("graph", "validate", str(EXAMPLES / name), env=wgops_env)
    assert proc.returncode == 0, proc.stderr
    assert "valid graph" in proc.stdout and proc.stderr == ""


def test_validate_json_output(wgops_env: dict[str, str]) -> None:
    proc = wgops("graph", "validate", str(EXAMPLES / "fanout.yaml"), "--json", env=wgops_env,
                 check=True)
    assert json.loads(proc.stdout) == {"name": "fanout", "valid": True, "tasks": 10}


@pytest.mark.parametrize("text,says", [
    ("name: g\ntasks:\n  a: {run: 'm:f', after: [b]}\n  b: {run: 'm:f', after: [a]}\n",
     "cycle between tasks: a -> b -> a"),
    ("name: g\ntasks:\n  a: {run: 'm:f', args: {x: '${zz.k}'}}\n", "unknown task 'zz'"),
    ("name: g\ntasks:\n  a: {run: [\n", "invalid YAML at line 4"),
])
def test_validate_bad_document(wgops_env: dict[str, str], tmp_path: Path, text: str,
                               says: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    line = one_line_error(wgops("graph", "validate", str(path), env=wgops_env), 2)
    assert says in line and str(path) in line


def test_validate_missing_file(wgops_env: dict[str, str], tmp_path: Path) -> None:
    line = one_line_error(wgops("graph", "validate", str(tmp_path / "no.yaml"),
                                env=wgops_env), 2)
    assert "no such file" in line


def test_bad_set_override(wgops_env: dict[str, str]) -> None:
    line = one_line_error(wgops("graph", "validate", str(EXAMPLES / "bands.yaml"),
                                "--set", "structure", env=wgops_env), 2)
    assert "--set 'structure'" in line


def test_set_override_reaching_an_unknown_input(wgops_env: dict[str, str], tmp_path: Path) \
        -> None:
    path = tmp_path / "needs.yaml"
    path.write_text("name: g\ntasks:\n  a: {run: 'm:f', args: {x: '${inputs.n}'}}\n")
    assert "--set n=VALUE" in one_line_error(wgops("graph", "validate", str(path),
                                                   env=wgops_env), 2)
    assert wgops("graph", "validate", str(path), "--set", "n=3", env=wgops_env).returncode == 0


# -- submit, list, show --------------------------------------------------------------------


def test_submit_stores_and_publishes(env: dict[str, str], namespace: str) -> None:
    result = submit_json(env, str(EXAMPLES / "bands.yaml"), "--set", "structure=Ge",
                         "--priority", "7")
    assert set(result) == {"id", "name", "state"}
    assert result["name"] == "bands" and result["state"] == "queued"
    assert asyncio.run(_queue_depth(f"{namespace}.graphs")) == 1
    rows = json.loads(wgops("graph", "list", "--json", env=env, check=True).stdout)
    assert rows == [{"id": result["id"], "name": "bands", "state": "queued", "priority": 7,
                     "scheduler": None, "tasks_total": 4, "tasks_done": 0}]
    shown = json.loads(wgops("graph", "show", str(result["id"]), "--json", env=env,
                             check=True).stdout)
    assert SHOW_KEYS <= set(shown)
    assert (shown["id"], shown["state"], shown["priority"], shown["parent"],
            shown["outputs"]) == (result["id"], "queued", 7, None, None)
    assert shown["inputs"]["structure"] == "Ge"
    assert [t["name"] for t in shown["tasks"]] == ["relax", "scf", "report", "bands"]
    for task in shown["tasks"]:
        assert TASK_KEYS <= set(task)
        assert (task["state"], task["attempts"], task["started"], task["error"]) == \
            ("waiting", 0, None, None)
    human = wgops("graph", "show", str(result["id"]), env=env, check=True).stdout
    assert "relax" in human and "waiting for relax" in human


def test_list_json_shape_and_filter(env: dict[str, str]) -> None:
    assert json.loads(wgops("graph", "list", "--json", env=env, check=True).stdout) == []
    a = submit_json(env, str(EXAMPLES / "fanout.yaml"))
    b = submit_json(env, str(EXAMPLES / "hello.json"))
    rows = json.loads(wgops("graph", "list", "--json", env=env, check=True).stdout)
    assert [r["id"] for r in rows] == [b["id"], a["id"]]
    assert all(set(r) == LIST_KEYS for r in rows)
    assert [r["tasks_total"] for r in rows] == [2, 10]
    finished = wgops("graph", "list", "--state", "finished", "--json", env=env, check=True)
    assert json.loads(finished.stdout) == []
    assert "fanout" in wgops("graph", "list", env=env, check=True).stdout


def test_show_unknown_graph(env: dict[str, str]) -> None:
    assert "no graph 4242" in one_line_error(wgops("graph", "show", "4242", "--json",
                                                   env=env), 2)


def test_submit_bad_document_stores_nothing(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: g\ntasks:\n  a: {shell: 'true', run: 'm:f'}\n")
    assert "exactly one of run, shell, graph or build" in one_line_error(
        wgops("graph", "submit", str(path), env=env), 2)
    assert json.loads(wgops("graph", "list", "--json", env=env, check=True).stdout) == []


def test_priority_out_of_range(env: dict[str, str]) -> None:
    proc = wgops("graph", "submit", str(EXAMPLES / "hello.json"), "--priority", "12", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--priority" in proc.stderr
    assert json.loads(wgops("graph", "list", "--json", env=env, check=True).stdout) == []


# -- unreachable broker and database ------------------------------------------------------


def test_submit_with_unreachable_broker(env: dict[str, str]) -> None:
    bad = {**env, "WGOPS_BROKER_URL": "amqp://guest:secretpw@127.0.0.1:1/"}
    proc = wgops("graph", "submit", str(EXAMPLES / "bands.yaml"), env=bad, timeout=60)
    line = one_line_error(proc, 3)
    assert "secretpw" not in proc.stdout + proc.stderr
    assert "guest:***@127.0.0.1:1" in line and "unreachable" in line
    assert json.loads(wgops("graph", "list", "--json", env=env, check=True).stdout) == []


@pytest.mark.parametrize("args", [("graph", "list"), ("graph", "show", "1"), ("pool", "list"),
                                  ("init",)])
def test_unreachable_database(wgops_env: dict[str, str], args: tuple[str, ...]) -> None:
    bad = {**wgops_env, "WGOPS_DB_URL": "postgresql://pg:dbsecret@127.0.0.1:1/wgops"}
    proc = wgops(*args, env=bad, timeout=60)
    line = one_line_error(proc, 3)
    assert "dbsecret" not in proc.stdout + proc.stderr
    assert "pg:***@127.0.0.1:1" in line


def test_submit_with_unreachable_database(wgops_env: dict[str, str]) -> None:
    bad = {**wgops_env, "WGOPS_DB_URL": "postgresql://pg:dbsecret@127.0.0.1:1/wgops"}
    proc = wgops("graph", "submit", str(EXAMPLES / "hello.json"), env=bad, timeout=60)
    one_line_error(proc, 3)
    assert "dbsecret" not in proc.stdout + proc.stderr


def test_invalid_configuration_is_one_line(wgops_env: dict[str, str]) -> None:
    proc = wgops("graph", "list", env={**wgops_env, "WGOPS_SHELL": "perhaps"})
    assert "WGOPS_SHELL" in one_line_error(proc, 2)


# -- pools ----------------------------------------------------------------------------------


def test_pool_list_and_set(env: dict[str, str]) -> None:
    wgops("pool", "set", "gpu", "--max-running", "2", env=env, check=True)
    rows = {r["name"]: r for r in json.loads(
        wgops("pool", "list", "--json", env=env, check=True).stdout)}
    assert rows["gpu"] == {"name": "gpu", "max_running": 2, "running": 0, "queued": 0}
    assert rows["default"]["max_running"] is None
    wgops("pool", "set", "gpu", "--max-running", "unlimited", env=env, check=True)
    rows = {r["name"]: r for r in json.loads(
        wgops("pool", "list", "--json", env=env, check=True).stdout)}
    assert rows["gpu"]["max_running"] is None
    assert "unlimited" in wgops("pool", "list", env=env, check=True).stdout
    bad = wgops("pool", "set", "gpu", "--max-running", "lots", env=env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


# -- shell completion -------------------------------------------------------------------------


@pytest.mark.parametrize("shell,marker", [("bash", "_wgops_completion()"),
                                          ("zsh", "#compdef wgops"),
                                          ("fish", "function _wgops_completion")])
def test_completion_scripts(wgops_env: dict[str, str], shell: str, marker: str) -> None:
    proc = wgops(env={**wgops_env, "_WGOPS_COMPLETE": f"{shell}_source"})
    assert proc.returncode == 0 and marker in proc.stdout


def test_completion_completes(wgops_env: dict[str, str]) -> None:
    proc = wgops(env={**wgops_env, "_WGOPS_COMPLETE": "bash_complete",
                      "COMP_WORDS": "wgops graph su", "COMP_CWORD": "2"})
    assert proc.returncode == 0 and "plain,submit" in proc.stdout.splitlines()


def test_the_examples_old_module_name_still_validates_with_a_notice(
        env: dict[str, str], tmp_path: Path) -> None:
    doc = tmp_path / "old.yaml"
    doc.write_text("name: old\ntasks:\n  a: {run: 'examples.tasks:noop'}\n")
    proc = wgops("graph", "validate", str(doc), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["valid"] is True
    assert proc.stderr.strip().splitlines() == [
        "wgops: note: examples.tasks:noop names the module by its old name; "
        "use wgops.examples.tasks:noop"]


def test_control_characters_from_tasks_never_reach_the_terminal(env: dict[str, str]) -> None:
    """A task's error (user text) with an escape sequence is shown escaped."""
    from wgops.store.config import Settings
    from wgops.store.db import Store
    from wgops.store.document import normalise
    from wgops.store.graphs import create_graph
    from wgops.store.models import Task, dumps

    store = Store(Settings.load(env=env).db_url).connect()
    with store.write():
        graph = create_graph(normalise({"name": "esc", "tasks": {
            "t": {"run": "tests.tasks:noop"}}}, "t"))
        Task.update(state="failed", error=dumps({
            "type": "X", "message": "\x1b[2J\x1b]0;pwned\x07gone", "traceback": None})).where(
            Task.graph == graph.id).execute()
    store.close()
    out = wgops("graph", "show", str(graph.id), env=env, check=True).stdout
    assert "\x1b" not in out and "\x07" not in out and "\\x1b[2J" in out
