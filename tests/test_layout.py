"""The run directory's layout: iteration folders, transcripts in order, adapter folders, flow traces."""

from debate_ft.layout import RunDir, adapter_iteration


def test_iterations_transcripts_and_traces_are_found_in_order(tmp_path):
    run = RunDir(tmp_path)
    for k in (10, 2, 0):
        run.iteration(k).mkdir()
    (tmp_path / "iterX").mkdir()  # not an iteration
    (tmp_path / "iter3").write_text("")  # a file, not a folder
    assert run.iterations() == [0, 2, 10]
    for path in (
        run.transcript(2, "train", 3, 2, summarize=False),
        run.transcript(2, "test", 3, 2, summarize=True),
        run.transcript(0, "test", 1, 1, summarize=True),  # one round: no summary suffix
        run.iteration(2) / "notes.jsonl",
    ):
        path.write_text("")
    assert [p.relative_to(tmp_path).as_posix() for p in run.transcripts()] == [
        "iter0/test_1x1.jsonl",
        "iter2/test_3x2_summary.jsonl",
        "iter2/train_3x2.jsonl",
    ]
    assert run.iteration_of(run.transcripts()[-1]) == 2
    run.flow.mkdir()
    for episodes in (0, 12):
        run.test_trace(episodes).write_text("")
    assert run.test_traces() == {0: run.flow / "test_trace_ep0.jsonl", 12: run.flow / "test_trace_ep12.jsonl"}


def test_an_adapter_folder_knows_its_iteration():
    assert adapter_iteration(RunDir("runs/demo").adapters(2) / "gen0") == 2
    assert adapter_iteration("elsewhere/adapters/gen0") is None
    assert adapter_iteration("runs/demo/iter2/gen0") is None
