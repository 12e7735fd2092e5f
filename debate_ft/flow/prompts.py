"""Every prompt the MuSiQue flow's nodes and the reward-free evaluator see, in one place.

Each node gets a single user message; Yes/No nodes are decided by the log-probabilities of YES and NO as the
reply's first token (the same the DPO learner trains on), the evaluator by those of the replies A and B.
"""

from __future__ import annotations

from collections.abc import Sequence

from debate_ft.tasks.musique import Paragraph

YES, NO = "Yes", "No"
FIRST, SECOND = "A", "B"


def document(paragraph: Paragraph, chars: int) -> str:
    text = paragraph.text if len(paragraph.text) <= chars else paragraph.text[:chars].rsplit(" ", 1)[0] + " ..."
    return f"{paragraph.title}: {text}"


def documents(paragraphs: Sequence[Paragraph], chars: int) -> str:
    if not paragraphs:
        return "Documents found so far: none."
    lines = "\n".join(f"[{n}] {document(p, chars)}" for n, p in enumerate(paragraphs, start=1))
    return f"Documents found so far:\n{lines}"


def query(question: str, found: str) -> str:
    return (
        f"Question: {question}\n{found}\n\n"
        "Write a short search query for the next fact needed to answer the question. Reply with the query only."
    )


def relevance(question: str, search: str, paragraph: str) -> str:
    """The question and query come first, so the prompts of one hop share their prefix."""
    return (
        f"Question: {question}\nSearch query: {search}\nDocument: {paragraph}\n\n"
        f"Does this document contain information for the search query and the question? Answer {YES} or {NO}."
    )


def stop(question: str, found: str) -> str:
    return (
        f"Question: {question}\n{found}\n\n"
        f"Do these documents contain enough information to answer the question? Answer {YES} or {NO}."
    )


def sufficiency(question: str, found: str) -> str:
    return (
        f"Question: {question}\n{found}\n\n"
        f"Can the question be answered from these documents alone? Answer {YES} or {NO}."
    )


def answer(question: str, found: str) -> str:
    return f"Question: {question}\n{found}\n\nUsing the documents, answer the question in one or two sentences."


def final(question: str, reasoning: str, answer_format: str) -> str:
    return f"Question: {question}\nNotes: {reasoning}\n\nWhat is the answer to the question? {answer_format}"


def evaluator(question: str, first: str, second: str) -> str:
    """The reward-free judge: which of two final answers is better (it never sees the gold answer)."""
    return (
        f"Question: {question}\nAnswer {FIRST}: {first}\nAnswer {SECOND}: {second}\n\n"
        f"Which answer is more likely correct? Reply {FIRST} or {SECOND}."
    )
