"""Benchmarks (`make bench`, `python -m bench`), profiles, the chain-hop breakdown and the chaos
soak (`make soak`); see docs/performance.md and docs/reliability.md."""
