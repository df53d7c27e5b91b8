#!/usr/bin/env bash
# Back up the portal's state: the PostgreSQL database named by DATABASE_URL, dumped in
# pg_dump's custom format (compressed; pg_restore reads it selectively) to the file given.
#
#   scripts/backup.sh var/backup/tilgang-$(date -u +%Y%m%dT%H%M%SZ).dump
#
# The database is the only state to dump: the authorization server's registrations and the
# gateways' map files follow from it (the reconciler brings them back to it after a restore).
# Keep TILGANG_ENCRYPTION_KEY with the backup, apart from it: without it the restored database
# cannot read its registration access tokens. See the README's "Backup and restore".
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 FILE" >&2
  exit 2
fi
target=$1
case "${DATABASE_URL:-}" in
  postgres://* | postgresql://*) ;;
  *)
    echo "backup: DATABASE_URL must name the PostgreSQL database to dump" >&2
    exit 2
    ;;
esac

mkdir -p "$(dirname "$target")"
# Written beside the target and renamed: a dump that stopped half-way never looks complete.
partial="$target.partial"
trap 'rm -f "$partial"' EXIT
pg_dump --format=custom --no-owner --no-privileges --file="$partial" "$DATABASE_URL"
mv "$partial" "$target"
trap - EXIT
echo "backup: wrote $target" >&2
