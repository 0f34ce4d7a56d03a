# Two commands on a fresh machine: `make demo` and `make test`. Each makes its own virtualenv,
# installs what it needs from the package registries, and builds the extension (release).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)

# cargo run from inside `make -j` would see make's jobserver in MAKEFLAGS without its file
# descriptors (make passes them only to recipes marked +) and warn; cargo keeps its own jobs.
CARGO := env -u MAKEFLAGS -u MFLAGS cargo

.PHONY: demo test build lint rust-test py-test stubtest rust-lane python-lane bench clean wheel wheel-check

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet --group dev
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
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --quiet -- -D warnings
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/ruff format --check --quiet .
	$(PY) -m mypy

CARGO_TEST := $(CARGO) test --workspace --quiet
PYTEST     := $(PY) -m pytest -q tests
STUBTEST   := $(PY) -m mypy.stubtest fastrouter_batch._core --allowlist stubtest-allowlist.txt

rust-test:
	$(CARGO_TEST)

py-test: build
	$(PYTEST)

stubtest: build
	$(STUBTEST)

# Everything CI checks. After the build, two lanes side by side: the linters then cargo test
# (one after the other: they share cargo's build directory), and pytest then stubtest
# (pytest mostly waits on servers and processes, leaving the cores to cargo). Each lane's
# output is printed whole when it ends.
test: build $(VENV)/.linters
	$(MAKE) --no-print-directory -j2 --output-sync=target rust-lane python-lane

rust-lane: lint
	$(CARGO_TEST)

python-lane:
	$(PYTEST)
	$(STUBTEST)

bench: build
	$(PY) bench/bench_validate.py
	$(PY) bench/bench_build.py

# Wheels a PyPI user can install: linked by zig against glibc 2.17 (manylinux2014, so any
# mainstream Linux since 2014), stripped; plus the sdist. Both land in dist/.
WHEEL_COMPAT ?= manylinux2014

wheel: $(VENV)/.installed
	$(PIP) install --quiet --group wheel
	rm -rf dist
	$(VENV)/bin/maturin build --release --strip --zig --compatibility $(WHEEL_COMPAT) --out dist
	$(VENV)/bin/maturin sdist --out dist

# The wheel's tag (auditwheel), stripping, LICENSE and metadata; then a fresh virtualenv
# installs it and uses it.
wheel-check: wheel
	$(PY) .ci/check_wheel.py dist

clean:
	rm -rf $(VENV) target dist
