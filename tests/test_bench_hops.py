"""``bench.hops`` splits a chain hop by the clocks the daemons write: the stretches exist for
every hop, add up to it and are in causal order (a task's outcome is committed before its
scheduler hears of it; the next task is queued before a worker starts it)."""

from __future__ import annotations

import pytest

from bench.harness import Installation
from bench.hops import chain
from bench.scenarios import _standard


def test_a_chain_hop_splits_into_stretches_in_causal_order() -> None:
    inst = Installation("sqlite")
    try:
        _standard(2)(inst)
        parts = chain(inst, 6, 0)
    finally:
        inst.close()
    hops = parts.pop("hop")
    assert len(hops) == 5 and all(len(v) == 5 for v in parts.values())
    for k, hop in enumerate(hops):
        stretches = [v[k] for v in parts.values()]
        assert all(s >= 0 for s in stretches), parts
        assert sum(stretches) == pytest.approx(hop, abs=1e-6)
