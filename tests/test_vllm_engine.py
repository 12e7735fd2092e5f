"""backend=vllm for real, on vLLM's CPU build (`make test-vllm`; skipped where vLLM is not installed): one engine on
the embedded SmolLM2-135M serves every test of this module."""

import gc
import json
import os
import re

import pytest
import torch

from debate_ft.backends import Request
from debate_ft.backends.hf import HFBackend
from debate_ft.config import BackendConfig, GenerationConfig, ModelConfig
from debate_ft.model_files import model_dir
from debate_ft.models import host

pytestmark = pytest.mark.vllm

MODEL = ModelConfig()
GREEDY = GenerationConfig(max_new_tokens=40, temperature=0.0)
# the CPU build's memory share is of RAM (0.1 of 24 GiB here); bfloat16 as vLLM's CPU kernels want it
ENGINE = BackendConfig(name="vllm", dtype="bfloat16", gpu_memory_utilization=0.1, batch_size=64, max_model_len=2048)


def require_vllm():
    """make test-vllm sets DEBATE_FT_REQUIRE_VLLM=1: there a missing vLLM fails instead of skipping."""
    if os.environ.get("DEBATE_FT_REQUIRE_VLLM") == "1":
        import vllm  # noqa: F401
    else:
        pytest.importorskip("vllm")


@pytest.fixture(scope="module")
def engine():
    require_vllm()
    from debate_ft.backends.vllm import VLLMBackend

    backend = VLLMBackend(MODEL, ENGINE)
    yield backend
    backend.llm.llm_engine.engine_core.shutdown()
    del backend
    gc.collect()


def questions(count: int, long: bool = False) -> list[Request]:
    padding = "Think step by step and check each step before you answer. " * (30 if long else 0)
    return [
        Request([{"role": "user", "content": f"{padding}What is {a} + {a * 7 % 23}? End with \\boxed{{answer}}."}])
        for a in range(count)
    ]


def random_adapter(folder, seed: int):
    """A PEFT LoRA folder for the embedded model whose B matrices are random, so it changes the output."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir(MODEL), dtype=torch.float32)
    peft = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in peft.named_parameters():
            if "lora_" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    peft.save_pretrained(folder)
    return folder


def test_greedy_agrees_with_the_hf_engine(engine, record_property):
    requests = questions(24)
    ours = HFBackend(host(MODEL, "cpu", "bfloat16"), batch_size=24)
    theirs = engine.generate(requests, GREEDY, seed=0)
    mine = ours.generate(requests, GREEDY, seed=0)
    same = sum(a.text == b.text for a, b in zip(theirs, mine)) / len(requests)
    record_property("identical_share", same)
    print(f"greedy responses identical between vLLM-CPU and the HF engine (bfloat16): {same:.2f} of 24")
    assert same >= 0.5, [(a.text, b.text) for a, b in zip(theirs, mine) if a.text != b.text][:3]


def test_logprobs_agree_with_the_hf_engine(engine):
    requests, replies = questions(4), ["The answer is \\boxed{7}.", "2 + 3 = 5", "I think 12.", "\\boxed{0}"]
    ours = HFBackend(host(MODEL, "cpu", "float32"), batch_size=4).logprobs(requests, replies)
    theirs = engine.logprobs(requests, replies)
    for a, b in zip(theirs, ours):
        assert len(a) == len(b)
        assert abs(sum(a) - sum(b)) / len(a) < 0.15  # bfloat16 against float32, per token


def test_same_requests_and_seed_give_the_same_samples(engine):
    sampled = GenerationConfig(max_new_tokens=24, temperature=1.0, top_p=0.9)
    first, second = (engine.generate(questions(8), sampled, seed=5) for _ in range(2))
    other = engine.generate(questions(8), sampled, seed=6)
    assert [c.text for c in first] == [c.text for c in second]
    assert [c.text for c in first] != [c.text for c in other]


def test_a_retrained_adapter_is_served_with_its_new_weights(engine, tmp_path):
    """Prompts repeat every iteration; vLLM keys its prefix cache by the LoRA's name (0.32: and its path), so
    `gen0` retrained into the same folder must not reuse key/values computed under its previous weights (the
    prompts span several cache blocks). Fails when a reload keeps the adapter's name."""
    folder = tmp_path / "gen0"
    requests = [Request(r.messages, "gen0") for r in questions(4, long=True)]
    assert engine.prompt_tokens(requests[0].messages) > 400
    engine.load_adapter("gen0", random_adapter(folder, 1))
    before = engine.generate(requests, GREEDY, seed=0)
    new = random_adapter(folder, 2)  # retrained in place
    engine.load_adapter("gen0", new)
    after = engine.generate(requests, GREEDY, seed=0)
    engine.load_adapter("fresh", new)
    fresh = engine.generate([Request(r.messages, "fresh") for r in requests], GREEDY, seed=0)
    assert [c.text for c in after] == [c.text for c in fresh]
    assert [c.text for c in after] != [c.text for c in before]
    base = engine.generate(questions(4, long=True), GREEDY, seed=0)
    assert [c.text for c in base] != [c.text for c in fresh]


def test_adapter_above_the_served_rank_is_refused(engine, tmp_path):
    folder = tmp_path / "wide"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"r": 64}))
    with pytest.raises(Exception, match="rank 64, above backend.max_lora_rank=16"):
        engine.load_adapter("wide", folder)


def test_evaluate_and_iterate_run_on_the_engine(engine, tmp_path, monkeypatch, capsys):
    """`evaluate` and a 2-iteration `iterate` through the CLI, every debate and the diversity stage's scoring on
    the vLLM engine (shared with this module's other tests instead of a second start-up), training on an HF copy
    whose adapters the engine then serves."""
    from debate_ft import cli
    from debate_ft.backends import engines

    monkeypatch.setattr(engines, "make_backend", lambda *_: engine)
    settings = [
        "+dataset=arithmetic", "dataset.operands=2", "dataset.max_value=9", "dataset.train_size=8",
        "dataset.test_size=8", "agents.n=2", "generation.max_new_tokens=32", "generation.temperature=0.3",
        "backend=vllm", "backend.dtype=bfloat16", "train.epochs=1", "train.batch_size=4",
        "diversity.questions=2", f"run.root={tmp_path}",
    ]  # fmt: skip
    assert cli.main(["evaluate", *settings, "run.name=eval"]) == 0
    assert cli.main(["iterate", *settings, "run.name=it", "iterations=2"]) == 0
    out = capsys.readouterr().out
    metrics = (tmp_path / "it" / "metrics.csv").read_text()
    assert re.search(r"\n2,test,debate,", metrics), metrics
    loaded = [request.lora_name for request in engine._adapters.values()]
    assert any(name.startswith("gen0@") for name in loaded), loaded
    assert (tmp_path / "it" / "iter2" / "kl.csv").exists() and "debate" in out
