"""Generation backends: one small batched interface, several engines.

A backend turns many conversations into completions in as few model calls as it can, each row under its own
LoRA adapter (or the base model), and scores given completions with per-token log-probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from debate_ft.config import BackendConfig, GenerationConfig, ModelConfig
from debate_ft.errors import ModelError

Message = dict[str, str]


@dataclass(frozen=True)
class Request:
    messages: tuple[Message, ...] | list[Message]
    adapter: str | None = None  # a loaded LoRA adapter's name; None is the base model
    agent: str | None = None  # who asks (gen0, crit1, ...), for compute accounting; no effect on the output


@dataclass(frozen=True)
class Completion:
    text: str
    tokens: int  # generated tokens, end-of-sequence included
    prompt_tokens: int | None = None  # the prompt's tokens, where the engine reports them (openai)


class LogprobsUnsupported(ModelError):
    """The engine cannot score given completions (a server without prompt log-probabilities)."""


class Backend(Protocol):
    def generate(
        self, requests: Sequence[Request], sampling: GenerationConfig, seed: int, desc: str = "generate"
    ) -> list[Completion]:
        """One completion per request, in order. Same requests + seed give the same completions."""

    def logprobs(self, requests: Sequence[Request], completions: Sequence[str]) -> list[list[float]]:
        """Per-token log-probabilities of each completion as the assistant's reply to its conversation."""

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Serve the PEFT adapter saved at `path` under `name`, replacing any adapter of that name."""

    def adapters(self) -> list[str]:
        """Names of the adapters loaded now."""


def make_backend(backend: BackendConfig, model: ModelConfig) -> Backend:
    if backend.name == "fake":
        from debate_ft.backends.fake import FakeBackend

        return FakeBackend(accuracy=backend.fake_accuracy)
    if backend.name == "openai":
        from debate_ft.backends.openai import OpenAIBackend

        return OpenAIBackend(model, backend)
    if backend.name == "vllm":
        from debate_ft.backends.vllm import VLLMBackend

        return VLLMBackend(model, backend)
    from debate_ft.backends.hf import HFBackend

    return HFBackend.from_config(model, backend)
