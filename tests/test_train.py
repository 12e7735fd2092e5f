"""Per-agent LoRA training on a tiny random Llama: adapters learn, the base does not move."""

import pytest
import torch
from safetensors.torch import load_file

from debate_ft.config import TrainConfig
from debate_ft.models import host
from debate_ft.train import tokenize_conversation, train_adapter

CONFIG = TrainConfig(epochs=2, batch_size=2, learning_rate=5e-3, lora_r=4)


def chats(answer: str, n: int = 4) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"What is {i}+{i}?"},
                {"role": "assistant", "content": f"{answer} {i}"},
            ]
        }
        for i in range(n)
    ]


def adapter_tensors(path):
    return load_file(path / "adapter_model.safetensors")


def test_only_assistant_turns_carry_loss(tiny_backend):
    tokenizer = tiny_backend.tokenizer
    messages = [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2"},
        {"role": "assistant", "content": "A2"},
    ]
    out = tokenize_conversation(tokenizer, messages)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    assert tokenizer.decode(out["input_ids"]) == full
    taught = tokenizer.decode([t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m])
    assert taught == "A1<|im_end|>\nA2<|im_end|>\n"


def test_training_changes_lora_weights_and_not_the_base(tiny_model_config, tmp_path):
    hosted = host(tiny_model_config, device="cpu")
    base_before = {k: v.clone() for k, v in hosted.base.state_dict().items()}
    train_adapter(hosted, chats("It is"), tmp_path / "a", CONFIG, seed=0)
    trained = adapter_tensors(tmp_path / "a")
    lora_b = [v for k, v in trained.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # LoRA B starts at zero: training moved it
    assert hosted.peft is None  # the training adapter is gone; the base is back out of the wrapper
    for name, tensor in hosted.base.state_dict().items():
        assert torch.equal(tensor, base_before[name]), name


def test_agents_with_different_data_get_different_adapters(tiny_model_config, tmp_path):
    hosted = host(tiny_model_config, device="cpu")
    train_adapter(hosted, chats("Yes"), tmp_path / "gen0", CONFIG, seed=0)
    train_adapter(hosted, chats("No way, it is"), tmp_path / "gen1", CONFIG, seed=0)
    first, second = adapter_tensors(tmp_path / "gen0"), adapter_tensors(tmp_path / "gen1")
    assert any(not torch.equal(first[k], second[k]) for k in first)


def test_training_beside_serving_adapters_leaves_them_alone(tiny_model_config, tmp_path):
    hosted = host(tiny_model_config, device="cpu")
    train_adapter(hosted, chats("Yes"), tmp_path / "served", CONFIG, seed=0)
    hosted.load_adapter("served", tmp_path / "served")
    before = {k: v.clone() for k, v in hosted.peft.state_dict().items()}
    train_adapter(hosted, chats("No"), tmp_path / "other", CONFIG, seed=1, init_from=tmp_path / "served")
    assert hosted.adapters() == ["served"]
    after = hosted.peft.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert adapter_tensors(tmp_path / "other").keys() == adapter_tensors(tmp_path / "served").keys()


def test_training_is_reproducible(tiny_model_config, tmp_path):
    for name in ("x", "y"):
        train_adapter(host(tiny_model_config, device="cpu"), chats("Yes"), tmp_path / name, CONFIG, seed=3)
    x, y = adapter_tensors(tmp_path / "x"), adapter_tensors(tmp_path / "y")
    assert all(torch.equal(x[k], y[k]) for k in x)


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
