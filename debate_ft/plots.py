"""The report's PNG plots: accuracy with error bars, diversity per iteration, KL per agent, NLL heatmaps.

Figures are built with matplotlib's object API (``Figure``, no pyplot), so no GUI backend or global state
is touched: the CLI, tests and notebooks can all call these, and PNGs are written with the Agg renderer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from debate_ft.methods import SCORINGS
from debate_ft.runs import atomic_path

PANELS = SCORINGS["all"].writes  # the scorings every iteration writes: base, majority, debate
DIVERSITY_PANELS = {
    "dissimilarity": "embedding dissimilarity (1 - cos)",
    "consensus": "consensus (agents agreeing with the majority)",
    "kl_token": "KL(agent || base) per token, mean over agents",
    "nll_cross": "cross-agent NLL per token (dashed: self)",
    "nll_pair_gap": "|NLL gap| of two agents under a third",
}


def label(row) -> str:
    """A line's legend: the run folder and its fine-tuning method."""
    method = row.get("ft_method")
    return f"{row['run']} ({method})" if isinstance(method, str) and method not in row["run"] else row["run"]


def _lines(frame: pd.DataFrame):
    """(legend, rows sorted by iteration) for each run x fine-tuning method."""
    keys = [k for k in ("run", "ft_method") if k in frame.columns]
    for _, rows in frame.groupby(keys, sort=True, dropna=False):
        yield label(rows.iloc[0]), rows.sort_values("iteration")


def _iteration_axis(ax, title: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("iteration")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)


def accuracy(metrics: pd.DataFrame) -> Figure:
    """Test accuracy ± standard error per iteration: one panel per scoring (base, majority, debate)."""
    methods = [m for m in PANELS if m in set(metrics["method"])]
    figure = Figure(figsize=(4.5 * len(methods), 3.6), layout="constrained")
    for ax, method in zip(figure.subplots(1, len(methods), sharey=True, squeeze=False)[0], methods):
        for name, rows in _lines(metrics[metrics["method"] == method]):
            ax.errorbar(rows["iteration"], rows["accuracy"], yerr=rows["stderr"], marker="o", capsize=3, label=name)
        _iteration_axis(ax, f"{method} accuracy ± se")
    figure.axes[0].set_ylabel("accuracy")
    figure.axes[0].set_ylim(-0.05, 1.05)
    figure.axes[-1].legend(fontsize=8)
    return figure


def diversity(table: pd.DataFrame) -> Figure:
    """The society's diversity metrics per iteration, one panel each, one line per run."""
    figure = Figure(figsize=(15, 7), layout="constrained")
    axes = figure.subplots(2, 3).ravel()
    for ax, (column, title) in zip(axes, DIVERSITY_PANELS.items()):
        for name, rows in _lines(table):
            line = ax.plot(rows["iteration"], rows[column], marker="o", label=name)[0]
            if column == "nll_cross":
                ax.plot(rows["iteration"], rows["nll_self"], marker="x", linestyle="--", color=line.get_color())
        _iteration_axis(ax, title)
    axes[-1].axis("off")
    axes[-1].legend(*axes[0].get_legend_handles_labels(), loc="center", fontsize=9)
    return figure


def kl_per_agent(kl: pd.DataFrame) -> Figure:
    """KL(agent || base) per token for each agent, bars grouped by iteration, one panel per run."""
    runs = list(_lines(kl))
    figure = Figure(figsize=(5 * len(runs), 3.6), layout="constrained")
    for ax, (name, rows) in zip(figure.subplots(1, len(runs), sharey=True, squeeze=False)[0], runs):
        iterations = sorted(rows["iteration"].unique())
        width = 0.8 / len(iterations)
        for offset, iteration in enumerate(iterations):
            bars = rows[rows["iteration"] == iteration]
            ax.bar(bars["agent"] + offset * width, bars["kl_token"], width, label=f"iteration {iteration}")
        ax.set_xticks(np.arange(rows["agent"].max() + 1) + width * (len(iterations) - 1) / 2)
        ax.set_xticklabels([f"agent {a}" for a in range(rows["agent"].max() + 1)])
        ax.set_title(name, fontsize=10)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.legend(fontsize=8)
    figure.axes[0].set_ylabel("KL per token (nats)")
    return figure


def nll_heatmaps(matrices: list[tuple[str, int, pd.DataFrame]]) -> Figure:
    """NLL matrices (rows: scoring agent, columns: agent whose turns are scored), a run per row, an iteration
    per column, one colour scale."""
    runs = sorted({run for run, _, _ in matrices})
    iterations = sorted({iteration for _, iteration, _ in matrices})
    low = min(np.nanmin(m.to_numpy()) for _, _, m in matrices)
    high = max(np.nanmax(m.to_numpy()) for _, _, m in matrices)
    figure = Figure(figsize=(3.4 * len(iterations) + 1, 3.2 * len(runs)), layout="constrained")
    grid = figure.subplots(len(runs), len(iterations), squeeze=False)
    for ax in grid.ravel():
        ax.axis("off")
    for run, iteration, matrix in matrices:
        ax = grid[runs.index(run), iterations.index(iteration)]
        ax.axis("on")
        image = ax.imshow(matrix.to_numpy(), vmin=low, vmax=high, cmap="viridis")
        for (i, j), value in np.ndenumerate(matrix.to_numpy()):
            dark = value < (low + high) / 2  # viridis is dark at the low end
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8, color="white" if dark else "black")
        ax.set_xticks(range(matrix.shape[1]), [c.replace("agent", "") for c in matrix.columns])
        ax.set_yticks(range(matrix.shape[0]), [r.replace("agent", "") for r in matrix.index])
        ax.set_xlabel("responses of agent")
        ax.set_ylabel("scored by agent")
        ax.set_title(f"{run}, iteration {iteration}", fontsize=9)
    figure.colorbar(image, ax=grid.ravel().tolist(), label="NLL per token")
    return figure


def save(figure: Figure, path: Path) -> Path:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    return path
