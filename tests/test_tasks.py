import json

import pytest
from helpers import write_jsonl

from debate_ft.config import DatasetConfig
from debate_ft.errors import DataError
from debate_ft.tasks import get_task
from debate_ft.tasks.arithmetic import evaluate


def gsm_rows_in_thousands(n, offset=0):
    return [
        {"question": f"Q{i}: how many?", "answer": f"work...\n#### {1000 * i:,}"} for i in range(offset, offset + n)
    ]


def task(name, **kwargs):
    return get_task(DatasetConfig(name=name, **kwargs))


def test_gsm_reads_official_format_and_strips_thousands(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", gsm_rows_in_thousands(5))
    write_jsonl(tmp_path / "test.jsonl", gsm_rows_in_thousands(3, offset=10))
    test = task("gsm", path=str(tmp_path), test_size=10).load("test")
    assert sorted(q.gold for q in test) == ["10000", "11000", "12000"]
    train = task("gsm", path=str(tmp_path), train_size=2).load("train")
    assert len(train) == 2 and {q.id for q in train}.isdisjoint({q.id for q in test})


def test_single_file_is_split_without_overlap(tmp_path):
    path = write_jsonl(tmp_path / "all.jsonl", gsm_rows_in_thousands(200))
    config = dict(path=str(path), train_size=1000, test_size=1000)
    train, test = task("gsm", **config).load("train"), task("gsm", **config).load("test")
    assert len(train) + len(test) == 200 and 20 < len(test) < 60
    assert {q.text for q in train}.isdisjoint({q.text for q in test})


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text(json.dumps(gsm_rows_in_thousands(1)[0]) + "\n{not json\n")
    with pytest.raises(DataError, match=r"test.jsonl:2: malformed JSON"):
        task("gsm", path=str(tmp_path)).load("test")


def test_missing_field_is_named(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", gsm_rows_in_thousands(1))
    write_jsonl(tmp_path / "test.jsonl", [{"question": "no answer field"}])
    with pytest.raises(DataError, match="test.jsonl:1: missing field answer"):
        task("gsm", path=str(tmp_path)).load("test")


def test_gsm_answer_without_marker_is_an_error(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", gsm_rows_in_thousands(1))
    write_jsonl(tmp_path / "test.jsonl", [{"question": "q", "answer": "42"}])
    with pytest.raises(DataError, match="####"):
        task("gsm", path=str(tmp_path)).load("test")


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        task("gsm", path=str(tmp_path / "nope")).load("test")


def test_math_gold_is_the_last_brace_matched_box(tmp_path):
    rows = [
        {"problem": f"P{i}", "solution": f"first \\boxed{{1}} then \\boxed{{\\frac{{{i}}}{{2}}}}"} for i in range(60)
    ]
    rows.append({"problem": "with answer", "solution": "\\boxed{9}", "answer": "3"})
    write_jsonl(tmp_path / "test.jsonl", rows)
    questions = task("math", path=str(tmp_path), train_size=100, test_size=100).load("train")
    questions += task("math", path=str(tmp_path), train_size=100, test_size=100).load("test")
    golds = {q.text: q.gold for q in questions}
    assert golds["P7"] == "\\frac{7}{2}" and golds["with answer"] == "3"
    assert task("math").is_correct("3.5", "\\frac{7}{2}")


def test_math_without_box_is_an_error(tmp_path):
    write_jsonl(tmp_path / "test.jsonl", [{"problem": "p", "solution": "no box"}] * 10)
    with pytest.raises(DataError, match="no `answer` field"):  # the ten equal rows all hash to the test split
        task("math", path=str(tmp_path), train_size=10, test_size=10).load("test")


def test_mmlu_reads_subject_csvs(tmp_path):
    folder = tmp_path / "test"
    folder.mkdir()
    lines = ["question,choice0,choice1,choice2,choice3,answer"]
    lines += [f'"Q{i}, with comma",0,4,"two, three",6,{i % 4}' for i in range(40)]
    (folder / "algebra_test.csv").write_text("\n".join(lines) + "\n")
    config = dict(path=str(tmp_path), train_size=100, test_size=100)
    test = task("mmlu", **config).load("test")
    train = task("mmlu", **config).load("train")
    assert len(test) + len(train) == 40
    question = test[0]
    assert "A) 0, B) 4, C) two, three, D) 6" in question.text
    assert question.gold in "ABCD" and question.meta["subject"] == "algebra"
    with pytest.raises(DataError, match="unknown subjects physics"):
        task("mmlu", subjects=["physics"], **config).load("test")


def test_mmlu_bad_answer_is_an_error(tmp_path):
    (tmp_path / "x_test.csv").write_text("question,choice0,choice1,choice2,choice3,answer\nq,a,b,c,d,7\n")
    with pytest.raises(DataError, match="answer must be an integer 0-3"):
        task("mmlu", path=str(tmp_path)).load("test")


def test_arithmetic_is_seeded_correct_and_disjoint():
    config = dict(operands=6, max_value=29, train_size=50, test_size=20)
    first, again = task("arithmetic", **config).load("test"), task("arithmetic", **config).load("test")
    assert first == again and len(first) == 20
    train = task("arithmetic", **config).load("train")
    assert {q.id for q in train}.isdisjoint({q.id for q in first})
    for question in first:
        assert str(eval(question.id)) == question.gold  # Python's precedence is the reference
    assert evaluate((3, 4, 5, 1, 2, 6)) == 3 + 4 * 5 + 1 - 2 * 6


@pytest.mark.parametrize("operands, top", [(6, 29), (2, 19)])
def test_arithmetic_test_questions_come_from_the_seed_and_never_meet_any_train_set(operands, top):
    def split(seed, name, size):
        return {q.id for q in task("arithmetic", operands=operands, max_value=top, question_seed=seed,
                                   train_size=size, test_size=size).load(name)}  # fmt: skip

    tests = {seed: split(seed, "test", 40) for seed in (0, 1, 2)}
    trains = {seed: split(seed, "train", 150) for seed in (0, 1, 2)}
    assert tests[0] != tests[1] != tests[2] and split(1, "test", 40) == tests[1]
    assert all(test.isdisjoint(train) for test in tests.values() for train in trains.values())


def test_easy_arithmetic_stops_when_the_space_is_used_up():
    questions = task("arithmetic", operands=2, max_value=3, test_size=100).load("test")
    assert 0 < len(questions) < 16 and all("+" in q.id for q in questions)
