"""GSM8K answer scoring on realistic model outputs: (response, gold, extracted answer).

The forms are those small and large models write: boxes with LaTeX thousands separators, "The answer is",
"####", units glued to numbers, currency, fractions in boxes, restated numbers after the answer, templates.
"""

import pytest

from debate_ft.config import DatasetConfig
from debate_ft.tasks import get_task

GSM = get_task(DatasetConfig(name="gsm"))

CASES = [
    # boxes and LaTeX digit-group separators (about a tenth of GSM8K golds are >= 1000)
    ("So the house costs \\boxed{330,\\!000} dollars.", "330000", "330000"),
    ("Total: $\\boxed{27{,}000}$", "27000", "27000"),
    ("She saves \\boxed{12,\\!500}.", "12500", "12500"),
    ("The answer is 1\\,300.", "1300", "1300"),
    ("The answer is 1 300.", "1300", "1300"),
    ("1 300", "1300", "1300"),
    ("So in total:\n1 300\n", "1300", "1300"),
    ("She has 3 200-page books, so 600 pages.", "600", "600"),  # a space-grouped number only stands alone
    ("The final answer is $\\boxed{1{,}000}$", "1000", "1000"),
    ("\\boxed{1,000}", "1000", "1000"),
    ("\\boxed{1000}", "1000", "1000"),
    ("The total is \\boxed{2,345,678}", "2345678", "2345678"),
    ("He earns $\\boxed{\\$1,200}$ per month.", "1200", "1200"),
    ("That is 1\u202f500 apples in total. The answer is 1\u202f500", "1500", "1500"),
    # box forms
    ("Therefore, the answer is \\boxed {10}.", "10", "10"),
    ("so the result is \\boxed 3", "3", "3"),
    ("\\fbox{64}", "64", "64"),
    ("$\\boxed{\\frac{84}{2}}$", "42", "42"),
    ("\\boxed{3/4}", "0.75", "0.75"),
    ("The temperature dropped to \\boxed{- 5} degrees.", "-5", "-5"),
    ("\\boxed{-12}", "-12", "-12"),
    ("\\boxed{18 \\text{ dollars}}", "18", "18"),
    ("\\boxed{\\text{18}}", "18", "18"),
    ("\\boxed{x = 7}", "7", "7"),
    ("12 + 8 = \\boxed{20}", "20", "20"),
    ("\\boxed{3 \\times 12 = 36}", "36", "36"),
    ("\\boxed{5 \\times 8}", "40", "40"),
    ("\\boxed{2\\frac{1}{2}}", "2.5", "2.5"),
    ("\\boxed{25\\%}", "25", "25"),
    ("\\boxed{5.00}", "5", "5"),
    ("\\boxed{\\$4.50}", "4.5", "4.5"),
    ("\\boxed{0.5}", "0.5", "0.5"),
    ("First \\boxed{10}, but wait, I made an error. Corrected: \\boxed{12}", "12", "12"),
    ("Use the form \\boxed{answer}. Janet has 5 + 3 = 8 eggs.", "8", "8"),
    ("\\boxed{18} dollars, not 20", "18", "18"),
    ("\\boxed{}", "7", None),
    # answer phrases
    ("Janet sells 16 - 3 - 4 = 9 eggs. 9 * 2 = 18. The answer is 18.", "18", "18"),
    ("The answer is $18.", "18", "18"),
    ("Answer: 72", "72", "72"),
    ("**Answer:** 72 clips", "72", "72"),
    ("Final answer: 1,250", "1250", "1250"),
    ("#### 624", "624", "624"),
    ("She pays 3*4=12 per day.\n#### 84", "84", "84"),
    ("The answer is: 35", "35", "35"),
    ("So the answer is 42. Check: 6 * 7 = 42, and 100 - 58 = 42.", "42", "42"),
    ("The answer is 5 apples and 3 oranges", "5", "5"),
    ("The answer is \\boxed{3}. Then he pays 4 more, so the final answer is: 7", "7", "7"),
    ("\\boxed{18}. I hope the answer is helpful!", "18", "18"),
    ("The answer would be 9 hours.", "9", "9"),
    # units glued to numbers, currency and percent in free text (no statement: the last number)
    ("He walks 3 km each way, so 2 * 3 = 6 km, and over 40.5 days that is 243km.", "243", "243"),
    ("It takes 45min", "45", "45"),
    ("The new speed is 2.5x", "2.5", "2.5"),
    ("He spent $15.75", "15.75", "15.75"),
    ("That makes 40% of 50 = 20", "20", "20"),
    ("So he has 1,000,000 coins", "1000000", "1000000"),
    ("The difference is 10-5 = 5", "5", "5"),
    ("The temperature is −3", "-3", "-3"),
    ("They need 1,200 bricks.", "1200", "1200"),
    ("So, 4 boxes x 6 = 24", "24", "24"),
    ("Values 1,2,3", "3", "3"),
    # numbers in words, scale words, magnitude suffixes, scientific notation (external graders' cases)
    ("The answer is forty-two.", "42", "42"),
    ("Answer: one hundred and five", "105", "105"),
    ("#### twenty one", "21", "21"),
    ("So she has twelve eggs left.", "12", "12"),  # no digits at all: the words are the number
    ("The answer is a thousand", "1000", "1000"),
    ("The answer is 3 million", "3000000", "3000000"),
    ("The company earns $1.5 million a year. The answer is $1.5 million.", "1500000", "1500000"),
    ("The answer is 2 dozen", "24", "24"),
    ("So the total is 1,200 thousand", "1200000", "1200000"),
    ("The answer is $5k.", "5000", "5000"),
    ("\\boxed{2.5K}", "2500", "2500"),
    ("The answer is 3bn", "3000000000", "3000000000"),
    ("The answer is 1.2e3", "1200", "1200"),
    ("The answer is 1.2 x 10^3 grams", "1200", "1200"),
    ("\\boxed{4.5 \\times 10^{2}}", "450", "450"),
    ("The answer is 2.5e-1", "0.25", "0.25"),
    ("She ran 5 miles and 243km", "243", "243"),  # km: a unit, not a suffix
    ("It takes 45min, so 2 * 3 = 6 m", "6", "6"),  # lower-case m is metres or minutes
    ("I cannot solve this one.", "1", None),  # a lone 'one' in free text is no answer
    ("Add one and two.", "3", "2"),  # two numbers, not 'one and two' = 3
    # non-ASCII digits
    ("The answer is ٤٢", "42", "42"),
    ("The answer is \uff11\uff12", "12", "12"),
    # no answer: never correct, stays in the denominator
    ("I cannot solve this problem.", "5", None),
    ("", "5", None),
    ("Let me think about the eggs and the ducks.", "16", None),
    # wrong answers stay wrong
    ("\\boxed{17}", "18", "17"),
    ("The answer is 1,000.", "100", "1000"),
    ("\\boxed{12,500}", "500", "12500"),
    ("The answer is -18", "18", "-18"),
]


@pytest.mark.parametrize("response, gold, expected", CASES)
def test_gsm_scoring(response, gold, expected):
    answer = GSM.extract_answer(response)
    assert answer == expected
    assert GSM.is_correct(answer, gold) is (expected is not None and expected == gold)


def test_votes_merge_separator_variants():
    from debate_ft.vote import majority

    answers = [GSM.extract_answer(r) for r in ("\\boxed{1{,}000}", "\\boxed{1000}", "\\boxed{1,\\!000}")]
    vote = majority(answers, GSM.equivalent)
    assert vote.answer == "1000" and vote.count == 3


def test_table_is_large_enough():
    assert len(CASES) >= 60
