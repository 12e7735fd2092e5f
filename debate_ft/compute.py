"""Compute accounting: what each stage of a run cost, in the run's compute.csv.

One row per (iteration, stage, split, agent) with calls, requests, prompt_tokens, generated_tokens and seconds.
Agent `all` is the stage as a whole, with its wall seconds. The other rows split its tokens by who asked (gen0,
crit1, ..., `summary` for the summarizer, `base` for untagged requests); their seconds stay empty, because one
batched call generates for every agent at once. Training's rows count examples as requests; its `all` row
has the wall seconds of all adapters' training. A re-run adds to a stage's rows only the work it did, so a
resumed stage sums its parts; an open stage writes its work after each call that ends `Ledger.flush_every` seconds
or more after its last write, so a killed one loses at most that much and the call in flight (work a kill threw
away and a resume redid is counted: it was spent).
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from debate_ft.backends import Backend, Completion, Message, Request, Trainable
from debate_ft.config import GenerationConfig
from debate_ft.layout import RunDir
from debate_ft.runs import atomic_path, read_csv
from debate_ft.tables import COMPUTE_COUNTS, COMPUTE_KEY


class Ledger:
    """Tallies of the stage open now, written to compute.csv as it goes and when the stage closes."""

    flush_every = 60.0  # seconds between an open stage's writes

    def __init__(self, run_dir: Path):
        self.path = RunDir(run_dir).compute
        self._open: tuple | None = None
        self._worked = False
        self._restart()

    def _restart(self) -> None:
        self._tally: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COMPUTE_COUNTS[:4], 0))
        self._calls, self._since = 0, time.perf_counter()

    @contextlib.contextmanager
    def stage(self, iteration: int, stage: str, split: str = "") -> Iterator[None]:
        self._open, self._worked = (iteration, stage, split), False
        self._restart()
        try:
            yield
        finally:
            if self._worked:  # a stage a resumed run found finished did no work and leaves its rows alone
                self._flush()
            self._open = None

    def _flush(self) -> None:
        """Add the open stage's work and seconds since the last write to compute.csv."""
        seconds, tally, calls = time.perf_counter() - self._since, self._tally, self._calls
        self._restart()
        total = {c: sum(t[c] for t in tally.values()) for c in COMPUTE_COUNTS[1:4]}
        rows = [{"agent": "all", "calls": calls, **total, "seconds": seconds}]
        rows += [{"agent": agent, **counts} for agent, counts in sorted(tally.items())]
        iteration, stage, split = self._open
        self.write([{"iteration": iteration, "stage": stage, "split": split, **row} for row in rows])

    def count(self, agents: Sequence[str], prompt_tokens: Sequence[int | None], generated: Sequence[int]) -> None:
        """One backend call's requests, by agent; outside an open stage it is not accounted."""
        if self._open is None:
            return
        self._worked = True
        self._calls += 1
        for agent in set(agents):
            self._tally[agent]["calls"] += 1
        for agent, prompt, made in zip(agents, prompt_tokens, generated):
            counts = self._tally[agent]
            counts["requests"] += 1
            counts["prompt_tokens"] += prompt or 0
            counts["generated_tokens"] += made
        if time.perf_counter() - self._since >= self.flush_every:
            self._flush()

    def record(self, iteration: int, stage: str, split: str, requests: dict[str, int], seconds: float) -> None:
        """A stage that does not go through the backend (training): its requests (examples) by agent."""
        rows = [("all", sum(requests.values()), seconds), *((agent, n, None) for agent, n in requests.items())]
        self.write([
            {"iteration": iteration, "stage": stage, "split": split, "agent": agent, "calls": 1, "requests": n,
             "prompt_tokens": None, "generated_tokens": None, "seconds": s}
            for agent, n, s in rows
        ])  # fmt: skip

    def seconds(self, iteration: int, stage: str, split: str = "") -> float | None:
        """Wall seconds a stage has cost so far (all its runs summed), None if it never ran."""
        if not self.path.exists():
            return None
        frame = read_csv(self.path, keep_default_na=False, na_values=[""])
        match = frame[
            (frame["iteration"] == iteration)
            & (frame["stage"] == stage)
            & (frame["split"].astype(str) == split)
            & (frame["agent"] == "all")
        ]
        return float(match["seconds"].iloc[0]) if len(match) else None

    def write(self, rows: list[dict]) -> None:
        frame = pd.DataFrame(rows, columns=COMPUTE_KEY + COMPUTE_COUNTS)
        if self.path.exists():
            frame = pd.concat([read_csv(self.path, keep_default_na=False, na_values=[""]), frame])
        frame["split"] = frame["split"].fillna("")
        frame = frame.groupby(COMPUTE_KEY, sort=False, dropna=False)[COMPUTE_COUNTS].sum(min_count=1).reset_index()
        with atomic_path(self.path) as temporary:
            frame.convert_dtypes().to_csv(temporary, index=False)


class Metered:
    """A backend that reports every generate and logprobs call to a ledger; the rest passes through to `inner`."""

    def __init__(self, inner: Backend, ledger: Ledger):
        self.inner, self.ledger = inner, ledger

    def load_adapter(self, name: str, path: str | Path) -> None:
        self.inner.load_adapter(name, path)

    def prompt_tokens(self, messages: Sequence[Message]) -> int | None:
        return self.inner.prompt_tokens(messages)

    def trainable(self) -> Trainable | None:
        """The engine's own (training reads and writes the model, it generates nothing to account for)."""
        return self.inner.trainable()

    def offloaded(self) -> contextlib.AbstractContextManager[None]:
        return self.inner.offloaded()

    def _prompt_tokens(self, request: Request, completion: Completion | None = None) -> int | None:
        if completion is not None and completion.prompt_tokens is not None:
            return completion.prompt_tokens
        return self.inner.prompt_tokens(request.messages)

    def generate(
        self, requests: Sequence[Request], sampling: GenerationConfig, seed: int, desc: str = "generate"
    ) -> list[Completion]:
        completions = self.inner.generate(requests, sampling, seed, desc)
        prompts = [self._prompt_tokens(r, c) for r, c in zip(requests, completions)]
        self.ledger.count([who(r) for r in requests], prompts, [c.tokens for c in completions])
        return completions

    def logprobs(self, requests: Sequence[Request], completions: Sequence[str]) -> list[list[float]]:
        """Scoring reads prompt and completion and generates nothing: all its tokens count as prompt tokens."""
        scored = self.inner.logprobs(requests, completions)
        prompts = [(self._prompt_tokens(r) or 0) + len(values) for r, values in zip(requests, scored)]
        self.ledger.count([who(r) for r in requests], prompts, [0] * len(requests))
        return scored

    def choice_logprobs(self, requests: Sequence[Request], choices: Sequence[str]) -> list[list[float]]:
        """One forward pass per request reads its prompt and generates nothing."""
        scored = self.inner.choice_logprobs(requests, choices)
        self.ledger.count(
            [who(r) for r in requests], [self._prompt_tokens(r) or 0 for r in requests], [0] * len(requests)
        )
        return scored


def who(request: Request) -> str:
    return request.agent or request.adapter or "base"
