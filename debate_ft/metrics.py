"""Scores of debate transcripts: accuracy with its standard error, no-answers and consensus."""

from __future__ import annotations

from collections.abc import Sequence

from debate_ft.methods import SCORINGS
from debate_ft.stats import mean_stderr
from debate_ft.tasks import Task
from debate_ft.transcript import Record, final_round, round_vote


def outcomes(records: Sequence[Record], task: Task, scoring: str) -> list[dict]:
    """Per question: its vote under `scoring`, whether that is correct, and the tokens the scoring generated."""
    rows = []
    for record in records:
        agents, round_ = SCORINGS[scoring].voted(None, final_round(record.turns))
        vote = round_vote(record.turns, task.equivalent, round_, agents)
        used = [t for t in record.turns if t.round <= round_ and (agents is None or t.agent < agents)]
        rows.append(
            {
                "question_id": record.id,
                "correct": int(task.is_correct(vote.answer, record.gold)),
                "answered": vote.answer is not None,
                "consensus": vote.consensus,
                "gen_tokens": sum(t.tokens for t in used),
            }
        )
    return rows


def summarize(rows: Sequence[dict]) -> dict:
    """accuracy ± stderr over every question (no answer counts as wrong), no-answers, consensus, tokens."""
    accuracy, stderr = mean_stderr([row["correct"] for row in rows])
    return {
        "n": len(rows),
        "accuracy": accuracy,
        "stderr": stderr,
        "no_answer": sum(not row["answered"] for row in rows),
        "consensus": mean_stderr([row["consensus"] for row in rows])[0],
        "gen_tokens": sum(row["gen_tokens"] for row in rows),
    }


def score(records: Sequence[Record], task: Task, scoring: str) -> dict:
    """base: agent 1's round-1 answer; majority: vote of all round-1 answers; debate: vote of the last round;
    self_consistency: vote of one round of independent samples.

    Every question stays in the denominator; a question with no parseable answer counts as wrong.
    """
    return summarize(outcomes(records, task, scoring))
