"""`python -m debate_ft flow +dataset=musique`: online flow-DPO training with progressive validation and
resumable checkpoints, then evaluation on the test split; `flow.train=false` evaluates a saved flow.

Run-directory layout (under run_dir/flow): train_trace.jsonl (every greedy episode and rollout, visit by
visit), pairs.jsonl (every preference pair made), test_trace_ep<N>.jsonl (test episodes after N training
episodes), checkpoint/ (adapters, references, optimiser, progress). Metrics rows go to run_dir/metrics.csv.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from debate_ft.backends import Backend
from debate_ft.backends.engines import make_backend
from debate_ft.config import Config
from debate_ft.errors import ConfigError
from debate_ft.flow.graph import Episode, Flow, active_nodes
from debate_ft.flow.rollouts import deviation_pairs, episode_reward, reward_gaps, rollouts
from debate_ft.flow.signals import Pair, supervised_pairs
from debate_ft.layout import RunDir
from debate_ft.runs import (
    append_records,
    atomic_path,
    check_data,
    read_json,
    read_records,
    recover,
    upsert_rows,
    write_records,
)
from debate_ft.seeds import derive_seed
from debate_ft.tables import FLOW_COLUMNS, FLOW_METRIC_KEY, console, present, print_table
from debate_ft.tasks import get_task
from debate_ft.tasks.musique import MuSiQue, score

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """What a checkpoint remembers besides weights: where the stream is, and what it has scored so far."""

    episode: int = 0  # training episodes finished; the next one to run
    predictions: list[dict] = field(default_factory=list)  # progressive validation, one per episode
    pairs_made: int = 0
    pairs_used: int = 0
    pending: list[dict] = field(default_factory=list)  # pairs made but not yet in an optimiser step
    seconds: dict[str, list[float]] = field(default_factory=lambda: {"greedy": [], "deviations": [], "update": []})


# what state.json must hold for Progress(**state): a damaged one is refused in one line, not half-read
PROGRESS_FIELDS = {
    "episode": int,
    "predictions": list,
    "pairs_made": int,
    "pairs_used": int,
    "pending": list,
    "seconds": dict,
}


def flow(config: Config, run_dir: Path) -> None:
    task = get_task(config.dataset, flow=True)
    recover(run_dir)  # a checkpoint whose save was killed between its two renames is put back
    backend = make_backend(config.backend, config.model)
    if config.flow.train:
        rows = train(config, task, backend, run_dir)
    else:
        rows = [evaluate_saved(config, task, backend, run_dir)]
    columns = present(FLOW_COLUMNS[1:], {name for row in rows for name in row})  # one run: no run column
    print_table(rows, columns, f"musique-{config.dataset.variant} flow, {config.model.name} ({run_dir})")


def train(config: Config, task: MuSiQue, backend: Backend, run_dir: Path) -> list[dict]:
    from debate_ft.flow.dpo import Learner

    trainable = backend.trainable()
    if trainable is None:
        raise ConfigError(
            "flow training needs backend=hf (it trains LoRA adapters in-process); flow.train=false only evaluates"
        )
    settings, layout = config.flow, RunDir(run_dir)
    checkpoint = layout.checkpoint
    resume = checkpoint.exists()
    nodes = active_nodes(settings, task.full)
    torch.manual_seed(derive_seed(config.seed, "adapters"))  # fresh LoRA weights come from torch's global RNG
    learner = Learner(trainable, nodes, settings, config.train, checkpoint if resume else None)
    progress = Progress()
    if resume:
        state = read_json(checkpoint / "state.json", PROGRESS_FIELDS)
        progress = Progress(**{name: state[name] for name in PROGRESS_FIELDS})
        log.info("resuming %s at training episode %d", run_dir, progress.episode)
    for path in (layout.train_trace, layout.pairs):  # drop what episodes after the checkpoint wrote
        _keep_before(path, progress.episode)
    runner = Flow(backend, task, settings, {node: node for node in nodes})
    rows = []
    if settings.eval_before and not resume:
        rows.append(evaluate(config, task, runner, run_dir, episodes=0))
    questions = task.load("train", keep=kept_by_hops(settings.hop_keep))
    check_data(run_dir, "musique train", questions)
    with tqdm(total=len(questions), initial=progress.episode, desc="flow train", unit="episode") as bar:
        for index in range(progress.episode, len(questions)):
            train_episode(config, runner, learner, progress, questions, index, layout)
            if progress.episode % settings.save_every == 0 or progress.episode == len(questions):
                save_checkpoint(checkpoint, learner, progress)
                row = progressive_row(task, progress, questions, learner)
                upsert_rows(layout.metrics, [row], FLOW_METRIC_KEY)
            bar.update(1)
    rows.append(progressive_row(task, progress, questions, learner))
    rows.append(evaluate(config, task, runner, run_dir, episodes=progress.episode))
    return rows


def train_episode(config: Config, runner: Flow, learner, progress: Progress, questions, index: int, layout: RunDir):
    """One online step: the greedy episode (scored before any update from it), its deviations, the updates."""
    settings, seed = config.flow, derive_seed(config.seed, "train", index)
    start = time.perf_counter()
    greedy = runner.run([Episode(questions[index])], seed, desc="episode")[0]
    greedy_done = time.perf_counter()
    progress.predictions.append(greedy.prediction())
    forks = rollouts(runner, greedy, seed)
    gaps = reward_gaps(runner, greedy, forks)
    pairs = deviation_pairs(greedy, forks, gaps) + supervised_pairs(runner, greedy, seed)
    deviations_done = time.perf_counter()
    progress.pairs_made += len(pairs)
    progress.pending += [asdict(pair) for pair in pairs]
    last = index + 1 == len(questions)
    while progress.pending and (len(progress.pending) >= settings.batch_pairs or last):  # the last episode flushes
        batch = [Pair(**pair) for pair in progress.pending[: settings.batch_pairs]]
        del progress.pending[: settings.batch_pairs]
        learner.step(batch)
        progress.pairs_used += len(batch)
    if (index + 1) % settings.ref_every == 0:
        window_f1 = None  # reward-free mode may not read gold, not even to gate the reference
        if settings.reward != "evaluator":
            window = range(index + 1 - settings.ref_every, index + 1)
            window_f1 = score([questions[i] for i in window], [progress.predictions[i] for i in window])["answer_f1"]
        learner.update_reference(window_f1)
    for name, seconds in (
        ("greedy", greedy_done - start),
        ("deviations", deviations_done - greedy_done),
        ("update", time.perf_counter() - deviations_done),
    ):
        progress.seconds[name].append(seconds)
    records = [greedy.record(episode=index, kind="greedy", reward=episode_reward(greedy))]
    records += [f.record(episode=index, kind="rollout", reward=episode_reward(f), gap=g) for f, g in zip(forks, gaps)]
    append_records(layout.train_trace, records)
    append_records(layout.pairs, [{"episode": index, **asdict(pair)} for pair in pairs])
    progress.episode = index + 1


def kept_by_hops(chances: list[float]):
    """Whether a training question is in the stream: a draw fixed by its id against the chance for its hop count
    (2, 3, 4: its supporting paragraphs), so every run and seed sees the same stream."""

    def keep(question) -> bool:
        hops = sum(p.supporting for p in question.meta["paragraphs"])
        return random.Random(f"hops:{question.id}").random() < chances[min(max(hops, 2), 4) - 2]

    return keep


def save_checkpoint(path: Path, learner, progress: Progress) -> None:
    with atomic_path(path) as temporary:
        temporary.mkdir()
        learner.save(temporary)
        (temporary / "state.json").write_text(json.dumps(asdict(progress)))


def _keep_before(path: Path, episode: int) -> None:
    records = read_records(path)
    kept = [record for record in records if record["episode"] < episode]
    if len(kept) < len(records):
        write_records(path, kept)


def progressive_row(task: MuSiQue, progress: Progress, questions, learner) -> dict:
    """Progressive validation: metrics of each training episode's greedy prediction, made before the
    updates that episode caused; plus pair counts and mean seconds per episode by phase."""
    done = progress.episode
    seconds = {f"seconds_{name}": sum(values) / max(len(values), 1) for name, values in progress.seconds.items()}
    return {
        "split": "train",
        "stage": "progressive",
        "episodes": done,
        **score(questions[:done], progress.predictions[:done], task.full),
        "pairs_made": progress.pairs_made,
        "pairs_used": progress.pairs_used,
        "optimizer_steps": learner.steps,
        "ref_updates": learner.ref_updates,
        **seconds,
    }


def evaluate_saved(config: Config, task: MuSiQue, backend: Backend, run_dir: Path) -> dict:
    """Evaluate the run directory's checkpoint; without one, the untrained flow (the base model)."""
    checkpoint = RunDir(run_dir).checkpoint
    nodes = active_nodes(config.flow, task.full)
    if not checkpoint.exists():
        console().print(f"no checkpoint in {run_dir}: evaluating the untrained flow (base model)")
        return evaluate(config, task, Flow(backend, task, config.flow, dict.fromkeys(nodes)), run_dir, episodes=0)
    for node in nodes:
        backend.load_adapter(node, checkpoint / node)
    episodes = read_json(checkpoint / "state.json", PROGRESS_FIELDS)["episode"]
    runner = Flow(backend, task, config.flow, {node: node for node in nodes})
    return evaluate(config, task, runner, run_dir, episodes=episodes)


def evaluate(config: Config, task: MuSiQue, runner: Flow, run_dir: Path, episodes: int) -> dict:
    """Greedy episodes on the test split, all in lockstep; metrics keyed by training episodes so far."""
    questions = task.load("test")
    check_data(run_dir, "musique test", questions)
    start = time.perf_counter()
    done = runner.run([Episode(q) for q in questions], derive_seed(config.seed, "test"), desc="flow test")
    seconds = time.perf_counter() - start
    extractive = config.flow.extractive
    records = [e.record(extractive, episode=episodes) for e in done]
    write_records(RunDir(run_dir).test_trace(episodes), records)
    row = {
        "split": "test",
        "stage": "eval",
        "episodes": episodes,
        **score(questions, [e.prediction(extractive) for e in done], task.full),
        "seconds_greedy": seconds / max(len(questions), 1),
    }
    upsert_rows(RunDir(run_dir).metrics, [row], FLOW_METRIC_KEY)
    return row
