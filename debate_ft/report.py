"""`python -m debate_ft report RUN_DIR [RUN_DIR ...]`: every metrics.csv under the given folders in one table,
the diversity of each iteration's society beside its debate accuracy, and PNG plots.

Sweeps (`-m`) put each run in a sub-folder; the report finds them all and adds each run's settings (agents,
rounds, model, fine-tuning method) as columns, so agent counts or methods line up side by side. The plots
(accuracy.png, diversity.png, kl_per_agent.png, nll_heatmap.png) go to --out, by default the first RUN_DIR. Each
run also gets transcripts.html, a static page to read its debates in a browser (browser.py), and the report
shows what each stage cost (compute.csv).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

from debate_ft import plots, results
from debate_ft.bases import society_label
from debate_ft.browser import write_browser
from debate_ft.errors import DataError
from debate_ft.flow.compare import comparisons
from debate_ft.layout import RunDir
from debate_ft.run_config import load_saved_config
from debate_ft.runs import check_links, is_leftover, read_csv
from debate_ft.tables import (
    COMPUTE_COLUMNS,
    COMPUTE_FILE,
    CONFORMITY_COLUMNS,
    CONFORMITY_FILE,
    DIVERSITY_FILE,
    FLOW_COLUMNS,
    FLOW_PAIRED_COLUMNS,
    KL_FILE,
    METRICS_FILE,
    NLL_FILE,
    OUTCOMES_FILE,
    REPORT_COLUMNS,
    REQUIRED_COLUMNS,
    SOCIETY_COLUMNS,
    console,
    present,
    print_table,
)

SETTINGS = {
    "agents.n": "n_agents",
    "debate.rounds": "n_rounds",
    "model.name": "model",
    "agents.models": "bases",
    "seed": "seed",
}


def run_settings(folder: Path) -> dict:
    """A run's settings columns from its config.yaml, read as plain data: interpolations such as
    `${oc.env:...}` in a run directory are shown as written, never resolved."""
    config_path = folder / "config.yaml"
    if not config_path.exists():
        return {}
    config = load_saved_config(config_path)
    settings = {}
    for key, column in SETTINGS.items():
        value = config
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, list):  # agents.models: one name for a one-base society, else each agent's
            value = society_label([str(entry) for entry in value])
        settings[column] = value if value is None or isinstance(value, (str, int, float, bool)) else str(value)
    return settings


def run_folders(run_dirs: list[Path], name: str) -> list[tuple[str, Path]]:
    """(run label, folder) of every `name` file under `run_dirs`; the label is the folder's path from the RUN_DIRs'
    common parent, so runs from several RUN_DIRs stay apart even where their own names are equal (A/r, B/r)."""
    for root in run_dirs:
        if not root.is_dir():
            raise DataError(f"{root} {'is not a folder' if root.exists() else 'does not exist'}")
        check_links(root)
    base = os.path.commonpath([root.absolute().parent for root in run_dirs])
    found = []
    for root in run_dirs:
        for path in sorted(root.rglob(name)):
            if is_leftover(path, root):  # inside the temporary folder of an interrupted write: not a run
                continue
            found.append((os.path.relpath(path.parent.absolute(), base), path.parent))
    return found


def collect(run_dirs: list[Path], name: str = METRICS_FILE, required: bool = True) -> pd.DataFrame:
    """All rows of every `name` table under `run_dirs`, with `run` (folder) and its settings as columns."""
    frames = []
    for run, folder in run_folders(run_dirs, name):
        frame = read_csv(folder / name)
        if frame.empty:
            continue
        wanted = REQUIRED_COLUMNS.get(name, [])
        if wanted and not any(set(columns) <= set(frame.columns) for columns in wanted):
            raise DataError(f"{folder / name}: not a {name} table (needs columns {' + '.join(map(str, wanted[0]))})")
        for column in ("accuracy", "stderr", "iteration", "episodes"):
            if column in frame.columns and not pd.api.types.is_numeric_dtype(frame[column]):
                raise DataError(f"{folder / name}: column {column} holds values that are not numbers")
        frame.insert(0, "run", run)
        for column, value in run_settings(folder).items():
            frame[column] = value
        frames.append(frame)
    if not frames:
        if required:
            raise DataError(f"no {name} under {', '.join(map(str, run_dirs))}")
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def per_iteration(run_dirs: list[Path], name: str) -> list[tuple[str, str, int, pd.DataFrame]]:
    """(run, ft_method, iteration, table) for each iteration's `name` file (kl.csv, nll_matrix.csv) that
    diversity.csv lists."""
    found = []
    for run, folder in run_folders(run_dirs, DIVERSITY_FILE):
        for row in read_csv(RunDir(folder).diversity).itertuples():
            path = RunDir(folder).iteration(row.iteration) / name
            if path.exists():
                table = read_csv(path, index_col=0 if name == NLL_FILE else None)  # the matrix's scorer index
                found.append((run, row.ft_method, int(row.iteration), table))
    return found


def kl_table(run_dirs: list[Path]) -> pd.DataFrame:
    """Per-agent KL rows of every measured iteration, with run, ft_method and iteration columns."""
    frames = [
        t.assign(run=run, ft_method=method, iteration=k) for run, method, k, t in per_iteration(run_dirs, KL_FILE)
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def society_table(metrics: pd.DataFrame, diversity: pd.DataFrame) -> pd.DataFrame:
    """Debate accuracy and diversity of each (run, iteration): the one table that contrasts methods."""
    debate = metrics[metrics["method"] == "debate"]
    keys = [key for key in ("run", "iteration", "ft_method") if key in debate.columns]
    return debate.merge(diversity, on=keys, suffixes=("", "_diversity")).sort_values(["run", "iteration"])


def compute_rows(run_dirs: list[Path]) -> list[dict]:
    """Each run's stages (compute.csv's `all` rows) in run order, with generated tokens per second."""
    compute = collect(run_dirs, COMPUTE_FILE, required=False)
    if compute.empty:
        return []
    stages = compute[compute["agent"] == "all"].astype({"seconds": float})
    stages = stages.assign(tokens_per_s=stages["generated_tokens"] / stages["seconds"])
    return stages.to_dict("records")


def write_plots(out: Path, metrics: pd.DataFrame, diversity: pd.DataFrame, run_dirs: list[Path]) -> list[Path]:
    """The report's PNGs in `out`; the diversity ones only when some run has diversity.csv."""
    written = [plots.save(plots.accuracy(metrics), out / "accuracy.png")]
    if not diversity.empty:
        written.append(plots.save(plots.diversity(diversity), out / "diversity.png"))
        written.append(plots.save(plots.kl_per_agent(kl_table(run_dirs)), out / "kl_per_agent.png"))
        matrices = [(run, k, matrix) for run, _, k, matrix in per_iteration(run_dirs, NLL_FILE)]
        written.append(plots.save(plots.nll_heatmaps(matrices), out / "nll_heatmap.png"))
    return written


def results_table(out: Path, metrics: pd.DataFrame, run_dirs: list[Path]) -> None:
    """The paper-style table and its paired comparisons, printed and written to `out`."""
    long = results.results(metrics)
    outcomes = collect(run_dirs, OUTCOMES_FILE, required=False)
    pairs = results.comparisons(outcomes) if not outcomes.empty else pd.DataFrame()
    wide = results.wide(long).reset_index()
    print_table(
        wide.to_dict("records"), list(wide.columns), "results (accuracy ± se, n, generated tokens per question)"
    )
    if not pairs.empty:
        print_table(pairs.to_dict("records"), list(pairs.columns), "paired differences a - b (95% bootstrap CI)")
    for path in results.write(out, long, pairs):
        console().print(f"wrote {path}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m debate_ft report", description=__doc__)
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run directories or folders holding them")
    parser.add_argument("--out", type=Path, help="folder for the PNG plots and tables (default: the first RUN_DIR)")
    parser.add_argument(
        "--table",
        action="store_true",
        help="also the paper-style results table (results.md/.csv) and paired comparisons (comparisons.md/.csv)",
    )
    args = parser.parse_args(argv)
    frame = collect(args.run_dirs)
    out = args.out or args.run_dirs[0]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"--out {out}: cannot create the folder ({error.strerror or type(error).__name__})") from None
    # flow runs (MuSiQue) score answers, not votes: their rows (those with a stage) get a table of their own
    is_flow = frame["stage"].notna() if "stage" in frame.columns else pd.Series(False, index=frame.index)
    debate = frame[~is_flow]
    if not debate.empty:
        print_table(debate.to_dict("records"), present(REPORT_COLUMNS, debate.columns), "debate_ft report")
    if is_flow.any():
        flow = frame[is_flow]
        print_table(flow.to_dict("records"), present(FLOW_COLUMNS, flow.columns), "debate_ft flow report")
        if paired := comparisons(run_folders(args.run_dirs, METRICS_FILE)):
            title = "flow runs vs A, the untrained flow: paired over test questions (trained - A, 95% bootstrap CI)"
            print_table(paired, FLOW_PAIRED_COLUMNS, title)
    if debate.empty:
        return 0
    if args.table:
        results_table(out, debate, args.run_dirs)
    diversity = collect(args.run_dirs, DIVERSITY_FILE, required=False)
    if not diversity.empty:
        society = society_table(debate, diversity)
        print_table(
            society.to_dict("records"), present(SOCIETY_COLUMNS, society.columns), "debate accuracy and diversity"
        )
    for run_dir in sorted({folder for _, folder in run_folders(args.run_dirs, "config.yaml")}):
        if page := write_browser(run_dir):
            console().print(f"wrote {page}")
    if stages := compute_rows(args.run_dirs):
        print_table(stages, COMPUTE_COLUMNS, "compute per stage (compute.csv)")
    moves = collect(args.run_dirs, CONFORMITY_FILE, required=False)
    if not moves.empty:
        title = "conformity: critics' moves per round (rates among turns right / wrong the round before)"
        print_table(moves.to_dict("records"), present(CONFORMITY_COLUMNS, moves.columns), title)
    for path in write_plots(out, debate, diversity, args.run_dirs):
        console().print(f"wrote {path}")
    return 0
