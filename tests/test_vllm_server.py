"""Server mode for real (`make test-vllm`): one `vllm serve` (vLLM's CPU build, loopback) serves a whole `iterate`
run through backend=openai, each iteration's adapters loaded into it at run time while training runs here."""

import os
import re
import subprocess
import sys

import httpx2 as httpx
import pytest
from test_serve import free_port, wait_until_up
from test_vllm_engine import ENGINE, MODEL, require_vllm

from debate_ft import cli
from debate_ft.backends import Request
from debate_ft.backends.openai import OpenAIBackend
from debate_ft.backends.vllm import RUNTIME_LORA_ENV, server_command
from debate_ft.config import BackendConfig, GenerationConfig

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    require_vllm()
    port, log = free_port(), tmp_path_factory.mktemp("vllm") / "server.log"
    command = server_command(MODEL, ENGINE, on_cpu=True)
    command[0] = sys.executable  # this venv's python
    env = {**os.environ, **RUNTIME_LORA_ENV}
    with log.open("w") as output:
        process = subprocess.Popen([*command, "--port", str(port)], env=env, stdout=output, stderr=output)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_up(url, process, seconds=600)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_iterate_serves_every_iteration_from_one_server(vllm_server, tmp_path, capsys):
    settings = [
        "+dataset=arithmetic", "dataset.operands=2", "dataset.max_value=9", "dataset.train_size=8",
        "dataset.test_size=8", "agents.n=2", "generation.max_new_tokens=32", "generation.temperature=0.3",
        "backend=openai", f"backend.base_url={vllm_server}", "backend.dtype=bfloat16", "train.epochs=1",
        "train.batch_size=4", "diversity.enabled=false", f"run.root={tmp_path}", "run.name=served", "iterations=2",
    ]  # fmt: skip
    assert cli.main(["iterate", *settings]) == 0
    metrics = (tmp_path / "served" / "metrics.csv").read_text()
    assert re.search(r"\n2,test,debate,", metrics), metrics
    served = [model["id"] for model in httpx.get(f"{vllm_server}/models").json()["data"]]
    trained = {f"iter{k}/{p.name}" for k in (1, 2) for p in (tmp_path / "served" / f"iter{k}" / "adapters").iterdir()}
    assert trained and trained <= set(served), (trained, served)


def test_the_server_scores_completions_like_the_engine_does(vllm_server):
    """The diversity stage's log-probabilities through /completions with echo (one request at a time: the CPU
    build's LoRA head fails on batches of prompt log-probabilities, see backends/vllm.py)."""
    backend = OpenAIBackend(MODEL, BackendConfig(name="openai", base_url=vllm_server, concurrency=1))
    request = Request([{"role": "user", "content": "What is 2+3?"}])
    scores = backend.logprobs([request, request], ["The answer is 5.", "The answer is 6."])
    assert len(scores[0]) == len(scores[1]) >= 6 and scores[0][:4] == pytest.approx(scores[1][:4], abs=1e-3)
    assert scores[0][4] > scores[1][4]  # "5" is the likelier token after "The answer is"
    reply = backend.generate([request], GenerationConfig(max_new_tokens=16, temperature=0), seed=0)[0]
    assert reply.tokens > 0 and reply.prompt_tokens == backend.prompt_tokens(request.messages)
