"""The demo's paced documents: valid, paced only when asked (the examples stay instant)."""

from __future__ import annotations

import asyncio
import time

import pytest

from wgops.console.cli.demo import PACED_FILES, example_paths
from wgops.examples import tasks
from wgops.store.document import load_document


def test_paced_documents_are_valid_and_exist() -> None:
    paths = example_paths(paced=True)
    assert [p.name for p in paths] == list(PACED_FILES)
    docs = {p.name: load_document(p) for p in paths}
    seconds = [t["args"].get("seconds", 0) for d in docs.values()
               for t in d["tasks"].values() if isinstance(t.get("args"), dict)]
    assert max(seconds) >= 60 and min(s for s in seconds if s) <= 2       # one long, varied
    assert any(t.get("retries") for d in docs.values() for t in d["tasks"].values())
    assert all(p.name.startswith("demo_") is False for p in example_paths())


def test_pacing_is_off_by_default_and_fails_only_when_asked() -> None:
    assert tasks.total([1, 2])["total"] == 3
    assert asyncio.run(tasks.fetch([1]))["records"][0]["id"] == 1
    start = time.monotonic()
    tasks.total([1], seconds=0.2)
    assert time.monotonic() - start >= 0.13           # 0.2 s ± 30 %
    with pytest.raises(RuntimeError, match="transient failure"):
        tasks.square([{"value": 2}], fail_rate=1.0)
    with pytest.raises(RuntimeError, match="transient failure"):
        asyncio.run(tasks.fetch([1], fail_rate=1.0))
