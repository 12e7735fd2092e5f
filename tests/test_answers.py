import pytest

from debate_ft.answers import (
    boxed_contents,
    choices_equal,
    extract_choice,
    extract_math,
    extract_number,
    last_number,
    math_equal,
    normalize_number,
    numbers_equal,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The answer is 42.", "42"),
        ("It costs $1,234.50 in total", "1234.5"),
        ("So she has 1,000,000 coins", "1000000"),
        ("The result is -7", "-7"),
        ("10-5 gives the answer", "5"),  # a minus between numbers is an operator, not a sign
        ("x = −3", "-3"),  # unicode minus
        ("first 3, then 5.0", "5"),
        ("values 1,2,3", "3"),
        ("0.5 of it", "0.5"),
        ("no digits here", None),
        ("", None),
    ],
)
def test_last_number(text, expected):
    assert last_number(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("so \\boxed{18} dollars, not 20", "18"),
        ("\\boxed{3} then the form \\boxed{answer} then 4", "3"),  # a box without a number is skipped
        ("\\boxed{\\$1,200}", "1200"),
        ("\\boxed{-12}", "-12"),
        ("\\boxed{} and then 7", "7"),
        ("step 1: 2+2=4. The final answer is 4", "4"),
        ("I cannot solve this", None),
    ],
)
def test_extract_number(text, expected):
    assert extract_number(text) == expected


def test_boxed_contents_match_nested_braces():
    text = "a \\boxed{\\frac{1}{2}} b \\fbox{x^{2}} c \\boxed{unclosed"
    assert boxed_contents(text) == ["\\frac{1}{2}", "x^{2}"]


@pytest.mark.parametrize(
    "a, b, equal", [("5", "5.0", True), ("1234", "1,234", False), ("-3", "3", False), (None, "3", False)]
)
def test_numbers_equal(a, b, equal):
    assert numbers_equal(a, b) is equal


def test_normalize_number():
    assert normalize_number("1,234.500") == "1234.5"
    assert normalize_number("−0") == "0"
    assert normalize_number("abc") is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("I pick (B) because ... so (C)", "C"),
        ("\\boxed{D}", "D"),
        ("The answer is A", "A"),
        ("None of these", None),
    ],
)
def test_extract_choice(text, expected):
    assert extract_choice(text) == expected
    assert choices_equal(expected, expected) is (expected is not None)


def test_math_answers_use_math_verify():
    assert extract_math("so $x = \\boxed{\\frac{1}{2}}$") == "\\frac{1}{2}"
    assert extract_math("no box: 1/2") is None
    assert math_equal("\\frac{1}{2}", "0.5")
    assert math_equal("\\dfrac{2}{4}", "\\frac12")
    assert not math_equal("\\frac{1}{3}", "0.5")
    assert not math_equal(None, "1")
