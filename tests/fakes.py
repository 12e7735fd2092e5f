"""Task-aware scripts for the package's fake engine (debate_ft/backends/fake.py), which itself knows no task.

`arithmetic_agents` plays debating agents on the arithmetic task: a question is answered right with probability
ACCURACY; in later rounds an agent adopts the most common answer it is shown (the debate prompt's ``` blocks)
half the time; the summarizer says whether the agents agree; any other prompt gets the default script's reply,
and so does one reply in ten. The CLI runs it with `backend=fake backend.script=fakes:arithmetic_agents`
(AGENTS below), this folder on PYTHONPATH (conftest puts it there for subprocesses).
"""

from __future__ import annotations

import re
from collections import Counter

from debate_ft.answers import last_number
from debate_ft.backends.fake import default_script
from debate_ft.tasks.arithmetic import evaluate

ACCURACY = 0.6
AGENTS = ["backend=fake", "backend.script=fakes:arithmetic_agents"]  # CLI overrides that select this script

_EXPRESSION = re.compile(r"result of (\d+(?:[-+*]\d+)*)\?")
_SHOWN_ANSWER = re.compile(r"```(.*?)```", re.DOTALL)


def arithmetic_agents(messages, draw, accuracy: float = ACCURACY) -> str:
    last = messages[-1]["content"]
    if last.startswith("Here are a list of opinions"):
        return "Summary: the agents " + ("agree." if draw("s") < 0.5 else "disagree.")
    if draw("silent") >= 0.1:
        shown = [n for block in _SHOWN_ANSWER.findall(last) if (n := last_number(block)) is not None]
        if shown and draw("adopt") < 0.5:
            return f"After reading the other solutions, the answer is {Counter(shown).most_common(1)[0][0]}."
        found = _EXPRESSION.search(messages[0]["content"]) or _EXPRESSION.search(last)
        if found:
            right = evaluate(tuple(int(n) for n in re.findall(r"\d+", found.group(1))))
            value = right if draw("right") < accuracy else right + 1 + int(5 * draw("off"))
            return f"{found.group(1)} = {value}. The answer is {value}."
    return default_script(messages, draw)
