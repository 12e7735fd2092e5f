"""Generation backends: one small batched interface, several engines.

A backend turns many conversations into completions in as few model calls as it can, each row under its own
LoRA adapter (or the base model), scores given completions with per-token log-probabilities, and counts a
prompt's tokens. An engine that serves the very model a trainer updates (hf) also hands that model out through
`trainable()`; the others answer None, and `iterate` then trains an HF copy while `flow` refuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from debate_ft.config import GenerationConfig
from debate_ft.errors import ModelError

if TYPE_CHECKING:
    import torch

    from debate_ft.models import HostedModel

Message = dict[str, str]


@dataclass(frozen=True)
class Request:
    messages: tuple[Message, ...] | list[Message]
    adapter: str | None = None  # a loaded LoRA adapter's name; None is the base model
    agent: str | None = None  # who asks (gen0, crit1, ...), for compute accounting; no effect on the output
    model: str | None = None  # a mixed society's base model key (bases.py); None: the society's default base


@dataclass(frozen=True)
class Completion:
    text: str
    tokens: int  # generated tokens, end-of-sequence included
    prompt_tokens: int | None = None  # the prompt's tokens, where the engine reports them (openai)


class LogprobsUnsupported(ModelError):
    """The engine cannot score given completions (a server without prompt log-probabilities)."""


@runtime_checkable
class Backend(Protocol):
    def generate(
        self, requests: Sequence[Request], sampling: GenerationConfig, seed: int, desc: str = "generate"
    ) -> list[Completion]:
        """One completion per request, in order. Same requests + seed give the same completions."""

    def logprobs(self, requests: Sequence[Request], completions: Sequence[str]) -> list[list[float]]:
        """Per-token log-probabilities of each completion as the assistant's reply to its conversation."""

    def choice_logprobs(self, requests: Sequence[Request], choices: Sequence[str]) -> list[list[float]]:
        """Per request, the log-probability of each choice's first token as the reply's first token: a choice
        between replies that differ in their first token (Yes/No) needs one forward pass, not one per choice."""

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Serve the PEFT adapter saved at `path` under `name`, replacing any adapter of that name."""

    def prompt_tokens(self, messages: Sequence[Message]) -> int | None:
        """How many tokens the model reads for this conversation before its reply (None: the engine cannot
        tell), for compute accounting and the server's usage counts."""

    def trainable(self) -> Trainable | None:
        """The model trainers may update in place, shared with what this engine serves; None where the engine
        only serves (a trainer then needs a model of its own)."""

    def offloaded(self) -> AbstractContextManager[None]:
        """A context in which the engine holds no accelerator memory it can give back, so a trainer on the same
        device has it (vLLM sleeps); the engine serves again after it. A no-op for the others."""


@runtime_checkable
class Trainable(Protocol):
    """An engine whose served model is the one trainers update: the flow's DPO learner adds, loads and saves
    adapters on `hosted` and scores pairs through `completion_logprobs`, so generation sees every update."""

    hosted: HostedModel

    def completion_logprobs(self, requests: Sequence[Request], completions: Sequence[str]) -> list[torch.Tensor]:
        """Per-token log-probabilities of each completion, as tensors: called with gradients enabled, they carry
        gradients to the trainable adapters the rows name."""


def first_token_logprobs(backend: Backend, requests: Sequence[Request], choices: Sequence[str]) -> list[list[float]]:
    """`choice_logprobs` read off `logprobs` (a row per choice), for engines without a one-pass path."""
    rows = backend.logprobs([r for r in requests for _ in choices], list(choices) * len(requests))
    k = len(choices)
    return [[row[0] for row in rows[i * k : (i + 1) * k]] for i in range(len(requests))]
