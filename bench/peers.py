"""``make bench --peers``: Celery on the same two shapes, in the same run.

Celery (5.x, prefork with 2 processes, a redis result backend, and the rpc backend for
reference) is installed into a virtual environment of its own, ``bench/.peers-venv``, the
first time it is asked for: it is not a dependency of wgops. It talks to the same RabbitMQ;
its results go to the Redis at 127.0.0.1:6379 (database 15). Without Redis, or where Celery
cannot be installed, the peers are skipped with the reason (reported, not an error).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import venv
from typing import Any

from bench.harness import ROOT

VENV = ROOT / "bench" / ".peers-venv"
CELERY = "celery[redis]>=5.4,<6"
BACKENDS = ("redis", "rpc")


class Unavailable(Exception):
    """The peers cannot run here (the reason is reported)."""


def _redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def python() -> str:
    """The peers' Python, with Celery installed (created on first use)."""
    exe = VENV / "bin" / "python"
    if exe.exists() and subprocess.run([str(exe), "-c", "import celery, redis"],
                                       capture_output=True).returncode == 0:
        return str(exe)
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        out = subprocess.run([str(exe), "-m", "pip", "install", "-q", CELERY],
                             capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(f"could not create {VENV}: {exc}") from None
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise Unavailable(f"could not install {CELERY}: {tail}")
    return str(exe)


def measure(tasks: int = 1000, hops: int = 200) -> dict[str, Any]:
    """{"celery-redis": {tasks_per_s, hop_user_ms}, "celery-rpc": {...}} or
    {"skipped": reason}."""
    if not _redis_answers():
        return {"skipped": "no Redis answers at 127.0.0.1:6379"}
    try:
        exe = python()
    except Unavailable as exc:
        return {"skipped": str(exc)}
    out: dict[str, Any] = {}
    for backend in BACKENDS:
        proc = subprocess.run([exe, "-m", "bench.celery_peer", "--backend", backend,
                               "--tasks", str(tasks), "--chain", str(hops)],
                              capture_output=True, text=True, timeout=900, cwd=str(ROOT))
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            out[f"celery-{backend}"] = {"error": tail}
            continue
        out[f"celery-{backend}"] = json.loads(lines[-1])
    return out


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
    sys.exit(0)
