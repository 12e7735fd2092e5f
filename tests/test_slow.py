"""The embedded SmolLM2-135M for real (minutes): make test-slow."""

import pandas as pd
import pytest
from conftest import compose_config

from debate_ft.backends.engines import make_backend
from debate_ft.config import BackendConfig, DatasetConfig, GenerationConfig, ModelConfig
from debate_ft.debate import Debate
from debate_ft.iterate import iterate
from debate_ft.methods import Society
from debate_ft.metrics import score
from debate_ft.tasks import get_task

pytestmark = pytest.mark.slow


def test_two_question_debate_on_the_embedded_model(tmp_path):
    task = get_task(DatasetConfig(name="arithmetic", operands=2, max_value=9, test_size=2))
    backend = make_backend(BackendConfig(threads=2), ModelConfig())
    debate = Debate(task, backend, Society.base(2), 2, False, GenerationConfig(max_new_tokens=48, temperature=0.7))
    records = debate.run(task.load("test"), tmp_path / "t.jsonl", seed=0, chunk_size=2)
    assert len(records) == 2 and all(len(r.turns) == 4 for r in records)
    assert all(t.response and t.tokens > 0 for r in records for t in r.turns)
    result = score(records, task, "debate")
    assert all(t.answer == task.extract_answer(t.response) for r in records for t in r.turns)
    assert result["n"] == 2 and result["accuracy"] == sum(r.correct for r in records) / 2


def test_one_iteration_on_the_embedded_model(tmp_path):
    overrides = [
        "+experiment=demo", "dataset.train_size=6", "dataset.test_size=3", "agents.n=2", "iterations=1",
        "generation.max_new_tokens=32", "train.epochs=1", "backend.threads=2", f"run.root={tmp_path}", "run.name=r",
    ]  # fmt: skip
    iterate(compose_config(*overrides), tmp_path / "r")
    metrics = pd.read_csv(tmp_path / "r" / "metrics.csv")
    assert list(metrics["iteration"]) == [0, 0, 0, 1, 1, 1] and set(metrics["n"]) == {3}
    assert (tmp_path / "r" / "iter1" / "data" / "sizes.json").exists()
