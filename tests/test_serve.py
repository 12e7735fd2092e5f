"""`serve` and `backend=openai` against each other: a real server on loopback, started and stopped here, over a
run trained on the tiny random Llama; the client is the project's own OpenAI backend (the official client)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx2 as httpx
import openai
import pytest

from debate_ft.backends import Request
from debate_ft.backends.hf import HFBackend
from debate_ft.backends.openai import OpenAIBackend
from debate_ft.config import BackendConfig, GenerationConfig, ModelConfig
from debate_ft.errors import ModelError
from debate_ft.models import host

KEY_ENV = "DEBATE_FT_TEST_KEY"
GREEDY = GenerationConfig(max_new_tokens=12, temperature=0.0, top_p=1.0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {process.stderr.read()}")
        try:
            if httpx.get(f"{url}/models", headers={"Authorization": "Bearer secret"}).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not come up")


@pytest.fixture(scope="module")
def server(diversity_run):
    """`python -m debate_ft serve RUN` on a free loopback port, requiring the key `secret`."""
    port = free_port()
    env = {**os.environ, KEY_ENV: "secret"}
    command = [sys.executable, "-m", "debate_ft", "serve", str(diversity_run), "--port", str(port),
               "--device", "cpu", "--api-key-env", KEY_ENV]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def client_backend(tiny_model_config, url, monkeypatch, **settings) -> OpenAIBackend:
    monkeypatch.setenv(KEY_ENV, settings.pop("key", "secret"))
    return OpenAIBackend(tiny_model_config, BackendConfig(name="openai", base_url=url, api_key_env=KEY_ENV, **settings))


@pytest.fixture
def local(tiny_model_config, diversity_run) -> HFBackend:
    """The same society in this process, to compare the server's answers with."""
    backend = HFBackend(host(tiny_model_config, device="cpu"), batch_size=8)
    for folder in sorted((diversity_run / "iter1" / "adapters").iterdir()):
        backend.load_adapter(folder.name, folder)
    return backend


REQUESTS = [
    Request([{"role": "user", "content": "What is 3+4?"}], "gen0"),
    Request([{"role": "user", "content": "What is 2*5?"}], None),
    Request([{"role": "user", "content": "Check 9-1."}, {"role": "assistant", "content": "8"},
             {"role": "user", "content": "Sure?"}], "crit1"),  # fmt: skip
]


def test_models_are_the_base_each_adapter_and_the_society(server, tiny_model_config, monkeypatch):
    backend = client_backend(tiny_model_config, server, monkeypatch)
    assert backend.served == ["base", "crit0", "crit1", "gen0", "gen1", "society"] and backend.base == "base"


def test_generate_and_logprobs_match_the_hf_backend(server, tiny_model_config, monkeypatch, local):
    backend = client_backend(tiny_model_config, server, monkeypatch, concurrency=3)
    for name in ("gen0", "crit1"):
        backend.load_adapter(name, "unused")
    remote = backend.generate(REQUESTS, GREEDY, seed=0)
    expected = [local.generate([request], GREEDY, seed=0)[0] for request in REQUESTS]
    assert [(c.text, c.tokens) for c in remote] == [(c.text, c.tokens) for c in expected]
    assert all(c.prompt_tokens == len(local.prompt_ids(r.messages)) for c, r in zip(remote, REQUESTS))
    completions = ["The answer is 7.", "10", "Yes, 8."]
    got, want = backend.logprobs(REQUESTS, completions), local.logprobs(REQUESTS, completions)
    assert [len(row) for row in got] == [len(row) for row in want]
    assert all(g == pytest.approx(w, abs=1e-4) for g, w in zip(got, want))


def test_the_society_model_runs_a_debate(server):
    client = openai.OpenAI(base_url=server, api_key="secret")
    reply = client.chat.completions.create(
        model="society", messages=[{"role": "user", "content": "What is 3+4?"}], max_tokens=8
    )
    debate = reply.model_extra["debate"]
    assert debate["agents"] == 2 and debate["rounds"] == 2 and debate["iteration"] == 1
    assert len(debate["turns"]) == 4 and {t["adapter"] for t in debate["turns"]} == {"gen0", "gen1", "crit0", "crit1"}
    assert reply.choices[0].message.content == (debate["answer"] or "")
    assert reply.usage.completion_tokens == sum(t["tokens"] for t in debate["turns"])


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"key": "wrong"}, f"refused the request (401): ${KEY_ENV} holds a key the server refuses"),
        ({"served_model": "llama"}, "does not serve backend.served_model 'llama'; it serves base, crit0"),
    ],
)
def test_wrong_key_or_model_is_one_line(server, tiny_model_config, monkeypatch, settings, message):
    with pytest.raises(ModelError, match=message.replace("$", r"\$").replace("(", r"\(").replace(")", r"\)")):
        client_backend(tiny_model_config, server, monkeypatch, **settings)


def test_unserved_adapter_names_the_serve_command(server, tiny_model_config, monkeypatch):
    backend = client_backend(tiny_model_config, server, monkeypatch)
    with pytest.raises(ModelError, match="does not serve adapter 'gen7'; serve it, e.g. vllm serve BASE"):
        backend.load_adapter("gen7", "runs/x/iter1/adapters/gen7")


def test_wrong_url_is_one_line(tiny_model_config, monkeypatch):
    with pytest.raises(ModelError, match="no OpenAI-compatible server answers at http://127.0.0.1:"):
        client_backend(tiny_model_config, f"http://127.0.0.1:{free_port()}/v1", monkeypatch, max_retries=0)
