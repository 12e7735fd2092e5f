import pytest
from hand_records import rounds

from debate_ft.config import DatasetConfig
from debate_ft.metrics import outcomes, score
from debate_ft.tasks import get_task


def test_score_keeps_unanswered_questions_in_the_denominator():
    task = get_task(DatasetConfig(name="arithmetic"))
    records = [  # ten tokens a turn; metrics votes again, so the records' own votes are left unset
        rounds([["5", "4", "4"], ["5", "5", None]], id="q1", gold="5"),
        rounds([[None, None, None], [None, None, None]], id="q2", gold="7"),
    ]
    base, majority, debate = (score(records, task, m) for m in ("base", "majority", "debate"))
    assert base["accuracy"] == 0.5 and base["n"] == 2 and base["no_answer"] == 1
    assert majority["accuracy"] == 0.0 and majority["consensus"] == pytest.approx((2 / 3 + 0) / 2)
    assert debate["accuracy"] == 0.5 and debate["no_answer"] == 1 and debate["consensus"] == pytest.approx(1 / 3)
    # the tokens each method generated: agent 1's first turns; every first turn; every turn
    assert (base["gen_tokens"], majority["gen_tokens"], debate["gen_tokens"]) == (20, 60, 120)
    assert [row["correct"] for row in outcomes(records, task, "debate")] == [1, 0]
    assert score(records, task, "self_consistency") == majority  # one round of independent samples
