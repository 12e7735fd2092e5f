"""The flow command on the tiny random Llama: online training, checkpoints, resume, evaluating a saved flow."""

import pandas as pd
import pytest
from conftest import cli
from helpers import write_jsonl as write

import debate_ft.flow.run as flow_run
from debate_ft.config import BackendConfig, Config, DatasetConfig, FlowConfig, TrainConfig
from debate_ft.runs import read_records
from debate_ft.testing import musique_row as row

TRAIN = 2


def config(tiny_model_config, data_path, **flow) -> Config:
    settings = dict(max_new_tokens=4, final_tokens=3, max_hops=2, alternatives=1, deviation_visits=1)
    settings.update(batch_pairs=2, save_every=1, paragraph_chars=60, hop_keep=[1.0, 1.0, 1.0])
    return Config(
        dataset=DatasetConfig(name="musique", path=str(data_path), train_size=TRAIN, test_size=1),
        model=tiny_model_config,
        backend=BackendConfig(name="hf", device="cpu", threads=2, batch_size=16),
        train=TrainConfig(lora_r=2),
        flow=FlowConfig(**{**settings, **flow}),
    )


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    return write(tmp_path_factory.mktemp("musique") / "dev.jsonl", [row(n) for n in range(12)])


@pytest.fixture(scope="module")
def unbroken(tiny_model_config, data_path, tmp_path_factory):
    """A run trained in one go."""
    run_dir = tmp_path_factory.mktemp("unbroken")
    flow_run.flow(config(tiny_model_config, data_path), run_dir)
    return run_dir


def trace(run_dir, name="train_trace.jsonl"):
    return read_records(run_dir / "flow" / name)


def test_a_killed_run_resumes_at_the_next_episode_and_matches_an_unbroken_run(
    tiny_model_config, data_path, unbroken, tmp_path, monkeypatch
):
    real, seen = flow_run.train_episode, []

    def killed_after_the_last_episode(*args):
        seen.append(args[5])
        real(*args)
        if args[5] == TRAIN - 1:  # its trace is written, its checkpoint is not
            raise KeyboardInterrupt

    monkeypatch.setattr(flow_run, "train_episode", killed_after_the_last_episode)
    broken = tmp_path / "broken"
    with pytest.raises(KeyboardInterrupt):
        flow_run.flow(config(tiny_model_config, data_path), broken)
    assert seen == [0, 1] and [r["episode"] for r in trace(broken) if r["kind"] == "greedy"] == [0, 1]
    seen.clear()
    monkeypatch.setattr(flow_run, "train_episode", lambda *args: (seen.append(args[5]), real(*args)))
    flow_run.flow(config(tiny_model_config, data_path), broken)
    assert seen == [1]  # resumed at the episode after the last checkpoint
    assert trace(broken) == trace(unbroken)  # episode 1's first, uncheckpointed records were dropped
    assert trace(broken, "pairs.jsonl") == trace(unbroken, "pairs.jsonl")
    assert trace(broken, f"test_trace_ep{TRAIN}.jsonl") == trace(unbroken, f"test_trace_ep{TRAIN}.jsonl")


def test_metrics_hold_progressive_validation_and_test_evaluations(unbroken):
    metrics = pd.read_csv(unbroken / "metrics.csv")
    assert sorted(zip(metrics["split"], metrics["stage"], metrics["episodes"])) == [
        ("test", "eval", 0),
        ("test", "eval", TRAIN),
        ("train", "progressive", 1),
        ("train", "progressive", 2),
    ]
    last = metrics[metrics["stage"] == "progressive"].iloc[-1]
    assert last["n"] == TRAIN and last["pairs_made"] >= last["pairs_used"] > 0
    assert last["optimizer_steps"] == last["pairs_used"] / 2
    greedy = [r for r in trace(unbroken) if r["kind"] == "greedy"]
    assert len(greedy) == TRAIN and all(r["visits"][-1]["node"] == "final" for r in greedy)


def test_evaluating_a_saved_flow_reloads_its_adapters(tiny_model_config, data_path, unbroken, tmp_path):
    trained = trace(unbroken, f"test_trace_ep{TRAIN}.jsonl")
    flow_run.flow(config(tiny_model_config, data_path, train=False), unbroken)
    assert trace(unbroken, f"test_trace_ep{TRAIN}.jsonl") == trained  # same adapters, same greedy flow
    untrained = tmp_path / "untrained"
    flow_run.flow(config(tiny_model_config, data_path, train=False), untrained)
    assert [r["answer"] for r in trace(untrained, "test_trace_ep0.jsonl")] == [
        r["answer"] for r in trace(unbroken, "test_trace_ep0.jsonl")
    ]  # the base model and fresh (zero-effect) LoRA adapters agree


def test_report_shows_flow_rows(unbroken, capsys):
    from debate_ft.report import main as report

    assert report([str(unbroken)]) == 0
    out = capsys.readouterr().out
    assert "debate_ft flow report" in out and "answer_f1" in out and "pairs_used" in out
    assert "accuracy" not in out  # no empty debate table


def test_cli_runs_flow_evaluation_on_the_fake_backend_and_refuses_mismatches(data_path, tmp_path):
    common = [f"dataset.path={data_path}", "dataset.test_size=2", "backend=fake", f"run.root={tmp_path}", "run.name=f"]
    done = cli("flow", "+dataset=musique", "flow.train=false", *common)
    assert done.returncode == 0, done.stderr
    assert "evaluating the untrained flow" in done.stdout
    assert (tmp_path / "f" / "flow" / "test_trace_ep0.jsonl").exists()
    for args, message in [
        (["flow", "+dataset=musique", *common], "flow training needs backend=hf"),
        (["debate", "+dataset=musique", *common], "+dataset=musique is for the flow command"),
        (["flow", "+dataset=gsm", "backend=fake", f"run.root={tmp_path}"], "the flow command runs +dataset=musique"),
        # Hydra makes the run folder before the config is checked: it goes under tmp_path, not the checkout
        (["flow", "+dataset=musique", "flow.reward=gold", *common[2:]], "flow.reward must be f1 or evaluator"),
    ]:
        result = cli(*args)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_reward_free_training_reads_no_gold(tiny_model_config, tmp_path):
    """Poisoned gold (other answers, support marks flipped) leaves evaluator-mode training bit-identical."""
    clean = [row(n) for n in range(12)]
    poisoned = [
        {
            **r,
            "answer": "poison",
            "answer_aliases": ["venom"],
            "paragraphs": [{**p, "is_supporting": not p["is_supporting"]} for p in r["paragraphs"]],
        }
        for r in clean
    ]
    outputs = []
    for name, rows in (("clean", clean), ("poisoned", poisoned)):
        data = write(tmp_path / f"{name}.jsonl", rows)
        run_dir = tmp_path / name
        settings = dict(reward="evaluator", eval_before=False, ref_every=1, deviate_nodes=["query", "answer", "final"])
        flow_run.flow(config(tiny_model_config, data, **settings), run_dir)
        pairs = [{k: v for k, v in p.items()} for p in trace(run_dir, "pairs.jsonl")]
        checkpoint = run_dir / "flow" / "checkpoint"
        weights = {p.relative_to(checkpoint): p.read_bytes() for p in checkpoint.rglob("*.safetensors")}
        outputs.append((pairs, weights, (checkpoint / "optimizer.pt").read_bytes()))
    assert outputs[0][0], "no pairs were made: the test would show nothing"
    assert outputs[0] == outputs[1]
    sources = {p["source"] for p in outputs[0][0]}
    assert sources == {"deviation"}


def test_pairs_still_pending_after_the_last_episode_are_trained_on(tiny_model_config, data_path, tmp_path):
    flow_run.flow(config(tiny_model_config, data_path, batch_pairs=1000, eval_before=False), tmp_path)
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    last = metrics[metrics["stage"] == "progressive"].iloc[-1]
    assert 0 < last["pairs_made"] < 1000 and last["pairs_used"] == last["pairs_made"]  # one flush, at the end
