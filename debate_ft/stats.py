"""Statistics over outcome vectors: a mean with its standard error, and paired comparisons of two methods on the
same questions (the difference in accuracy with a seeded paired bootstrap 95% confidence interval, and an exact
McNemar p-value). Pure functions; they import no task, so tasks and metrics alike can use them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_SAMPLES = 10_000


def mean_stderr(values: Sequence[float]) -> tuple[float, float]:
    """Mean and its standard error std/sqrt(n), with the sample std (ddof=1); NaN stderr for n < 2."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


@dataclass(frozen=True)
class Paired:
    n: int  # questions both methods answered
    difference: float  # accuracy(a) - accuracy(b)
    ci_low: float  # paired bootstrap 95% interval of the difference
    ci_high: float
    a_only: int  # questions a got right and b wrong (McNemar's discordant pairs)
    b_only: int
    p_mcnemar: float  # exact two-sided McNemar test (binomial on the discordant pairs)


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: under H0 each discordant question favours a or b with chance 1/2."""
    discordant = a_only + b_only
    from scipy.stats import binomtest  # here: every stage imports mean_stderr, only the report needs scipy

    return 1.0 if discordant == 0 else float(binomtest(a_only, discordant, 0.5).pvalue)


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    seed: int,
    samples: int = BOOTSTRAP_SAMPLES,
    clusters: Sequence | None = None,
) -> tuple[float, float]:
    """Percentile 95% interval of mean(a - b) over questions resampled with replacement (pairs kept whole).
    `clusters`: one key per pair; pairs of one key are resampled together (a question that several seeds asked
    is one draw, not several independent ones)."""
    differences = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    if clusters is None:
        means = differences[rng.integers(0, len(differences), size=(samples, len(differences)))].mean(axis=1)
    else:
        _, cluster = np.unique(np.asarray(clusters, dtype=str), return_inverse=True)
        sums, sizes = np.bincount(cluster, weights=differences), np.bincount(cluster)
        picks = rng.integers(0, len(sums), size=(samples, len(sums)))
        means = sums[picks].sum(axis=1) / sizes[picks].sum(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def compare(a: Sequence[float], b: Sequence[float], seed: int = 0, clusters: Sequence | None = None) -> Paired:
    """Method a vs method b, outcome vectors aligned question by question (1 = correct); `clusters` as in
    paired_bootstrap (McNemar's test still counts every pair)."""
    if len(a) != len(b) or not len(a):
        raise ValueError(f"paired outcomes need the same questions (got {len(a)} and {len(b)})")
    a_only = sum(1 for x, y in zip(a, b) if x and not y)
    b_only = sum(1 for x, y in zip(a, b) if y and not x)
    low, high = paired_bootstrap(a, b, seed, clusters=clusters)
    return Paired(
        n=len(a),
        difference=(sum(a) - sum(b)) / len(a),
        ci_low=low,
        ci_high=high,
        a_only=a_only,
        b_only=b_only,
        p_mcnemar=mcnemar_exact(a_only, b_only),
    )
