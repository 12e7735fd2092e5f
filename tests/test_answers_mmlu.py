"""MMLU answer scoring on realistic model outputs: (response, extracted letter). Golds are letters A-D.

Small models mention several options while reasoning and state their choice in many forms; the last explicit
statement wins over earlier mentions, and only a response with no statement falls back to the last "(X)".
"""

import pytest

from debate_ft.config import DatasetConfig
from debate_ft.tasks import get_task

MMLU = get_task(DatasetConfig(name="mmlu"))

CASES = [
    # the requested form
    ("The capital of France is Paris. (B)", "B"),
    ("(C)", "C"),
    ("Option (A) is wrong because ... Therefore (D)", "D"),
    ("I pick (B) because ... so (C)", "C"),
    ("Looking at (A) and (B), the best fit is (B).", "B"),
    # answer statements beat earlier mentions
    ("(A) looks plausible, but so the answer is C", "C"),
    ("(A) is tempting. The answer is (D).", "D"),
    ("The answer is B", "B"),
    ("The answer is: B", "B"),
    ("The answer is (B)", "B"),
    ("The answer is B) London", "B"),
    ("The answer is option C", "C"),
    ("The answer is choice D.", "D"),
    ("The correct answer is A.", "A"),
    ("The correct answer is (A) because energy is conserved.", "A"),
    ("Answer: C", "C"),
    ("Answer: (C)", "C"),
    ("Answer: **B**", "B"),
    ("**Answer: B**", "B"),
    ("**Answer:** B", "B"),
    ("Final answer: D", "D"),
    ("The final answer is $\\boxed{C}$", "C"),
    ("Answer: b", "B"),
    ("answer: d.", "D"),
    ("The answer is (a)", "A"),
    ("Therefore, the answer is C. (A) and (B) are wrong.", "C"),
    ("My answer is D, as the other agents' (A) ignores friction.", "D"),
    ("The answer is A. Wait, the answer is B.", "B"),
    ("The answer would be C.", "C"),
    ("The answers are all plausible, but Answer: A", "A"),
    # boxes
    ("\\boxed{B}", "B"),
    ("\\boxed{(B)}", "B"),
    ("\\boxed{\\text{B}}", "B"),
    ("\\boxed{\\textbf{C}}", "C"),
    ("$\\boxed{D}$", "D"),
    ("\\boxed {A}", "A"),
    ("\\boxed{B) London}", "B"),
    ("\\boxed{b}", "B"),
    ("(A) seemed right, but \\boxed{C}", "C"),
    ("\\boxed{A}, and the answer is (C)", "C"),
    # a line that opens with the option, or is just the letter
    ("B) London", "B"),
    ("After checking each option:\nC. 42", "C"),
    ("Reasoning...\n\nD", "D"),
    ("Let me think.\nA: it is mitochondria", "A"),
    # a reply that opens with its letter, then explains with other options (external graders' cases)
    ("B\n\nExplanation: option A is wrong because ..., and (C) ignores friction.", "B"),
    ("**B**\nA and (C) are both too small.", "B"),
    ("(D)\nWhy not (A)? It ignores the tax.", "D"),
    ("C. Mitochondria.\n(A) is the nucleus, (B) the ribosome.", "C"),
    # a letter after 'final' or 'choice' words, plain, bold or in parentheses
    ("Final choice: B. (A) and (C) are wrong because ...", "B"),
    ("**Final choice: (C)**\nA is incorrect since (D) ...", "C"),
    ("Final: A. Option (B) is tempting but ...", "A"),
    ("The correct option is D. (A) fails at low speed.", "D"),
    ("The best choice is (B); (C) overstates it.", "B"),
    ("My choice: b", "B"),
    ("Option A is wrong, so (C)", "C"),  # 'Option A is' mentions A; it states nothing
    # a later statement that names no option is passed over
    ("(B). I hope the answer is clear.", "B"),
    ("\\boxed{C}. The answer is a bit uncertain.", "C"),
    ("The answer is A. This answer is based on Newton's laws.", "A"),
    # nothing a grader can read as a choice
    ("(E)", None),
    ("The answer is E", None),
    ("The answer is (E).", None),
    ("I don't know.", None),
    ("", None),
    ("All of the options seem wrong.", None),
    ("The answer is a bit unclear.", None),
    ("A good answer needs more context.", None),
    ("I think b is wrong", None),
    ("Answer: none of the above", None),
    ("\\boxed{E}", None),
    ("The answer is 42", None),
    # non-ASCII and formatting noise
    ("Ответ: (B)", "B"),
    ("答案是 (C)", "C"),
    ("__Answer: D__", "D"),
]


@pytest.mark.parametrize("response, expected", CASES)
def test_mmlu_scoring(response, expected):
    answer = MMLU.extract_answer(response)
    assert answer == expected
    for gold in "ABCD":
        assert MMLU.is_correct(answer, gold) is (gold == expected)


def test_table_is_large_enough():
    assert len(CASES) >= 60
