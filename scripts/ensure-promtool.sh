#!/usr/bin/env bash
# Make sure `promtool` (Prometheus's checker, from Debian's `prometheus` package) is there for
# the metrics test. Only the promtool binary is taken out of the package (installing the whole
# package would start a Prometheus server as a service); it goes to /usr/local/bin.
# Without root or apt-get it says so, and the test that needs promtool is skipped.
set -euo pipefail

command -v promtool >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "promtool: missing (Debian's prometheus package has it); its check is skipped" >&2
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download -q prometheus >/dev/null 2>&1; then
    apt-get update -q >/dev/null 2>&1 || true
    apt-get download -q prometheus >/dev/null 2>&1 || {
        echo "promtool: the prometheus package cannot be downloaded; its check is skipped" >&2
        exit 0
    }
fi
dpkg-deb --fsys-tarfile prometheus_*.deb | tar -x ./usr/bin/promtool
install -m 0755 usr/bin/promtool /usr/local/bin/promtool
echo "promtool: installed from Debian's prometheus package ($(promtool --version 2>&1 | head -1))"
