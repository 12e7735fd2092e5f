"""Diversity metrics: known values on hand-built transcripts, the packaged embedder, and KL / NLL on the tiny
random Llama (an agent that is the base has KL exactly 0; a trained one has KL > 0)."""

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hand_records import record, turn

from debate_ft.config import DatasetConfig, DiversityConfig, TrainConfig
from debate_ft.diversity import (
    Diversity,
    dissimilarity,
    likelihood_summary,
    load_embedder,
    measure,
    score_society,
    scored_turns,
)
from debate_ft.errors import ConfigError, ModelError
from debate_ft.tables import DIVERSITY_FILE
from debate_ft.tasks import get_task
from debate_ft.train import lora_config, train_adapter
from debate_ft.transcript import Record, conversation

TASK = get_task(DatasetConfig(name="arithmetic"))


def transcript(adapters, answers=None, questions=2, rounds=2, persona=False) -> list[Record]:
    """Records whose agent i speaks with adapters[i] in every round; answers[q][agent] in the last round."""
    records = []
    for q in range(questions):
        turns = []
        for round_ in range(1, rounds + 1):
            for agent, adapter in enumerate(adapters):
                answer = answers[q][agent] if answers and round_ == rounds else str(q + agent)
                turns.append(
                    turn(
                        round_,
                        agent,
                        answer,
                        adapter=adapter,
                        system=f"You are agent {agent}." if persona else None,
                        prompt=f"What is {q}+{agent}? (round {round_})",
                        response=f"Agent {agent} thinks {q}+{agent} = {answer}.",
                    )
                )
        records.append(record(turns, id=str(q), gold=str(q)))
    return records


def vectors(table):
    return lambda texts: np.array([table[text] for text in texts], dtype=float)


def same_vector(texts):
    return np.ones((len(texts), 2))


def test_dissimilarity_known_values():
    embed = vectors({"a": [1, 0], "b": [0, 3], "c": [-2, 0], "d": [5, 5]})
    assert dissimilarity([["a", "b"]], embed) == pytest.approx(1.0)  # orthogonal
    assert dissimilarity([["a", "c"]], embed) == pytest.approx(2.0)  # opposite
    assert dissimilarity([["a", "b", "c"], ["d"]], embed) == pytest.approx((1 + 2 + 1) / 3)  # "d": no pair
    assert dissimilarity([["a", "b"], ["a", "a"]], embed) == pytest.approx(0.5)  # mean over questions
    assert math.isnan(dissimilarity([["a"]], embed)) and math.isnan(dissimilarity([], embed))


@pytest.fixture(scope="module")
def minilm():
    return load_embedder(None)


def test_packaged_embedder_identical_responses_have_zero_dissimilarity(minilm):
    same = "The answer is 12 because 5 + 7 = 12."
    assert dissimilarity([[same] * 3, [same] * 2], minilm) == pytest.approx(0.0, abs=1e-6)
    different = [[same, "I like green tea in the morning.", "Paris is the capital of France."]]
    assert dissimilarity(different, minilm) > 0.3
    assert minilm(["x"]).shape == (1, 384)


def test_consensus_and_row_on_hand_built_transcripts(fake_backend):
    answers = [["5", "5", "4"], [None, None, None], ["7", "7", "7"]]
    records = transcript(["gen0", None, None], answers, questions=3)
    row, kl, matrix = measure(records, TASK, fake_backend, same_vector, questions=2)
    assert row["consensus"] == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert (row["n"], row["n_scored"], row["agents"]) == (3, 2, 3)
    assert row["dissimilarity"] == pytest.approx(0.0, abs=1e-12)
    assert list(kl["responses"]) == [4, 4, 4] and matrix.shape == (3, 3)
    assert kl["kl_token"][1] == kl["kl_token"][2] == 0.0  # agents 1 and 2 are the base model
    assert row["nll_unit"] == "token"  # one base model: one tokenizer


def test_turns_are_scored_in_their_authors_context_by_each_agent_of_that_round():
    (original,) = transcript(["gen0", "gen1"], questions=1, persona=True)
    critic_turn = replace(original.turns[2], adapter="crit0")  # agent 0 criticises with its critic adapter
    records = [replace(original, turns=(*original.turns[:2], critic_turn, *original.turns[3:]))]
    turns = list(scored_turns(records))
    critic = turns[2]
    expected = (("crit0", "You are agent 0.", None), ("gen1", "You are agent 1.", None))
    assert (critic.author, critic.scorers) == (0, expected)
    own = conversation(records[0].turns[:1], 0)[1:]  # its round-1 question and answer, no system message
    assert list(critic.messages[:2]) == own and critic.messages[-1]["content"].endswith("(round 2)")
    assert critic.system == "You are agent 0." and critic.response.startswith("Agent 0")


def test_likelihood_summary():
    matrix = np.array([[1.0, 2.0, 4.0], [3.0, 1.0, 5.0], [2.0, 6.0, 1.0]])
    summary = likelihood_summary(matrix)
    assert summary["nll_self"] == 1.0 and summary["nll_cross"] == pytest.approx(22 / 6)
    assert summary["nll_pair_gap"] == pytest.approx((abs(5 - 3) + abs(4 - 2) + abs(2 - 6)) / 3)
    assert math.isnan(likelihood_summary(np.array([[2.0]]))["nll_cross"])


def test_agents_that_are_the_base_model_have_kl_exactly_zero(tiny_backend, tmp_path):
    hosted = tiny_backend.hosted
    hosted.add_adapter("fresh", lora_config(TrainConfig(lora_r=4)))  # peft starts LoRA B at zero
    hosted.save_adapter("fresh", tmp_path / "zero")
    hosted.delete_adapter("fresh")
    tiny_backend.load_adapter("zero", tmp_path / "zero")
    scores = score_society(tiny_backend, transcript([None, "zero"]))
    assert list(scores.kl()["kl_token"]) == [0.0, 0.0] and list(scores.kl()["kl_response"]) == [0.0, 0.0]
    matrix = scores.nll()
    assert np.all(matrix[0] == matrix[1]) and np.all(matrix > 0)  # two copies of one model score alike


@pytest.fixture
def trained(tiny_backend, tmp_path):
    """The tiny backend serving `a`, an adapter trained on agent 0's turns of `transcript`."""
    records = transcript(["a", None, None])
    examples = [{"messages": conversation(r.turns, 0)} for r in records]
    config = TrainConfig(epochs=3, batch_size=2, learning_rate=1e-2, lora_r=4)
    train_adapter(tiny_backend.hosted, examples, tmp_path / "a", config, seed=0)
    tiny_backend.load_adapter("a", tmp_path / "a")
    return tiny_backend, records


def test_trained_agent_drifts_from_base_and_prefers_its_own_turns(trained):
    backend, records = trained
    scores = score_society(backend, records)
    kl, matrix = scores.kl(), scores.nll()
    assert kl["kl_token"][0] > 0.05 and kl["kl_response"][0] > kl["kl_token"][0]
    assert kl["kl_token"][1] == kl["kl_token"][2] == 0.0
    assert matrix[0, 0] < matrix[1, 0] and matrix[0, 0] < matrix[2, 0]  # agent 0 finds its own turns likelier
    assert np.all(matrix[1] == matrix[2])  # agents 1 and 2 are both the base
    summary = likelihood_summary(matrix)
    assert summary["nll_cross"] > summary["nll_self"]

    shared = score_society(backend, transcript(["a", "a", "a"]))  # one adapter for all: a collapsed society
    collapsed = likelihood_summary(shared.nll())
    assert collapsed["nll_self"] == pytest.approx(collapsed["nll_cross"], abs=1e-12)
    assert np.all(shared.kl()["kl_token"] > 0)


def test_stage_writes_once_and_never_duplicates(fake_backend, tmp_path, monkeypatch):
    records = transcript(["gen0", "gen1", None])
    monkeypatch.setattr("debate_ft.diversity.load_embedder", lambda name: same_vector)
    stage = Diversity(DiversityConfig(questions=1), TASK, fake_backend, tmp_path, "multiagent_ft")
    stage.run(1, records)
    first = pd.read_csv(tmp_path / DIVERSITY_FILE)
    assert len(first) == 1 and first["n_scored"][0] == 1 and (tmp_path / "iter1" / "kl.csv").exists()
    monkeypatch.setattr("debate_ft.diversity.measure", lambda *a: pytest.fail("measured twice"))
    stage.run(1, records)
    assert pd.read_csv(tmp_path / DIVERSITY_FILE).equals(first)


def test_config_bounds_the_scored_questions():
    with pytest.raises(ConfigError, match="diversity.questions"):
        DiversityConfig(questions=0)


def test_a_missing_embedding_model_is_a_one_line_error(tmp_path):
    with pytest.raises(ModelError, match="diversity.embedding_model unset"):
        load_embedder(str(tmp_path / "no-such-model"))
