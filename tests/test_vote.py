from debate_ft.answers import numbers_equal
from debate_ft.vote import clusters, majority


def test_majority_clusters_equivalent_answers():
    vote = majority(["5", "5.0", "6"], numbers_equal)
    assert vote.answer == "5" and vote.count == 2 and vote.members == (0, 1)
    assert vote.consensus == 2 / 3


def test_tie_goes_to_the_earliest_agent():
    assert majority(["7", "8"], numbers_equal).answer == "7"
    assert majority(["8", "7", "7", "8"], numbers_equal).answer == "8"
    assert majority([None, "9", "3"], numbers_equal).answer == "9"


def test_no_answer_never_wins_or_counts():
    vote = majority([None, None, "4"], numbers_equal)
    assert vote.answer == "4" and vote.count == 1 and vote.consensus == 1 / 3
    nothing = majority([None, None], numbers_equal)
    assert nothing.answer is None and nothing.consensus == 0.0


def test_clusters_order_by_first_member():
    assert clusters(["2", None, "1", "2.0", "1"], numbers_equal) == [[0, 3], [2, 4]]
