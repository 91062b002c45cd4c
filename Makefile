# The two commands of the README: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install demo test lint types pytest docs bench chaos clean

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

pytest: install
	$(BIN)/pytest

docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

test: lint types pytest docs

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
	rm -rf $(VENV) site dist .mypy_cache .pytest_cache .ruff_cache
