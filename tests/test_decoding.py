"""The sampling loop: nucleus sampling keeps transformers' top-p set; finished rows make room for waiting
ones without changing what the others generate."""

import pytest
import torch
from transformers.generation.logits_process import TopPLogitsWarper

from debate_ft.backends.decoding import nucleus_sample, sample

EOS, VOCAB = 0, 50


# flat rows (nucleus wider than the candidates), peaked rows, and both in one batch
@pytest.mark.parametrize("scale", [[2.0], [6.0], [1.0, 20.0]])
def test_nucleus_sampling_stays_in_the_top_p_set(scale):
    torch.manual_seed(0)
    logits = torch.randn(16, 2000) * torch.tensor(scale).repeat(16 // len(scale))[:, None]
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


class CountingForward:
    """Request r emits 10+r, 11+r, ... and then EOS after `lengths[r]` tokens, counting its own tokens (so the
    output depends on nothing but the request); records each call's batch rows."""

    def __init__(self, lengths):
        self.lengths, self.batches, self.emitted = lengths, [], {}

    def __call__(self, input_ids, attention_mask, position_ids, cache, rows):
        self.batches.append(rows.tolist())
        logits = torch.full((len(rows), VOCAB), -10.0)
        for i, row in enumerate(rows.tolist()):
            index = self.emitted.get(row, 0)
            self.emitted[row] = index + 1
            logits[i, EOS if index >= self.lengths[row] else 10 + row + index] = 10.0
        return logits


def test_finished_rows_make_room_for_waiting_ones_and_others_continue():
    forward = CountingForward(lengths=[1, 4, 2, 0, 3])
    prompts = [[5, 6, 7], [5, 6], [5], [5, 6, 7, 8], [5, 6, 7, 8, 9]]
    out = sample(forward, prompts, 2, 10, 0, 1.0, {EOS}, pad_token_id=0, seed=0)
    assert out == [[10, EOS], [11, 12, 13, 14, EOS], [12, 13, EOS], [EOS], [14, 15, 16, EOS]]
    # shortest prompts first; a finished row's slot is refilled at once; the batch shrinks only when none waits
    assert forward.batches == [[2, 1], [2, 1], [2, 1], [0], [0, 1], [3], [4], [4, 1], [4], [4]]


def test_max_new_tokens_stops_unfinished_rows():
    forward = CountingForward(lengths=[5])
    assert sample(forward, [[5, 6, 7]], 4, 3, 0, 1.0, {EOS}, pad_token_id=0, seed=0) == [[10, 11, 12]]


def test_prefill_shares_the_common_prefix_per_group_and_identical_prompts():
    """The common prefix is prefilled once per group (under a request of that group), then only the suffixes after
    it, an identical prompt of one group once; each of its rows still samples its own tokens."""
    calls = []

    def forward(input_ids, attention_mask, position_ids, cache, rows):
        calls.append((input_ids.tolist(), attention_mask.tolist(), position_ids.tolist(), rows.tolist()))
        return torch.zeros(len(rows), VOCAB)

    prompts = [[5, 6, 7, 8]] * 4 + [[5, 6, 9]]
    out = sample(forward, prompts, 8, 8, 1.0, 1.0, {EOS}, pad_token_id=0, seed=0, groups=["a"] * 4 + ["b"])
    assert calls[0] == ([[5, 6], [5, 6]], [[1, 1], [1, 1]], [[0, 1], [0, 1]], [3, 4])  # one row per group
    # shortest first (request 4), then the identical prompts: one row for all four, the suffix left-padded
    assert calls[1] == ([[0, 9], [7, 8]], [[1, 1, 0, 1], [1, 1, 1, 1]], [[2, 2], [2, 3]], [4, 3])
    assert len({tuple(tokens) for tokens in out[:4]}) > 1


def test_a_row_stops_at_any_of_its_stop_tokens():
    """Models with several end-of-turn ids (Phi-3's <|end|> beside </s>) stop at whichever comes first."""
    assert sample(CountingForward(lengths=[3]), [[5]], 1, 10, 0, 1.0, {EOS, 11}, pad_token_id=0, seed=0) == [[10, 11]]
