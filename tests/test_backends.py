"""The engine boundary: every engine offers the Backend protocol, says whether trainers may update its model,
renders prompts through one helper, and the package's fake engine knows no task."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from fakes import arithmetic_agents
from helpers import error_line, run

from debate_ft.backends import Backend, Request, Trainable, fake
from debate_ft.backends.fake import FakeBackend
from debate_ft.backends.hf import HFBackend
from debate_ft.backends.openai import OpenAIBackend
from debate_ft.backends.vllm import VLLMBackend
from debate_ft.chat import prompt_ids
from debate_ft.compute import Ledger, Metered
from debate_ft.config import GenerationConfig

PROTOCOL = [name for name, value in vars(Backend).items() if not name.startswith("_") and callable(value)]
QUESTION = [{"role": "user", "content": "What is 2+3?"}]


def test_the_protocol_names_what_callers_use():
    assert sorted(PROTOCOL) == [
        "choice_logprobs",
        "generate",
        "load_adapter",
        "logprobs",
        "offloaded",
        "prompt_tokens",
        "trainable",
    ]


def test_engines_without_a_one_pass_path_read_choices_off_their_scored_replies(tmp_path):
    engine = FakeBackend()
    requests = [Request(QUESTION), Request(QUESTION, "a")]
    rows = engine.logprobs([r for r in requests for _ in range(2)], ["Yes", "No"] * 2)
    assert engine.choice_logprobs(requests, ["Yes", "No"]) == [[rows[0][0], rows[1][0]], [rows[2][0], rows[3][0]]]
    ledger = Ledger(tmp_path)
    assert Metered(engine, ledger).choice_logprobs(requests, ["Yes", "No"]) == engine.choice_logprobs(
        requests, ["Yes", "No"]
    )


@pytest.mark.parametrize("engine", [HFBackend, FakeBackend, OpenAIBackend, VLLMBackend, Metered])
def test_every_engine_class_has_the_protocol_with_its_signatures(engine):
    for name in PROTOCOL:
        wanted = list(inspect.signature(getattr(Backend, name)).parameters)
        assert list(inspect.signature(getattr(engine, name)).parameters) == wanted, f"{engine.__name__}.{name}"


def test_hf_serves_the_model_trainers_update(tiny_backend, tmp_path):
    assert isinstance(tiny_backend, Backend) and isinstance(tiny_backend, Trainable)
    assert tiny_backend.trainable() is tiny_backend and tiny_backend.trainable().hosted is tiny_backend.hosted
    metered = Metered(tiny_backend, Ledger(tmp_path))  # iterate's wrapper hands out the same model
    assert isinstance(metered, Backend) and metered.trainable().hosted is tiny_backend.hosted
    assert tiny_backend.prompt_tokens(QUESTION) == metered.prompt_tokens(QUESTION) == 37


def test_the_fake_engine_only_serves(tmp_path):
    engine = FakeBackend()
    assert isinstance(engine, Backend) and not isinstance(engine, Trainable)
    assert engine.trainable() is None and Metered(engine, Ledger(tmp_path)).trainable() is None


def test_the_chat_helper_gives_the_ids_the_hf_backend_gave(tiny_backend):
    """Ids the HF backend built itself before the helper existed (SmolLM2's template, its default system
    message when none is configured)."""
    tokenizer = tiny_backend.tokenizer
    brief = prompt_ids(tokenizer, QUESTION, "Be brief.")
    assert brief == [1, 9690, 198, 6077, 5453, 30, 2, 198, 1, 4093, 198, 1780, 314, 216, 34, 27, 35, 47, 2, 198,
                     1, 520, 9531, 198]  # fmt: skip
    assert tokenizer.decode(brief) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
    )
    default = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712,
               8182, 2, 198, 1, 4093, 198, 1780, 314, 216, 34, 27, 35, 47, 2, 198, 1, 520, 9531, 198]  # fmt: skip
    assert prompt_ids(tokenizer, QUESTION, None) == default
    # a conversation that already opens with a system message keeps it
    assert prompt_ids(tokenizer, [{"role": "system", "content": "Be brief."}, *QUESTION], "Other.") == brief


def test_the_package_fake_knows_no_task():
    source = Path(fake.__file__).read_text()
    for word in ("arithmetic", "debate_ft.tasks", "```", "opinions", "result of", "gsm", "musique"):
        assert word not in source, word


def test_the_default_script_answers_any_prompt_reproducibly():
    engine = FakeBackend()
    prompts = ["What is the capital of France?", "```1``` ```2```", "", "Search query: x", "¿Qué?"] * 20
    requests = [Request([{"role": "user", "content": p + str(i)}]) for i, p in enumerate(prompts)]
    replies = [c.text for c in engine.generate(requests, GenerationConfig(), seed=0)]
    boxed = [re.fullmatch(r"Working through it, the answer is \\boxed\{([0-3])\}\.", r) for r in replies]
    silent = [r == "I am not sure how to solve this." for r in replies]
    assert all(b or s for b, s in zip(boxed, silent)) and 0 < sum(silent) < 25
    assert len({b.group(1) for b in boxed if b}) == 4
    assert [c.text for c in engine.generate(requests, GenerationConfig(), seed=0)] == replies
    assert [c.text for c in engine.generate(requests, GenerationConfig(), seed=1)] != replies


def test_a_script_gets_the_messages_and_a_draw_that_separates_samples():
    seen = []

    def script(messages, draw):
        seen.append(messages)
        return f"{draw('x'):.6f}"

    engine = FakeBackend(script)
    request = Request(QUESTION)
    first, second = engine.generate([request, request], GenerationConfig(), seed=0)
    assert seen == [QUESTION, QUESTION] and first.text != second.text  # identical requests, independent samples
    assert engine.generate([request], GenerationConfig(), seed=0)[0] == first


def test_the_tests_arithmetic_agents_run_on_the_package_fake():
    engine = FakeBackend(arithmetic_agents)
    question = Request([{"role": "user", "content": "What is the result of 2+3*4?"}])
    replies = [c.text for c in engine.generate([question] * 40, GenerationConfig(), seed=0)]
    assert "2+3*4 = 14. The answer is 14." in replies and any(r.endswith(".") and "14" not in r for r in replies)


@pytest.mark.parametrize(
    "script, needles",
    [
        ("fakes", ["backend.script must be 'module:function'", "'fakes'"]),
        ("no_such_module:agents", ["backend.script=no_such_module:agents", "cannot import", "PYTHONPATH"]),
        ("fakes:no_such_script", ["backend.script=fakes:no_such_script", "has no 'no_such_script'"]),
        ("fakes:ACCURACY", ["backend.script=fakes:ACCURACY", "not a function"]),
    ],
)
def test_a_bad_script_is_one_line(script, needles, tmp_path, capsys):
    argv = ["evaluate", "+dataset=arithmetic", "backend=fake", f"backend.script={script}", "dataset.test_size=2"]
    code, output = run([*argv, f"run.root={tmp_path}"], capsys)
    error = error_line(output)
    assert code == 2 and all(needle in error for needle in needles), error
    assert not list(tmp_path.rglob("*.jsonl"))
