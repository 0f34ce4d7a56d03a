# Two commands on a fresh machine: `make demo` and `make test`. Each makes its own virtualenv,
# installs what it needs from the package registries, and builds the extension (release).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: demo test build rust-test py-test stubtest bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "maturin>=1.16,<2" "pytest>=8" "mypy>=1.10" "pydantic>=2" orjson "openai>=1.40" "anthropic>=0.60" httpx tqdm nbclient nbformat ipykernel pandas polars
	touch $@

build: $(VENV)/.installed
	$(VENV)/bin/maturin develop --release --quiet

demo: build
	$(PY) examples/demo.py

rust-test:
	cargo test --workspace --quiet

py-test: build
	$(PY) -m pytest -q tests

stubtest: build
	$(PY) -m mypy.stubtest fastrouter_batch._core --allowlist stubtest-allowlist.txt

test: rust-test py-test stubtest

bench: build
	$(PY) bench/bench_validate.py
	$(PY) bench/bench_build.py

clean:
	rm -rf $(VENV) target
