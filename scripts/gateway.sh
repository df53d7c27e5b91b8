#!/usr/bin/env bash
# A gateway of `make run`: write its configuration from the provider's signing keys and the
# database, then run HAProxy in the foreground (master-worker; reloads through the master socket).
# `scripts/gateway.sh [NAME]`: NAME is one of GATEWAYS (several gateways: run this once for each);
# without it, the first (the only one of GATEWAY_DIR, by default).
# HAProxy writes the data-access log (one JSON line per request) on stdout: it is appended to
# GATEWAY_ACCESS_LOG (default <gateway directory>/access.log), where `manage.py
# gateway_log_collect` reads it. Appended, never truncated: a restart goes on where the last run
# stopped, and the collector's cursor with it. HAProxy's own messages stay on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-}
python manage.py gateway_config --wait 60 ${name:+--gateway "$name"}
# HAProxy reads a relative -S path as host:port: the command prints an absolute one.
dir=$(python manage.py gateway_config --show-dir ${name:+--gateway "$name"})
if [ -n "$name" ]; then
  access_log=$dir/access.log
else
  access_log=${GATEWAY_ACCESS_LOG:-$dir/access.log}
fi
exec haproxy -W -db -f "$dir/haproxy.cfg" -S "$dir/master.sock" >>"$access_log"
