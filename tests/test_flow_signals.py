"""The dense signals from MuSiQue's labels: which pairs and targets a greedy episode yields, with what labels
and weights, and that reward-free mode yields none (it may read no gold)."""

import pytest
from helpers import musique_task as task
from helpers import write_jsonl as write
from scripted_flow import ScriptedBackend, greedy, make_flow, questions

from debate_ft.config import FlowConfig
from debate_ft.flow.graph import NODES, Flow
from debate_ft.flow.signals import supervised_pairs
from debate_ft.testing import musique_row as row


@pytest.fixture
def data(tmp_path):
    return task(write(tmp_path / "dev.jsonl", [row(n) for n in range(12)]))


def summary(pairs):
    return [(p.node, p.chosen, p.rejected, p.source) for p in pairs]


def test_each_hop_labels_the_best_ranked_support_and_distractor_and_final_learns_the_gold_answer(data):
    flow = make_flow(data, stop_after=2, max_hops=3, supervised_weight=0.5)
    episode = greedy(flow, data)  # hop 1 picks paragraph 0, hop 2 paragraph 1 (both GOLD), then stops
    pairs = supervised_pairs(flow, episode, seed=0)
    assert summary(pairs) == [
        ("relevance", "Yes", "No", "supervised"),  # hop 1: paragraph 0, the best-ranked supporting one
        ("relevance", "No", "Yes", "supervised"),  # hop 1: paragraph 2, the best-ranked distractor
        ("stop", "No", "Yes", "supervised"),  # one of two supporting paragraphs found
        ("relevance", "Yes", "No", "supervised"),  # hop 2: paragraph 1
        ("relevance", "No", "Yes", "supervised"),  # hop 2: paragraph 2 again
        ("stop", "Yes", "No", "supervised"),
        ("final", "Ada Lovelace 0", None, "gold"),  # no query pair: the scripted retriever ignores the query
    ]
    assert all(p.weight == 0.5 for p in pairs)
    question = questions(data)[0].text
    assert pairs[0].prompt.startswith(f"Question: {question}\nSearch query: {question}\nDocument: Widget 0: GOLD")
    assert "Document: Weather:" in pairs[1].prompt
    final = next(v for v in episode.visits if v.node == "final")
    assert pairs[-1].prompt == final.prompt


class QueryBackend(ScriptedBackend):
    """Sampled queries name the weather, so bm25 retrieves a distractor with them."""

    def _reply(self, text, k, sampled):
        if sampled and "search query for the next fact" in text:
            return "rains autumn rivers weather"
        return super()._reply(text, k, sampled)


def test_a_query_whose_top_paragraph_is_supporting_beats_one_whose_top_is_a_distractor(data):
    settings = FlowConfig(max_hops=2, retriever="bm25", supervise=["query"])
    flow = Flow(QueryBackend(stop_after=2), data, settings, dict.fromkeys(NODES))
    episode = greedy(flow, data)
    before = list(episode.visits)
    pairs = supervised_pairs(flow, episode, seed=0)
    queries = [v for v in episode.visits if v.node == "query"]
    assert len(pairs) == len(queries) == 2
    for pair, visit in zip(pairs, queries):
        assert (pair.node, pair.prompt, pair.chosen, pair.rejected) == (
            "query",
            visit.prompt,
            visit.output,
            "rains autumn rivers weather",
        )
        assert pair.weight == 1.0
    assert episode.visits == before  # the alternatives' retrievals did not touch the greedy episode


def test_unanswerable_questions_give_only_their_sufficiency_label(tmp_path):
    data = task(write(tmp_path / "full.jsonl", [row(n, answerable=False) for n in range(6)]), variant="full")
    flow = make_flow(data, stop_after=1, max_hops=2)
    assert summary(supervised_pairs(flow, greedy(flow, data), seed=0)) == [("sufficiency", "No", "Yes", "supervised")]


def test_no_signal_in_reward_free_mode_or_when_switched_off(data):
    episode = greedy(make_flow(data, max_hops=2), data)
    assert supervised_pairs(make_flow(data, reward="evaluator"), episode, seed=0) == []
    assert supervised_pairs(make_flow(data, supervise=[]), episode, seed=0) == []
    assert supervised_pairs(make_flow(data, supervised_weight=0.0), episode, seed=0) == []
    only = make_flow(data, supervise=["stop", "final"])
    assert [p.node for p in supervised_pairs(only, episode, seed=0)] == ["stop", "final"]  # hop 2 ends the loop
