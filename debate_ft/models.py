"""Loading a base model and hosting named LoRA adapters on it, shared by generation and training."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from debate_ft.config import ModelConfig
from debate_ft.devices import pick_device, pick_dtype
from debate_ft.errors import ModelError
from debate_ft.model_files import model_dir
from debate_ft.runs import atomic_path


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
    tokenizer.chat_template = config.chat_template or tokenizer.chat_template
    if not tokenizer.chat_template:
        raise ModelError(
            f"model '{config.name}' ({location}) has no chat template; pick an instruct model, or give one in "
            "model.chat_template"
        )
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
