"""Labels without ground truth: the last round's majority y_hat, and each agent's own fine-tuning examples.

For agent i and a question with y_hat:
- generator set D_G,i: its round-1 conversation, when its round-1 answer == y_hat;
- critic pool: its whole conversation, when its last-round answer == y_hat, split into
  D_C- (its round-1 answer != y_hat: it was corrected) and D_C+ (right all along).
The critic set mixes a fraction w from D_C- and 1-w from D_C+ (seeded); a short side is taken whole and
the other side fills the gap, and the shortfall is reported, never raised.
Preference pairs (ft_method=multiagent_dpo), for agent i and a question where round 1 split on y_hat: its own
round-1 answer against the next agent's (cyclically) that falls on the other side, both answers to the same
prompt; the one that agrees with y_hat is chosen. An answer that does not parse counts as disagreeing.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from debate_ft.tasks import Task
from debate_ft.transcript import Record, Turn, conversation, final_round, round_turns

log = logging.getLogger(__name__)


@dataclass
class AgentExamples:
    generator: list[dict] = field(default_factory=list)
    corrected: list[dict] = field(default_factory=list)  # D_C-
    kept: list[dict] = field(default_factory=list)  # D_C+
    pairs: list[dict] = field(default_factory=list)  # its round-1 answer vs a rival's, the one agreeing chosen


def _agrees(task: Task, answer: str | None, label: str | None) -> bool:
    return answer is not None and label is not None and task.equivalent(answer, label)


def example(record: Record, agent: int, upto_round: int, kind: str) -> dict:
    turns = [t for t in record.turns if t.round <= upto_round]
    return {"messages": conversation(turns, agent), "question_id": record.id, "agent": agent, "kind": kind}


def split_by_agent(records: Sequence[Record], task: Task, agents: int) -> list[AgentExamples]:
    """Every agent's D_G, D_C- and D_C+ from debate transcripts, labelled by each record's final vote."""
    data = [AgentExamples() for _ in range(agents)]
    for record in records:
        label = record.answer  # the majority of the last round: no ground truth is used
        last = final_round(record.turns)
        first = round_turns(record.turns, 1)
        agree = [_agrees(task, turn.answer, label) for turn in first]
        for position, (turn, first_right) in enumerate(zip(first, agree)):
            agent = turn.agent
            if pair := preference_pair(record, first, agree, position):
                data[agent].pairs.append(pair)
            if first_right:
                data[agent].generator.append(example(record, agent, 1, "generator"))
            if last == 1:
                continue  # no critic rounds, no critic data
            final = next(t for t in record.turns if t.round == last and t.agent == agent)
            if _agrees(task, final.answer, label):
                side = data[agent].kept if first_right else data[agent].corrected
                side.append(example(record, agent, last, "kept" if first_right else "corrected"))
    return data


def preference_pair(record: Record, first: Sequence[Turn], agree: Sequence[bool], position: int) -> dict | None:
    """The round-1 answer at `position` of `first` and the next one (cyclically) on the other side of the label,
    as a DPO example in TRL's conversational form (prompt, chosen, rejected); None when no other agent is on the
    other side or the rival answered another prompt (a persona system message)."""
    own = first[position]
    after = [(position + step) % len(first) for step in range(1, len(first))]  # the next agents, cyclically
    rival = next((first[i] for i in after if agree[i] != agree[position]), None)
    if rival is None or (rival.prompt, rival.system) != (own.prompt, own.system):
        return None
    chosen, rejected = (own, rival) if agree[position] else (rival, own)
    return {
        "prompt": conversation([replace(own, response=None)], own.agent),
        "chosen": [{"role": "assistant", "content": chosen.response}],
        "rejected": [{"role": "assistant", "content": rejected.response}],
        "question_id": record.id,
        "agent": own.agent,
        "rival": rival.agent,
        "kind": "chosen" if agree[position] else "rejected",  # which side the agent's own answer is
    }


def mix_critic(corrected: list, kept: list, w: float, size: int, rng: random.Random) -> tuple[list, str | None]:
    """`size` examples, round(w*size) from `corrected` and the rest from `kept`, sampled without
    replacement; a short side is taken whole and the other fills in. Returns (examples, shortfall note)."""
    want_corrected = round(w * size)
    take_corrected = min(want_corrected, len(corrected))
    take_kept = min(size - take_corrected, len(kept))
    take_corrected = min(size - take_kept, len(corrected))  # kept may have been short: corrected fills in
    note = None
    if (take_corrected, take_kept) != (want_corrected, size - want_corrected):
        note = (
            f"wanted {want_corrected} corrected + {size - want_corrected} kept, "
            f"had {len(corrected)} + {len(kept)}: took {take_corrected} + {take_kept}"
        )
    return rng.sample(corrected, take_corrected) + rng.sample(kept, take_kept), note


@dataclass
class AgentSets:
    generator: list[dict]
    critic: list[dict]
    sizes: dict
    pairs: list[dict] = field(default_factory=list)


def agent_sets(data: list[AgentExamples], w: float, critic_size: int | None, seed: int) -> list[AgentSets]:
    """Each agent's generator set and mixed critic set (default size: its generator set's), with sizes."""
    sets = []
    for agent, examples in enumerate(data):
        size = critic_size if critic_size is not None else len(examples.generator)
        critic, note = mix_critic(examples.corrected, examples.kept, w, size, random.Random(f"{seed}:{agent}"))
        if note:
            log.info("agent %d critic set: %s", agent, note)
        sizes = {
            "generator": len(examples.generator),
            "corrected": len(examples.corrected),
            "kept": len(examples.kept),
            "critic": len(critic),
            "pairs": len(examples.pairs),
            "critic_note": note or "",
        }
        sets.append(AgentSets(examples.generator, critic, sizes, examples.pairs))
    return sets
