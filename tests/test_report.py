"""The diversity stage inside `iterate`, and `report` on a finished run: tables and PNG plots."""

import math
import shutil

import pandas as pd
import pytest

from debate_ft import report
from debate_ft.tables import DIVERSITY_FILE

PLOTS = ["accuracy.png", "diversity.png", "kl_per_agent.png", "nll_heatmap.png"]


def is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_iterate_measures_every_iteration_once(diversity_run):
    table = pd.read_csv(diversity_run / DIVERSITY_FILE)
    assert list(table["iteration"]) == [0, 1] and set(table["ft_method"]) == {"multiagent_ft"}
    assert set(table["n"]) == {4} and set(table["agents"]) == {2}
    base, tuned = table.iloc[0], table.iloc[1]
    assert base["kl_token"] == 0.0  # iteration 0 is the base society: one model, so constant NLL columns
    assert base["nll_self"] == pytest.approx(base["nll_cross"], rel=1e-12)
    assert tuned["kl_token"] != 0.0 and tuned["nll_self"] != tuned["nll_cross"]
    assert math.isnan(base["nll_pair_gap"])  # two agents: no third one to score them
    kl = pd.read_csv(diversity_run / "iter1" / "kl.csv")
    nll = pd.read_csv(diversity_run / "iter1" / "nll_matrix.csv", index_col=0)
    assert list(kl["agent"]) == [0, 1] and nll.shape == (2, 2) and (nll.to_numpy() > 0).all()


def test_report_prints_accuracy_and_diversity_and_writes_pngs(diversity_run, tmp_path, capsys):
    other = tmp_path / "copy"
    shutil.copytree(diversity_run, other)
    assert report.main([str(diversity_run), str(other), "--out", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    assert "debate accuracy and diversity" in out and "dissimilarity" in out
    society = [line for line in out.splitlines() if "multiagent_ft" in line and "±" in line]
    # 3 scorings x 2 iterations, then 2 iterations (society), then 2 iterations x 1 critic round (conformity), each run
    assert len(society) == 2 * 6 + 2 * 2 + 2 * 2
    for name in PLOTS:
        assert is_png(tmp_path / "plots" / name), name


def test_report_defaults_to_the_run_dir_and_needs_no_diversity(diversity_run, tmp_path, capsys):
    old = tmp_path / "old"  # a run from before diversity metrics (and compute.csv)
    shutil.copytree(diversity_run, old)
    (old / DIVERSITY_FILE).unlink()
    (old / "compute.csv").unlink()
    assert report.main([str(old)]) == 0
    assert "diversity" not in capsys.readouterr().out
    assert is_png(old / "accuracy.png") and not (old / "diversity.png").exists()


def test_society_table_joins_debate_accuracy_and_diversity(diversity_run):
    metrics = report.collect([diversity_run])
    society = report.society_table(metrics, report.collect([diversity_run], DIVERSITY_FILE))
    assert list(society["iteration"]) == [0, 1] and set(society["method"]) == {"debate"}
    assert {"accuracy", "stderr", "dissimilarity", "kl_token", "n_agents"} <= set(society.columns)
    kl = report.kl_table([diversity_run])
    assert len(kl) == 4 and set(kl["run"]) == {"multiagent"}


def test_report_table_writes_the_paper_table_and_paired_comparisons(diversity_run, tmp_path, capsys):
    assert report.main([str(diversity_run), "--table", "--out", str(tmp_path / "t")]) == 0
    printed = capsys.readouterr().out
    assert "Multiagent FT (ours)" in printed and "paired differences" in printed
    results = pd.read_csv(tmp_path / "t" / "results.csv")
    assert list(dict.fromkeys(results["row"])) == ["Base", "Majority", "Debate", "Multiagent FT (ours)"]
    assert set(results["n"]) == {4}
    pairs = pd.read_csv(tmp_path / "t" / "comparisons.csv")
    assert {"difference", "ci_low", "ci_high", "p_mcnemar"} <= set(pairs.columns) and set(pairs["n"]) == {4}
    assert (pairs["ci_low"] <= pairs["difference"]).all() and (pairs["difference"] <= pairs["ci_high"]).all()
    assert (tmp_path / "t" / "results.md").read_text().startswith("| method | arithmetic it0 | arithmetic it1 |")


def test_runs_with_the_same_folder_name_under_two_roots_stay_apart(diversity_run, tmp_path):
    """`report A/r B/r`: both runs are called r in their own root; their rows keep labels of their own (A/r,
    B/r) instead of sharing one, so the table and the paired comparisons never merge them."""
    import shutil

    for root in ("A", "B"):
        shutil.copytree(diversity_run, tmp_path / root / "r", symlinks=True)
    metrics = report.collect([tmp_path / "A" / "r", tmp_path / "B" / "r"])
    assert sorted(set(metrics["run"])) == ["A/r", "B/r"]
    alone = report.collect([diversity_run])
    assert set(alone["run"]) == {diversity_run.name}  # one RUN_DIR: labels as before
