"""Hugging Face transformers backend: one base model, many LoRA adapters, mixed in one batch.

Every row names its own adapter. Without gradients, a mixed batch runs each LoRA layer as two batched matmuls
over all its adapters' stacked weights (gathered.py); with gradients (the flow's DPO learner) it goes through
peft's `adapter_names`. Generation keeps its batch full, admitting waiting prompts as rows finish, and prefills
the prompts' common prefix once per adapter (decoding.py); scoring packs rows sorted by length into batches
within a logits memory budget.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from tqdm.auto import tqdm

from debate_ft.backends import Completion, Message, Request
from debate_ft.backends.decoding import sample
from debate_ft.backends.gathered import GatheredLoRA
from debate_ft.chat import prompt_ids, reply_ids, stop_token_ids
from debate_ft.config import BackendConfig, GenerationConfig, ModelConfig
from debate_ft.devices import set_threads
from debate_ft.errors import ModelError
from debate_ft.models import HostedModel, host

BASE = "__base__"  # peft's name for "no adapter" in a mixed-adapter batch
GQA_SWITCH = "TRANSFORMERS_SDPA_FORCE_GQA"


class HFBackend:
    def __init__(
        self,
        hosted: HostedModel,
        batch_size: int = 64,
        system_prompt: str | None = None,
        score_memory_mib: int = 128,
        gathered_lora: bool = True,
    ):
        self.hosted = hosted
        self.gathered_lora = gathered_lora  # False: peft's per-adapter loop (the reference path, for tests)
        self._gathered: GatheredLoRA | None = None
        self.tokenizer = hosted.tokenizer
        self.stop_ids = stop_token_ids(hosted)
        self.batch_size = batch_size
        self.score_memory_mib = score_memory_mib
        self.system_prompt = system_prompt
        self._keeps_logits = "logits_to_keep" in inspect.signature(hosted.base.forward).parameters
        self._vocab = hosted.base.get_output_embeddings().weight.shape[0]
        # tokens the model attends over, prompt and reply together (None: its config does not say)
        self.context: int | None = getattr(hosted.base.config, "max_position_embeddings", None)

    @classmethod
    def from_config(cls, model: ModelConfig, backend: BackendConfig) -> HFBackend:
        set_threads(backend.threads)
        hosted = host(model, backend.device, backend.dtype)
        return cls(hosted, backend.batch_size, model.system_prompt, backend.score_memory_mib)

    def load_adapter(self, name: str, path: str | Path) -> None:
        self.hosted.load_adapter(name, path)

    def trainable(self) -> HFBackend:
        """This engine serves the hosted model trainers update: generation sees every trained adapter at once."""
        return self

    def offloaded(self) -> nullcontext:
        return nullcontext()  # trainers update this very model: nothing to give back

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        return len(self._prompt(messages))

    def _prompt(self, messages: Sequence[Message]) -> list[int]:
        return prompt_ids(self.tokenizer, messages, self.system_prompt)

    def _batches(self, rows: list[list[int]], desc: str, order: list[int] | None = None, fits=None):
        """Index batches of at most `batch_size` rows, consecutive in `order` (default: by length, so little
        padding) and, when given, each satisfying `fits(batch)`; with a progress bar over rows."""
        order = sorted(range(len(rows)), key=lambda i: len(rows[i])) if order is None else order
        with tqdm(total=len(rows), desc=desc, unit="row", leave=False, disable=len(rows) == 0) as bar:
            batch: list[int] = []
            for index in order:
                if batch and (len(batch) == self.batch_size or (fits and not fits([*batch, index]))):
                    yield batch
                    bar.update(len(batch))
                    batch = []
                batch.append(index)
            if batch:
                yield batch
                bar.update(len(batch))

    def _pad(self, rows: list[list[int]]) -> dict[str, torch.Tensor]:
        padded = self.tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt")
        return {key: value.to(self.hosted.device) for key, value in padded.items()}

    @contextmanager
    def _serving(self, requests: Sequence[Request]) -> Iterator:
        """A function `call(rows, **inputs)` that runs the model on a batch of `requests[rows]`, each row under
        its own adapter."""
        with _grouped_query_attention(self.hosted.device, self.hosted.base.dtype):
            with self._adapters(requests) as call:
                yield call

    @contextmanager
    def _adapters(self, requests: Sequence[Request]) -> Iterator:
        peft = self.hosted.peft
        if peft is None:
            yield lambda rows, **inputs: self.hosted.module(**inputs)
            return
        names = [self.hosted.internal_name(r.adapter) if r.adapter else None for r in requests]
        used = sorted({n for n in names if n is not None})
        if self._gathered is None or self._gathered.peft is not peft:
            self._gathered = GatheredLoRA(peft)
        gathered = self._gathered
        if self.gathered_lora and gathered.supported(used):
            gathered.prepare(used)
            mask = gathered.row_mask(names).to(self.hosted.device)

            def call(rows, **inputs):
                gathered.mask = mask[rows]
                return peft(**inputs)

            with gathered.active():
                yield call
            return
        peft_names = [n or BASE for n in names]
        yield lambda rows, **inputs: peft(**inputs, adapter_names=[peft_names[i] for i in rows.tolist()])

    def _first_kept(self, prompts: list[list[int]], batch: list[int]) -> int:
        """The first position whose logits a scoring pass keeps: the first that predicts a completion token (the
        vocabulary head is a large share of a small model's compute, forward and backward)."""
        return min(len(prompts[i]) for i in batch) - 1 if self._keeps_logits else 0

    def _logits_fit(self, prompts: list[list[int]], rows: list[list[int]], batch: list[int]) -> bool:
        """Whether the float32 logits one scoring pass keeps for `batch` stay within `score_memory_mib`: they are
        rows x positions x vocabulary, gigabytes for a 64-row batch of long debate turns."""
        positions = max(len(rows[i]) for i in batch) - self._first_kept(prompts, batch)
        return len(batch) * positions * self._vocab * 4 <= self.score_memory_mib * 2**20

    @torch.inference_mode()  # before `_serving` picks a path: the gathered LoRA path takes only passes without grad
    def generate(
        self, requests: Sequence[Request], sampling: GenerationConfig, seed: int, desc: str = "generate"
    ) -> list[Completion]:
        return [self._completion(tokens) for tokens in self._sample(requests, sampling, seed, desc)]

    def choice_logprobs(self, requests: Sequence[Request], choices: Sequence[str]) -> list[list[float]]:
        """One prefill per distinct prompt, through the generation path (its shared prefix included): the
        first-token logits are all a choice's score needs."""
        firsts = torch.tensor([reply_ids(self.tokenizer, choice)[0] for choice in choices])
        scores: list[list[float]] = [[] for _ in requests]

        def observe(rows: list[int], logits: torch.Tensor) -> None:
            picked = torch.log_softmax(logits.float(), dim=-1)[:, firsts.to(logits.device)].tolist()
            for row, values in zip(rows, picked):
                scores[row] = values

        self._sample(requests, GenerationConfig(max_new_tokens=1, temperature=0.0), 0, "score", observe)
        return scores

    @torch.inference_mode()
    def _sample(self, requests, sampling: GenerationConfig, seed: int, desc: str, observe=None) -> list[list[int]]:
        if self.context and sampling.max_new_tokens >= self.context:  # the slot cache would hold all of them
            raise ModelError(
                f"generation.max_new_tokens={sampling.max_new_tokens:,} is beyond the model's context of "
                f"{self.context:,} tokens"
            )
        prompts = [self._prompt(r.messages) for r in requests]
        with (
            self._serving(requests) as call,
            tqdm(total=len(prompts), desc=desc, unit="row", leave=False, disable=not prompts) as bar,
        ):

            def forward(input_ids, attention_mask, position_ids, cache, rows):
                inputs = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
                out = call(rows, **inputs, past_key_values=cache, use_cache=True, logits_to_keep=1)
                return out.logits[:, -1]

            return sample(
                forward,
                prompts,
                batch_size=self.batch_size,
                max_new_tokens=sampling.max_new_tokens,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                stop_token_ids=self.stop_ids,
                pad_token_id=self.tokenizer.pad_token_id,
                seed=seed,
                device=self.hosted.device,
                progress=bar.update,
                groups=[r.adapter for r in requests],
                observe=observe,
            )

    def _completion(self, tokens: list[int]) -> Completion:
        length = next((i + 1 for i, token in enumerate(tokens) if token in self.stop_ids), len(tokens))
        return Completion(self.tokenizer.decode(tokens[:length], skip_special_tokens=True).strip(), length)

    @torch.inference_mode()
    def logprobs(self, requests: Sequence[Request], completions: Sequence[str]) -> list[list[float]]:
        return [row.tolist() for row in self.completion_logprobs(requests, completions)]

    def completion_logprobs(self, requests: Sequence[Request], completions: Sequence[str]) -> list[torch.Tensor]:
        """Per-token log-probabilities of each completion, as tensors: called with gradients enabled, they
        carry gradients to the trainable adapters the rows name (the flow's DPO learner)."""
        prompts = [self._prompt(r.messages) for r in requests]
        answers = [reply_ids(self.tokenizer, c) for c in completions]
        rows = [p + a for p, a in zip(prompts, answers)]
        results: list[torch.Tensor | None] = [None] * len(rows)
        # rows of similar prompt length share a batch, so the kept logit positions are mostly completion ones
        order = sorted(range(len(rows)), key=lambda i: (len(prompts[i]), len(rows[i])))
        self.tokenizer.padding_side = "right"  # completions then sit at known offsets
        try:
            with self._serving(requests) as call:
                for batch in self._batches(rows, "score", order, lambda b: self._logits_fit(prompts, rows, b)):
                    results_for = self._score_batch(call, prompts, rows, batch)
                    for index, logps in zip(batch, results_for):
                        results[index] = logps
        finally:
            self.tokenizer.padding_side = "left"
        return results

    @torch.inference_mode()
    def token_logprobs(self, ids: list[int], adapter: str | None) -> list[float | None]:
        """Log-probability of every token of `ids` given the ones before it (None for the first), under `adapter`
        (None: the base model): raw ids, no chat template, as `serve` scores an echoed prompt."""
        hosted = self.hosted
        kwargs = {} if hosted.peft is None else {"adapter_names": [hosted.internal_name(adapter) if adapter else BASE]}
        inputs = torch.tensor([ids], device=hosted.device)
        logits = hosted.module(input_ids=inputs, **kwargs).logits[0, :-1].float()
        values = torch.log_softmax(logits, dim=-1).gather(-1, inputs[0, 1:, None])[:, 0]
        return [None, *values.tolist()]

    def _score_batch(self, call, prompts, rows, batch: list[int]) -> list[torch.Tensor]:
        inputs = self._pad([rows[i] for i in batch])
        first = self._first_kept(prompts, batch)
        length = inputs["input_ids"].shape[1]
        keep = {"logits_to_keep": torch.arange(first, length, device=self.hosted.device)} if first else {}
        logits = call(torch.tensor(batch), **inputs, **keep).logits
        scored = []
        for offset, index in enumerate(batch):
            start, end = len(prompts[index]), len(rows[index])
            targets = inputs["input_ids"][offset, start:end]
            logps = torch.log_softmax(logits[offset, start - 1 - first : end - 1 - first].float(), dim=-1)
            scored.append(logps.gather(-1, targets[:, None])[:, 0])
        return scored


@contextmanager
def _grouped_query_attention(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """On CPU in float32, let torch's attention read the shared key/value heads in place (`enable_gqa`).
    transformers otherwise copies them once per query head in every prefill layer (repeat_kv), or packs the query
    heads in decoding; measured on a decode step of 64 rows, 200 columns: 1.7x faster than packing, equal output.
    In bfloat16 it is the other way round: torch's CPU kernel for `enable_gqa` took 4.0 ms where packing took
    0.6 ms (64 rows, 150 columns), so the switch stays off. transformers reads it at every call; it is not used
    on GPUs, where its kernels refuse masks."""
    if device.type != "cpu" or dtype != torch.float32:
        yield
        return
    before = os.environ.get(GQA_SWITCH)
    os.environ[GQA_SWITCH] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ[GQA_SWITCH]
        else:
            os.environ[GQA_SWITCH] = before
