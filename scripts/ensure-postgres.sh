#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432 for the store tests: start the installed
# cluster where it is stopped; otherwise print a one-line hint and carry on (the PostgreSQL
# store tests then skip, or fail when CI=true).
set -u
port_open() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if port_open; then exit 0; fi
hint="PostgreSQL is not running on 127.0.0.1:5432: its store tests will skip (fail in CI)"
if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -d /etc/postgresql ] \
   || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  echo "$hint; install postgresql to run them" >&2
  exit 0
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
if [ "$(id -u)" != 0 ]; then
  echo "$hint; start it with: sudo pg_ctlcluster $version main start" >&2
  exit 0
fi
echo "starting PostgreSQL $version"
pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
for _ in $(seq 1 30); do
  if port_open; then echo "PostgreSQL is up"; exit 0; fi
  sleep 1
done
echo "$hint; PostgreSQL $version did not open the port within 30s (see /var/log/postgresql)" >&2
exit 0
