"""Evaluation: debate the test questions and score base, majority and debate accuracy into metrics.csv."""

from __future__ import annotations

from pathlib import Path

from debate_ft import conformity
from debate_ft.backends import Backend
from debate_ft.compute import Ledger
from debate_ft.config import Config
from debate_ft.debate import Debate
from debate_ft.layout import RunDir
from debate_ft.methods import SCORINGS, Society
from debate_ft.metrics import outcomes, summarize
from debate_ft.runs import check_data, upsert_rows
from debate_ft.seeds import derive_seed
from debate_ft.tables import (
    CONFORMITY_KEY,
    EVALUATE_COLUMNS,
    METRIC_KEY,
    OUTCOME_KEY,
    print_table,
)
from debate_ft.tasks import Task
from debate_ft.transcript import Record


def run_debate(
    config: Config,
    task: Task,
    backend: Backend,
    society: Society,
    run_dir: Path,
    iteration: int,
    split: str,
    method: str,
) -> list[Record]:
    agents, rounds = SCORINGS[method].shape(config.agents.n, config.debate.rounds)
    society = Society(society.generators[:agents], society.critics[:agents], society.agent_ids)
    path = RunDir(run_dir).transcript(iteration, split, agents, rounds, config.debate.summarize)
    debate = Debate(task, backend, society, rounds, config.debate.summarize, config.generation, config.debate.prompt)
    questions = task.load(split)
    check_data(run_dir, f"{task.name} {split}", questions)
    return debate.run(questions, path, derive_seed(config.seed, split), config.debate.chunk_size)


def evaluate(
    config: Config,
    task: Task,
    backend: Backend,
    society: Society,
    run_dir: Path,
    iteration: int,
    method: str,
    ledger: Ledger,
    **extra,
) -> tuple[list[Record], list[dict]]:
    """Debate the test split (timed in compute.csv) and score it: (records, metrics rows)."""
    with ledger.stage(iteration, "debate", "test"):
        records = run_debate(config, task, backend, society, run_dir, iteration, "test", method)
    seconds = ledger.seconds(iteration, "debate", "test")
    return records, record_scores(config, task, records, run_dir, iteration, method, seconds_debate=seconds, **extra)


def record_scores(
    config: Config, task: Task, records: list[Record], run_dir: Path, iteration: int, method: str, **extra
) -> list[dict]:
    """One metrics.csv row per scoring of a test transcript (base, majority, debate for `all`), its
    per-question outcomes in outcomes.csv, and its critics' moves per round in conformity.csv."""
    agents, rounds = SCORINGS[method].shape(config.agents.n, config.debate.rounds)
    # a transfer run (eval_dataset) tests on another dataset than it trained on; the tags go on every row
    tags = {"trained_on": config.dataset.name} if task.name != config.dataset.name else {}
    tags.update({"ft_method": extra["ft_method"]} if "ft_method" in extra else {})
    rows, per_question = [], []
    for scored in SCORINGS[method].writes:
        key = {"iteration": iteration, "split": "test", "method": scored}
        scored_outcomes = outcomes(records, task, scored)
        voted_agents, voted_rounds = SCORINGS[scored].voted(agents, rounds)  # e.g. base: agent 0, round 1
        per_question += [{**key, "dataset": task.name, **row, **tags} for row in scored_outcomes]
        rows.append(
            {
                **key,
                "dataset": task.name,
                "agents": voted_agents,
                "rounds": voted_rounds,
                **summarize(scored_outcomes),
                **tags,
                **extra,
            }
        )
    moves = conformity.rows(records, task.is_correct, task.equivalent)
    if moves:  # a debate of two rounds or more
        moves = [{"iteration": iteration, "split": "test", **row, **tags} for row in moves]
        upsert_rows(RunDir(run_dir).conformity, moves, CONFORMITY_KEY)
    upsert_rows(RunDir(run_dir).outcomes, per_question, OUTCOME_KEY)
    upsert_rows(RunDir(run_dir).metrics, rows, METRIC_KEY)
    return rows


def print_rows(rows: list[dict], title: str) -> None:
    print_table(rows, EVALUATE_COLUMNS, title)
