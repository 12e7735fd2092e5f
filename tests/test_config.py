"""Every config in conf/ composes and validates; bad values fail with a clear message."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from debate_ft.cli import CONF_DIR
from debate_ft.config import Config, load
from debate_ft.errors import ConfigError


def names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def compose_config(*overrides: str) -> Config:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return load(compose("config", overrides=list(overrides)))


@pytest.mark.parametrize("dataset", names("dataset"))
def test_every_dataset_composes(dataset):
    assert compose_config(f"+dataset={dataset}").dataset.name == dataset


@pytest.mark.parametrize("model", names("model"))
def test_every_model_composes(model):
    overrides = ["+dataset=arithmetic", f"model={model}"] + (["model.path=/some/dir"] if model == "local" else [])
    config = compose_config(*overrides)
    assert config.model.name == model and (config.model.path or config.model.gguf_file)


@pytest.mark.parametrize("backend", names("backend"))
def test_every_backend_composes(backend):
    assert compose_config("+dataset=gsm", f"backend={backend}").backend.name == backend


@pytest.mark.parametrize("experiment", names("experiment"))
def test_every_experiment_composes_and_names_its_command(experiment):
    first = (CONF_DIR / "experiment" / f"{experiment}.yaml").read_text().splitlines()
    assert any("python -m debate_ft" in line or "make " in line for line in first[:3] if line.startswith("#"))
    assert compose_config(f"+experiment={experiment}").dataset is not None


def test_missing_dataset_says_how_to_choose():
    with pytest.raises(ConfigError, match=r"\+dataset=<name>"):
        compose_config()


@pytest.mark.parametrize(
    "override, message",
    [
        ("agents.n=0", "agents.n must be >= 1"),
        ("debate.rounds=0", "debate.rounds must be >= 1"),
        ("generation.top_p=0", "generation.top_p"),
        ("train.init=middle", "train.init must be base or previous"),
        ("backend.dtype=int3", "backend.dtype"),
    ],
)
def test_bad_values_fail_with_their_key(override, message):
    with pytest.raises(ConfigError, match=message):
        compose_config("+dataset=arithmetic", override)


def test_unknown_key_is_rejected():
    with pytest.raises(Exception, match="agents.m"):
        compose_config("+dataset=arithmetic", "agents.m=3")


def test_conf_dir_is_the_repository_conf():
    assert CONF_DIR == Path(__file__).resolve().parent.parent / "conf"
