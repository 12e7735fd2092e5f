"""The flow's loop, stop rule, retrievers and lockstep batching, on a scripted stand-in model."""

import json

import pytest
from helpers import musique_task as task
from helpers import write_jsonl as write
from scripted_flow import make_flow, questions

from debate_ft.config import FlowConfig
from debate_ft.errors import ConfigError
from debate_ft.flow.graph import Episode, Visit, active_nodes, search_query
from debate_ft.flow.run import kept_by_hops
from debate_ft.testing import musique_row as row


@pytest.fixture
def data(tmp_path):
    return task(write(tmp_path / "dev.jsonl", [row(n) for n in range(12)]))


@pytest.fixture
def full_data(tmp_path):
    return task(write(tmp_path / "full.jsonl", [row(n, answerable=n % 2 == 0) for n in range(12)]), variant="full")


def nodes(episode):
    return [(v.node, v.output) if v.node in ("stop", "sufficiency") else v.node for v in episode.visits]


def test_loops_until_stop_says_yes(data):
    flow = make_flow(data, stop_after=2, max_hops=4)
    episode = flow.run([Episode(questions(data)[0])], seed=0)[0]
    assert nodes(episode) == [
        "query", "relevance", ("stop", "No"), "query", "relevance", ("stop", "Yes"), "answer", "final"
    ]  # fmt: skip
    assert episode.scratchpad() == [0, 1]  # relevance picked the two GOLD paragraphs, best first
    assert [v.hop for v in episode.visits] == [1, 1, 1, 2, 2, 2, 2, 2]
    prediction = episode.prediction()
    assert prediction == {"answer": "nobody", "support": [0, 1], "answerable": True, "support_rr": 1.0}


def test_max_hops_ends_the_loop_without_asking_stop(data):
    flow = make_flow(data, stop_after=99, max_hops=2)
    episode = flow.run([Episode(questions(data)[0])], seed=0)[0]
    assert nodes(episode) == ["query", "relevance", ("stop", "No"), "query", "relevance", "answer", "final"]
    assert make_flow(data, stop_after=1, max_hops=3).run([Episode(questions(data)[0])], 0)[0].hops == 1


def test_full_variant_asks_sufficiency_before_answering(full_data):
    flow = make_flow(full_data, stop_after=1, max_hops=2)
    unanswerable = next(q for q in questions(full_data) if not q.meta["answerable"])
    episode = flow.run([Episode(unanswerable)], seed=0)[0]
    assert nodes(episode) == ["query", "relevance", ("stop", "Yes"), ("sufficiency", "No"), "answer", "final"]
    assert episode.prediction()["answerable"] is False
    assert active_nodes(flow.settings, full=True)[-3:] == ["sufficiency", "answer", "final"]


def test_bm25_retriever_picks_by_query_terms_without_the_model(data):
    flow = make_flow(data, stop_after=99, max_hops=1, retriever="bm25")
    episode = flow.run([Episode(questions(data)[0])], seed=0)[0]
    relevance = episode.visits[1]
    # the greedy query echoes the question ('Who founded the maker of widget 0?'): both pages it names
    # outscore the distractors, the widget's (which says 'widget' twice and 'maker' once) most
    assert relevance.picked == 0 and min(relevance.scores[0], relevance.scores[1]) > relevance.scores[2] == 0
    assert ("logprobs", 8) not in flow.backend.calls  # no Yes/No scoring of paragraphs
    assert "relevance" not in active_nodes(flow.settings, full=False)


def test_episodes_advance_in_lockstep_one_call_per_node_and_step(data):
    flow = make_flow(data, stop_after=2, max_hops=3)
    batch = [Episode(q) for q in questions(data)[:3]]
    flow.run(batch, seed=0)
    alone = make_flow(data, stop_after=2, max_hops=3)
    singles = [alone.run([Episode(q)], seed=0)[0] for q in questions(data)[:3]]
    assert [e.record() for e in batch] == [e.record() for e in singles]
    # 2 hops of query, relevance, stop, then answer and final: 8 calls for 3 episodes, each 3x wider
    assert len(flow.backend.calls) == 8 == len(alone.backend.calls) / 3
    assert ("logprobs", 3 * 4 * 2) in flow.backend.calls  # 3 episodes x 4 paragraphs x (Yes, No)


def test_trace_records_are_json_with_every_visit(data):
    episode = make_flow(data).run([Episode(questions(data)[0])], seed=0)[0]
    record = json.loads(json.dumps(episode.record(episode=7)))
    assert record["episode"] == 7 and record["gold"] == ["Ada Lovelace 0", "Countess 0"]
    assert [v["node"] for v in record["visits"]] == [v.node for v in episode.visits]
    assert record["visits"][1]["scores"] and record["visits"][2]["scores"] == {"Yes": -3.0, "No": 0.0}


def test_flow_settings_are_validated():
    with pytest.raises(ConfigError, match="flow.deviate_nodes"):
        FlowConfig(deviate_nodes=["stop"])
    with pytest.raises(ConfigError, match="flow.retriever"):
        FlowConfig(retriever="dense")


def test_search_query_is_the_first_line_the_query_node_wrote():
    assert search_query("\n  widget 3 maker \nQuestion: more rambling") == "widget 3 maker"
    assert search_query("") == ""


def hand_episode(question, *visits):
    return Episode(question, [Visit(node, 1, "", output, scores, picked) for node, output, scores, picked in visits])


def test_support_rr_averages_each_hops_rank_of_its_best_supporting_candidate(data):
    question = questions(data)[0]  # paragraphs 0 and 1 support
    episode = hand_episode(
        question,
        ("relevance", "", {0: -1.0, 2: 0.5, 1: -2.0, 3: -3.0}, 2),  # a distractor first: rank 2
        ("relevance", "", {0: 3.0, 1: 3.0, 3: 1.0}, 0),  # a tie goes to paragraph order: rank 1
        ("final", "Ada", {}, None),
    )
    assert episode.support_rr() == pytest.approx((1 / 2 + 1) / 2)
    assert hand_episode(question, ("final", "Ada", {}, None)).support_rr() is None
    assert episode.prediction()["support_rr"] == pytest.approx(0.75)


def test_an_extractive_prediction_cuts_the_answer_to_a_span_of_the_found_paragraphs(data):
    question = questions(data)[0]  # paragraph 0: 'GOLD The widget 0 is made by Maker 0 in Springfield.'
    episode = hand_episode(question, ("relevance", "", {0: 1.0}, 0), ("final", "Maker 0 Inc.", {}, None))
    assert episode.prediction()["answer"] == "Maker 0 Inc"
    assert episode.prediction(extractive=True)["answer"] == "Maker 0"
    record = episode.record(extractive=True)
    assert (record["answer"], record["raw_answer"]) == ("Maker 0", "Maker 0 Inc")
    unfound = hand_episode(question, ("relevance", "", {2: 1.0}, 2), ("final", "Maker 0", {}, None))
    assert unfound.prediction(extractive=True)["answer"] == "Maker 0"  # only the scratchpad's paragraphs count


def test_the_training_stream_keeps_questions_by_hop_count_the_same_in_every_run(tmp_path):
    rows = [row(n) for n in range(200)]  # two supporting paragraphs each
    for r in rows[:50]:
        r["paragraphs"][2]["is_supporting"] = True  # three hops
    questions_ = sorted(task(write(tmp_path / "dev.jsonl", rows)).load_split("train"), key=lambda q: q.id)
    three = {q.id for q in questions_ if sum(p.supporting for p in q.meta["paragraphs"]) == 3}
    assert [q.id for q in questions_ if kept_by_hops([0.0, 1.0, 1.0])(q)] == [q.id for q in questions_ if q.id in three]
    half = [q.id for q in questions_ if kept_by_hops([0.5, 0.5, 0.5])(q)]
    assert half == [q.id for q in questions_ if kept_by_hops([0.5, 0.5, 0.5])(q)]  # a fixed draw per id
    assert 0.3 < len(half) / len(questions_) < 0.7
    with pytest.raises(ConfigError, match="flow.hop_keep"):
        FlowConfig(hop_keep=[0.0, 0.0, 0.0])
