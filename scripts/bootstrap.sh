#!/usr/bin/env bash
# Install what the project needs and is missing: Debian packages (when root on Debian), the Python
# virtualenv, the npm packages, compiled translations. Safe to run again: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(postgresql redis-server gettext socat haproxy chromium)
PYTHON=${PYTHON:-python3.11}

missing=()
if command -v dpkg-query >/dev/null; then
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bootstrap: please install these Debian packages: ${missing[*]}" >&2
    exit 1
  fi
fi

# Python: a virtualenv rebuilt when the pinned requirements change.
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing Python packages into .venv"
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
fi

# Node: oidc-provider and a Node 22 runtime (npm package `node`) into the project's node_modules.
stamp=node_modules/.package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -x node_modules/.bin/node ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

# Page assets from npm, served from static/ (no CDN, no build step): htmx and Designsystemet's CSS
# with its Digdir theme. Copied, not committed: package-lock.json pins them.
mkdir -p static/vendor
for pair in \
  "node_modules/htmx.org/dist/htmx.min.js:static/vendor/htmx.min.js" \
  "node_modules/@digdir/designsystemet-css/dist/src/index.css:static/vendor/designsystemet.css" \
  "node_modules/@digdir/designsystemet-theme/brand/digdir.css:static/vendor/designsystemet-theme.css"; do
  cmp -s "${pair%%:*}" "${pair#*:}" || cp "${pair%%:*}" "${pair#*:}"
done

# Translations: compiled from locale/*/LC_MESSAGES/django.po.
.venv/bin/python manage.py compilemessages -v0 --ignore=.venv --ignore=node_modules
