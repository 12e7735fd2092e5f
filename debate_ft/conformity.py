"""Conformity in a debate, measured from its transcript: how critics' answers move between rounds.

For each critic turn (round r >= 2) against the same agent's answer in round r - 1: a right -> wrong or wrong ->
right flip, and whether it *adopted* another agent's answer (changed its own to one some other agent gave in
round r - 1). Per round, the oracle gap: the share of questions where some agent is right minus the share where
the round's vote is right. Pure functions over transcript records; `rows` gives conformity.csv's rows and
`flags` the transcript browser's per-question filters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from debate_ft.stats import mean_stderr
from debate_ft.transcript import Record, final_round, round_turns, round_vote
from debate_ft.vote import Equivalent

Correct = Callable[[str | None, str], bool]


@dataclass(frozen=True)
class Move:
    """One critic turn against the same agent's answer a round earlier."""

    round: int
    right_before: bool
    right_after: bool
    changed: bool
    adopted: bool  # changed to an answer another agent gave in the round before


def same(a: str | None, b: str | None, equivalent: Equivalent) -> bool:
    return a is None and b is None or (a is not None and b is not None and equivalent(a, b))


def moves(record: Record, correct: Correct, equivalent: Equivalent) -> list[Move]:
    """Every critic turn's move, in round and agent order."""
    found = []
    for round_ in range(2, final_round(record.turns) + 1):
        before = {turn.agent: turn.answer for turn in round_turns(record.turns, round_ - 1)}
        for turn in round_turns(record.turns, round_):
            if turn.agent not in before:
                continue
            own = before[turn.agent]
            changed = not same(own, turn.answer, equivalent)
            others = [answer for agent, answer in before.items() if agent != turn.agent and answer is not None]
            adopted = changed and turn.answer is not None and any(equivalent(turn.answer, a) for a in others)
            right_before, right_after = correct(own, record.gold), correct(turn.answer, record.gold)
            found.append(Move(round_, right_before, right_after, changed, adopted))
    return found


def oracle(record: Record, correct: Correct, round_: int) -> bool:
    """Whether some agent's answer in the round is right."""
    return any(correct(turn.answer, record.gold) for turn in round_turns(record.turns, round_))


def flags(record: Record, correct: Correct, equivalent: Equivalent) -> dict[str, bool]:
    """The browser's per-question filters: a critic flipped right -> wrong / wrong -> right, a critic adopted
    another agent's answer, and some agent was right in the last round while the vote was wrong."""
    found = moves(record, correct, equivalent)
    last = final_round(record.turns)
    return {
        "right_to_wrong": any(m.right_before and not m.right_after for m in found),
        "wrong_to_right": any(not m.right_before and m.right_after for m in found),
        "adopted": any(m.adopted for m in found),
        "oracle_missed": oracle(record, correct, last) and not record.correct,
    }


def rows(records: Sequence[Record], correct: Correct, equivalent: Equivalent) -> list[dict]:
    """One row per round r >= 2: flips (count, and rate among the turns right / wrong before), the share of
    critic turns that adopted another agent's answer, and the oracle gap (some agent right minus vote right)."""
    by_round: dict[int, list[Move]] = {}
    for record in records:
        for move in moves(record, correct, equivalent):
            by_round.setdefault(move.round, []).append(move)
    table = []
    for round_, found in sorted(by_round.items()):
        right = [m for m in found if m.right_before]
        wrong = [m for m in found if not m.right_before]
        present = [r for r in records if final_round(r.turns) >= round_]
        some_right = [float(oracle(r, correct, round_)) for r in present]
        vote_right = [float(correct(round_vote(r.turns, equivalent, round_).answer, r.gold)) for r in present]
        gap, gap_se = mean_stderr([s - v for s, v in zip(some_right, vote_right)])
        right_to_wrong = sum(not m.right_after for m in right)
        wrong_to_right = sum(m.right_after for m in wrong)
        table.append(
            {
                "round": round_,
                "critic_turns": len(found),
                "right_to_wrong": right_to_wrong,
                "right_to_wrong_rate": right_to_wrong / len(right) if right else float("nan"),
                "wrong_to_right": wrong_to_right,
                "wrong_to_right_rate": wrong_to_right / len(wrong) if wrong else float("nan"),
                "adopted_share": sum(m.adopted for m in found) / len(found),
                "oracle_acc": mean_stderr(some_right)[0],
                "vote_acc": mean_stderr(vote_right)[0],
                "oracle_gap": gap,
                "oracle_gap_se": gap_se,
            }
        )
    return table
