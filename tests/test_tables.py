"""The shared tables module: stages print and name their CSVs without the report command (or matplotlib), and
the tasks import no scoring module that imports tasks."""

import subprocess
import sys
from pathlib import Path

import pytest

from debate_ft import tables

ROOT = Path(__file__).resolve().parent.parent


def loaded_after(*modules: str) -> set[str]:
    """Names in sys.modules after a fresh interpreter imports `modules` (fresh: this one has imported more)."""
    code = f"import sys\nfor m in {list(modules)!r}: __import__(m)\nprint(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_stages_import_neither_report_nor_matplotlib():
    loaded = loaded_after("debate_ft.evaluate", "debate_ft.iterate", "debate_ft.flow.run", "debate_ft.commands")
    assert {"debate_ft.evaluate", "debate_ft.iterate", "debate_ft.flow.run"} <= loaded
    assert not {"matplotlib", "debate_ft.report", "debate_ft.plots"} & loaded


def test_report_is_where_plotting_comes_in():
    assert {"matplotlib", "debate_ft.plots"} <= loaded_after("debate_ft.report")


def test_tasks_do_not_import_metrics():
    loaded = loaded_after("debate_ft.tasks", "debate_ft.tasks.musique")
    assert "debate_ft.stats" in loaded and "debate_ft.metrics" not in loaded


@pytest.mark.parametrize(
    "value, text", [(None, ""), (float("nan"), ""), (0.12345, "0.123"), (3, "3"), ("gsm", "gsm"), (True, "True")]
)
def test_cells_are_blank_when_missing_and_floats_get_three_decimals(value, text):
    assert tables.cell(value) == text


def test_print_table_builds_accuracy_with_its_stderr(capsys):
    tables.print_table([{"method": "debate", "accuracy": 0.5, "stderr": 0.25}], ["method", "accuracy ± se"], "t")
    assert "0.500 ± 0.250" in capsys.readouterr().out
