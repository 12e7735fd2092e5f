"""The paper-style results table (`report --table`): one row per method in the order of Subramaniam et al.'s
Table 1, one column per (dataset, iteration), each cell accuracy ± standard error with its n; and every
comparison the table implies as a paired difference (bootstrap 95% CI, exact McNemar p) on the same questions.

Iteration 0 holds the baselines (scored from the base society's test debate); iteration k >= 1 holds each
fine-tuning method's society, scored by its debate. Runs with different agent counts get one row per count
(Table 4), and transfer runs (`eval_dataset`) one row per training dataset.
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


def column(dataset: str, iteration: int) -> str:
    return f"{dataset} it{iteration}"


def _present(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column] if column in frame.columns else pd.Series(pd.NA, index=frame.index, dtype="object")


def labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of metrics.csv or outcomes.csv (collected by `report`) with the table's `row` and `column`;
    rows the table does not show (a fine-tuned society's base and majority scores) are dropped."""
    frame = frame[frame["split"] == "test"].copy()
    ft_method = _present(frame, "ft_method")
    baseline = frame["iteration"] == 0
    names = frame["method"].map(BASELINES).where(baseline, ft_method.map(FINE_TUNED).where(frame["method"] == "debate"))
    frame["order"] = names.map({name: i for i, name in enumerate(ORDER)})
    agents = _present(frame, "n_agents")
    if agents.nunique() > 1:  # Table 4: agent counts side by side (Base is one agent whatever the society)
        names = names.where(frame["method"] == "base", names + " (" + agents.astype(str) + " agents)")
    trained_on = _present(frame, "trained_on")
    names = names.where(trained_on.isna(), names + " [trained on " + trained_on.astype(str) + "]")
    frame["row"] = names
    frame["column"] = [column(d, k) for d, k in zip(frame["dataset"], frame["iteration"])]
    frame = frame[frame["row"].notna()]
    return frame.sort_values(["order", "row", "iteration"], kind="stable")


def results(metrics: pd.DataFrame) -> pd.DataFrame:
    """Long table: one line per (row, column), the first run's where several runs measured the same cell."""
    frame = labelled(metrics).drop_duplicates(["row", "column"])
    frame = frame.assign(
        tokens_per_question=frame["gen_tokens"] / frame["n"] if "gen_tokens" in frame else pd.NA,
        seconds_debate=_present(frame, "seconds_debate"),
    )
    columns = ["row", "column", "dataset", "iteration", "n", "accuracy", "stderr", "tokens_per_question"]
    return frame[[*columns, "seconds_debate", "run"]]


def wide(long: pd.DataFrame) -> pd.DataFrame:
    """Rows x columns of 'accuracy ± se (n=..)' cells, blank where a method was not run."""
    cells = long.assign(
        cell=[
            f"{a:.3f} ± {s:.3f} (n={n}" + ("" if pd.isna(t) else f", {t:.0f} tok/q") + ")"
            for a, s, n, t in zip(long["accuracy"], long["stderr"], long["n"], long["tokens_per_question"])
        ]
    )
    table = cells.pivot(index="row", columns="column", values="cell")
    rows = list(dict.fromkeys(long["row"]))
    columns = list(dict.fromkeys(long.sort_values(["dataset", "iteration"])["column"]))
    return table.reindex(index=rows, columns=columns).fillna("").rename_axis(index="method", columns=None)


def comparisons(outcomes: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Every pair the table implies, on the questions both rows answered: each row vs Debate and vs Majority
    (iteration 0 of the same dataset), and Multiagent FT vs every other row of its dataset."""
    frame = labelled(outcomes)
    first_run = frame.drop_duplicates(["row", "column"])[["row", "column", "run"]]
    frame = frame.merge(first_run, on=["row", "column", "run"])
    by_cell = frame.groupby(["row", "dataset", "iteration"])
    vectors = {(row, d, int(k)): group.set_index("question_id")["correct"] for (row, d, k), group in by_cell}
    lines, seen = [], set()
    for cell, a in vectors.items():
        row, dataset, _ = cell
        rivals = {(ref, dataset, 0) for ref in REFERENCES}
        if row.startswith(OURS):
            rivals |= {key for key in vectors if key[0] != row and key[1] == dataset}
        for rival in sorted(rivals - {cell}):
            pair = frozenset({cell, rival})
            if rival in vectors and pair not in seen and (line := _compare(a, vectors[rival], seed, cell, rival)):
                seen.add(pair)
                lines.append(line)
    return pd.DataFrame(lines)


def _compare(a: pd.Series, b: pd.Series, seed: int, cell: tuple, rival: tuple) -> dict | None:
    """Cells are (row, dataset, iteration); the pair is compared on the questions both answered."""
    both = a.index.intersection(b.index)
    if both.empty:
        return None
    (row, where), (rival_row, rival_where) = _named(cell), _named(rival)
    result = compare(a[both].tolist(), b[both].tolist(), derive_seed(seed, row, where, rival_row, rival_where))
    return {"a": f"{row} ({where})", "b": f"{rival_row} ({rival_where})", **vars(result)}


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
