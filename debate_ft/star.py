"""The STaR baseline (Zelikman et al., 2022), single agent, uses the ground truth: keep the agent's own
rationales that reach the gold answer; for misses, rationalize (generate again with the answer as a hint)
and keep the rationale, paired with the hint-free question, if it reaches the answer."""

from __future__ import annotations

from collections.abc import Sequence

from debate_ft.backends import Backend, Request
from debate_ft.config import GenerationConfig
from debate_ft.label import AgentSets, example
from debate_ft.tasks import Question, Task
from debate_ft.transcript import Record


def hint_prompt(task: Task, question: Question) -> str:
    return f"{task.question_prompt(question)} (Hint: the correct answer is {question.gold}.)"


def star_examples(
    task: Task,
    backend: Backend,
    records: Sequence[Record],
    questions: Sequence[Question],
    adapter: str | None,
    sampling: GenerationConfig,
    seed: int,
) -> list[dict]:
    """Examples from a single agent's round-1 transcript (`records`), plus rationalized misses."""
    examples = [example(record, 0, 1, "rationale") for record in records if record.correct]
    by_id = {question.id: question for question in questions}
    misses = [by_id[record.id] for record in records if not record.correct]
    requests = [Request([{"role": "user", "content": hint_prompt(task, q)}], adapter) for q in misses]
    for question, completion in zip(misses, backend.generate(requests, sampling, seed, desc="rationalize")):
        if task.is_correct(task.extract_answer(completion.text), question.gold):
            messages = [
                {"role": "user", "content": task.question_prompt(question)},
                {"role": "assistant", "content": completion.text},
            ]
            examples.append({"messages": messages, "question_id": question.id, "agent": 0, "kind": "rationalized"})
    return examples


def star_sets(examples: list[dict]) -> AgentSets:
    """STaR's examples as agent 0's generator set, so its training plan reads them like debate-labelled sets."""
    kinds = [e["kind"] for e in examples]
    return AgentSets(examples, [], {"rationale": kinds.count("rationale"), "rationalized": kinds.count("rationalized")})
