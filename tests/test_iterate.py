"""`iterate` end to end: fake backend for the debates, the tiny random Llama for the LoRA training."""

import os
import signal
import subprocess
import time

import pandas as pd
import pytest
from conftest import CLI, cli, compose_config, tiny_run
from snapshots import snapshot

from debate_ft.iterate import iterate
from debate_ft.runs import read_json, read_records


def settings(tiny_model_dir, run_dir, *extra):
    return tiny_run(tiny_model_dir, f"run.root={run_dir.parent}", f"run.name={run_dir.name}", *extra)


def run_in_process(tiny_model_dir, run_dir, *extra):
    iterate(compose_config(*settings(tiny_model_dir, run_dir, *extra)), run_dir)
    return pd.read_csv(run_dir / "metrics.csv")


def test_two_iterations_train_every_agent_and_log_sizes(tiny_model_dir, tmp_path):
    metrics = run_in_process(tiny_model_dir, tmp_path / "run", "iterations=2")
    assert list(metrics["iteration"]) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert set(metrics["method"]) == {"base", "majority", "debate"} and set(metrics["n"]) == {4}
    trained = metrics[metrics["iteration"] == 1].iloc[0]
    assert trained["train_examples"] > 0 and trained["ft_method"] == "multiagent_ft"
    adapters = sorted(p.name for p in (tmp_path / "run" / "iter1" / "adapters").iterdir())
    assert adapters == ["crit0", "crit1", "gen0", "gen1"]
    from datasets import load_from_disk

    gen0 = load_from_disk(str(tmp_path / "run" / "iter1" / "data" / "gen0"))
    assert gen0[0]["messages"][-1]["role"] == "assistant"
    assert len(read_records(tmp_path / "run" / "iter1" / "data" / "gen0.jsonl")) == len(gen0)


def test_transfer_tests_on_another_dataset_than_it_trains_on(tiny_model_dir, tmp_path):
    gsm = tmp_path / "gsm.jsonl"
    gsm.write_text("".join(f'{{"question": "What is {i} + 1?", "answer": "x\\n#### {i + 1}"}}\n' for i in range(40)))
    overrides = ["iterations=1", "+dataset@eval_dataset=gsm", f"eval_dataset.path={gsm}", "eval_dataset.test_size=3"]
    metrics = run_in_process(tiny_model_dir, tmp_path / "transfer", *overrides)
    assert set(metrics["dataset"]) == {"gsm"} and set(metrics["trained_on"]) == {"arithmetic"}
    assert set(metrics["n"]) == {3} and len(metrics) == 6
    trained_on = read_records(tmp_path / "transfer" / "iter1" / "train_2x2.jsonl")
    assert all("+" in record["id"] for record in trained_on)  # the society learnt on arithmetic
    assert all(
        record["id"].startswith("gsm:") for record in read_records(tmp_path / "transfer" / "iter1" / "test_2x2.jsonl")
    )


@pytest.mark.parametrize("method", ["majority_ft", "no_critic", "agent_id", "star"])
def test_baselines_run(tiny_model_dir, tmp_path, method):
    metrics = run_in_process(tiny_model_dir, tmp_path / method, "iterations=1", f"ft_method={method}")
    assert set(metrics["ft_method"]) == {method} and len(metrics) == 6
    adapters = {p.name for p in (tmp_path / method / "iter1" / "adapters").iterdir()}
    sizes = read_json(tmp_path / method / "iter1" / "data" / "sizes.json")["adapters"]
    with_data = {name for name, examples in sizes.items() if examples}
    assert adapters == with_data == ({"shared"} if method != "no_critic" else {"gen0", "gen1"})


def test_multiagent_dpo_trains_generators_on_preference_pairs(tiny_model_dir, tmp_path):
    run = tmp_path / "dpo"
    metrics = run_in_process(tiny_model_dir, run, "iterations=1", "ft_method=multiagent_dpo")
    assert set(metrics["ft_method"]) == {"multiagent_dpo"} and len(metrics) == 6
    data = run / "iter1" / "data"
    sizes = read_json(data / "sizes.json")
    pairs = [read_records(data / f"gen{agent}.jsonl") for agent in range(2)]
    assert [agent["pairs"] for agent in sizes["agents"]] == [len(p) for p in pairs] and all(pairs)
    for pair in pairs[0]:
        assert pair["chosen"] != pair["rejected"] and pair["prompt"][-1]["role"] == "user"
    assert len(read_records(data / "crit0.jsonl")) == sizes["agents"][0]["critic"]
    adapters = {p.name for p in (run / "iter1" / "adapters").iterdir()}
    assert adapters == {name for name, examples in sizes["adapters"].items() if examples}


def test_a_finished_run_is_not_repeated(tiny_model_dir, tmp_path):
    first = run_in_process(tiny_model_dir, tmp_path / "run", "iterations=1")
    stamp = (tmp_path / "run" / "iter1" / "adapters" / "gen0").stat().st_mtime_ns
    again = run_in_process(tiny_model_dir, tmp_path / "run", "iterations=1")
    assert first.equals(again)
    assert (tmp_path / "run" / "iter1" / "adapters" / "gen0").stat().st_mtime_ns == stamp


def test_extra_scorings_added_to_a_finished_run_debate_only_what_is_missing(tiny_model_dir, tmp_path):
    run = tmp_path / "run"
    run_in_process(tiny_model_dir, run, "iterations=1")
    stamp = (run / "iter1" / "adapters" / "gen0").stat().st_mtime_ns
    metrics = run_in_process(tiny_model_dir, run, "iterations=1", "extra_scorings=[self_consistency]")
    assert (run / "iter1" / "adapters" / "gen0").stat().st_mtime_ns == stamp  # nothing trained again
    consistency = metrics[metrics["method"] == "self_consistency"]
    assert list(consistency["iteration"]) == [0, 1] and set(consistency["agents"]) == {4}  # N x M = 2 x 2 samples
    assert set(consistency["ft_method"]) == {"multiagent_ft"} and set(consistency["n"]) == {4}
    for k in (0, 1):
        records = read_records(run / f"iter{k}" / "test_4x1.jsonl")
        assert len(records) == 4 and {len(record["turns"]) for record in records} == {4}
    compute = pd.read_csv(run / "compute.csv")
    whole = compute[(compute["agent"] == "all") & (compute["split"] == "test")]
    stages = whole.groupby("iteration")["stage"].apply(set).tolist()
    assert all({"debate", "debate:self_consistency"} <= found for found in stages)  # seconds kept apart
    assert (consistency["seconds_debate"] > 0).all()


def start(args, **kwargs):
    """The CLI started in a subprocess, to be waited for or killed."""
    return subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_killed_run_resumes_to_the_same_outputs(tiny_model_dir, tmp_path):
    args = lambda run: ["iterate", *settings(tiny_model_dir, run, "iterations=2")]  # noqa: E731
    reference = start(args(tmp_path / "ref"))
    assert reference.wait(timeout=600) == 0, reference.stderr.read()

    victim = start(args(tmp_path / "run"), start_new_session=True)
    marker = tmp_path / "run" / "iter1" / "adapters" / "gen1"
    deadline = time.time() + 600
    while not marker.exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    # mid-run: iteration 1 trained (the joint loop lands its adapters at once), iteration 2 not started
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    assert not (tmp_path / "run" / "iter2" / "test_2x2.jsonl").exists()

    resumed = start(args(tmp_path / "run"))
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    assert snapshot(tmp_path / "run") == snapshot(tmp_path / "ref")


def test_multirun_sweep_and_report(tiny_model_dir, tmp_path):
    run = start(["iterate", "-m", *settings(tiny_model_dir, tmp_path / "sweep", "iterations=1"), "agents.n=1,2"])
    assert run.wait(timeout=600) == 0, run.stderr.read()
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["0", "1"]
    report = cli("report", str(tmp_path / "sweep"))
    assert report.returncode == 0, report.stderr
    accuracy_table = report.stdout.split("debate accuracy and diversity")[0]
    lines = [line for line in accuracy_table.splitlines() if "sweep/" in line]
    assert len(lines) == 12 and any(" 1 " in line for line in lines) and any(" 2 " in line for line in lines)
