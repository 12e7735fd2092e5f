"""Engine benchmark: generation, scoring, training, flow episodes and memory, each against a roofline measured
in the same run, in one table.

    python benchmarks/bench.py [--questions 32] [--agents 3] [--max-new-tokens 96] [--repeats 3] [--json PATH]
    python benchmarks/bench.py --quick --json out.json     # a tiny random model, seconds (used by the tests)

Roofline: decoding and scoring are matmul-bound, so the benchmark times the model's own linear-layer shapes
(every q/k/v/o/gate/up/down of one layer, times the layers, plus the vocabulary head) with as many rows as one
decode step of a full batch (or one scoring pass) and turns it into FLOP/s; the tokens/s limit is that FLOP/s
over 2 x (parameters in those matmuls) per token (4 x for LoRA training: forward, plus the backward pass to
the activations; the frozen base needs no weight gradients). Attention and the LoRA products are left out
of the limit (small at these lengths), so the fractions are slightly flattering to the engine.

Rows: (a) generation, base model; (b) the same rows under 6 different adapters mixed in every batch; (c) the
naive loop (one call per row, batch 1); (d) scoring the (b) completions; (e) SFT of one iteration's 2N
adapters, in the joint loop and by 2N separate TRL trainers; (f) one flow episode, greedy and a whole training
episode (model retriever, the flow's defaults; real rows with --musique), and one hop's relevance scoring by the
flow's Yes/No choice against the old path; (g) peak RSS of a fresh process with 0 and 6 adapters (two processes
side by side, once). Every other figure is the median over --repeats runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from debate_ft.backends import Request
from debate_ft.backends.hf import HFBackend
from debate_ft.chat import reply_ids
from debate_ft.config import DatasetConfig, FlowConfig, GenerationConfig, ModelConfig, TrainConfig
from debate_ft.devices import set_threads
from debate_ft.models import host
from debate_ft.tasks import get_task
from debate_ft.testing import musique_row, save_tiny_model

SIX = 6  # adapters mixed in the (b), (d) and (g) rows: 2N for N = 3 agents


def linear_shapes(model) -> list[tuple[int, int]]:
    """(in, out) of every matmul one token passes through, the vocabulary head included."""
    return [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)]


def flops_per_second(
    shapes: list[tuple[int, int]], rows: int, repeats: int, dtype: torch.dtype, device: torch.device
) -> float:
    """FLOP/s of x[rows, in] @ W^T over the model's matmul shapes in its dtype on its device (each distinct shape
    timed, median): on CPUs with bfloat16 instructions, bfloat16 matmuls run several times faster than float32."""
    synchronize = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    seconds = 0.0
    counts: dict[tuple[int, int], int] = {}
    for shape in shapes:
        counts[shape] = counts.get(shape, 0) + 1
    for (fan_in, fan_out), count in counts.items():
        x = torch.randn(rows, fan_in, dtype=dtype, device=device)
        w = torch.randn(fan_out, fan_in, dtype=dtype, device=device)
        x @ w.t()  # warm-up
        times = []
        for _ in range(max(3, repeats)):
            synchronize()
            start = time.perf_counter()
            for _ in range(3):
                x @ w.t()
            synchronize()
            times.append((time.perf_counter() - start) / 3)
        seconds += statistics.median(times) * count
    return sum(2 * rows * i * o for i, o in shapes) / seconds


def median_run(function, repeats: int) -> tuple[float, float]:
    """(work, seconds) of the run with the median work/seconds; `function(seed)` returns its work."""
    runs = []
    for seed in range(repeats):
        start = time.perf_counter()
        work = function(seed)
        runs.append((work, time.perf_counter() - start))
    return sorted(runs, key=lambda run: run[0] / run[1])[(len(runs) - 1) // 2]


def save_adapters(hosted, folder: Path, count: int, rank: int) -> list[Path]:
    """`count` LoRA adapters with small random B (so they differ), saved as PEFT folders."""
    from peft import LoraConfig

    paths = []
    for index in range(count):
        torch.manual_seed(index)
        hosted.add_adapter("tmp", LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear"))
        with torch.no_grad():
            for name, tensor in hosted.peft.named_parameters():
                if "lora_B" in name and f".{hosted.internal_name('tmp')}." in name:
                    tensor.normal_(0, 0.002)
        paths.append(folder / f"adapter{index}")
        hosted.save_adapter("tmp", paths[-1])
        hosted.delete_adapter("tmp")
    return paths


def memory_probes(model: ModelConfig, adapter_sets: list[list[Path]], threads: int, dtype: str) -> list[float]:
    """Peak RSS (MiB) of fresh processes, one per adapter set (run side by side), each loading the model and
    its adapters and generating a 12-row batch that mixes them."""
    script = """
import json, resource, sys
from debate_ft.backends import Request
from debate_ft.backends.hf import HFBackend
from debate_ft.config import GenerationConfig, ModelConfig
from debate_ft.devices import set_threads
from debate_ft.models import host
model, paths, threads, dtype = json.loads(sys.argv[1])
set_threads(threads)
backend = HFBackend(host(ModelConfig(**model), device="cpu", dtype=dtype), batch_size=16)
for i, path in enumerate(paths):
    backend.load_adapter(f"agent{i}", path)
names = [f"agent{i % len(paths)}" if paths else None for i in range(12)]
requests = [Request([{"role": "user", "content": "What is 12+7*3?"}], name) for name in names]
backend.generate(requests, GenerationConfig(max_new_tokens=32), seed=0)
try:  # this process's own peak; ru_maxrss also counts the parent's, which Linux records at exec
    with open("/proc/self/status") as status:
        print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM")))
except OSError:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, json.dumps([model.__dict__, [str(p) for p in paths], threads, dtype])],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for paths in adapter_sets
    ]
    peaks = []
    for process in processes:
        output, _ = process.communicate()
        if process.returncode:
            raise RuntimeError(f"memory probe failed ({process.returncode})")
        peaks.append(json.loads(output.strip().splitlines()[-1]) / 1024)
    return peaks


class Bench:
    def __init__(self, args, model: ModelConfig, folder: Path):
        self.args, self.model, self.folder = args, model, folder
        self.hosted = host(model, device=args.device, dtype=args.dtype)
        self.backend = HFBackend(self.hosted, batch_size=args.batch_size, system_prompt=model.system_prompt)
        self.adapters = save_adapters(self.hosted, folder, SIX, args.rank)
        for index, path in enumerate(self.adapters):
            self.backend.load_adapter(f"agent{index}", path)
        self.task = get_task(DatasetConfig(name="arithmetic", test_size=args.questions))
        self.questions = self.task.load("test")
        self.sampling = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=1.0, top_p=0.9)
        shapes = linear_shapes(self.hosted.base)
        self.params = sum(i * o for i, o in shapes)
        dtype, device = self.hosted.base.dtype, self.hosted.device
        self.decode_flops = flops_per_second(shapes, args.batch_size, args.repeats, dtype, device)
        self.prefill_flops = flops_per_second(shapes, 512, args.repeats, dtype, device)
        self.completions: list[str] = []

    def requests(self, mixed: bool) -> list[Request]:
        return [
            Request(
                [{"role": "user", "content": self.task.question_prompt(q)}],
                f"agent{(len(self.questions) * a + i) % SIX}" if mixed else None,
            )
            for i, q in enumerate(self.questions)
            for a in range(self.args.agents)
        ]

    def generation(self, mixed: bool) -> float:
        requests = self.requests(mixed)

        def run(seed: int) -> int:
            completions = self.backend.generate(requests, self.sampling, seed=seed)
            if mixed:
                self.completions = [c.text for c in completions]
            return sum(c.tokens for c in completions)

        tokens, seconds = median_run(run, self.args.repeats)
        return tokens / seconds

    def naive(self) -> float:
        requests = self.requests(mixed=True)[: self.args.naive_rows]

        def run(seed: int) -> int:
            return sum(
                self.backend.generate([request], self.sampling, seed=seed * 1000 + index)[0].tokens
                for index, request in enumerate(requests)
            )

        tokens, seconds = median_run(run, self.args.repeats)
        return tokens / seconds

    def scoring(self) -> float:
        requests = self.requests(mixed=True)
        completions = self.completions or ["7"] * len(requests)
        tokens = sum(self.backend.prompt_tokens(r.messages) for r in requests)
        tokens += sum(len(reply_ids(self.hosted.tokenizer, c)) for c in completions)

        def run(seed: int) -> int:
            self.backend.logprobs(requests, completions)
            return tokens

        work, seconds = median_run(run, self.args.repeats)
        return work / seconds

    def training(self, joint: bool) -> float:
        """SFT of 2N adapters on one iteration's data (each example a question and one of the (b) completions):
        in one joint loop, or by 2N separate TRL trainers one after another (train.loop=separate)."""
        from debate_ft.train import Job, tokenized_dataset, train_adapter, train_adapters

        config = TrainConfig(epochs=1, batch_size=min(4, self.args.train_examples))
        requests = self.requests(mixed=False)
        completions = self.completions or ["7"] * len(requests)
        examples = [
            {"messages": [*r.messages, {"role": "assistant", "content": c}]} for r, c in zip(requests, completions)
        ]
        per_adapter = examples[: self.args.train_examples]
        tokens = SIX * sum(len(row["input_ids"]) for row in tokenized_dataset(self.hosted.tokenizer, per_adapter, None))

        def run(seed: int) -> int:
            jobs = [Job(f"a{i}", per_adapter, self.folder / f"trained{i}", seed + i) for i in range(SIX)]
            if joint:
                train_adapters(self.hosted, jobs, config)
            else:
                for job in jobs:
                    train_adapter(self.hosted, job.examples, job.out_dir, config, job.seed)
            return tokens

        work, seconds = median_run(run, self.args.repeats)
        return work / seconds

    def flow(self) -> dict:
        """Seconds of one greedy flow episode; of a whole training episode (the greedy one, its deviations, its
        label signals and one optimiser step per pair); and of one hop's relevance scoring, by the first-token
        choice the flow uses and by the old path, Yes and No scored as full replies. Real MuSiQue rows (20
        paragraphs) where --musique names a folder of them, else a synthetic 4-paragraph question."""
        from debate_ft.flow.dpo import Learner
        from debate_ft.flow.graph import Episode, Flow, active_nodes, user
        from debate_ft.flow.rollouts import deviation_pairs, reward_gaps, rollouts
        from debate_ft.flow.signals import supervised_pairs
        from debate_ft.tasks.musique import MuSiQue

        data = self.args.musique
        if data is None:
            data = self.folder / "musique.jsonl"
            data.write_text("".join(json.dumps(musique_row(n)) + "\n" for n in range(8)))
        task = MuSiQue(DatasetConfig(name="musique", path=str(data), train_size=8, test_size=4))
        settings = FlowConfig(
            max_new_tokens=self.args.flow_tokens,
            final_tokens=min(12, self.args.flow_tokens),
            max_hops=1 if self.args.quick else FlowConfig.max_hops,
        )
        nodes = active_nodes(settings, task.full)
        learner = Learner(self.backend, nodes, settings, TrainConfig())
        runner = Flow(self.backend, task, settings, {node: node for node in nodes})
        times: dict[str, list[float]] = {"greedy": [], "training": [], "choice": [], "full": []}
        visits = 0
        for seed, question in zip(range(self.args.repeats), task.load("train")):
            start = time.perf_counter()
            episode = runner.run([Episode(question)], seed, desc="episode")[0]
            middle = time.perf_counter()
            forks = rollouts(runner, episode, seed)
            pairs = deviation_pairs(episode, forks, reward_gaps(runner, episode, forks))
            for pair in pairs + supervised_pairs(runner, episode, seed):
                learner.step([pair])
            times["greedy"].append(middle - start)
            times["training"].append(time.perf_counter() - start)
            visits = len(episode.visits)
            search = next(v.prompt for v in episode.visits if v.node == "relevance")
            texts = [runner.relevance_prompt(question.text, search, p) for p in question.meta["paragraphs"]]
            requests = [Request(user(text), "relevance") for text in texts]
            start = time.perf_counter()
            self.backend.choice_logprobs(requests, ["Yes", "No"])
            middle = time.perf_counter()
            self.backend.logprobs([r for r in requests for _ in range(2)], ["Yes", "No"] * len(requests))
            times["choice"].append(middle - start)
            times["full"].append(time.perf_counter() - middle)
        return {name: statistics.median(values) for name, values in times.items()} | {"visits": visits}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--naive-rows", type=int, default=12, help="rows the naive batch-1 loop generates")
    parser.add_argument("--train-examples", type=int, default=16, help="SFT examples per adapter")
    parser.add_argument("--flow-tokens", type=int, default=32, help="flow.max_new_tokens")
    parser.add_argument("--musique", type=Path, help="a folder of real MuSiQue rows for the (f) rows (train*.jsonl)")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank of the adapters")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (the (g) memory probes run on the CPU)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="the model's weights")
    parser.add_argument("--repeats", type=int, default=3, help="runs per row; the median is shown")
    parser.add_argument("--model-path", help="a local model directory (default: the embedded SmolLM2-135M)")
    parser.add_argument("--quick", action="store_true", help="a tiny random model and tiny sizes (seconds)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.questions, args.max_new_tokens, args.batch_size, args.naive_rows = 2, 6, 4, 2
        args.train_examples, args.flow_tokens, args.repeats = 2, 4, 1
    set_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        path = str(save_tiny_model(folder / "tiny")) if args.quick else args.model_path
        model = ModelConfig(name="bench", path=path, gguf_package=None, gguf_file=None) if path else ModelConfig()
        if args.quick:
            model = ModelConfig(name="tiny", path=path, gguf_package=None, gguf_file=None, system_prompt=None)
        bench = Bench(args, model, folder)
        figures = {
            "roofline_tok_s": bench.decode_flops / (2 * bench.params),
            "base_tok_s": bench.generation(mixed=False),
            "mixed_tok_s": bench.generation(mixed=True),
            "naive_tok_s": bench.naive(),
            "score_tok_s": bench.scoring(),
            "train_tok_s": bench.training(joint=True),
            "train_separate_tok_s": bench.training(joint=False),
        }
        flow = bench.flow()
        visits = flow.pop("visits")
        figures |= {f"flow_{name}_s": seconds for name, seconds in flow.items()}
        figures["peak_rss_0_mib"], figures["peak_rss_6_mib"] = memory_probes(
            model, [[], bench.adapters], args.threads, args.dtype
        )
        prefill_roofline = bench.prefill_flops / (2 * bench.params)
        train_roofline = bench.prefill_flops / (4 * bench.params)
    report(args, bench, figures, prefill_roofline, train_roofline, visits)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def report(args, bench: Bench, figures: dict, prefill_roofline: float, train_roofline: float, visits: int) -> None:
    from rich.console import Console
    from rich.table import Table

    roofline = figures["roofline_tok_s"]
    table = Table(
        title=f"Engine on {args.threads} threads, {args.dtype}: {args.questions} questions x {args.agents} agents, "
        f"{args.max_new_tokens} new tokens, batch {args.batch_size}, median of {args.repeats}; matmuls at "
        f"{bench.decode_flops / 1e9:.0f} GFLOP/s (decode, {args.batch_size} rows), "
        f"{bench.prefill_flops / 1e9:.0f} GFLOP/s (512 rows); {bench.params / 1e6:.1f} M matmul parameters"
    )
    for column in ("row", "measured", "roofline", "of roofline", "note"):
        table.add_column(column, justify="right")

    def row(name, value, unit, limit=None, note=""):
        fraction = f"{value / limit:.0%}" if limit else ""
        table.add_row(name, f"{value:.1f} {unit}", f"{limit:.0f} {unit}" if limit else "", fraction, note)

    row("(a) generation, base", figures["base_tok_s"], "tok/s", roofline)
    row("(b) generation, 6 adapters mixed", figures["mixed_tok_s"], "tok/s", roofline)
    row("(c) naive loop, batch 1", figures["naive_tok_s"], "tok/s", roofline,
        f"engine (b) = {figures['mixed_tok_s'] / figures['naive_tok_s']:.1f}x")  # fmt: skip
    row("(d) scoring, 6 adapters mixed", figures["score_tok_s"], "tok/s", prefill_roofline, "prompt + completion")
    row("(e) SFT of 2N = 6 adapters, joint loop", figures["train_tok_s"], "tok/s", train_roofline,
        f"4 x params per token; {figures['train_tok_s'] / figures['train_separate_tok_s']:.1f}x separate")  # fmt: skip
    row("(e) the same, 6 separate trainers", figures["train_separate_tok_s"], "tok/s", train_roofline)
    per_visit = figures["flow_greedy_s"] / max(1, visits)
    row("(f) flow episode, greedy", figures["flow_greedy_s"], "s", None, f"{visits} visits, {per_visit:.2f} s each")
    row("(f) flow training episode", figures["flow_training_s"], "s", None,
        f"{figures['flow_training_s'] / figures['flow_greedy_s']:.1f}x the greedy episode")  # fmt: skip
    row("(f) one hop's relevance, Yes/No choice", figures["flow_choice_s"], "s", None,
        f"{figures['flow_full_s'] / figures['flow_choice_s']:.1f}x faster than both replies in full")  # fmt: skip
    row("(f) the same, both replies in full", figures["flow_full_s"], "s")
    row("(g) peak RSS, 0 adapters", figures["peak_rss_0_mib"], "MiB")
    row("(g) peak RSS, 6 adapters", figures["peak_rss_6_mib"], "MiB", None,
        f"{figures['peak_rss_6_mib'] / figures['peak_rss_0_mib']:.3f}x none")  # fmt: skip
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
