"""Which base model each agent runs on (mixed societies): `agents.models` resolved into model configs.

A base is named by its agents.models entry (its key): `model`'s own name stands for `model` itself, with any
overrides; another conf/model name reads that file; a path is a local model folder. Every base is an agent's
(agent 0's is the default: it takes the requests that name no base, such as summaries), so no model is loaded
that no agent speaks with. A homogeneous society's requests and transcript turns name no base: they all go to
its one base, as before mixing existed.
"""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from debate_ft.config import CONF_DIR, Config, ModelConfig, is_model_folder
from debate_ft.errors import ConfigError
from debate_ft.methods import SHARED, critic, generator


def model_config(entry: str, default: ModelConfig) -> ModelConfig:
    """The model config an agents.models entry names."""
    if entry == default.name:
        return default
    if is_model_folder(entry):
        return ModelConfig(name=entry, path=entry, gguf_package=None, gguf_file=None)
    try:
        written = OmegaConf.load(CONF_DIR / "model" / f"{entry}.yaml")
        merged = OmegaConf.merge(OmegaConf.structured(ModelConfig), written)
        return OmegaConf.to_object(merged)
    except (OmegaConfBaseException, ConfigError) as error:  # e.g. conf/model/local.yaml: its path must be given
        raise ConfigError(
            f"agents.models: conf/model/{entry}.yaml is incomplete ({str(error).splitlines()[0]}); name its model "
            "folder instead"
        ) from None


def default_base(config: Config) -> str:
    """The base of requests that name none (summaries, serve's `base`): agent 0's."""
    return config.agents.models[0] if config.agents.models else config.model.name


def agent_bases(config: Config) -> tuple[str | None, ...]:
    """Each agent's base key in a mixed society; all None (the default base) in a homogeneous one."""
    return tuple(config.agents.models) if config.agents.mixed else (None,) * config.agents.n


def base_configs(config: Config) -> dict[str, ModelConfig]:
    """Every base the society runs on, by key, agent 0's (the default) first."""
    keys = dict.fromkeys([default_base(config), *config.agents.models])
    return {key: model_config(key, config.model) for key in keys}


def society_label(models: Sequence[str]) -> str | None:
    """Bases as a label: the one name when every agent shares it, else each agent's joined by '+'; None for
    none (an agents.models left empty)."""
    return "+".join(models) if len(set(models)) > 1 else next(iter(models), None)


def society_name(config: Config) -> str:
    """The society's base models as a label (`model`'s name when agents.models is empty)."""
    return society_label(config.agents.models) or config.model.name


def adapter_bases(config: Config) -> dict[str, str]:
    """The base that hosts each adapter a run may train: agent i's on agent i's base, the shared adapter (one
    base only) on the default."""
    default = default_base(config)
    owners = {name(i): key or default for i, key in enumerate(agent_bases(config)) for name in (generator, critic)}
    return owners if config.agents.mixed else {**owners, SHARED: default}
