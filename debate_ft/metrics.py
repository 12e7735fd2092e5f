"""Scores of debate transcripts: accuracy with its standard error, no-answers and consensus."""

from __future__ import annotations

import math
from collections.abc import Sequence

from debate_ft.tasks import Task
from debate_ft.vote import majority


def mean_stderr(values: Sequence[float]) -> tuple[float, float]:
    """Mean and its standard error std/sqrt(n), with the sample std (ddof=1); NaN stderr for n < 2."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


def answers_at(record: dict, round_: int, agents: int | None = None) -> list[str | None]:
    turns = sorted((t for t in record["turns"] if t["round"] == round_), key=lambda t: t["agent"])
    return [t["answer"] for t in turns][:agents]


def score(records: Sequence[dict], task: Task, method: str) -> dict:
    """base: agent 1's round-1 answer; majority: vote of all round-1 answers; debate: vote of the last round.

    Every question stays in the denominator; a question with no parseable answer counts as wrong.
    """
    correct, consensus, unanswered = [], [], 0
    for record in records:
        last = max(t["round"] for t in record["turns"])
        round_, agents = {"base": (1, 1), "majority": (1, None), "debate": (last, None)}[method]
        vote = majority(answers_at(record, round_, agents), task.equivalent)
        correct.append(float(task.is_correct(vote.answer, record["gold"])))
        consensus.append(vote.consensus)
        unanswered += vote.answer is None
    accuracy, stderr = mean_stderr(correct)
    return {
        "n": len(records),
        "accuracy": accuracy,
        "stderr": stderr,
        "no_answer": unanswered,
        "consensus": mean_stderr(consensus)[0],
    }
