# Two commands on a fresh machine: `make demo` and `make test`. Each makes its own virtualenv,
# installs what it needs from the package registries, and builds the extension (release).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: demo test build rust-test py-test stubtest bench clean wheel wheel-check

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet --group dev
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
