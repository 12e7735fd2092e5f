"""An iteration's adapters trained in several processes: torchrun launches `train.processes` workers (one per
GPU, or CPU processes), and worker r trains every processes-th job in the joint loop on its own copy of the base.

The adapters never interact (each row reaches only its own adapter), so a shard trains its adapters exactly as
one process would; the workers need no communication, only torchrun's launch, per-rank environment and failure
handling. The jobs travel as one JSON file beside the staging folder the adapters land in.

    python -m torch.distributed.run --nproc-per-node P -m debate_ft.train_shards JOBS.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from debate_ft.config import ModelConfig, TrainConfig
from debate_ft.errors import DebateFTError
from debate_ft.train import Job


def train_in_processes(jobs: list[Job], model: ModelConfig, train: TrainConfig, dtype: str, spec: Path) -> None:
    """Run torchrun over `jobs` with train.processes workers; raises when any worker fails."""
    jobs_json = [{**asdict(job), "out_dir": str(job.out_dir), "init_from": _str(job.init_from)} for job in jobs]
    spec.write_text(json.dumps({"model": asdict(model), "train": asdict(train), "dtype": dtype, "jobs": jobs_json}))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
               str(train.processes), "-m", "debate_ft.train_shards", str(spec)]  # fmt: skip
    if subprocess.run(command).returncode:  # torchrun gives each worker one thread unless OMP_NUM_THREADS says
        raise DebateFTError(f"a training process failed (torchrun over {spec}); its output is above")


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def main(spec_path: str) -> None:
    import torch

    from debate_ft.models import host
    from debate_ft.train import train_adapters

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    spec = json.loads(Path(spec_path).read_text())
    model, train = ModelConfig(**spec["model"]), TrainConfig(**spec["train"])
    mine = [
        Job(j["name"], j["examples"], Path(j["out_dir"]), j["seed"], j["init_from"] and Path(j["init_from"]))
        for j in spec["jobs"][rank::world]
    ]
    if not mine:
        return
    device = f"cuda:{os.environ['LOCAL_RANK']}" if torch.cuda.is_available() else "cpu"
    train_adapters(host(model, device, spec["dtype"]), mine, train, model.system_prompt)


if __name__ == "__main__":
    main(sys.argv[1])
