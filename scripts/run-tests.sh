#!/usr/bin/env bash
# The test suite in two phases: every test not marked `serial` on WGOPS_TEST_JOBS pytest-xdist
# workers (default 3: most of a test's time is spent waiting on daemons, the broker and
# the database, not on the 2 cores), then the `serial` ones alone (they restart the broker
# or PostgreSQL, or change the broker's consumer timeout, under every other test).
# Usage: scripts/run-tests.sh PYTHON [pytest arguments...]; WGOPS_TEST_JOBS=0 runs one process.
set -uo pipefail
py="$1"; shift
jobs="${WGOPS_TEST_JOBS:-3}"
parallel=()
[ "$jobs" != 0 ] && parallel=(-n "$jobs")

WGOPS_TEST_NAMESPACES="$(mktemp)"
export WGOPS_TEST_NAMESPACES
"$py" -m pytest -q -p no:cacheprovider "${parallel[@]}" -m "not serial" "$@"
first=$?
"$py" -m pytest -q -p no:cacheprovider -m serial "$@"
second=$?
# every namespace the two phases used, purged once more (see tests/broker_cleanup.py)
"$py" -c 'import sys; from tests.broker_cleanup import purge
purge({l.strip() for l in open(sys.argv[1]) if l.strip()})' "$WGOPS_TEST_NAMESPACES" || true
rm -f "$WGOPS_TEST_NAMESPACES"
[ "$second" = 5 ] && second=0          # nothing marked serial among the tests asked for
[ "$first" = 5 ] && first=0
[ "$first" = 0 ] && [ "$second" = 0 ] && exit 0
echo "tests failed: parallel phase exit $first, serial phase exit $second" >&2
exit 1
