"""``Supervisor.wait_up`` against the replies a new arbiter gives while it starts.

A new circusd answers commands before it has started every watcher (its log: "Arbiter now
waiting for commands", then "scheduler started", then "worker started"); a watcher not started
yet has the status ``stopped``, as a crash-looping one that circus stopped has. Seen in the
chaos soak: ``wgops daemon start`` failed with "worker daemons keep exiting" 40 ms after the
arbiter started. The replies are replayed here in the order a loaded machine gives them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from wgops.daemon.supervisor import Supervisor, WatcherInfo
from wgops.store.config import Settings
from wgops.store.errors import SupervisorError


class Replayed(Supervisor):
    def __init__(self, tmp: Path, replies: list[dict[str, tuple[str, list[int]]]]):
        super().__init__(Settings(home=tmp, broker_url="amqp://x/", db_url="sqlite://"))
        self.replies = replies

    def watchers(self, timeout: float = 5.0) -> dict[str, WatcherInfo]:
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return {k: WatcherInfo(k, status, 1, pids) for k, (status, pids) in reply.items()}

    def announced(self, kind: str, pids: list[int]) -> set[int]:
        return set(pids)


def test_a_watcher_not_started_yet_is_waited_for(tmp_path: Path) -> None:
    replies: list[dict[str, Any]] = [
        {"scheduler": ("stopped", []), "worker": ("stopped", [])},
        {"scheduler": ("active", [11]), "worker": ("stopped", [])},
        {"scheduler": ("active", [11]), "worker": ("active", [12])}]
    up = Replayed(tmp_path, replies).wait_up(deadline=float("inf"))
    assert up["worker"].pids == [12] and up["scheduler"].pids == [11]


def test_a_watcher_stopped_after_running_is_a_crash_loop(tmp_path: Path) -> None:
    replies: list[dict[str, Any]] = [
        {"scheduler": ("active", [11]), "worker": ("active", [12])},
        {"scheduler": ("active", [11]), "worker": ("active", [])},
        {"scheduler": ("active", [11]), "worker": ("stopped", [])}]
    sup = Replayed(tmp_path, replies)
    sup.announced = lambda kind, pids: set()      # type: ignore[method-assign]
    with pytest.raises(SupervisorError, match="worker daemons keep exiting"):
        sup.wait_up(deadline=float("inf"))
