"""The console's looks, guarded by SVG snapshots of the deterministic scene (the same seven
screens as ``make screenshots``). Update with ``pytest --snapshot-update`` after a deliberate
change, and look at the report before committing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from wgops.console.app import WgopsApp
from wgops.console.scene import SceneBackend, use_utc
from wgops.console.screenshots import SHOTS, SIZE


@pytest.mark.parametrize("name", list(SHOTS))
def test_console_looks(name: str, snap_compare: Any, tmp_path: Path) -> None:
    use_utc()
    app = WgopsApp(SceneBackend.create(tmp_path / "scene"), live=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=SHOTS[name])
