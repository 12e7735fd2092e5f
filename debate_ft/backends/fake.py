"""A deterministic stand-in for a language model, for fast tests of everything around generation.

Arithmetic questions are answered right with probability `accuracy`; in later debate rounds an agent adopts
the most common answer it is shown half the time. Other questions get a boxed number from a small range, so
votes sometimes agree. One reply in ten states no answer. Everything is a hash of (seed, adapter, messages),
so outputs are reproducible and change when an adapter is (re)loaded.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from debate_ft.answers import last_number
from debate_ft.backends import Completion, Request
from debate_ft.config import GenerationConfig
from debate_ft.tasks.arithmetic import evaluate

_EXPRESSION = re.compile(r"result of (\d+(?:[-+*]\d+)*)\?")
_SHOWN_ANSWER = re.compile(r"```(.*?)```", re.DOTALL)


def _unit(*parts) -> float:
    """A deterministic number in [0, 1) from the parts."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return int(digest[:12], 16) / 16**12


def _arithmetic_value(expression: str) -> int:
    numbers = tuple(int(n) for n in re.findall(r"\d+", expression))
    return evaluate(numbers)


class FakeBackend:
    def __init__(self, accuracy: float = 0.6):
        self.accuracy = accuracy
        self._adapters: dict[str, str] = {}
        self.generated_tokens = 0

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Remember the adapter by the hash of its weights, so equal adapters give equal outputs."""
        weights = Path(path) / "adapter_model.safetensors"
        self._adapters[name] = hashlib.sha256(weights.read_bytes()).hexdigest()

    def adapters(self) -> list[str]:
        return list(self._adapters)

    def prompt_ids(self, messages) -> list[str]:
        """The fake's tokens are words (its completions count them the same way)."""
        return " ".join(message["content"] for message in messages).split()

    def generate(
        self, requests: Sequence[Request], sampling: GenerationConfig, seed: int, desc: str = "generate"
    ) -> list[Completion]:
        completions, seen = [], Counter()
        for request in requests:
            # identical requests (agents sharing a model) are independent samples, as on a real model
            draw = seen[key := json.dumps(self._key(request))]
            seen[key] += 1
            text = self._reply(request, [seed, draw])
            completions.append(Completion(text=text, tokens=len(text.split()) + 1))
        self.generated_tokens += sum(c.tokens for c in completions)
        return completions

    def logprobs(self, requests: Sequence[Request], completions: Sequence[str]) -> list[list[float]]:
        return [
            [-5 * _unit(self._key(request), completion, i) - 0.01 for i in range(len(completion.split()) + 1)]
            for request, completion in zip(requests, completions)
        ]

    def _key(self, request: Request) -> list:
        adapter = request.adapter and self._adapters.get(request.adapter, request.adapter)
        return [adapter, list(request.messages)]

    def _reply(self, request: Request, seed: list) -> str:
        key = [*seed, *self._key(request)]
        last = request.messages[-1]["content"]
        if last.startswith("Here are a list of opinions"):
            return "Summary: the agents " + ("agree." if _unit(key, "s") < 0.5 else "disagree.")
        if _unit(key, "silent") < 0.1:
            return "I am not sure how to solve this."
        found = _EXPRESSION.search(request.messages[0]["content"]) or _EXPRESSION.search(last)
        shown = [n for block in _SHOWN_ANSWER.findall(last) if (n := last_number(block)) is not None]
        if shown and _unit(key, "adopt") < 0.5:
            return f"After reading the other solutions, the answer is {Counter(shown).most_common(1)[0][0]}."
        if found:
            right = _arithmetic_value(found.group(1))
            value = right if _unit(key, "right") < self.accuracy else right + 1 + int(5 * _unit(key, "off"))
            return f"{found.group(1)} = {value}. The answer is {value}."
        return f"Working through it, the answer is \\boxed{{{int(4 * _unit(key, 'n'))}}}."
