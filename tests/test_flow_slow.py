"""The flow on the embedded SmolLM2-135M for real (minutes): make test-slow."""

import pandas as pd
import pytest
from helpers import write_jsonl as write

from debate_ft.config import BackendConfig, Config, DatasetConfig, FlowConfig
from debate_ft.flow.run import flow
from debate_ft.testing import musique_row as row

pytestmark = pytest.mark.slow


def test_one_training_episode_and_an_evaluation_on_the_embedded_model(tmp_path):
    data = write(tmp_path / "dev.jsonl", [row(n) for n in range(12)])
    config = Config(
        dataset=DatasetConfig(name="musique", path=str(data), train_size=1, test_size=1),
        backend=BackendConfig(threads=2),
        flow=FlowConfig(max_hops=1, max_new_tokens=16, final_tokens=8, batch_pairs=1, eval_before=False),
    )
    flow(config, tmp_path / "run")
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    progressive = metrics[metrics["stage"] == "progressive"].iloc[0]
    assert progressive["n"] == 1 and progressive["pairs_used"] == progressive["pairs_made"] > 0
    assert (tmp_path / "run" / "flow" / "checkpoint" / "query" / "adapter_model.safetensors").exists()
    assert metrics[metrics["stage"] == "eval"].iloc[0]["n"] == 1
