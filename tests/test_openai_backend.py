"""backend=openai against a stand-in server on loopback that fails the way real ones do: 429 and 503 answers
are retried with backoff; a server without prompt log-probabilities makes the diversity stage skip, and say so."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from debate_ft.backends import Backend, LogprobsUnsupported, Request
from debate_ft.backends.openai import OpenAIBackend
from debate_ft.chat import prompt_ids
from debate_ft.config import BackendConfig, DatasetConfig, GenerationConfig
from debate_ft.debate import Debate
from debate_ft.diversity import measure
from debate_ft.methods import Society
from debate_ft.models import load_tokenizer
from debate_ft.tasks import get_task


def flaky_app(calls: Counter) -> FastAPI:
    """A hosted-API lookalike: the first chat request of each conversation gets 429, the second 503."""
    app = FastAPI()

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": "hosted", "object": "model", "created": 0, "owned_by": "x"}]}

    @app.post("/v1/chat/completions")
    def chat(body: dict):
        question = body["messages"][-1]["content"]
        calls[question] += 1
        if calls[question] <= 2:
            status = 429 if calls[question] == 1 else 503
            return JSONResponse({"error": {"message": "busy", "type": "x", "code": None}}, status_code=status)
        content = f"Working through it, the answer is \\boxed{{{len(question) % 3}}}."
        choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        usage = {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}
        return {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"], "choices": [choice],
                "usage": usage}  # fmt: skip

    @app.post("/v1/completions")
    def completions():
        message = "echo is not supported with this model"
        return JSONResponse({"error": {"message": message, "type": "x", "code": None}}, status_code=400)

    return app


@pytest.fixture(scope="module")
def flaky_server():
    calls: Counter = Counter()
    server = uvicorn.Server(uvicorn.Config(flaky_app(calls), host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/v1", calls
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def backend(flaky_server, tiny_model_config, monkeypatch) -> OpenAIBackend:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return OpenAIBackend(tiny_model_config, BackendConfig(name="openai", base_url=flaky_server[0], concurrency=4))


def test_an_openai_engine_serves_only_and_counts_prompts_with_the_local_tokenizer(backend, tiny_model_config):
    assert isinstance(backend, Backend) and backend.trainable() is None
    messages = [{"role": "user", "content": "What is 2+3?"}]
    assert backend.prompt_tokens(messages) == len(prompt_ids(load_tokenizer(tiny_model_config), messages, None))


def test_429_and_503_are_retried_with_backoff(backend, flaky_server):
    requests = [Request([{"role": "user", "content": f"question {i}"}]) for i in range(4)]
    start = time.perf_counter()
    completions = backend.generate(requests, GenerationConfig(), seed=0)
    assert all("the answer is" in c.text and c.tokens == 9 and c.prompt_tokens == 5 for c in completions)
    assert all(flaky_server[1][f"question {i}"] == 3 for i in range(4))
    assert time.perf_counter() - start >= 0.5  # backed off before retrying (the client's first wait is >= 0.5 s)


def test_without_prompt_logprobs_diversity_skips_the_likelihood_metrics(backend, fake_backend, capsys):
    task = get_task(DatasetConfig(name="arithmetic", test_size=3))
    debate = Debate(task, fake_backend, Society.base(2), 2, False, GenerationConfig())
    records = debate.chunk(task.load("test"), seed=0)
    with pytest.raises(LogprobsUnsupported, match="does not score prompts"):
        backend.logprobs([Request([{"role": "user", "content": "x"}])], ["y"])
    row, kl, matrix = measure(records, task, backend, lambda texts: np.eye(len(texts), 4))
    out = capsys.readouterr().out
    assert "skipped kl_token, kl_response, nll_self, nll_cross, nll_pair_gap" in out and "(completions" in out
    assert math.isnan(row["kl_token"]) and math.isnan(row["nll_cross"]) and np.isnan(matrix).all()
    assert row["nll_unit"] is None  # no NLL was measured, so it has no unit
    assert not math.isnan(row["dissimilarity"]) and "echo + logprobs" in row["likelihood_skipped"]
    assert list(kl["agent"]) == [0, 1]
