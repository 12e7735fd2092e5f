"""vLLM backend (CUDA GPU; `pip install -e '.[vllm]'`): the same interface, served by vLLM.

All requests of a round go to one `LLM.generate` call, each with its own LoRA request and its own seed (so
a row's sample does not depend on what it was batched with). Adapters are the PEFT directories the
trainer saves; a reloaded name gets a fresh LoRA id so vLLM does not serve a cached older version.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from debate_ft.backends import Completion, Message, Request
from debate_ft.config import BackendConfig, GenerationConfig, ModelConfig
from debate_ft.errors import ModelError
from debate_ft.models import load_tokenizer, model_dir, prompt_ids, reply_ids


def _import_vllm():
    try:
        import vllm
        from vllm.lora.request import LoRARequest
    except ImportError:
        raise ModelError("backend=vllm needs vLLM on a CUDA machine: pip install -e '.[vllm]'") from None
    return vllm, LoRARequest


class VLLMBackend:
    def __init__(self, model: ModelConfig, backend: BackendConfig, max_loras: int = 16, max_lora_rank: int = 64):
        vllm, self._lora_request = _import_vllm()
        self._sampling_params = vllm.SamplingParams
        self.tokenizer = load_tokenizer(model)
        self.system_prompt = model.system_prompt
        self.llm = vllm.LLM(
            model=model_dir(model),
            dtype="auto" if backend.dtype in ("auto", "fast") else backend.dtype,
            enable_lora=True,
            max_loras=max_loras,
            max_lora_rank=max_lora_rank,
            gpu_memory_utilization=backend.gpu_memory_utilization,
            trust_remote_code=model.trust_remote_code,
        )
        self._adapters: dict[str, object] = {}
        self._ids = itertools.count(1)

    def load_adapter(self, name: str, path: str | Path) -> None:
        self._adapters[name] = self._lora_request(name, next(self._ids), str(path))

    def trainable(self) -> None:
        return None  # vLLM serves adapters from disk; `iterate` trains them on an HF copy

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        return len(self._prompt(messages))

    def _prompt(self, messages: Sequence[Message]) -> list[int]:
        return prompt_ids(self.tokenizer, messages, self.system_prompt)

    def _lora(self, request: Request):
        return self._adapters[request.adapter] if request.adapter else None

    def generate(
        self, requests: Sequence[Request], sampling: GenerationConfig, seed: int, desc: str = "generate"
    ) -> list[Completion]:
        params = [
            self._sampling_params(
                temperature=sampling.temperature,
                top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
                max_tokens=sampling.max_new_tokens,
                seed=seed + index,
            )
            for index in range(len(requests))
        ]
        outputs = self.llm.generate(
            [{"prompt_token_ids": self._prompt(r.messages)} for r in requests],
            params,
            lora_request=[self._lora(r) for r in requests],
            use_tqdm=True,
        )
        return [Completion(o.outputs[0].text.strip(), len(o.outputs[0].token_ids)) for o in outputs]

    def logprobs(self, requests: Sequence[Request], completions: Sequence[str]) -> list[list[float]]:
        """Prompt log-probabilities of prompt + completion + EOS, read back over the completion's tokens."""
        prompts, starts = [], []
        for request, completion in zip(requests, completions):
            ids = self._prompt(request.messages)
            prompts.append({"prompt_token_ids": ids + reply_ids(self.tokenizer, completion)})
            starts.append(len(ids))
        params = self._sampling_params(max_tokens=1, prompt_logprobs=0, temperature=0)
        outputs = self.llm.generate(prompts, params, lora_request=[self._lora(r) for r in requests], use_tqdm=False)
        return [
            _scored(output, prompt["prompt_token_ids"], start)
            for output, prompt, start in zip(outputs, prompts, starts)
        ]


def _scored(output, token_ids: list[int], start: int) -> list[float]:
    """Log-probabilities vLLM gave the prompt's own tokens from `start` on."""
    return [output.prompt_logprobs[i][token_ids[i]].logprob for i in range(start, len(token_ids))]
