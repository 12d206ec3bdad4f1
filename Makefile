# Sigap: `make demo` runs everything with a simulated fleet; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBS := mosquitto mosquitto-clients influxdb postgresql

.PHONY: setup system-deps demo up test test-fast lint bench clean

# Debian/Ubuntu packages for the broker, InfluxDB and PostgreSQL (and venv support), when
# missing. PostgreSQL's initdb and pg_ctl live in /usr/lib/postgresql/<version>/bin, off PATH;
# the tests run their own server from there, not the system service. Chromium is for the
# console's browser tests: Playwright drives /usr/bin/chromium (its own download is not used).
system-deps:
	@need=""; \
	for bin in mosquitto mosquitto_pub influxd; do \
	  command -v $$bin >/dev/null 2>&1 || [ -x /usr/sbin/$$bin ] || need="$(DEBS)"; \
	done; \
	for bin in initdb pg_ctl; do \
	  command -v $$bin >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/$$bin >/dev/null 2>&1 \
	    || need="$(DEBS)"; \
	done; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || need="$$need python3-venv"; \
	[ -x /usr/bin/chromium ] || need="$$need chromium"; \
	if [ -n "$$need" ]; then \
	  echo "installing Debian packages: $$need"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$need; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: system-deps $(VENV)/.installed

demo: setup
	$(BIN)/sigap demo

test: setup
	SIGAP_REQUIRE_SERVICES=1 $(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not integration"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache .hypothesis
