"""The vLLM backend's plumbing against a stand-in `vllm` module (vLLM itself needs a CUDA GPU)."""

import sys
import types
from dataclasses import dataclass, field

import pytest

from debate_ft.backends import Backend, Request
from debate_ft.config import BackendConfig, GenerationConfig
from debate_ft.errors import ModelError


@dataclass
class LoRARequest:
    name: str
    id: int
    path: str


@dataclass
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    seed: int | None = None
    prompt_logprobs: int | None = None


@dataclass
class FakeLLM:
    kwargs: dict
    calls: list = field(default_factory=list)

    def generate(self, prompts, params, lora_request=None, use_tqdm=True):
        self.calls.append((prompts, params, lora_request))
        outputs = []
        for prompt in prompts:
            ids = prompt["prompt_token_ids"]
            logprobs = [None] + [{token: types.SimpleNamespace(logprob=-i / 10)} for i, token in enumerate(ids[1:], 1)]
            completion = types.SimpleNamespace(text=f" out{len(ids)} ", token_ids=[1, 2, 3])
            outputs.append(types.SimpleNamespace(outputs=[completion], prompt_logprobs=logprobs))
        return outputs


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM = lambda **kwargs: FakeLLM(kwargs)
    module.SamplingParams = SamplingParams
    lora = types.ModuleType("vllm.lora.request")
    lora.LoRARequest = LoRARequest
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.lora", types.ModuleType("vllm.lora"))
    monkeypatch.setitem(sys.modules, "vllm.lora.request", lora)


def test_missing_vllm_is_a_clear_error(monkeypatch, tiny_model_config):
    from debate_ft.backends.vllm import VLLMBackend

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ModelError, match=r"pip install -e '.\[vllm\]'"):
        VLLMBackend(tiny_model_config, BackendConfig(name="vllm"))


def test_requests_become_one_call_with_per_row_adapters_and_seeds(fake_vllm, tiny_model_config, tmp_path):
    from debate_ft.backends.vllm import VLLMBackend

    backend = VLLMBackend(tiny_model_config, BackendConfig(name="vllm"))
    assert backend.llm.kwargs["enable_lora"] and backend.llm.kwargs["model"] == tiny_model_config.path
    backend.load_adapter("gen0", tmp_path / "a")
    backend.load_adapter("gen0", tmp_path / "b")  # a reload gets a new id
    requests = [Request([{"role": "user", "content": "hi"}], "gen0"), Request([{"role": "user", "content": "yo"}])]
    out = backend.generate(requests, GenerationConfig(max_new_tokens=7), seed=10)
    prompts, params, loras = backend.llm.calls[-1]
    assert [c.tokens for c in out] == [3, 3] and out[0].text.startswith("out")
    assert loras[0] == LoRARequest("gen0", 2, str(tmp_path / "b")) and loras[1] is None
    assert [p.seed for p in params] == [10, 11] and params[0].max_tokens == 7
    expected = backend.tokenizer.apply_chat_template(requests[0].messages, tokenize=False, add_generation_prompt=True)
    assert prompts[0]["prompt_token_ids"] == backend.tokenizer(expected, add_special_tokens=False)["input_ids"]


def test_a_vllm_engine_serves_only(fake_vllm, tiny_model_config):
    from debate_ft.backends.vllm import VLLMBackend

    backend = VLLMBackend(tiny_model_config, BackendConfig(name="vllm"))
    assert isinstance(backend, Backend) and backend.trainable() is None


def test_logprobs_read_the_completion_tokens(fake_vllm, tiny_model_config):
    from debate_ft.backends.vllm import VLLMBackend

    backend = VLLMBackend(tiny_model_config, BackendConfig(name="vllm"))
    request = Request([{"role": "user", "content": "hi"}])
    scores = backend.logprobs([request], ["Hello"])[0]
    prompt_length = backend.prompt_tokens(request.messages)
    answer_length = len(backend.tokenizer("Hello", add_special_tokens=False)["input_ids"]) + 1
    assert scores == [-i / 10 for i in range(prompt_length, prompt_length + answer_length)]
