"""Flow runs against arm A (their own untrained evaluation), paired over test questions, from hand-made traces."""

import pytest
from helpers import write_jsonl as write

from debate_ft.flow.compare import comparisons


def record(n: int, answer: str, support: list[int], rr: float | None, answerable: bool = True) -> dict:
    return {
        "id": f"q{n}",
        "gold": [f"Ada {n}", f"Countess {n}"],
        "gold_support": [0, 1],
        "gold_answerable": answerable,
        "answer": answer,
        "support": support,
        "support_rr": rr,
    }


def test_a_run_is_paired_with_its_untrained_evaluation_question_by_question(tmp_path):
    run = tmp_path / "arm"
    write(
        run / "flow" / "test_trace_ep0.jsonl",
        [record(0, "nobody", [2], 0.5), record(1, "Ada 1", [0, 1], 1.0), record(2, "x", [], None),
         record(3, "Ada 3", [0], 1.0, answerable=False)],
    )  # fmt: skip
    write(
        run / "flow" / "test_trace_ep4.jsonl",
        [record(0, "Ada 0", [0, 2], 1.0), record(1, "Ada 1", [0, 1], 1.0), record(2, "Countess", [1], None),
         record(3, "nobody", [], None, answerable=False)],
    )  # fmt: skip
    write(run / "flow" / "train_trace.jsonl", [
        {"episode": e, "kind": kind, "reward": reward}
        for e, reward in enumerate([0.0, 0.0, 1.0, 0.5]) for kind in ("greedy", "rollout")
    ])  # fmt: skip
    rows = {row["measure"]: row for row in comparisons([("arm", run)])}
    f1 = rows["answer_f1"]  # the unanswerable question is not scored
    assert (f1["episodes"], f1["n"], f1["A"]) == (4, 3, pytest.approx(1 / 3))
    assert f1["trained"] == pytest.approx((1 + 1 + 2 / 3) / 3)  # 'Countess' vs 'Countess 2': F1 2/3
    assert f1["difference"] == pytest.approx(f1["trained"] - f1["A"])
    assert f1["ci_low"] <= f1["difference"] <= f1["ci_high"]
    assert rows["answer_em"]["difference"] == pytest.approx(1 / 3)
    assert rows["support_f1"]["A"] == pytest.approx(1 / 3) and rows["support_f1"]["trained"] == pytest.approx(
        (0.5 + 1 + 2 / 3) / 3
    )
    assert rows["support_rr"]["n"] == 2 and rows["support_rr"]["difference"] == pytest.approx(0.25)  # q2 unranked
    progressive = rows["progressive_f1_2nd_half"]
    assert (progressive["n"], progressive["trained"]) == (2, 0.75)  # episodes 2 and 3, greedy only


def test_a_run_without_its_own_untrained_evaluation_pairs_with_another_runs(tmp_path):
    two = [record(0, "x", [], None), record(1, "y", [], None)]
    write(tmp_path / "no_a" / "flow" / "test_trace_ep4.jsonl", two)
    assert comparisons([("no_a", tmp_path / "no_a")]) == []  # no A anywhere
    write(tmp_path / "only_a" / "flow" / "test_trace_ep0.jsonl", [record(0, "Ada 0", [0, 1], 1.0), *two[1:]])
    write(tmp_path / "no_a" / "flow" / "train_trace.jsonl", [{"episode": 0, "kind": "greedy", "reward": 0.0}])
    rows = comparisons([("only_a", tmp_path / "only_a"), ("no_a", tmp_path / "no_a")])
    assert {row["run"] for row in rows} == {"no_a"}  # only_a trained nothing
    f1 = next(row for row in rows if row["measure"] == "answer_f1")
    assert (f1["n"], f1["A"], f1["trained"]) == (2, 0.5, 0.0)
