#!/usr/bin/env bash
# The gateway of `make run`: write its configuration from the provider's signing keys and the
# database, then run HAProxy in the foreground (master-worker; reloads through the master socket).
set -euo pipefail
cd "$(dirname "$0")/.."
python manage.py gateway_config --wait 60
# HAProxy reads a relative -S path as host:port: give it an absolute one.
dir=$(realpath "${GATEWAY_DIR:-var/gateway}")
exec haproxy -W -db -f "$dir/haproxy.cfg" -S "$dir/master.sock"
