"""A run directory's saved settings: written by every command, read back to resume, compare and report.

`prepare_run_dir` saves the resolved config and refuses to resume a run directory made with different settings
(VOLATILE ones aside); `saved_config` reads one back as typed dataclasses, in today's keys, settings added since
taking their defaults. Above both config.py (the schema) and runs.py (files), so neither imports the other.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from debate_ft.config import Config, DatasetConfig
from debate_ft.errors import ERROR_LOG, ConfigError
from debate_ft.methods import split_legacy_method
from debate_ft.runs import LOCK, recover, write_text

# Settings that may change between invocations on one run directory without changing any result. `method`
# (evaluate's scoring) is one: a transcript is named by its debate's shape ({split}_{agents}x{rounds}), so two
# scorings share one only when they debate alike, and metrics rows are keyed by the scoring's name. `ft_method`
# is not: one method's datasets, adapters and metrics rows would be read as another's.
VOLATILE = (
    "method",
    "extra_scorings",  # adds test debates, changes none already made
    "iterations",
    "run",
    "backend.threads",
    "backend.device",
    "backend.score_memory_mib",
    # vLLM's memory and parallelism plan: how the same model is laid out on the devices, not what it computes
    "backend.gpu_memory_utilization",
    "backend.max_loras",
    "backend.max_model_len",
    "backend.tensor_parallel_size",
    "backend.data_parallel_size",
    "backend.enforce_eager",
    "backend.sleep_while_training",
    "train.processes",  # where the adapters train, not what they learn (sharded training equals one process's)
    "backend.base_url",  # the openai backend's connection settings: the same served model anywhere
    "backend.api_key_env",
    "backend.concurrency",
    "backend.max_retries",
    "backend.timeout_s",
    "debate.split",
    "flow.train",
    "flow.eval_before",
    "diversity.enabled",  # only adds diversity.csv; every other output is the same with it on or off
)


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _fingerprint(settings: dict) -> dict:
    return {k: v for k, v in _flatten(settings).items() if not any(k == p or k.startswith(p + ".") for p in VOLATILE)}


def prepare_run_dir(run_dir: Path, settings: dict) -> None:
    """Save the resolved config; refuse to resume a run directory made with different settings."""
    recover(run_dir)
    saved_path = run_dir / "config.yaml"
    if saved_path.exists():
        written = read_saved_config(saved_path)
        saved_backend = written.get("backend") or {}
        if saved_backend.get("name") == "fake" and "fake_accuracy" in saved_backend:
            raise ConfigError(
                f"{run_dir} was debated by the fake engine's old task-aware replies, which the package no longer "
                "has; pick a new run.name"
            )
        saved = _fingerprint(in_todays_keys(written))
        current = _fingerprint(settings)
        added = _flatten(schema_defaults())  # a setting added since the run was saved counts at its default
        changed = sorted(k for k in saved.keys() | current.keys() if saved.get(k, added.get(k)) != current.get(k))
        if "ft_method" in changed:
            raise ConfigError(
                f"{run_dir} holds a run of ft_method={saved['ft_method']}, not ft_method={current['ft_method']}: "
                f"resume it with ft_method={saved['ft_method']} or pick a new run.name"
            )
        if changed and has_results(run_dir):
            raise ConfigError(
                f"{run_dir} holds a run with other settings ({', '.join(changed[:6])}); "
                "resume it with the same settings or pick a new run.name"
            )
    write_text(saved_path, OmegaConf.to_yaml(OmegaConf.create(settings)))


# what a command writes before its first result
BOOKKEEPING = {"config.yaml", ".hydra", "cli.log", ERROR_LOG, LOCK}


def has_results(run_dir: Path) -> bool:
    """Whether a run directory holds more than bookkeeping: a run that failed before its first result (say,
    on a mistyped dataset.path) may be started again with corrected settings."""
    return any(path.name not in BOOKKEEPING for path in run_dir.iterdir())


def load_saved_config(path: Path) -> dict:
    """A run's saved config.yaml as a plain dict in today's keys (in_todays_keys)."""
    return in_todays_keys(read_saved_config(path))


def in_todays_keys(written: dict) -> dict:
    """A saved config as today's settings: one saved by an older version has its `method` split into method
    and ft_method, and the removed backend.fake_accuracy dropped."""
    tree = split_legacy_method(written)
    backend = tree.get("backend")
    if isinstance(backend, dict) and "fake_accuracy" in backend:
        tree["backend"] = {key: value for key, value in backend.items() if key != "fake_accuracy"}
    return tree


def read_saved_config(path: Path) -> dict:
    """A run's saved config.yaml as written, a plain dict with interpolations left unresolved (a run directory
    may come from anyone: `${oc.env:...}` in it must never be expanded)."""
    try:
        tree = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as error:  # yaml and omegaconf raise many types for a damaged file
        raise ConfigError(f"{path}: not a readable config ({type(error).__name__}); delete or repair it") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: not a readable config (expected a mapping)")
    return tree


def schema_defaults() -> dict:
    """Every setting at its schema default, as a plain nested dict (the dataset sections' too, unvalidated)."""
    dataset = OmegaConf.to_container(OmegaConf.structured(DatasetConfig), resolve=True)
    return {
        **OmegaConf.to_container(OmegaConf.structured(Config), resolve=True),
        "dataset": dataset,
        "eval_dataset": dataset,
    }


def saved_config(run_dir) -> Config:
    """A run directory's config.yaml as typed dataclasses, in today's keys (load_saved_config); keys added
    since it was saved take their defaults."""
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml)")
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), load_saved_config(path)))
