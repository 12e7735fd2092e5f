"""notebooks/diversity_analysis.ipynb runs top to bottom on a finished run and is committed without outputs."""

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "diversity_analysis.ipynb"


@pytest.fixture
def this_python_kernel(tmp_path, monkeypatch) -> str:
    """A kernelspec that runs this interpreter, whatever `python3` kernel the machine has installed."""
    folder = tmp_path / "jupyter" / "kernels" / "debate-ft-test"
    folder.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "language": "python",
        "display_name": "debate_ft tests",
    }
    (folder / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return folder.name


def test_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)
    assert "parameters" in code[0].metadata.get("tags", [])


def test_notebook_executes_on_a_run(diversity_run, tmp_path, this_python_kernel):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells[1].source = f"RUN_DIRS = [{str(diversity_run)!r}]\nOUT = {str(tmp_path / 'plots')!r}"
    # the kernel starts in the repository root, so it imports this checkout's debate_ft
    in_root = {"metadata": {"path": str(ROOT)}}
    NotebookClient(notebook, kernel_name=this_python_kernel, timeout=300, resources=in_root).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    tables = [o for o in outputs if "text/html" in o.get("data", {}) and "<table" in o["data"]["text/html"]]
    assert len(images) == 4 and len(tables) == 4  # accuracy, society, KL, conformity
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(
        ["accuracy.png", "diversity.png", "kl_per_agent.png", "nll_heatmap.png"]
    )
