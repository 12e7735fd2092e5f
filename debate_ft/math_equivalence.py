"""MATH answer equivalence: a surface normalisation (in the spirit of prm800k's grader), then math-verify.

math-verify is configured, not patched around:
- unit stripping is off: its default drops trailing letters it takes for units, so `4` would equal `4t` and
  `15` would equal `6+9c`. Units written as words (`5\\text{ cm}`, `12 dollars`) are dropped here instead,
  from a fixed list of whole words, never single letters;
- its `verify(gold, target)` is not symmetric, so the gold goes first (`matches_gold`); a vote between two
  predictions (`math_equal`) accepts either direction;
- it runs in a child process with a time limit per check (`VERIFY_SECONDS`): a power tower such as
  `10^{10^{10}}` can keep sympy busy for hours, and a signal cannot interrupt it outside the main thread.
  A check that runs out of time is killed, logged and counted as not equal.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

from debate_ft.answers import exact_number, numbers_equal

log = logging.getLogger(__name__)

VERIFY_SECONDS = 5.0
_START_SECONDS = 120.0  # the child imports sympy once

_WRAPPER = re.compile(r"\\(?:text|textbf|textrm|textit|mathrm|mbox|operatorname)\s*\{([^{}]*)\}")
_DROPPED = re.compile(r"\\[!,;: ]|~|\\left|\\right|\\displaystyle|\^\s*\{?\\circ\}?|°|\\\$|\$|\\%|%|\{,\}")
_UNIT_WORDS = (
    "units?|square units|degrees?|cm|centimeters?|meters?|metres?|km|kilometers?|mm|inches|inch|feet|foot|ft|"
    "yards?|miles?|seconds?|minutes?|hours?|days?|weeks?|months?|years?|dollars?|cents?|pounds?|grams?|kg|"
    "liters?|litres?|mph|people|students?|ways?"
)
_TRAILING_UNIT = re.compile(rf"(?<=[\d}}\s])\s*(?:{_UNIT_WORDS})(?:\s*\^\s*\{{?\d\}}?)?\s*$", re.IGNORECASE)
_PLAIN_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")


def normalize_math(answer: str) -> str:
    """The answer's surface form: text wrappers unwrapped, spacing commands, $, %, degrees and unit words
    dropped, \\dfrac/\\tfrac as \\frac, no trailing full stop."""
    for _ in range(4):  # nested wrappers, innermost first
        answer, unwrapped = _WRAPPER.subn(r"\1", answer)
        if not unwrapped:
            break
    answer = _DROPPED.sub("", answer).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    answer = _TRAILING_UNIT.sub("", answer.strip())
    return answer.strip().rstrip(".").strip()


def _key(answer: str) -> str:
    """Spaces and case do not matter for text answers ('June 20' = '\\text{june 20}', '1:03 PM' = '1:03 pm')."""
    return re.sub(r"\s+", "", answer).lower()


@functools.lru_cache(maxsize=65536)
def matches_gold(gold: str | None, prediction: str | None) -> bool:
    """Is `prediction` a correct answer to a question whose reference answer is `gold`?"""
    if gold is None or prediction is None:
        return False
    gold, prediction = normalize_math(gold), normalize_math(prediction)
    if not gold or not prediction:
        return False
    if _key(gold) == _key(prediction):
        return True
    if _PLAIN_NUMBER.fullmatch(gold) and _PLAIN_NUMBER.fullmatch(prediction):
        return numbers_equal(exact_number(gold), exact_number(prediction))  # also past Python's digit limit
    return _VERIFIER.verify(gold, prediction)


def math_equal(a: str | None, b: str | None) -> bool:
    """Vote equivalence between two predictions: either accepted as the other's gold."""
    return matches_gold(a, b) or matches_gold(b, a)


def _serve() -> None:
    """The child: one JSON line [gold, prediction] in, '1' or '0' out. math-verify runs without unit
    stripping and with its own (signal) timeouts off: the parent bounds the time."""
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)  # its "timeout disabled" warnings
    latex = LatexExtractionConfig(
        normalization_config=NormalizationConfig(
            basic_latex=True, units=False, malformed_operators=True, nits=True, boxed="all", equations=False
        )
    )
    config = [latex, ExprExtractionConfig()]
    print("ready", flush=True)
    for line in sys.stdin:
        gold, prediction = json.loads(line)
        try:
            parsed = [parse(f"${x}$", extraction_config=config, parsing_timeout=None) for x in (gold, prediction)]
            equal = bool(verify(parsed[0], parsed[1], timeout_seconds=None))
        except Exception:  # exotic LaTeX that math-verify cannot read: not shown equal
            equal = False
        print("1" if equal else "0", flush=True)


class _Verifier:
    """One math-verify child process (`python -m debate_ft.math_equivalence`, so no user script is
    re-imported), started on first use and replaced after a check runs out of time."""

    def __init__(self):
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._buffer = b""

    def verify(self, gold: str, prediction: str) -> bool:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._start()
            self._process.stdin.write((json.dumps([gold, prediction]) + "\n").encode())
            self._process.stdin.flush()
            verdict = self._read_line(VERIFY_SECONDS)
            if verdict is None:
                log.warning(
                    "math-verify gave no verdict within %.0f s on gold %.60r vs %.60r: counted as not equal",
                    VERIFY_SECONDS,
                    gold,
                    prediction,
                )
                self._stop()
            return verdict == "1"

    def _start(self) -> None:
        package_root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "debate_ft.math_equivalence"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self._buffer = b""
        if self._read_line(_START_SECONDS) != "ready":
            self._stop()
            raise RuntimeError("the math-verify worker process did not start")

    def _read_line(self, seconds: float) -> str | None:
        """The child's next line, or None when it says nothing within `seconds` or has died."""
        deadline = time.monotonic() + seconds
        descriptor = self._process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([descriptor], [], [], remaining)[0]:
                return None
            chunk = os.read(descriptor, 4096)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode().strip()

    def _stop(self) -> None:
        self._process.kill()
        self._process.wait()
        self._process = None


_VERIFIER = _Verifier()

if __name__ == "__main__":
    _serve()
