# One Makefile; CI calls its targets unchanged (.ci/run -> make test).
SHELL := /bin/bash
PYTHON ?= python3.11
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install frontend messages demo test lint check-migrations ci browsers clean-data

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

install: $(VENV)/.synced frontend messages

frontend:
	cd frontend && (test -d node_modules && test node_modules/.package-lock.json -nt package-lock.json || npm ci --no-audit --no-fund --loglevel=error) && npm run --silent build

messages: $(VENV)/.synced
	$(PY) manage.py compilemessages --ignore=.venv --ignore=.tools --ignore=frontend -v 0

# Debian's Chromium for the browser tests (Playwright can't download its own here).
browsers:
	@command -v /usr/bin/chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

demo: install
	export STRIPE_FAKE_PORT=$${STRIPE_FAKE_PORT:-12111}; \
	$(PY) manage.py stripe_fake --exit-with-parent & \
	$(PY) manage.py demo

test: install browsers
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(VENV)/.synced
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

check-migrations: $(VENV)/.synced
	$(PY) manage.py makemigrations --check --dry-run

ci: lint check-migrations test

clean-data:
	$(PY) -m ccplatform.embedded_db stop || true
	rm -rf var/
