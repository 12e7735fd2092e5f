"""A deterministic scripted engine: fast tests and dry runs of everything around generation, no weights.

What it replies comes from a script, `script(messages, draw) -> text`, where `draw(label)` is a number in
[0, 1) hashed from (seed, sample, adapter, messages, label): replies are reproducible, identical requests in one
call are independent samples (as on a real model), and they change when an adapter is (re)loaded with other
weights. The default script knows no task or prompt layout: a boxed small number, so votes sometimes agree, and
one reply in ten with no answer. `backend.script=module:function` names another one (the tests' task-aware
agents, for instance). Log-probabilities are hashed the same way; tokens are words.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from debate_ft.backends import Completion, Message, Request, first_token_logprobs
from debate_ft.config import GenerationConfig
from debate_ft.errors import ConfigError

Draw = Callable[[str], float]
Script = Callable[[Sequence[Message], Draw], str]


def _unit(*parts) -> float:
    """A deterministic number in [0, 1) from the parts."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return int(digest[:12], 16) / 16**12


def default_script(messages: Sequence[Message], draw: Draw) -> str:
    """Any prompt: one reply in ten states no answer, the others a boxed number in 0..3."""
    if draw("silent") < 0.1:
        return "I am not sure how to solve this."
    return f"Working through it, the answer is \\boxed{{{int(4 * draw('n'))}}}."


def load_script(spec: str | None) -> Script:
    """The script `module:function` names (None: the default script), with a one-line error if it is not there."""
    if spec is None:
        return default_script
    module_name, _, name = spec.partition(":")
    try:
        script = getattr(importlib.import_module(module_name), name)
    except ImportError as error:
        raise ConfigError(
            f"backend.script={spec}: cannot import {module_name!r} ({error}); is it on PYTHONPATH?"
        ) from None
    except AttributeError:
        raise ConfigError(f"backend.script={spec}: module {module_name!r} has no {name!r}") from None
    if not callable(script):
        raise ConfigError(f"backend.script={spec}: {name!r} is not a function (messages, draw) -> text")
    return script


class FakeBackend:
    def __init__(self, script: Script = default_script):
        self.script = script
        self._adapters: dict[str, str] = {}

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Remember the adapter by the hash of its weights, so equal adapters give equal outputs."""
        weights = Path(path) / "adapter_model.safetensors"
        self._adapters[name] = hashlib.sha256(weights.read_bytes()).hexdigest()

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        """The fake's tokens are words (its completions count them the same way)."""
        return len(" ".join(message["content"] for message in messages).split())

    def trainable(self) -> None:
        return None

    def offloaded(self) -> contextlib.nullcontext:
        return contextlib.nullcontext()  # nothing of this engine's sits on the trainer's device

    def generate(
        self, requests: Sequence[Request], sampling: GenerationConfig, seed: int, desc: str = "generate"
    ) -> list[Completion]:
        completions, seen = [], Counter()
        for request in requests:
            # identical requests (agents sharing a model) are independent samples, as on a real model
            sample = seen[key := json.dumps(self._key(request))]
            seen[key] += 1
            text = self.script(request.messages, partial(_unit, [seed, sample, *self._key(request)]))
            completions.append(Completion(text=text, tokens=len(text.split()) + 1))
        return completions

    def logprobs(self, requests: Sequence[Request], completions: Sequence[str]) -> list[list[float]]:
        return [
            [-5 * _unit(self._key(request), completion, i) - 0.01 for i in range(len(completion.split()) + 1)]
            for request, completion in zip(requests, completions)
        ]

    def choice_logprobs(self, requests: Sequence[Request], choices: Sequence[str]) -> list[list[float]]:
        return first_token_logprobs(self, requests, choices)

    def _key(self, request: Request) -> list:
        adapter = request.adapter and self._adapters.get(request.adapter, request.adapter)
        return [adapter, list(request.messages)]
