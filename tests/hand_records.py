"""Hand-made transcript records for tests: a test names the fields it is about, the rest get plain fillers."""

from debate_ft.transcript import Record, Turn


def turn(round_: int, agent: int, answer: str | None, **fields) -> Turn:
    filler = {
        "role": "generator" if round_ == 1 else "critic",
        "adapter": None,
        "prompt": f"p{round_}{agent}",
        "response": f"r{round_}{agent}",
        "tokens": 10,
    }
    return Turn(round=round_, agent=agent, answer=answer, **{**filler, **fields})


def record(turns, **fields) -> Record:
    filler = {"id": "q", "question": "", "gold": "", "answer": None, "consensus": 0.0, "correct": False}
    return Record(turns=tuple(turns), **{**filler, **fields})


def rounds(answers_by_round, **fields) -> Record:
    """A record whose agent a answers answers_by_round[r - 1][a] in round r."""
    turns = [
        turn(round_, agent, answer)
        for round_, answers in enumerate(answers_by_round, start=1)
        for agent, answer in enumerate(answers)
    ]
    return record(turns, **fields)
