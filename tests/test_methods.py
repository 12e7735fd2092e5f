"""The method registry: each fine-tuning method's society and training plan on hand-made sets, each scoring's
debate shape and vote, and the two settings kept apart (a resume with another ft_method is refused)."""

from pathlib import Path

import pytest
from conftest import compose_config
from helpers import error_line, run
from snapshots import snapshot

from debate_ft.config import to_dict
from debate_ft.errors import ConfigError
from debate_ft.label import AgentSets
from debate_ft.methods import (
    DEBATE_MAJORITY,
    FINE_TUNINGS,
    GOLD_RATIONALES,
    SCORINGS,
    SHARED,
    split_legacy_method,
)
from debate_ft.run_config import prepare_run_dir, saved_config

SETS = [
    AgentSets([{"ex": "g0a"}, {"ex": "g0b"}], [{"ex": "c0"}], {}, [{"ex": "p0"}]),
    AgentSets([{"ex": "g1"}], [{"ex": "c1a"}, {"ex": "c1b"}], {}, [{"ex": "p1a"}, {"ex": "p1b"}]),
]
G0, C0, G1, C1 = SETS[0].generator, SETS[0].critic, SETS[1].generator, SETS[1].critic
OWN_SETS = {"gen0": G0, "gen1": G1, "crit0": C0, "crit1": C1}
PLANS = {
    "multiagent_ft": OWN_SETS,
    "multiagent_dpo": {"gen0": SETS[0].pairs, "gen1": SETS[1].pairs, "crit0": C0, "crit1": C1},
    "no_summary": OWN_SETS,
    "no_critic": {"gen0": G0, "gen1": G1},
    "single_agent_ft": {SHARED: G0 + C0},
    "star": {SHARED: G0 + C0},  # STaR's one set is agent 0's (star.star_sets)
    "majority_ft": {SHARED: G0 + C0 + G1 + C1},
    "agent_id": {SHARED: G0 + C0 + G1 + C1},
}
ALL_TRAINED = {"gen0", "gen1", "crit0", "crit1", SHARED}
SOCIETIES = {  # (generators, critics, agent_ids) of two agents once every adapter exists
    "multiagent_ft": (("gen0", "gen1"), ("crit0", "crit1"), False),
    "multiagent_dpo": (("gen0", "gen1"), ("crit0", "crit1"), False),
    "no_summary": (("gen0", "gen1"), ("crit0", "crit1"), False),
    "no_critic": (("gen0", "gen1"), (None, None), False),
    "single_agent_ft": ((SHARED,) * 2, (SHARED,) * 2, False),
    "star": ((SHARED,) * 2, (SHARED,) * 2, False),
    "majority_ft": ((SHARED,) * 2, (SHARED,) * 2, False),
    "agent_id": ((SHARED,) * 2, (SHARED,) * 2, True),
}


def test_every_registered_method_is_tested_here():
    assert set(PLANS) == set(SOCIETIES) == set(FINE_TUNINGS)


@pytest.mark.parametrize("name", FINE_TUNINGS)
def test_training_plan(name):
    assert FINE_TUNINGS[name].training_plan(SETS) == PLANS[name]


@pytest.mark.parametrize("name", FINE_TUNINGS)
def test_society_speaks_with_the_adapters_its_plan_trains(name):
    fine_tuning = FINE_TUNINGS[name]
    society = fine_tuning.society(2, ALL_TRAINED)
    assert (society.generators, society.critics, society.agent_ids) == SOCIETIES[name]
    assert {a for a in society.generators + society.critics if a} == set(fine_tuning.training_plan(SETS))
    base = fine_tuning.society(2, set())  # before anything is trained, every agent is the base model
    assert set(base.generators + base.critics) == {None} and base.agent_ids == fine_tuning.agent_ids


def test_an_agent_whose_adapter_is_missing_speaks_as_the_base_model():
    society = FINE_TUNINGS["multiagent_ft"].society(2, {"gen0", "crit1"})
    assert (society.generators, society.critics) == (("gen0", None), (None, "crit1"))


def test_labelling_and_forced_settings():
    assert {name for name, m in FINE_TUNINGS.items() if m.labels is GOLD_RATIONALES} == {"star"}
    assert all(m.labels is DEBATE_MAJORITY for name, m in FINE_TUNINGS.items() if name != "star")
    assert GOLD_RATIONALES.debate == "base" and DEBATE_MAJORITY.debate == "debate"  # the train debate's shape
    assert {name: m.summarize for name, m in FINE_TUNINGS.items() if m.summarize is not None} == {"no_summary": False}
    assert [FINE_TUNINGS["no_summary"].summarizes(True), FINE_TUNINGS["multiagent_ft"].summarizes(True)] == [
        False,
        True,
    ]


@pytest.mark.parametrize(
    "name, shape, writes, voted",
    [  # with agents.n=3, debate.rounds=2; voted: (agents, round) each written scoring's vote reads
        ("all", (3, 2), ("base", "majority", "debate"), [(1, 1), (3, 1), (3, 2)]),
        ("base", (1, 1), ("base",), [(1, 1)]),
        ("majority", (3, 1), ("majority",), [(3, 1)]),
        ("self_consistency", (6, 1), ("self_consistency",), [(6, 1)]),
        ("debate", (3, 2), ("debate",), [(3, 2)]),
    ],
)
def test_scoring_shape_and_vote(name, shape, writes, voted):
    scoring = SCORINGS[name]
    assert scoring.shape(3, 2) == shape and scoring.writes == writes
    assert [SCORINGS[w].voted(*shape) for w in writes] == voted


def test_an_old_runs_method_is_split_into_method_and_ft_method():
    assert split_legacy_method({"method": "star"}) == {"method": "all", "ft_method": "star"}
    assert split_legacy_method({"method": None}) == {"method": "all", "ft_method": "multiagent_ft"}
    assert split_legacy_method({"method": "base"}) == {"method": "base", "ft_method": "multiagent_ft"}
    assert split_legacy_method({"method": "base", "ft_method": "star"}) == {"method": "base", "ft_method": "star"}


OLD_CONFIG = Path(__file__).parent / "data" / "config_edaee16_star.yaml"  # a star run's, saved at edaee16


def old_run(tmp_path, model_dir, backend: str) -> Path:
    """A run directory holding the config.yaml an older version saved (`method: star`, backend.fake_accuracy)."""
    run_dir = tmp_path / "star"
    run_dir.mkdir()
    text = OLD_CONFIG.read_text().replace("TINY_MODEL", str(model_dir)).replace("RUN_ROOT", str(tmp_path))
    (run_dir / "config.yaml").write_text(text.replace("name: fake", f"name: {backend}"))
    return run_dir


def test_a_run_saved_by_an_older_version_loads_and_resumes(tmp_path, tiny_model_dir):
    run_dir = old_run(tmp_path, tiny_model_dir, "hf")
    config = saved_config(run_dir)
    assert (config.method, config.ft_method, config.backend.name) == ("all", "star", "hf")
    overrides = ["+dataset=arithmetic", "model=local", f"model.path={tiny_model_dir}", f"run.root={tmp_path}",
                 "run.name=star", "dataset.train_size=8", "dataset.test_size=6", "train.epochs=1",
                 "train.batch_size=4", "agents.n=2", "diversity.questions=3", "iterations=1",
                 "diversity.enabled=false", "ft_method=star"]  # fmt: skip
    prepare_run_dir(run_dir, to_dict(compose_config(*overrides)))  # the same settings: it resumes
    with pytest.raises(ConfigError, match="ft_method=star, not ft_method=multiagent_ft"):
        prepare_run_dir(run_dir, to_dict(compose_config(*overrides[:-1])))


def test_a_run_of_the_old_task_aware_fake_is_not_resumed(tmp_path, tiny_model_dir):
    run_dir = old_run(tmp_path, tiny_model_dir, "fake")
    assert saved_config(run_dir).backend.name == "fake"  # still readable by report and serve
    with pytest.raises(ConfigError, match="fake engine's old task-aware replies"):
        prepare_run_dir(run_dir, {"backend": {"name": "fake"}})


def test_an_old_run_resumes_with_its_fine_tuning_method_only(tmp_path):
    (tmp_path / "config.yaml").write_text("method: star\nseed: 0\n")  # saved before ft_method existed
    with pytest.raises(ConfigError, match="ft_method=star, not ft_method=multiagent_ft"):
        prepare_run_dir(tmp_path, {"method": "all", "ft_method": "multiagent_ft", "seed": 0})
    prepare_run_dir(tmp_path, {"method": "all", "ft_method": "star", "seed": 0})


FAKE = ["+dataset=arithmetic", "backend=fake", "dataset.test_size=3", "dataset.train_size=3", "agents.n=2"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["iterate", "method=star"], "method=star is a fine-tuning method: write ft_method=star"),
        (["evaluate", "method=majority_ft"], "write ft_method=majority_ft"),
        (["iterate", "method=base"], "method=base is evaluate's setting"),
        (["evaluate", "ft_method=star"], "ft_method is for iterate"),
        (["debate", "ft_method=no_critic"], "ft_method is for iterate"),
        (["iterate", "ft_method=debate"], "ft_method must be star, majority_ft"),
        (["flow", "ft_method=star"], "ft_method is for iterate: `flow` trains its nodes"),
        (["flow", "method=base"], "method=base is evaluate's setting: flow scores answers"),
        (["evaluate", "extra_scorings=[base]"], "extra_scorings is for iterate (got ['base']); `evaluate` scores one"),
        (["iterate", "extra_scorings=[all]"], "extra_scorings: ['all'] are not among"),
        (["iterate", "ft_method=multiagent_dpo", "train.loop=separate"], "preference pairs in the joint loop only"),
        (["iterate", "ft_method=multiagent_dpo", "train.beta=0"], "train.beta must be > 0 (got 0"),
    ],
)
def test_each_setting_belongs_to_its_command(argv, message, tmp_path, capsys):
    code, output = run([argv[0], *FAKE, f"run.root={tmp_path}", "run.name=r", *argv[1:]], capsys)
    assert code == 2 and message in error_line(output)
    assert not (tmp_path / "r" / "metrics.csv").exists() and not list(tmp_path.rglob("*.jsonl"))


def test_resuming_with_another_ft_method_is_refused_and_writes_nothing(tiny_model_dir, tmp_path, capsys):
    settings = [*FAKE, "model=local", f"model.path={tiny_model_dir}", "train.epochs=1", "train.batch_size=4"]
    settings += ["iterations=1", "diversity.enabled=false", f"run.root={tmp_path}", "run.name=r"]
    assert run(["iterate", *settings], capsys)[0] == 0
    before = snapshot(tmp_path / "r")
    config = (tmp_path / "r" / "config.yaml").read_bytes()
    assert any(Path(name).parts[:2] == ("iter1", "data") for name in before)  # datasets the refusal protects
    code, output = run(["iterate", *settings, "ft_method=majority_ft"], capsys)
    assert code == 2
    assert "holds a run of ft_method=multiagent_ft, not ft_method=majority_ft" in error_line(output)
    assert snapshot(tmp_path / "r") == before and (tmp_path / "r" / "config.yaml").read_bytes() == config
