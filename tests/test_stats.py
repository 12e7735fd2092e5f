"""Statistics on hand-made outcome vectors whose answers are known in closed form."""

import math

import pytest

from debate_ft.stats import compare, mcnemar_exact, mean_stderr, paired_bootstrap


def test_mean_stderr_uses_sample_std():
    mean, stderr = mean_stderr([1.0, 0.0, 1.0, 0.0])
    assert mean == 0.5 and stderr == pytest.approx(math.sqrt((4 * 0.25 / 3) / 4))
    assert math.isnan(mean_stderr([1.0])[1]) and math.isnan(mean_stderr([])[0])


def test_mcnemar_exact_is_the_two_sided_binomial_on_discordant_pairs():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(5, 0) == pytest.approx(2 * 0.5**5)  # 0.0625
    assert mcnemar_exact(0, 10) == pytest.approx(2 * 0.5**10)
    assert mcnemar_exact(8, 2) == pytest.approx(2 * sum(c for c in (1, 10, 45)) / 2**10)  # P(X<=2), X~B(10,.5)


def test_identical_methods_differ_by_exactly_zero():
    a = [1, 0] * 10
    result = compare(a, a)
    assert (result.difference, result.ci_low, result.ci_high, result.p_mcnemar) == (0.0, 0.0, 0.0, 1.0)


def test_a_method_right_everywhere_the_other_is_wrong():
    result = compare([1] * 20, [0] * 20)
    assert result.difference == 1.0 and (result.ci_low, result.ci_high) == (1.0, 1.0)
    assert (result.a_only, result.b_only) == (20, 0) and result.p_mcnemar == pytest.approx(2 * 0.5**20)


def test_bootstrap_interval_matches_the_normal_approximation_and_is_seeded():
    a, b = [1] * 50 + [0] * 50, [0] * 100  # differences: half 1, half 0 -> mean 0.5, se 0.05
    low, high = paired_bootstrap(a, b, seed=3)
    assert low == pytest.approx(0.5 - 1.96 * 0.05, abs=0.02) and high == pytest.approx(0.5 + 1.96 * 0.05, abs=0.02)
    assert paired_bootstrap(a, b, seed=3) == (low, high)


def test_pairs_keep_questions_together():
    # b is a shuffled a: unpaired the two look alike, paired every question disagrees
    a, b = [1, 0] * 15, [0, 1] * 15
    result = compare(a, b)
    assert result.difference == 0 and (result.a_only, result.b_only) == (15, 15) and result.ci_low < 0 < result.ci_high


def test_unequal_lengths_are_refused():
    with pytest.raises(ValueError, match="same questions"):
        compare([1, 0], [1])


def test_a_clustered_bootstrap_resamples_a_question_with_all_its_pairs():
    a = [1, 1, 1, 0, 0, 1, 0, 1, 0, 0] * 3
    b = [0, 1, 0, 0, 1, 1, 0, 0, 0, 0] * 3
    # one pair per cluster, clusters in order: exactly the plain bootstrap
    singles = [f"q{i:02d}" for i in range(len(a))]
    assert paired_bootstrap(a, b, seed=3, clusters=singles) == paired_bootstrap(a, b, seed=3)
    # the same 10 questions asked three times (three seeds): 10 independent draws, not 30, so a wider interval
    repeated = [f"q{i}" for i in range(10)] * 3
    low, high = paired_bootstrap(a, b, seed=3, clusters=repeated)
    naive_low, naive_high = paired_bootstrap(a, b, seed=3)
    assert high - low > 1.4 * (naive_high - naive_low)
