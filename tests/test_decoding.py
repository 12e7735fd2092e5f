"""The sampling loop: nucleus sampling keeps transformers' top-p set; finished rows leave the batch without
changing what the others generate."""

from types import SimpleNamespace

import pytest
import torch
from transformers.generation.logits_process import TopPLogitsWarper

from debate_ft.backends.decoding import nucleus_sample, sample

EOS, VOCAB = 0, 50


@pytest.mark.parametrize("scale", [2.0, 6.0])
def test_nucleus_sampling_stays_in_the_top_p_set(scale):
    torch.manual_seed(0)
    logits = torch.randn(16, 2000) * scale
    allowed = TopPLogitsWarper(0.9)(None, logits.clone()) > -float("inf")
    generator = torch.Generator().manual_seed(0)
    seen = torch.zeros_like(allowed)
    for _ in range(200):
        tokens = nucleus_sample(logits, 1.0, 0.9, generator)
        seen[torch.arange(16), tokens] = True
    assert not (seen & ~allowed).any()  # never outside the nucleus
    small = allowed.sum(-1) <= 3  # rows with a tiny nucleus get every member sampled
    assert torch.equal(seen[small], allowed[small])


def test_greedy_and_seeded_sampling():
    logits = torch.tensor([[0.0, 3.0, 1.0], [2.0, 0.0, 0.0]])
    assert nucleus_sample(logits, 0, 0.9, torch.Generator()).tolist() == [1, 0]
    draws = [nucleus_sample(logits, 1.0, 1.0, torch.Generator().manual_seed(7)).tolist() for _ in range(2)]
    assert draws[0] == draws[1]


class CountingModel:
    """Row r emits 10+r, 11+r, ... and then EOS after `lengths[r]` tokens. Rows are told apart by their first
    prompt token at prefill and tracked as rows leave; records each call's batch size and adapter names."""

    def __init__(self, lengths):
        self.lengths, self.batch_sizes, self.adapters = lengths, [], []

    def __call__(
        self,
        input_ids,
        attention_mask,
        position_ids,
        past_key_values,
        use_cache,
        logits_to_keep=None,
        adapter_names=None,
    ):
        self.batch_sizes.append(input_ids.shape[0])
        self.adapters.append(adapter_names)
        if input_ids.shape[1] > 1:  # prefill
            self.live = input_ids[:, 0].tolist()
        else:
            self.live = [row for row, token in zip(self.live, self.last) if token != EOS]
        logits = torch.full((input_ids.shape[0], 1, VOCAB), -10.0)
        self.last = []
        for i, row in enumerate(self.live):
            index = int(position_ids[i, -1]) - 2  # prompts are 3 tokens: the first new token comes from position 2
            token = EOS if index >= self.lengths[row] else 10 + row + index
            logits[i, 0, token] = 10.0
            self.last.append(token)
        return SimpleNamespace(logits=logits)


def test_finished_rows_leave_the_batch_and_others_continue():
    model = CountingModel(lengths=[1, 4, 2])
    input_ids = torch.tensor([[0, 5, 6], [1, 5, 6], [2, 5, 6]])
    out = sample(model, input_ids, torch.ones_like(input_ids), 10, 0, 1.0, EOS, seed=0, adapter_names=["a", "b", "c"])
    assert out == [[10, EOS], [11, 12, 13, 14, EOS], [12, 13, EOS]]
    assert model.batch_sizes == [3, 3, 2, 1, 1]  # prefill, then rows drop out as they finish
    assert model.adapters[-1] == ["b"] and model.adapters[2] == ["b", "c"]


def test_max_new_tokens_stops_unfinished_rows():
    model = CountingModel(lengths=[5])
    out = sample(model, torch.tensor([[0, 5, 6]]), torch.ones(1, 3, dtype=torch.long), 3, 0, 1.0, EOS, seed=0)
    assert out == [[10, 11, 12]]
