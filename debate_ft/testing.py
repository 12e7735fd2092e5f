"""Stand-ins for the tests and the benchmark (no stage uses them): a tiny random model with the embedded model's
tokenizer, and MuSiQue-format rows."""

from __future__ import annotations

from pathlib import Path

import torch

from debate_ft.config import ModelConfig
from debate_ft.models import load_tokenizer


def save_tiny_model(folder: Path, hidden_size: int = 64, seed: int = 0) -> Path:
    """A 3M-parameter random Llama with the embedded model's tokenizer and chat template, saved as a model
    directory: what the tests and `bench --quick` run on, offline, in about a second (another `hidden_size` and
    `seed`: a second base model, e.g. for a mixed society)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = load_tokenizer(ModelConfig())
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def musique_row(n: int, answerable: bool = True, **change) -> dict:
    """A MuSiQue-format two-hop question with two gold paragraphs (their text starts with GOLD) and two
    distractors; `answerable=False` is MuSiQue-Full's twin, which lacks the second supporting paragraph. `change`
    replaces fields."""
    paragraphs = [
        (f"Widget {n}", f"GOLD The widget {n} is made by Maker {n} in Springfield."),
        (f"Maker {n}", f"GOLD Maker {n} was founded by Ada Lovelace {n}." if answerable else "Makers sell widgets."),
        ("Weather", "It often rains in autumn and the rivers rise."),
        ("Cooking", "Bread needs flour, water, salt and yeast."),
    ]
    row = {
        "id": f"2hop__{n}_{n + 100}",
        "paragraphs": [
            {"idx": i, "title": title, "paragraph_text": text, "is_supporting": answerable and text.startswith("GOLD")}
            for i, (title, text) in enumerate(paragraphs)
        ],
        "question": f"Who founded the maker of widget {n}?",
        "question_decomposition": [
            {"id": 1, "question": f"widget {n} >> manufacturer", "answer": f"Maker {n}", "paragraph_support_idx": 0},
            {"id": 2, "question": "Who founded #1?", "answer": f"Ada Lovelace {n}", "paragraph_support_idx": 1},
        ],
        "answer": f"Ada Lovelace {n}",
        "answer_aliases": [f"Countess {n}"],
        "answerable": answerable,
    }
    return {**row, **change}
