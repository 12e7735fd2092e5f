"""The engine a config names, imported only when chosen (vLLM and the HF stack are heavy), and the engine a
run's society speaks through: one per base model (routed.py), each metered into the run's compute ledger."""

from __future__ import annotations

from debate_ft.backends import Backend
from debate_ft.backends.routed import RoutedBackend
from debate_ft.compute import Ledger, Metered
from debate_ft.config import BackendConfig, Config, ModelConfig


def make_backend(backend: BackendConfig, model: ModelConfig) -> Backend:
    if backend.name == "fake":
        from debate_ft.backends.fake import FakeBackend, load_script

        return FakeBackend(load_script(backend.script))
    if backend.name == "openai":
        from debate_ft.backends.openai import OpenAIBackend

        return OpenAIBackend(model, backend)
    if backend.name == "vllm":
        from debate_ft.backends.vllm import VLLMBackend

        return VLLMBackend(model, backend)
    from debate_ft.backends.hf import HFBackend

    return HFBackend.from_config(model, backend)


def society_backend(config: Config, ledger: Ledger) -> RoutedBackend:
    """The society's engine: each base model's engine, metered into `ledger`."""
    return RoutedBackend.for_society(config, lambda model: Metered(make_backend(config.backend, model), ledger))
