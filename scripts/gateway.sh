#!/usr/bin/env bash
# The gateway of `make run`: write its configuration from the provider's signing keys and the
# database, then run HAProxy in the foreground (master-worker; reloads through the master socket).
# HAProxy writes the data-access log (one JSON line per request) on stdout: it is appended to
# GATEWAY_ACCESS_LOG (default <GATEWAY_DIR>/access.log), where `manage.py gateway_log_collect`
# reads it. Appended, never truncated: a restart goes on where the last run stopped, and the
# collector's cursor with it. HAProxy's own messages stay on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
python manage.py gateway_config --wait 60
# HAProxy reads a relative -S path as host:port: give it an absolute one.
dir=$(realpath "${GATEWAY_DIR:-var/gateway}")
access_log=${GATEWAY_ACCESS_LOG:-$dir/access.log}
exec haproxy -W -db -f "$dir/haproxy.cfg" -S "$dir/master.sock" >>"$access_log"
