"""MATH answer scoring on realistic model outputs: (response, gold, correct?).

Extraction follows the shared statement rule; equivalence is math-verify configured without unit stripping,
gold first, after a surface normalisation of text wrappers, spacing, units written as words and degrees.
"""

import logging
import time

import pytest

import debate_ft.math_equivalence as math_equivalence
from debate_ft.config import DatasetConfig
from debate_ft.math_equivalence import matches_gold, math_equal
from debate_ft.tasks import get_task

MATH = get_task(DatasetConfig(name="math"))

CASES = [
    # fractions, roots, pi: written many ways
    ("So $x = \\boxed{\\frac{1}{2}}$", "\\frac{1}{2}", True),
    ("\\boxed{0.5}", "\\frac{1}{2}", True),
    ("\\boxed{\\dfrac{2}{4}}", "\\frac12", True),
    ("\\boxed{1/2}", "\\frac{1}{2}", True),
    ("\\boxed{\\frac{1}{3}}", "0.5", False),
    ("\\boxed{\\frac{\\sqrt{2}}{2}}", "\\frac{\\sqrt2}{2}", True),
    ("\\boxed{\\sqrt{2}/2}", "\\frac{\\sqrt{2}}{2}", True),
    ("\\boxed{2\\sqrt{3}}", "\\sqrt{12}", True),
    ("\\boxed{3\\pi}", "3\\pi", True),
    ("\\boxed{\\pi \\cdot 3}", "3\\pi", True),
    ("\\boxed{9.42}", "3\\pi", False),
    ("\\boxed{-\\frac{3}{4}}", "-\\frac34", True),
    ("\\boxed{\\frac{-3}{4}}", "-\\frac{3}{4}", True),
    ("\\boxed{\\frac{3}{4}}", "-\\frac{3}{4}", False),
    # expressions and equations
    ("\\boxed{(x+1)^2}", "x^2+2x+1", True),
    ("\\boxed{x^2+2x+1}", "x^2+2x+1", True),
    ("\\boxed{x^2 + 2x}", "x^2+2x+1", False),
    ("\\boxed{x = 5}", "5", True),
    ("\\boxed{f(2) = 5}", "5", True),  # gold first: the prediction's assignment is read as its value
    ("\\boxed{y = 2x + 3}", "y=2x+3", True),
    ("\\boxed{2x + 3}", "y = 2x+3", True),
    # unit-like letters are part of the answer (math-verify's default strips them)
    ("\\boxed{4}", "4t", False),
    ("\\boxed{4t}", "4t", True),
    ("\\boxed{15}", "6+9c", False),
    ("\\boxed{9c+6}", "6+9c", True),
    ("\\boxed{3m}", "3", False),
    # units written as words, degrees, percent, dollars
    ("\\boxed{5 \\text{ cm}}", "5", True),
    ("\\boxed{5}", "5\\text{ cm}", True),
    ("\\boxed{12 \\text{ dollars}}", "12", True),
    ("\\boxed{90^\\circ}", "90", True),
    ("\\boxed{90}", "90^\\circ", True),
    ("\\boxed{25\\%}", "25", True),
    ("\\boxed{\\$18.90}", "\\$18.90", True),
    ("\\boxed{18.9}", "\\$18.90", True),
    ("\\boxed{10,\\!000}", "10000", True),
    ("\\boxed{10{,}000}", "10,\\!000", True),
    ("\\boxed{24 \\text{ square units}}", "24", True),
    # text answers
    ("\\boxed{A,D}", "\\text{A,D}", True),
    ("\\boxed{\\text{A, D}}", "\\text{A,D}", True),
    ("\\boxed{June 20}", "\\text{June 20}", True),
    ("\\boxed{\\text{june 20}}", "\\text{June 20}", True),
    ("\\boxed{1:03 PM}", "\\text{1:03 PM}", True),
    ("\\boxed{1:03 \\text{ PM}}", "1:03\\text{ PM}", True),
    ("\\boxed{\\text{Monday}}", "\\text{Tuesday}", False),
    ("\\boxed{\\text{(C)}}", "\\text{(C)}", True),
    ("\\boxed{\\text{odd}}", "\\text{odd}", True),
    ("\\boxed{even}", "\\text{odd}", False),
    # sets, tuples, intervals
    ("\\boxed{(1,2)}", "(1,2)", True),
    ("\\boxed{(2,1)}", "(1,2)", False),
    ("\\boxed{1<x<2}", "(1,2)", False),  # gold first: an inequality is not the interval it bounds
    ("\\boxed{\\{1, 2\\}}", "\\{2,1\\}", True),
    ("\\boxed{[0, \\infty)}", "[0,\\infty)", True),
    ("\\boxed{3, 5}", "3,5", True),
    ("\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", True),
    # box forms and statements
    ("Therefore the answer is \\boxed {10}.", "10", True),
    ("so the result is \\boxed 3.", "3", True),
    ("The answer is $\\frac{1}{2}$.", "\\frac{1}{2}", True),
    ("Final answer: $12$", "12", True),
    ("First \\boxed{5}, then corrected: \\boxed{6}", "6", True),
    ("\\boxed{7}. I hope my answer is correct.", "7", True),
    ("\\boxed{\\boxed{8}}", "8", True),
    ("\\fbox{9}", "9", True),
    # no answer (MATH asks for a box: no fallback to bare numbers)
    ("The value is 1/2.", "\\frac{1}{2}", False),
    ("I could not finish the computation.", "3", False),
    ("", "3", False),
    ("\\boxed{unclosed", "3", False),
    ("Use the form \\boxed{} at the end.", "3", False),
]


@pytest.mark.parametrize("response, gold, correct", CASES)
def test_math_scoring(response, gold, correct):
    assert MATH.is_correct(MATH.extract_answer(response), gold) is correct


def test_votes_are_symmetric_and_keep_unit_letters_apart():
    from debate_ft.vote import majority

    assert math_equal("f(2)=5", "5") and math_equal("5", "f(2)=5")
    assert majority(["4", "4t", "4t"], MATH.equivalent).answer == "4t"
    assert not MATH.equivalent("4", "4t")


def test_unparseable_is_never_correct():
    assert not MATH.is_correct(None, "3")
    assert not matches_gold("3", None)
    assert not matches_gold("", "")


def test_a_check_that_runs_too_long_is_bounded_logged_and_unequal(monkeypatch, caplog):
    monkeypatch.setattr(math_equivalence, "VERIFY_SECONDS", 1.0)
    matches_gold.cache_clear()
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="debate_ft.math_equivalence"):
        assert not matches_gold("10^{10^{10}}", "5")
    assert time.perf_counter() - start < 10
    assert "no verdict within 1 s" in caplog.text
    assert matches_gold("\\frac{1}{4}", "0.25")  # a fresh worker takes the next check


def test_table_is_large_enough():
    assert len(CASES) >= 60
