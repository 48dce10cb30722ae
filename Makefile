# The two set-up commands of the README: `make demo` and `make test`. Each works on a
# fresh machine by itself: it makes the virtualenv and installs the project first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DURATION ?= 90

.PHONY: demo test lint install

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/alpr demo --duration $(DURATION)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# promtool checks the metric names; Debian's prometheus package has it (extracted, not
# installed, so no service starts).
$(VENV)/bin/promtool: | $(VENV)/.installed
	@tmp=$$(mktemp -d) && cd $$tmp && \
	  { apt-get download -qq prometheus 2>/dev/null || { apt-get update -qq && apt-get download -qq prometheus; }; } && \
	  dpkg-deb -x prometheus_*.deb x && cp x/usr/bin/promtool $(CURDIR)/$(VENV)/bin/promtool && rm -rf $$tmp

test: lint $(VENV)/bin/promtool
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m pytest -ra
