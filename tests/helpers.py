"""Helpers the test files share: the CLI in this process, its one error line, JSONL files, GSM and MuSiQue data."""

from __future__ import annotations

import json
from pathlib import Path

from debate_ft import cli
from debate_ft.config import DatasetConfig
from debate_ft.tasks.musique import MuSiQue


def run(argv: list[str], capsys) -> tuple[int, str]:
    """The CLI's exit code and everything it printed."""
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out + err


def error_line(output: str) -> str:
    """The one `error:` line a refused command prints, with no traceback."""
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in output, output
    return errors[0]


def write_jsonl(path: Path, rows) -> Path:
    """Rows (dicts, or lines written as they are) one per line; the folder is made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)
    path.write_text("".join(lines), encoding="utf-8")
    return path


def gsm_rows(n: int = 12) -> list[dict]:
    return [{"question": f"What is {i} + 1?", "answer": f"{i} + 1 = {i + 1}\n#### {i + 1}"} for i in range(n)]


def musique_task(path: Path, variant: str = "ans", train_size: int = 100, test_size: int = 100) -> MuSiQue:
    return MuSiQue(
        DatasetConfig(name="musique", path=str(path), variant=variant, train_size=train_size, test_size=test_size)
    )
