"""Tasks: one module per dataset. `get_task(config)` builds the one the config names."""

from __future__ import annotations

from debate_ft.config import DatasetConfig
from debate_ft.errors import ConfigError
from debate_ft.tasks.base import Question, Task

FLOW_TASKS = ("musique",)  # tasks the flow command runs; debate commands run every other one


def _registry() -> dict[str, type[Task]]:
    from debate_ft.tasks.arithmetic import Arithmetic
    from debate_ft.tasks.gsm import GSM
    from debate_ft.tasks.math import MATH
    from debate_ft.tasks.mmlu import MMLU
    from debate_ft.tasks.musique import MuSiQue

    return {task.name: task for task in (Arithmetic, GSM, MATH, MMLU, MuSiQue)}


def get_task(config: DatasetConfig, flow: bool = False) -> Task:
    """The configured task; `flow` says whether the flow command (rather than a debate command) asks."""
    if flow and config.name not in FLOW_TASKS:
        raise ConfigError(f"the flow command runs +dataset={'|'.join(FLOW_TASKS)}, not +dataset={config.name}")
    if not flow and config.name in FLOW_TASKS:
        raise ConfigError(
            f"+dataset={config.name} is for the flow command: python -m debate_ft flow +dataset={config.name}"
        )
    return _registry()[config.name](config)


__all__ = ["Question", "Task", "get_task"]
