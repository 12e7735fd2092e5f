"""Labelling on hand-built transcripts: no ground truth, corrected vs kept, w mixing, short sides."""

import random
from dataclasses import replace

import pytest
from hand_records import rounds

from debate_ft.config import DatasetConfig
from debate_ft.label import agent_sets, mix_critic, split_by_agent
from debate_ft.tasks import get_task

TASK = get_task(DatasetConfig(name="arithmetic"))


def record(answers_by_round, final, gold="0"):
    return rounds(answers_by_round, id=f"q{final}{answers_by_round}", answer=final, gold=gold)


def test_corrected_kept_and_generator_sets():
    records = [
        # agent 0 right all along, agent 1 corrected, agent 2 never agrees; gold is ignored
        record([["5", "4", "9"], ["5", "5.0", "9"]], final="5", gold="123"),
        # nobody answers: no label, no data
        record([[None, None, None], [None, None, None]], final=None),
    ]
    data = split_by_agent(records, TASK, agents=3)
    assert [len(d.generator) for d in data] == [1, 0, 0]
    assert [len(d.kept) for d in data] == [1, 0, 0]
    assert [len(d.corrected) for d in data] == [0, 1, 0]
    corrected = data[1].corrected[0]
    assert corrected["kind"] == "corrected" and len(corrected["messages"]) == 4
    assert corrected["messages"][1]["content"] == "r11" and corrected["messages"][3]["content"] == "r21"
    assert data[0].generator[0]["messages"] == [
        {"role": "user", "content": "p10"},
        {"role": "assistant", "content": "r10"},
    ]


def test_no_answer_turn_never_matches_the_label():
    data = split_by_agent([record([[None, "3", "3"], [None, "3", "3"]], final="3")], TASK, agents=3)
    assert len(data[0].generator) == 0 and len(data[0].kept) == 0 and len(data[0].corrected) == 0


def test_single_round_gives_generator_data_only():
    data = split_by_agent([record([["1", "1"]], final="1")], TASK, agents=2)
    assert [len(d.generator) for d in data] == [1, 1] and not data[0].kept and not data[0].corrected


@pytest.mark.parametrize(
    "n_corrected, n_kept, w, size, expected",
    [
        (10, 10, 0.5, 6, (3, 3)),
        (10, 10, 0.25, 8, (2, 6)),
        (1, 10, 0.5, 6, (1, 5)),  # corrected short: take it all, kept fills in
        (10, 1, 0.5, 6, (5, 1)),  # kept short: corrected fills in
        (1, 1, 0.5, 6, (1, 1)),  # both short: everything, no crash
        (0, 0, 0.5, 4, (0, 0)),
    ],
)
def test_mix_critic(n_corrected, n_kept, w, size, expected):
    corrected = [{"kind": "corrected", "i": i} for i in range(n_corrected)]
    kept = [{"kind": "kept", "i": i} for i in range(n_kept)]
    chosen, note = mix_critic(corrected, kept, w, size, random.Random(0))
    kinds = [c["kind"] for c in chosen]
    assert (kinds.count("corrected"), kinds.count("kept")) == expected
    assert (note is None) == (expected == (round(w * size), size - round(w * size)))
    again, _ = mix_critic(corrected, kept, w, size, random.Random(0))
    assert again == chosen  # seeded


def test_agent_sets_record_their_sizes():
    records = [record([["5", "4"], ["5", "5"]], final="5"), record([["2", "2"], ["2", "2"]], final="2")]
    sets = agent_sets(split_by_agent(records, TASK, agents=2), w=0.5, critic_size=None, seed=0)
    assert [len(s.generator) for s in sets] == [2, 1]
    assert sets[1].sizes == {"generator": 1, "corrected": 1, "kept": 1, "critic": 1, "pairs": 0, "critic_note": ""}


# Preference pairs (ft_method=multiagent_dpo): round-1 answers to one shared prompt, split by the final vote.


def shared_prompt(answers_by_round, final, **turn_fields):
    built = record(answers_by_round, final)
    turns = [replace(t, prompt="q", **turn_fields) if t.round == 1 else t for t in built.turns]
    return replace(built, turns=tuple(turns))


def pairs_of(records, agents=3):
    return [[(p["chosen"][0]["content"], p["rejected"][0]["content"], p["kind"]) for p in d.pairs]
            for d in split_by_agent(records, TASK, agents)]  # fmt: skip


def test_each_agent_pairs_its_round1_answer_with_the_next_agent_on_the_other_side():
    # round 1: agents 0 and 2 say 5 (the final vote), agent 1 says 4; agent 2's rival wraps around to agent 1
    assert pairs_of([shared_prompt([["5", "4", "5"], ["5", "5", "5"]], final="5")]) == [
        [("r10", "r11", "chosen")],
        [("r12", "r11", "rejected")],  # agent 1's own answer is the rejected one; its rival is agent 2
        [("r12", "r11", "chosen")],
    ]


def test_a_pair_is_one_prompt_with_two_assistant_completions():
    pair = split_by_agent([shared_prompt([["5", "4"], ["5", "5"]], final="5")], TASK, agents=2)[0].pairs[0]
    assert pair["prompt"] == [{"role": "user", "content": "q"}] and pair["rival"] == 1
    assert pair["chosen"] == [{"role": "assistant", "content": "r10"}]
    assert pair["rejected"] == [{"role": "assistant", "content": "r11"}]


@pytest.mark.parametrize(
    "answers, final, expected",
    [
        ([["5", "5", "5"], ["5", "5", "5"]], "5", [0, 0, 0]),  # everyone agrees: nothing to prefer
        ([["1", "2", "3"], ["4", "4", "4"]], "4", [0, 0, 0]),  # round 1 all on the losing side
        ([[None, None, None], [None, None, None]], None, [0, 0, 0]),  # no label, no pairs
        ([[None, "3", "3"], ["3", "3", "3"]], "3", [1, 1, 1]),  # an answer that does not parse is rejected
        ([["3.0", "3", "7"], ["3", "3", "3"]], "3", [1, 1, 1]),  # equivalence, not string match, sides it
    ],
)
def test_pairs_need_both_sides_in_round_1(answers, final, expected):
    assert [len(p) for p in pairs_of([shared_prompt(answers, final)])] == expected


def test_an_agent_missing_from_round_1_is_not_mistaken_for_another():
    built = shared_prompt([["5", "4", "5"], ["5", "5", "5"]], final="5")
    without_agent_0 = replace(built, turns=tuple(t for t in built.turns if t.agent != 0))
    assert pairs_of([without_agent_0]) == [[], [("r12", "r11", "rejected")], [("r12", "r11", "chosen")]]


def test_no_pair_across_different_prompts():
    assert pairs_of([record([["5", "4", "5"], ["5", "5", "5"]], final="5")]) == [[], [], []]  # p10, p11, p12
    persona = shared_prompt([["5", "4"], ["5", "5"]], final="5")
    turns = [replace(t, system=f"you are agent {t.agent}") for t in persona.turns]
    assert pairs_of([replace(persona, turns=tuple(turns))], agents=2) == [[], []]


def test_agent_sets_count_pairs():
    data = split_by_agent([shared_prompt([["5", "4", "5"], ["5", "5", "5"]], final="5")], TASK, agents=3)
    sets = agent_sets(data, 0.5, None, seed=0)
    assert [s.sizes["pairs"] for s in sets] == [1, 1, 1] and sets[1].pairs == data[1].pairs
