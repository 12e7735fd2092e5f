"""What every task shares: the Question record, the Task interface, and locating data on disk or the hub."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from debate_ft.config import DatasetConfig
from debate_ft.errors import DataError
from debate_ft.runs import read_jsonl, require

log = logging.getLogger(__name__)

DATA_ROOT_ENV = "DEBATE_FT_DATA"
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Question:
    id: str
    text: str  # the question as the agents see it (with choices for multiple choice)
    gold: str  # the reference answer, canonical for the task
    meta: dict = field(default_factory=dict, compare=False)


class Task:
    """A dataset plus how to ask its questions and read and compare their answers."""

    name: str = ""
    answer_format: str = ""  # the sentence that tells an agent how to state its final answer

    def __init__(self, config: DatasetConfig):
        self.config = config

    def load(self, split: str, keep: Callable[[Question], bool] | None = None) -> list[Question]:
        """The first train_size / test_size questions of a split (those `keep` accepts), in a fixed pseudo-random
        order (sorted by a hash of the id), so a small sample is representative and the same in every run."""
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}: choose train or test")
        size = self.config.train_size if split == "train" else self.config.test_size
        questions = sorted(self.load_split(split), key=lambda question: stable_hash(question.id))
        questions = [question for question in questions if keep is None or keep(question)]
        if not questions:
            raise DataError(f"{self.name}: the {split} split has no questions ({self.source_description()})")
        if len(questions) < size:
            log.warning("%s %s: asked for %d questions, %d exist", self.name, split, size, len(questions))
        return questions[:size]

    def load_split(self, split: str) -> list[Question]:
        raise NotImplementedError

    def source_description(self) -> str:
        return f"dataset.path={self.config.path}" if self.config.path else f"${DATA_ROOT_ENV} or the hub"

    def question_prompt(self, question: Question) -> str:
        return f"Can you solve the following math problem? {question.text} Explain your reasoning. {self.answer_format}"

    def extract_answer(self, response: str) -> str | None:
        raise NotImplementedError

    def equivalent(self, a: str, b: str) -> bool:
        raise NotImplementedError

    def is_correct(self, answer: str | None, gold: str) -> bool:
        return answer is not None and self.equivalent(answer, gold)


def stable_hash(key: str) -> int:
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:12], 16)


def in_test_partition(key: str, test_fraction: float = 0.2) -> bool:
    """A stable split for data with one file: the same question always lands on the same side."""
    return stable_hash("split:" + key) < test_fraction * 16**12


def partition(items: list, split: str, key: Callable[[object], str]) -> list:
    return [item for item in items if in_test_partition(key(item)) == (split == "test")]


def local_source(config: DatasetConfig, folder: str) -> Path | None:
    """The file or directory to read: dataset.path, else $DEBATE_FT_DATA/<folder>, else None (use the hub)."""
    if config.path:
        path = Path(config.path).expanduser()
        if not path.exists():
            raise DataError(f"dataset.path={config.path} does not exist")
        return path
    root = os.environ.get(DATA_ROOT_ENV)
    if root and (Path(root) / folder).exists():
        return Path(root) / folder
    return None


def split_file(source: Path, split: str) -> tuple[Path, bool]:
    """The JSONL file holding `split` under `source`, and whether it must be hash-partitioned: a single
    file, or a folder without train.jsonl, serves both splits, so they are cut apart to never overlap."""
    if source.is_file():
        return source, True
    shared = not (source / "train.jsonl").exists()
    path = source / ("test.jsonl" if shared else f"{split}.jsonl")
    if not path.exists():
        raise DataError(f"no {path.name} in {source}")
    return path, shared


def jsonl_rows(source: Path, split: str, key: str) -> list[tuple[str, dict]]:
    """(where, row) pairs of one split from local JSONL; `where` names file and line for error messages."""
    path, shared = split_file(source, split)
    rows = [(f"{path}:{number}", row) for number, row in enumerate(read_jsonl(path), start=1)]
    if shared:
        for where, row in rows:
            require(row, (key,), where)
        rows = partition(rows, split, key=lambda pair: str(pair[1][key]))
    return rows


def row_id(where: str) -> str:
    """A machine-independent row id from a `where` label: 'test.jsonl:12' of '/any/dir/test.jsonl:12'."""
    return where.rsplit("/", 1)[-1]


def from_hub(dataset_name: str, hub_id: str, split: str, config_name: str | None = None) -> list[tuple[str, dict]]:
    """(where, row) pairs of a hub dataset split; if the hub is unreachable, say how to use local data."""
    try:
        from datasets import load_dataset

        rows = load_dataset(hub_id, config_name, split=split)
        return [(f"{hub_id}[{split}]:{number}", row) for number, row in enumerate(rows, start=1)]
    except Exception as error:
        raise DataError(
            f"{dataset_name}: no local data and the hub dataset {hub_id} could not be loaded "
            f"({type(error).__name__}). Set dataset.path=<file or dir> or {DATA_ROOT_ENV}=<data root>; "
            "see data/README.md"
        ) from None
