"""Fine-tuning sets per adapter, for each method, saved as Hugging Face datasets (chat `messages` format).

Adapter names: gen<i> and crit<i> for agent i's generator and critic; `shared` for the one-adapter methods.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from datasets import Dataset

from debate_ft.label import AgentSets, agent_sets, split_by_agent
from debate_ft.runs import atomic_path, read_json, read_records, write_records, write_text
from debate_ft.tasks import Task
from debate_ft.transcript import Record

SHARED = "shared"
SINGLE_ADAPTER_METHODS = ("majority_ft", "single_agent_ft", "agent_id", "star")


def generator(agent: int) -> str:
    return f"gen{agent}"


def critic(agent: int) -> str:
    return f"crit{agent}"


def adapter_sets(method: str, sets: Sequence[AgentSets]) -> dict[str, list[dict]]:
    """Which adapter learns from which examples, per method (STaR's set is built in star.py)."""
    if method in ("multiagent_ft", "no_summary", "no_critic"):
        plan = {generator(i): s.generator for i, s in enumerate(sets)}
        if method != "no_critic":
            plan.update({critic(i): s.critic for i, s in enumerate(sets)})
        return plan
    if method == "single_agent_ft":
        return {SHARED: sets[0].generator + sets[0].critic}
    if method in ("majority_ft", "agent_id"):  # every majority-matching response of every agent
        return {SHARED: [example for s in sets for example in s.generator + s.critic]}
    raise ValueError(f"no debate-labelled sets for method {method!r}")


def label_debates(
    method: str, records: Sequence[Record], task: Task, agents: int, w: float, critic_size: int | None, seed: int
) -> tuple[dict[str, list[dict]], list[dict]]:
    """Per-adapter example sets and per-agent size rows from train-split debate transcripts."""
    sets = agent_sets(split_by_agent(records, task, agents), w, critic_size, seed)
    return adapter_sets(method, sets), [{"agent": i, **s.sizes} for i, s in enumerate(sets)]


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
    summary = read_json(folder / "sizes.json")
    return {name: read_records(folder / f"{name}.jsonl") for name in summary["adapters"]}, summary["agents"]
