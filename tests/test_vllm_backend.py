"""The vLLM backend's plumbing against a stand-in `vllm` module, as on a GPU (vLLM itself, on its CPU build:
test_vllm_engine.py, `make test-vllm`)."""

import json
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
    asleep: list = field(default_factory=list)

    def sleep(self, level):
        self.asleep.append(level)

    def wake_up(self):
        self.asleep.pop()

    def generate(self, prompts, params, lora_request=None, use_tqdm=True):
        self.calls.append((prompts, params, lora_request))
        outputs = []
        for prompt in prompts:
            ids = prompt["prompt_token_ids"]
            logprobs = [None] + [{token: types.SimpleNamespace(logprob=-i / 10)} for i, token in enumerate(ids[1:], 1)]
            completion = types.SimpleNamespace(text=f" out{len(ids)} ", token_ids=[1, 2, 3])
            outputs.append(types.SimpleNamespace(outputs=[completion], prompt_logprobs=logprobs))
        return outputs


class GPU:
    @staticmethod
    def is_cpu():
        return False

    @staticmethod
    def is_sleep_mode_available():
        return True


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM = lambda **kwargs: FakeLLM(kwargs)
    module.SamplingParams = SamplingParams
    lora = types.ModuleType("vllm.lora.request")
    lora.LoRARequest = LoRARequest
    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = GPU
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.lora", types.ModuleType("vllm.lora"))
    monkeypatch.setitem(sys.modules, "vllm.lora.request", lora)
    monkeypatch.setitem(sys.modules, "vllm.platforms", platforms)


def adapter(folder, rank=8):
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": rank}))
    return folder


def test_missing_vllm_is_a_clear_error(monkeypatch, tiny_model_config):
    from debate_ft.backends.vllm import VLLMBackend

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ModelError, match=r"pip install -e '.\[vllm\]' on a CUDA machine, or `make venv-vllm`"):
        VLLMBackend(tiny_model_config, BackendConfig(name="vllm"))


def test_requests_become_one_call_with_per_row_adapters_and_seeds(fake_vllm, tiny_model_config, tmp_path):
    from debate_ft.backends.vllm import VLLMBackend

    backend = VLLMBackend(tiny_model_config, BackendConfig(name="vllm", batch_size=96, max_loras=6))
    kwargs = backend.llm.kwargs
    assert kwargs["enable_lora"] and kwargs["model"] == tiny_model_config.path and kwargs["enable_sleep_mode"]
    assert (kwargs["max_num_seqs"], kwargs["max_loras"], kwargs["max_lora_rank"]) == (96, 6, 16)
    assert kwargs["gpu_memory_utilization"] == 0.85 and "enable_chunked_prefill" not in kwargs
    backend.load_adapter("gen0", adapter(tmp_path / "a"))
    backend.load_adapter("gen0", adapter(tmp_path / "b"))  # a reload gets a new id and a new name
    requests = [Request([{"role": "user", "content": "hi"}], "gen0"), Request([{"role": "user", "content": "yo"}])]
    out = backend.generate(requests, GenerationConfig(max_new_tokens=7), seed=10)
    prompts, params, loras = backend.llm.calls[-1]
    assert [c.tokens for c in out] == [3, 3] and out[0].text.startswith("out")
    assert loras[0] == LoRARequest("gen0@2", 2, str(tmp_path / "b")) and loras[1] is None
    assert [p.seed for p in params] == [10, 11] and params[0].max_tokens == 7
    expected = backend.tokenizer.apply_chat_template(requests[0].messages, tokenize=False, add_generation_prompt=True)
    assert prompts[0]["prompt_token_ids"] == backend.tokenizer(expected, add_special_tokens=False)["input_ids"]


def test_a_vllm_engine_serves_only(fake_vllm, tiny_model_config):
    from debate_ft.backends.vllm import VLLMBackend

    backend = VLLMBackend(tiny_model_config, BackendConfig(name="vllm"))
    assert isinstance(backend, Backend) and backend.trainable() is None


def test_the_engine_sleeps_while_the_trainer_has_the_gpu(fake_vllm, tiny_model_config):
    from debate_ft.backends.vllm import VLLMBackend

    backend = VLLMBackend(tiny_model_config, BackendConfig(name="vllm"))
    with backend.offloaded():
        assert backend.llm.asleep == [1]
    assert backend.llm.asleep == []
    awake = VLLMBackend(tiny_model_config, BackendConfig(name="vllm", sleep_while_training=False))
    with awake.offloaded():
        assert awake.llm.asleep == [] and not awake.llm.kwargs["enable_sleep_mode"]


def test_adapters_beyond_the_served_rank_or_never_loaded_are_refused(fake_vllm, tiny_model_config, tmp_path):
    from debate_ft.backends.vllm import VLLMBackend

    backend = VLLMBackend(tiny_model_config, BackendConfig(name="vllm", max_lora_rank=8))
    with pytest.raises(ModelError, match="has rank 16, above backend.max_lora_rank=8"):
        backend.load_adapter("gen0", adapter(tmp_path / "wide", rank=16))
    with pytest.raises(ModelError, match="is not a PEFT LoRA adapter folder"):
        backend.load_adapter("gen0", tmp_path / "missing")
    with pytest.raises(ModelError, match="'crit0' was never loaded"):
        backend.generate([Request([{"role": "user", "content": "hi"}], "crit0")], GenerationConfig(), seed=0)


def test_data_parallel_replicas_are_the_servers(fake_vllm, tiny_model_config):
    from debate_ft.backends.vllm import VLLMBackend, server_command

    with pytest.raises(ModelError, match="--data-parallel-size N` with backend=openai"):
        VLLMBackend(tiny_model_config, BackendConfig(name="vllm", data_parallel_size=2))
    settings = BackendConfig(name="vllm", data_parallel_size=2, enforce_eager=True)
    command = server_command(tiny_model_config, settings, on_cpu=False)
    assert command[:5] == ["vllm", "serve", tiny_model_config.path, "--served-model-name", "base"]
    assert command[-2:] == ["--data-parallel-size", "2"] and "--enforce-eager" in command
    assert "--gpu-memory-utilization" not in command  # the server's own default unless set


def test_logprobs_read_the_completion_tokens(fake_vllm, tiny_model_config):
    from debate_ft.backends.vllm import VLLMBackend

    backend = VLLMBackend(tiny_model_config, BackendConfig(name="vllm"))
    request = Request([{"role": "user", "content": "hi"}])
    scores = backend.logprobs([request], ["Hello"])[0]
    prompt_length = backend.prompt_tokens(request.messages)
    answer_length = len(backend.tokenizer("Hello", add_special_tokens=False)["input_ids"]) + 1
    assert scores == [-i / 10 for i in range(prompt_length, prompt_length + answer_length)]


def test_the_cpu_build_gets_a_small_memory_share_and_whole_prefills(tiny_model_config):
    from debate_ft.backends.vllm import server_command

    command = server_command(tiny_model_config, BackendConfig(name="vllm"), on_cpu=True)
    assert command[:5] == ["python", "-m", "vllm.entrypoints.openai.api_server", "--model", tiny_model_config.path]
    assert command[command.index("--gpu-memory-utilization") + 1] == "0.1"
    assert "--no-enable-chunked-prefill" in command and "--enforce-eager" not in command
