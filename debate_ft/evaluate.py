"""Evaluation: debate the test questions and score base, majority and debate accuracy into metrics.csv."""

from __future__ import annotations

from pathlib import Path

from debate_ft import conformity
from debate_ft.compute import Ledger
from debate_ft.config import Config
from debate_ft.debate import RunDebates
from debate_ft.layout import RunDir
from debate_ft.methods import DEFAULT_SCORING, SCORINGS
from debate_ft.metrics import outcomes, summarize
from debate_ft.runs import upsert_rows
from debate_ft.tables import (
    CONFORMITY_KEY,
    EVALUATE_COLUMNS,
    METRIC_KEY,
    OUTCOME_KEY,
    print_table,
)
from debate_ft.tasks import Task
from debate_ft.transcript import Record


def evaluate(
    debates: RunDebates, task: Task, iteration: int, scoring: str, ledger: Ledger, trained=(), **extra
) -> tuple[list[Record], list[dict]]:
    """Debate the test split with the society of `trained` (timed in compute.csv) and score it by `scoring`:
    (records, metrics rows)."""
    stage = debate_stage(scoring)
    with ledger.stage(iteration, stage, "test"):
        records = debates.run(task, iteration, "test", scoring, trained)
    seconds = ledger.seconds(iteration, stage, "test")
    config, run_dir = debates.config, debates.run_dir
    return records, record_scores(config, task, records, run_dir, iteration, scoring, seconds_debate=seconds, **extra)


def debate_stage(scoring: str) -> str:
    """compute.csv's stage of a scoring's test debate: each scoring debates its own shape, so one run directory
    can hold several (iterate extra_scorings, evaluate method=...) without adding their seconds together."""
    return "debate" if scoring == DEFAULT_SCORING else f"debate:{scoring}"


def record_scores(
    config: Config, task: Task, records: list[Record], run_dir: Path, iteration: int, scoring: str, **extra
) -> list[dict]:
    """One metrics.csv row per scoring of a test transcript (base, majority, debate for `all`), its
    per-question outcomes in outcomes.csv, and its critics' moves per round in conformity.csv."""
    agents, rounds = SCORINGS[scoring].shape(config.agents.n, config.debate.rounds)
    # a transfer run (eval_dataset) tests on another dataset than it trained on; the tags go on every row
    tags = {"trained_on": config.dataset.name} if task.name != config.dataset.name else {}
    tags.update({"ft_method": extra["ft_method"]} if "ft_method" in extra else {})
    rows, per_question = [], []
    for scored in SCORINGS[scoring].writes:
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
