"""MMLU multiple choice (A-D). Local layout: <root>/test/<subject>_test.csv with a header
`question,choice0,choice1,choice2,choice3,answer` (answer 0-3). MMLU has no train split of its size, so the
test rows are partitioned by a stable hash of subject and row (1 in 5 to test)."""

from __future__ import annotations

import csv
from pathlib import Path

from debate_ft.answers import choices_equal, extract_choice
from debate_ft.errors import DataError
from debate_ft.runs import require, text_lines
from debate_ft.tasks.base import Question, Task, from_hub, local_source, partition

LETTERS = "ABCD"
COLUMNS = ("question", "choice0", "choice1", "choice2", "choice3", "answer")


def read_subject(path: Path) -> list[tuple[str, dict]]:
    lines = [text + "\n" for _, text in text_lines(path)]  # names the line of any byte that is not UTF-8
    try:
        reader = csv.DictReader(lines)
        rows = list(reader)
    except csv.Error as error:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV ({error})") from None
    pairs = [(f"{path}:{number}", row) for number, row in enumerate(rows, start=2)]  # line 1 is the header
    for where, row in pairs:
        require(row, COLUMNS, where)
        if None in row:
            raise DataError(f"{where}: more columns than the header's {len(reader.fieldnames or [])}")
        short = [name for name in COLUMNS if row[name] is None]
        if short:
            raise DataError(f"{where}: too few columns (no {', '.join(short)}); expected {', '.join(COLUMNS)}")
    return pairs


def as_question(where: str, subject: str, question: str, choices: list[str], answer) -> Question:
    try:
        if not 0 <= int(answer) < len(LETTERS):
            raise IndexError
        letter = LETTERS[int(answer)]
    except (TypeError, ValueError, IndexError):
        raise DataError(f"{where}: answer must be an integer 0-3 (got {answer!r})") from None
    if not str(question).strip():
        raise DataError(f"{where}: `question` is empty")
    options = ", ".join(f"{LETTERS[i]}) {choice}" for i, choice in enumerate(choices))
    row_key = where.rsplit("/", 1)[-1]
    return Question(id=f"mmlu:{row_key}", text=f"{question.strip()}: {options}", gold=letter, meta={"subject": subject})


class MMLU(Task):
    name = "mmlu"
    answer_format = "Put your final answer in the form (X) at the end of your response."

    def question_prompt(self, question: Question) -> str:
        return (
            "Can you answer the following question as accurately as possible? "
            f"{question.text} Explain your answer. {self.answer_format}"
        )

    def load_split(self, split: str) -> list[Question]:
        source = local_source(self.config, "mmlu")
        questions = self._local(source) if source is not None else self._hub()
        wanted = set(self.config.subjects)
        unknown = wanted - {q.meta["subject"] for q in questions}
        if unknown:
            raise DataError(f"mmlu: unknown subjects {', '.join(sorted(unknown))}")
        questions = [q for q in questions if not wanted or q.meta["subject"] in wanted]
        return partition(questions, split, key=lambda q: q.id)

    def _local(self, source: Path) -> list[Question]:
        folder = source / "test" if (source / "test").is_dir() else source
        files = [folder] if folder.is_file() else sorted(folder.glob("*_test.csv"))
        if not files:
            raise DataError(f"mmlu: no <subject>_test.csv files in {folder}")
        questions = []
        for path in files:
            subject = path.name.removesuffix("_test.csv")
            for where, row in read_subject(path):
                choices = [row[f"choice{i}"] for i in range(4)]
                questions.append(as_question(where, subject, row["question"], choices, row["answer"]))
        return questions

    def _hub(self) -> list[Question]:
        return [
            as_question(where, row["subject"], row["question"], row["choices"], row["answer"])
            for where, row in from_hub("mmlu", "cais/mmlu", "test", "all")
        ]

    def extract_answer(self, response: str) -> str | None:
        return extract_choice(response, LETTERS)

    def equivalent(self, a: str, b: str) -> bool:
        return choices_equal(a, b)
