"""The engine a config names, imported only when chosen (vLLM and the HF stack are heavy)."""

from __future__ import annotations

from debate_ft.backends import Backend
from debate_ft.config import BackendConfig, ModelConfig


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
