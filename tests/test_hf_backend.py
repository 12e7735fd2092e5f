"""Integration on a tiny random Llama: batching and per-row adapters change nothing but speed."""

import pytest
import torch
from peft import LoraConfig

from debate_ft.backends import Request
from debate_ft.backends.hf import HFBackend
from debate_ft.config import GenerationConfig
from debate_ft.models import host

GREEDY = GenerationConfig(max_new_tokens=12, temperature=0)


@pytest.fixture(scope="module")
def random_adapters(tiny_model_config, tmp_path_factory):
    """Two LoRA adapters with random (non-zero) weights, saved as PEFT directories."""
    hosted = host(tiny_model_config, device="cpu")
    paths = {}
    for index, name in enumerate(("a", "b")):
        torch.manual_seed(index)
        hosted.add_adapter(name, LoraConfig(r=4, lora_alpha=32, target_modules="all-linear", init_lora_weights=False))
        paths[name] = tmp_path_factory.mktemp("adapters") / name
        hosted.save_adapter(name, paths[name])
    return paths


def backend_with(tiny_model_config, adapters, batch_size):
    backend = HFBackend(host(tiny_model_config, device="cpu"), batch_size=batch_size)
    for name, path in adapters.items():
        backend.load_adapter(name, path)
    return backend


def requests():
    prompts = ["What is 2+3?", "Name a colour.", "A much longer question about the weather in spring time?", "Hi"]
    adapters = ["a", "b", None, "a", "b", None]
    return [Request([{"role": "user", "content": p}], adapter) for p in prompts for adapter in adapters[:3]]


def test_saved_adapter_is_a_plain_peft_directory(random_adapters):
    files = {p.name for p in random_adapters["a"].iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= files


def test_batched_mixed_adapters_equal_one_at_a_time(tiny_model_config, random_adapters):
    batched = backend_with(tiny_model_config, random_adapters, batch_size=16).generate(requests(), GREEDY, seed=0)
    single = backend_with(tiny_model_config, random_adapters, batch_size=1)
    alone = [single.generate([r], GREEDY, seed=0)[0] for r in requests()]
    assert [c.text for c in batched] == [c.text for c in alone]
    by_adapter = {r.adapter: c.text for r, c in zip(requests()[:3], batched[:3])}
    assert len(set(by_adapter.values())) == 3  # the adapters really change what is generated


def test_logprobs_batched_equal_single_and_follow_the_adapter(tiny_model_config, random_adapters):
    backend = backend_with(tiny_model_config, random_adapters, batch_size=16)
    completions = ["Five.", "Red", "Sunny and mild, mostly.", "Hello there"] * 3
    reqs = requests()[: len(completions)]
    batched = backend.logprobs(reqs, completions)
    backend.batch_size = 1
    single = backend.logprobs(reqs, completions)
    for a, b in zip(batched, single):
        assert a == pytest.approx(b, abs=1e-4)
    assert batched[0] != pytest.approx(backend.logprobs([Request(reqs[0].messages, "b")], completions[:1])[0])


def test_choice_logprobs_are_the_first_tokens_of_the_scored_replies(tiny_model_config, random_adapters):
    """One prefill per prompt (shared prefix, repeated prompts, mixed adapters, several batches) gives what full
    scoring gives for each choice's first token."""
    backend = backend_with(tiny_model_config, random_adapters, batch_size=3)
    reqs = requests() + requests()[:2]  # repeated prompts are prefilled once and copied
    choices = ["Yes", "No", "Maybe not"]
    fast = backend.choice_logprobs(reqs, choices)
    full = backend.logprobs([r for r in reqs for _ in choices], choices * len(reqs))
    assert len(fast) == len(reqs)
    for row, values in enumerate(fast):
        assert values == pytest.approx([full[row * 3 + k][0] for k in range(3)], abs=1e-4)
    assert fast[0] != pytest.approx(fast[1])  # the rows' adapters differ


def test_replacing_an_adapter_serves_the_new_weights(tiny_model_config, random_adapters):
    backend = backend_with(tiny_model_config, {"x": random_adapters["a"]}, batch_size=4)
    request = [Request([{"role": "user", "content": "What is 2+3?"}], "x")]
    as_a = backend.generate(request, GREEDY, seed=0)[0].text
    backend.load_adapter("x", random_adapters["b"])
    assert backend.hosted.loaded() == ["x"]
    assert backend.generate(request, GREEDY, seed=0)[0].text != as_a


def test_sampling_is_reproducible_with_a_seed(tiny_backend):
    sampled = GenerationConfig(max_new_tokens=12, temperature=1.0, top_p=0.9)
    reqs = requests()[:4:3]
    assert tiny_backend.generate(reqs, sampled, seed=5) == tiny_backend.generate(reqs, sampled, seed=5)


def test_scoring_keeps_its_logits_within_the_memory_budget(tiny_model_config, random_adapters):
    backend = backend_with(tiny_model_config, random_adapters, batch_size=16)
    passes = []
    backend.hosted.base.register_forward_pre_hook(lambda module, args: passes.append(1))
    completions = ["Five.", "Red", "Sunny and mild, mostly.", "Hello there"] * 3
    reqs = requests()[: len(completions)]
    roomy = backend.logprobs(reqs, completions)
    assert len(passes) == 1
    backend.score_memory_mib = 1  # ~5 positions of a 49k vocabulary: every row needs a pass of its own
    tight = backend.logprobs(reqs, completions)
    assert len(passes) == 1 + len(reqs)
    for a, b in zip(roomy, tight):
        assert a == pytest.approx(b, abs=1e-4)


def test_fast_dtype_is_bfloat16_only_where_the_hardware_computes_it(monkeypatch):
    from debate_ft import devices

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation: True)
    monkeypatch.setattr(devices, "cpu_has_bfloat16", lambda: False)
    assert devices.pick_dtype("fast", cpu) == torch.float32 and devices.pick_dtype("fast", gpu) == torch.bfloat16
    monkeypatch.setattr(devices, "cpu_has_bfloat16", lambda: True)
    assert devices.pick_dtype("fast", cpu) == torch.bfloat16
    assert devices.pick_dtype("auto", cpu) == torch.float32


def test_a_gpu_without_bfloat16_gets_float16_or_a_clear_error(monkeypatch):
    from debate_ft import devices
    from debate_ft.errors import ModelError

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation: False)  # a V100 or a T4
    gpu = torch.device("cuda")
    assert devices.pick_dtype("auto", gpu) == devices.pick_dtype("fast", gpu) == torch.float16
    with pytest.raises(ModelError, match="has no bfloat16"):
        devices.pick_dtype("bfloat16", gpu)


def test_replies_end_at_every_end_of_turn_id_the_generation_config_names(tiny_model_config):
    hosted = host(tiny_model_config, device="cpu")
    hosted.base.generation_config.eos_token_id = [7, 9]  # Phi-3: </s> and <|end|>
    assert HFBackend(hosted).stop_ids == {7, 9, hosted.tokenizer.eos_token_id}


def test_more_new_tokens_than_the_model_has_context_is_refused(tiny_backend):
    from debate_ft.errors import ModelError

    context = tiny_backend.hosted.base.config.max_position_embeddings
    with pytest.raises(ModelError, match=f"max_new_tokens={context:,} is beyond the model's context of {context:,}"):
        tiny_backend.generate(
            [Request([{"role": "user", "content": "hi"}])], GenerationConfig(max_new_tokens=context), 0
        )


GEMMA_TEMPLATE = (
    "{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
    "{{ m['content'] }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def test_a_model_without_a_chat_template_takes_the_configured_one(tiny_model_dir, tmp_path):
    """A base model ships no chat template: refused with the setting to give, served with the one given."""
    import shutil

    from transformers import AutoTokenizer

    from debate_ft.config import ModelConfig
    from debate_ft.errors import ModelError
    from debate_ft.models import load_tokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = None
    tokenizer.save_pretrained(tmp_path)
    for leftover in tmp_path.glob("chat_template.*"):
        leftover.unlink()
    shutil.copy(tiny_model_dir / "config.json", tmp_path)
    with pytest.raises(ModelError, match="has no chat template; pick an instruct model, or give one in model.chat"):
        load_tokenizer(ModelConfig(name="base", path=str(tmp_path)))
    loaded = load_tokenizer(ModelConfig(name="base", path=str(tmp_path), chat_template=GEMMA_TEMPLATE))
    question = [{"role": "user", "content": "2+2?"}]
    prompt = loaded.apply_chat_template(question, tokenize=False, add_generation_prompt=True)
    assert prompt == "<start_of_turn>user\n2+2?<end_of_turn>\n<start_of_turn>model\n"
