"""Hugging Face transformers backend: one base model, many LoRA adapters, mixed in one batch.

Rows are sorted by prompt length and cut into batches of `backend.batch_size`; every row names its own adapter
(peft's `adapter_names`), so all agents of a debate round share each forward pass; finished rows leave their
batch (decoding.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from debate_ft.backends import Completion, Request
from debate_ft.backends.decoding import sample
from debate_ft.config import BackendConfig, GenerationConfig, ModelConfig
from debate_ft.models import HostedModel, host, set_threads, with_system

BASE = "__base__"  # peft's name for "no adapter" in a mixed-adapter batch


class HFBackend:
    def __init__(
        self, hosted: HostedModel, batch_size: int = 64, system_prompt: str | None = None, score_memory_mib: int = 128
    ):
        self.hosted = hosted
        self.tokenizer = hosted.tokenizer
        self.batch_size = batch_size
        self.score_memory_mib = score_memory_mib
        self.system_prompt = system_prompt
        self.generated_tokens = 0
        self._keeps_logits = "logits_to_keep" in inspect.signature(hosted.base.forward).parameters
        self._vocab = hosted.base.get_output_embeddings().weight.shape[0]

    @classmethod
    def from_config(cls, model: ModelConfig, backend: BackendConfig) -> HFBackend:
        set_threads(backend.threads)
        hosted = host(model, backend.device, backend.dtype)
        return cls(hosted, backend.batch_size, model.system_prompt, backend.score_memory_mib)

    def load_adapter(self, name: str, path: str | Path) -> None:
        self.hosted.load_adapter(name, path)

    def adapters(self) -> list[str]:
        return self.hosted.adapters()

    def prompt_ids(self, messages) -> list[int]:
        messages = with_system(messages, self.system_prompt)
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

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

    def _adapter_kwargs(self, requests: Sequence[Request]) -> dict:
        if self.hosted.peft is None:
            return {}
        return {"adapter_names": [self.hosted.internal_name(r.adapter) if r.adapter else BASE for r in requests]}

    def _first_kept(self, prompts: list[list[int]], batch: list[int]) -> int:
        """The first position whose logits a scoring pass keeps: the first that predicts a completion token (the
        vocabulary head is a large share of a small model's compute, forward and backward)."""
        return min(len(prompts[i]) for i in batch) - 1 if self._keeps_logits else 0

    def _logits_fit(self, prompts: list[list[int]], rows: list[list[int]], batch: list[int]) -> bool:
        """Whether the float32 logits one scoring pass keeps for `batch` stay within `score_memory_mib`: they are
        rows x positions x vocabulary, gigabytes for a 64-row batch of long debate turns."""
        positions = max(len(rows[i]) for i in batch) - self._first_kept(prompts, batch)
        return len(batch) * positions * self._vocab * 4 <= self.score_memory_mib * 2**20

    def generate(
        self, requests: Sequence[Request], sampling: GenerationConfig, seed: int, desc: str = "generate"
    ) -> list[Completion]:
        prompts = [self.prompt_ids(r.messages) for r in requests]
        results: list[Completion | None] = [None] * len(requests)
        for number, batch in enumerate(self._batches(prompts, desc)):
            inputs = self._pad([prompts[i] for i in batch])
            rows = sample(
                self.hosted.module,
                inputs["input_ids"],
                inputs["attention_mask"],
                max_new_tokens=sampling.max_new_tokens,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                eos_token_id=self.tokenizer.eos_token_id,
                seed=seed + number,
                **self._adapter_kwargs([requests[i] for i in batch]),
            )
            for tokens, index in zip(rows, batch):
                results[index] = self._completion(tokens)
        self.generated_tokens += sum(c.tokens for c in results)
        return results

    def _completion(self, tokens: list[int]) -> Completion:
        eos = self.tokenizer.eos_token_id
        length = tokens.index(eos) + 1 if eos in tokens else len(tokens)
        return Completion(self.tokenizer.decode(tokens[:length], skip_special_tokens=True).strip(), length)

    @torch.inference_mode()
    def logprobs(self, requests: Sequence[Request], completions: Sequence[str]) -> list[list[float]]:
        return [row.tolist() for row in self.completion_logprobs(requests, completions)]

    def completion_logprobs(self, requests: Sequence[Request], completions: Sequence[str]) -> list[torch.Tensor]:
        """Per-token log-probabilities of each completion, as tensors: called with gradients enabled, they
        carry gradients to the trainable adapters the rows name (the flow's DPO learner)."""
        eos = [self.tokenizer.eos_token_id]
        prompts = [self.prompt_ids(r.messages) for r in requests]
        answers = [self.tokenizer(c, add_special_tokens=False)["input_ids"] + eos for c in completions]
        rows = [p + a for p, a in zip(prompts, answers)]
        results: list[torch.Tensor | None] = [None] * len(rows)
        # rows of similar prompt length share a batch, so the kept logit positions are mostly completion ones
        order = sorted(range(len(rows)), key=lambda i: (len(prompts[i]), len(rows[i])))
        self.tokenizer.padding_side = "right"  # completions then sit at known offsets
        try:
            for batch in self._batches(rows, "score", order, lambda batch: self._logits_fit(prompts, rows, batch)):
                inputs = self._pad([rows[i] for i in batch])
                first = self._first_kept(prompts, batch)
                length = inputs["input_ids"].shape[1]
                keep = {"logits_to_keep": torch.arange(first, length, device=self.hosted.device)} if first else {}
                adapters = self._adapter_kwargs([requests[i] for i in batch])
                logits = self.hosted.module(**inputs, **adapters, **keep).logits
                for offset, index in enumerate(batch):
                    start, end = len(prompts[index]), len(rows[index])
                    targets = inputs["input_ids"][offset, start:end]
                    logps = torch.log_softmax(logits[offset, start - 1 - first : end - 1 - first].float(), dim=-1)
                    results[index] = logps.gather(-1, targets[:, None])[:, 0]
        finally:
            self.tokenizer.padding_side = "left"
        return results
