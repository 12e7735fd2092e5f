"""The method registry: where a method is defined. Two kinds, two settings:

- a scoring (`method=`, evaluate's choice; default `all`): which test debate it needs and which round and agents
  its vote counts;
- a fine-tuning method (`ft_method=`, iterate's choice; default `multiagent_ft`): its society (which adapter each
  generator and critic speaks with), how its training data is labelled, and its training plan (which adapter
  learns from which examples).

The schema's validation, the commands, the results table and the plots take names and shapes from here, and
iterate, sft_data and serve ask an entry instead of branching on names. It imports nothing of the package: the
schema (config.py) validates against it, and a society (who speaks with which adapter) is a value it makes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

SHARED = "shared"  # the adapter of the one-adapter methods; per-agent ones are gen<i> and crit<i>


def generator(agent: int) -> str:
    return f"gen{agent}"


def critic(agent: int) -> str:
    return f"crit{agent}"


@dataclass(frozen=True)
class Society:
    """Who speaks: each agent's adapter as a generator (round 1) and as a critic (rounds 2..M), on its base."""

    generators: tuple[str | None, ...]
    critics: tuple[str | None, ...]
    agent_ids: bool = False  # agent-ID ablation: a system message tells the one model which agent it is
    models: tuple[str | None, ...] = ()  # a mixed society's base per agent (bases.py); None or empty: the one base

    @classmethod
    def base(cls, agents: int) -> Society:
        return cls((None,) * agents, (None,) * agents)

    @property
    def size(self) -> int:
        return len(self.generators)

    def adapter(self, role: str, agent: int) -> str | None:
        return (self.generators if role == "generator" else self.critics)[agent]

    def model(self, agent: int) -> str | None:
        return self.models[agent] if self.models else None

    def cycled(self, agents: int) -> Society:
        """A society of `agents` cycling through this one's (self-consistency's N x M samples of N agents)."""
        pick = lambda values: tuple(values[i % self.size] for i in range(agents)) if values else ()  # noqa: E731
        return Society(pick(self.generators), pick(self.critics), self.agent_ids, pick(self.models))


class AgentSets(Protocol):
    """What a training plan reads of an agent's labelled data (label.AgentSets)."""

    generator: list[dict]
    critic: list[dict]
    pairs: list[dict]


@dataclass(frozen=True)
class Scoring:
    name: str
    help: str
    shape: Callable[[int, int], tuple[int, int]]  # (agents.n, debate.rounds) -> (agents, rounds) it debates
    vote_agents: int | None = None  # its vote counts the first this many agents (None: every agent)
    vote_round: int | None = None  # and their answers of this round (None: the last)
    parts: tuple[str, ...] = ()  # the scorings one run of it writes (empty: itself)
    title: str | None = None  # its baseline row's title in `report --table` (None: no row of its own)

    @property
    def writes(self) -> tuple[str, ...]:
        return self.parts or (self.name,)

    def voted(self, agents: int | None, rounds: int) -> tuple[int | None, int]:
        """(agents, round) its vote reads in a debate of `agents` x `rounds` (agents None: however many)."""
        return self.vote_agents or agents, self.vote_round or rounds


@dataclass(frozen=True)
class Labelling:
    name: str
    debate: str  # the scoring whose debate shape the train split is debated in
    help: str


DEBATE_MAJORITY = Labelling("debate majority", "debate", "the last round's majority vote; no ground truth is used")
GOLD_RATIONALES = Labelling(
    "gold rationales",
    "base",
    "agent 0's round-1 rationales that reach the gold answer, and rationalized misses (STaR, star.py)",
)

# Training plans: which adapter learns from which of the agents' sets (label.AgentSets)
OWN = "own"  # gen<i> learns agent i's generator set, crit<i> its critic set
FIRST = "first"  # one shared adapter learns agent 0's generator and critic sets
POOLED = "pooled"  # one shared adapter learns every agent's generator and critic sets


@dataclass(frozen=True)
class FineTuning:
    name: str
    title: str  # its row's title in `report --table`
    help: str
    plan: str = OWN
    critics: bool = True  # an OWN plan trains crit<i> and the critics speak with it (False: base-model critics)
    preference: bool = False  # an OWN plan trains gen<i> by DPO on agent i's preference pairs, not SFT
    agent_ids: bool = False  # a system message tells each agent its role and index (training and debate)
    summarize: bool | None = None  # forces debate.summarize (None: the config's)
    labels: Labelling = DEBATE_MAJORITY

    @property
    def per_agent(self) -> bool:
        """Whether each agent has adapters of its own (a mixed society needs that: an adapter fits one base)."""
        return self.plan == OWN

    def summarizes(self, configured: bool) -> bool:
        """Whether its critics read a summary of the other answers, given the config's debate.summarize."""
        return configured if self.summarize is None else self.summarize

    def society(self, agents: int, trained: Collection[str], models: tuple[str | None, ...] = ()) -> Society:
        """Who speaks once the adapters named in `trained` exist, agent i on base `models[i]` (empty: all on the
        one base); an agent without its adapter is its base model."""
        served = lambda name: name if name in trained else None  # noqa: E731
        if self.plan != OWN:
            return Society((served(SHARED),) * agents, (served(SHARED),) * agents, self.agent_ids, models)
        critics = tuple(served(critic(i)) if self.critics else None for i in range(agents))
        return Society(tuple(served(generator(i)) for i in range(agents)), critics, self.agent_ids, models)

    def training_plan(self, sets: Sequence[AgentSets]) -> dict[str, list[dict]]:
        """The training plan: each adapter's examples, from every agent's sets."""
        if self.plan != OWN:
            learners = sets[:1] if self.plan == FIRST else sets
            return {SHARED: [example for s in learners for example in s.generator + s.critic]}
        plan = {generator(i): s.pairs if self.preference else s.generator for i, s in enumerate(sets)}
        if self.critics:
            plan.update({critic(i): s.critic for i, s in enumerate(sets)})
        return plan


def _by_name(*entries):
    return {entry.name: entry for entry in entries}


# In the order of the paper's Table 1, the order `report --table` shows their rows in.
SCORINGS: dict[str, Scoring] = _by_name(
    Scoring(
        "all",
        "debate once (N agents, M rounds) and score it three ways: base, majority and debate",
        lambda n, m: (n, m),
        parts=("base", "majority", "debate"),
    ),
    Scoring(
        "base",
        "agent 0's round-1 answer (a 1-agent, 1-round debate)",
        lambda n, m: (1, 1),
        vote_agents=1,
        vote_round=1,
        title="Base",
    ),
    Scoring("majority", "the vote of N agents' round-1 answers", lambda n, m: (n, 1), vote_round=1, title="Majority"),
    Scoring(
        "self_consistency",
        "the vote of one round of N x M independent answers (the debate's number of turns)",
        lambda n, m: (n * m, 1),
        vote_round=1,
        title="Self-consistency",
    ),
    Scoring("debate", "the vote of the last round of the N-agent, M-round debate", lambda n, m: (n, m), title="Debate"),
)
FINE_TUNINGS: dict[str, FineTuning] = _by_name(
    FineTuning(
        "star",
        "STaR",
        "STaR (Zelikman et al.): one adapter, used by every agent, trained on agent 0's rationales that reach the "
        "gold answer and its rationalized misses",
        plan=FIRST,
        labels=GOLD_RATIONALES,
    ),
    FineTuning(
        "majority_ft",
        "Majority FT",
        "one adapter, used by every agent, trained on every agent's majority-matching responses",
        plan=POOLED,
    ),
    FineTuning(
        "single_agent_ft", "Single-agent FT", "one adapter, used by every agent, trained on agent 0's data", plan=FIRST
    ),
    FineTuning(
        "multiagent_ft",
        "Multiagent FT (ours)",
        "each of the 2N agents gets its own adapter, trained on its own generator or critic set",
    ),
    FineTuning(
        "multiagent_dpo",
        "Multiagent DPO",
        "multiagent_ft with each generator trained by DPO (train.beta) on its round-1 answers paired with another "
        "agent's on the other side of the majority, against its adapter's start; critics as multiagent_ft",
        preference=True,
    ),
    FineTuning(
        "agent_id",
        "Agent-ID prompt",
        "majority_ft with each agent told its role and index in a system message",
        plan=POOLED,
        agent_ids=True,
    ),
    FineTuning("no_critic", "w/o critic", "multiagent_ft with the critics left the base model", critics=False),
    FineTuning(
        "no_summary",
        "w/o summary",
        "multiagent_ft with critics shown the other answers verbatim (forces debate.summarize=false)",
        summarize=False,
    ),
)
DEFAULT_SCORING = "all"
DEFAULT_FINE_TUNING = "multiagent_ft"


def split_legacy_method(settings: dict) -> dict:
    """A run's saved settings from before `ft_method` was split from `method` (which then named a scoring or a
    fine-tuning method, None for the command's default) in today's two settings, so old runs resume as before."""
    if "ft_method" in settings:
        return settings
    old = settings.get("method")
    return {
        **settings,
        "method": old if old in SCORINGS else DEFAULT_SCORING,
        "ft_method": old if old in FINE_TUNINGS else DEFAULT_FINE_TUNING,
    }
