"""One-step deviation bookkeeping: rollout counts, no nested rollouts, rewards, pairs and their weights."""

import math

import pytest
from helpers import musique_task as task
from helpers import write_jsonl as write
from scripted_flow import greedy, make_flow

from debate_ft.flow.rollouts import (
    deviation_pairs,
    deviation_points,
    episode_reward,
    reward_gaps,
    rollouts,
)
from debate_ft.testing import musique_row as row

GENERATIVE = ["query", "answer", "final"]


@pytest.fixture
def data(tmp_path):
    return task(write(tmp_path / "dev.jsonl", [row(n) for n in range(12)]))


def test_every_generative_visit_gets_k_rollouts_and_rollouts_never_deviate(data):
    flow = make_flow(data, stop_after=2, max_hops=3, alternatives=3, deviation_visits=10, deviate_nodes=GENERATIVE)
    episode = greedy(flow, data)
    generative = [i for i, v in enumerate(episode.visits) if v.node in ("query", "answer", "final")]
    assert len(generative) == 4  # L: two queries, the answer, the final answer
    calls = len(flow.backend.calls)
    forks = rollouts(flow, episode, seed=1)
    assert len(forks) == 4 * 3  # L x K
    assert sorted(f.deviation for f in forks) == [(i, k) for i in generative for k in range(3)]
    assert ("generate", 2 * 3) in flow.backend.calls[calls:]  # both query visits' alternatives in one call
    for fork in forks:
        index, k = fork.deviation
        assert fork.visits[:index] == episode.visits[:index]
        assert fork.visits[index].alternative == k and fork.visits[index].output != episode.visits[index].output
        assert all(v.alternative is None for v in fork.visits[index + 1 :])  # the rest is the greedy policy
        assert fork.visits[-1].node == "final"
        with pytest.raises(ValueError, match="rollouts never spawn rollouts"):
            rollouts(flow, fork, seed=2)


def test_deviation_visits_caps_the_points_with_a_seeded_choice(data):
    flow = make_flow(data, stop_after=2, max_hops=3, alternatives=2, deviation_visits=2, deviate_nodes=GENERATIVE)
    episode = greedy(flow, data)
    assert len(rollouts(flow, episode, seed=1)) == 2 * 2
    points = deviation_points(episode, ["query", "answer", "final"], 2, seed=5)
    assert points == deviation_points(episode, ["query", "answer", "final"], 2, seed=5) and len(points) == 2
    assert deviation_points(episode, ["answer"], 2, seed=5) == [6]
    assert rollouts(make_flow(data, deviation_visits=0), episode, seed=1) == []


def test_pairs_prefer_the_better_output_weighted_by_reward_gap_and_drop_ties(data):
    flow = make_flow(data, stop_after=2, max_hops=3, deviate_nodes=["answer", "final"], alternatives=4)
    episode = greedy(flow, data)
    assert episode_reward(episode) == 0.0  # greedy answer 'plain' -> final 'nobody'
    forks = rollouts(flow, episode, seed=1)
    gaps = reward_gaps(flow, episode, forks)
    by_output = {f.visits[f.deviation[0]].output: gap for f, gap in zip(forks, gaps)}
    # answer alternatives 'good' lead to the gold final answer; 'bad k' and final guesses score 0
    assert by_output == {"good": 1.0, "bad 1": 0.0, "bad 3": 0.0, **{f"guess{k}": 0.0 for k in range(4)}}
    pairs = deviation_pairs(episode, forks, gaps)
    assert len(pairs) == 2  # the two 'good' samples; the five zero-weight pairs are dropped
    for pair in pairs:
        assert (pair.node, pair.chosen, pair.rejected, pair.weight) == ("answer", "good", "plain", 1.0)
        assert pair.prompt == episode.visits[6].prompt


def test_a_worse_deviation_makes_the_greedy_output_the_chosen_one(data):
    flow = make_flow(data, deviate_nodes=["answer"], alternatives=1)
    episode = greedy(flow, data)
    (fork,) = rollouts(flow, episode, seed=1)
    (pair,) = deviation_pairs(episode, [fork], [-0.25])
    assert (pair.chosen, pair.rejected, pair.weight) == ("plain", "good", 0.25)


def test_reward_free_evaluator_compares_final_answers_in_both_orders(data):
    flow = make_flow(data, deviate_nodes=["answer"], alternatives=2, reward="evaluator")
    episode = greedy(flow, data)
    forks = rollouts(flow, episode, seed=1)
    gaps = reward_gaps(flow, episode, forks)
    sigmoid3 = 1 / (1 + math.exp(-3.0))
    # 'good' -> 'Ada Lovelace 0' beats 'nobody' in both orders; 'bad 1' -> 'nobody' ties exactly
    assert gaps == pytest.approx([2 * sigmoid3 - 1, 0.0])
    assert [p.weight for p in deviation_pairs(episode, forks, gaps)] == pytest.approx([2 * sigmoid3 - 1])


def test_full_variant_rewards_the_answerability_call(tmp_path):
    data = task(write(tmp_path / "full.jsonl", [row(n, answerable=False) for n in range(6)]), variant="full")
    flow = make_flow(data, stop_after=1, max_hops=2)
    episode = greedy(flow, data)
    assert episode.prediction()["answerable"] is False and episode_reward(episode) == 1.0


def test_a_no_from_sufficiency_does_not_zero_the_answer_reward(tmp_path):
    """On an answerable question the answer is scored as the official metric does, whatever sufficiency said."""
    data = task(write(tmp_path / "full.jsonl", [row(n) for n in range(6)]), variant="full")
    flow = make_flow(data, stop_after=1, max_hops=1)  # finds only the widget page: sufficiency says No
    episode = greedy(flow, data)
    assert episode.prediction()["answerable"] is False
    final = next(v for v in episode.visits if v.node == "final")
    final.output = "Countess 0"  # an alias of the gold answer
    assert episode_reward(episode) == 1.0
