"""A conversation as token ids: the system message, the prompt a model reads before its reply, the reply's ids and
the tokens that end it. Every engine that tokenizes locally builds its prompts here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from debate_ft.models import HostedModel


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
