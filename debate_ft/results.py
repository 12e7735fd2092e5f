"""The paper-style results table (`report --table`): one row per method in the order of Subramaniam et al.'s
Table 1, one column per (dataset, iteration), each cell accuracy ± standard error with its n; and every
comparison the table implies as a paired difference (bootstrap 95% CI, exact McNemar p) on the same questions.

Iteration 0 holds the baselines (scored from the base society's test debate); iteration k >= 1 holds each
fine-tuning method's society, scored by its debate (and by self-consistency where `iterate extra_scorings=`
asked for it: the equal-compute baseline of the fine-tuned agents). Runs with different agent counts get one row
per count (Table 4), runs on different base models (mixed societies) one row per society's bases, and transfer
runs (`eval_dataset`) one row per training dataset. Runs at several seeds fill
one cell with the mean over seeds and its range; each comparison is then made per seed and pooled.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from debate_ft.methods import FINE_TUNINGS, SCORINGS
from debate_ft.seeds import derive_seed
from debate_ft.stats import compare

BASELINES = {s.name: s.title for s in SCORINGS.values() if s.title}
FINE_TUNED = {m.name: m.title for m in FINE_TUNINGS.values()}
ORDER = [*BASELINES.values(), *FINE_TUNED.values()]
OURS = FINE_TUNED["multiagent_ft"]
REFERENCES = (BASELINES["debate"], BASELINES["majority"])  # every row is compared with these, and with ours
SELF_CONSISTENCY = SCORINGS["self_consistency"]
CONSISTENCY_SUFFIX = ", " + SELF_CONSISTENCY.title.lower()  # a fine-tuned society's self-consistency row
POOLED = "pooled"  # the seed column of a comparison made over every seed's questions together


def column(dataset: str, iteration: int) -> str:
    return f"{dataset} it{iteration}"


def _present(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column] if column in frame.columns else pd.Series(pd.NA, index=frame.index, dtype="object")


def labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of metrics.csv or outcomes.csv (collected by `report`) with the table's `row` and `column`;
    rows the table does not show (a fine-tuned society's base and majority scores) are dropped."""
    frame = frame[frame["split"] == "test"].copy()
    ft_method = _present(frame, "ft_method").map(FINE_TUNED)
    baseline = frame["iteration"] == 0
    consistency = (ft_method + CONSISTENCY_SUFFIX).where(frame["method"] == SELF_CONSISTENCY.name)
    fine_tuned = ft_method.where(frame["method"] == "debate", consistency)
    names = frame["method"].map(BASELINES).where(baseline, fine_tuned)
    # a fine-tuned society's self-consistency row goes right below its debate row
    order = {name: i for i, name in enumerate(ORDER)}
    frame["order"] = names.map(order).fillna(ft_method.map(order) + 0.5)
    agents = _present(frame, "n_agents")
    if agents.nunique() > 1:  # Table 4: agent counts side by side (Base is one agent whatever the society)
        names = names.where(frame["method"] == "base", names + " (" + agents.astype(str) + " agents)")
    bases = _present(frame, "bases").fillna(_present(frame, "model"))
    if bases.nunique() > 1:  # mixed-model societies beside homogeneous ones: each row names its bases
        names = names + " [" + bases.astype(str) + "]"
    trained_on = _present(frame, "trained_on")
    names = names.where(trained_on.isna(), names + " [trained on " + trained_on.astype(str) + "]")
    frame["row"] = names
    frame["column"] = [column(d, k) for d, k in zip(frame["dataset"], frame["iteration"])]
    frame = frame[frame["row"].notna()]
    return frame.sort_values(["order", "row", "iteration"], kind="stable")


def _seeded(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a `seed` column (a run without one in its settings counts as seed 0's)."""
    return frame.assign(seed=pd.to_numeric(_present(frame, "seed"), errors="coerce").fillna(0).astype(int))


def results(metrics: pd.DataFrame) -> pd.DataFrame:
    """Long table: one line per (row, column, seed), the first run's where several runs measured the same one;
    generated tokens per question and accuracy per 1,000 of them (the equal-compute view)."""
    frame = _seeded(labelled(metrics)).drop_duplicates(["row", "column", "seed"])
    tokens = frame["gen_tokens"] / frame["n"] if "gen_tokens" in frame else pd.Series(pd.NA, index=frame.index)
    frame = frame.assign(
        tokens_per_question=tokens,
        accuracy_per_1k_tokens=1000 * frame["accuracy"] / tokens,
        seconds_debate=_present(frame, "seconds_debate"),
    )
    columns = ["row", "column", "dataset", "iteration", "seed", "n", "accuracy", "stderr", "tokens_per_question"]
    return frame[[*columns, "accuracy_per_1k_tokens", "seconds_debate", "run"]]


def _cell(group: pd.DataFrame) -> str:
    """One seed: 'accuracy ± se (n=.., tok/q)'; several: 'mean (min-max; k seeds, n=.. each, tok/q)'."""
    tokens = group["tokens_per_question"].mean()
    cost = "" if pd.isna(tokens) else f", {tokens:.0f} tok/q"
    if len(group) == 1:
        row = group.iloc[0]
        return f"{row.accuracy:.3f} ± {row.stderr:.3f} (n={row.n}{cost})"
    accuracy, sizes = group["accuracy"], sorted(set(group["n"]))
    n = f"n={sizes[0]} each" if len(sizes) == 1 else "n=" + "/".join(map(str, group["n"]))
    return f"{accuracy.mean():.3f} ({accuracy.min():.3f}-{accuracy.max():.3f}; {len(group)} seeds, {n}{cost})"


def wide(long: pd.DataFrame) -> pd.DataFrame:
    """Rows x columns of 'accuracy ± se (n=..)' cells (over seeds: mean and range), blank where a method was not
    run."""
    cells = long.groupby(["row", "column"], sort=False).apply(_cell, include_groups=False).rename("cell").reset_index()
    table = cells.pivot(index="row", columns="column", values="cell")
    rows = list(dict.fromkeys(long["row"]))
    columns = list(dict.fromkeys(long.sort_values(["dataset", "iteration"])["column"]))
    return table.reindex(index=rows, columns=columns).fillna("").rename_axis(index="method", columns=None)


def comparisons(outcomes: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Every pair the table implies, on the questions both rows answered: each row vs Debate and vs Majority
    (iteration 0 of the same dataset), Multiagent FT vs every other row of its dataset, and a fine-tuned society's
    self-consistency vs its own debate and the base society's self-consistency; once per run seed, and pooled over
    the seeds' questions where there are several."""
    frame = _seeded(labelled(outcomes))
    first_run = frame.drop_duplicates(["row", "column", "seed"])[["row", "column", "seed", "run"]]
    frame = frame.merge(first_run, on=["row", "column", "seed", "run"])
    by_cell = frame.groupby(["row", "dataset", "iteration"])
    vectors = {(row, d, int(k)): group.set_index(["seed", "question_id"])["correct"] for (row, d, k), group in by_cell}
    lines, seen = [], set()
    for cell, a in vectors.items():
        row, dataset, iteration = cell
        rivals = {(ref, dataset, 0) for ref in REFERENCES}
        if CONSISTENCY_SUFFIX in row:
            rivals |= {(row.replace(CONSISTENCY_SUFFIX, ""), dataset, iteration), (SELF_CONSISTENCY.title, dataset, 0)}
        elif row.startswith(OURS):
            rivals |= {
                key for key in vectors if key[0] != row and key[1] == dataset and CONSISTENCY_SUFFIX not in key[0]
            }
        for rival in sorted(rivals - {cell}):
            pair = frozenset({cell, rival})
            if rival in vectors and pair not in seen and (found := _compare(a, vectors[rival], seed, cell, rival)):
                seen.add(pair)
                lines += found
    return pd.DataFrame(lines)


def _compare(a: pd.Series, b: pd.Series, seed: int, cell: tuple, rival: tuple) -> list[dict]:
    """Cells are (row, dataset, iteration), outcomes indexed by (seed, question); the pair is compared on the
    questions both answered, per seed and, with several seeds, pooled (its interval resamples questions, each
    with its pairs from every seed that drew it)."""
    both = a.index.intersection(b.index)
    seeds = sorted(set(both.get_level_values("seed")))
    (row, where), (rival_row, rival_where) = _named(cell), _named(rival)
    names = {"a": f"{row} ({where})", "b": f"{rival_row} ({rival_where})"}
    bootstrap_seed = derive_seed(seed, row, where, rival_row, rival_where)
    lines = []
    for run_seed in [*seeds, POOLED] if len(seeds) > 1 else seeds:
        kept = both if run_seed == POOLED else both[both.get_level_values("seed") == run_seed]
        # seeds may draw the same question: pooled, it is resampled as one
        clusters = kept.get_level_values("question_id") if run_seed == POOLED else None
        result = compare(a[kept].tolist(), b[kept].tolist(), bootstrap_seed, clusters)
        lines.append({**names, "seed": run_seed, **vars(result)})
    return lines


def _named(cell: tuple) -> tuple[str, str]:
    row, dataset, iteration = cell
    return row, column(dataset, iteration)


def markdown(frame: pd.DataFrame, index: bool = True) -> str:
    """A GitHub Markdown table (pandas' to_markdown needs the tabulate package)."""
    frame = frame.reset_index() if index else frame
    cells = [[_text(value) for value in row] for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + " --- |" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells]) + "\n"


def _text(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def write(out: Path, long: pd.DataFrame, pairs: pd.DataFrame) -> list[Path]:
    """results.md / results.csv (the table) and comparisons.md / comparisons.csv (paired statistics)."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.md", out / "results.csv", out / "comparisons.md", out / "comparisons.csv"]
    written[0].write_text(markdown(wide(long)))
    long.to_csv(written[1], index=False)
    written[2].write_text(markdown(pairs, index=False) if not pairs.empty else "no paired comparisons\n")
    pairs.to_csv(written[3], index=False)
    return written
