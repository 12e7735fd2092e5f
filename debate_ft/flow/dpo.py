"""Online weighted DPO over the flow's per-node LoRA adapters, each against its own reference adapter.

Every node trains its adapter `<node>`; its reference `ref_<node>` starts as a copy and is soft-updated
(ref += tau * (policy - ref)) every flow.ref_every training episodes when that window's answer F1 is the best
window yet (in reward-free mode, which reads no gold, at every window). Log-probabilities are summed over the
completion (a Yes/No node's: its first token only), with gradients through the peft model for the policy and
without for the reference. A pair without a rejected output is a supervised target (the gold answer): its term
is -weight * log p(chosen). One optimiser (COCOB from `parameterfree`, or AdamW) spans all nodes' adapters, with
the gradient norm clipped (flow.clip); a batch may mix nodes, since each row names its adapter.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from debate_ft.backends import Request, Trainable
from debate_ft.config import FlowConfig, TrainConfig
from debate_ft.flow.graph import CHOICE_NODES, user
from debate_ft.flow.signals import Pair
from debate_ft.preference import weighted_dpo_loss
from debate_ft.runs import read_json
from debate_ft.train import lora_config


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
        self.parameters = [tensor for node in self.nodes for tensor in self.policy[node].values()]
        self.optimizer = self._optimizer(self.parameters)
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

            return COCOB(params, alpha=self.settings.cocob_alpha)
        return torch.optim.AdamW(params, lr=self.settings.learning_rate)

    def summed_logprobs(self, node_prompts: Sequence[Pair], completions: Sequence[str], adapter) -> torch.Tensor:
        """Summed log-probs of each completion after its pair's prompt, each row under adapter(node); a Yes/No
        node's reply counts by its first token alone, as the flow decides by it."""
        requests = [Request(user(p.prompt), adapter(p.node)) for p in node_prompts]
        rows = self.engine.completion_logprobs(requests, list(completions))
        return torch.stack(
            [row[:1].sum() if p.node in CHOICE_NODES else row.sum() for p, row in zip(node_prompts, rows)]
        )

    def loss(self, pairs: Sequence[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's loss (with gradients), the mean over its rows of the weighted DPO terms of preference
        pairs and -weight * log p(target) of supervised targets; and the preference pairs' policy margins."""
        preferences = [p for p in pairs if p.rejected is not None]
        targets = [p for p in pairs if p.rejected is None]
        terms, margins = [], torch.zeros(0)
        if preferences:
            n = len(preferences)
            outputs = [p.chosen for p in preferences] + [p.rejected for p in preferences]
            with torch.no_grad():
                ref = self.summed_logprobs(preferences * 2, outputs, reference)
            policy = self.summed_logprobs(preferences * 2, outputs, lambda node: node)
            weights = torch.tensor([p.weight for p in preferences], device=policy.device)
            dpo = weighted_dpo_loss(policy[:n], policy[n:], ref[:n], ref[n:], weights, self.settings.beta)
            terms.append(dpo * n)  # the mean over preference pairs, back to their sum
            margins = (policy[:n] - policy[n:]).detach()
        if targets:
            logprobs = self.summed_logprobs(targets, [p.chosen for p in targets], lambda node: node)
            weights = torch.tensor([p.weight for p in targets], device=logprobs.device)
            terms.append(-(weights * logprobs).sum())
        return sum(terms) / len(pairs), margins

    def step(self, pairs: Sequence[Pair]) -> float:
        """One optimiser step on a batch, its gradient norm clipped to flow.clip; returns the loss before it."""
        self.optimizer.zero_grad(set_to_none=True)
        loss, _ = self.loss(pairs)
        loss.backward()
        if self.settings.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.settings.clip)
        self.optimizer.step()
        self.steps += 1
        return loss.item()

    @torch.no_grad()
    def soft_update(self, tau: float) -> None:
        for node in self.nodes:
            for key, tensor in self.policy[node].items():
                self.refs[node][key].lerp_(tensor, tau)

    def update_reference(self, window_f1: float | None) -> bool:
        """Soft-update every reference if the window's answer F1 beats every earlier window's (None: reward-free
        mode knows no F1, and every window updates)."""
        improved = window_f1 is None or self.best_f1 is None or window_f1 > self.best_f1
        if improved:
            self.soft_update(self.settings.ref_tau)
            self.ref_updates += 1
            self.best_f1 = window_f1 if window_f1 is not None else self.best_f1
        return improved

    def save(self, folder: Path) -> None:
        """Adapters, references, optimiser state and counters into `folder` (the caller makes it atomic)."""
        for node in self.nodes:
            self.hosted.save_adapter(node, folder / node)
            self.hosted.save_adapter(reference(node), folder / reference(node))
        torch.save(interned(self.optimizer.state_dict()), folder / "optimizer.pt")
        state = {"best_f1": self.best_f1, "steps": self.steps, "ref_updates": self.ref_updates}
        (folder / "learner.json").write_text(json.dumps(state))


def interned(value):
    """`value` with every dict key that is a string interned. Pickle writes a string once per object, so state
    created in this process (literal keys) and state loaded from a checkpoint (fresh key objects) would save
    to different bytes; interned, a resumed run saves byte-identical checkpoints."""
    if isinstance(value, dict):
        return {sys.intern(k) if isinstance(k, str) else k: interned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interned(item) for item in value]
    return value
