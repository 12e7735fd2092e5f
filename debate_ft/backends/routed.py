"""A mixed society's engine: one engine per base model, each request sent to its own base's.

A call's rows are split by base, each part is one batched call to that base's engine (with the call's seed),
and the results come back in the rows' order. A homogeneous society's engine is the one engine it wraps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import TypeVar

from debate_ft.backends import Backend, Completion, Message, Request, Trainable
from debate_ft.bases import adapter_bases, base_configs, default_base
from debate_ft.config import Config, GenerationConfig, ModelConfig
from debate_ft.errors import ModelError

T = TypeVar("T")


class RoutedBackend:
    def __init__(self, engines: dict[str, Backend], default: str, adapter_bases: dict[str, str]):
        self.engines, self.default, self.adapter_bases = engines, default, adapter_bases

    @classmethod
    def for_society(cls, config: Config, make: Callable[[ModelConfig], Backend]) -> RoutedBackend:
        """Every base of `config`'s society, each engine made by `make` from its model config."""
        engines = {key: make(model) for key, model in base_configs(config).items()}
        return cls(engines, default_base(config), adapter_bases(config))

    def engine(self, key: str | None) -> Backend:
        """The engine of base `key` (None: the default)."""
        key = key or self.default
        if key not in self.engines:
            raise ModelError(f"no base model {key!r} in this society (bases: {', '.join(self.engines)})")
        return self.engines[key]

    def _routed(self, requests: Sequence[Request], call: Callable[[Backend, list[int]], list[T]]) -> list[T]:
        """`call(engine, rows)` once per base the requests name; results in the requests' order."""
        by_base: dict[str, list[int]] = {}
        for row, request in enumerate(requests):
            by_base.setdefault(request.model or self.default, []).append(row)
        results: list[T | None] = [None] * len(requests)
        for key, rows in by_base.items():
            for row, result in zip(rows, call(self.engine(key), rows)):
                results[row] = result
        return results  # type: ignore[return-value]

    def generate(
        self, requests: Sequence[Request], sampling: GenerationConfig, seed: int, desc: str = "generate"
    ) -> list[Completion]:
        return self._routed(
            requests, lambda engine, rows: engine.generate([requests[r] for r in rows], sampling, seed, desc)
        )

    def logprobs(self, requests: Sequence[Request], completions: Sequence[str]) -> list[list[float]]:
        return self._routed(
            requests, lambda engine, rows: engine.logprobs([requests[r] for r in rows], [completions[r] for r in rows])
        )

    def choice_logprobs(self, requests: Sequence[Request], choices: Sequence[str]) -> list[list[float]]:
        return self._routed(requests, lambda engine, rows: engine.choice_logprobs([requests[r] for r in rows], choices))

    def load_adapter(self, name: str, path: str | Path) -> None:
        if name not in self.adapter_bases:
            raise ModelError(f"adapter {name!r} belongs to no agent of this society")
        self.engine(self.adapter_bases[name]).load_adapter(name, path)

    def prompt_tokens(self, messages: Sequence[Message]) -> int | None:
        """The default base's count (a request's own base counts its tokens where it is metered: engines.py)."""
        return self.engine(None).prompt_tokens(messages)

    def trainable(self) -> Trainable | None:
        """The default base's (iterate asks each base's engine for its own: `engine(key).trainable()`)."""
        return self.engine(None).trainable()

    @contextmanager
    def offloaded(self) -> AbstractContextManager[None]:
        with ExitStack() as stack:
            for engine in self.engines.values():
                stack.enter_context(engine.offloaded())
            yield
