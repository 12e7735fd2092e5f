"""Fine-tuning sets per adapter, saved as Hugging Face datasets (chat `messages` format) and loaded back on
resume. Which adapter learns from which examples is each method's training plan (methods.py)."""

from __future__ import annotations

import json
from pathlib import Path

from datasets import Dataset

from debate_ft.runs import atomic_path, read_json, read_records, write_records, write_text


def save_sets(folder: Path, plan: dict[str, list[dict]], sizes: list[dict]) -> None:
    """One dataset per adapter (load_from_disk folder + JSONL twin) and a sizes summary. An empty set is
    only an empty JSONL file: `datasets` cannot save a table without rows."""
    for name, examples in plan.items():
        write_records(folder / f"{name}.jsonl", examples)
        if examples:
            with atomic_path(folder / name) as temporary:
                Dataset.from_list(list(examples)).save_to_disk(str(temporary))
    write_text(
        folder / "sizes.json", json.dumps({"agents": sizes, "adapters": {n: len(e) for n, e in plan.items()}}, indent=1)
    )


def load_sets(folder: Path) -> tuple[dict[str, list[dict]], list[dict]] | None:
    """The sets saved by `save_sets` (None if they were not finished), so a resumed run trains on the same
    examples without relabelling or regenerating."""
    if not (folder / "sizes.json").exists():
        return None
    summary = read_json(folder / "sizes.json", {"agents": list, "adapters": dict})
    return {name: read_records(folder / f"{name}.jsonl") for name in summary["adapters"]}, summary["agents"]
