"""One agent's LoRA fine-tuning with TRL's SFT trainer, inside the shared base model.

Each conversation is tokenized the way generation sees it (the chat template rendered turn by turn), and
only assistant turns carry loss. The adapter trains under a temporary name, is saved as a plain PEFT
directory, and is dropped again, so serving adapters and the base weights are never touched.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from datasets import Dataset

from debate_ft.config import TrainConfig
from debate_ft.errors import ModelError
from debate_ft.models import HostedModel, with_system

log = logging.getLogger(__name__)

TRAINING = "training"  # the adapter name used while training


def lora_config(config: TrainConfig):
    from peft import LoraConfig

    targets = config.target_modules
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules="all-linear" if list(targets) == ["all-linear"] else list(targets),
        task_type="CAUSAL_LM",
    )


def tokenize_conversation(tokenizer, messages: Sequence[dict]) -> dict:
    """input_ids and assistant_masks (1 on assistant tokens, end-of-turn included) of one conversation,
    rendered prefix by prefix so every assistant turn is tokenized exactly as it was generated."""
    input_ids: list[int] = []
    masks: list[int] = []
    rendered = ""
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = tokenizer.apply_chat_template(list(messages[:index]), tokenize=False, add_generation_prompt=True)
        turn = tokenizer.apply_chat_template(list(messages[: index + 1]), tokenize=False)
        if not (prompt.startswith(rendered) and turn.startswith(prompt)):
            raise ModelError("the chat template is not prefix-preserving; cannot mask assistant turns")
        for text, mask in ((prompt[len(rendered) :], 0), (turn[len(prompt) :], 1)):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            input_ids += ids
            masks += [mask] * len(ids)
        rendered = turn
    return {"input_ids": input_ids, "assistant_masks": masks}


def tokenized_dataset(tokenizer, examples: Sequence[dict], system_prompt: str | None) -> Dataset:
    rows = [tokenize_conversation(tokenizer, with_system(e["messages"], system_prompt)) for e in examples]
    return Dataset.from_list(rows)


def train_adapter(
    hosted: HostedModel,
    examples: Sequence[dict],
    out_dir: Path,
    config: TrainConfig,
    seed: int,
    init_from: Path | None = None,
    system_prompt: str | None = None,
) -> dict:
    """Train one LoRA adapter on chat examples and save it at `out_dir`; returns the trainer's metrics."""
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(seed)  # the fresh adapter's initial weights
    if init_from is not None:
        hosted.load_adapter(TRAINING, init_from, trainable=True)
    else:
        hosted.add_adapter(TRAINING, lora_config(config))
    dataset = tokenized_dataset(hosted.tokenizer, examples, system_prompt)
    on_gpu = hosted.device.type == "cuda"
    with tempfile.TemporaryDirectory() as scratch:
        args = SFTConfig(
            output_dir=scratch,
            num_train_epochs=config.epochs,
            per_device_train_batch_size=config.batch_size,
            gradient_accumulation_steps=config.grad_accum,
            learning_rate=config.learning_rate,
            max_length=config.max_length,
            seed=seed,
            data_seed=seed,
            report_to=[] if config.report_to == "none" else [config.report_to],  # the schema checked the package
            logging_strategy="epoch",
            save_strategy="no",
            use_cpu=not on_gpu,
            bf16=on_gpu and torch.cuda.is_bf16_supported(),
            activation_checkpointing=False,  # it only slows a small CPU run down
            disable_tqdm=False,
        )
        trainer = SFTTrainer(model=hosted.peft, args=args, train_dataset=dataset, processing_class=hosted.tokenizer)
        result = trainer.train()
    hosted.peft.eval()
    hosted.save_adapter(TRAINING, out_dir)
    hosted.delete_adapter(TRAINING)
    log.info("trained %s on %d examples: loss %.4f", out_dir.name, len(examples), result.training_loss)
    return {"examples": len(examples), "loss": result.training_loss, "steps": result.global_step}
