"""The shared pieces of answer scoring: boxes, the statement rule, number canonicalisation, and a property
test that no extractor raises or stalls on arbitrary text. Per-task tables: tests/test_answers_<task>.py."""

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debate_ft.answers import (
    answer_statements,
    boxed_contents,
    canonical_number,
    extract_choice,
    extract_math,
    extract_number,
    last_number,
    normalize_number,
    numbers_equal,
    read_number,
)


def test_boxed_contents_match_nested_braces_and_bare_forms():
    text = "a \\boxed{\\frac{1}{2}} b \\fbox{x^{2}} c \\boxed {7} d \\boxed 3. e \\boxed{unclosed"
    assert boxed_contents(text) == ["\\frac{1}{2}", "x^{2}", "7", "3"]


def test_statements_are_in_written_order_boxes_and_phrases_alike():
    statements = answer_statements("The answer is 4. Then \\boxed{5}. Final answer: 6\n#### 7")
    assert [(s.content.strip(), s.boxed) for s in statements] == [("4", False), ("5", True), ("6", False), ("7", False)]


def test_the_last_readable_statement_wins_in_every_task():
    assert extract_number("\\boxed{3} then the answer is 4") == "4"
    assert extract_number("The answer is 4. Check: \\boxed{3}") == "3"
    assert extract_choice("\\boxed{A}. So the answer is (C)") == "C"
    assert extract_math("The answer is $x=2$. \\boxed{x=3}") == "x=3"
    # an unreadable later statement is passed over
    assert extract_number("\\boxed{3}. I hope the answer is helpful") == "3"
    assert extract_choice("(B) ... the answer is clearly explained above") == "B"
    assert extract_math("\\boxed{5}. I hope my answer is correct.") == "5"


@pytest.mark.parametrize(
    "content, expected",
    [
        ("\\frac{84}{2}", "42"),
        ("\\dfrac{1}{3}", "1/3"),
        ("- 5", "-5"),
        ("2\\frac{1}{2}", "2.5"),
        ("05", "5"),
        ("\\text{none}", None),
    ],
)
def test_read_number(content, expected):
    assert read_number(content) == expected


def test_canonical_number_is_exact():
    from fractions import Fraction

    assert [canonical_number(Fraction(x)) for x in ("42", "-3.50", "1/3", "1/8", "-0")] == [
        "42",
        "-3.5",
        "1/3",
        "0.125",
        "0",
    ]


def test_normalize_number_takes_exactly_one_number():
    assert normalize_number("1,234.500") == "1234.5"
    assert normalize_number("−0") == "0"
    assert normalize_number(" 72 ") == "72"
    assert normalize_number("12,\\!500") == "12500"
    assert normalize_number("abc") is None
    assert normalize_number("-") is None
    assert normalize_number("5 apples") is None


@pytest.mark.parametrize(
    "a, b, equal",
    [("5", "5.0", True), ("0.75", "3/4", True), ("-3", "3", False), (None, "3", False), ("1/0", "1", False)],
)
def test_numbers_equal(a, b, equal):
    assert numbers_equal(a, b) is equal


def test_last_number_reads_units_glued_to_numbers():
    assert last_number("walks 243km.") == "243"
    assert last_number("x2 and H2O") is None  # digits glued after letters are names, not numbers


EXTRACTORS = (extract_number, extract_choice, extract_math)
TRICKY = st.sampled_from(["\\boxed{", "\\boxed", "}", "{", "$", "\\frac{", "answer is", "####", "(A)", "-", ",\\!"])
ARBITRARY_TEXT = st.lists(st.one_of(st.text(max_size=40), TRICKY, st.sampled_from("٤٢１２३")), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(ARBITRARY_TEXT)
def test_extractors_never_raise_on_arbitrary_text(text):
    for extract in EXTRACTORS:
        answer = extract(text)
        assert answer is None or isinstance(answer, str)


@pytest.mark.parametrize(
    "text",
    [
        "\\boxed{" * 20_000,  # unbalanced braces, each opening a box
        "{" * 50_000 + "}" * 50_000,
        "The answer is " + "9" * 100_000,
        ("\\frac{" * 1000 + "1") * 50,
        "answer is (A) " * 8_000,
        "1,000," * 20_000,
    ],
)
def test_extractors_are_linear_on_huge_outputs(text):
    start = time.perf_counter()
    for extract in EXTRACTORS:
        extract(text)
    assert time.perf_counter() - start < 5  # quadratic scans of 100k characters take minutes


HUGE = "1" * 5000  # past Python's 4300-digit limit on int(str)


@pytest.mark.parametrize("task", ["arithmetic", "gsm", "math"])
@pytest.mark.parametrize(
    "reply, gold, correct",
    [
        (f"\\boxed{{{HUGE}}}", "5", False),
        ("\\boxed{5}", HUGE, False),
        (f"\\boxed{{{HUGE}}}", HUGE, True),
        (f"\\boxed{{000{HUGE}}}", HUGE, True),
        (f"\\boxed{{-{HUGE}}}", HUGE, False),
        (f"\\boxed{{{HUGE}.500}}", f"{HUGE}.5", True),
    ],
)
def test_numbers_with_thousands_of_digits_are_scored_not_a_crash(task, reply, gold, correct):
    """A reply or gold of thousands of digits once killed the run (and every resume of it) with int()'s
    digit-limit ValueError; it is a number like any other."""
    from debate_ft.config import DatasetConfig
    from debate_ft.tasks import get_task

    scorer = get_task(DatasetConfig(name=task))
    assert scorer.is_correct(scorer.extract_answer(reply), gold) is correct
