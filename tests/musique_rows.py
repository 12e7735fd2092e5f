"""Tiny MuSiQue-format rows for tests: two hops each, gold paragraphs marked GOLD in their text."""

from __future__ import annotations

import json
from pathlib import Path

from debate_ft.config import DatasetConfig
from debate_ft.tasks.musique import MuSiQue


def row(n: int, answerable: bool = True) -> dict:
    paragraphs = [
        (f"Widget {n}", f"GOLD The widget {n} is made by Maker {n} in Springfield."),
        # MuSiQue-Full's unanswerable twin lacks a supporting paragraph
        (f"Maker {n}", f"GOLD Maker {n} was founded by Ada Lovelace {n}." if answerable else "Makers sell widgets."),
        ("Weather", "It often rains in autumn and the rivers rise."),
        ("Cooking", "Bread needs flour, water, salt and yeast."),
    ]
    return {
        "id": f"2hop__{n}_{n + 100}",
        "paragraphs": [
            {"idx": i, "title": title, "paragraph_text": text, "is_supporting": answerable and text.startswith("GOLD")}
            for i, (title, text) in enumerate(paragraphs)
        ],
        "question": f"Who founded the maker of widget {n}?",
        "question_decomposition": [
            {"id": 1, "question": f"widget {n} >> manufacturer", "answer": f"Maker {n}", "paragraph_support_idx": 0},
            {"id": 2, "question": "Who founded #1?", "answer": f"Ada Lovelace {n}", "paragraph_support_idx": 1},
        ],
        "answer": f"Ada Lovelace {n}",
        "answer_aliases": [f"Countess {n}"],
        "answerable": answerable,
    }


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def task(path: Path, variant: str = "ans", train_size: int = 100, test_size: int = 100) -> MuSiQue:
    return MuSiQue(
        DatasetConfig(name="musique", path=str(path), variant=variant, train_size=train_size, test_size=test_size)
    )
