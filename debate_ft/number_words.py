"""Numbers written other than as plain digits, rewritten as digits before a numeric answer is read.

External graders' cases that plain digit matching gets wrong: words ("forty-two", "one hundred and five"),
scale words after a number ("3 million", "1.5 thousand", "2 dozen"), magnitude suffixes ("5k", "$1.2M", "3bn")
and scientific notation ("1.2e3", "1.2 x 10^3", "1.2 \\times 10^{3}"). Each rewrite gives the exact value as a
plain decimal, so the extractors in answers.py read it like any other number. Pure functions.
"""

from __future__ import annotations

import re
from fractions import Fraction

UNITS = {
    word: value
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen".split()
    )
}
TENS = {word: 10 * n for n, word in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
SUFFIXES = {"k": 10**3, "K": 10**3, "M": 10**6, "B": 10**9, "bn": 10**9}  # lower-case m is metres or minutes

_WORD = "|".join(sorted([*UNITS, *TENS, "hundred", *SCALES], key=len, reverse=True))
_AFTER_SCALE = "|".join(f"(?<={word})" for word in ("hundred", *SCALES))  # "and" only follows these
# a run of number words opening with a unit, a ten or "a hundred" / "a thousand"... ("3 million" is a digit with a
# scale word); words_value refuses a run whose grammar breaks
_FIRST = "|".join(sorted([*UNITS, *TENS], key=len, reverse=True))
_WORDS = re.compile(
    rf"(?i)(?<![\w-])(?:(?:{_FIRST})|a\s+(?:hundred|{'|'.join(SCALES)}))"
    rf"(?:(?:(?:{_AFTER_SCALE})\s+and\s+|[\s-]+)(?:{_WORD}))*(?![\w-])"
)
_DECIMAL = r"(?<![\w.,/])(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)"
_SCALED = re.compile(rf"{_DECIMAL}\s*({'|'.join(SCALES)}|dozen)\b", re.IGNORECASE)
_SUFFIXED = re.compile(rf"{_DECIMAL}({'|'.join(sorted(SUFFIXES, key=len, reverse=True))})(?![A-Za-z])")
_SCIENTIFIC = re.compile(
    rf"{_DECIMAL}\s*(?:[eE]([+-]?\d+)|(?:[x×*]|\\times|\\cdot)\s*10\s*(?:\^|\*\*)\s*\{{?\s*([+-]?\d+)\s*\}}?)"
    r"(?![\d.])"
)
_MAX_EXPONENT = 30  # larger powers of ten are no GSM answer; left as written


def words_value(words: str) -> int | None:
    """The integer a run of number words names ('one hundred and five' -> 105, 'twenty-one' -> 21); None where
    the words are no one number ('one two', 'seven twenty')."""
    total = current = 0
    last = None  # what the previous word was: unit (0-9), teen (10-19), ten, hundred or scale
    for word in re.split(r"[\s-]+", words.lower()):
        if word in ("and", "a", ""):
            continue
        if word in UNITS or word in TENS:
            value = UNITS[word] if word in UNITS else TENS[word]
            kind = "ten" if word in TENS else "teen" if value >= 10 else "unit"
            if last in ("unit", "teen") or (last == "ten" and kind != "unit"):  # only 'twenty one' joins
                return None
            current += value
        elif word == "hundred":
            if last == "hundred":
                return None
            kind, current = "hundred", max(current, 1) * 100
        else:
            kind, total, current = "scale", total + max(current, 1) * SCALES[word], 0
        last = kind
    return None if last is None else total + current


def plain(value: Fraction) -> str:
    """A value as digits: an integer, else a decimal with as many places as it needs (at most 12)."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.12f}".rstrip("0").rstrip(".")


def digits_for_magnitudes(text: str) -> str:
    """Scientific notation, scale words and magnitude suffixes after a number rewritten as plain digits."""

    def scientific(match: re.Match) -> str:
        exponent = int(match.group(2) or match.group(3))
        if abs(exponent) > _MAX_EXPONENT:
            return match.group(0)
        return plain(number(match.group(1)) * Fraction(10) ** exponent)

    text = _SCIENTIFIC.sub(scientific, text)
    text = _SCALED.sub(lambda m: plain(number(m.group(1)) * SCALES.get(m.group(2).lower(), 12)), text)
    return _SUFFIXED.sub(lambda m: plain(number(m.group(1)) * SUFFIXES[m.group(2)]), text)


def number(written: str) -> Fraction:
    return Fraction(written.replace(",", ""))


def digits_for_words(text: str, lone_one: bool = True) -> str:
    """Every run of number words rewritten as its digits ('forty-two apples' -> '42 apples'); `lone_one` False
    leaves a lone 'one' alone ('this one', 'no one' are seldom the number)."""

    def digits(match: re.Match) -> str:
        value = words_value(match.group(0))
        if value is None or (not lone_one and match.group(0).lower() == "one"):
            return match.group(0)
        return str(value)

    return _WORDS.sub(digits, text)
