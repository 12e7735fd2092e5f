"""The fast paths change nothing but speed, on a tiny random Llama with several different random adapters:
the gathered multi-LoRA forward equals peft's `adapter_names` loop, and continuous batching over the slot cache
equals transformers' own batch-1 greedy `generate`, token for token, also when it shares prefill work."""

import pytest
import torch
from peft import LoraConfig
from transformers import DynamicCache

from debate_ft.backends import Request, decoding
from debate_ft.backends.hf import BASE, HFBackend
from debate_ft.chat import prompt_ids
from debate_ft.config import GenerationConfig
from debate_ft.models import host

ADAPTERS = ("a", "b", "c", "d")


@pytest.fixture(scope="module")
def backend(tiny_model_config, tmp_path_factory):
    """A backend serving four LoRA adapters with random, different A and B (r=4 and r=8 mixed)."""
    hosted = host(tiny_model_config, device="cpu")
    folder = tmp_path_factory.mktemp("fast-adapters")
    for index, name in enumerate(ADAPTERS):
        torch.manual_seed(100 + index)
        config = LoraConfig(r=4 + 4 * (index % 2), lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
        hosted.add_adapter(f"tmp{name}", config)
        hosted.save_adapter(f"tmp{name}", folder / name)
        hosted.delete_adapter(f"tmp{name}")
    served = HFBackend(hosted, batch_size=3)
    for name in ADAPTERS:
        served.load_adapter(name, folder / name)
    return served


def requests() -> list[Request]:
    questions = [
        "Hi",
        "What is 2+3?",
        "A much longer question about the weather in spring time, and what to wear on a walk in the hills?",
        "Name a colour.",
        "Explain, in a few careful steps, why the sum of two odd numbers is always an even number.",
        "Why? " + "Please answer with care, and think about every word of this long question. " * 6,
    ]
    adapters = [*ADAPTERS, None]
    return [Request([{"role": "user", "content": q}], adapters[i % len(adapters)]) for i, q in enumerate(questions)]


def test_gathered_lora_logits_equal_peft_adapter_names(backend):
    reqs = requests()
    rows = [prompt_ids(backend.tokenizer, r.messages, None) for r in reqs]
    inputs = backend._pad(rows)
    names = [backend.hosted.internal_name(r.adapter) if r.adapter else BASE for r in reqs]
    with torch.inference_mode():
        reference = backend.hosted.peft(**inputs, adapter_names=names).logits
        with backend._serving(reqs) as call:
            fast = call(torch.arange(len(reqs)), **inputs).logits
        with backend.hosted.peft.disable_adapter():
            plain = backend.hosted.peft(**inputs).logits
    assert backend._gathered._stacks  # the gathered path ran, not peft's fallback
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-5)
    base_rows = [i for i, r in enumerate(reqs) if r.adapter is None]
    torch.testing.assert_close(fast[base_rows], plain[base_rows], atol=1e-5, rtol=1e-5)
    assert (fast[0] - plain[0]).abs().max() > 1e-2  # the adapters really change the logits
    # peft's own layers are back on afterwards, and training still sees its trainable flags untouched
    assert not any(m._disable_adapters for m in backend.hosted.peft.modules() if hasattr(m, "_disable_adapters"))


def test_generate_serves_mixed_adapters_through_the_gathered_path(backend, monkeypatch):
    """generate reaches the gathered forward, not peft's per-adapter loop. It once did not: the adapters were
    chosen before inference mode was entered, so the gradient check sent every batch to peft."""
    from peft.tuners.lora.layer import LoraLayer

    def refuse(*args, **kwargs):
        raise AssertionError("peft's per-adapter loop ran")

    monkeypatch.setattr(LoraLayer, "_mixed_batch_forward", refuse)
    backend._gathered = None
    completions = backend.generate(requests(), GenerationConfig(max_new_tokens=3, temperature=0), seed=0)
    assert len(completions) == len(requests()) and backend._gathered._stacks


def test_vocabulary_head_gets_a_contiguous_input(backend):
    """transformers hands the head a strided slice of the last position, which torch multiplies by copying the
    head weight once per row (1.1 s instead of 6 ms for 24 rows in bfloat16 on CPU): load_model makes it one
    block. A hook registered after load_model's sees what the head computes on."""
    seen = []
    head = backend.hosted.base.get_output_embeddings()
    handle = head.register_forward_pre_hook(lambda module, args: seen.append(args[0].is_contiguous()))
    try:
        with torch.inference_mode():
            backend.hosted.base(input_ids=torch.tensor([[5, 6, 7, 8], [9, 10, 11, 12]]), logits_to_keep=1)
    finally:
        handle.remove()
    assert seen == [True]


def test_gathered_scoring_equals_peft_scoring(backend):
    reqs = requests()
    completions = ["Five.", "Red", "Sunny and mild, mostly.", "Hello there", "Because odd plus odd is even.", "No"]
    fast = backend.logprobs(reqs, completions)
    backend.gathered_lora = False
    try:
        reference = backend.logprobs(reqs, completions)
    finally:
        backend.gathered_lora = True
    for a, b in zip(fast, reference):
        assert a == pytest.approx(b, abs=1e-4)


def reference_greedy(backend, prompt: list[int], adapter: str | None, max_new_tokens: int) -> list[int]:
    """transformers' own greedy generate, batch 1, under peft's adapter_names (no early stop)."""
    ids = torch.tensor([prompt])
    out = backend.hosted.peft.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        adapter_names=[backend.hosted.internal_name(adapter) if adapter else BASE],
        do_sample=False,
        max_new_tokens=max_new_tokens,
        min_new_tokens=max_new_tokens,
        pad_token_id=backend.tokenizer.pad_token_id,
    )
    return out[0, ids.shape[1] :].tolist()


def greedy_ending_at_a_common_token(backend, prompts, adapters, steps):
    """transformers' greedy tokens per prompt, each cut after a token several rows produce at different steps, and
    that token: played as end-of-sequence, it ends rows at different steps, so waiting prompts join mid-run."""
    full = [reference_greedy(backend, p, a, steps) for p, a in zip(prompts, adapters)]
    counts: dict[int, int] = {}
    for tokens in full:
        for token in set(tokens[1:]):
            counts[token] = counts.get(token, 0) + 1
    stop = max(counts, key=counts.get)
    expected = [t[: t.index(stop) + 1] if stop in t else t for t in full]
    assert len({len(t) for t in expected}) > 1
    return expected, stop


def continuous_greedy(backend, prompts, adapters, steps, stop, batch_size, groups=None, prefilled=None):
    """decoding.sample's greedy tokens, each row under its adapter; `prefilled` (a list) receives the number of
    prompt tokens each prefill pass computes."""
    with backend._serving([Request([], a) for a in adapters]) as call:

        def forward(input_ids, attention_mask, position_ids, cache, rows):
            if prefilled is not None and isinstance(cache, DynamicCache):  # decode steps get the slot cache
                prefilled.append(int(attention_mask[:, -input_ids.shape[1] :].sum()))
            inputs = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
            return call(rows, **inputs, past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]

        pad = backend.tokenizer.pad_token_id
        return decoding.sample(forward, prompts, batch_size, steps, 0, 1.0, {stop}, pad, seed=0, groups=groups)


@pytest.mark.parametrize("slack", [1, 32])
def test_continuous_batching_greedy_equals_generate_token_for_token(backend, monkeypatch, slack):
    """Rows end at different steps, so waiting prompts, longer and shorter than the running ones, join a batch of
    2 slots mid-run; with slack 1 the clock reaches the end of the cache and its columns are shifted left too."""
    monkeypatch.setattr(decoding, "SLACK", slack)
    shifts = []
    shift = decoding.Slots._shift
    monkeypatch.setattr(decoding.Slots, "_shift", lambda self, offset: shifts.append(offset) or shift(self, offset))
    generator = torch.Generator().manual_seed(0)
    lengths = [3, 50, 52, 55, 58, 60, 8, 12]
    prompts = [torch.randint(100, 5000, (n,), generator=generator).tolist() for n in lengths]
    adapters = [[*ADAPTERS, None][i % 5] for i in range(len(prompts))]
    expected, stop = greedy_ending_at_a_common_token(backend, prompts, adapters, 14)
    assert continuous_greedy(backend, prompts, adapters, 14, stop, 2) == expected
    assert sum(s > 0 for s in shifts) > 1  # newcomers longer than the clock
    if slack == 1:
        assert any(s < 0 for s in shifts)


def test_shared_prefill_equals_generate_and_computes_the_prefix_once_per_adapter(backend):
    """Prompts behind one long common prefix (a system prompt), three of them identical, under mixed adapters,
    in 3 slots: the prefix is prefilled once per adapter, identical prompts of one adapter admitted together once,
    and every token equals transformers' batch-1 greedy one, as with no sharing at all (each row a group)."""
    generator = torch.Generator().manual_seed(1)
    head = torch.randint(100, 5000, (30,), generator=generator).tolist()
    tails = [torch.randint(100, 5000, (n,), generator=generator).tolist() for n in (1, 2, 9, 17, 5, 25, 12)]
    prompts = [head + tails[0]] * 3 + [head + t for t in tails[1:]]  # the identical ones are admitted first
    adapters = ["a", "a", "b", "a", None, "c", "a", None, "b"]
    expected, stop = greedy_ending_at_a_common_token(backend, prompts, adapters, 14)
    shared, alone = [], []
    assert continuous_greedy(backend, prompts, adapters, 14, stop, 3, adapters, shared) == expected
    assert continuous_greedy(backend, prompts, adapters, 14, stop, 3, range(len(prompts)), alone) == expected
    assert shared == [len(head) * 4, 2 * len(tails[0]), *shared[2:]]  # 4 adapters; the identical 3: a twice, b
    assert sum(shared[1:]) == 2 * len(tails[0]) + sum(len(t) for t in tails[1:])
    assert sum(alone) == sum(len(p) for p in prompts)
    # the prefix's keys and values depend on the adapter: shared across adapters, tokens change
    assert continuous_greedy(backend, prompts, adapters, 14, stop, 3) != expected


def test_backend_generate_greedy_equals_generate(backend):
    greedy = GenerationConfig(max_new_tokens=10, temperature=0)
    reqs = requests()
    completions = backend.generate(reqs, greedy, seed=0)
    eos = backend.tokenizer.eos_token_id
    for request, completion in zip(reqs, completions):
        tokens = reference_greedy(backend, prompt_ids(backend.tokenizer, request.messages, None), request.adapter, 10)
        tokens = tokens[: tokens.index(eos) + 1] if eos in tokens else tokens
        assert completion.text == backend.tokenizer.decode(tokens, skip_special_tokens=True).strip()
