"""Conformity measured from hand-made debates: flips, adoptions and the oracle gap, counted by hand."""

import math

import pytest
from hand_records import rounds

from debate_ft.conformity import flags, moves, rows


def correct(answer, gold):
    return answer is not None and answer == gold


def equal(a, b):
    return a == b


RECORDS = [
    # agent 0 right -> wrong by adopting agent 1's answer; agent 1 stays wrong; agent 2 wrong -> right (its own new)
    rounds([["5", "4", "3"], ["4", "4", "5"]], gold="5", correct=False),
    # nobody moves; two right
    rounds([["7", "7", "1"], ["7", "7", "1"]], gold="7", correct=True),
    # an agent with no answer takes another's (wrong) answer; an answer -> no answer is a change, not an adoption
    rounds([[None, "2", "9"], ["2", None, "9"]], gold="8", correct=False),
]


def test_moves_of_one_debate():
    found = moves(RECORDS[0], correct, equal)
    assert [(m.right_before, m.right_after, m.changed, m.adopted) for m in found] == [
        (True, False, True, True),  # 5 -> 4, agent 1's round-1 answer
        (False, False, False, False),
        (False, True, True, True),  # 3 -> 5: agent 0 said 5 in round 1, so it adopted
    ]
    assert [(m.changed, m.adopted) for m in moves(RECORDS[2], correct, equal)] == [
        (True, True),  # None -> 2 (agent 1's)
        (True, False),  # 2 -> None
        (False, False),
    ]


def test_round_rows_count_flips_adoptions_and_the_oracle_gap():
    (row,) = rows(RECORDS, correct, equal)
    assert (row["round"], row["critic_turns"]) == (2, 9)
    # right before: agent 0 of q1, agents 0 and 1 of q2 -> one flipped to wrong
    assert (row["right_to_wrong"], row["right_to_wrong_rate"]) == (1, pytest.approx(1 / 3))
    # wrong before: 6 turns -> one flipped to right
    assert (row["wrong_to_right"], row["wrong_to_right_rate"]) == (1, pytest.approx(1 / 6))
    assert row["adopted_share"] == pytest.approx(3 / 9)
    # round 2: some agent right on q1 (agent 2) and q2; the vote right on q2 only (q1's vote is 4)
    assert (row["oracle_acc"], row["vote_acc"]) == (pytest.approx(2 / 3), pytest.approx(1 / 3))
    assert row["oracle_gap"] == pytest.approx(1 / 3) and row["oracle_gap_se"] > 0


def test_a_one_round_debate_has_no_conformity_rows_and_rates_without_turns_are_nan():
    assert rows([rounds([["1", "2"]], gold="1")], correct, equal) == []
    (row,) = rows([rounds([["1", "1"], ["2", "1"]], gold="9")], correct, equal)
    assert math.isnan(row["right_to_wrong_rate"]) and row["wrong_to_right_rate"] == 0


def test_browser_flags():
    assert flags(RECORDS[0], correct, equal) == {
        "right_to_wrong": True,
        "wrong_to_right": True,
        "adopted": True,
        "oracle_missed": True,  # agent 2 is right in the last round, the vote is not
    }
    assert not any(flags(RECORDS[1], correct, equal).values())
