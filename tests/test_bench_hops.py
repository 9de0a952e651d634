"""``bench.hops`` splits a chain hop by the times the daemons write: the stretches exist for
every hop and are in causal order (a task's outcome is committed before its scheduler hears
of it; the next task is queued before a worker starts it). That they add up to the hop holds
by construction and is not tested."""

from __future__ import annotations

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
        assert hop > 0 and all(s >= 0 for s in stretches), parts
