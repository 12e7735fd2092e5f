"""Arithmetic (Du et al.): a+b*c+d-e*f with integers 0-29, generated from a fixed seed.

`dataset.operands` (2..6) takes a prefix of that expression and `dataset.max_value` bounds the integers, so
`operands=2 max_value=9` (a+b with one digit) is an easier setting that a 135M model can partly solve.
"""

from __future__ import annotations

import itertools
import random

from debate_ft.answers import extract_number, numbers_equal
from debate_ft.tasks.base import Question, Task, in_test_partition

OPERATORS = ("+", "*", "+", "-", "*")  # Du et al.'s a+b*c+d-e*f
_ENUMERATE_BELOW = 200_000  # smaller spaces are listed whole, so every expression is reachable


def evaluate(numbers: tuple[int, ...]) -> int:
    """Value with the usual precedence: products first, then the signed sum."""
    terms, signs = [numbers[0]], [1]
    for operator, number in zip(OPERATORS, numbers[1:]):
        if operator == "*":
            terms[-1] *= number
        else:
            terms.append(number)
            signs.append(1 if operator == "+" else -1)
    return sum(sign * term for sign, term in zip(signs, terms))


def expression(numbers: tuple[int, ...]) -> str:
    return str(numbers[0]) + "".join(f"{op}{n}" for op, n in zip(OPERATORS, numbers[1:]))


class Arithmetic(Task):
    name = "arithmetic"
    answer_format = "Make sure to state your answer at the end of the response."

    def question_prompt(self, question: Question) -> str:
        return f"{question.text} {self.answer_format}"

    def load_split(self, split: str) -> list[Question]:
        size = self.config.train_size if split == "train" else self.config.test_size
        questions = []
        if size <= 0:
            return questions
        for numbers in self._candidates():
            text = expression(numbers)
            if in_test_partition(text) == (split == "test"):
                questions.append(Question(id=text, text=f"What is the result of {text}?", gold=str(evaluate(numbers))))
                if len(questions) == size:
                    break
        return questions

    def _candidates(self):
        """Distinct operand tuples in a random order fixed by `question_seed`; which side (train or test) a
        question lands on depends on the question alone, so no seed's test set overlaps any seed's train set."""
        k, top = self.config.operands, self.config.max_value
        rng = random.Random(f"arithmetic:{k}:{top}:{self.config.question_seed}")
        if (top + 1) ** k <= _ENUMERATE_BELOW:
            space = list(itertools.product(range(top + 1), repeat=k))
            rng.shuffle(space)
            yield from space
            return
        seen = set()
        while len(seen) < (top + 1) ** k:  # ends even when more questions are asked for than exist
            numbers = tuple(rng.randint(0, top) for _ in range(k))
            if numbers not in seen:
                seen.add(numbers)
                yield numbers

    def extract_answer(self, response: str) -> str | None:
        return extract_number(response)

    def equivalent(self, a: str, b: str) -> bool:
        return numbers_equal(a, b)
