"""Transcript lines as typed records: byte-identical round trips, the one vote of a round, one agent's messages."""

import json

import pytest
from hand_records import record, rounds, turn

from debate_ft.config import DatasetConfig
from debate_ft.errors import DataError
from debate_ft.runs import append_records
from debate_ft.tasks import get_task
from debate_ft.transcript import Record, agent_name, conversation, last_round, read, round_vote

TASK = get_task(DatasetConfig(name="arithmetic"))

# Lines as the debate writes them (from an agent-ID run, with system messages, and a summarised 3-agent debate,
# with summaries; prompts shortened): a line is read and written back byte for byte.
PERSONA_LINE = (
    '{"id": "3+17*28", "question": "What is the result of 3+17*28?", "gold": "479", "turns": [{"round": 1, '
    '"agent": 0, "role": "generator", "adapter": "gen0", "system": "You are generator agent 1 of 2 in a debate.", '
    '"prompt": "What is the result of 3+17*28?", "response": "3+17*28 = 479. The answer is 479.", "answer": "479", '
    '"tokens": 8}, {"round": 2, "agent": 0, "role": "critic", "adapter": "crit0", "system": "You are critic agent '
    '1 of 2 in a debate.", "prompt": "These are the solutions… ```3+17*28 = 480.```", "response": "I am not sure.", '
    '"answer": null, "tokens": 9}], "answer": null, "consensus": 0.0, "correct": false}'
)
SUMMARY_LINE = (
    '{"id": "26+20", "question": "What is the result of 26+20?", "gold": "46", "turns": [{"round": 1, "agent": 0, '
    '"role": "generator", "adapter": null, "prompt": "What is the result of 26+20?", "response": "The answer is '
    '46.", "answer": "46", "tokens": 8}, {"round": 2, "agent": 0, "role": "critic", "adapter": null, "summary": '
    '"Summary: the agents agree.", "prompt": "Here is a summary of the solutions from other agents: Summary: the '
    'agents agree.", "response": "The answer is 46.", "answer": "46", "tokens": 8}], "answer": "46", "consensus": '
    '0.3333333333333333, "correct": true}'
)


@pytest.mark.parametrize("line", [PERSONA_LINE, SUMMARY_LINE])
def test_a_line_round_trips_byte_for_byte(line, tmp_path):
    parsed = Record.from_dict(json.loads(line))
    assert json.dumps(parsed.to_dict(), ensure_ascii=False) == line
    (tmp_path / "in.jsonl").write_text(line + "\n", encoding="utf-8")
    append_records(tmp_path / "out.jsonl", [record.to_dict() for record in read(tmp_path / "in.jsonl")])
    assert (tmp_path / "out.jsonl").read_bytes() == (tmp_path / "in.jsonl").read_bytes()


def test_unset_optional_keys_are_absent_and_set_ones_are_typed():
    persona, summary = Record.from_dict(json.loads(PERSONA_LINE)), Record.from_dict(json.loads(SUMMARY_LINE))
    assert persona.turns[1].system.startswith("You are critic") and persona.turns[1].summary is None
    assert "system" not in summary.turns[0].to_dict() and "summary" not in summary.turns[0].to_dict()
    assert summary.turns[1].to_dict()["summary"] == "Summary: the agents agree." and summary.correct is True
    assert [agent_name(t) for t in persona.turns] == ["gen0", "crit0"]


def test_a_line_that_is_no_debate_record_is_a_data_error(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "q", "turns": []}\n')
    with pytest.raises(DataError, match="not a debate record"):
        read(path)
    assert read(tmp_path / "absent.jsonl") == []


def test_a_tie_goes_to_the_earliest_agent():
    tied = rounds([["4", "5", "5", "4"]])
    vote = round_vote(tied.turns, TASK.equivalent)
    assert (vote.answer, vote.members, vote.consensus) == ("4", (0, 3), 0.5)
    shuffled = record([tied.turns[3], tied.turns[1], tied.turns[0], tied.turns[2]])  # file order is not agent order
    assert round_vote(shuffled.turns, TASK.equivalent).members == (0, 3)


def test_none_answers_never_win_but_count_in_the_total():
    vote = round_vote(rounds([[None, None, "7"]]).turns, TASK.equivalent)
    assert (vote.answer, vote.count, vote.total) == ("7", 1, 3)
    nobody = round_vote(rounds([[None, None]]).turns, TASK.equivalent)
    assert (nobody.answer, nobody.consensus) == (None, 0.0)


def test_the_vote_of_a_chosen_round_among_the_first_agents():
    debate = rounds([["1", "2", "2"], ["3", "3", "2"]])
    assert round_vote(debate.turns, TASK.equivalent).answer == "3"  # the last round by default
    first = round_vote(debate.turns, TASK.equivalent, round_=1)
    assert (first.answer, first.consensus) == ("2", pytest.approx(2 / 3))
    alone = round_vote(debate.turns, TASK.equivalent, round_=1, agents=1)
    assert (alone.answer, alone.total) == ("1", 1)
    assert round_vote(debate.turns, TASK.equivalent, round_=2, agents=2).members == (0, 1)
    assert [t.agent for t in last_round(debate.turns)] == [0, 1, 2]


def test_conversation_of_an_agent_with_a_system_message():
    turns = [
        turn(1, 0, "1", system="You are generator agent 1 of 2."),
        turn(1, 1, "2", system="You are generator agent 2 of 2."),
        turn(2, 0, "2", system="You are critic agent 1 of 2."),
    ]
    assert conversation(turns, 0) == [
        {"role": "system", "content": "You are critic agent 1 of 2."},  # the latest turn's persona
        {"role": "user", "content": "p10"},
        {"role": "assistant", "content": "r10"},
        {"role": "user", "content": "p20"},
        {"role": "assistant", "content": "r20"},
    ]
    asked = [*turns[:2], turn(2, 1, None, response=None, system="You are critic agent 2 of 2.")]
    assert conversation(asked, 1)[-1] == {"role": "user", "content": "p21"}  # an asked turn ends on its prompt
    assert conversation(turns, 5) == []
