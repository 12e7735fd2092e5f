"""`python -m debate_ft report RUN_DIR [RUN_DIR ...]`: every metrics.csv under the given folders in one table.

Sweeps (`-m`) put each run in a sub-folder; the report finds them all and adds each run's settings (agents,
rounds, model, fine-tuning method) as columns, so agent counts or methods line up side by side.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

SETTINGS = {"agents.n": "n_agents", "debate.rounds": "n_rounds", "model.name": "model", "seed": "seed"}
FLOW_COLUMNS = [
    "run", "split", "stage", "episodes", "n", "answer_em", "answer_f1", "answer_f1_se", "support_f1",
    "sufficiency_acc", "pairs_made", "pairs_used", "seconds_greedy", "seconds_deviations", "seconds_update",
]  # fmt: skip


def run_settings(folder: Path) -> dict:
    config_path = folder / "config.yaml"
    if not config_path.exists():
        return {}
    config = OmegaConf.load(config_path)
    return {column: OmegaConf.select(config, key) for key, column in SETTINGS.items()}


def collect(run_dirs: list[Path]) -> pd.DataFrame:
    """All metrics rows under `run_dirs`, with `run` (folder) and its settings as columns."""
    frames = []
    for root in run_dirs:
        if not root.exists():
            raise SystemExit(f"error: {root} does not exist")
        for metrics in sorted(root.rglob("metrics.csv")):
            frame = pd.read_csv(metrics)
            frame.insert(0, "run", str(metrics.parent.relative_to(root.parent)))
            for column, value in run_settings(metrics.parent).items():
                frame[column] = value
            frames.append(frame)
    if not frames:
        raise SystemExit(f"error: no metrics.csv under {', '.join(map(str, run_dirs))}")
    return pd.concat(frames, ignore_index=True)


def console() -> Console:
    """Rich console; wide when writing to a file or pipe, where Rich would otherwise assume 80 columns."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def print_table(rows: list[dict], columns: list[str], title: str) -> None:
    """Rows as a table; `accuracy ± se` is built from accuracy and stderr, floats get 3 decimals."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column == "run" else "right")
    for row in rows:
        cells = {**row, "accuracy ± se": f"{row['accuracy']:.3f} ± {row['stderr']:.3f}"} if "accuracy" in row else row
        table.add_row(*(_cell(cells.get(column)) for column in columns))
    console().print(table)


def _cell(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m debate_ft report", description=__doc__)
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run directories or folders holding them")
    args = parser.parse_args(argv)
    frame = collect(args.run_dirs)
    # flow runs (MuSiQue) score answers, not votes: their rows (those with a stage) get a table of their own
    flow = frame["stage"].notna() if "stage" in frame.columns else pd.Series(False, index=frame.index)
    if not flow.all():
        debate = frame[~flow]
        columns = ["run", "ft_method", "n_agents", "iteration", "method", "n", "accuracy ± se", "no_answer", "consensus"]
        print_table(debate.to_dict("records"), [c for c in columns if c in debate.columns or c == "accuracy ± se"], "debate_ft report")
    if flow.any():
        print_table(frame[flow].to_dict("records"), [c for c in FLOW_COLUMNS if c in frame.columns], "debate_ft flow report")
    return 0
