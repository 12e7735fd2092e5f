"""Answer extraction: small pure functions shared by every task.

Which stated answer counts is one rule for every task: the *last explicit answer statement* wins over every
earlier mention. A statement is a box (``\\boxed{...}``, ``\\boxed {...}``, ``\\boxed 3``, ``\\fbox{...}``) or an
answer phrase ("the answer is ...", "Answer: ...", "final answer: ...", "#### ..."). Statements are tried from
the last backwards and the first one the task can read is the answer, so a template such as ``\\boxed{answer}``
or "I hope the answer is right" is passed over. Only a response with no readable statement falls back to a
bare mention: the last number for numeric tasks, the last "(X)" / "X)" for multiple choice; MATH has none.
Every extractor returns a canonical string or None ("no answer"); None never equals anything.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import NamedTuple

from debate_ft.number_words import digits_for_magnitudes, digits_for_words

_NON_ASCII_DIGIT = re.compile(r"(?![0-9])\d")  # Arabic-Indic, full-width, ... decimal digits
_BOX = re.compile(r"\\(?:boxed|fbox)\s*(?:(\{)|([^\s{}$\\]+))")
_PHRASE = re.compile(
    r"(?i)(?<![a-z])answers?\s*(?:(?:is|are|was|would\s+be|should\s+be|will\s+be)\b\s*:?|[:=])|####",
)
_SENTENCE_END = re.compile(r"\n|\.(?=\s|$)")
_PHRASE_SPAN = 200  # characters of an answer phrase read as its content
_WRAPPER = re.compile(r"\\(?:text|textbf|textrm|textit|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")

# Digit-group separators: LaTeX's {,} and ,\! keep the comma; \, \; \: \! ~ and thin/no-break spaces between
# a digit and a group of exactly three digits are dropped ("1\,300" -> "1300").
_GROUP_COMMA = re.compile(r"\{,\}|,\\!")
_GROUP_SPACE = re.compile(r"(?<=\d)(?:\\[,;:! ]|~|[\u2009\u202f\u00a0])+(?=\d{3}(?!\d))")
_PLAIN_SPACE_GROUPS = re.compile(r"\s*-?\d{1,3}(?: \d{3})+(?:\.\d+)?\s*")  # "1 300" only as a whole answer/line
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>-)?(?P<body>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?!\d|,\d{3}(?!\d))"
)
_STRICT_NUMBER = re.compile(r"\s*-?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?\s*")
_FRAC = re.compile(r"\\frac\s*(?:\{([^{}]*)\}|(\d))\s*(?:\{([^{}]*)\}|(\d))")
_MIXED = re.compile(r"(?<![\d.])(\d+)\s*\\frac\s*\{(\d+)\}\s*\{(\d+)\}")  # 2\frac{1}{2}: two and a half
_ARITHMETIC = re.compile(r"[\d.+\-*/() ]+")
_LATEX_TO_ASCII = (
    ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\times", "*"), ("\\cdot", "*"), ("×", "*"), ("·", "*"),
    ("\\div", "/"), ("÷", "/"), ("−", "-"), ("–", "-"), ("\\left", ""), ("\\right", ""), ("\\$", ""), ("$", ""),
    ("\\%", ""), ("%", ""),
)  # fmt: skip
_CHOICE_STATED = re.compile(
    r"\s*(?:(?i:option|choice)\s*)?[(\[]?\s*(?:([A-Z])(?![A-Za-z0-9])|([a-z])\s*(?=[).\],:;]|$))"
)
_CHOICE_MENTION = re.compile(r"\(([A-Z])\)|^\s*([A-Z])(?:[).:]\s|\s*$)", re.MULTILINE)
# multiple choice also states its answer as "Final: B", "final choice is (C)", "the correct option is D"; a bare
# "Option A is wrong" is a mention, not a statement
_CHOICE_PHRASE = re.compile(
    _PHRASE.pattern + r"|(?<![a-z])(?:final(?:\s+(?:choice|option|selection))?|(?:correct|best|right)\s+"
    r"(?:choice|option)|(?:my\s+)?(?:choice|option|selection))\s*(?:is\b\s*:?|:)"
)
_LEADING_CHOICE = re.compile(r"\s*[(\[]?([A-Z])(?:[)\].:](?=\s|$)|\s*$)")


# ---- which statement counts ----


def prepare(text: str) -> str:
    """Non-ASCII decimal digits as ASCII, markdown bold dropped: the text every extractor reads."""
    text = _NON_ASCII_DIGIT.sub(lambda match: str(unicodedata.digit(match.group())), text)
    return text.replace("**", "").replace("__", "")


def _closing_braces(text: str) -> dict[int, int]:
    """Index of each '{' -> index of its matching '}', in one pass (unbalanced ones are left out)."""
    stack, pairs = [], {}
    for match in re.finditer(r"[{}]", text):
        if match.group() == "{":
            stack.append(match.start())
        elif stack:
            pairs[stack.pop()] = match.start()
    return pairs


def boxed_contents(text: str) -> list[str]:
    """Contents of every \\boxed / \\fbox in order: braces matched ('\\boxed {x}' too) or one token ('\\boxed 3')."""
    return [content for _, content in _boxes(text)]


def _boxes(text: str) -> list[tuple[int, str]]:
    found, pairs = [], None
    for match in _BOX.finditer(text):
        if match.group(1):
            pairs = _closing_braces(text) if pairs is None else pairs
            end = pairs.get(match.end(1) - 1)
            if end is not None:
                found.append((match.start(), text[match.end(1) : end]))
        else:
            found.append((match.start(), match.group(2).rstrip(".,;:")))
    return found


def last_boxed(text: str) -> str | None:
    boxes = boxed_contents(text)
    return boxes[-1].strip() if boxes else None


class Statement(NamedTuple):
    content: str
    boxed: bool  # a box rather than an answer phrase


def answer_statements(text: str, phrase: re.Pattern = _PHRASE) -> list[Statement]:
    """Every explicit answer statement (boxes and answer phrases), in the order written."""
    found = [(at, Statement(content, True)) for at, content in _boxes(text)]
    for match in phrase.finditer(text):
        span = text[match.end() : match.end() + _PHRASE_SPAN]
        found.append((match.start(), Statement(_SENTENCE_END.split(span, maxsplit=1)[0], False)))
    return [statement for _, statement in sorted(found, key=lambda pair: pair[0])]


Reader = Callable[[Statement], "str | None"]


def final_answer(
    text: str, read: Reader, fallback: Callable[[str], str | None] | None = None, phrase: re.Pattern = _PHRASE
) -> str | None:
    """The project's one rule: the last statement `read` can read, else `fallback` on the whole text."""
    text = prepare(text)
    for statement in reversed(answer_statements(text, phrase)):
        if (answer := read(statement)) is not None:
            return answer
    return fallback(text) if fallback else None


# ---- numbers (GSM8K, arithmetic) ----


# Python refuses int(str) past 4300 digits (a guard against quadratic conversion); longer numbers keep their digits
HUGE_DIGITS = 4000


def exact_number(text: str) -> str:
    """Canonical form of one written number ('1,234.50' -> '1234.5'); past HUGE_DIGITS digits, its digits
    without separators, leading zeros or trailing decimal zeros (so two spellings of it still compare equal)."""
    text = text.replace(",", "").replace(" ", "")
    if sum(character.isdigit() for character in text) <= HUGE_DIGITS:
        return canonical_number(Fraction(text))
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text.lstrip("+"))
    whole, _, decimals = digits.partition(".")
    whole, decimals = whole.lstrip("0") or "0", decimals.rstrip("0")
    return sign + whole + (f".{decimals}" if decimals else "")


def canonical_number(value: Fraction) -> str:
    """'42', '0.75', '-3.5' for terminating decimals; 'p/q' otherwise ('1/3')."""
    if value.denominator == 1:
        return str(value.numerator)
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator != 1:
        return f"{value.numerator}/{value.denominator}"
    with localcontext() as context:
        context.prec = 60
        return format((Decimal(value.numerator) / Decimal(value.denominator)).normalize(), "f")


def _clean_numeric(text: str) -> str:
    """One normalisation for every numeric task: digit-group separators, unicode minus, LaTeX wrappers."""
    text = _GROUP_SPACE.sub("", _GROUP_COMMA.sub(",", text)).replace("−", "-").replace("–", "-")
    return _WRAPPER.sub(r" \1 ", text)


def _arithmetic(expression: str) -> Fraction | None:
    """Exact value of + - * / over plain numbers, or None; no powers, so no value can blow up."""
    if len(expression) > 100 or not _ARITHMETIC.fullmatch(expression):
        return None
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None

    def value(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return Fraction(repr(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            return -value(node.operand) if isinstance(node.op, ast.USub) else value(node.operand)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
            left, right = value(node.left), value(node.right)
            operations = {ast.Add: left.__add__, ast.Sub: left.__sub__, ast.Mult: left.__mul__}
            return left / right if isinstance(node.op, ast.Div) else operations[type(node.op)](right)
        raise ValueError("not plain arithmetic")

    try:
        return value(tree.body)
    except (ValueError, ZeroDivisionError, RecursionError):
        return None


def _as_arithmetic(content: str) -> str:
    """LaTeX fractions, products and quotients as Python arithmetic: '\\frac{84}{2}' -> '(84)/(2)'."""
    for latex, ascii_ in _LATEX_TO_ASCII:
        content = content.replace(latex, ascii_)
    content = _MIXED.sub(r"(\1+\2/\3)", content)
    for _ in range(8):  # nested fractions, innermost first
        content, replaced = _FRAC.subn(lambda m: f"({m.group(1) or m.group(2)})/({m.group(3) or m.group(4)})", content)
        if not replaced:
            break
    return content


def read_number(content: str) -> str | None:
    """The number a box or an answer phrase gives: '\\frac{84}{2}' -> '42', '3/4' -> '0.75', '- 5' -> '-5',
    '330,\\!000' -> '330000', 'x = 5' -> '5', '18 \\text{ dollars}' -> '18', 'forty-two' -> '42', '1.2 million' ->
    '1200000', '5k' -> '5000', '1.2e3' -> '1200'; None if it holds none."""
    content = digits_for_magnitudes(digits_for_words(_clean_numeric(content)))
    content = content.rsplit("=", 1)[-1]  # '2 + 3 = 5', 'x = 5': the right-hand side
    if _PLAIN_SPACE_GROUPS.fullmatch(content):
        content = content.replace(" ", "")
    arithmetic = _as_arithmetic(content).strip().rstrip(".")
    if (value := _arithmetic(_THOUSANDS_COMMA.sub("", arithmetic))) is not None:
        return canonical_number(value)
    match = _NUMBER.search(re.sub(r"^\s*-\s+(?=\d)", "-", content))  # a stated '- 5' is minus five
    return _number_of(match) if match else None


def _number_of(match: re.Match) -> str:
    sign = "-" if match.group("sign") else ""
    return exact_number(sign + match.group("body"))


def last_number(text: str) -> str | None:
    """The last number written in the text (units may follow: '243km' -> '243'), canonical; None if none.
    A last line that is one space-grouped number ('1 300') is read whole; scale words, suffixes and scientific
    notation count ('3 million'), and number words too where the text has no digits ('She has twelve')."""
    text = digits_for_magnitudes(_clean_numeric(text))
    if not re.search(r"\d", text):
        text = digits_for_words(text, lone_one=False)
    last_line = text.rstrip().rsplit("\n", 1)[-1]
    if _PLAIN_SPACE_GROUPS.fullmatch(last_line):
        return exact_number(last_line)
    matches = list(_NUMBER.finditer(text))
    return _number_of(matches[-1]) if matches else None


def normalize_number(token: str) -> str | None:
    """Canonical form of a token that is exactly one number ('1,234.50' -> '1234.5', '−0' -> '0'), else None."""
    token = prepare(_clean_numeric(token))
    if not token.strip() or not _STRICT_NUMBER.fullmatch(token) or not re.search(r"\d", token):
        return None
    return exact_number(token.strip())


def extract_number(text: str) -> str | None:
    """A numeric final answer by the statement rule; with no statement, the last number in the text."""
    return final_answer(text, lambda statement: read_number(statement.content), fallback=last_number)


def numbers_equal(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    if max(len(a), len(b)) > HUGE_DIGITS:  # canonical forms (exact_number) of a number that long are its digits
        return a == b
    try:
        return Fraction(a) == Fraction(b)
    except (ValueError, ZeroDivisionError):
        return False


# ---- multiple choice (MMLU) ----


def read_choice(content: str, letters: str = "ABCD") -> str | None:
    """The letter a statement gives: 'B', '(B)', 'B) London', 'option C', '\\text{B}'; lowercase only when
    the letter stands alone ('b', 'b.'), so 'a bit unclear' is no answer."""
    match = _CHOICE_STATED.match(_WRAPPER.sub(r"\1", content).replace("$", ""))
    letter = match and (match.group(1) or match.group(2).upper())
    return letter if letter and letter in letters else None


def last_choice_mention(text: str, letters: str = "ABCD") -> str | None:
    """With no statement: the last '(X)', a line opening with 'X)' / 'X.' / 'X:', or a line that is just 'X'."""
    mentions = [m.group(1) or m.group(2) for m in _CHOICE_MENTION.finditer(text)]
    mentions = [letter for letter in mentions if letter in letters]
    return mentions[-1] if mentions else None


def leading_choice(text: str, letters: str = "ABCD") -> str | None:
    """A reply that opens with its choice ('B', 'B.', '(B)', 'B) London' on the first line) and then explains,
    naming other options on the way."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    match = _LEADING_CHOICE.match(first)
    return match.group(1) if match and match.group(1) in letters else None


def extract_choice(text: str, letters: str = "ABCD") -> str | None:
    """By the statement rule (answer phrases, boxes, 'final choice: X'); with no statement, the choice the reply
    opens with, else the last mention."""
    return final_answer(
        text,
        lambda statement: read_choice(statement.content, letters),
        fallback=lambda whole: leading_choice(whole, letters) or last_choice_mention(whole, letters),
        phrase=_CHOICE_PHRASE,
    )


def choices_equal(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().upper() == b.strip().upper()


# ---- MATH (equivalence lives in math_equivalence.py) ----

_MATH_SEGMENT = re.compile(r"\$\$?([^$]+)\$\$?|\\\((.+?)\\\)|\\\[(.+?)\\\]")


def read_math(statement: Statement) -> str | None:
    """A box verbatim; from a phrase, its last $...$ segment, else its text if it holds a digit or a command
    (so 'I hope the answer is right' is no answer)."""
    if statement.boxed:
        return statement.content.strip() or None
    segments = [next(group for group in m.groups() if group) for m in _MATH_SEGMENT.finditer(statement.content)]
    answer = (segments[-1] if segments else statement.content).strip().rstrip(".").strip()
    return answer if answer and re.search(r"[\d\\]", answer) else None


def extract_math(text: str) -> str | None:
    """A MATH final answer by the statement rule, verbatim; no fallback (MATH asks for a box)."""
    return final_answer(text, read_math)
