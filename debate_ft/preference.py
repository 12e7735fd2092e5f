"""The DPO objective (Rafailov et al.) on summed completion log-probabilities, shared by the flow's online DPO
and the society's preference training (ft_method=multiagent_dpo)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


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


def dpo_row_weights(
    policy: Sequence[tuple[float, float]], reference: Sequence[tuple[float, float]], beta: float
) -> tuple[float, list[tuple[float, float]]]:
    """The DPO loss of pairs (mean over them) at these (chosen, rejected) log-probs, and each completion's weight
    w such that the gradient of sum(w * -log p) over the completions is the loss's gradient: the loss's
    derivative in each log-prob, negated. It lets a training loop run a pair's two rows in different passes."""
    logprobs = torch.tensor(policy, dtype=torch.float64, requires_grad=True)
    fixed = torch.tensor(reference, dtype=torch.float64)
    loss = weighted_dpo_loss(
        logprobs[:, 0], logprobs[:, 1], fixed[:, 0], fixed[:, 1], torch.ones(len(policy), dtype=torch.float64), beta
    )
    loss.backward()
    return loss.item(), [(-c, -r) for c, r in logprobs.grad.tolist()]
