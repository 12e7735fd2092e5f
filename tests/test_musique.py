"""MuSiQue loading and the official metrics, against hand-computed values."""

import json
import math

import pytest
from helpers import musique_task as task
from helpers import write_jsonl as write

from debate_ft.config import DatasetConfig
from debate_ft.errors import ConfigError, DataError
from debate_ft.tasks import get_task
from debate_ft.tasks.musique import (
    answer_em,
    answer_f1,
    extractive_answer,
    normalize_answer,
    score,
    short_answer,
    support_f1,
    token_f1,
)
from debate_ft.testing import musique_row as row


def test_normalisation_drops_case_punctuation_articles_and_spaces():
    assert normalize_answer("The  Quick, brown-fox!") == "quick brownfox"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("Theory") == "theory"  # 'the' only as a whole word


def test_token_f1_by_hand():
    # 2 shared tokens; precision 2/3, recall 2/2 -> F1 = 2 * (2/3) * 1 / (2/3 + 1) = 0.8
    assert token_f1("Ada King Lovelace", "Ada Lovelace") == pytest.approx(0.8)
    assert token_f1("the Lovelace", "Lovelace, Ada") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert token_f1("Babbage", "Ada Lovelace") == 0.0


def test_answer_metrics_take_the_best_alias():
    golds = ["Ada Lovelace", "Countess of Lovelace"]
    assert answer_em("countess of lovelace.", golds) == 1.0
    assert answer_em("Lovelace", golds) == 0.0
    # 'Lovelace' vs 'Ada Lovelace': p=1, r=1/2 -> 2/3; vs 'Countess of Lovelace': p=1, r=1/3 -> 1/2
    assert answer_f1("Lovelace", golds) == pytest.approx(2 / 3)


def test_empty_prediction_scores_zero_unless_gold_normalises_to_empty():
    assert answer_em("", ["Paris"]) == 0.0
    assert answer_f1("", ["Paris"]) == 0.0
    assert answer_f1("", ["The"]) == 1.0  # official rule: both empty after normalisation agree


def test_support_f1_by_hand():
    assert support_f1([1, 2, 5], [1, 2]) == pytest.approx(0.8)
    assert support_f1([2, 1], [1, 2]) == 1.0
    assert support_f1([], [1, 2]) == 0.0
    assert support_f1([3], [1, 2]) == 0.0


def test_short_answer_reads_the_first_line_without_labels():
    assert short_answer("Answer: Paris.\nBecause the documents say so.") == "Paris"
    assert short_answer("\n  The answer is Ada Lovelace\n") == "Ada Lovelace"
    assert short_answer("   ") == ""
    # the 135M model's favourite opening (issue 23's runs) left "to the question is: X" behind
    assert short_answer("The answer to the question is: Marie Curie.") == "Marie Curie"
    assert short_answer("The final answer to this question is Paris") == "Paris"
    assert short_answer("Answer to the question: 1893") == "1893"
    assert short_answer("Answers vary") == "Answers vary"  # a word that merely starts with "answer" stays


def test_score_counts_answers_on_answerable_questions_and_sufficiency_on_all(tmp_path):
    data = task(write(tmp_path / "dev.jsonl", [row(1), row(2, answerable=False)]), variant="full")
    questions = sorted(load_both(data), key=lambda q: q.id)
    predictions = [
        {"answer": "Countess 1", "support": [0, 1, 2], "answerable": True},  # EM 1, support F1 0.8
        {"answer": "whatever", "support": [], "answerable": True},  # unanswerable: only sufficiency counts
    ]
    result = score(questions, predictions, sufficiency=True)
    assert result["n"] == 2
    assert (result["answer_em"], result["answer_f1"]) == (1.0, 1.0)
    assert result["support_f1"] == pytest.approx(0.8)
    assert result["sufficiency_acc"] == 0.5
    assert math.isnan(result["answer_f1_se"])  # one answerable question: no standard error
    assert "sufficiency_acc" not in score(questions, predictions)
    assert "support_mrr" not in result  # no prediction ranked paragraphs


def test_score_gives_every_metric_a_standard_error_and_averages_retrieval_ranks(tmp_path):
    data = task(write(tmp_path / "dev.jsonl", [row(n) for n in range(3)]))
    questions = sorted(load_both(data), key=lambda q: q.id)
    predictions = [
        {"answer": "Ada Lovelace 0", "support": [0, 1], "answerable": True, "support_rr": 1.0},
        {"answer": "Ada", "support": [1], "answerable": True, "support_rr": 0.5},
        {"answer": "no", "support": [], "answerable": True, "support_rr": None},  # no hop ranked: not counted
    ]
    result = score(questions, predictions)
    assert result["answer_em"] == pytest.approx(1 / 3) and result["answer_em_se"] == pytest.approx(1 / 3)
    assert result["support_f1"] == pytest.approx((1 + 2 / 3) / 3) and result["support_f1_se"] > 0
    assert result["support_mrr"] == 0.75 and result["support_mrr_se"] == pytest.approx(0.25)


@pytest.mark.parametrize(
    "answer, want",
    [
        ("Springfield", "Springfield"),  # found as given
        ("Maker 3 Inc", "Maker 3"),  # the longest span a paragraph holds
        ("the city of Springfield", "city of Springfield"),  # 'the' alone would score nothing; longest wins
        ("Paris", "Paris"),  # no span found: unchanged
        ("", ""),
        ("the a", "the a"),  # spans of articles only normalise to nothing: never a replacement
        ("in the end", "in"),  # substring search, as the author's: 'in' is in the text
    ],
)
def test_extractive_answer_cuts_to_the_longest_span_a_paragraph_holds(answer, want):
    texts = ["The widget 3 is made by Maker 3 in Springfield.", "The city of Springfield lies on a river."]
    assert extractive_answer(answer, texts) == want


def test_one_file_is_split_by_id_hash_and_fields_are_read(tmp_path):
    data = task(write(tmp_path / "dev.jsonl", [row(n) for n in range(30)]))
    train, test = data.load_split("train"), data.load_split("test")
    assert len(train) + len(test) == 30 and train and test
    assert not {q.id for q in train} & {q.id for q in test}
    question = next(q for q in load_both(data) if q.id == "2hop__3_103")
    assert question.gold == "Ada Lovelace 3" and question.meta["aliases"] == ["Countess 3"]
    assert [p.idx for p in question.meta["paragraphs"] if p.supporting] == [0, 1]
    assert question.meta["answerable"] is True


def test_folder_prefers_official_train_file_and_a_dev_file_with_paragraphs(tmp_path):
    bare = {k: v for k, v in row(99).items() if k != "paragraphs"}
    write(tmp_path / "musique_ans_v1.0_dev_all_no_paragraphs.jsonl", [bare])
    write(tmp_path / "musique_ans_v1.0_dev_subset.jsonl", [row(n) for n in range(10)])
    data = task(tmp_path)
    assert len(load_both(data)) == 10  # the dev subset, hash-split
    write(tmp_path / "musique_ans_v1.0_train_subset5.jsonl", [row(n) for n in range(20, 25)])  # a subset serves
    assert len(data.load_split("train")) == 5 and len(data.load_split("test")) == 10
    write(tmp_path / "musique_ans_v1.0_train.jsonl", [row(n) for n in range(10, 13)])
    assert len(data.load_split("train")) == 3 and len(data.load_split("test")) == 10


def load_both(data):
    return data.load_split("train") + data.load_split("test")


def test_missing_field_and_malformed_line_name_file_and_line(tmp_path):
    broken = row(1)
    del broken["answer"]
    with pytest.raises(DataError, match=r"dev.jsonl:2: missing field answer"):
        load_both(task(write(tmp_path / "dev.jsonl", [row(0), broken])))
    bad = row(2)
    del bad["paragraphs"][1]["is_supporting"]
    with pytest.raises(DataError, match=r"p.jsonl:1 paragraph 1: missing field is_supporting"):
        load_both(task(write(tmp_path / "p.jsonl", [bad])))
    (tmp_path / "bad.jsonl").write_text(json.dumps(row(0)) + "\n{not json\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: malformed JSON"):
        load_both(task(tmp_path / "bad.jsonl"))


def test_musique_belongs_to_the_flow_command_only():
    with pytest.raises(ConfigError, match="for the flow command: python -m debate_ft flow"):
        get_task(DatasetConfig(name="musique"))
    with pytest.raises(ConfigError, match="flow command runs"):
        get_task(DatasetConfig(name="gsm"), flow=True)
    assert get_task(DatasetConfig(name="musique"), flow=True).name == "musique"


def test_full_twins_share_a_raw_id_and_get_distinct_ids(tmp_path):
    data = task(write(tmp_path / "full.jsonl", [row(1), row(1, answerable=False)]), variant="full")
    questions = {q.id: q for q in load_both(data)}
    assert set(questions) == {"2hop__1_101", "2hop__1_101#unanswerable"}  # one side of the split: same raw id
    assert questions["2hop__1_101#unanswerable"].meta["answerable"] is False
    assert questions["2hop__1_101"].meta["answerable"] is True


def test_a_repeated_id_is_refused_with_both_lines(tmp_path):
    data = task(write(tmp_path / "dev.jsonl", [row(1), row(2), row(1)]))
    with pytest.raises(DataError, match=r"dev.jsonl:3: id '2hop__1_101' repeats the row at .*dev.jsonl:1"):
        load_both(data)


@pytest.mark.parametrize(
    ("field", "value"), [("is_supporting", "false"), ("is_supporting", 0), ("is_supporting", None)]
)
def test_booleans_must_be_json_booleans(tmp_path, field, value):
    bad = row(1)
    bad["paragraphs"][1][field] = value
    with pytest.raises(DataError, match=rf"d.jsonl:1 paragraph 1: `{field}` must be true or false"):
        load_both(task(write(tmp_path / "d.jsonl", [bad])))


@pytest.mark.parametrize("value", ["false", 1, None])
def test_answerable_must_be_a_json_boolean_and_defaults_to_true(tmp_path, value):
    with pytest.raises(DataError, match=r"d.jsonl:1: `answerable` must be true or false"):
        load_both(task(write(tmp_path / "d.jsonl", [{**row(1), "answerable": value}])))
    missing = {key: item for key, item in row(1).items() if key != "answerable"}
    assert load_both(task(write(tmp_path / "e.jsonl", [missing])))[0].meta["answerable"] is True
