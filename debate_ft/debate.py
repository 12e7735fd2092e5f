"""The debate orchestrator: questions x agents x rounds, one batched generate call per round.

Round 1: each generator agent answers alone. Rounds 2..M: each critic agent continues its own conversation
and sees the *previous* round's answers of the other agents (verbatim, or summarised by the base model).
Prompts for round r are all built before round r is generated, so no agent ever sees a same-round answer.

Questions are debated in chunks; a chunk's rounds are seeded from (seed, chunk index), and its records are
appended to the transcript when it finishes, so a re-run skips finished chunks and reproduces the rest.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path

from tqdm.auto import tqdm

from debate_ft import prompts
from debate_ft.backends import Backend, Request
from debate_ft.bases import agent_bases
from debate_ft.config import Config, GenerationConfig
from debate_ft.errors import DataError
from debate_ft.layout import RunDir
from debate_ft.methods import FINE_TUNINGS, SCORINGS, Society
from debate_ft.runs import append_records, check_data
from debate_ft.seeds import derive_seed
from debate_ft.tasks import Question, Task
from debate_ft.transcript import Record, Turn, agent_name, conversation, read, round_vote


def make_record(task: Task, question: Question, turns: Sequence[Turn]) -> Record:
    vote = round_vote(turns, task.equivalent)
    correct = task.is_correct(vote.answer, question.gold)
    return Record(question.id, question.text, question.gold, tuple(turns), vote.answer, vote.consensus, correct)


class Debate:
    def __init__(
        self,
        task: Task,
        backend: Backend,
        society: Society,
        rounds: int,
        summarize: bool,
        sampling: GenerationConfig,
        template: str = "paper",
    ):
        self.task, self.backend, self.society = task, backend, society
        self.rounds, self.summarize, self.sampling, self.template = rounds, summarize, sampling, template

    def run(self, questions: Sequence[Question], path: Path, seed: int, chunk_size: int) -> list[Record]:
        """Debate every question, resuming from the transcript at `path`; records in question order."""
        done = {record.id: record for record in read(path)}
        shape = sorted(
            (round_, agent) for round_ in range(1, self.rounds + 1) for agent in range(len(self.society.generators))
        )
        for question in questions:
            old = done.get(question.id)
            if old is not None and (old.question, old.gold) != (question.text, question.gold):
                raise DataError(
                    f"{path}: question {question.id} was debated with another text or gold answer (the data "
                    "changed since); restore the data or pick a new run.name"
                )
            if old is not None and sorted((turn.round, turn.agent) for turn in old.turns) != shape:
                raise DataError(
                    f"{path}: the record of question {question.id} is not one turn per agent and round of a "
                    f"{len(self.society.generators)}-agent {self.rounds}-round debate; delete {path.name} to redo it"
                )
        wanted = {question.id for question in questions}
        with tqdm(total=len(wanted), initial=len(wanted & done.keys()), desc=f"debate {path.stem}", unit="q") as bar:
            for index, start in enumerate(range(0, len(questions), chunk_size)):
                chunk = questions[start : start + chunk_size]
                if all(question.id in done for question in chunk):
                    continue
                records = self.chunk(chunk, derive_seed(seed, index))
                fresh = [record for record in records if record.id not in done]
                append_records(path, [record.to_dict() for record in fresh])
                done.update((record.id, record) for record in fresh)
                bar.update(len(fresh))
        return [done[question.id] for question in questions]

    def chunk(self, questions: Sequence[Question], seed: int) -> list[Record]:
        turns: list[list[Turn]] = [[] for _ in questions]
        for round_ in range(1, self.rounds + 1):
            pending = self._prompts(questions, turns, round_, seed)  # turns asked, not answered yet
            requests = [
                Request(conversation([*turns[q], turn], turn.agent), turn.adapter, agent_name(turn), turn.model)
                for q, turn in pending
            ]
            completions = self.backend.generate(
                requests, self.sampling, derive_seed(seed, round_), desc=f"round {round_}/{self.rounds}"
            )
            for (q, turn), completion in zip(pending, completions):
                answer = self.task.extract_answer(completion.text)
                turns[q].append(replace(turn, response=completion.text, answer=answer, tokens=completion.tokens))
        return [make_record(self.task, question, t) for question, t in zip(questions, turns)]

    def _prompts(self, questions, turns, round_: int, seed: int) -> list[tuple[int, Turn]]:
        """Every (question index, new turn without its response) of a round, built from earlier rounds only."""
        role = "generator" if round_ == 1 else "critic"
        previous = [
            [[t for t in turns[q] if t.round == round_ - 1 and t.agent != agent] for agent in range(self.society.size)]
            for q in range(len(questions))
        ]
        others = [[[t.response for t in view] for view in views] for views in previous]
        summaries = (
            self._summaries(others, derive_seed(seed, "summary", round_)) if self.summarize and round_ > 1 else None
        )
        size, pending = self.society.size, []
        for q, question in enumerate(questions):
            for agent in range(size):
                summary = None
                if round_ == 1:
                    prompt = self.task.question_prompt(question)
                elif summaries is not None and others[q][agent]:
                    summary = summaries[q][agent]
                    prompt = prompts.summary_debate_prompt(question.text, self.task.answer_format, summary)
                elif self.template == "short" and others[q][agent]:
                    answers = [t.answer for t in previous[q][agent]]
                    prompt = prompts.short_debate_prompt(question.text, self.task.answer_format, answers)
                else:
                    prompt = prompts.debate_prompt(question.text, self.task.answer_format, others[q][agent])
                system = prompts.persona(role, agent, size) if self.society.agent_ids else None
                turn = Turn(
                    round=round_,
                    agent=agent,
                    role=role,
                    adapter=self.society.adapter(role, agent),
                    model=self.society.model(agent),
                    system=system,
                    summary=summary,
                    prompt=prompt,
                )
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


class RunDebates:
    """A run's debates: its society once the adapters named in `trained` exist, with the run's effective settings
    (its fine-tuning method may force debate.summarize), each split debated into its transcript. iterate, evaluate,
    debate and serve all build their debates here."""

    def __init__(self, config: Config, backend: Backend, run_dir: Path | None = None):
        self.config, self.backend, self.run_dir = config, backend, run_dir
        self.fine_tuning = FINE_TUNINGS[config.ft_method]

    def society(self, trained: Collection[str] = ()) -> Society:
        return self.fine_tuning.society(self.config.agents.n, trained, agent_bases(self.config))

    def debate(self, task: Task, trained: Collection[str] = (), scoring: str = "debate", sampling=None) -> Debate:
        """The debate of `scoring`'s shape (agents x rounds), by the society of `trained`."""
        config = self.config
        agents, rounds = SCORINGS[scoring].shape(config.agents.n, config.debate.rounds)
        society = self.society(trained).cycled(agents)
        summarize = self.fine_tuning.summarizes(config.debate.summarize)
        return Debate(
            task, self.backend, society, rounds, summarize, sampling or config.generation, config.debate.prompt
        )

    def run(self, task: Task, iteration: int, split: str, scoring: str, trained: Collection[str] = ()) -> list[Record]:
        """Debate `split` of `task` (resuming its transcript) with iteration `iteration`'s society."""
        debate = self.debate(task, trained, scoring)
        agents = len(debate.society.generators)
        path = RunDir(self.run_dir).transcript(iteration, split, agents, debate.rounds, debate.summarize)
        questions = task.load(split)
        check_data(self.run_dir, f"{task.name} {split}", questions)
        return debate.run(questions, path, derive_seed(self.config.seed, split), self.config.debate.chunk_size)
