# Two commands on a fresh machine: `make demo` and `make test`. Each makes its own virtualenv,
# installs what it needs from the package registries, and builds the extension (release).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: demo test build lint rust-test py-test stubtest bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "maturin>=1.16,<2" "pytest>=8" "mypy>=1.10" "pydantic>=2" orjson "openai>=1.40" httpx tqdm nbclient nbformat ipykernel pandas polars
	touch $@

# The linters, pinned so every run checks by the same rules (types-tqdm: tqdm's stubs for mypy).
LINTERS := ruff==0.17.6 mypy==2.4.1 types-tqdm==4.70.0.20261106

$(VENV)/.linters: $(VENV)/.installed Makefile
	$(PIP) install --quiet $(LINTERS)
	touch $@

build: $(VENV)/.installed
	$(VENV)/bin/maturin develop --release --quiet

demo: build
	$(PY) examples/demo.py

# rustfmt and clippy over every crate and target; ruff over the package, tests, benchmarks and
# examples; mypy --strict over the package (its settings are in pyproject.toml).
lint: $(VENV)/.linters
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/ruff format --check --quiet .
	$(PY) -m mypy

rust-test:
	cargo test --workspace --quiet

py-test: build
	$(PY) -m pytest -q tests

stubtest: build
	$(PY) -m mypy.stubtest fastrouter_batch._core --allowlist stubtest-allowlist.txt

test: lint rust-test py-test stubtest

bench: build
	$(PY) bench/bench_validate.py
	$(PY) bench/bench_build.py

clean:
	rm -rf $(VENV) target
