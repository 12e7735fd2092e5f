"""Shared fixtures and helpers: one tiny random Llama per session (SmolLM2's tokenizer and chat template),
fresh backends on it per test, the fake engine playing arithmetic agents (fakes.py), the CLI in a subprocess
(`cli`) and a config composed as the CLI composes it (`compose_config`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fakes import AGENTS, arithmetic_agents
from hydra import compose, initialize_config_dir

from debate_ft.backends.fake import FakeBackend
from debate_ft.backends.hf import HFBackend
from debate_ft.cli import CONF_DIR
from debate_ft.config import Config, ModelConfig, load
from debate_ft.models import host
from debate_ft.testing import save_tiny_model

CLI = [sys.executable, "-m", "debate_ft"]

torch.set_num_threads(2)
# the CLI in a subprocess finds the tests' fake scripts (backend.script=fakes:...) as this process does
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))


def cli(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """`python -m debate_ft ARGS` as a user's shell runs it, its output captured as text."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, **kwargs)


def tiny_run(tiny_model_dir: Path, *extra: str) -> list[str]:
    """The overrides of a small `iterate` run: the fake arithmetic agents debate (8 train, 4 test questions,
    2 agents) and the tiny model trains (1 epoch), plus `extra`."""
    return [
        "+dataset=arithmetic",
        *AGENTS,
        "model=local",
        f"model.path={tiny_model_dir}",
        "dataset.train_size=8",
        "dataset.test_size=4",
        "train.epochs=1",
        "train.batch_size=4",
        "agents.n=2",
        *extra,
    ]


def compose_config(*overrides: str) -> Config:
    """The validated config `python -m debate_ft <command> OVERRIDES` runs with."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return load(compose("config", overrides=list(overrides)))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 3M-parameter random Llama saved as a normal model directory."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_model_config(tiny_model_dir) -> ModelConfig:
    return ModelConfig(name="tiny", path=str(tiny_model_dir), gguf_package=None, gguf_file=None)


@pytest.fixture
def tiny_backend(tiny_model_config) -> HFBackend:
    """A fresh HF backend (no adapters) on the session's tiny model; loading it takes milliseconds."""
    return HFBackend(host(tiny_model_config, device="cpu"), batch_size=8)


@pytest.fixture
def fake_backend() -> FakeBackend:
    return FakeBackend(arithmetic_agents)


_MARKED_OUT: list = []


def pytest_deselected(items):
    _MARKED_OUT.extend(i for i in items if any(i.get_closest_marker(m) for m in ("slow", "hub", "gpu", "browser")))


def pytest_terminal_summary(terminalreporter):
    if _MARKED_OUT:
        terminalreporter.write_line(
            f"{len(_MARKED_OUT)} test(s) deselected by marker: `make test-slow` runs the embedded-model tests; "
            "`pytest -m hub` needs the Hugging Face hub, `pytest -m gpu` a CUDA GPU, `make test-browser` chromium."
        )


@pytest.fixture(scope="session")
def diversity_run(tiny_model_dir, tmp_path_factory) -> Path:
    """One finished 1-iteration `iterate` run (fake debates, tiny-model LoRA training) with its diversity
    metrics, shared by the report and notebook tests."""
    from debate_ft.config import to_dict
    from debate_ft.iterate import iterate
    from debate_ft.run_config import prepare_run_dir

    config = compose_config(*tiny_run(tiny_model_dir, "iterations=1"))
    run_dir = tmp_path_factory.mktemp("runs") / "multiagent"
    prepare_run_dir(run_dir, to_dict(config))
    iterate(config, run_dir)
    return run_dir
