"""Debate throughput: the batched engine vs a naive loop, same model and questions, in one run.

    python benchmarks/debate_throughput.py [--questions 12] [--agents 3] [--max-new-tokens 128] [--repeats 3]

The naive loop is what the reference implementations do: one generate call per question per agent (batch 1).
The batched engine generates a whole debate round (questions x agents) per call. Both sample at temperature
1.0 / top-p 0.9, so each reports its own generated-token count; tokens/s is the comparable number, and the
table shows the median over --repeats runs (seeds 0, 1, ...). Memory is measured in fresh subprocesses: base
model alone vs base model + 6 LoRA adapters serving a mixed batch.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from rich.console import Console
from rich.table import Table

from debate_ft.backends import Request, make_backend
from debate_ft.config import BackendConfig, DatasetConfig, GenerationConfig, ModelConfig
from debate_ft.debate import Debate, Society
from debate_ft.tasks import get_task


def seconds(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def throughput(args) -> list[tuple[str, int, float]]:
    """(engine, tokens, seconds) of the run with the median tokens/s, per engine."""
    task = get_task(DatasetConfig(name="arithmetic", test_size=args.questions))
    questions = task.load("test")
    sampling = GenerationConfig(max_new_tokens=args.max_new_tokens)
    backend = make_backend(BackendConfig(threads=args.threads, batch_size=args.batch_size), ModelConfig())
    debate = Debate(task, backend, Society.base(args.agents), 1, False, sampling)

    def naive(seed: int) -> None:
        for question in questions:
            for agent in range(args.agents):
                request = Request([{"role": "user", "content": task.question_prompt(question)}])
                backend.generate([request], sampling, seed=seed * 1000 + agent)

    rows = []
    for name, run in (("naive loop (batch 1)", naive), ("batched engine", lambda seed: debate.chunk(questions, seed))):
        runs = []
        for seed in range(args.repeats):
            before = backend.generated_tokens
            elapsed = seconds(run, seed)
            runs.append((name, backend.generated_tokens - before, elapsed))
        rows.append(_median(runs))
    return rows


def _median(runs: list[tuple[str, int, float]]) -> tuple[str, int, float]:
    """The run with the median tokens/s (the lower middle one for an even count)."""
    return sorted(runs, key=lambda run: run[1] / run[2])[(len(runs) - 1) // 2]


def memory_probe(adapters: int, threads: int) -> tuple[int, int]:
    """Peak RSS and RSS after generating (KiB) of a fresh process that loads the model and `adapters`
    LoRA adapters, then generates one mixed batch."""
    script = f"""
import json, resource, tempfile, torch
from peft import LoraConfig
from debate_ft.backends import Request
from debate_ft.backends.hf import HFBackend
from debate_ft.config import GenerationConfig, ModelConfig
from debate_ft.models import host, set_threads
set_threads({threads})
hosted = host(ModelConfig())
backend = HFBackend(hosted, batch_size=16)
folder = tempfile.mkdtemp()
for i in range({adapters}):
    hosted.add_adapter(f"tmp{{i}}", LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    hosted.save_adapter(f"tmp{{i}}", __import__("pathlib").Path(folder) / str(i))
    hosted.delete_adapter(f"tmp{{i}}")
for i in range({adapters}):
    backend.load_adapter(f"agent{{i}}", f"{{folder}}/{{i}}")
names = [f"agent{{i % {adapters}}}" if {adapters} else None for i in range(12)]
requests = [Request([{{"role": "user", "content": "What is 12+7*3?"}}], name) for name in names]
backend.generate(requests, GenerationConfig(max_new_tokens=32), seed=0)
import psutil
print(json.dumps([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, psutil.Process().memory_info().rss // 1024]))
"""
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=12)
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="runs per engine; the median is shown")
    args = parser.parse_args(argv)

    rows = throughput(args)
    table = Table(
        title=f"Debate round 1: {args.questions} arithmetic questions x {args.agents} agents, SmolLM2-135M, "
        f"median of {args.repeats}"
    )
    for column in ("engine", "generate calls", "tokens", "seconds", "tokens/s"):
        table.add_column(column, justify="right")
    calls = {"naive loop (batch 1)": args.questions * args.agents, "batched engine": 1}
    for name, tokens, elapsed in rows:
        table.add_row(name, str(calls[name]), str(tokens), f"{elapsed:.1f}", f"{tokens / elapsed:.1f}")
    console = Console()
    console.print(table)
    (_, naive_tokens, naive_s), (_, batched_tokens, batched_s) = rows
    console.print(f"speed-up (tokens/s ratio): {(batched_tokens / batched_s) / (naive_tokens / naive_s):.2f}x")

    memory = Table(title="Memory of a fresh process: load the model and the adapters, generate a 12-row batch")
    for column in ("adapters loaded", "peak RSS (MiB)", "vs none", "RSS after (MiB)", "vs none"):
        memory.add_column(column, justify="right")
    probes = {n: memory_probe(n, args.threads) for n in (0, 6)}
    (peak0, after0) = probes[0]
    for n, (peak, after) in probes.items():
        memory.add_row(
            str(n), f"{peak / 1024:.0f}", f"{peak / peak0:.3f}x", f"{after / 1024:.0f}", f"{after / after0:.3f}x"
        )
    console.print(memory)


if __name__ == "__main__":
    main()
