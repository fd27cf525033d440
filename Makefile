# One way in. On a fresh machine:
#   make demo   # creates .venv, installs everything, runs the demo
#   make test   # creates .venv, installs everything, runs lint + the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# Every ROS process we start keeps DDS traffic on loopback.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST

.PHONY: install demo test test-fast lint clean

$(VENV)/.installed: setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e ".[train,ros,dev]"
	@touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

demo: install
	$(PY) -m pixood_ros.demo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache out
