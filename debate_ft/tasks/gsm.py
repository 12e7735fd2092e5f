"""GSM8K grade-school word problems; gold is the number after '####' in the official `answer` field."""

from __future__ import annotations

from debate_ft.answers import extract_number, normalize_number, numbers_equal
from debate_ft.errors import DataError
from debate_ft.runs import require, text_field
from debate_ft.tasks.base import Question, Task, from_hub, jsonl_rows, local_source, row_id


def gold_from_solution(solution: str, where: str) -> str:
    _, marker, tail = solution.rpartition("####")
    gold = normalize_number(tail) if marker else None
    if gold is None:
        raise DataError(f"{where}: `answer` has no '#### <number>' line")
    return gold


class GSM(Task):
    name = "gsm"
    answer_format = (
        "Your final answer should be a single numerical number, in the form \\boxed{answer}, "
        "at the end of your response."
    )

    def load_split(self, split: str) -> list[Question]:
        source = local_source(self.config, "gsm8k")
        if source is None:
            rows = from_hub("gsm", "openai/gsm8k", split, "main")
        else:
            rows = jsonl_rows(source, split, key="question")
        questions = []
        for where, row in rows:
            require(row, ("question", "answer"), where)
            gold = gold_from_solution(str(row["answer"]), where)
            text = text_field(row, "question", where).strip()
            questions.append(Question(id=f"gsm:{row_id(where)}", text=text, gold=gold))
        return questions

    def extract_answer(self, response: str) -> str | None:
        return extract_number(response)

    def equivalent(self, a: str, b: str) -> bool:
        return numbers_equal(a, b)
