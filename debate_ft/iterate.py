"""`iterate`: K iterations of debate -> majority labels -> per-adapter fine-tuning -> evaluation.

Iteration 0 scores the base society (base, majority, debate) on the test split. Iteration k >= 1 debates the
train split with the iteration k-1 society, labels it, trains every adapter on its own set and evaluates the
new society on the test split; the `ft_method`'s registry entry (methods.py) says who speaks with which adapter,
how the debate is labelled (majority vote; STaR: gold rationales) and which adapter learns from which examples.
Every step reads and writes files under iter<k>/, so a re-run of the same command continues at the first
unfinished step:
  iter<k>/train_<N>x<M>.jsonl   train debate (appended question by question)
  iter<k>/data/                 one dataset per adapter + sizes.json (written last: the step's marker)
  iter<k>/adapters/<name>/      one PEFT adapter per trained agent (renamed into place when complete; with
                                train.loop=joint the whole adapters/ folder is, as one)
  iter<k>/test_<N>x<M>.jsonl    test debate; its scores go to metrics.csv, one row per (iteration, method)
                                (extra_scorings: a test debate each, e.g. self_consistency's test_<N*M>x1.jsonl)
  iter<k>/kl.csv, nll_matrix.csv  the society's KL from the base and NLL matrix; its summary row goes to
                                diversity.csv (written last: the step's marker; see diversity.py)
"""

from __future__ import annotations

import gc
import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path

import datasets

from debate_ft.backends.engines import society_backend
from debate_ft.bases import base_configs, society_name
from debate_ft.compute import Ledger
from debate_ft.config import Config
from debate_ft.debate import RunDebates
from debate_ft.diversity import Diversity
from debate_ft.evaluate import evaluate, print_rows
from debate_ft.label import AgentSets, agent_sets, split_by_agent
from debate_ft.layout import RunDir
from debate_ft.methods import DEFAULT_SCORING, FINE_TUNINGS, GOLD_RATIONALES, FineTuning, Society
from debate_ft.models import HostedModel, host
from debate_ft.runs import atomic_path
from debate_ft.seeds import derive_seed
from debate_ft.sft_data import load_sets, save_sets
from debate_ft.star import star_examples, star_sets
from debate_ft.tables import console, print_table
from debate_ft.tasks import get_task
from debate_ft.train import Job, train_adapter, train_adapters
from debate_ft.train_shards import train_in_processes
from debate_ft.transcript import Record

log = logging.getLogger(__name__)


def iterate(config: Config, run_dir: Path) -> None:
    Iterations(config, run_dir, FINE_TUNINGS[config.ft_method]).run()


class Iterations:
    def __init__(self, config: Config, run_dir: Path, fine_tuning: FineTuning):
        datasets.disable_progress_bars()  # per-dataset save/map bars would drown the stage progress bars
        self.config, self.run_dir, self.fine_tuning = config, run_dir, fine_tuning
        self.layout = RunDir(run_dir)
        self.task = get_task(config.dataset)  # the society debates and learns on this one
        self.test_task = get_task(config.eval_dataset) if config.eval_dataset else self.task  # and is tested on this
        self.ledger = Ledger(run_dir)
        self.backend = society_backend(config, self.ledger)
        self.bases = base_configs(config)
        self.debates = RunDebates(config, self.backend, run_dir)
        self.adapters: dict[str, Path] = {}  # adapter name -> the PEFT directory it serves now
        self.diversity = Diversity(config.diversity, self.test_task, self.backend, run_dir, fine_tuning.name)
        self._trainers: dict[str, HostedModel] = {}  # HF copies of bases whose engine cannot train

    def base(self, job: Job) -> str:
        """The key of the base model `job`'s adapter lives on."""
        return self.backend.adapter_bases[job.name]

    def trainer(self, job: Job) -> HostedModel:
        """The model that trains `job`'s adapter, its base's: the engine's own where it serves what it trains
        (hf), else an HF copy hosted once, whose adapters the engine then loads from disk."""
        key = self.base(job)
        trainable = self.backend.engine(key).trainable()
        if trainable is not None:
            return trainable.hosted
        if key not in self._trainers:
            self._trainers[key] = host(self.bases[key], self.config.backend.device, self.config.backend.dtype)
        return self._trainers[key]

    def system_prompt(self, job: Job) -> str | None:
        return self.bases[self.base(job)].system_prompt

    def society(self) -> Society:
        return self.debates.society(self.adapters)

    def run(self) -> None:
        rows = self.test(0)
        for k in range(1, self.config.iterations + 1):
            plan, sizes = load_sets(self.layout.data(k)) or self.collect(k)
            self.train(k, plan)
            rows += self.test(k, **summary(plan, sizes))
        print_rows(
            rows, f"{self.test_task.name} test, {self.fine_tuning.name}, {society_name(self.config)} ({self.run_dir})"
        )

    def test(self, k: int, **extra) -> list[dict]:
        """Test-debate iteration k's society, score it into metrics.csv and measure its diversity."""
        tags = {"ft_method": self.fine_tuning.name, **extra}
        records, rows = evaluate(self.debates, self.test_task, k, DEFAULT_SCORING, self.ledger, self.adapters, **tags)
        if self.config.diversity.enabled:
            with self.ledger.stage(k, "diversity", "test"):
                self.diversity.run(k, records)
        for scoring in self.config.extra_scorings:
            rows += evaluate(self.debates, self.test_task, k, scoring, self.ledger, self.adapters, **tags)[1]
        return rows

    def collect(self, k: int) -> tuple[dict[str, list[dict]], list[dict]]:
        """Debate the train split with the current society, label it as the fine-tuning method does and split it
        into per-adapter sets by its training plan."""
        labels = self.fine_tuning.labels
        with self.ledger.stage(k, "debate", "train"):
            records = self.debates.run(self.task, k, "train", labels.debate, self.adapters)
        sets = self.rationales(k, records) if labels is GOLD_RATIONALES else self.majority(k, records)
        plan, sizes = self.fine_tuning.training_plan(sets), [{"agent": i, **s.sizes} for i, s in enumerate(sets)]
        save_sets(self.layout.data(k), plan, sizes)
        show_sizes(k, sizes, plan)
        return plan, sizes

    def majority(self, k: int, records: list[Record]) -> list[AgentSets]:
        """Every agent's generator and critic sets, labelled by the debate's majority."""
        config = self.config
        data = split_by_agent(records, self.task, config.agents.n)
        return agent_sets(
            data, config.train.critic_mix, config.train.critic_size, derive_seed(config.seed, k, "labels")
        )

    def rationales(self, k: int, records: list[Record]) -> list[AgentSets]:
        """STaR's one set: agent 0's rationales that reach the gold answer, and its rationalized misses."""
        task, seed = self.task, derive_seed(self.config.seed, k, "star")
        with self.ledger.stage(k, "rationalize", "train"):
            examples = star_examples(
                task,
                self.backend,
                records,
                task.load("train"),
                self.society().generators[0],
                self.config.generation,
                seed,
            )
        return [star_sets(examples)]

    def train(self, k: int, plan: dict[str, list[dict]]) -> None:
        """Train every adapter with data (all in one loop, or one after another: train.loop; one shared base);
        the rest keep theirs."""
        config, jobs = self.config, []
        for name, examples in plan.items():
            out = self.layout.adapters(k) / name
            if not examples:
                log.info(
                    "iteration %d: %s has no examples and keeps %s", k, name, self.adapters.get(name, "the base model")
                )
                continue
            if not (out / "adapter_config.json").exists():
                init = self.adapters.get(name) if config.train.init == "previous" else None
                jobs.append(Job(name, examples, out, derive_seed(config.seed, k, name), init))
            self.adapters[name] = out
        if jobs:
            start = time.perf_counter()
            with self.backend.offloaded():  # one GPU: the engine gives the trainer its memory meanwhile
                self.train_jobs(k, jobs)
                self.release_trainer()
            self.ledger.record(k, "train", "train", {job.name: len(job.examples) for job in jobs},
                               time.perf_counter() - start)  # fmt: skip
        for name, path in self.adapters.items():
            self.backend.load_adapter(name, path)

    def train_jobs(self, k: int, jobs: list[Job]) -> None:
        config = self.config
        if config.train.loop == "joint":
            self.train_jointly(self.layout.adapters(k), jobs)
        else:
            for job in jobs:
                train_adapter(self.trainer(job), job.examples, job.out_dir, config.train, job.seed, job.init_from,
                              self.system_prompt(job))  # fmt: skip

    def release_trainer(self) -> None:
        """Free GPU training copies before the engines wake: their reservations assumed the memory free."""
        if any(trainer.device.type == "cuda" for trainer in self._trainers.values()):
            import torch

            self._trainers.clear()
            gc.collect()
            torch.cuda.empty_cache()

    def train_jointly(self, folder: Path, jobs: list[Job]) -> None:
        """All jobs in one loop. Trained together, so resumed together: the adapters land as one folder (a
        subset trained again would draw other dropout masks and passes)."""
        with atomic_path(folder) as staging:
            if folder.is_dir():  # adapters finished before (by train.loop=separate) are kept
                shutil.copytree(folder, staging)
            staged = [replace(job, out_dir=staging / job.name) for job in jobs]
            config = self.config
            if config.train.processes > 1:  # one base (config.py refuses it for mixed societies)
                spec = staging.parent / "jobs.json"  # removed with the staging folder's parent
                train_in_processes(staged, self.bases[self.base(jobs[0])], config.train, config.backend.dtype, spec)
                return
            for base in dict.fromkeys(map(self.base, staged)):  # each base trains its own agents
                mine = [job for job in staged if self.base(job) == base]
                train_adapters(self.trainer(mine[0]), mine, config.train, self.system_prompt(mine[0]))


def summary(plan: dict[str, list[dict]], sizes: list[dict]) -> dict:
    """Dataset sizes that go beside the accuracy in metrics.csv."""
    return {
        "gen_examples": sum(s.get("generator", 0) for s in sizes),
        "critic_examples": sum(s.get("critic", 0) for s in sizes),
        "train_examples": sum(len(examples) for examples in plan.values()),
        "adapters_trained": sum(bool(examples) for examples in plan.values()),
    }


def show_sizes(k: int, sizes: list[dict], plan: dict[str, list[dict]]) -> None:
    columns = [c for c in sizes[0] if c != "critic_note"] if sizes else []
    print_table(sizes, columns, f"iteration {k}: fine-tuning data per agent")
    out = console()
    out.print("examples per adapter: " + ", ".join(f"{name} {len(e)}" for name, e in plan.items()))
    for row in sizes:
        if row.get("critic_note"):
            out.print(f"agent {row['agent']} critic set: {row['critic_note']}")
