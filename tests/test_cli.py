"""The CLI end to end on the fake backend, in subprocesses like a user's shell."""

import json

import pandas as pd
import pytest
from conftest import cli
from fakes import AGENTS

from debate_ft.transcript import read


def test_evaluate_writes_metrics_and_does_not_duplicate_rows(tmp_path):
    args = [
        "evaluate",
        "+dataset=arithmetic",
        *AGENTS,
        "dataset.test_size=12",
        f"run.root={tmp_path}",
        "run.name=r",
    ]
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    metrics = pd.read_csv(tmp_path / "r" / "metrics.csv")
    assert list(metrics["method"]) == ["base", "majority", "debate"]
    assert set(metrics["n"]) == {12} and {"accuracy", "stderr", "no_answer", "consensus"} <= set(metrics.columns)
    assert (tmp_path / "r" / "config.yaml").exists() and (tmp_path / "r" / "iter0" / "test_3x2.jsonl").exists()
    assert "accuracy" in first.stdout
    assert cli(*args).returncode == 0
    assert pd.read_csv(tmp_path / "r" / "metrics.csv").equals(metrics)


def test_self_consistency_votes_over_as_many_samples_as_the_debate_makes(tmp_path):
    args = ["evaluate", "+dataset=arithmetic", *AGENTS, "dataset.test_size=6", f"run.root={tmp_path}"]
    assert cli(*args, "run.name=sc", "method=self_consistency", "agents.n=3", "debate.rounds=2").returncode == 0
    assert cli(*args, "run.name=d", "agents.n=3", "debate.rounds=2").returncode == 0
    sc = pd.read_csv(tmp_path / "sc" / "metrics.csv").iloc[0]
    debate = pd.read_csv(tmp_path / "d" / "metrics.csv").set_index("method").loc["debate"]
    assert (sc["method"], sc["agents"], sc["rounds"]) == ("self_consistency", 6, 1)
    sampled = read(tmp_path / "sc" / "iter0" / "test_6x1.jsonl")
    assert len(sampled) == 6 and {len(record.turns) for record in sampled} == {6}  # N x M samples, not N
    assert sc["gen_tokens"] > 0 and debate["gen_tokens"] > 0  # the cost each method paid, for the table
    assert sc["seconds_debate"] > 0 and debate["seconds_debate"] > 0
    outcomes = pd.read_csv(tmp_path / "sc" / "outcomes.csv")
    assert len(outcomes) == 6 and outcomes["correct"].mean() == pytest.approx(sc["accuracy"])


def test_resuming_with_other_settings_is_refused(tmp_path):
    base = [
        "evaluate",
        "+dataset=arithmetic",
        *AGENTS,
        "dataset.test_size=4",
        f"run.root={tmp_path}",
        "run.name=r",
    ]
    assert cli(*base).returncode == 0
    changed = cli(*base, "agents.n=2")
    assert changed.returncode == 2 and "agents.n" in changed.stderr


def test_debate_command_writes_a_transcript(tmp_path):
    result = cli(
        "debate",
        "+dataset=arithmetic",
        *AGENTS,
        "dataset.train_size=3",
        "debate.split=train",
        "agents.n=2",
        "debate.rounds=3",
        f"run.root={tmp_path}",
        "run.name=d",
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (tmp_path / "d" / "iter0" / "train_2x3.jsonl").read_text().splitlines()]
    assert len(records) == 3 and len(records[0]["turns"]) == 6
    assert {"id", "question", "gold", "answer", "consensus", "correct"} <= records[0].keys()
    assert {"round", "agent", "role", "prompt", "response", "answer"} <= records[0]["turns"][0].keys()


@pytest.mark.parametrize(
    "args, message",
    [
        (["evaluate", "backend=fake"], "add +dataset=<name>"),
        (["evaluate", "+dataset=arithmetic", "backend=fake", "method=best"], "method must be all, base"),
        (["evaluate", "+dataset=nope"], "Available options in 'dataset'"),
        (["nonsense"], "unknown command"),
        (["evaluate", "+dataset=arithmetic", "backend=fake", "run.name=" + "x" * 300], "longer than a folder name"),
    ],
)
def test_errors_are_clear(tmp_path, args, message):
    result = cli(*args, f"run.root={tmp_path}")
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_data_names_file_and_line(tmp_path):
    (tmp_path / "test.jsonl").write_text('{"question": "q", "answer": "#### 1"}\nnot json\n')
    result = cli(
        "evaluate", "+dataset=gsm", "backend=fake", f"dataset.path={tmp_path / 'test.jsonl'}", f"run.root={tmp_path}"
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'test.jsonl'}:2: malformed JSON (Expecting value)"


def test_a_run_directory_serves_one_process_at_a_time(tmp_path):
    """Two real processes: while one holds the run directory, a second command on it is refused in one line
    naming the holder; once the holder is killed (-9: no clean-up runs), the kernel has released the lock."""
    import signal
    import subprocess
    import sys

    run_dir = tmp_path / "r"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom debate_ft.runs import run_lock\n"
         "with run_lock(Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(120)\n", str(run_dir)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    args = ["evaluate", "+dataset=arithmetic", *AGENTS, "dataset.test_size=4", f"run.root={tmp_path}", "run.name=r"]
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = cli(*args)
        assert refused.returncode == 2, refused.stderr
        assert f"is in use by process {holder.pid} (" in refused.stderr and len(refused.stderr.splitlines()) == 1
        assert not (run_dir / "iter0").exists()  # refused before any work
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert cli(*args).returncode == 0
