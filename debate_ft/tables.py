"""Every CSV a run writes (file name, key, columns) and the Rich printing of result rows.

The stages write these tables and `report` reads them back, so both take names and columns from here; this
module imports neither the stages nor matplotlib, so a stage that prints its rows does not pull in plotting.
Files are in the run directory unless said otherwise; a key is the columns `runs.upsert_rows` replaces by.
"""

from __future__ import annotations

import sys

import pandas as pd
from rich.console import Console
from rich.table import Table

# metrics.csv: one row per scoring. Debate rows (evaluate, iterate) are keyed by METRIC_KEY; flow rows (flow
# mode on MuSiQue) by FLOW_METRIC_KEY, and `report` tells them apart by their `stage` column.
METRICS_FILE = "metrics.csv"
METRIC_KEY = ["iteration", "split", "method"]
FLOW_METRIC_KEY = ["split", "stage", "episodes"]
# outcomes.csv: one row per (iteration, split, method, question): what paired statistics need
OUTCOMES_FILE = "outcomes.csv"
OUTCOME_KEY = [*METRIC_KEY, "question_id"]
# diversity.csv: one row per (iteration, ft_method, split); iter<k>/kl.csv: one row per agent;
# iter<k>/nll_matrix.csv: rows score (scorer i), columns are written (author j)
DIVERSITY_FILE = "diversity.csv"
DIVERSITY_KEY = ["iteration", "ft_method", "split"]
KL_FILE = "kl.csv"
NLL_FILE = "nll_matrix.csv"
# conformity.csv: one row per (iteration, split, round >= 2): critics' flips and adoptions, the oracle gap
CONFORMITY_FILE = "conformity.csv"
CONFORMITY_KEY = ["iteration", "split", "round"]
# compute.csv: one row per (iteration, stage, split, agent) with what it cost
COMPUTE_FILE = "compute.csv"
COMPUTE_KEY = ["iteration", "stage", "split", "agent"]
COMPUTE_COUNTS = ["calls", "requests", "prompt_tokens", "generated_tokens", "seconds"]

# `report` reads a table when it has one of these column sets (metrics.csv: debate rows or flow rows)
REQUIRED_COLUMNS = {
    METRICS_FILE: [("iteration", "method", "n", "accuracy", "stderr"), ("split", "stage", "episodes")],
    DIVERSITY_FILE: [("iteration", "ft_method")],
    OUTCOMES_FILE: [("iteration", "method", "question_id", "correct")],
    CONFORMITY_FILE: [("iteration", "round", "right_to_wrong", "wrong_to_right")],
}

# Printed tables: which columns, in which order. `accuracy ± se` is made from accuracy and stderr.
EVALUATE_COLUMNS = ["iteration", "method", "agents", "rounds", "n", "accuracy ± se", "no_answer", "consensus"]
REPORT_COLUMNS = [
    "run", "ft_method", "n_agents", "iteration", "method", "n", "accuracy ± se", "no_answer", "consensus",
]  # fmt: skip
SOCIETY_COLUMNS = [
    "run", "ft_method", "n_agents", "iteration", "n", "accuracy ± se", "dissimilarity", "consensus",
    "kl_token", "kl_response", "nll_self", "nll_cross", "nll_pair_gap", "n_scored",
]  # fmt: skip
COMPUTE_COLUMNS = ["run", "iteration", "stage", "split", *COMPUTE_COUNTS, "tokens_per_s"]
CONFORMITY_COLUMNS = [
    "run", "ft_method", "iteration", "round", "critic_turns", "right_to_wrong", "right_to_wrong_rate",
    "wrong_to_right", "wrong_to_right_rate", "adopted_share", "oracle_acc", "vote_acc", "oracle_gap ± se",
]  # fmt: skip
PLUS_MINUS = " ± se"
FLOW_COLUMNS = [
    "run", "split", "stage", "episodes", "n", "answer_em ± se", "answer_f1 ± se", "support_f1 ± se",
    "support_mrr ± se", "sufficiency_acc", "pairs_made", "pairs_used", "seconds_greedy", "seconds_deviations",
    "seconds_update",
]  # fmt: skip

# flow runs against arm A (the untrained flow) on the same test questions (flow/compare.py)
FLOW_PAIRED_COLUMNS = ["run", "episodes", "measure", "n", "A", "trained ± se", "difference", "ci_low", "ci_high"]


def console() -> Console:
    """Rich console; wide when writing to a file or pipe, where Rich would otherwise assume 80 columns."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def print_table(rows: list[dict], columns: list[str], title: str) -> None:
    """Rows as a table; a column `x ± se` is built from x and its standard error (x_se; accuracy's: stderr),
    floats get 3 decimals."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column == "run" else "right")
    for row in rows:
        table.add_row(*(cell(with_error(row, column)) for column in columns))
    console().print(table)


def with_error(row: dict, column: str):
    if not column.endswith(PLUS_MINUS):
        return row.get(column)
    name = column.removesuffix(PLUS_MINUS)
    value, error = row.get(name), row.get("stderr" if name == "accuracy" else f"{name}_se")
    if cell(value) == "" or cell(error) == "":
        return value
    return f"{value:.3f} ± {error:.3f}"


def present(columns: list[str], names) -> list[str]:
    """The columns with data among `names` (a `x ± se` column: where x has)."""
    return [column for column in columns if column.removesuffix(PLUS_MINUS) in names]


def cell(value) -> str:
    """One printed cell: blank for a missing value, 3 decimals for a float."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return f"{value:.3f}" if isinstance(value, float) else str(value)
