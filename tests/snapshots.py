"""What a run left on disk, for comparing an interrupted-and-resumed run with an unbroken one."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd


def normalised(path: Path) -> bytes:
    """A file's bytes, with the timing fields (seconds* columns, state.json's seconds) taken out."""
    data = path.read_bytes()
    if path.suffix == ".csv":
        frame = pd.read_csv(io.BytesIO(data))
        return frame.drop(columns=[c for c in frame.columns if c.startswith("seconds")]).to_csv(index=False).encode()
    if path.name == "state.json":
        state = json.loads(data)
        state.pop("seconds", None)
        return json.dumps(state, sort_keys=True).encode()
    return data


# config.yaml names its own folder; compute.csv counts the work each invocation did, so a resumed run's holds
# the work a kill threw away twice (that is its job); logs differ by nature; the lock names its last holder
VOLATILE = ("config.yaml", "compute.csv", ".lock")


def snapshot(run_dir: Path) -> dict[str, bytes]:
    """Every output of a run that must not depend on its having been interrupted."""
    return {
        str(path.relative_to(run_dir)): normalised(path)
        for path in sorted(run_dir.rglob("*"))
        if path.is_file() and ".hydra" not in path.parts and path.suffix != ".log" and path.name not in VOLATILE
    }
