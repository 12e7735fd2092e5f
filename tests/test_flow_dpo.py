"""The weighted DPO loss by hand, and the online learner on the tiny random Llama."""

import math

import pytest
import torch

from debate_ft.backends import Request
from debate_ft.config import FlowConfig, TrainConfig
from debate_ft.flow.dpo import Learner, reference
from debate_ft.flow.signals import Pair
from debate_ft.preference import weighted_dpo_loss

PAIRS = [
    Pair("query", "Question: who wrote Hamlet?", "Shakespeare Hamlet author", "weather today", 1.0, "deviation"),
    Pair("stop", "Enough information? Answer Yes or No.", "Yes", "No", 0.5, "supervised"),
]


def log_sigmoid(x: float) -> float:
    return -math.log(1 + math.exp(-x))


def test_weighted_dpo_loss_matches_a_hand_computation():
    policy_chosen, policy_rejected = torch.tensor([-1.0, -2.0, -4.0]), torch.tensor([-3.0, -1.0, -4.0])
    ref_chosen, ref_rejected = torch.tensor([-1.5, -2.0, -4.0]), torch.tensor([-2.5, -1.5, -1.0])
    weights = torch.tensor([1.0, 0.5, 0.0])
    loss = weighted_dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, weights, beta=0.1)
    # margins: (-1+1.5)-(-3+2.5) = 1.0; (-2+2)-(-1+1.5) = -0.5; the third pair weighs nothing
    expected = -(1.0 * log_sigmoid(0.1 * 1.0) + 0.5 * log_sigmoid(0.1 * -0.5) + 0.0) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_completion_logprobs_carry_gradients_and_match_logprobs(tiny_backend):
    learner = Learner(tiny_backend, ["query"], FlowConfig(), TrainConfig(lora_r=4))
    prompts = ["Name a colour.", "Name a colour, please, now."]  # two prompt lengths in one batch
    requests = [Request([{"role": "user", "content": text}], "query") for text in prompts]
    completions = ["Blue", "Dark red"]
    rows = tiny_backend.completion_logprobs(requests, completions)
    assert all(row.requires_grad for row in rows)
    values = [pytest.approx(row.tolist(), abs=1e-5) for row in rows]
    assert tiny_backend.logprobs(requests, completions) == values
    tiny_backend._keeps_logits = False  # the vocabulary head over every position gives the same values
    assert tiny_backend.logprobs(requests, completions) == values
    assert learner.policy["query"] and all(not t.requires_grad for t in learner.refs["query"].values())


@pytest.mark.parametrize("optimizer", ["cocob", "adamw"])
def test_a_few_steps_raise_the_chosen_minus_rejected_margin(tiny_backend, optimizer):
    settings = FlowConfig(optimizer=optimizer, learning_rate=1e-2, beta=0.5)
    learner = Learner(tiny_backend, ["query", "stop"], settings, TrainConfig(lora_r=4))
    base = {n: p.detach().clone() for n, p in tiny_backend.hosted.peft.named_parameters() if "lora" not in n}
    refs = {key: t.detach().clone() for key, t in learner.refs["query"].items()}
    before = learner.loss(PAIRS)[1]
    losses = [learner.step(PAIRS) for _ in range(4)]
    after = learner.loss(PAIRS)[1]
    assert (after > before).all(), (before, after)
    assert losses[-1] < losses[0]
    assert learner.steps == 4
    for name, param in tiny_backend.hosted.peft.named_parameters():
        if "lora" not in name:
            assert torch.equal(param, base[name])  # the base model never moves
    assert all(torch.equal(t, refs[key]) for key, t in learner.refs["query"].items())  # nor do references


def test_reference_lerps_toward_the_policy_when_a_window_sets_a_new_best_f1(tiny_backend):
    learner = Learner(tiny_backend, ["query"], FlowConfig(ref_tau=0.25), TrainConfig(lora_r=4))
    learner.step(PAIRS[:1])
    key = next(k for k in learner.policy["query"] if "lora_B" in k)
    policy, ref = learner.policy["query"][key].detach().clone(), learner.refs["query"][key].detach().clone()
    assert not torch.equal(policy, ref)
    assert learner.update_reference(0.2) is True  # the first window is the best yet
    ref = ref + 0.25 * (policy - ref)
    assert torch.allclose(learner.refs["query"][key], ref)
    assert learner.update_reference(0.1) is False and learner.update_reference(0.2) is False  # not beyond 0.2
    assert torch.allclose(learner.refs["query"][key], ref)
    assert learner.update_reference(0.3) is True and learner.ref_updates == 2 and learner.best_f1 == 0.3
    assert torch.allclose(learner.refs["query"][key], ref + 0.25 * (policy - ref))
    assert learner.update_reference(None) is True and learner.best_f1 == 0.3  # reward-free: every window


def test_a_gold_target_raises_its_likelihood_and_mixes_with_preference_pairs(tiny_backend):
    target = Pair("final", "Who wrote Hamlet?", "William Shakespeare", None, 1.0, "gold")
    learner = Learner(tiny_backend, ["query", "stop", "final"], FlowConfig(), TrainConfig(lora_r=4))
    request = [Request([{"role": "user", "content": target.prompt}], "final")]
    before = sum(tiny_backend.logprobs(request, [target.chosen])[0])
    loss, margins = learner.loss([target])
    assert loss.item() == pytest.approx(-before, rel=1e-4) and margins.numel() == 0  # -weight * log p(gold)
    mixed, margins = learner.loss([*PAIRS, target])
    assert margins.numel() == 2
    for _ in range(3):
        learner.step([*PAIRS, target])
    assert sum(tiny_backend.logprobs(request, [target.chosen])[0]) > before


def test_a_yes_no_pair_is_scored_by_its_first_token_as_the_flow_decides(tiny_backend):
    learner = Learner(tiny_backend, ["query", "stop"], FlowConfig(), TrainConfig(lora_r=4))
    stop, query = PAIRS[1], PAIRS[0]
    requests = [Request([{"role": "user", "content": stop.prompt}], "stop")]
    yes, no = tiny_backend.choice_logprobs(requests, ["Yes", "No"])[0]
    _, margins = learner.loss([stop, query])
    assert margins[0].item() == pytest.approx(yes - no, abs=1e-4)  # the end-of-turn tokens do not count
    asked = Request([{"role": "user", "content": query.prompt}], "query")
    chosen, rejected = tiny_backend.logprobs([asked, asked], [query.chosen, query.rejected])
    assert margins[1].item() == pytest.approx(sum(chosen) - sum(rejected), abs=1e-4)  # generative: every token


def test_gradient_norm_is_clipped_per_step(tiny_backend, monkeypatch):
    norms = []
    real = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(
        torch.nn.utils, "clip_grad_norm_", lambda params, limit: norms.append(limit) or real(params, limit)
    )
    Learner(tiny_backend, ["query"], FlowConfig(clip=0.5), TrainConfig(lora_r=4)).step(PAIRS[:1])
    Learner(tiny_backend, ["stop"], FlowConfig(clip=0), TrainConfig(lora_r=4)).step(PAIRS[1:])
    assert norms == [0.5]


def test_save_and_load_restore_adapters_optimiser_and_counters(tiny_backend, tiny_model_config, tmp_path):
    from debate_ft.backends.hf import HFBackend
    from debate_ft.models import host

    learner = Learner(tiny_backend, ["query"], FlowConfig(), TrainConfig(lora_r=4))
    learner.step(PAIRS[:1])
    learner.update_reference(0.5)
    learner.update_reference(0.4)
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    learner.save(folder)
    again = Learner(HFBackend(host(tiny_model_config, device="cpu")), ["query"], FlowConfig(), TrainConfig(), folder)
    assert (again.steps, again.best_f1, again.ref_updates) == (1, 0.5, 1)
    for key, tensor in learner.policy["query"].items():
        assert torch.equal(again.policy["query"][key], tensor) and again.policy["query"][key].requires_grad
    assert reference("query") in again.hosted.loaded()
    state, restored = learner.optimizer.state_dict()["state"], again.optimizer.state_dict()["state"]
    assert state.keys() == restored.keys()
    assert all(torch.equal(state[i]["reward"], restored[i]["reward"]) for i in state)
