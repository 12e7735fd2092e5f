"""Kill-anywhere: a real SIGKILL at many points of `iterate` and `flow`, each resumed, until the run ends with
outputs byte-identical to an uninterrupted run (timing fields aside).

The kills form a chain: each process is killed at the next point, the next process resumes from what the
last one left, and a final plain run finishes the job. Points sit inside the write windows: a temporary file
or folder complete but not renamed in, a folder renamed aside but its new version not yet in, half a
transcript line written, and (flow) a kill fired by the test the moment a checkpoint's temporary folder
appears. tests/kill_points.py plants each signal at its exact point.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import kill_points
import pandas as pd
import pytest
from conftest import tiny_run
from fakes import AGENTS
from helpers import write_jsonl as write
from snapshots import snapshot

from debate_ft.testing import musique_row as row

LAUNCHER = Path(__file__).with_name("kill_points.py")

pytestmark = pytest.mark.timeout(600)

# Every process of a chain is forked from one server that imported the project once: a real process that
# a real SIGKILL ends, without paying ~5 s of imports per kill point.
FORKS = multiprocessing.get_context("forkserver")
FORKS.set_forkserver_preload(["kill_points", "debate_ft.cli", "debate_ft.iterate", "debate_ft.flow.run", "trl"])


def launch(argv: list[str], point: str | None, log: Path) -> multiprocessing.Process:
    process = FORKS.Process(target=kill_points.run, args=(point, argv, str(log)))
    process.start()
    return process


def outcome(process: multiprocessing.Process, log: Path, timeout: float = 600) -> tuple[int | None, str]:
    process.join(timeout)
    if process.exitcode is None:
        process.kill()
        process.join()
        raise AssertionError(f"hung: {log.read_text()[-2000:]}")
    return process.exitcode, log.read_text()


def finish(argv: list[str], log: Path) -> None:
    code, output = outcome(launch(argv, None, log), log)
    assert code == 0, output[-3000:]


def killed_at(argv: list[str], point: str, log: Path) -> None:
    code, output = outcome(launch(argv, point, log), log)
    assert code == -signal.SIGKILL, f"{point} never fired (exit {code}): {output[-2000:]}"


def leftovers(run_dir: Path) -> list[str]:
    return [str(p) for p in run_dir.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]


# ---------------------------------------------------------------- iterate

ITERATE_POINTS = [
    "append:*/iter0/test_2x2.jsonl:1:torn",  # half a transcript line on disk
    "replace:*/r/metrics.csv:1:before",  # the new metrics table complete in its temporary folder
    "append:*/iter1/train_2x2.jsonl:1:after",  # one train chunk debated
    "replace:*/iter1/data/gen0:1:before",  # a dataset folder written, not renamed in
    "replace:*/iter1/data/sizes.json:1:before",  # every set saved but the step's marker
    "replace:*/iter1/.adapters.tmp-*/adapters/gen0:1:before",  # the adapters trained, one saved, not renamed in
    "replace:*/iter1/.adapters.tmp-*/adapters/gen1:1:after",  # the next one in the staging folder
    "replace:*/iter1/adapters:1:before",  # every adapter staged, the folder not renamed in
    "replace:*/r/metrics.csv:2:before",  # iteration 1's metrics row (the 1st write re-scores iteration 0)
]


def iterate_args(tiny_model_dir: Path, root: Path, name: str) -> list[str]:
    extra = ["iterations=1", "debate.chunk_size=2", "diversity.enabled=false", f"run.root={root}", f"run.name={name}"]
    return ["iterate", *tiny_run(tiny_model_dir, *extra)]


def test_iterate_killed_at_every_point_resumes_to_identical_outputs(tiny_model_dir, tmp_path):
    log = tmp_path / "output.log"
    finish(iterate_args(tiny_model_dir, tmp_path, "ref"), log)
    args = iterate_args(tiny_model_dir, tmp_path, "r")
    for point in ITERATE_POINTS:
        killed_at(args, point, log)
    assert leftovers(tmp_path / "r")  # the last kill left a temporary folder behind
    finish(args, log)
    assert leftovers(tmp_path / "r") == []
    assert snapshot(tmp_path / "r") == snapshot(tmp_path / "ref")


# ---------------------------------------------------------------- flow


def flow_args(tiny_model_dir: Path, data: Path, root: Path, name: str) -> list[str]:
    return [
        "flow",
        "+dataset=musique",
        f"dataset.path={data}",
        "dataset.train_size=2",
        "dataset.test_size=1",
        "model=local",
        f"model.path={tiny_model_dir}",
        "backend.device=cpu",
        "backend.batch_size=16",
        "train.lora_r=2",
        "flow.max_new_tokens=4",
        "flow.final_tokens=3",
        "flow.max_hops=1",
        "flow.eval_before=false",
        "flow.alternatives=1",
        "flow.deviation_visits=1",
        "flow.batch_pairs=2",
        "flow.save_every=1",
        "flow.paragraph_chars=60",
        f"run.root={root}",
        f"run.name={name}",
    ]


def kill_when_new(argv: list[str], folder: Path, pattern: str, log: Path) -> None:
    """Run plainly and SIGKILL it the moment a new file or folder named `pattern` appears in `folder`."""
    old = set(folder.glob(pattern))
    victim = launch(argv, None, log)
    deadline = time.time() + 300
    while victim.is_alive() and time.time() < deadline:
        if set(folder.glob(pattern)) - old:
            os.kill(victim.pid, signal.SIGKILL)
            break
        time.sleep(0.002)
    code, output = outcome(victim, log)
    assert code == -signal.SIGKILL, f"no new {pattern} appeared in {folder}: {output[-2000:]}"


def test_flow_killed_at_every_point_resumes_to_identical_outputs(tiny_model_dir, tmp_path):
    data = write(tmp_path / "dev.jsonl", [row(n) for n in range(12)])
    log = tmp_path / "output.log"
    finish(flow_args(tiny_model_dir, data, tmp_path, "ref"), log)
    args = flow_args(tiny_model_dir, data, tmp_path, "r")
    killed_at(args, "append:*/flow/train_trace.jsonl:1:after", log)  # episode 0 traced, no checkpoint yet
    # the first save of this process has no old version; the second renames episode 1's checkpoint aside
    # and dies before episode 2's is renamed in: checkpoint/ is missing, only the aside copy holds it
    killed_at(args, "replace:*/flow/.checkpoint.old-*:1:after", log)
    assert not (tmp_path / "r" / "flow" / "checkpoint").exists()
    assert list((tmp_path / "r" / "flow").glob(".checkpoint.old-*"))
    kill_when_new(args, tmp_path / "r" / "flow", ".checkpoint.tmp-*", log)  # inside the next checkpoint save
    killed_at(args, "replace:*/flow/test_trace_ep2.jsonl:1:before", log)  # the final test trace not renamed in
    finish(args, log)
    assert leftovers(tmp_path / "r") == []
    assert snapshot(tmp_path / "r") == snapshot(tmp_path / "ref")


# ---------------------------------------------------------------- Ctrl-C


def test_ctrl_c_exits_130_without_a_traceback(tmp_path):
    args = ["evaluate", "+dataset=arithmetic", *AGENTS, "dataset.test_size=4", "debate.chunk_size=2"]
    args += [f"run.root={tmp_path}", "run.name=r"]
    command = [sys.executable, str(LAUNCHER), "append:*/iter0/test_3x2.jsonl:1:sigint", *args]
    victim = subprocess.run(command, capture_output=True, text=True, timeout=300)  # a real SIGINT mid-run
    assert victim.returncode == 130 and "Traceback" not in victim.stderr, victim.stderr
    assert "interrupted" in victim.stderr
    finish(args, tmp_path / "output.log")  # and the run resumes
    assert len(pd.read_csv(tmp_path / "r" / "metrics.csv")) == 3
