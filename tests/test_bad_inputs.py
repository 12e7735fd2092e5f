"""The bad-input corpus: what a hostile new user types, run through the CLI's main() in-process.

Every case asserts the exit code, exactly one `error:` line that names the file, line or key at fault, no
traceback anywhere in the output, and that nothing was written that a later run would read as a result
(no metrics.csv, no transcript, no leftover of an interrupted write). `SUMMARY` at the end counts outcomes.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
from pathlib import Path

import pytest
from helpers import error_line, gsm_rows, run, write_jsonl

from debate_ft import cli
from debate_ft.testing import musique_row

pytestmark = pytest.mark.timeout(120)  # a hang fails the case instead of the suite

SMALL_HF = ["dataset.test_size=2"]
FAKE = ["backend=fake", "dataset.test_size=3", "dataset.train_size=3", "agents.n=2"]


def written_results(root: Path) -> list[str]:
    """Files a later run or `report` would read as results, and leftovers of interrupted writes."""
    if not root.exists():
        return []
    found = []
    for path in root.rglob("*"):
        name = path.name
        if name == "metrics.csv" or (path.suffix == ".jsonl" and path.parent.name.startswith("iter")):
            found.append(str(path))
        elif ".tmp-" in name or ".old-" in name:
            found.append(str(path))
    return found


def check_clean(code: int, output: str, expected_code: int, needles: list[str], root: Path, before=()):
    """The case's outcome is clean; `before` lists the result files that existed before the command."""
    assert "Traceback" not in output, output
    assert code == expected_code, output
    error = error_line(output)
    for needle in needles:
        assert needle in error, f"{needle!r} not in {error!r}"
    assert sorted(written_results(root)) == sorted(before)


# ---------------------------------------------------------------- cases: (id, setup) where
# setup(tmp, tiny) -> (command line after the subcommand's run.root/run.name, exit code, needles)


def gsm(tmp: Path, rows) -> tuple[list[str], Path]:
    """A GSM folder with train.jsonl and test.jsonl (so every test row is read); `rows` go to test.jsonl
    (a list of rows, or bytes written as they are)."""
    folder = tmp / "gsm"
    write_jsonl(folder / "train.jsonl", gsm_rows(5))
    path = folder / "test.jsonl"
    if isinstance(rows, bytes):
        path.write_bytes(rows)
    else:
        write_jsonl(path, rows)
    return ["evaluate", "+dataset=gsm", f"dataset.path={folder}", *FAKE], path


CASES = {}


def case(name):
    def register(fn):
        CASES[name] = fn
        return fn

    return register


# --- config and command line
@case("no_dataset")
def _(tmp, tiny):
    return ["evaluate", "backend=fake"], 2, ["+dataset=<name>"]


@case("unknown_dataset")
def _(tmp, tiny):
    return ["evaluate", "+dataset=nope"], 2, ["dataset/nope", "arithmetic"]


@case("dataset_key_without_dataset")
def _(tmp, tiny):
    return ["evaluate", "dataset.test_size=3", "backend=fake"], 2, ["dataset.test_size", "+dataset="]


@case("unknown_key")
def _(tmp, tiny):
    return ["evaluate", "+dataset=arithmetic", "agents.m=3", *FAKE], 2, ["agents.m"]


@case("wrong_type")
def _(tmp, tiny):
    return ["evaluate", "+dataset=arithmetic", *FAKE, "agents.n=abc"], 2, ["agents.n=abc", "Integer"]


@case("agents_zero")
def _(tmp, tiny):
    return ["evaluate", "+dataset=arithmetic", *FAKE, "agents.n=0"], 2, ["agents.n must be in 1..256 (got 0)"]


@case("rounds_zero")
def _(tmp, tiny):
    return ["evaluate", "+dataset=arithmetic", *FAKE, "debate.rounds=0"], 2, ["debate.rounds"]


@case("test_size_zero")
def _(tmp, tiny):
    return (
        ["evaluate", "+dataset=arithmetic", *FAKE, "dataset.test_size=0"],
        2,
        ["dataset.test_size must be in 1..1,000,000"],
    )


@case("train_size_zero")
def _(tmp, tiny):
    return (
        ["iterate", "+dataset=arithmetic", *FAKE, "dataset.train_size=0"],
        2,
        ["dataset.train_size must be in 1..1,000,000"],
    )


@case("negative_test_size")
def _(tmp, tiny):
    return ["evaluate", "+dataset=arithmetic", *FAKE, "dataset.test_size=-4"], 2, ["dataset.test_size"]


@case("operands_out_of_range")
def _(tmp, tiny):
    return ["evaluate", "+dataset=arithmetic", *FAKE, "dataset.operands=9"], 2, ["dataset.operands"]


@case("top_p_zero")
def _(tmp, tiny):
    return ["evaluate", "+dataset=arithmetic", *FAKE, "generation.top_p=0"], 2, ["generation.top_p"]


@case("negative_temperature")
def _(tmp, tiny):
    return ["evaluate", "+dataset=arithmetic", *FAKE, "generation.temperature=-1"], 2, ["generation.temperature"]


@case("split_val")
def _(tmp, tiny):
    return ["debate", "+dataset=arithmetic", *FAKE, "debate.split=val"], 2, ["debate.split"]


@case("unknown_backend")
def _(tmp, tiny):
    return ["evaluate", "+dataset=arithmetic", "backend=nope"], 2, ["backend/nope"]


@case("evaluate_bad_method")
def _(tmp, tiny):
    return ["evaluate", "+dataset=arithmetic", *FAKE, "method=best"], 2, ["method must be all, base"]


@case("iterate_eval_method")
def _(tmp, tiny):
    return ["iterate", "+dataset=arithmetic", *FAKE, "method=debate"], 2, ["method=debate is evaluate's setting"]


@case("debate_with_method")
def _(tmp, tiny):
    return ["debate", "+dataset=arithmetic", *FAKE, "method=base"], 2, ["debate takes no method="]


# invalid train.* settings are refused before any debate runs (the root must hold no transcript)
@case("train_report_to")
def _(tmp, tiny):
    return ["iterate", "+dataset=arithmetic", *FAKE, "train.report_to=comet"], 2, ["train.report_to"]


@case("train_learning_rate")
def _(tmp, tiny):
    return ["iterate", "+dataset=arithmetic", *FAKE, "train.learning_rate=0"], 2, ["train.learning_rate"]


@case("train_lora_dropout")
def _(tmp, tiny):
    return ["iterate", "+dataset=arithmetic", *FAKE, "train.lora_dropout=1.5"], 2, ["train.lora_dropout"]


@case("train_init")
def _(tmp, tiny):
    return ["iterate", "+dataset=arithmetic", *FAKE, "train.init=last"], 2, ["train.init"]


@case("train_target_modules_empty")
def _(tmp, tiny):
    return ["iterate", "+dataset=arithmetic", *FAKE, "train.target_modules=[]"], 2, ["train.target_modules"]


@case("run_name_escapes_root")
def _(tmp, tiny):
    return ["evaluate", "+dataset=arithmetic", *FAKE, "run.name=a/../../escaped"], 2, ["run.name=a/../../escaped"]


@case("run_name_absolute")
def _(tmp, tiny):
    return ["evaluate", "+dataset=arithmetic", *FAKE, f"run.name={tmp}/abs"], 2, ["run.name="]


@case("unknown_command")
def _(tmp, tiny):
    return ["nonsense"], 2, ["unknown command 'nonsense'"]


@case("flow_on_gsm")
def _(tmp, tiny):
    return ["flow", "+dataset=gsm", "backend=fake"], 2, ["the flow command runs +dataset=musique"]


@case("debate_on_musique")
def _(tmp, tiny):
    rows = write_jsonl(tmp / "m.jsonl", [musique_row(i) for i in range(10)])
    return ["debate", "+dataset=musique", f"dataset.path={rows}", *FAKE], 2, ["+dataset=musique is for the flow"]


# --- models
@case("model_path_empty")
def _(tmp, tiny):
    return ["evaluate", "+dataset=arithmetic", *FAKE, "model=local", "model.path="], 2, ["model.path is empty"]


@case("model_local_without_path")
def _(tmp, tiny):
    return ["evaluate", "+dataset=arithmetic", *FAKE, "model=local"], 2, ["model.path"]


def model_copy(tmp: Path, tiny: Path, damage) -> Path:
    target = tmp / "model"
    shutil.copytree(tiny, target)
    damage(target / "model.safetensors")
    return target


def hf(tmp, tiny, model: Path):
    return ["evaluate", "+dataset=arithmetic", *SMALL_HF, "backend=hf", "model=local", f"model.path={model}"]


@case("model_folder_empty")
def _(tmp, tiny):
    (tmp / "empty").mkdir()
    return hf(tmp, tiny, tmp / "empty"), 2, [f"model.path={tmp / 'empty'}", "config.json"]


@case("model_path_is_a_file")
def _(tmp, tiny):
    (tmp / "weights.bin").write_bytes(b"x")
    return hf(tmp, tiny, tmp / "weights.bin"), 2, ["weights.bin", "is a file"]


@case("safetensors_truncated")
def _(tmp, tiny):
    model = model_copy(tmp, tiny, lambda p: os.truncate(p, 50_000))
    return hf(tmp, tiny, model), 2, [str(model), "damaged"]


@case("safetensors_garbage")
def _(tmp, tiny):
    model = model_copy(tmp, tiny, lambda p: p.write_bytes(os.urandom(4096)))
    return hf(tmp, tiny, model), 2, [str(model), "damaged"]


@case("safetensors_bad_header")
def _(tmp, tiny):
    def damage(path):
        data = path.read_bytes()
        size = struct.unpack("<Q", data[:8])[0]
        path.write_bytes(data[:8] + b"{not json" + b" " * (size - 9) + data[8 + size :])

    model = model_copy(tmp, tiny, damage)
    return hf(tmp, tiny, model), 2, [str(model), "damaged"]


# --- data files
@case("gsm_non_utf8")
def _(tmp, tiny):
    argv, path = gsm(tmp, b'{"question": "q", "answer": "#### 1"}\n{"question": "caf\xe9", "answer": "#### 2"}\n')
    return argv, 2, [f"{path}:2", "not UTF-8"]


@case("gsm_malformed_json")
def _(tmp, tiny):
    argv, path = gsm(tmp, [*gsm_rows(3), "{not json", *gsm_rows(2)])
    return argv, 2, [f"{path}:4", "malformed JSON"]


@case("gsm_question_is_a_number")
def _(tmp, tiny):
    argv, path = gsm(tmp, [*gsm_rows(5), {"question": 42, "answer": "#### 42"}])
    return argv, 2, [f"{path}:6", "`question` must be a string"]


@case("gsm_missing_answer")
def _(tmp, tiny):
    argv, path = gsm(tmp, [{"question": "q?"}, *gsm_rows(5)])
    return argv, 2, [f"{path}:1", "missing field answer"]


@case("gsm_answer_without_marker")
def _(tmp, tiny):
    argv, path = gsm(tmp, [{"question": "q?", "answer": "42"}, *gsm_rows(5)])
    return argv, 2, [f"{path}:1", "####"]


@case("gsm_row_is_a_list")
def _(tmp, tiny):
    argv, path = gsm(tmp, [*gsm_rows(2), "[1, 2]"])
    return argv, 2, [f"{path}:3", "expected a JSON object"]


@case("gsm_empty_file")
def _(tmp, tiny):
    argv, path = gsm(tmp, b"")
    return argv, 2, [str(path), "no records"]


@case("gsm_blank_lines_only")
def _(tmp, tiny):
    argv, path = gsm(tmp, b"\n \n\n")
    return argv, 2, [str(path), "no records"]


@case("dataset_path_missing")
def _(tmp, tiny):
    argv = ["evaluate", "+dataset=gsm", f"dataset.path={tmp / 'absent.jsonl'}", *FAKE]
    return argv, 2, [f"dataset.path={tmp / 'absent.jsonl'}", "does not exist"]


@case("dataset_folder_without_split")
def _(tmp, tiny):
    folder = tmp / "folder"
    folder.mkdir()
    return ["evaluate", "+dataset=gsm", f"dataset.path={folder}", *FAKE], 2, ["test.jsonl", str(folder)]


@case("math_problem_null")
def _(tmp, tiny):
    rows = [{"problem": f"P{i}", "answer": str(i)} for i in range(10)]
    write_jsonl(tmp / "math" / "train.jsonl", rows)
    path = write_jsonl(tmp / "math" / "test.jsonl", [*rows, {"problem": None, "answer": "1"}])
    return ["evaluate", "+dataset=math", f"dataset.path={tmp / 'math'}", *FAKE], 2, [f"{path}:11", "`problem`"]


def mmlu(tmp: Path, lines: list[str] | bytes) -> tuple[list[str], Path]:
    folder = tmp / "mmlu" / "test"
    folder.mkdir(parents=True)
    path = folder / "algebra_test.csv"
    header = "question,choice0,choice1,choice2,choice3,answer\n"
    good = [f"Q{i},a,b,c,d,{i % 4}" for i in range(20)]
    if isinstance(lines, bytes):
        path.write_bytes(header.encode() + "\n".join(good).encode() + b"\n" + lines)
    else:
        path.write_text(header + "\n".join(good + lines) + "\n")
    return ["evaluate", "+dataset=mmlu", f"dataset.path={tmp / 'mmlu'}", *FAKE], path


@case("mmlu_too_few_columns")
def _(tmp, tiny):
    argv, path = mmlu(tmp, ["Q,a,b"])
    return argv, 2, [f"{path}:22", "too few columns"]


@case("mmlu_too_many_columns")
def _(tmp, tiny):
    argv, path = mmlu(tmp, ["Q,a,b,c,d,1,extra"])
    return argv, 2, [f"{path}:22", "more columns"]


@case("mmlu_answer_out_of_range")
def _(tmp, tiny):
    argv, path = mmlu(tmp, ["Q,a,b,c,d,-1"])
    return argv, 2, [f"{path}:22", "answer must be an integer 0-3"]


@case("mmlu_non_utf8")
def _(tmp, tiny):
    argv, path = mmlu(tmp, b"Q\xff,a,b,c,d,1\n")
    return argv, 2, [f"{path}:22", "not UTF-8"]


@case("mmlu_header_only")
def _(tmp, tiny):
    folder = tmp / "mmlu" / "test"
    folder.mkdir(parents=True)
    (folder / "algebra_test.csv").write_text("question,choice0,choice1,choice2,choice3,answer\n")
    return ["evaluate", "+dataset=mmlu", f"dataset.path={tmp / 'mmlu'}", *FAKE], 2, ["no questions", "mmlu"]


def id_on_the_test_side(prefix: str) -> str:
    """An id the hash split of a single file puts on the test side (whose rows evaluation reads)."""
    from debate_ft.tasks.base import in_test_partition

    return next(f"{prefix}{i}" for i in range(1000) if in_test_partition(f"{prefix}{i}"))


def musique_rows(tmp: Path, rows: list[dict]) -> tuple[list[str], Path]:
    path = write_jsonl(tmp / "musique.jsonl", rows)
    argv = ["flow", "+dataset=musique", f"dataset.path={path}", "flow.train=false", *FAKE, "dataset.test_size=50"]
    return argv, path


def musique(tmp: Path, bad: dict) -> tuple[list[str], Path]:
    """Twelve good rows, then one test-split row with the fields of `bad` (line 13)."""
    return musique_rows(
        tmp, [musique_row(i) for i in range(12)] + [{**musique_row(99, id=id_on_the_test_side("bad")), **bad}]
    )


@case("musique_paragraphs_null")
def _(tmp, tiny):
    argv, path = musique(tmp, {"paragraphs": None})
    return argv, 2, [f"{path}:13", "`paragraphs` must be a non-empty list"]


@case("musique_paragraphs_empty")
def _(tmp, tiny):
    argv, path = musique(tmp, {"paragraphs": []})
    return argv, 2, [f"{path}:13", "`paragraphs` must be a non-empty list"]


@case("musique_paragraph_missing_field")
def _(tmp, tiny):
    argv, path = musique(tmp, {"paragraphs": [{"idx": 0, "title": "t"}]})
    return argv, 2, [f"{path}:13 paragraph 0", "paragraph_text"]


@case("musique_question_is_a_number")
def _(tmp, tiny):
    argv, path = musique(tmp, {"question": 7})
    return argv, 2, [f"{path}:13", "`question` must be a string"]


@case("musique_is_supporting_a_string")
def _(tmp, tiny):
    paragraphs = [{**paragraph, "is_supporting": "false"} for paragraph in musique_row(99)["paragraphs"]]
    argv, path = musique(tmp, {"paragraphs": paragraphs})
    return argv, 2, [f"{path}:13 paragraph 0", "`is_supporting` must be true or false", "'false'"]


@case("musique_answerable_a_string")
def _(tmp, tiny):
    argv, path = musique(tmp, {"answerable": "true"})
    return argv, 2, [f"{path}:13", "`answerable` must be true or false"]


@case("musique_question_empty")
def _(tmp, tiny):
    argv, path = musique(tmp, {"question": "  "})
    return argv, 2, [f"{path}:13", "`question` is empty"]


@case("musique_answer_empty")
def _(tmp, tiny):
    argv, path = musique(tmp, {"answer": ""})
    return argv, 2, [f"{path}:13", "`answer` is empty"]


@case("musique_duplicate_id")
def _(tmp, tiny):
    repeated = id_on_the_test_side("dup")
    argv, path = musique_rows(tmp, [musique_row(i, id=repeated if i in (3, 7) else f"q{i}") for i in range(12)])
    return argv, 2, [f"{path}:8", f"{path}:4", "ids must be unique"]


@case("gsm_lone_surrogate")
def _(tmp, tiny):
    argv, path = gsm(tmp, [*gsm_rows(2), '{"question": "caf\\ud800?", "answer": "#### 1"}'])
    return argv, 2, [f"{path}:3", "invalid Unicode"]


@case("gsm_question_empty")
def _(tmp, tiny):
    argv, path = gsm(tmp, [*gsm_rows(2), {"question": "", "answer": "#### 1"}])
    return argv, 2, [f"{path}:3", "`question` is empty"]


@case("mmlu_question_empty")
def _(tmp, tiny):
    argv, path = mmlu(tmp, [" ,a,b,c,d,1"])
    return argv, 2, [f"{path}:22", "`question` is empty"]


# --- report
@case("report_missing_folder")
def _(tmp, tiny):
    return ["report", str(tmp / "nowhere")], 2, [str(tmp / "nowhere"), "does not exist"]


@case("report_corrupt_metrics")
def _(tmp, tiny):
    (tmp / "runs" / "r").mkdir(parents=True)
    (tmp / "runs" / "r" / "metrics.csv").write_bytes(b'iteration,method\n0,"unterminated\n')
    return ["report", str(tmp / "runs")], 2, [str(tmp / "runs" / "r" / "metrics.csv"), "not a readable CSV"]


@case("report_binary_metrics")
def _(tmp, tiny):
    (tmp / "runs" / "r").mkdir(parents=True)
    (tmp / "runs" / "r" / "metrics.csv").write_bytes(b"\xff\xfe\x00\x01garbage")
    return ["report", str(tmp / "runs")], 2, ["metrics.csv", "not a readable CSV"]


@case("report_foreign_metrics")
def _(tmp, tiny):
    (tmp / "runs" / "r").mkdir(parents=True)
    (tmp / "runs" / "r" / "metrics.csv").write_text("a,b\n1,2\n")
    return ["report", str(tmp / "runs")], 2, ["metrics.csv", "not a metrics.csv table"]


@case("report_out_cannot_be_created")
def _(tmp, tiny):
    (tmp / "runs" / "r").mkdir(parents=True)
    (tmp / "runs" / "r" / "metrics.csv").write_text("iteration,method,n,accuracy,stderr\n0,debate,4,0.5,0.1\n")
    (tmp / "a_file").write_text("")
    return ["report", str(tmp / "runs"), "--out", str(tmp / "a_file" / "plots")], 2, ["--out", "a_file"]


@case("report_no_runs")
def _(tmp, tiny):
    (tmp / "runs").mkdir()
    return ["report", str(tmp / "runs")], 2, ["no metrics.csv under"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gets_one_clean_line(name, tmp_path, tiny_model_dir, capsys):
    argv, expected, needles = CASES[name](tmp_path, tiny_model_dir)
    if argv[0] not in ("report", "nonsense"):
        named = any(arg.startswith("run.name=") for arg in argv)
        argv = [*argv, f"run.root={tmp_path / 'root'}", *([] if named else ["run.name=r"])]
    before = written_results(tmp_path)
    code, output = run(argv, capsys)
    check_clean(code, output, expected, needles, tmp_path, before)
    assert not (tmp_path.parent / "escaped").exists()


# ---------------------------------------------------------------- run directories on resume


def evaluate_args(root: Path, *extra) -> list[str]:
    return ["evaluate", "+dataset=arithmetic", *FAKE, f"run.root={root}", "run.name=r", *extra]


def test_resume_with_other_settings(tmp_path, capsys):
    assert run(evaluate_args(tmp_path), capsys)[0] == 0
    code, output = run(evaluate_args(tmp_path, "agents.n=3"), capsys)
    assert code == 2 and "Traceback" not in output and "agents.n" in output


def test_resume_with_a_corrupt_config_yaml(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.yaml").write_text("agents: [unclosed\n  n: 3\n")
    code, output = run(evaluate_args(tmp_path), capsys)
    check_clean(code, output, 2, [str(tmp_path / "r" / "config.yaml"), "not a readable config"], tmp_path)


def test_resume_with_a_corrupt_middle_line_of_a_transcript(tmp_path, capsys):
    assert run(evaluate_args(tmp_path, "dataset.test_size=3", "debate.chunk_size=1"), capsys)[0] == 0
    transcript = tmp_path / "r" / "iter0" / "test_2x2.jsonl"
    lines = transcript.read_text().splitlines(keepends=True)
    transcript.write_text(lines[0] + "{broken\n" + "".join(lines[2:]))
    (tmp_path / "r" / "metrics.csv").unlink()
    code, output = run(evaluate_args(tmp_path, "dataset.test_size=3", "debate.chunk_size=1"), capsys)
    check_clean(code, output, 2, [f"{transcript}:2", "corrupt record"], tmp_path / "none", [])
    assert not (tmp_path / "r" / "metrics.csv").exists()


def test_resume_with_a_damaged_step_marker(tmp_path, capsys):
    assert run(evaluate_args(tmp_path), capsys)[0] == 0
    sizes = tmp_path / "r" / "iter1" / "data" / "sizes.json"
    sizes.parent.mkdir(parents=True)
    sizes.write_text('{"agents": [')
    code, output = run(["iterate", *evaluate_args(tmp_path, "diversity.enabled=false")[1:]], capsys)
    assert code == 2 and "Traceback" not in output and f"{sizes}: damaged" in output


def test_resume_on_changed_data_is_refused(tmp_path, capsys):
    path = write_jsonl(tmp_path / "gsm.jsonl", gsm_rows(12))
    args = ["evaluate", "+dataset=gsm", f"dataset.path={path}", *FAKE, f"run.root={tmp_path}", "run.name=r"]
    assert run(args, capsys)[0] == 0
    metrics = (tmp_path / "r" / "metrics.csv").read_bytes()
    rows = gsm_rows(12)
    rows = [{**row, "question": row["question"].replace("+", "plus")} for row in rows]  # same lines, new text
    write_jsonl(path, rows)
    code, output = run(args, capsys)
    assert code == 2 and "Traceback" not in output
    assert "questions differ from those this run started with" in output and str(tmp_path / "r") in output
    assert (tmp_path / "r" / "metrics.csv").read_bytes() == metrics  # the old results are left alone


def test_transcript_of_other_questions_is_refused_without_a_fingerprint(tmp_path, capsys):
    path = write_jsonl(tmp_path / "gsm.jsonl", gsm_rows(12))
    args = ["evaluate", "+dataset=gsm", f"dataset.path={path}", *FAKE, f"run.root={tmp_path}", "run.name=r"]
    assert run(args, capsys)[0] == 0
    (tmp_path / "r" / "data_fingerprint.json").unlink()  # a run from before fingerprints were recorded
    write_jsonl(path, [{**row, "answer": row["answer"] + "0"} for row in gsm_rows(12)])
    code, output = run(args, capsys)
    assert code == 2 and "Traceback" not in output and "debated with another text or gold answer" in output


def test_report_does_not_expand_interpolations_of_a_run_config(tmp_path, capsys, monkeypatch):
    assert run(evaluate_args(tmp_path), capsys)[0] == 0
    monkeypatch.setenv("DEBATE_FT_SECRET", "hunter2")
    config = tmp_path / "r" / "config.yaml"
    config.write_text(config.read_text().replace("name: smollm2", "name: ${oc.env:DEBATE_FT_SECRET}"))
    code, output = run(["report", str(tmp_path)], capsys)
    assert code == 0 and "hunter2" not in output and "Traceback" not in output
    from debate_ft.report import run_settings

    assert run_settings(tmp_path / "r")["model"] == "${oc.env:DEBATE_FT_SECRET}"


def test_report_skips_the_leftovers_of_an_interrupted_write(tmp_path, capsys):
    assert run(evaluate_args(tmp_path), capsys)[0] == 0
    leftover = tmp_path / "r" / ".metrics.csv.tmp-abc123"
    leftover.mkdir()
    (leftover / "metrics.csv").write_text("")  # what a kill inside upsert_rows leaves
    code, output = run(["report", str(tmp_path)], capsys)
    assert code == 0 and "Traceback" not in output and "debate_ft report" in output


# ---------------------------------------------------------------- the environment and the handler


def test_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    import debate_ft.debate

    def full(path, records):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(debate_ft.debate, "append_records", full)
    code, output = run(evaluate_args(tmp_path), capsys)
    check_clean(code, output, 2, ["No space left on device", "test_2x2.jsonl", "resume"], tmp_path)


def test_read_only_run_directory_is_one_line(tmp_path, capsys, monkeypatch):
    import debate_ft.runs

    real = debate_ft.runs.tempfile.mkdtemp

    def read_only(*args, dir=None, **kwargs):  # what a read-only folder does, also when running as root
        raise PermissionError(errno.EACCES, "Permission denied", str(dir))

    monkeypatch.setattr(debate_ft.runs.tempfile, "mkdtemp", read_only)
    code, output = run(evaluate_args(tmp_path), capsys)
    monkeypatch.setattr(debate_ft.runs.tempfile, "mkdtemp", real)
    check_clean(code, output, 2, ["cannot write", str(tmp_path / "r"), "Permission denied"], tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_really_read_only_run_root(tmp_path, capsys):
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    try:
        code, output = run(evaluate_args(tmp_path / "ro"), capsys)
    finally:
        os.chmod(tmp_path / "ro", 0o700)
    assert code == 2 and "Traceback" not in output and "Permission denied" in output


def crash(*args, **kwargs):
    raise RuntimeError("a bug deep inside\nsecond line")


def test_an_unexpected_exception_is_one_line_and_a_log(tmp_path, capsys, monkeypatch):
    import debate_ft.debate

    monkeypatch.setattr(debate_ft.debate.Debate, "run", crash)
    code, output = run(evaluate_args(tmp_path), capsys)
    log = tmp_path / "r" / cli.ERROR_LOG
    check_clean(code, output, 1, ["unexpected RuntimeError: a bug deep inside", str(log), "--debug"], tmp_path)
    assert "Traceback" in log.read_text() and "in crash" in log.read_text()


def test_debug_prints_the_traceback(tmp_path, capsys, monkeypatch):
    import debate_ft.debate

    monkeypatch.setattr(debate_ft.debate.Debate, "run", crash)
    code, output = run([*evaluate_args(tmp_path), "--debug"], capsys)
    assert code == 1 and "Traceback" in output and "in crash" in output
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    code, output = run(evaluate_args(tmp_path), capsys)
    assert code == 1 and "Traceback" in output


def test_ctrl_c_in_process_exits_130_without_traceback(tmp_path, capsys, monkeypatch):
    import debate_ft.debate

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(debate_ft.debate.Debate, "run", interrupted)
    code, output = run(evaluate_args(tmp_path), capsys)
    assert code == 130 and "Traceback" not in output and "interrupted" in output


# ---------------------------------------------------------------- damaged run-directory files (one line, exit 2)

ITERATE = ["iterate", "+dataset=arithmetic", *FAKE, "iterations=1", "diversity.enabled=false"]
TEST_TRANSCRIPT = "iter0/test_2x2.jsonl"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished one-iteration run (transcripts, datasets, adapters, metrics) that each case copies and damages."""
    root = tmp_path_factory.mktemp("finished")
    assert cli.main([*ITERATE, f"run.root={root}", "run.name=r"]) == 0
    return root / "r"


def edit_record(change):
    """Damage the first record of the test transcript, and drop metrics.csv so the resume reads it again."""

    def damage(run: Path):
        path = run / TEST_TRANSCRIPT
        records = [json.loads(line) for line in path.read_text().splitlines()]
        change(records[0])
        path.write_text("".join(json.dumps(record) + "\n" for record in records))
        (run / "metrics.csv").unlink()

    return damage


def replace_with(relative: str, kind: str, rescore: bool = False):
    """Put a folder, a dangling link or a file where `relative` is; `rescore` drops metrics.csv so a resume
    reads the transcripts again."""

    def damage(run: Path):
        path = run / relative
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        if kind == "folder":
            path.mkdir()
        elif kind == "link":
            path.symlink_to(run / "gone")
        else:
            path.write_text("x")
        if rescore:
            (run / "metrics.csv").unlink()

    return damage


def overwrite(relative: str, text: str):
    return lambda run: (run / relative).write_text(text)


def tear(relative: str, characters: int):
    def damage(run: Path):
        text = (run / relative).read_text()
        (run / relative).write_text(text[:-characters])

    return damage


DAMAGE = {  # name: (damage, command, needles)
    "turns_empty": (edit_record(lambda r: r.update(turns=[])), "iterate", ["record 1", "`turns` is empty"]),
    "turns_a_number": (edit_record(lambda r: r.update(turns=5)), "iterate", [TEST_TRANSCRIPT, "`turns` holds int"]),
    "round_a_string": (edit_record(lambda r: r["turns"][0].update(round="1")), "iterate", ["`round` holds str"]),
    "response_a_number": (edit_record(lambda r: r["turns"][0].update(response=7)), "iterate", ["`response` holds int"]),
    "answer_a_list": (edit_record(lambda r: r["turns"][0].update(answer=[1])), "iterate", ["`answer` holds list"]),
    "correct_a_string": (edit_record(lambda r: r.update(correct="yes")), "iterate", ["`correct` holds str"]),
    "id_a_number": (edit_record(lambda r: r.update(id=5)), "iterate", ["`id` holds int"]),
    "unknown_turn_key": (edit_record(lambda r: r["turns"][0].update(bogus=1)), "iterate", ["unknown key `bogus`"]),
    "agent_outside_the_debate": (
        edit_record(lambda r: r["turns"][0].update(agent=99)), "iterate", [TEST_TRANSCRIPT, "2-agent 2-round debate"],
    ),
    "transcript_dangling_link": (replace_with(TEST_TRANSCRIPT, "link", rescore=True), "iterate", ["does not exist"]),
    "transcript_a_folder": (replace_with(TEST_TRANSCRIPT, "folder", rescore=True), "iterate", ["is a folder where"]),
    "train_transcript_a_folder": (
        replace_with("iter1/train_2x2.jsonl", "folder"), "report", ["iter1/train_2x2.jsonl is a folder"],
    ),
    "sizes_wrong_shape": (overwrite("iter1/data/sizes.json", '{"agents": 5}'), "iterate", ["damaged (`agents`"]),
    "sizes_a_folder": (replace_with("iter1/data/sizes.json", "folder"), "iterate", ["sizes.json is a folder"]),
    "sizes_dangling_link": (replace_with("iter1/data/sizes.json", "link"), "report", ["sizes.json is a link"]),
    "fingerprint_a_list": (overwrite("data_fingerprint.json", "[1]"), "iterate", ["data_fingerprint.json: damaged"]),
    "fingerprint_a_folder": (replace_with("data_fingerprint.json", "folder"), "iterate", ["json is a folder"]),
    "config_dangling_link": (replace_with("config.yaml", "link"), "report", ["config.yaml is a link"]),
    "metrics_a_folder": (replace_with("metrics.csv", "folder"), "report", ["metrics.csv is a folder where a file"]),
    "adapters_a_file": (replace_with("iter1/adapters", "file"), "iterate", ["iter1/adapters is a file where a folder"]),
    "iteration_a_file": (replace_with("iter1", "file"), "iterate", ["iter1 is a file where a folder"]),
    "metrics_torn_row": (tear("metrics.csv", 60), "report", ["metrics.csv:7: a torn row"]),
    "compute_torn_row": (tear("compute.csv", 3), "report", ["compute.csv:", "a torn row"]),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_a_damaged_run_directory_file_is_one_line(name, finished_run, tmp_path, capsys):
    damage, command, needles = DAMAGE[name]
    run_dir = tmp_path / "r"
    shutil.copytree(finished_run, run_dir, symlinks=True)
    damage(run_dir)
    argv = ["report", str(run_dir)] if command == "report" else [*ITERATE, f"run.root={tmp_path}", "run.name=r"]
    code, output = run(argv, capsys)
    assert "Traceback" not in output and code == 2, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(run_dir) in errors[0], output
    for needle in [*needles, *([TEST_TRANSCRIPT] if name.startswith("transcript") else [])]:
        assert needle in errors[0], f"{needle!r} not in {errors[0]!r}"
    assert not (tmp_path / "gone").exists() and not (run_dir / "gone").exists()  # nothing written through a link


def test_a_run_that_failed_before_any_result_takes_corrected_settings(tmp_path, capsys):
    args = ["evaluate", "+dataset=gsm", *FAKE, f"run.root={tmp_path}", "run.name=r"]
    code, output = run([*args, f"dataset.path={tmp_path / 'typo.jsonl'}"], capsys)
    assert code == 2 and "does not exist" in output
    path = write_jsonl(tmp_path / "gsm.jsonl", gsm_rows(12))
    assert run([*args, f"dataset.path={path}"], capsys)[0] == 0
    code, output = run([*args, f"dataset.path={tmp_path / 'typo.jsonl'}"], capsys)  # now it holds results
    assert code == 2 and "holds a run with other settings (dataset.path)" in output


def test_a_full_disk_while_saving_an_adapter_is_one_line(tmp_path, capsys, monkeypatch):
    import peft.peft_model
    from safetensors import SafetensorError

    def full(*args, **kwargs):  # what safetensors raises when the disk fills (its Rust error, not an OSError)
        raise SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
        )

    monkeypatch.setattr(peft.peft_model, "safe_save_file", full)
    code, output = run([*ITERATE, f"run.root={tmp_path}", "run.name=r"], capsys)
    check_clean(code, output, 2, ["cannot write", "adapters", "No space left on device", "resume"], tmp_path / "x")
    assert not list((tmp_path / "r").rglob("adapter_model.safetensors"))
    assert not [path for path in (tmp_path / "r").rglob("*") if ".tmp-" in path.name]


def test_read_json_checks_each_field_and_its_type(tmp_path):
    from debate_ft.errors import DataError
    from debate_ft.flow.run import PROGRESS_FIELDS, Progress
    from debate_ft.runs import read_json

    path = tmp_path / "state.json"
    path.write_text(json.dumps({"episode": 3, "best": None, "flag": True}))
    assert read_json(path, {"episode": int, "best": (float, type(None))})["episode"] == 3
    for fields, needle in [
        ({"episode": float}, None),
        ({"flag": int}, "`flag` holds bool"),
        ({"x": int}, "`x` holds nothing"),
    ]:
        if needle is None:
            read_json(path, fields)  # a whole number is a float too
            continue
        with pytest.raises(DataError, match=needle):
            read_json(path, fields)
    from dataclasses import fields as dataclass_fields

    assert set(PROGRESS_FIELDS) == {field.name for field in dataclass_fields(Progress)}
