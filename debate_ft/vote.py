"""Majority vote over parsed answers, equivalence-aware.

Tie rule (the same everywhere): among the largest clusters, the one whose first member comes from the
earliest agent wins. A None answer (nothing parseable) joins no cluster, so it never wins and never
counts towards consensus; if every answer is None the vote is None.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

Equivalent = Callable[[str, str], bool]


@dataclass(frozen=True)
class Vote:
    answer: str | None  # the winning cluster's first answer, verbatim
    count: int  # agents in the winning cluster
    total: int  # all agents, answered or not
    members: tuple[int, ...]  # agent indices in the winning cluster

    @property
    def consensus(self) -> float:
        """Fraction of all agents whose answer equals the majority (0 when nobody answered)."""
        return self.count / self.total if self.total else 0.0


def clusters(answers: Sequence[str | None], equivalent: Equivalent) -> list[list[int]]:
    """Group agent indices by equivalent answers, clusters ordered by their first member."""
    groups: list[list[int]] = []
    for index, answer in enumerate(answers):
        if answer is None:
            continue
        for group in groups:
            if equivalent(answers[group[0]], answer):
                group.append(index)
                break
        else:
            groups.append([index])
    return groups


def majority(answers: Sequence[str | None], equivalent: Equivalent) -> Vote:
    groups = clusters(answers, equivalent)
    if not groups:
        return Vote(answer=None, count=0, total=len(answers), members=())
    # max() keeps the first of equal counts, and groups are ordered by first member: earliest agent wins.
    winner = max(groups, key=len)
    return Vote(answer=answers[winner[0]], count=len(winner), total=len(answers), members=tuple(winner))
