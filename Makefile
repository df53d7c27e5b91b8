# The two commands of the README: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := .venv/bin
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV):$(PATH)

.PHONY: run test bench bench-quick chaos screenshots bootstrap services lint typecheck migrations-check pytest clean

## Run the portal with demo data: web on :8000, Celery worker and beat, the local OpenID provider.
run: bootstrap
	$(VENV)/python manage.py migrate --no-input -v0
	$(VENV)/python manage.py seed_demo
	$(VENV)/python manage.py write_provider_scopes
# The processes' counts for /metrics start again with them (README, "Metrics and logs").
	rm -rf "$${PROMETHEUS_MULTIPROC_DIR:-$${TILGANG_VAR_DIR:-var}/prometheus}"
	$(VENV)/honcho start -f Procfile

## Install what is missing, start PostgreSQL and Redis, then lint, type-check and run every test.
test: bootstrap
	eval "$$(scripts/services.sh)"; \
	export DJANGO_DEBUG=1; \
	$(MAKE) --no-print-directory lint typecheck migrations-check pytest

## The benchmark at national scale (figures, not a test): var/bench/results.json and a table.
bench: bootstrap
	eval "$$(scripts/services.sh)"; $(VENV)/python -m bench.run --scale full

## The same on smaller numbers, under two minutes, for everyday use.
bench-quick: bootstrap
	eval "$$(scripts/services.sh)"; $(VENV)/python -m bench.run --scale quick --output var/bench/results-quick.json

## Fault injection with 500 grants in flight (README, "Fault injection"): var/chaos/results.json
## and a table; fails if a check fails or the stack takes over 60 s to converge after a fault.
chaos: bootstrap
	eval "$$(scripts/services.sh)"; $(VENV)/python -m chaos.run

## PNGs of each role's main pages, bokmål and English, 1280 and 375 px: docs/screenshots/. Runs on
## a throwaway SQLite demo with its own portal and provider; Debian's Chromium logs each person in.
screenshots: bootstrap
	$(VENV)/python scripts/screenshots.py

bootstrap:
	@scripts/bootstrap.sh

services:
	@scripts/services.sh

lint:
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

typecheck:
	$(VENV)/mypy .

migrations-check:
	$(VENV)/python manage.py makemigrations --check --dry-run

pytest:
	$(VENV)/pytest

clean:
	rm -rf var staticfiles .mypy_cache .ruff_cache .pytest_cache
