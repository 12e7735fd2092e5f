"""The engine benchmark runs end to end on a tiny random model and writes every figure to its JSON."""

import importlib.util
import json
from pathlib import Path

import pytest

KEYS = {
    "roofline_tok_s",
    "base_tok_s",
    "mixed_tok_s",
    "naive_tok_s",
    "score_tok_s",
    "train_tok_s",
    "train_separate_tok_s",
    "flow_greedy_s",
    "flow_training_s",
    "flow_choice_s",
    "flow_full_s",
    "peak_rss_0_mib",
    "peak_rss_6_mib",
}


@pytest.mark.filterwarnings("ignore")
def test_quick_benchmark_writes_every_figure(tmp_path):
    path = Path(__file__).parents[1] / "benchmarks" / "bench.py"
    spec = importlib.util.spec_from_file_location("bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--quick", "--json", str(tmp_path / "bench.json")])
    figures = json.loads((tmp_path / "bench.json").read_text())
    assert set(figures) == KEYS
    assert all(value > 0 for value in figures.values())
