#!/usr/bin/env bash
# Make sure libfaketime (Debian's `faketime` package) is there for the clock-skew tests
# (tests/test_clock.py run daemons whose clock is off by LD_PRELOAD-ing it).
# Without root or apt-get it says so, and those tests are skipped with the reason.
set -euo pipefail

lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1 || true)
[ -n "$lib" ] && exit 0
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "faketime: missing (Debian's faketime package has it); the clock-skew tests skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q faketime >/dev/null 2>&1; then
    apt-get update -q >/dev/null 2>&1 || true
    apt-get install -y -q faketime >/dev/null 2>&1 || {
        echo "faketime: the package cannot be installed; the clock-skew tests skip" >&2
        exit 0
    }
fi
echo "faketime: installed ($(ls /usr/lib/*/faketime/libfaketime.so.1 | head -1))"
