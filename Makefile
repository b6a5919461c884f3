# The two commands a user needs: `make run` and `make test`. `make install` is their shared set-up.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
HASH    := $(shell cat pyproject.toml | sha1sum | cut -c1-12)
# `make run` installs what running needs (numpy, onnxruntime, Qt, VTK, ...); `make test` adds the
# train (torch, MONAI, onnx), dev and bench extras. Each stamp is tied to pyproject.toml.
RUNTIME := $(VENV)/.runtime-$(HASH)
STAMP   := $(VENV)/.installed-$(HASH)
DEMO    := resources/demo

.PHONY: install install-runtime run test bench fuzz lint format demo clean package test-package

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(RUNTIME): $(BIN)/python pyproject.toml
	bash packaging/install-system-deps.sh
	$(BIN)/pip install -q -e .
	@rm -f $(VENV)/.runtime-*; touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(BIN)/pip install -q -e '.[dev,bench]'
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP)

install-runtime: $(RUNTIME)

run: install-runtime
	$(BIN)/osteoview $(DEMO)

test: install
	$(BIN)/ruff check app models tests
	$(BIN)/ruff format --check app models tests
	$(BIN)/python -m pytest -q tests --ignore=tests/benchmarks

bench: install
	$(BIN)/python -m pytest -q -s tests/benchmarks

# 10,000 mutants of the real DICOM files through the loader (tests/fuzz/harness.py); prints the
# counts, exits non-zero on any signal, hang, uncaught error or silent impossible geometry.
FUZZ_COUNT ?= 10000
FUZZ_SEED  ?= 0
fuzz: install
	$(BIN)/python -m tests.fuzz.harness --count $(FUZZ_COUNT) --seed $(FUZZ_SEED)

# The wheel, the self-contained bundle (PyInstaller) and the .deb, in build/package/out (see
# packaging/build.sh; PyPI and dpkg-deb only). test-package unpacks the .deb into a temporary root
# and runs it with no Python on PATH (tests/packaging, marked slow).
package:
	bash packaging/build.sh

test-package: install package
	OSTEOVIEW_TEST_PACKAGE=1 $(BIN)/python -m pytest -q -s -m slow tests/packaging

lint: install
	$(BIN)/ruff check app models tests

format: install
	$(BIN)/ruff format app models tests
	$(BIN)/ruff check --fix app models tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
