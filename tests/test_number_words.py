"""Numbers written other than as digits: words, scale words, suffixes, scientific notation (hand-made table)."""

import pytest

from debate_ft.number_words import digits_for_magnitudes, digits_for_words, words_value


@pytest.mark.parametrize(
    "words, value",
    [
        ("zero", 0),
        ("seven", 7),
        ("nineteen", 19),
        ("forty-two", 42),
        ("twenty one", 21),
        ("one hundred and five", 105),
        ("a hundred", 100),
        ("eleven hundred", 1100),
        ("a thousand", 1000),
        ("one million two hundred thousand", 1_200_000),
        ("Three Thousand and Six", 3006),
        ("one two", None),  # two numbers
        ("seven twenty", None),
        ("twenty thirty", None),
        ("hundred hundred", None),
        ("and", None),
    ],
)
def test_words_value(words, value):
    assert words_value(words) == value


@pytest.mark.parametrize(
    "text, want",
    [
        ("She has forty-two apples", "She has 42 apples"),
        ("add one and two", "add 1 and 2"),  # 'and' joins only after hundred or a scale word
        ("a million reasons", "1000000 reasons"),
        ("3 million", "3 million"),  # a digit with a scale word: digits_for_magnitudes' job
        ("someone, anyone, twentyish", "someone, anyone, twentyish"),  # whole words only
        ("no one came", "no 1 came"),
    ],
)
def test_digits_for_words(text, want):
    assert digits_for_words(text) == want


def test_a_lone_one_can_be_left_alone():
    assert digits_for_words("no one came, twelve stayed", lone_one=False) == "no one came, 12 stayed"


@pytest.mark.parametrize(
    "text, want",
    [
        ("3 million", "3000000"),
        ("1.5 Thousand", "1500"),
        ("-2 billion", "-2000000000"),
        ("2 dozen eggs", "24 eggs"),
        ("1,200 thousand", "1200000"),
        ("$5k", "$5000"),
        ("1.2M dollars", "1200000 dollars"),
        ("3bn", "3000000000"),
        ("243km", "243km"),  # a unit after k
        ("45min", "45min"),
        ("1.2e3", "1200"),
        ("1.2E+3", "1200"),
        ("2.5e-2", "0.025"),
        ("1.2 x 10^3", "1200"),
        ("1.2 × 10^3", "1200"),
        ("6.02 \\times 10^{2}", "602"),
        ("7*10**2", "700"),
        ("1e400", "1e400"),  # beyond any GSM answer: left as written
        ("4 boxes x 6 = 24", "4 boxes x 6 = 24"),
        ("1/3 million", "1/3 million"),  # a fraction with a scale word is left as written
    ],
)
def test_digits_for_magnitudes(text, want):
    assert digits_for_magnitudes(text) == want
