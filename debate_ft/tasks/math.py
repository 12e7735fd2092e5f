"""MATH competition problems; gold is the `answer` field or the last brace-matched \\boxed{} of `solution`,
and equivalence is math-verify's."""

from __future__ import annotations

from debate_ft.answers import extract_math, last_boxed
from debate_ft.errors import DataError
from debate_ft.math_equivalence import matches_gold, math_equal
from debate_ft.runs import require, text_field
from debate_ft.tasks.base import Question, Task, from_hub, jsonl_rows, local_source, row_id


def gold_answer(row: dict, where: str) -> str:
    if row.get("answer"):
        return str(row["answer"]).strip()
    require(row, ("solution",), where)
    gold = last_boxed(str(row["solution"]))
    if not gold:
        raise DataError(f"{where}: no `answer` field and no \\boxed{{}} in `solution`")
    return gold


class MATH(Task):
    name = "math"
    answer_format = "Your final answer should be in the form \\boxed{answer}, at the end of your response."

    def load_split(self, split: str) -> list[Question]:
        source = local_source(self.config, "math")
        if source is None:
            rows = from_hub("math", "DigitalLearningGmbH/MATH-lighteval", split)
        else:
            rows = jsonl_rows(source, split, key="problem")
        questions = []
        for where, row in rows:
            require(row, ("problem",), where)
            meta = {k: row[k] for k in ("level", "type", "subject") if k in row}
            questions.append(
                Question(
                    id=f"math:{row_id(where)}",
                    text=text_field(row, "problem", where).strip(),
                    gold=gold_answer(row, where),
                    meta=meta,
                )
            )
        return questions

    def extract_answer(self, response: str) -> str | None:
        return extract_math(response)

    def equivalent(self, a: str, b: str) -> bool:
        return math_equal(a, b)

    def is_correct(self, answer: str | None, gold: str) -> bool:
        return matches_gold(gold, answer)  # math-verify is not symmetric: the gold goes first
