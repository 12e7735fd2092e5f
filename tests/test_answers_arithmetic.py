"""Arithmetic (a+b*c+d-e*f) answer scoring on realistic model outputs: (response, gold, extracted answer).

Negative results are common here, and so are chains of equalities, restated operands and operators that
look like signs ("10-5").
"""

import pytest

from debate_ft.config import DatasetConfig
from debate_ft.tasks import get_task

ARITHMETIC = get_task(DatasetConfig(name="arithmetic"))

CASES = [
    # chains of equalities, no statement: the last number
    ("3+4*5+6-7*8 = 3+20+6-56 = -27", "-27", "-27"),
    ("First, 4*5 = 20 and 7*8 = 56. Then 3 + 20 + 6 - 56 = -27.", "-27", "-27"),
    ("12+7 = 19", "19", "19"),
    ("12 + 7 equals 19.", "19", "19"),
    ("The sum of 12 and 7 is 19", "19", "19"),
    ("10-5 = 5", "5", "5"),
    ("3 - 10 = -7", "-7", "-7"),
    ("3-10=-7", "-7", "-7"),
    ("0 + 0 = 0", "0", "0"),
    ("29*29 = 841", "841", "841"),
    ("25*28 = 700, 700+3 = 703, 703-100 = 603", "603", "603"),
    ("So we get 2 + 3 = 5.\n\n", "5", "5"),
    ("Step 1: 6 * 4 = 24\nStep 2: 24 + 9 = 33\nStep 3: 33 - 2 = 31", "31", "31"),
    ("The result is −27", "-27", "-27"),
    ("The result is – 3", "3", "3"),  # a dash after a word is punctuation, not a sign
    ("The value is -0", "0", "0"),
    ("1.0 + 2.0 = 3.0", "3", "3"),
    ("This gives us 14 as the result of 5+9", "9", "9"),  # a restated operand after the result wins: no statement
    # answer statements
    ("The answer is 19.", "19", "19"),
    ("The answer is -27.", "-27", "-27"),
    ("The answer is: -27", "-27", "-27"),
    ("Answer: -27", "-27", "-27"),
    ("**Answer: -27**", "-27", "-27"),
    ("**Answer:** 19", "19", "19"),
    ("The final answer is -27.", "-27", "-27"),
    ("Final answer: 19", "19", "19"),
    ("The answer is 14, since 5+9 = 14 and 9 > 5", "14", "14"),
    ("The answer is 19. Let me double-check: 12 + 7 = 19. Yes, 12 and 7.", "19", "19"),
    ("The answer is - 27", "-27", "-27"),
    ("My answer is 703.", "703", "703"),
    ("answer = 42", "42", "42"),
    ("The correct answer is 33, not 31.", "33", "33"),
    ("Other agents said 5 and 7. I checked: 3+4 = 7. The answer is 7.", "7", "7"),
    ("One agent's answer is 12. Mine: 3+4*2 = 11. My final answer is 11", "11", "11"),
    ("The answer is 11, and one agent said 12.", "11", "11"),
    # boxes
    ("\\boxed{-27}", "-27", "-27"),
    ("$3+20+6-56 = \\boxed{-27}$", "-27", "-27"),
    ("\\boxed{- 27}", "-27", "-27"),
    ("\\boxed{19}", "19", "19"),
    ("\\boxed {19}", "19", "19"),
    ("\\boxed 19", "19", "19"),
    ("\\boxed{3+20+6-56}", "-27", "-27"),
    ("\\boxed{3 + 4 \\times 5 + 6 - 7 \\times 8 = -27}", "-27", "-27"),
    ("\\boxed{\\text{-27}}", "-27", "-27"),
    ("\\boxed{19}. The other agents said 21 and 18.", "19", "19"),
    ("I first got \\boxed{21}, but 12+7 is \\boxed{19}", "19", "19"),
    ("\\boxed{1,\\!234}", "1234", "1234"),
    ("The answer is \\boxed{703}.", "703", "703"),
    # markdown and formatting
    ("**-27**", "-27", "-27"),
    ("The result is **19**.", "19", "19"),
    ("= 19\n\nSo the answer is **19**", "19", "19"),
    ("Result: `19`", "19", "19"),
    ("$12 + 7 = 19$", "19", "19"),
    ("\\(12 + 7 = 19\\)", "19", "19"),
    # non-ASCII digits
    ("١٢ + ٧ = ١٩", "19", "19"),
    # wrong answers stay wrong
    ("The answer is 20.", "19", "20"),
    ("\\boxed{27}", "-27", "27"),
    ("3+20+6-56 = 27", "-27", "27"),
    ("12 + 7 = 19 - 1 = 18", "19", "18"),
    # no answer
    ("I am not sure how to compute this.", "19", None),
    ("", "19", None),
    ("Let's think step by step.", "0", None),
    ("The answer is unclear.", "3", None),
]


@pytest.mark.parametrize("response, gold, expected", CASES)
def test_arithmetic_scoring(response, gold, expected):
    answer = ARITHMETIC.extract_answer(response)
    assert answer == expected
    assert ARITHMETIC.is_correct(answer, gold) is (expected is not None and expected == gold)


def test_table_is_large_enough():
    assert len(CASES) >= 60
