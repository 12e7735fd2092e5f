"""`report`'s transcript browser: one self-contained static page per run, transcripts.html.

Every transcript of the run (iter<k>/test_NxM.jsonl, iter<k>/train_NxM.jsonl) with each question's turns side by
side, agents across and rounds down: each agent's response and parsed answer, right or wrong, the vote, the gold
answer and correctness. Filters: wrong (the vote is wrong), disagreeing (not every last-round answer is the vote),
corrected by debate (round 1's majority was wrong, the final vote is right), and conformity's (conformity.py: a
critic flipped right -> wrong or wrong -> right, adopted another agent's answer, or some agent was right in the
last round while the vote was wrong); a switch between transcripts
(iterations and splits). The page holds its CSS and JavaScript inline: no server, no CDN. Its URL fragment
(#transcript=iter1/test_3x2&filter=wrong) picks the view, so a view can be linked.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from debate_ft import conformity
from debate_ft.errors import DebateFTError
from debate_ft.layout import RunDir
from debate_ft.run_config import saved_config
from debate_ft.runs import write_text
from debate_ft.tasks import Task, get_task
from debate_ft.transcript import Record, final_round, read, round_vote

HTML_FILE = "transcripts.html"
# the page's filters besides "wrong vote": a question flag each, with its label
FILTERS = {
    "disagree": "disagreeing agents",
    "corrected": "corrected by debate",
    "right_to_wrong": "a critic went right -> wrong",
    "wrong_to_right": "a critic went wrong -> right",
    "adopted": "a critic adopted another's answer",
    "oracle_missed": "some agent right, vote wrong",
}


def question_view(task: Task, record: Record) -> dict:
    """One record as the page shows it: a rounds x agents grid of turns and the question's flags."""
    turns = record.turns
    rounds, agents = final_round(turns), 1 + max(t.agent for t in turns)
    grid: list[list[dict | None]] = [[None] * agents for _ in range(rounds)]
    for turn in turns:
        grid[turn.round - 1][turn.agent] = {**turn.to_dict(), "right": task.is_correct(turn.answer, record.gold)}
    first = round_vote(turns, task.equivalent, round_=1).answer
    first_right = task.is_correct(first, record.gold)
    return {
        **record.to_dict(),
        "grid": grid,
        "first_vote": first,
        "disagree": record.consensus < 1,
        "corrected": rounds > 1 and not first_right and record.correct,
        "spoiled": rounds > 1 and first_right and not record.correct,
        **conformity.flags(record, task.is_correct, task.equivalent),
    }


def transcript_view(task: Task, run_dir: Path, path: Path) -> dict:
    questions = [question_view(task, record) for record in read(path)]
    return {
        "key": path.relative_to(run_dir).with_suffix("").as_posix(),
        "label": f"iteration {RunDir(run_dir).iteration_of(path)}, {path.stem.replace('_', ' ')}",
        "questions": questions,
        "agents": max((len(q["grid"][0]) for q in questions), default=0),
        "right": sum(q["correct"] for q in questions),
        "counts": {flag: sum(q[flag] for q in questions) for flag in (*FILTERS, "spoiled")},
    }


def render(run: str, transcripts: list[dict]) -> str:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("debate_ft", "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return environment.get_template("transcripts.html.j2").render(run=run, transcripts=transcripts, filters=FILTERS)


def write_browser(run_dir: Path) -> Path | None:
    """Write run_dir/transcripts.html; None when the run holds no debate transcripts (a flow run)."""
    files = RunDir(run_dir).transcripts()
    if not files:
        return None
    try:
        task = get_task(saved_config(run_dir).dataset)
    except DebateFTError:
        return None
    path = run_dir / HTML_FILE
    write_text(path, render(run_dir.name, [transcript_view(task, run_dir, f) for f in files]))
    return path
