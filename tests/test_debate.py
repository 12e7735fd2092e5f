import itertools

import pytest

from debate_ft.backends import Completion
from debate_ft.config import DatasetConfig, GenerationConfig
from debate_ft.debate import Debate
from debate_ft.methods import Society
from debate_ft.runs import read_records
from debate_ft.tasks import get_task
from debate_ft.transcript import conversation

SAMPLING = GenerationConfig(max_new_tokens=8)


class RecordingBackend:
    """Answers every request with a unique number and remembers what each call was asked."""

    def __init__(self):
        self.calls = []
        self.counter = itertools.count(1000)

    def generate(self, requests, sampling, seed, desc=""):
        self.calls.append(list(requests))
        return [Completion(f"reply-{next(self.counter)} so the answer is {n}", 3) for n, _ in enumerate(requests)]

    def logprobs(self, requests, completions):
        raise NotImplementedError

    def load_adapter(self, name, path):
        pass


@pytest.fixture
def task():
    return get_task(DatasetConfig(name="arithmetic", operands=2, max_value=9, test_size=5))


def debate(task, backend, agents=3, rounds=3, summarize=False, society=None):
    return Debate(task, backend, society or Society.base(agents), rounds, summarize, SAMPLING)


def test_round_prompts_see_only_the_previous_round(task):
    backend = RecordingBackend()
    records = debate(task, backend).chunk(task.load("test")[:2], seed=0)
    for record in records:
        for turn in record.turns:
            same = [t for t in record.turns if t.round == turn.round]
            earlier = [t for t in record.turns if t.round == turn.round - 1 and t.agent != turn.agent]
            older = [t for t in record.turns if t.round < turn.round - 1]
            reply_ids = lambda turns: [t.response.split()[0] for t in turns]  # noqa: E731
            assert not any(r in turn.prompt for r in reply_ids(same))
            assert all(r in turn.prompt for r in reply_ids(earlier))
            assert not any(r in turn.prompt for r in reply_ids(older))


def test_one_generate_call_per_round_covers_all_questions_and_agents(task):
    backend = RecordingBackend()
    debate(task, backend, agents=3, rounds=2).chunk(task.load("test")[:4], seed=0)
    assert [len(call) for call in backend.calls] == [12, 12]


def test_critics_continue_their_own_conversation(task):
    backend = RecordingBackend()
    society = Society(("g0", "g1"), ("c0", "c1"))
    records = debate(task, backend, rounds=2, society=society).chunk(task.load("test")[:1], seed=0)
    round2 = backend.calls[1]
    assert [r.adapter for r in round2] == ["c0", "c1"] and [r.adapter for r in backend.calls[0]] == ["g0", "g1"]
    own_first = records[0].turns[1].response  # agent 1, round 1
    assert round2[1].messages[1] == {"role": "assistant", "content": own_first}
    assert len(conversation(records[0].turns, 1)) == 4


def test_summaries_come_from_the_base_model(task):
    backend = RecordingBackend()
    records = debate(task, backend, agents=3, rounds=2, summarize=True).chunk(task.load("test")[:2], seed=0)
    summary_call = backend.calls[1]
    assert len(summary_call) == 6 and all(r.adapter is None for r in summary_call)
    critic = records[0].turns[3]
    assert critic.summary in critic.prompt and "One agent solution" not in critic.prompt


def test_single_agent_reflects_and_single_round_is_majority(task):
    backend = RecordingBackend()
    records = debate(task, backend, agents=1, rounds=2).chunk(task.load("test")[:1], seed=0)
    assert "double-check" in records[0].turns[1].prompt
    records = debate(task, RecordingBackend(), agents=3, rounds=1).chunk(task.load("test")[:1], seed=0)
    assert {t.round for t in records[0].turns} == {1}


def test_agent_ids_add_a_system_message(task):
    backend = RecordingBackend()
    society = Society((None, None), (None, None), agent_ids=True)
    debate(task, backend, rounds=2, society=society).chunk(task.load("test")[:1], seed=0)
    first = backend.calls[0][1].messages[0]
    assert first["role"] == "system" and "generator agent 2 of 2" in first["content"]
    assert "critic agent 1" in backend.calls[1][0].messages[0]["content"]


def test_transcript_resumes_and_reproduces(task, fake_backend, tmp_path):
    questions = task.load("test")
    full = debate(task, fake_backend).run(questions, tmp_path / "full.jsonl", seed=1, chunk_size=2)
    # an interrupted run: two chunks written, then a kill in the middle of the next line
    path = tmp_path / "t.jsonl"
    lines = (tmp_path / "full.jsonl").read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3]) + lines[3][:20])
    calls = []
    fake_backend.generate = lambda requests, *a, _g=fake_backend.generate, **k: (
        calls.append(len(requests)) or _g(requests, *a, **k)
    )
    resumed = debate(task, fake_backend).run(questions, path, seed=1, chunk_size=2)
    assert resumed == full
    assert [r["id"] for r in read_records(path)] == [q.id for q in questions]
    assert len(calls) == 3 * 2  # chunks 1 (its torn second record) and 2 are redone: 2 chunks x 3 rounds


def test_record_votes_on_the_last_round(task, fake_backend):
    record = debate(task, fake_backend).chunk(task.load("test")[:1], seed=3)[0]
    last = [t.answer for t in record.turns if t.round == 3]
    assert record.answer in last or (record.answer is None and not any(last))
    assert record.correct == task.is_correct(record.answer, record.gold)


def test_short_prompts_name_the_other_agents_answers_only(task, fake_backend):
    debate = Debate(task, fake_backend, Society.base(3), 2, False, SAMPLING, template="short")
    for record in debate.chunk(task.load("test")[:4], seed=0):
        first = {t.agent: t for t in record.turns if t.round == 1}
        for turn in (t for t in record.turns if t.round == 2):
            named = [first[agent].answer or "no answer" for agent in first if agent != turn.agent]
            assert turn.prompt == f"{record.question} Other agents answered: {'; '.join(named)}. {task.answer_format}"
