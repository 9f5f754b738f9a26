# Nexrel. `make run` and `make test` work from a fresh clone; see README.md.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# JavaScript the pages load, built from package-lock.json and served as static files (no CDN).
VENDOR_JS := static/vendor/htmx.min.js
# The diagnostic viewer (docs/viewer.md): Cornerstone3D bundled by esbuild, its decode worker
# and the codecs' WebAssembly, from static/viewer/src/ and package-lock.json.
VIEWER_JS := static/viewer/dist/viewer.js
VIEWER_SRC := $(wildcard static/viewer/src/*.js) scripts/build-viewer.mjs

.PHONY: run test test-sqlite test-postgres test-unit setup system-deps venv migrate bench fuzz lint typecheck licences clean viewer

run: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@# --dev-tls: DICOM TLS on 4243 with a local CA made in var/tls/ (docs/security.md)
	$(PY) -m nexrel.supervisor --dev-tls

# The suite twice (issue 11 §5), on 2 processes: every test on SQLite, then on PostgreSQL 15 in
# a throwaway cluster that tests/pg_cluster.py starts (127.0.0.1 and a unix socket in its temp
# dir, a free port, en_US.UTF-8) and always stops and removes, whatever the tests do. Each
# xdist worker gets its own test_nexrel_gwN database; the listener, worker and web server
# subprocesses share it.
# The PostgreSQL pass runs every test that reaches the database (marker `database`, set by
# conftest.py: models, services, views, the DICOM listener and workers, migrations, the
# audit trail), except the Chromium tests (`e2e`): those drive the same views, which the
# view tests already run on PostgreSQL, and cost minutes each pass. A test that never
# reaches the database (parsing, previews, TLS, hypothesis properties) would run exactly
# as on SQLite, so it runs once. Measured (2 cores, shared): SQLite pass 1,655 tests in
# 19.5 min, PostgreSQL pass 791 tests in 13 min, all of `make test` 33 min (README.md).
PYTEST := $(PY) -m pytest -n 2 --dist loadgroup
POSTGRES_PASS := database and not e2e

test: system-deps setup licences
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) manage.py makemigrations --check --dry-run
	$(PYTEST) $(PYTEST_ARGS)
	$(PY) -m tests.pg_cluster -- $(PYTEST) -m "$(POSTGRES_PASS)" $(PYTEST_ARGS)

# One pass only: every test on SQLite, or the PostgreSQL pass of `make test`.
test-sqlite: setup
	$(PYTEST) $(PYTEST_ARGS)

test-postgres: setup
	$(PY) -m tests.pg_cluster -- $(PYTEST) -m "$(POSTGRES_PASS)" $(PYTEST_ARGS)

# The unit tests only, in under two minutes: no real peer (DCMTK, Orthanc, PostgreSQL, Redis,
# S3), no listener or worker subprocess, no Chromium. conftest.py marks the tests that use
# them, and those under tests/integration/ and tests/e2e/, `integration` or `e2e`.
test-unit: setup
	$(PY) -m pytest -n 2 --dist loadgroup -m "not integration and not e2e" $(PYTEST_ARGS)

setup: $(STAMP) $(VENDOR_JS) $(VIEWER_JS)

$(STAMP): pyproject.toml
	@PYBIN=$$(scripts/find-python.sh) && echo "using $$PYBIN" && \
	  ([ -x $(PY) ] || $$PYBIN -m venv $(VENV))
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@# GPL-3.0, dropped for GDCM and CharLS (issue 7): out of venvs made before that too
	$(PY) -m pip uninstall -q -y pylibjpeg-libjpeg 2>/dev/null || true
	touch $(STAMP)

$(VENDOR_JS): package.json package-lock.json
	npm ci --no-audit --no-fund
	mkdir -p $(@D)
	cp node_modules/htmx.org/dist/htmx.min.js $@

viewer: $(VIEWER_JS)

# After $(VENDOR_JS), whose npm ci installs node_modules from the lockfile.
$(VIEWER_JS): $(VIEWER_SRC) package.json package-lock.json | $(VENDOR_JS)
	node scripts/build-viewer.mjs

system-deps:
	scripts/apt-deps.sh

bench: system-deps setup
	$(PY) bench/run_bench.py
	$(PY) bench/bench_mwl.py
	$(PY) bench/bench_qr.py
	$(PY) bench/bench_dicomweb.py
	$(PY) bench/bench_viewer.py
	$(PY) bench/bench_tls.py

# Coverage-guided fuzzing (atheris, libFuzzer) of the parse → preview path and of the STOW-RS
# multipart parser, FUZZ_SECONDS each (fuzz/run.py): corpus in var/fuzz/, crashes in
# var/fuzz/crashes/; fails if one is found. `make test` runs the same properties, briefly,
# with hypothesis (docs/security-hostile.md).
FUZZ_SECONDS ?= 60
fuzz: setup
	$(PY) fuzz/run.py --seconds $(FUZZ_SECONDS)

lint: setup
	$(PY) -m ruff check .

# mypy with django-stubs over the app code ([tool.mypy] in pyproject.toml: no tests, no migrations).
typecheck: setup
	$(PY) -m mypy

# Licences of the runtime dependencies (pyproject.toml, transitively); fails on GPL/AGPL.
licences: setup
	$(PY) scripts/check-licences.py

# Deletes the virtualenv, and var/: the demo database and the DICOM storage (spool, objects,
# previews) of `make run`. Asks first on a terminal; without one, var/ needs FORCE=1.
clean:
	rm -rf $(VENV)
	@[ -e var ] || exit 0; \
	echo "make clean: var/ holds the demo database (SQLite) and the DICOM storage of make run"; \
	if [ "$(FORCE)" = 1 ]; then \
	  echo "rm -rf var"; rm -rf var; \
	elif [ -t 0 ]; then \
	  printf 'Delete var/ and everything in it? [y/N] '; read answer; \
	  case "$$answer" in [yY]*) echo "rm -rf var"; rm -rf var ;; *) echo "var/ kept" ;; esac; \
	else \
	  echo "make clean: var/ not deleted: no terminal to confirm; 'make clean FORCE=1' deletes it" >&2; \
	  exit 1; \
	fi
