"""Sweeps through Hydra launcher plugins: submitit's local executor runs each job in its own process, as on a
SLURM cluster (hydra/launcher=submitit_slurm), and `report` collects the jobs' folders."""

from conftest import cli


def test_a_two_job_sweep_through_submitit_local_is_collected_by_report(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["evaluate", "-m", "+dataset=arithmetic", "backend=fake", "dataset.test_size=4", "agents.n=1,2",
            "hydra/launcher=submitit_local", f"run.root={tmp_path}", "run.name=sweep"]  # fmt: skip
    run = cli(*args, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "Submitit 'local' sweep output dir" in run.stdout + run.stderr
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith(".")) == ["0", "1"]
    assert len(list((sweep / ".submitit").glob("*/*_result.pkl"))) == 2  # each job ran as a submitit job
    report = cli("report", str(sweep))
    assert report.returncode == 0, report.stderr
    accuracy = report.stdout.split("compute per stage")[0]
    rows = [line for line in accuracy.splitlines() if line.startswith("│ sweep/")]
    assert len(rows) == 6 and {line.split("│")[2].strip() for line in rows} == {"1", "2"}  # n_agents per job
    assert (sweep / "0" / "transcripts.html").exists() and (sweep / "1" / "transcripts.html").exists()
