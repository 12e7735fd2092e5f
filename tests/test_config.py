"""Every config in conf/ composes and validates; bad values fail with a clear message."""

import re
import textwrap
from dataclasses import fields, is_dataclass, replace
from pathlib import Path

import pytest
from conftest import compose_config
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from debate_ft.cli import CONF_DIR, main
from debate_ft.config import (
    BackendConfig,
    Config,
    DatasetConfig,
    DebateConfig,
    FlowConfig,
    TrainConfig,
    choices,
)
from debate_ft.errors import ConfigError
from debate_ft.schema_help import listed


def names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


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
        ("agents.n=0", "agents.n must be in 1..256"),
        # numbers at the extremes: refused before any work instead of NaN adapters, endless loops or huge caches
        ("train.learning_rate=inf", "train.learning_rate must be a finite number"),
        ("generation.temperature=nan", r"generation.temperature must be .* \(got nan\)"),
        ("train.lora_dropout=nan", r"train.lora_dropout must be .* \(got nan\)"),
        ("backend.timeout_s=inf", "backend.timeout_s must be a finite number"),
        ("dataset.test_size=1000000000", "dataset.test_size must be in 1..1,000,000"),
        ("generation.max_new_tokens=1000000000", "generation.max_new_tokens must be in 1..131072"),
        ("agents.n=1000000000", "agents.n must be in 1..256"),
        ("backend.max_lora_rank=12", "backend.max_lora_rank must be one of vLLM's 1, 8, 16"),
        ("backend.gpu_memory_utilization=1.5", "backend.gpu_memory_utilization must be in"),
        ("debate.rounds=0", "debate.rounds must be >= 1"),
        ("generation.top_p=0", "generation.top_p"),
        ("train.init=middle", "train.init must be base or previous"),
        ("backend.dtype=int3", "backend.dtype"),
    ],
)
def test_bad_values_fail_with_their_key(override, message):
    with pytest.raises(ConfigError, match=message):
        compose_config("+dataset=arithmetic", override)


def test_vllm_refuses_adapters_above_its_served_rank():
    with pytest.raises(ConfigError, match="train.lora_r=32 is above backend.max_lora_rank=16"):
        compose_config("+dataset=arithmetic", "backend=vllm", "train.lora_r=32")
    assert compose_config("+dataset=arithmetic", "train.lora_r=32").train.lora_r == 32  # hf serves any rank


def test_unknown_key_is_rejected():
    with pytest.raises(Exception, match="agents.m"):
        compose_config("+dataset=arithmetic", "agents.m=3")


def test_conf_dir_is_the_repository_conf():
    assert CONF_DIR == Path(__file__).resolve().parent.parent / "conf"


def test_eval_dataset_is_added_with_the_package_syntax():
    config = compose_config("+dataset=math", "+dataset@eval_dataset=gsm")
    assert (config.dataset.name, config.eval_dataset.name) == ("math", "gsm")


def test_hydra_refuses_plus_for_a_group_in_the_defaults_list(tmp_path):
    """Why conf/config.yaml leaves dataset out of its defaults list: declared there (`dataset: null`, as
    lightning-hydra-template declares experiment), `dataset=gsm` would work but the documented +dataset=gsm not."""
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "gsm.yaml").write_text("name: gsm\n")
    (tmp_path / "config.yaml").write_text("defaults:\n  - dataset: null\n  - _self_\n")
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        assert compose("config", overrides=["dataset=gsm"]).dataset.name == "gsm"
        with pytest.raises(ConfigCompositionException, match="Multiple values for dataset"):
            compose("config", overrides=["+dataset=gsm"])


SIZES = ("train_size", "test_size")


def test_sizes_default_to_the_papers_500_in_the_schema_and_the_readme():
    assert {size: getattr(DatasetConfig(name="gsm"), size) for size in SIZES} == {"train_size": 500, "test_size": 500}
    readme = (CONF_DIR.parent / "README.md").read_text()
    assert "`dataset.train_size`, `dataset.test_size` | data location; questions per split (500 / 500)" in readme


@pytest.mark.parametrize("dataset", names("dataset"))
def test_dataset_files_leave_sizes_to_the_schema(dataset):
    written = OmegaConf.load(CONF_DIR / "dataset" / f"{dataset}.yaml")
    for size in SIZES:
        schema_default = DatasetConfig.__dataclass_fields__[size].default
        assert written.get(size, schema_default) == schema_default
        assert getattr(compose_config(f"+dataset={dataset}").dataset, size) == schema_default


SECTIONS = {"dataset": DatasetConfig(name="gsm"), "backend": BackendConfig(), "debate": DebateConfig(),
            "train": TrainConfig(), "flow": FlowConfig()}  # fmt: skip
CHOICES = [
    (section, spec.name) for section, value in SECTIONS.items() for spec in fields(value) if spec.metadata["choices"]
]


@pytest.mark.parametrize("section, name", CHOICES, ids=[".".join(key) for key in CHOICES])
def test_every_choice_is_checked_against_its_declaration(section, name):
    value = SECTIONS[section]
    allowed = choices(type(value), name)
    bad = [allowed[0], "nope"] if isinstance(getattr(value, name), list) else "nope"
    with pytest.raises(ConfigError, match=re.escape(f"{section}.{name}") + ".*" + re.escape(listed(allowed))):
        replace(value, **{name: bad})


def test_choices_cover_the_settings_with_a_fixed_set_of_values():
    assert set(CHOICES) >= {("dataset", "name"), ("backend", "name"), ("backend", "dtype"), ("train", "report_to")}


def test_report_to_needs_its_package(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="pip install wandb"):
        TrainConfig(report_to="wandb")
    assert TrainConfig(report_to="none").report_to == "none"


def test_help_shows_every_key_with_its_default_and_choices(capsys):
    with pytest.raises(SystemExit) as done:  # Hydra exits after printing its help
        main(["iterate", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for section, value in vars(Config(dataset=DatasetConfig(name="gsm"))).items():
        if section == "eval_dataset":
            assert "eval_dataset: iterate: test every iteration's society" in out and "Same keys as dataset" in out
            continue
        for spec in fields(value) if is_dataclass(value) else []:
            assert f"\n  {section}.{spec.name}=" in out
            assert textwrap.shorten(spec.metadata["help"], 40, placeholder="") in " ".join(out.split())
    assert "\n  dataset.train_size=500\n" in out and "\n  train.report_to=none (none|tensorboard|wandb|mlflow)\n" in out
    assert "\n  seed=0\n" in out and "dataset: arithmetic, gsm, math, mmlu, musique" in out  # the group's files
