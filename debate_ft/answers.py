"""Answer extraction and equivalence: small pure functions, one per answer kind.

Every extractor returns a canonical string or None ("no answer"); None is never equivalent to anything.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal, InvalidOperation

_BOX_COMMANDS = ("\\boxed", "\\fbox")
# A number: optional sign (not when glued to a preceding word or digit, so "10-5" yields 5),
# thousands groups "1,234,567", decimals ".5" / "2.50".
_NUMBER = re.compile(r"(?<![\w.])(?P<sign>[-−–])?(?P<body>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?![\w])")
_CHOICE_PATTERNS = (
    re.compile(r"\\boxed\{\s*\(?([A-D])\)?\s*\}"),
    re.compile(r"\(([A-D])\)"),
    re.compile(r"(?i:answer\s*(?:is|:)\s*)\(?([A-D])\b"),
)


def boxed_contents(text: str) -> list[str]:
    """Contents of every \\boxed{...} / \\fbox{...} in order, with nested braces matched."""
    found = []
    for command in _BOX_COMMANDS:
        start = 0
        while (at := text.find(command + "{", start)) != -1:
            depth, i = 0, at + len(command)
            for i in range(at + len(command), len(text)):
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                if depth == 0:
                    found.append((at, text[at + len(command) + 1 : i]))
                    break
            start = i + 1
    return [content for _, content in sorted(found)]


def last_boxed(text: str) -> str | None:
    boxes = boxed_contents(text)
    return boxes[-1].strip() if boxes else None


def normalize_number(token: str) -> str | None:
    """Canonical decimal string of one numeric token: '1,234.50' -> '1234.5', '−3' -> '-3', '5.0' -> '5'."""
    cleaned = token.strip().replace(",", "").replace("−", "-").replace("–", "-").replace(" ", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if value == 0:
        return "0"  # Decimal keeps the sign of "-0"
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


def last_number(text: str) -> str | None:
    """The last number written in text, canonicalised; None if there is none."""
    matches = list(_NUMBER.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    return normalize_number((last.group("sign") or "") + last.group("body"))


def extract_number(text: str) -> str | None:
    """A numeric final answer: the last \\boxed{} holding a number, else the last number in the text."""
    for box in reversed(boxed_contents(text)):
        if (number := last_number(box)) is not None:
            return number
    return last_number(text)


def numbers_equal(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    try:
        return Decimal(a) == Decimal(b)
    except InvalidOperation:
        return False


def extract_choice(text: str) -> str | None:
    """A multiple-choice letter A-D: the last \\boxed{X}, else the last (X), else 'answer is X'."""
    for pattern in _CHOICE_PATTERNS:
        if found := pattern.findall(text):
            return found[-1]
    return None


def choices_equal(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().upper() == b.strip().upper()


def extract_math(text: str) -> str | None:
    """A MATH final answer: the last boxed expression, verbatim (equivalence is math-verify's job)."""
    answer = last_boxed(text)
    return answer if answer else None


def math_equal(a: str | None, b: str | None) -> bool:
    """Mathematical equivalence by math-verify; safe in worker threads (no signal-based timeout)."""
    if a is None or b is None:
        return False
    if a.strip() == b.strip():
        return True
    from math_verify import parse, verify

    # its signal-based timeout is off on purpose (it breaks outside the main thread): silence that warning
    logging.getLogger("math_verify").setLevel(logging.ERROR)

    def parsed(expression: str):
        return parse(f"${expression}$", parsing_timeout=None)

    try:
        return bool(verify(parsed(a), parsed(b), timeout_seconds=None))
    except Exception:  # math-verify raises on exotic LaTeX; unequal is the honest answer then
        return False
