"""DPO on debate pairs: the row weights by hand and by finite differences, a joint-loop step's gradient equal to
the DPO loss's own, and training on pairs that moves the chosen completion above the rejected one."""

import math

import pytest
import torch

from debate_ft.backends.gathered import GatheredLoRA
from debate_ft.config import TrainConfig
from debate_ft.errors import ModelError
from debate_ft.models import host
from debate_ft.preference import dpo_row_weights, weighted_dpo_loss
from debate_ft.train import (
    Job,
    _answer_token_losses,
    _attach,
    answer_rows,
    rows_of,
    step_gradients,
    summed_logprobs,
    train_adapters,
)


def test_at_the_reference_the_loss_is_log_2_and_each_row_weighs_beta_over_2n():
    loss, weights = dpo_row_weights([(-3.0, -5.0), (-1.0, -2.0)], [(-3.0, -5.0), (-1.0, -2.0)], beta=0.2)
    assert loss == pytest.approx(math.log(2))
    assert weights == [pytest.approx((0.05, -0.05))] * 2  # beta * sigmoid(0) / n pairs, + chosen, - rejected


def test_row_weights_are_the_negated_derivatives_of_the_loss():
    policy, reference, beta, h = [(-2.0, -4.5), (-7.0, -1.0)], [(-3.0, -3.0), (-6.0, -2.5)], 0.7, 1e-6

    def loss(values):
        p, r = torch.tensor(values, dtype=torch.float64), torch.tensor(reference, dtype=torch.float64)
        return weighted_dpo_loss(p[:, 0], p[:, 1], r[:, 0], r[:, 1], torch.ones(2, dtype=torch.float64), beta).item()

    value, weights = dpo_row_weights(policy, reference, beta)
    assert value == pytest.approx(loss(policy))
    for i in range(2):
        for side in range(2):
            moved = [list(pair) for pair in policy]
            moved[i][side] += h
            assert weights[i][side] == pytest.approx(-(loss(moved) - value) / h, rel=1e-4)


def pairs(n: int = 4) -> list[dict]:
    return [
        {
            "prompt": [{"role": "user", "content": f"What is {i}+{i}?"}],
            "chosen": [{"role": "assistant", "content": f"It is {2 * i}."}],
            "rejected": [{"role": "assistant", "content": f"No idea, maybe {2 * i + 3} or so."}],
        }
        for i in range(n)
    ]


def lora_grads(hosted, name):
    internal = hosted.internal_name(name)
    return {k: p.grad.clone() for k, p in hosted.peft.named_parameters() if f".{internal}." in k}


@pytest.mark.parametrize("pass_tokens", [32, 4096])  # every row alone; all six rows in one padded pass
def test_a_joint_step_on_pairs_has_the_dpo_losss_gradient(tiny_model_config, pass_tokens):
    """Rows weighed by the loss's derivatives, in passes that split a pair or hold several: the same LoRA
    gradient as the DPO loss back-propagated through both completions' log-probs at once; pairs train without
    the LoRA dropout the config sets for supervised rows."""
    hosted = host(tiny_model_config, device="cpu")
    config = TrainConfig(lora_r=4, lora_dropout=0.5, beta=0.5, pass_tokens=pass_tokens)
    units, _ = answer_rows(hosted.tokenizer, Job("g", pairs(3), None, 0), 0, config, None)
    name = _attach(hosted, "g", 0, None, config)
    gather = GatheredLoRA(hosted.peft)
    with torch.no_grad():  # off the start (B = 0), so that the policy is not the reference
        for key, p in hosted.peft.named_parameters():
            if f".{name}." in key:
                p.normal_(std=0.05)
    for unit, reference in zip(units, [(-40.0, -60.0), (-35.0, -50.0), (-45.0, -55.0)]):
        unit.reference = reference
    with gather.trainable([name], config.lora_dropout):
        loss = step_gradients(hosted, gather, [name], units, config)[0]
    joint = lora_grads(hosted, "g")
    hosted.peft.zero_grad(set_to_none=True)
    with gather.trainable([name], 0.0):
        logprobs = torch.stack([-_summed(hosted, gather, [name], row) for row in rows_of(units)]).view(-1, 2)
        refs = torch.tensor([u.reference for u in units], dtype=logprobs.dtype)
        direct = weighted_dpo_loss(logprobs[:, 0], logprobs[:, 1], refs[:, 0], refs[:, 1], torch.ones(3), 0.5)
        direct.backward()
    assert loss == pytest.approx(direct.item(), rel=1e-4)
    for key, grad in lora_grads(hosted, "g").items():
        assert torch.allclose(joint[key], grad, atol=1e-6, rtol=1e-4), key


def _summed(hosted, gather, names, row):
    token_loss, _ = _answer_token_losses(hosted, gather, names, [row])
    return token_loss.sum()


def margins(hosted, path, examples, config):
    """Each pair's summed log-prob of its chosen minus its rejected completion under the adapter at `path`, each
    scored as a plain conversation (not through the pair code under test)."""
    conversations = [{"messages": e["prompt"] + e[side]} for e in examples for side in ("chosen", "rejected")]
    rows, _ = answer_rows(hosted.tokenizer, Job("m", conversations, None, 0), 0, config, None)
    name = _attach(hosted, "measured", 0, path, config)
    gather = GatheredLoRA(hosted.peft)
    with gather.trainable([name], 0.0):
        logprobs = summed_logprobs(hosted, gather, [name], rows, config.pass_tokens)
    hosted.delete_adapter("measured")
    return [logprobs[id(chosen)] - logprobs[id(rejected)] for chosen, rejected in zip(rows[::2], rows[1::2])]


def test_training_on_pairs_raises_the_chosen_over_the_rejected_beside_a_supervised_adapter(tiny_model_config, tmp_path):
    hosted = host(tiny_model_config, device="cpu")
    config = TrainConfig(epochs=3, batch_size=2, learning_rate=5e-3, lora_r=4, beta=0.1)
    sft = [{"messages": p["prompt"] + p["chosen"]} for p in pairs()]
    jobs = [Job("dpo", pairs(), tmp_path / "dpo", 0), Job("sft", sft, tmp_path / "sft", 1)]
    metrics = train_adapters(hosted, jobs, config)
    assert metrics["dpo"]["examples"] == 4 and metrics["dpo"]["steps"] == 6 and metrics["dpo"]["loss"] < math.log(2)
    before = margins(hosted, None, pairs(), config)  # a fresh LoRA: the base model
    after = margins(hosted, tmp_path / "dpo", pairs(), config)
    assert all(a > b for a, b in zip(after, before))
    assert (tmp_path / "sft" / "adapter_config.json").exists() and hosted.peft is None


def test_the_first_step_starts_at_the_reference(tiny_model_config, tmp_path):
    """One step over every pair: its loss is DPO's at policy = reference, log 2, whatever the pairs' margins."""
    hosted = host(tiny_model_config, device="cpu")
    config = TrainConfig(epochs=1, batch_size=4, lora_r=4, beta=0.1)
    metrics = train_adapters(hosted, [Job("dpo", pairs(), tmp_path / "dpo", 0)], config)
    assert metrics["dpo"]["steps"] == 1 and metrics["dpo"]["loss"] == pytest.approx(math.log(2), abs=1e-5)


def test_a_job_mixing_pairs_and_conversations_is_refused(tiny_model_config, tmp_path):
    hosted = host(tiny_model_config, device="cpu")
    mixed = [*pairs(2), {"messages": pairs(1)[0]["prompt"] + pairs(1)[0]["chosen"]}]
    with pytest.raises(ModelError, match="mix preference pairs and conversations"):
        train_adapters(hosted, [Job("g", mixed, tmp_path / "g", 0)], TrainConfig(lora_r=4))
    assert not (tmp_path / "g").exists()
