"""transcripts.html (browser.py): the report's static transcript browser, checked as HTML and in headless chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hand_records import record, turn

from debate_ft import report
from debate_ft.browser import HTML_FILE, question_view, write_browser
from debate_ft.config import DatasetConfig
from debate_ft.run_config import saved_config
from debate_ft.tasks import get_task
from debate_ft.transcript import read

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def expected_counts(run_dir: Path, key: str) -> dict[str, int]:
    task = get_task(saved_config(run_dir).dataset)
    questions = [question_view(task, r) for r in read(run_dir / f"{key}.jsonl")]
    return {
        "all": len(questions),
        "wrong": sum(not q["correct"] for q in questions),
        "disagree": sum(q["disagree"] for q in questions),
        "corrected": sum(q["corrected"] for q in questions),
    }


def test_report_writes_one_self_contained_page_per_run(diversity_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(diversity_run, run)
    assert report.main([str(run), "--out", str(tmp_path)]) == 0
    page = (run / HTML_FILE).read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)  # nothing loaded from elsewhere
    keys = re.findall(r'<section class="transcript" data-key="([^"]+)"', page)
    assert keys == ["iter0/test_2x2", "iter1/test_2x2", "iter1/train_2x2"]
    assert page.count('<article class="question') == 4 + 4 + 8
    assert page.count('<td class="turn') == (4 + 4 + 8) * 2 * 2  # questions x rounds x agents


def test_a_question_is_corrected_when_round_one_voted_wrong_and_the_debate_right():
    task = get_task(DatasetConfig(name="arithmetic"))
    turns = [turn(1, 0, "3"), turn(1, 1, "3"), turn(2, 0, "2"), turn(2, 1, "2")]
    view = question_view(task, record(turns, question="1+1", gold="2", answer="2", consensus=1.0, correct=True))
    assert view["corrected"] and not view["spoiled"] and not view["disagree"] and view["first_vote"] == "3"
    assert [[t["right"] for t in row] for row in view["grid"]] == [[False, False], [True, True]]


def chromium() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        pytest.skip("no chromium installed: `make test-browser` installs it (apt-get install chromium) and runs this")
    return found


def headless(browser: str, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.browser
def test_the_page_filters_and_switches_in_a_real_browser(diversity_run, tmp_path):
    browser = chromium()
    run = tmp_path / "run"
    shutil.copytree(diversity_run, run)
    page = write_browser(run)
    for key in ("iter0/test_2x2", "iter1/train_2x2"):
        counts = expected_counts(run, key)
        for name, count in counts.items():
            dom = headless(browser, "--dump-dom", f"{page.as_uri()}#transcript={key}&filter={name}").stdout
            assert f'data-shown="{count}"' in dom, (key, name)
            assert f"{count} of {counts['all']} questions" in dom
    shot = tmp_path / "transcripts.png"
    headless(browser, f"--screenshot={shot}", "--window-size=1400,1000", page.as_uri() + "#transcript=iter1/test_2x2")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
