#!/usr/bin/env bash
# Make sure RabbitMQ answers on 127.0.0.1:5672: start it where it is installed but stopped,
# install it where it is missing and we are root, otherwise say what to do.
set -u
port_open() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 60); do port_open && return 0; sleep 1; done
  return 1
}
if port_open; then exit 0; fi
if ! command -v rabbitmq-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "RabbitMQ is missing: installing it with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null \
      || { echo "could not install rabbitmq-server; install it and start it on 127.0.0.1:5672" >&2; exit 1; }
  else
    echo "RabbitMQ is not running on 127.0.0.1:5672 and is not installed: install rabbitmq-server (or set WGOPS_BROKER_URL) and retry" >&2
    exit 1
  fi
fi
echo "starting RabbitMQ"
if [ "$(id -u)" = 0 ]; then
  rabbitmq-server -detached >/dev/null 2>&1 || true
else
  echo "RabbitMQ is installed but stopped: start it (sudo rabbitmq-server -detached) and retry" >&2
  exit 1
fi
wait_port || { echo "RabbitMQ did not open 127.0.0.1:5672 within 60s; see its logs in /var/log/rabbitmq" >&2; exit 1; }
echo "RabbitMQ is up"
