# Nexrel. `make run` and `make test` work from a fresh clone; see README.md.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup system-deps venv migrate bench lint clean

run: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) -m nexrel.supervisor

test: setup system-deps
	$(PY) -m ruff check .
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

setup: $(STAMP)

$(STAMP): pyproject.toml
	@PYBIN=$$(scripts/find-python.sh) && echo "using $$PYBIN" && \
	  ([ -x $(PY) ] || $$PYBIN -m venv $(VENV))
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

system-deps:
	scripts/apt-deps.sh

bench: setup system-deps
	$(PY) bench/run_bench.py

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) var
