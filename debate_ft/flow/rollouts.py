"""One-step deviations: episode-level outcomes reduced to node-level preference pairs (Mineiro 2024).

At a chosen generative visit of the greedy episode, K alternative outputs are sampled from the prompt that
visit saw; each is continued to the end by the current (greedy) policy. A rollout's reward is compared with
the greedy episode's: the better of the two outputs at that visit is preferred, with weight |reward gap|.
Only greedy episodes deviate, so rollouts never spawn rollouts. The dense signals from MuSiQue's labels are
in signals.py.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from debate_ft.backends import Request
from debate_ft.flow import prompts
from debate_ft.flow.graph import Episode, Flow, user
from debate_ft.flow.signals import Pair
from debate_ft.seeds import derive_seed
from debate_ft.tasks.musique import answer_f1, golds

MIN_WEIGHT = 1e-6  # pairs lighter than this carry no preference (float noise of equal rewards)


def deviation_points(episode: Episode, nodes: Sequence[str], limit: int, seed: int) -> list[int]:
    """Indices of the visits to deviate: generative visits of `nodes`, a seeded sample of `limit` of them."""
    candidates = [i for i, visit in enumerate(episode.visits) if visit.node in nodes]
    if len(candidates) <= limit:
        return candidates
    return sorted(random.Random(seed).sample(candidates, limit))


def rollouts(flow: Flow, episode: Episode, seed: int) -> list[Episode]:
    """K sampled alternatives at each deviation point of a finished greedy episode, each run to the end.

    An alternative identical to the greedy output would replay the greedy episode: it is not rolled out."""
    if episode.deviation is not None:
        raise ValueError("rollouts never spawn rollouts: deviate greedy episodes only")
    settings = flow.settings
    points = deviation_points(episode, settings.deviate_nodes, settings.deviation_visits, derive_seed(seed, "points"))
    forks = []
    for node in dict.fromkeys(episode.visits[i].node for i in points):  # one sampling call per node
        wanted = [(i, k) for i in points if episode.visits[i].node == node for k in range(settings.alternatives)]
        requests = [Request(user(episode.visits[i].prompt), flow.node_adapters[node]) for i, _ in wanted]
        sampling = flow.sampling(node, settings.temperature)
        samples = flow.backend.generate(requests, sampling, derive_seed(seed, node), desc=f"{node} alternatives")
        for (index, k), sample in zip(wanted, samples):
            if sample.text != episode.visits[index].output:
                forks.append(episode.fork(index, sample.text, k))
    flow.run(forks, derive_seed(seed, "rollouts"), desc="rollouts")
    return forks


def episode_reward(episode: Episode) -> float:
    """Answer F1 against the answer and aliases (as the official metric, whatever the sufficiency node said:
    that call learns from its own label); an unanswerable question (MuSiQue-Full): 1 for calling it so."""
    prediction, question = episode.prediction(), episode.question
    if not question.meta["answerable"]:
        return float(not prediction["answerable"])
    return answer_f1(prediction["answer"], golds(question))


def reward_gaps(flow: Flow, greedy: Episode, forks: Sequence[Episode]) -> list[float]:
    """Each rollout's reward minus the greedy episode's, in [-1, 1]."""
    if flow.settings.reward == "evaluator":
        return evaluator_gaps(flow, greedy, forks)
    base = episode_reward(greedy)
    return [episode_reward(fork) - base for fork in forks]


def evaluator_gaps(flow: Flow, greedy: Episode, forks: Sequence[Episode]) -> list[float]:
    """Reward-free: the base model judges greedy vs rollout final answers, in both orders to cancel position
    bias; gap = 2 * P(rollout's answer is better) - 1."""
    question, mine = greedy.question.text, greedy.prediction()["answer"]
    texts = []
    for fork in forks:
        theirs = fork.prediction()["answer"]
        texts += [prompts.evaluator(question, mine, theirs), prompts.evaluator(question, theirs, mine)]
    requests = [Request(user(text), None) for text in texts for _ in range(2)]
    sums = [sum(row) for row in flow.backend.logprobs(requests, [prompts.FIRST, prompts.SECOND] * len(texts))]
    gaps = []
    for n in range(len(forks)):
        a_then_b, b_then_a = sums[4 * n : 4 * n + 2], sums[4 * n + 2 : 4 * n + 4]
        second = _sigmoid(a_then_b[1] - a_then_b[0])  # the rollout's answer shown second
        first = _sigmoid(b_then_a[0] - b_then_a[1])  # the rollout's answer shown first
        gaps.append(first + second - 1.0)
    return gaps


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def deviation_pairs(greedy: Episode, forks: Sequence[Episode], gaps: Sequence[float]) -> list[Pair]:
    """The better output at each deviated visit over the worse, weighted |gap|; zero-weight pairs dropped."""
    pairs = []
    for fork, gap in zip(forks, gaps):
        if abs(gap) < MIN_WEIGHT:
            continue
        index, _ = fork.deviation
        visit, changed = greedy.visits[index], fork.visits[index]
        better, worse = (changed.output, visit.output) if gap > 0 else (visit.output, changed.output)
        pairs.append(Pair(visit.node, visit.prompt, better, worse, abs(gap), "deviation"))
    return pairs
