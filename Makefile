# The two set-up commands of the README: `make demo` and `make test`. Each works on a
# fresh machine by itself: it makes the virtualenv and installs the project from the lock
# (requirements.lock: every package pinned with its hashes, for Python 3.11 and 3.12), so
# a site that installs today gets the versions CI passed with, not whatever is newest.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := requirements.lock
DURATION ?= 90
# The lock tool itself is pinned, so `make lock` resolves the same way on every machine.
UV_VERSION := 0.13.9

.PHONY: demo test test-latest lint install lock chromium

$(VENV)/.installed: $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/alpr demo --duration $(DURATION)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# promtool checks the metric names and rules; prometheus itself serves the dashboard
# tests. Debian's prometheus package has both (extracted, not installed, so no service
# starts). Where apt cannot give them, the file .venv/prometheus-missing says why and
# those tests skip with that reason; the rest of the suite still runs.
$(VENV)/bin/promtool: | $(VENV)/.installed
	@tmp=$$(mktemp -d) && cd $$tmp && \
	  if { apt-get download -qq prometheus 2>/dev/null || \
	       { apt-get update -qq && apt-get download -qq prometheus; }; } >$$tmp/apt.log 2>&1; then \
	    dpkg-deb -x prometheus_*.deb x && \
	    cp x/usr/bin/promtool x/usr/bin/prometheus $(CURDIR)/$(VENV)/bin/ && \
	    rm -f $(CURDIR)/$(VENV)/prometheus-missing; \
	  else \
	    echo "apt-get download prometheus failed: $$(tail -n 1 $$tmp/apt.log)" \
	      > $(CURDIR)/$(VENV)/prometheus-missing; \
	    echo "warning: promtool unavailable, its tests will skip ($(VENV)/prometheus-missing)"; \
	  fi; rm -rf $$tmp

# The browser tests drive Debian's chromium (never a downloaded build). Installed with
# apt-get when missing; where apt cannot, .venv/chromium-missing says why and those tests
# skip with that reason.
chromium: | $(VENV)/.installed
	@if [ -x /usr/bin/chromium ]; then rm -f $(VENV)/chromium-missing; \
	elif { apt-get install -y -qq chromium || \
	       { apt-get update -qq && apt-get install -y -qq chromium; }; } \
	       >$(VENV)/chromium-apt.log 2>&1; then rm -f $(VENV)/chromium-missing; \
	else echo "apt-get install chromium failed: $$(tail -n 1 $(VENV)/chromium-apt.log)" \
	       > $(VENV)/chromium-missing; \
	  echo "warning: chromium unavailable, the browser tests will skip ($(VENV)/chromium-missing)"; \
	fi

test: lint $(VENV)/bin/promtool chromium
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m pytest -ra

# Refresh the lock after changing a range in pyproject.toml, or to take new releases on
# purpose (run `make test` after; commit the lock with the change).
lock: $(VENV)/.installed
	$(PY) -m pip install --quiet uv==$(UV_VERSION)
	printf 'setuptools>=77\n' | $(VENV)/bin/uv pip compile pyproject.toml - --extra dev \
	  --universal --python-version 3.11 --generate-hashes \
	  --output-file $(LOCK)
	# The image's: the same pins without the test tools (tests/test_lock.py checks both).
	printf 'setuptools>=77\n' | $(VENV)/bin/uv pip compile pyproject.toml - \
	  --universal --python-version 3.11 --generate-hashes \
	  --output-file requirements-runtime.lock

# The suite against the newest releases within pyproject.toml's ranges, in a venv of its
# own: drift seen on purpose, before it reaches the lock. Not part of CI's gate.
test-latest: $(VENV)/bin/promtool
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install --quiet --upgrade pip
	.venv-latest/bin/python -m pip install --quiet --upgrade -e '.[dev]'
	.venv-latest/bin/pip list --format=freeze > .venv-latest/versions.txt
	PATH=$(CURDIR)/.venv-latest/bin:$(CURDIR)/$(VENV)/bin:$$PATH \
	  .venv-latest/bin/python -m pytest -ra -p no:cacheprovider
