"""Our HF engine against vLLM on the same requests, in one run (`make bench-engines`, in the vLLM venv):
generation tok/s on the base model and with 6 different LoRA adapters mixed in every batch, and the ratio.

    OMP_NUM_THREADS=2 python benchmarks/engines.py [--requests 96] [--max-new-tokens 96] [--repeats 3]

Both engines get the same bfloat16 weights, the same prompts (arithmetic questions, each asked of 3 agents),
temperature 1.0 / top-p 0.9 and the same cap on new tokens; each figure is the median of --repeats runs, and
vLLM's engine start-up is left out. Ours runs first, before vLLM's engine exists. Run it alone: another
CPU-heavy process skews both columns. vLLM's CPU build keeps one core for its scheduler unless
VLLM_CPU_NUM_OF_RESERVED_CPU=0.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench import SIX, save_adapters
from rich.console import Console
from rich.table import Table

from debate_ft.backends import Request
from debate_ft.backends.hf import HFBackend
from debate_ft.backends.vllm import VLLMBackend
from debate_ft.config import BackendConfig, DatasetConfig, GenerationConfig, ModelConfig
from debate_ft.models import host
from debate_ft.tasks import get_task


def requests(count: int, mixed: bool) -> list[Request]:
    task = get_task(DatasetConfig(name="arithmetic", test_size=count))
    questions = task.load("test")
    return [
        Request([{"role": "user", "content": task.question_prompt(questions[i % len(questions)])}],
                f"agent{i % SIX}" if mixed else None)
        for i in range(count)
    ]  # fmt: skip


def tok_s(engine, batch: list[Request], sampling: GenerationConfig, repeats: int) -> float:
    rates = []
    for seed in range(repeats):
        start = time.perf_counter()
        completions = engine.generate(batch, sampling, seed=seed)
        rates.append(sum(c.tokens for c in completions) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=96)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sampling = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=1.0, top_p=0.9)
    model = ModelConfig()
    hosted = host(model, "cpu", "bfloat16")
    ours = HFBackend(hosted, batch_size=args.requests, system_prompt=model.system_prompt)
    settings = BackendConfig(name="vllm", dtype="bfloat16", batch_size=args.requests, max_model_len=2048)
    kinds = (("base model", False), (f"{SIX} adapters mixed", True))
    with tempfile.TemporaryDirectory() as scratch:
        adapters = save_adapters(hosted, Path(scratch), SIX, rank=8)
        for index, path in enumerate(adapters):
            ours.load_adapter(f"agent{index}", path)
        # ours first, then vLLM: its engine processes poll while idle and would slow ours on a small machine
        mine = [tok_s(ours, requests(args.requests, mixed), sampling, args.repeats) for _, mixed in kinds]
        theirs = VLLMBackend(model, settings)
        for index, path in enumerate(adapters):
            theirs.load_adapter(f"agent{index}", path)
        vllm = [tok_s(theirs, requests(args.requests, mixed), sampling, args.repeats) for _, mixed in kinds]
    rows = [(label, a, b) for (label, _), a, b in zip(kinds, mine, vllm)]
    reserved = os.environ.get("VLLM_CPU_NUM_OF_RESERVED_CPU", "vLLM's default")
    table = Table(title=f"{args.requests} requests x up to {args.max_new_tokens} new tokens, bfloat16, median of "
                  f"{args.repeats}; VLLM_CPU_NUM_OF_RESERVED_CPU: {reserved}")  # fmt: skip
    for column in ("generation", "ours (HF engine) tok/s", "vLLM tok/s", "ours / vLLM"):
        table.add_column(column, justify="right")
    for label, mine, vllm in rows:
        table.add_row(label, f"{mine:.0f}", f"{vllm:.0f}", f"{mine / vllm:.2f}x")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
