"""Dense training signals from MuSiQue's labels, as in the author's code (pmineiro/musique-off, qdecompdyn.py).

Besides its one-step deviations, each greedy training episode yields, for the nodes in flow.supervise:
- final: the gold answer as a supervised target at the final visit (a log-likelihood term, no rejected output);
  for a small model this is the densest signal, since nearly every rollout's answer ties at F1 0;
- query: an instant retrieval reward. At each query visit one alternative query is sampled and retrieved with;
  the query whose top paragraph is supporting is preferred over one whose top paragraph is not;
- relevance (model retriever): each hop, the best-ranked supporting paragraph is labelled Yes and the best-ranked
  distractor No, when both are among the candidates;
- stop: Yes once every supporting paragraph is in the scratchpad, else No;
- sufficiency (MuSiQue-Full): whether the question is answerable.
An unanswerable question gives only its sufficiency label: its support marks describe its answerable twin.
Everything here reads gold data, so reward-free mode (flow.reward=evaluator) makes none of it (FlowConfig.signals).
"""

from __future__ import annotations

from dataclasses import dataclass

from debate_ft.backends import Request
from debate_ft.flow import prompts
from debate_ft.flow.graph import Episode, Flow, active_nodes, user
from debate_ft.seeds import derive_seed
from debate_ft.tasks.musique import gold_support


@dataclass(frozen=True)
class Pair:
    """A preference of `chosen` over `rejected` at a node's prompt, or (rejected None) a supervised target."""

    node: str
    prompt: str
    chosen: str
    rejected: str | None
    weight: float
    source: str  # "deviation", "supervised" or "gold"


def supervised_pairs(flow: Flow, episode: Episode, seed: int) -> list[Pair]:
    """Every label signal of a finished greedy episode, in visit order per kind."""
    nodes = set(flow.settings.signals()) & set(active_nodes(flow.settings, flow.full))
    weight = flow.settings.supervised_weight
    if not nodes or weight <= 0:
        return []
    answerable = episode.question.meta["answerable"]
    pairs = []
    if "query" in nodes and answerable:
        pairs += query_pairs(flow, episode, derive_seed(seed, "query signal"))
    for index, visit in enumerate(episode.visits):
        if visit.node not in nodes or visit.node in ("query", "final"):
            continue
        if visit.node == "relevance" and answerable:
            pairs += relevance_pairs(flow, episode, index)
        elif visit.node == "stop" and answerable:
            found = {v.picked for v in episode.visits[:index] if v.picked is not None}
            pairs.append(yes_no(visit.node, visit.prompt, set(gold_support(episode.question)) <= found, weight))
        elif visit.node == "sufficiency":
            pairs.append(yes_no(visit.node, visit.prompt, answerable, weight))
    final = next((visit for visit in episode.visits if visit.node == "final"), None)
    if "final" in nodes and answerable and final is not None:
        pairs.append(Pair("final", final.prompt, episode.question.gold, None, weight, "gold"))
    return pairs


def yes_no(node: str, prompt: str, label: bool, weight: float) -> Pair:
    chosen, rejected = (prompts.YES, prompts.NO) if label else (prompts.NO, prompts.YES)
    return Pair(node, prompt, chosen, rejected, weight, "supervised")


def relevance_pairs(flow: Flow, episode: Episode, index: int) -> list[Pair]:
    """Yes for the best-ranked supporting candidate and No for the best-ranked distractor of one hop."""
    visit, paragraphs = episode.visits[index], flow.paragraphs(episode)
    ranked = sorted(visit.scores, key=lambda idx: -visit.scores[idx])  # stable: ties keep paragraph order
    best = {
        label: next((idx for idx in ranked if paragraphs[idx].supporting == label), None) for label in (True, False)
    }
    if None in best.values():
        return []
    question, weight = episode.question.text, flow.settings.supervised_weight
    return [
        yes_no("relevance", flow.relevance_prompt(question, visit.prompt, paragraphs[idx]), label, weight)
        for label, idx in best.items()
    ]


def query_pairs(flow: Flow, episode: Episode, seed: int) -> list[Pair]:
    """One sampled alternative per query visit, retrieved with like the greedy query; where exactly one of the
    two puts a supporting paragraph on top, it is preferred (weight: the reward gap, 1)."""
    points = [i for i, visit in enumerate(episode.visits) if visit.node == "query"]
    requests = [Request(user(episode.visits[i].prompt), flow.node_adapters["query"]) for i in points]
    sampling = flow.sampling("query", flow.settings.temperature)
    samples = flow.backend.generate(requests, sampling, seed, desc="query alternatives")
    forks = [
        episode.fork(i, sample.text, 0) for i, sample in zip(points, samples) if sample.text != episode.visits[i].output
    ]
    if forks:
        flow.step("relevance", forks, seed)  # one retrieval per alternative query, batched
    paragraphs, pairs = flow.paragraphs(episode), []
    for fork in forks:
        index = fork.deviation[0]
        greedy_top = paragraphs[episode.visits[index + 1].picked].supporting
        alternative_top = paragraphs[fork.visits[-1].picked].supporting
        if greedy_top == alternative_top:
            continue
        mine, theirs = episode.visits[index].output, fork.visits[index].output
        chosen, rejected = (mine, theirs) if greedy_top else (theirs, mine)
        pairs.append(Pair("query", episode.visits[index].prompt, chosen, rejected, 1.0, "supervised"))
    return pairs
