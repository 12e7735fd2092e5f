"""Offline behaviour: hub models and hub datasets fail with a message that says what to do. The `hub`
and `gpu` tests are the same paths for real; they are deselected by default (pytest -m hub / -m gpu)."""

import pytest

from debate_ft.backends import Request
from debate_ft.backends.engines import make_backend
from debate_ft.config import BackendConfig, DatasetConfig, GenerationConfig, ModelConfig
from debate_ft.errors import DataError, ModelError
from debate_ft.models import load_tokenizer
from debate_ft.tasks import get_task

HUB_MODEL = ModelConfig(name="qwen2.5-1.5b", path="Qwen/Qwen2.5-1.5B-Instruct", gguf_package=None, gguf_file=None)


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # fail at once instead of retrying an unreachable hub
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.delenv("DEBATE_FT_DATA", raising=False)


def test_hub_model_offline_says_what_to_use(offline):
    with pytest.raises(ModelError, match=r"model 'qwen2.5-1.5b'.*model=smollm2"):
        load_tokenizer(HUB_MODEL)


def test_missing_embedded_package_says_how_to_install():
    config = ModelConfig(name="emb", gguf_package="no_such_package_here", gguf_file="x.gguf")
    with pytest.raises(ModelError, match="needs the package no-such-package-here: `make install`"):
        load_tokenizer(config)


def test_hub_dataset_offline_points_at_local_data(offline):
    with pytest.raises(DataError, match="dataset.path=<file or dir> or DEBATE_FT_DATA"):
        get_task(DatasetConfig(name="gsm")).load("test")


@pytest.mark.hub
def test_hub_dataset_and_model_load():
    assert len(get_task(DatasetConfig(name="gsm", test_size=5)).load("test")) == 5
    assert load_tokenizer(HUB_MODEL).chat_template


@pytest.mark.gpu
def test_vllm_backend_on_a_gpu():
    backend = make_backend(BackendConfig(name="vllm"), ModelConfig())
    out = backend.generate([Request([{"role": "user", "content": "What is 2+2?"}])], GenerationConfig(), seed=0)
    assert out[0].text and out[0].tokens > 0
    assert len(backend.logprobs([Request([{"role": "user", "content": "Hi"}])], ["Hello"])[0]) >= 2
