"""Online weighted DPO over the flow's per-node LoRA adapters, each against its own reference adapter.

Every node trains its adapter `<node>`; its reference `ref_<node>` starts as a copy and is soft-updated
(ref += tau * (policy - ref)) whenever the running answer F1 beats its best so far. Log-probabilities are
summed over the completion, with gradients through the peft model for the policy and without for the
reference. One optimiser (COCOB from `parameterfree`, or AdamW) spans all nodes' adapters; a batch may mix
nodes, since each row names its adapter.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from debate_ft.backends import Request, Trainable
from debate_ft.config import FlowConfig, TrainConfig
from debate_ft.flow.graph import user
from debate_ft.flow.rollouts import Pair
from debate_ft.runs import read_json
from debate_ft.train import lora_config


def weighted_dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    weights: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Mean over pairs of -w * log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r))), on summed log-probs."""
    margins = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    return -(weights * F.logsigmoid(beta * margins)).mean()


def reference(node: str) -> str:
    return f"ref_{node}"


class Learner:
    def __init__(
        self,
        engine: Trainable,
        nodes: Sequence[str],
        settings: FlowConfig,
        train: TrainConfig,
        checkpoint: Path | None = None,
    ):
        self.engine, self.hosted, self.nodes, self.settings = engine, engine.hosted, list(nodes), settings
        for node in self.nodes:
            if checkpoint is None:
                self.hosted.add_adapter(node, lora_config(train))
                self.hosted.add_adapter(reference(node), lora_config(train))
            else:
                self.hosted.load_adapter(node, checkpoint / node, trainable=True)
                self.hosted.load_adapter(reference(node), checkpoint / reference(node))
        # the hosted model stays in eval mode (mixed-adapter batches need it), so LoRA dropout is off:
        # online DPO here is deterministic given the pairs
        self.policy = {node: self._tensors(node) for node in self.nodes}
        self.refs = {node: self._tensors(reference(node)) for node in self.nodes}
        # peft's set_adapter leaves only the newest adapter trainable; this learner trains every node at once
        for node in self.nodes:
            for tensor in self.policy[node].values():
                tensor.requires_grad_(True)
            for tensor in self.refs[node].values():
                tensor.requires_grad_(False)
        params = [tensor for node in self.nodes for tensor in self.policy[node].values()]
        self.optimizer = self._optimizer(params)
        self.best_f1: float | None = None
        self.steps = self.ref_updates = 0
        if checkpoint is None:
            self.soft_update(1.0)  # references start as exact copies of the fresh adapters
        else:
            self.optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", weights_only=True))
            fields = {"best_f1": (float, type(None)), "steps": int, "ref_updates": int}
            state = read_json(checkpoint / "learner.json", fields)
            self.best_f1, self.steps, self.ref_updates = state["best_f1"], state["steps"], state["ref_updates"]

    def _tensors(self, name: str) -> dict[str, torch.nn.Parameter]:
        """An adapter's LoRA tensors keyed by their name without the adapter, so policy and ref line up."""
        marker = f".{self.hosted.internal_name(name)}."
        return {n.replace(marker, "."): p for n, p in self.hosted.peft.named_parameters() if marker in n}

    def _optimizer(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        if self.settings.optimizer == "cocob":
            from parameterfree import COCOB

            return COCOB(params)
        return torch.optim.AdamW(params, lr=self.settings.learning_rate)

    def summed_logprobs(self, pairs: Sequence[Pair], adapter) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed completion log-probs of chosen and rejected outputs, each row under adapter(node)."""
        requests = [Request(user(p.prompt), adapter(p.node)) for p in pairs] * 2
        rows = self.engine.completion_logprobs(requests, [p.chosen for p in pairs] + [p.rejected for p in pairs])
        sums = torch.stack([row.sum() for row in rows])
        return sums[: len(pairs)], sums[len(pairs) :]

    def loss(self, pairs: Sequence[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        """The weighted DPO loss of a batch (with gradients) and the policy's chosen-minus-rejected margins."""
        with torch.no_grad():
            ref_chosen, ref_rejected = self.summed_logprobs(pairs, reference)
        chosen, rejected = self.summed_logprobs(pairs, lambda node: node)
        weights = torch.tensor([p.weight for p in pairs], device=chosen.device)
        loss = weighted_dpo_loss(chosen, rejected, ref_chosen, ref_rejected, weights, self.settings.beta)
        return loss, (chosen - rejected).detach()

    def step(self, pairs: Sequence[Pair]) -> float:
        """One optimiser step on a batch of pairs; returns the loss before the step."""
        self.optimizer.zero_grad(set_to_none=True)
        loss, _ = self.loss(pairs)
        loss.backward()
        self.optimizer.step()
        self.steps += 1
        return loss.item()

    @torch.no_grad()
    def soft_update(self, tau: float) -> None:
        for node in self.nodes:
            for key, tensor in self.policy[node].items():
                self.refs[node][key].lerp_(tensor, tau)

    def update_reference(self, running_f1: float) -> bool:
        """Soft-update every reference if the running answer F1 beats the best seen at an earlier check."""
        improved = self.best_f1 is not None and running_f1 > self.best_f1
        if improved:
            self.soft_update(self.settings.ref_tau)
            self.ref_updates += 1
        if self.best_f1 is None or improved:
            self.best_f1 = running_f1
        return improved

    def save(self, folder: Path) -> None:
        """Adapters, references, optimiser state and counters into `folder` (the caller makes it atomic)."""
        for node in self.nodes:
            self.hosted.save_adapter(node, folder / node)
            self.hosted.save_adapter(reference(node), folder / reference(node))
        torch.save(self.optimizer.state_dict(), folder / "optimizer.pt")
        state = {"best_f1": self.best_f1, "steps": self.steps, "ref_updates": self.ref_updates}
        (folder / "learner.json").write_text(json.dumps(state))
