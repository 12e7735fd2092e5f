"""Per-agent LoRA training on a tiny random Llama: adapters learn, the base does not move."""

from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from debate_ft.config import TrainConfig
from debate_ft.models import host
from debate_ft.train import Job, Row, passes, step_plan, tokenize_conversation, train_adapter, train_adapters

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
    assert hosted.loaded() == ["served"]
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


# The joint loop (train.loop=joint): every adapter of an iteration in one loop, each row through its own adapter.

EXACT = TrainConfig(epochs=2, batch_size=4, learning_rate=5e-3, lora_r=4, lora_dropout=0.0)


def close(first: dict, second: dict, tolerance: float = 1e-5) -> bool:
    return first.keys() == second.keys() and all(
        torch.allclose(first[k], second[k], atol=tolerance, rtol=tolerance) for k in first
    )


def test_joint_loop_trains_what_trl_trains(tiny_model_config, tmp_path):
    """One step per epoch over the whole set (so data order cannot differ): the same loss, clipping, AdamW and
    learning-rate decay as TRL's SFT trainer give the same adapter."""
    hosted = host(tiny_model_config, device="cpu")
    examples = chats("It is")
    trl_metrics = train_adapter(hosted, examples, tmp_path / "trl", EXACT, seed=0)
    metrics = train_adapters(hosted, [Job("gen0", examples, tmp_path / "joint", seed=0)], EXACT)
    assert close(adapter_tensors(tmp_path / "trl"), adapter_tensors(tmp_path / "joint"))
    assert metrics["gen0"]["steps"] == trl_metrics["steps"] == 2
    assert metrics["gen0"]["loss"] == pytest.approx(trl_metrics["loss"], rel=1e-4)


def test_each_row_trains_only_its_own_adapter(tiny_model_config, tmp_path):
    """Adapters trained together equal the same adapters trained alone: rows of one never reach another, even
    with different set sizes (the smaller one stops stepping first) and rows in the same passes."""
    hosted = host(tiny_model_config, device="cpu")
    config = TrainConfig(epochs=2, batch_size=2, learning_rate=5e-3, lora_r=4, lora_dropout=0.0)
    jobs = [
        Job("gen0", chats("Yes"), tmp_path / "together0", 1),
        Job("gen1", chats("No way, it is", 6), tmp_path / "together1", 2),
    ]
    together = train_adapters(hosted, jobs, config)
    for job, alone in zip(jobs, ("alone0", "alone1")):
        train_adapters(hosted, [Job(job.name, job.examples, tmp_path / alone, job.seed)], config)
    assert close(adapter_tensors(tmp_path / "together0"), adapter_tensors(tmp_path / "alone0"))
    assert close(adapter_tensors(tmp_path / "together1"), adapter_tensors(tmp_path / "alone1"))
    assert not close(adapter_tensors(tmp_path / "together0"), adapter_tensors(tmp_path / "together1"))
    assert [together[n]["steps"] for n in ("gen0", "gen1")] == [4, 6]


def test_joint_loop_leaves_the_base_and_serving_adapters_alone(tiny_model_config, tmp_path):
    hosted = host(tiny_model_config, device="cpu")
    base_before = {k: v.clone() for k, v in hosted.base.state_dict().items()}
    train_adapters(hosted, [Job("served", chats("Yes"), tmp_path / "served", 0)], CONFIG)
    hosted.load_adapter("served", tmp_path / "served")
    served = {k: v.clone() for k, v in hosted.peft.state_dict().items()}
    jobs = [
        Job("a", chats("No"), tmp_path / "a", 1, init_from=tmp_path / "served"),
        Job("b", chats("Maybe"), tmp_path / "b", 2),
    ]
    train_adapters(hosted, jobs, CONFIG)
    assert hosted.loaded() == ["served"]
    assert all(torch.equal(served[k], v) for k, v in hosted.peft.state_dict().items())
    for name, tensor in hosted.peft.get_base_model().state_dict().items():
        if "lora_" not in name:
            assert torch.equal(tensor, base_before[name.replace(".base_layer", "")]), name
    for name in ("a", "b"):
        lora_b = [v for k, v in adapter_tensors(tmp_path / name).items() if "lora_B" in k]
        assert lora_b and all(v.abs().sum() > 0 for v in lora_b)


def test_step_plan_shuffles_each_epoch_and_stops_at_fractional_epochs():
    plan = step_plan(5, 2, 1.5, seed=0)
    assert [len(step) for step in plan] == [2, 2, 1, 2, 2]  # ceil(1.5 x 3) steps; an epoch's last one smaller
    assert sorted(i for step in plan[:3] for i in step) == [0, 1, 2, 3, 4]
    assert step_plan(5, 2, 1.5, seed=0) == plan and step_plan(5, 2, 1.5, seed=1) != plan


def test_passes_bound_padded_tokens_and_keep_long_rows_from_padding_short_ones():
    rows = [Row(0, [1] * length, [1] * length) for length in (3, 9, 4, 8, 2)]
    cut = passes(rows, pass_tokens=16)
    assert [[len(r.input_ids) for r in p] for p in cut] == [[9], [8], [4, 3, 2]]  # no pass over 16 padded tokens
    mixed = [Row(0, [1] * length, [1] * length) for length in [400] + [20] * 30]
    assert [len(p) for p in passes(mixed, pass_tokens=4096)] == [1, 30]  # not 31 rows padded to 400
    few = [Row(0, [1] * length, [1] * length) for length in (40, 39, 38)]
    assert [len(p) for p in passes(few, pass_tokens=4096)] == [3]  # splitting saves less than a pass costs


def test_a_set_with_no_answer_within_max_length_is_a_clear_error(tiny_model_config, tmp_path):
    from debate_ft.errors import ModelError

    long_question = [{"messages": [{"role": "user", "content": "why " * 40}, {"role": "assistant", "content": "so"}]}]
    config = TrainConfig(max_length=16)
    with pytest.raises(ModelError, match="none of its 1 examples has an answer within max_length"):
        train_adapters(host(tiny_model_config, device="cpu"), [Job("gen0", long_question, tmp_path / "a", 0)], config)


def test_bfloat16_training_on_a_cpu_runs_eager_attention_and_puts_sdpa_back(tiny_model_config, tmp_path, monkeypatch):
    hosted = host(tiny_model_config, device="cpu", dtype="bfloat16")
    seen = []
    decoder = hosted.base.get_decoder()
    note = lambda: seen.append(decoder.config._attn_implementation)  # noqa: E731
    monkeypatch.setattr(decoder, "forward", _spy(decoder.forward, note))
    train_adapters(hosted, [Job("gen0", chats("Yes"), tmp_path / "a", 0)], CONFIG)
    assert seen and set(seen) == {"eager"}
    assert hosted.base.config._attn_implementation == "sdpa"
    lora_b = [v for k, v in adapter_tensors(tmp_path / "a").items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b) and lora_b[0].dtype == torch.float32


def _spy(function, note):
    def spied(*args, **kwargs):
        note()
        return function(*args, **kwargs)

    return spied


def test_examples_with_no_answer_within_max_length_are_counted_as_dropped(tiny_model_config, tmp_path, caplog):
    long_question = {"messages": [{"role": "user", "content": "why " * 40}, {"role": "assistant", "content": "so"}]}
    config = TrainConfig(max_length=40, lora_r=4)
    jobs = [Job("gen0", [long_question, *chats("Yes", 2)], tmp_path / "a", 0)]
    metrics = train_adapters(host(tiny_model_config, device="cpu"), jobs, config)
    assert metrics["gen0"]["examples"] == 3 and metrics["gen0"]["dropped"] == 1
    assert "gen0: 1 of 3 examples have no answer within max_length" in caplog.text


def test_a_failed_joint_run_takes_its_training_adapters_away(tiny_model_config, tmp_path, monkeypatch):
    from debate_ft import train

    hosted = host(tiny_model_config, device="cpu")

    def fail(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(train, "backward", fail)
    with pytest.raises(RuntimeError, match="out of memory"):
        train_adapters(
            hosted, [Job("gen0", chats("Yes"), tmp_path / "a", 0), Job("gen1", chats("No"), tmp_path / "b", 1)], CONFIG
        )
    assert hosted.loaded() == [] and hosted.peft is None and not (tmp_path / "a").exists()
    monkeypatch.undo()
    train_adapters(hosted, [Job("gen0", chats("Yes"), tmp_path / "a", 0)], CONFIG)  # the same names train again
    assert (tmp_path / "a" / "adapter_config.json").exists()


def test_adapters_trained_in_two_torchrun_processes_equal_one_process(tiny_model_config, tmp_path):
    """train.processes=2: torchrun launches two CPU workers, each training every other adapter on its own copy of
    the base; the adapters equal those the joint loop trains in this process."""
    from debate_ft.train_shards import train_in_processes

    config = TrainConfig(epochs=2, batch_size=2, learning_rate=5e-3, lora_r=4, lora_dropout=0.0, processes=2)
    hosted = host(tiny_model_config, device="cpu")
    jobs = [Job(f"agent{i}", chats(answer, 3 + i), tmp_path / "one" / f"agent{i}", 10 + i)
            for i, answer in enumerate(("Yes", "No, it is", "Maybe"))]  # fmt: skip
    train_adapters(hosted, jobs, config)
    sharded = [replace(job, out_dir=tmp_path / "two" / job.name) for job in jobs]
    train_in_processes(sharded, tiny_model_config, config, "float32", tmp_path / "jobs.json")
    for job, shard in zip(jobs, sharded):
        assert close(adapter_tensors(job.out_dir), adapter_tensors(shard.out_dir)), job.name


@pytest.mark.parametrize("loop", ["joint", "separate"])
def test_a_nan_loss_stops_training_and_saves_nothing(tiny_model_config, tmp_path, loop):
    from debate_ft.errors import TrainingError

    hosted = host(tiny_model_config, device="cpu")
    with torch.no_grad():  # a diverged base: every logit NaN
        hosted.base.get_output_embeddings().weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match=r"training loss is nan (at step 1|over 4 steps); nothing was saved"):
        if loop == "joint":
            train_adapters(hosted, [Job("gen0", chats("Yes"), tmp_path / "gen0", 0)], CONFIG)
        else:
            train_adapter(hosted, chats("Yes"), tmp_path / "gen0", CONFIG, seed=0)
    assert not (tmp_path / "gen0").exists() and hosted.loaded() == []
