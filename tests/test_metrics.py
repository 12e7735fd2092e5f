import pytest

from debate_ft.config import DatasetConfig
from debate_ft.metrics import outcomes, score
from debate_ft.tasks import get_task


def turn(round_, agent, answer, tokens=10):
    return {"round": round_, "agent": agent, "answer": answer, "tokens": tokens}


def test_score_keeps_unanswered_questions_in_the_denominator():
    task = get_task(DatasetConfig(name="arithmetic"))
    records = [
        {
            "id": "q1",
            "gold": "5",
            "turns": [
                turn(1, 0, "5"),
                turn(1, 1, "4"),
                turn(1, 2, "4"),
                turn(2, 0, "5"),
                turn(2, 1, "5"),
                turn(2, 2, None),
            ],
        },
        {
            "id": "q2",
            "gold": "7",
            "turns": [
                turn(1, 0, None),
                turn(1, 1, None),
                turn(1, 2, None),
                turn(2, 0, None),
                turn(2, 1, None),
                turn(2, 2, None),
            ],
        },
    ]
    base, majority, debate = (score(records, task, m) for m in ("base", "majority", "debate"))
    assert base["accuracy"] == 0.5 and base["n"] == 2 and base["no_answer"] == 1
    assert majority["accuracy"] == 0.0 and majority["consensus"] == pytest.approx((2 / 3 + 0) / 2)
    assert debate["accuracy"] == 0.5 and debate["no_answer"] == 1 and debate["consensus"] == pytest.approx(1 / 3)
    # the tokens each method generated: agent 1's first turns; every first turn; every turn
    assert (base["gen_tokens"], majority["gen_tokens"], debate["gen_tokens"]) == (20, 60, 120)
    assert [row["correct"] for row in outcomes(records, task, "debate")] == [1, 0]
    assert score(records, task, "self_consistency") == majority  # one round of independent samples
