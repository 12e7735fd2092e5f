"""The debate orchestrator: questions x agents x rounds, one batched generate call per round.

Round 1: each generator agent answers alone. Rounds 2..M: each critic agent continues its own conversation
and sees the *previous* round's answers of the other agents (verbatim, or summarised by the base model).
Prompts for round r are all built before round r is generated, so no agent ever sees a same-round answer.

Questions are debated in chunks; a chunk's rounds are seeded from (seed, chunk index), and its records are
appended to the transcript when it finishes, so a re-run skips finished chunks and reproduces the rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from debate_ft import prompts
from debate_ft.backends import Backend, Message, Request
from debate_ft.config import GenerationConfig
from debate_ft.errors import DataError
from debate_ft.runs import append_records, read_records
from debate_ft.tasks import Question, Task
from debate_ft.vote import majority


@dataclass(frozen=True)
class Society:
    """Who speaks: each agent's adapter as a generator (round 1) and as a critic (rounds 2..M)."""

    generators: tuple[str | None, ...]
    critics: tuple[str | None, ...]
    agent_ids: bool = False  # agent-ID ablation: a system message tells the one model which agent it is

    @classmethod
    def base(cls, agents: int) -> Society:
        return cls((None,) * agents, (None,) * agents)

    @property
    def size(self) -> int:
        return len(self.generators)

    def adapter(self, role: str, agent: int) -> str | None:
        return (self.generators if role == "generator" else self.critics)[agent]


def derive_seed(*parts) -> int:
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:8], 16)


def conversation(turns: Sequence[dict], agent: int) -> list[Message]:
    """One agent's messages rebuilt from a record's turns (a turn without a response ends on its prompt)."""
    mine = [turn for turn in turns if turn["agent"] == agent]
    messages: list[Message] = []
    if mine and mine[-1].get("system"):
        messages.append({"role": "system", "content": mine[-1]["system"]})
    for turn in mine:
        messages.append({"role": "user", "content": turn["prompt"]})
        if "response" in turn:
            messages.append({"role": "assistant", "content": turn["response"]})
    return messages


def agent_name(turn: dict) -> str:
    """gen<i> in round 1, crit<i> later: the agent as the adapters and the compute accounting name it."""
    return f"{'gen' if turn['role'] == 'generator' else 'crit'}{turn['agent']}"


def last_round(turns: Sequence[dict]) -> list[dict]:
    final = max(turn["round"] for turn in turns)
    return sorted((turn for turn in turns if turn["round"] == final), key=lambda turn: turn["agent"])


def make_record(task: Task, question: Question, turns: list[dict]) -> dict:
    vote = majority([turn["answer"] for turn in last_round(turns)], task.equivalent)
    return {
        "id": question.id,
        "question": question.text,
        "gold": question.gold,
        "turns": turns,
        "answer": vote.answer,
        "consensus": vote.consensus,
        "correct": task.is_correct(vote.answer, question.gold),
    }


class Debate:
    def __init__(
        self,
        task: Task,
        backend: Backend,
        society: Society,
        rounds: int,
        summarize: bool,
        sampling: GenerationConfig,
    ):
        self.task, self.backend, self.society = task, backend, society
        self.rounds, self.summarize, self.sampling = rounds, summarize, sampling

    def run(self, questions: Sequence[Question], path: Path, seed: int, chunk_size: int) -> list[dict]:
        """Debate every question, resuming from the transcript at `path`; records in question order."""
        done = {record["id"]: record for record in read_records(path)}
        for question in questions:
            old = done.get(question.id)
            if old is not None and (old.get("question"), old.get("gold")) != (question.text, question.gold):
                raise DataError(
                    f"{path}: question {question.id} was debated with another text or gold answer (the data "
                    "changed since); restore the data or pick a new run.name"
                )
        wanted = {question.id for question in questions}
        with tqdm(total=len(wanted), initial=len(wanted & done.keys()), desc=f"debate {path.stem}", unit="q") as bar:
            for index, start in enumerate(range(0, len(questions), chunk_size)):
                chunk = questions[start : start + chunk_size]
                if all(question.id in done for question in chunk):
                    continue
                records = self.chunk(chunk, derive_seed(seed, index))
                fresh = [record for record in records if record["id"] not in done]
                append_records(path, fresh)
                done.update((record["id"], record) for record in fresh)
                bar.update(len(fresh))
        return [done[question.id] for question in questions]

    def chunk(self, questions: Sequence[Question], seed: int) -> list[dict]:
        turns: list[list[dict]] = [[] for _ in questions]
        for round_ in range(1, self.rounds + 1):
            pending = self._prompts(questions, turns, round_, seed)
            requests = [
                Request(conversation(turns[q] + [turn], turn["agent"]), turn["adapter"], agent_name(turn))
                for q, turn in pending
            ]
            completions = self.backend.generate(
                requests, self.sampling, derive_seed(seed, round_), desc=f"round {round_}/{self.rounds}"
            )
            for (q, turn), completion in zip(pending, completions):
                turn.update(
                    response=completion.text,
                    answer=self.task.extract_answer(completion.text),
                    tokens=completion.tokens,
                )
                turns[q].append(turn)
        return [make_record(self.task, question, t) for question, t in zip(questions, turns)]

    def _prompts(self, questions, turns, round_: int, seed: int) -> list[tuple[int, dict]]:
        """Every (question index, new turn) of a round, built from earlier rounds only."""
        role = "generator" if round_ == 1 else "critic"
        others = [
            [
                [t["response"] for t in turns[q] if t["round"] == round_ - 1 and t["agent"] != agent]
                for agent in range(self.society.size)
            ]
            for q in range(len(questions))
        ]
        summaries = (
            self._summaries(others, derive_seed(seed, "summary", round_)) if self.summarize and round_ > 1 else None
        )
        pending = []
        for q, question in enumerate(questions):
            for agent in range(self.society.size):
                turn = {"round": round_, "agent": agent, "role": role, "adapter": self.society.adapter(role, agent)}
                if self.society.agent_ids:
                    turn["system"] = prompts.persona(role, agent, self.society.size)
                if round_ == 1:
                    turn["prompt"] = self.task.question_prompt(question)
                elif summaries is not None and others[q][agent]:
                    turn["summary"] = summaries[q][agent]
                    turn["prompt"] = prompts.summary_debate_prompt(
                        question.text, self.task.answer_format, turn["summary"]
                    )
                else:
                    turn["prompt"] = prompts.debate_prompt(question.text, self.task.answer_format, others[q][agent])
                pending.append((q, turn))
        return pending

    def _summaries(self, others: list[list[list[str]]], seed: int) -> list[list[str | None]]:
        """The base model's summary of each critic's view of the others, one batched call."""
        wanted = [(q, agent) for q, views in enumerate(others) for agent, view in enumerate(views) if view]
        requests = [
            Request([{"role": "user", "content": prompts.summary_request(others[q][a])}], agent="summary")
            for q, a in wanted
        ]
        completions = self.backend.generate(requests, self.sampling, seed, desc="summaries")
        summaries: list[list[str | None]] = [[None] * len(views) for views in others]
        for (q, agent), completion in zip(wanted, completions):
            summaries[q][agent] = completion.text
        return summaries
