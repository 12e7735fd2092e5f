"""Atomic writes and their recovery: at every instant a folder written by atomic_path exists whole, under
its own name or (killed between the two renames) under its aside name, and recover() undoes the rest."""

import os

import pytest

from debate_ft.runs import atomic_path, is_leftover, read_records, recover, write_text


def folder_with(path, text):
    with atomic_path(path) as temporary:
        temporary.mkdir()
        (temporary / "weights").write_text(text)


def test_a_folder_is_replaced_whole_and_no_leftover_stays(tmp_path):
    folder_with(tmp_path / "checkpoint", "old")
    folder_with(tmp_path / "checkpoint", "new")
    assert (tmp_path / "checkpoint" / "weights").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_every_rename_leaves_the_old_or_the_new_folder(tmp_path, monkeypatch):
    """Stop the write after each of its renames, as a kill would, and recover: old or new, never none."""
    real = os.replace
    for stop_after in (1, 2):
        root = tmp_path / str(stop_after)
        folder_with(root / "checkpoint", "old")
        calls = []

        def replace(src, dst, calls=calls, stop_after=stop_after):
            real(src, dst)
            calls.append(dst)
            if len(calls) == stop_after:
                raise SystemExit  # a BaseException: as abrupt as a kill for what is on disk

        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(SystemExit):
            folder_with(root / "checkpoint", "new")
        monkeypatch.setattr(os, "replace", real)
        if stop_after == 1:  # the old folder is aside, the new one not yet in: before the fix, none was left
            assert not (root / "checkpoint").exists()
        recover(root)
        assert (root / "checkpoint" / "weights").read_text() == ("old" if stop_after == 1 else "new")
        assert sorted(p.name for p in root.iterdir()) == ["checkpoint"]


def test_recover_deletes_temporary_leftovers_and_keeps_real_files(tmp_path):
    (tmp_path / "iter1" / ".gen0.tmp-abc_12" / "gen0").mkdir(parents=True)
    (tmp_path / ".metrics.csv.tmp-x9").mkdir()
    (tmp_path / ".metrics.csv.tmp-x9" / "metrics.csv").write_text("")
    (tmp_path / ".old-notes").write_text("a user's file that merely looks odd")
    write_text(tmp_path / "metrics.csv", "a,b\n1,2\n")
    recover(tmp_path)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [".old-notes", "iter1", "metrics.csv"]


def test_an_aside_folder_is_not_restored_over_a_newer_one(tmp_path):
    folder_with(tmp_path / "adapter", "new")
    (tmp_path / ".adapter.old-q1").mkdir()
    (tmp_path / ".adapter.old-q1" / "weights").write_text("old")
    recover(tmp_path)
    assert (tmp_path / "adapter" / "weights").read_text() == "new" and not (tmp_path / ".adapter.old-q1").exists()


def test_leftovers_are_recognised_by_name(tmp_path):
    assert is_leftover(tmp_path / "r" / ".metrics.csv.tmp-abc" / "metrics.csv", tmp_path)
    assert not is_leftover(tmp_path / "r" / "metrics.csv", tmp_path)


def test_a_torn_last_line_is_cut_but_a_corrupt_middle_line_is_an_error(tmp_path):
    from debate_ft.errors import DataError

    path = tmp_path / "t.jsonl"
    path.write_text('{"id": 1}\n{"id": 2}\n{"id"')
    assert read_records(path) == [{"id": 1}, {"id": 2}] and path.read_text() == '{"id": 1}\n{"id": 2}\n'
    path.write_text('{"id": 1}\n{"id\n{"id": 3}\n')
    with pytest.raises(DataError, match=r"t.jsonl:2: corrupt record"):
        read_records(path)
