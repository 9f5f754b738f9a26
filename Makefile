# Nexrel. `make run` and `make test` work from a fresh clone; see README.md.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# JavaScript the pages load, built from package-lock.json and served as static files (no CDN).
VENDOR_JS := static/vendor/htmx.min.js

.PHONY: run test setup system-deps venv migrate bench lint clean

run: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) -m nexrel.supervisor

test: system-deps setup
	$(PY) -m ruff check .
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

setup: $(STAMP) $(VENDOR_JS)

$(STAMP): pyproject.toml
	@PYBIN=$$(scripts/find-python.sh) && echo "using $$PYBIN" && \
	  ([ -x $(PY) ] || $$PYBIN -m venv $(VENV))
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(VENDOR_JS): package.json package-lock.json
	npm ci --no-audit --no-fund
	mkdir -p $(@D)
	cp node_modules/htmx.org/dist/htmx.min.js $@

system-deps:
	scripts/apt-deps.sh

bench: system-deps setup
	$(PY) bench/run_bench.py
	$(PY) bench/bench_mwl.py
	$(PY) bench/bench_qr.py

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) var
