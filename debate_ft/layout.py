"""A run directory's layout, spelled in one place: every stage, `report`, `serve` and the browser ask it for paths.

<run>/config.yaml, metrics.csv, outcomes.csv, conformity.csv, diversity.csv, compute.csv
<run>/iter<k>/{train,test}_<agents>x<rounds>[_summary].jsonl   debate transcripts (k = 0: the base model)
<run>/iter<k>/data/              each adapter's labelled set and sizes.json
<run>/iter<k>/adapters/<name>/   the adapters trained at iteration k
<run>/iter<k>/kl.csv, nll_matrix.csv
<run>/flow/                      flow mode: traces, pairs, checkpoint/
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from debate_ft.tables import (
    COMPUTE_FILE,
    CONFORMITY_FILE,
    DIVERSITY_FILE,
    KL_FILE,
    METRICS_FILE,
    NLL_FILE,
    OUTCOMES_FILE,
)

_ITERATION = re.compile(r"iter(\d+)")
_TRANSCRIPT = re.compile(r"(train|test)_\d+x\d+(_summary)?\.jsonl")


def adapter_iteration(path: Path) -> int | None:
    """The iteration of a run's adapter folder iter<k>/adapters/<name>; None for any other folder."""
    path = Path(path)
    match = _ITERATION.fullmatch(path.parent.parent.name)
    return int(match.group(1)) if match and path.parent.name == "adapters" else None


@dataclass(frozen=True)
class RunDir:
    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    # tables of the whole run
    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def outcomes(self) -> Path:
        return self.root / OUTCOMES_FILE

    @property
    def conformity(self) -> Path:
        return self.root / CONFORMITY_FILE

    @property
    def diversity(self) -> Path:
        return self.root / DIVERSITY_FILE

    @property
    def compute(self) -> Path:
        return self.root / COMPUTE_FILE

    # iterations
    def iteration(self, k: int) -> Path:
        return self.root / f"iter{k}"

    def iterations(self) -> list[int]:
        """The iteration folders present, in order."""
        found = (_ITERATION.fullmatch(path.name) for path in self.root.glob("iter*") if path.is_dir())
        return sorted(int(match.group(1)) for match in found if match)

    def iteration_of(self, path: Path) -> int:
        """The iteration whose folder holds `path`."""
        return int(_ITERATION.fullmatch(Path(path).relative_to(self.root).parts[0]).group(1))

    def transcript(self, k: int, split: str, agents: int, rounds: int, summarize: bool) -> Path:
        suffix = "_summary" if summarize and rounds > 1 and agents > 1 else ""
        return self.iteration(k) / f"{split}_{agents}x{rounds}{suffix}.jsonl"

    def transcripts(self) -> list[Path]:
        """Every debate transcript, by iteration, test before train."""
        found = [
            (k, path) for k in self.iterations() for path in self.iteration(k).glob("*.jsonl")
            if _TRANSCRIPT.fullmatch(path.name)
        ]  # fmt: skip
        return [path for _, path in sorted(found, key=lambda p: (p[0], not p[1].name.startswith("test"), p[1].name))]

    def data(self, k: int) -> Path:
        return self.iteration(k) / "data"

    def adapters(self, k: int) -> Path:
        return self.iteration(k) / "adapters"

    def kl(self, k: int) -> Path:
        return self.iteration(k) / KL_FILE

    def nll(self, k: int) -> Path:
        return self.iteration(k) / NLL_FILE

    # flow mode
    @property
    def flow(self) -> Path:
        return self.root / "flow"

    @property
    def checkpoint(self) -> Path:
        return self.flow / "checkpoint"

    @property
    def train_trace(self) -> Path:
        return self.flow / "train_trace.jsonl"

    @property
    def pairs(self) -> Path:
        return self.flow / "pairs.jsonl"

    def test_trace(self, episodes: int) -> Path:
        return self.flow / f"test_trace_ep{episodes}.jsonl"

    def test_traces(self) -> dict[int, Path]:
        """The flow's test traces by training episodes."""
        found = (re.fullmatch(r"test_trace_ep(\d+)\.jsonl", path.name) for path in self.flow.glob("test_trace_ep*"))
        return {int(match.group(1)): self.flow / match.group(0) for match in found if match}
