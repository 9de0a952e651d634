"""A circus plugin that stops a crash-looping watcher (runs inside circus, in its own process).

circus's own ``Flapping`` plugin fires its stop and start commands and forgets them; the
arbiter drops a command that arrives while another one (its periodic process management, a
graceful decr) holds its lock, so a crash loop could go on undetected. This one:

- counts only unexpected exits: a process circus itself signalled (stop, decr, reload) is not
  a crash;
- ``attempts`` unexpected exits of one watcher within ``window`` seconds stop the watcher;
  it is started again after ``retry_in`` seconds, at most ``max_retry`` times in a row
  (``-1``: forever), then left stopped — ``wgops daemon status`` shows it as ``flapping``
  and ``wgops daemon restart`` (or ``incr``) starts it again;
- retries a command the arbiter refused because it was busy;
- notes what it did in the watcher's log (``$WGOPS_HOME/logs/NAME.log``);
- exits when the arbiter that started it is gone (SIGKILL, the OOM killer), as the daemons do.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import zmq
from circus.plugins import CircusPlugin
from circus.util import to_str
from tornado.ioloop import PeriodicCallback

BUSY = ("already running", "restarting")
CALL_TIMEOUT_MS = 5000


class CrashLoopGuard(CircusPlugin):
    name = "wgops_crash_loop_guard"

    def __init__(self, endpoint: str, pubsub_endpoint: str, check_delay: float,
                 ssh_server: str | None = None, **config: Any):
        super().__init__(endpoint, pubsub_endpoint, check_delay, ssh_server=ssh_server,
                         **config)
        self.attempts = int(config.get("attempts", 5))
        self.window = float(config.get("window", 30))
        self.retry_in = float(config.get("retry_in", 5))
        self.max_retry = int(config.get("max_retry", 2))
        self.logs = Path(config["logs"]) if config.get("logs") else None
        self.exits: dict[str, list[float]] = {}
        self.tries: dict[str, int] = {}
        self.last_stop: dict[str, float] = {}
        self.signalled: set[int] = set()

    def handle_init(self) -> None:
        parent = os.getppid()

        def check_parent() -> None:
            if os.getppid() != parent:
                self.stop()
        self._parent_watch = PeriodicCallback(check_parent, 1000)
        self._parent_watch.start()

    def handle_recv(self, data: list[bytes]) -> None:
        topic, raw = data
        parts = to_str(topic).split(".")
        if len(parts) < 3:
            return
        watcher, action = parts[1], parts[2]
        try:
            msg = json.loads(raw)
        except ValueError:
            return
        pid = msg.get("process_pid") if isinstance(msg, dict) else None
        if action == "kill" and pid is not None:
            self.signalled.add(pid)
        elif action == "reap" and pid is not None:
            if pid in self.signalled:
                self.signalled.discard(pid)
            else:
                self.crashed(watcher, msg.get("exit_code"))

    def crashed(self, watcher: str, exit_code: Any) -> None:
        now = time.time()
        if now - self.last_stop.get(watcher, now) > 10 * self.window:
            self.tries[watcher] = 0                      # it behaved for a long while
        recent = [t for t in self.exits.get(watcher, []) if now - t <= self.window] + [now]
        self.exits[watcher] = recent
        if len(recent) < self.attempts:
            return
        self.exits[watcher] = []
        tries = self.tries.get(watcher, 0) + 1
        self.tries[watcher] = tries
        self.last_stop[watcher] = now
        again = self.max_retry < 0 or tries <= self.max_retry
        self.note(watcher, f"{len(recent)} unexpected exits in {self.window:.0f}s (last exit "
                           f"code {exit_code}): stopped, "
                  + (f"retry {tries} in {self.retry_in:.0f}s" if again else
                     "given up (wgops daemon restart starts it again)"))
        self.command("stop", watcher)
        if again:
            self.loop.call_later(self.retry_in, self.command, "start", watcher)

    def command(self, command: str, watcher: str, deadline: float | None = None) -> None:
        """Send a command; when the arbiter is busy, try again shortly (until a deadline)."""
        deadline = deadline or time.monotonic() + 60
        call_id = f"guard-{time.time_ns()}"
        try:
            self.client.send(json.dumps({"command": command, "properties": {
                "name": watcher, "waiting": False}, "id": call_id}).encode())
            while True:                       # skip late replies to earlier commands
                if not self.client.poll(CALL_TIMEOUT_MS):
                    return
                reply = json.loads(self.client.recv())
                if reply.get("id") == call_id:
                    break
        except (zmq.ZMQError, ValueError):
            return
        reason = str(reply.get("reason", ""))
        if reply.get("status") != "ok" and any(b in reason for b in BUSY) \
                and time.monotonic() < deadline:
            self.loop.call_later(0.2, self.command, command, watcher, deadline)

    def note(self, watcher: str, text: str) -> None:
        if self.logs is None:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            with open(self.logs / f"{watcher}.log", "a") as fh:
                fh.write(f"{stamp} circus: {watcher}: {text}\n")
        except OSError:
            pass
