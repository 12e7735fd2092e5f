"""What a transcript line holds: one debated question (a Record) and its agents' turns (Turns), read from and
written to the JSON lines of iter<k>/<split>_<N>x<M>.jsonl, and the views every stage reads them through.

A line is {"id", "question", "gold", "turns", "answer", "consensus", "correct"}; each turn is {"round", "agent",
"role", "adapter", ["model"], ["system"], ["summary"], "prompt", "response", "answer", "tokens"}, in that key order,
with "model" (a mixed society's base), "system" (agent-ID ablation) and "summary" (summarised debate) present only
when set. Rounds count from 1,
agents from 0. A round's vote is counted by vote.majority over its answers in agent order (round_vote): the
record's own answer and consensus, every evaluate method's vote and the browser's round-1 vote come from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from debate_ft.backends import Message
from debate_ft.errors import DataError
from debate_ft.methods import critic, generator
from debate_ft.runs import read_records, type_problem
from debate_ft.vote import Equivalent, Vote, majority

_UNSET_ABSENT = ("model", "system", "summary")  # turn keys a line leaves out when they are None
_TEXT = (str, type(None))
TURN_TYPES = {
    "round": int, "agent": int, "role": str, "adapter": _TEXT, "model": _TEXT, "system": _TEXT, "summary": _TEXT,
    "prompt": str, "response": _TEXT, "answer": _TEXT, "tokens": int,
}  # fmt: skip
RECORD_TYPES = {
    "id": str,
    "question": str,
    "gold": str,
    "turns": list,
    "answer": _TEXT,
    "consensus": float,
    "correct": bool,
}


@dataclass(frozen=True, kw_only=True)
class Turn:
    """One agent speaking once. Field order is the JSON key order; response is None only while the turn is
    being asked (its conversation then ends on its prompt)."""

    round: int
    agent: int
    role: str  # generator (round 1) or critic
    adapter: str | None  # None: the base model
    model: str | None = None  # a mixed society's base model key (bases.py); None: the run's one base
    system: str | None = None  # the agent's persona system message (agent-ID ablation)
    summary: str | None = None  # the base model's summary of the other agents' previous answers
    prompt: str
    response: str | None = None
    answer: str | None = None  # parsed from the response; None when nothing parses
    tokens: int = 0  # generated tokens

    @classmethod
    def from_dict(cls, data: dict) -> Turn:
        if not isinstance(data, dict):
            raise ValueError(f"a turn is {type(data).__name__}, not an object")
        check_types(data, TURN_TYPES, optional=_UNSET_ABSENT)
        if data["round"] < 1 or data["agent"] < 0 or data["role"] not in ("generator", "critic"):
            raise ValueError(f"a turn has round {data['round']}, agent {data['agent']}, role {data['role']!r}")
        return cls(**data)

    def to_dict(self) -> dict:
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        return {key: value for key, value in values.items() if not (key in _UNSET_ABSENT and value is None)}


@dataclass(frozen=True)
class Record:
    """One question's debate: its turns, the last round's vote, and whether the vote matches the gold answer."""

    id: str
    question: str
    gold: str
    turns: tuple[Turn, ...]
    answer: str | None
    consensus: float
    correct: bool

    @classmethod
    def from_dict(cls, data: dict) -> Record:
        check_types(data, RECORD_TYPES)
        if not data["turns"]:
            raise ValueError("`turns` is empty")
        turns = tuple(Turn.from_dict(turn) for turn in data["turns"])
        return cls(
            data["id"], data["question"], data["gold"], turns, data["answer"], data["consensus"], data["correct"]
        )

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "question": self.question,
            "gold": self.gold,
            "turns": [turn.to_dict() for turn in self.turns],
            "answer": self.answer,
            "consensus": self.consensus,
            "correct": self.correct,
        }


def check_types(data: dict, types: dict, optional: tuple[str, ...] = ()) -> None:
    """Raise ValueError naming the first key that is missing, unknown or of another type than `types` says."""
    problem = type_problem(data, types, optional, closed=True)
    if problem is not None:
        raise ValueError(problem)


def read(path: Path) -> list[Record]:
    """The records of a transcript file (none if it does not exist), in file order; a line of JSON that is
    not a debate record (a key missing, unknown or of another type) is one error naming file and record."""
    records = []
    for number, data in enumerate(read_records(path), start=1):
        try:
            records.append(Record.from_dict(data))
        except ValueError as error:
            raise DataError(
                f"{path}: record {number} is not a debate record ({error}); delete {path.name} to redo it"
            ) from None
    return records


def conversation(turns: Sequence[Turn], agent: int) -> list[Message]:
    """One agent's messages rebuilt from turns, its latest turn's system message first (a turn without a
    response ends on its prompt)."""
    mine = [turn for turn in turns if turn.agent == agent]
    messages: list[Message] = []
    if mine and mine[-1].system:
        messages.append({"role": "system", "content": mine[-1].system})
    for turn in mine:
        messages.append({"role": "user", "content": turn.prompt})
        if turn.response is not None:
            messages.append({"role": "assistant", "content": turn.response})
    return messages


def agent_name(turn: Turn) -> str:
    """gen<i> in round 1, crit<i> later: the agent as the adapters and the compute accounting name it."""
    return (generator if turn.role == "generator" else critic)(turn.agent)


def final_round(turns: Sequence[Turn]) -> int:
    return max(turn.round for turn in turns)


def round_turns(turns: Sequence[Turn], round_: int, agents: int | None = None) -> list[Turn]:
    """A round's turns in agent order, the first `agents` of them (None: all)."""
    return sorted((turn for turn in turns if turn.round == round_), key=lambda turn: turn.agent)[:agents]


def last_round(turns: Sequence[Turn]) -> list[Turn]:
    return round_turns(turns, final_round(turns))


def round_vote(
    turns: Sequence[Turn], equivalent: Equivalent, round_: int | None = None, agents: int | None = None
) -> Vote:
    """The majority of a round's answers (None: the last round) among its first `agents` agents (None: all)."""
    chosen = round_turns(turns, final_round(turns) if round_ is None else round_, agents)
    return majority([turn.answer for turn in chosen], equivalent)
