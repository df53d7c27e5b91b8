#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1, starting them when they are not running, and
# that the project's database role exists. Prints the URLs to export.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_PORT=${PG_PORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}

if ! pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; then
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  echo "services: starting PostgreSQL $version" >&2
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2
  for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break; sleep 0.2; done
fi

# The role may exist already (trust auth here); on a fresh Debian cluster only the postgres user
# can create it, over the local socket.
if ! psql "postgresql://tilgang:tilgang@127.0.0.1:$PG_PORT/postgres" -Atqc 'select 1' >/dev/null 2>&1 \
   || [ "$(psql "postgresql://tilgang:tilgang@127.0.0.1:$PG_PORT/postgres" -Atqc \
        "select rolcreatedb from pg_roles where rolname = 'tilgang'" 2>/dev/null)" != "t" ]; then
  echo "services: creating the PostgreSQL role tilgang" >&2
  su postgres -c "psql -q -p $PG_PORT" >&2 <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tilgang') THEN
    CREATE ROLE tilgang LOGIN PASSWORD 'tilgang' CREATEDB;
  ELSE
    ALTER ROLE tilgang LOGIN PASSWORD 'tilgang' CREATEDB;
  END IF;
END $$;
SQL
fi
if [ "$(psql "postgresql://tilgang:tilgang@127.0.0.1:$PG_PORT/postgres" -Atqc \
      "select 1 from pg_database where datname = 'tilgang'")" != "1" ]; then
  psql "postgresql://tilgang:tilgang@127.0.0.1:$PG_PORT/postgres" -qc 'CREATE DATABASE tilgang' >&2
fi

if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  echo "services: starting Redis on port $REDIS_PORT" >&2
  mkdir -p var/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$PWD/var/redis" --logfile "$PWD/var/redis/redis.log" >&2
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

echo "export DATABASE_URL=postgresql://tilgang:tilgang@127.0.0.1:$PG_PORT/tilgang"
echo "export CELERY_BROKER_URL=redis://127.0.0.1:$REDIS_PORT/0"
