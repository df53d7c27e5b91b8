#!/usr/bin/env bash
# Wait until the portal is ready, then say where everything is (a process of the Procfile).
set -uo pipefail
port=${PORTAL_PORT:-8000}
for _ in $(seq 600); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done
cat <<MSG

  Tilgang is running.
    Portal            http://127.0.0.1:$port/
    API and its docs  http://127.0.0.1:$port/api/v1/  http://127.0.0.1:$port/api/v1/docs/
    OpenID provider   ${OIDC_ISSUER:-http://127.0.0.1:9000}  (any password)
  Demo logins: admin@oslo.example, admin@trondheim.example, admin@bergen.example,
    admin@journal.example, admin@trygghet.example, admin@hjemme.example,
    admin@helseplattformen.example, drift@nhn.example (NHN operator), revisor@nhn.example (NHN auditor)
  Ctrl-C stops everything.

MSG
exec sleep infinity
