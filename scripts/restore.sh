#!/usr/bin/env bash
# Restore a dump of scripts/backup.sh into a new, empty PostgreSQL database, bring its schema up
# to this code (migrate), then make the authorization server and the gateways converge on
# exactly the restored state (the reconciler).
#
#   createdb tilgang_restored
#   DATABASE_URL=postgresql://.../tilgang_restored scripts/restore.sh FILE
#   DATABASE_URL=postgresql://.../tilgang_restored scripts/restore.sh --no-reconcile FILE
#
# Run it with the portal's environment (the secrets, above all the TILGANG_ENCRYPTION_KEY the
# dump was made under, the authorization server and the gateways), with the web, worker and beat
# processes stopped; start them on the restored database afterwards. --no-reconcile stops after
# the migration, to look at the restored state first: run `manage.py reconcile` before the
# processes start again. See the README's "Backup and restore".
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}

reconcile=1
if [ "${1:-}" = "--no-reconcile" ]; then
  reconcile=0
  shift
fi
if [ $# -ne 1 ]; then
  echo "usage: $0 [--no-reconcile] FILE" >&2
  exit 2
fi
dump=$1
case "${DATABASE_URL:-}" in
  postgres://* | postgresql://*) ;;
  *)
    echo "restore: DATABASE_URL must name the new PostgreSQL database to restore into" >&2
    exit 2
    ;;
esac

# Never over a database in use: the target must have no tables.
tables=$(psql "$DATABASE_URL" -Atqc \
  "select count(*) from pg_tables where schemaname not in ('pg_catalog', 'information_schema')")
if [ "$tables" != "0" ]; then
  echo "restore: the target database is not empty ($tables tables); restore into a new one" >&2
  exit 1
fi

pg_restore --no-owner --no-privileges --exit-on-error --single-transaction \
  --dbname="$DATABASE_URL" "$dump"
"$PYTHON" manage.py migrate --no-input -v0
if [ "$reconcile" = 1 ]; then
  "$PYTHON" manage.py reconcile
else
  echo "restore: restored; run 'manage.py reconcile' before the processes start" >&2
fi
