"""Tasks: one module per dataset. `get_task(config)` builds the one the config names."""

from __future__ import annotations

from debate_ft.config import DatasetConfig
from debate_ft.tasks.base import Question, Task


def _registry() -> dict[str, type[Task]]:
    from debate_ft.tasks.arithmetic import Arithmetic
    from debate_ft.tasks.gsm import GSM
    from debate_ft.tasks.math import MATH
    from debate_ft.tasks.mmlu import MMLU

    return {task.name: task for task in (Arithmetic, GSM, MATH, MMLU)}


def get_task(config: DatasetConfig) -> Task:
    return _registry()[config.name](config)


__all__ = ["Question", "Task", "get_task"]
