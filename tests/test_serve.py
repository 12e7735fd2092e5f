"""`serve` and `backend=openai` against each other: a real server on loopback, started and stopped here, over a
run trained on the tiny random Llama; the client is the project's own OpenAI backend (the official client)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time

import httpx2 as httpx
import openai
import pandas as pd
import pytest
from conftest import CLI, cli

from debate_ft.backends import Request
from debate_ft.backends.hf import HFBackend
from debate_ft.backends.openai import OpenAIBackend
from debate_ft.config import BackendConfig, GenerationConfig
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


@contextlib.contextmanager
def serving(run_dir, *args):
    """`python -m debate_ft serve RUN` on a free loopback port, requiring the key `secret`; stopped on exit."""
    port = free_port()
    env = {**os.environ, KEY_ENV: "secret"}
    command = [*CLI, "serve", str(run_dir), "--port", str(port), "--device", "cpu",
               "--api-key-env", KEY_ENV, *args]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(diversity_run):
    with serving(diversity_run) as url:
        yield url


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
    Request(
        [
            {"role": "user", "content": "Check 9-1."},
            {"role": "assistant", "content": "8"},
            {"role": "user", "content": "Sure?"},
        ],
        "crit1",
    ),  # fmt: skip
]


def test_models_are_the_base_each_adapter_and_the_society(server, tiny_model_config, monkeypatch):
    backend = client_backend(tiny_model_config, server, monkeypatch)
    adapters = ["crit0", "crit1", "gen0", "gen1"]
    assert backend.served == ["base", *adapters, *(f"iter1/{a}" for a in adapters), "society"]
    assert backend.base == "base"


def test_generate_and_logprobs_match_the_hf_backend(server, tiny_model_config, monkeypatch, local, diversity_run):
    backend = client_backend(tiny_model_config, server, monkeypatch, concurrency=3)
    for name in ("gen0", "crit1"):  # as iterate loads them: the run's folder, served as iter1/<name>
        backend.load_adapter(name, diversity_run / "iter1" / "adapters" / name)
    assert backend._adapters == {"gen0": "iter1/gen0", "crit1": "iter1/crit1"}
    remote = backend.generate(REQUESTS, GREEDY, seed=0)
    expected = [local.generate([request], GREEDY, seed=0)[0] for request in REQUESTS]
    assert [(c.text, c.tokens) for c in remote] == [(c.text, c.tokens) for c in expected]
    assert all(c.prompt_tokens == local.prompt_tokens(r.messages) for c, r in zip(remote, REQUESTS))
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
    message = "does not serve adapter 'iter2/gen0' and did not load it at run time \\(404\\); start vLLM with"
    with pytest.raises(ModelError, match=message):
        backend.load_adapter("gen0", "runs/x/iter2/adapters/gen0")  # it serves iteration 1's gen0, not this one


def test_wrong_url_is_one_line(tiny_model_config, monkeypatch):
    with pytest.raises(ModelError, match="no OpenAI-compatible server answers at http://127.0.0.1:"):
        client_backend(tiny_model_config, f"http://127.0.0.1:{free_port()}/v1", monkeypatch, max_retries=0)


def test_the_matching_vllm_command_names_every_adapter(diversity_run, tiny_model_dir):
    command = cli("serve", str(diversity_run), "--vllm-command", check=True).stdout.strip()
    adapters = diversity_run / "iter1" / "adapters"
    assert command.startswith(f"vllm serve {tiny_model_dir} --served-model-name base --dtype auto --enable-lora ")
    assert " --max-lora-rank 16 " in command  # one of vLLM's ranks, never the adapters' own 8 as such
    assert command.endswith(
        " --lora-modules " + " ".join(f"iter1/{name}={adapters / name}" for name in ("crit0", "crit1", "gen0", "gen1"))
    )


def test_iterate_runs_through_the_server(diversity_run, tiny_model_dir, tmp_path):
    """`iterate backend=openai` end to end against a server of the same tiny base: debates, the diversity stage's
    log-probabilities and the compute accounting all go through HTTP. (The random model's answers give no
    training data, so no adapter is trained: the unserved-adapter path is the test above.)"""
    run = tmp_path / "run"
    args = ["iterate", "+dataset=arithmetic", "backend=openai", "model=local", f"model.path={tiny_model_dir}",
            f"backend.api_key_env={KEY_ENV}", f"run.root={tmp_path}", "run.name=run", "iterations=1", "agents.n=2",
            "dataset.train_size=4", "dataset.test_size=2", "train.epochs=1", "generation.max_new_tokens=8",
            "diversity.questions=1"]  # fmt: skip
    with serving(diversity_run, "--iteration", "0") as url:  # the same tiny base model, no adapters
        done = cli(*args, f"backend.base_url={url}", env={**os.environ, KEY_ENV: "secret"}, timeout=600)
    assert done.returncode == 0, done.stderr
    assert sorted(set(pd.read_csv(run / "metrics.csv")["iteration"])) == [0, 1]
    diversity = pd.read_csv(run / "diversity.csv")
    assert list(diversity["iteration"]) == [0, 1] and (diversity["kl_token"] == 0.0).all()  # scored by the server
    assert diversity["nll_self"].notna().all()
    compute = pd.read_csv(run / "compute.csv")
    debates = compute[(compute["stage"] == "debate") & (compute["agent"] == "all")]
    assert len(debates) == 3 and (debates["prompt_tokens"] > 0).all() and (debates["generated_tokens"] > 0).all()
    assert "secret" not in (run / "config.yaml").read_text() and KEY_ENV in (run / "config.yaml").read_text()


def post(url: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers={"Authorization": "Bearer secret"}, timeout=60)


HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "path, body, message",
    [
        ("/chat/completions", {"model": "base", "messages": HI, "max_tokens": -1}, "max_tokens: Input should be"),
        ("/chat/completions", {"model": "base", "messages": HI, "max_tokens": 10**9}, "this model's context is"),
        ("/chat/completions", {"model": "base", "messages": HI, "temperature": -0.5}, "temperature: Input should be"),
        ("/chat/completions", {"model": "base", "messages": HI, "top_p": 1.5}, "top_p: Input should be"),
        ("/chat/completions", {"model": "base", "messages": HI, "top_p": 0}, "top_p: Input should be"),
        ("/chat/completions", {"model": "base", "messages": []}, "messages: List should have at least 1 item"),
        ("/chat/completions", {"model": "base", "messages": HI, "seed": 2**70}, "seed: Input should be less than"),
        ("/chat/completions", {"model": "society", "messages": [{"role": "user", "content": "x " * 600_000}]},
         "this model's context is"),
        ("/completions", {"model": "base", "prompt": [1, 2, 10**9], "echo": True, "logprobs": 0}, "token ids must be"),
        ("/completions", {"model": "base", "prompt": [-1], "echo": True, "logprobs": 0}, "token ids must be"),
        ("/completions", {"model": "base", "prompt": [], "echo": True, "logprobs": 0}, "prompt: "),
        ("/completions", {"model": "base", "prompt": [5] * 100_000, "echo": True, "logprobs": 0},
         "this model's context is"),
        ("/completions", {"model": "base", "prompt": "a" * 1_000_000, "echo": True, "logprobs": 0},
         "this model's context is"),
    ],
)  # fmt: skip
def test_out_of_range_requests_are_400s_with_a_message_not_500s(server, path, body, message):
    """Each answered at once: nothing is generated or scored for a request that cannot be served."""
    start = time.time()
    response = post(server, path, body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]["message"]
    assert time.time() - start < 10


def test_a_temperature_of_nan_is_refused(server):
    body = '{"model": "base", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}'
    response = httpx.post(f"{server}/chat/completions", content=body,
                          headers={"Authorization": "Bearer secret", "Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 400 and "temperature" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "args, message", [(["--iteration", "7"], "has iterations 0..1"), (["--iteration", "-1"], "has iterations 0..1"),
                      (["--port", "70000"], "is not a port")]
)  # fmt: skip
def test_serve_refuses_an_iteration_or_port_it_cannot_have_before_loading(diversity_run, args, message):
    result = cli("serve", str(diversity_run), *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
