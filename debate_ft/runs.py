"""Run-directory I/O: strict readers for inputs, crash-safe writers for outputs.

Whole files and folders are written to a temporary sibling `.<name>.tmp-XXXX/<name>` and renamed into place,
so a kill leaves the old version or the new one, never half of one. A folder cannot be replaced by one rename:
the old one is first renamed aside to `.<name>.old-XXXX`, the new one renamed in, then the old one deleted.
`recover` (run on every run directory before a command works in it) puts an aside folder back when a kill
struck between those two renames, and deletes the leftovers of killed writes. Transcripts are appended a
record at a time and fsynced; a torn final line (killed mid-write) is cut off on the next read instead of
being read as a record, while a corrupt line before the last is an error naming file and line.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from debate_ft.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def read_jsonl(path: Path | str) -> list[dict]:
    """Every record of an input JSONL file; a malformed line is an error naming file and line."""
    path = Path(path)
    records = []
    for number, line in text_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{number}: malformed JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        if _SURROGATE_ESCAPE.search(line) and not encodable(record):
            raise DataError(f"{path}:{number}: invalid Unicode (an unpaired surrogate escape such as \\ud800)")
        records.append(record)
    if not records:
        raise DataError(f"{path}: the file holds no records")
    return records


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")  # \ud800-\udfff: valid only in pairs


def encodable(record: dict) -> bool:
    """Whether a record's text is valid Unicode (JSON lets an escape name half of a surrogate pair)."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def text_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of a UTF-8 text file; bytes that are not UTF-8 are an error naming the line."""
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise DataError(f"{path} is a directory, not a data file") from None
    lines = data.split(b"\n")
    numbered = []
    for number, raw in enumerate(lines, start=1):
        try:
            numbered.append((number, raw.decode("utf-8-sig" if number == 1 else "utf-8")))
        except UnicodeDecodeError as error:
            byte = raw[error.start]
            raise DataError(f"{path}:{number}: not UTF-8 text (byte {byte:#04x} at column {error.start + 1})") from None
    if numbered and not numbered[-1][1]:
        numbered.pop()  # the empty piece after a final newline
    return numbered


def read_json(
    path: Path,
    fields: dict[str, type | tuple[type, ...]] | None = None,
    remedy: str = "delete its folder to redo that step",
) -> dict:
    """A JSON object this project wrote (sizes.json, a checkpoint's state.json) holding `fields` (name: type);
    damage, a missing field or one of another type is one line naming the file and the `remedy`."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path} is missing; {remedy}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        raise DataError(f"{path}: damaged (not a JSON object); {remedy}")
    problem = type_problem(value, fields or {})
    if problem is not None:
        raise DataError(f"{path}: damaged ({problem}); {remedy}")
    return value


def type_problem(data: dict, types: dict, optional: tuple[str, ...] = (), closed: bool = False) -> str | None:
    """What is wrong with `data` against `types` (key: type), or None: the first key that is missing (unless
    `optional`), of another type, or (`closed`) not among `types`."""
    if closed:
        for key in data.keys() - types.keys():
            return f"unknown key `{key}`"
    for key, kind in types.items():
        if key not in data and key in optional:
            continue
        if key not in data or not of_type(data[key], kind):
            return f"`{key}` holds {type(data[key]).__name__ if key in data else 'nothing'}"
    return None


def of_type(value, kind: type | tuple[type, ...]) -> bool:
    """isinstance, except that a JSON true/false is not a number and a whole number is a float too."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool):
        return bool in kinds
    return isinstance(value, kinds) or (float in kinds and isinstance(value, int))


def text_field(row: dict, name: str, where: str) -> str:
    """A field that must hold text (a question, a problem): a number or null there is a data error."""
    value = row.get(name)
    if not isinstance(value, str):
        raise DataError(f"{where}: `{name}` must be a string (got {type(value).__name__}: {str(value)[:40]!r})")
    if not value.strip():
        raise DataError(f"{where}: `{name}` is empty")
    return value


def require(record: dict, fields: Iterable[str], where: str) -> None:
    missing = [name for name in fields if name not in record]
    if missing:
        raise DataError(f"{where}: missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")


def read_records(path: Path) -> list[dict]:
    """Records of an output JSONL this project appended to; repairs a torn last line left by a kill."""
    if not path.exists():
        return []
    data = path.read_bytes()
    complete, _, torn = data.rpartition(b"\n")
    if torn.strip():
        log.warning("%s: dropping an incomplete last line (interrupted write)", path)
        with path.open("r+b") as handle:
            handle.truncate(len(complete) + 1 if complete else 0)
    records = []
    for number, line in enumerate(complete.split(b"\n") if complete else [], start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            record = None
        if not isinstance(record, dict):
            raise DataError(
                f"{path}:{number}: corrupt record in a file this run wrote; delete {path.name} to redo its step, "
                "or restore the line"
            )
        records.append(record)
    return records


def append_records(path: Path, records: Iterable[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-[A-Za-z0-9_]+$")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` (file or directory).

    A file is replaced by one atomic rename. A folder is renamed aside first, so at every instant either the
    old or the new folder is complete on disk: under `path`, or (killed between the two renames) under its
    aside name, which `recover` renames back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    restore_aside(path)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", suffix="", dir=path.parent)) / path.name
    try:
        yield temporary
        if path.is_dir() and not path.is_symlink():
            aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, aside)  # aside is an empty folder: rename replaces it
            os.replace(temporary, path)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(temporary, path)
    except Exception as error:
        cause = write_error(error, path)
        if cause is None:
            raise
        raise cause from error
    finally:
        shutil.rmtree(temporary.parent, ignore_errors=True)


def write_error(error: Exception, path: Path) -> OSError | None:
    """safetensors reports a failed write (a full disk) as SafetensorError('... IoError(Os { code: 28, ...')
    instead of OSError: recover the errno, so the CLI says which path and why in one line."""
    match = re.search(r"\bOs \{ code: (\d+)", str(error)) if type(error).__name__ == "SafetensorError" else None
    if match is None:
        return None
    code = int(match[1])
    return OSError(code, os.strerror(code), str(path))


def restore_aside(path: Path) -> None:
    """If a kill left `path` missing while its old version waits under an aside name, put it back."""
    if path.exists() or not path.parent.is_dir():
        return
    for aside in sorted(path.parent.glob(f".{glob_escape(path.name)}.old-*")):
        match = _LEFTOVER.match(aside.name)
        if match and match["name"] == path.name and match["kind"] == "old" and any(aside.iterdir()):
            os.replace(aside, path)
            log.warning("%s: restored the previous version (a write of it was interrupted)", path)
            return


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


LOCK = ".lock"  # in a run directory: held (flock) by the process running a command on it; names that process


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run directory for this process: a second command on the same directory is refused in one line
    naming the holder, instead of both appending to one transcript or deleting each other's staging folders. An
    OS lock: the kernel releases it when its holder dies, however it dies."""
    import fcntl
    import sys

    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ConfigError(
                f"{run_dir} is in use by {holder}; wait for it to finish (or stop it) before running another "
                "command on this run directory, or pick a new run.name"
            ) from None
        handle.truncate(0)
        handle.write(f"process {os.getpid()} ({' '.join(sys.argv)})"[:500])
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)  # the lock itself goes with the handle


def recover(root: Path) -> None:
    """Undo what killed writes left under `root`: put aside folders back where their new version never
    arrived, and delete temporary and aside leftovers, so no later reader sees them."""
    if not root.is_dir():
        return
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        for name in sorted(subfolders + files):
            refuse_dangling(here / name)
            match = _LEFTOVER.match(name)
            if match is None:
                continue
            leftover, target = here / name, here / match["name"]
            if match["kind"] == "old" and not target.exists() and leftover.is_dir() and any(leftover.iterdir()):
                os.replace(leftover, target)
                log.warning("%s: restored the previous version (a write of it was interrupted)", target)
            elif leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
        subfolders[:] = [name for name in subfolders if (here / name).is_dir() and not _LEFTOVER.match(name)]


def check_links(root: Path) -> None:
    """Refuse a run directory holding a link whose target is gone (`recover` checks as it walks)."""
    for folder, subfolders, files in os.walk(root):
        for name in sorted(subfolders + files):
            refuse_dangling(Path(folder) / name)


def refuse_dangling(path: Path) -> None:
    """A link whose target is gone: reading it as absent would redo a finished step, and writing through it
    would create a file outside the run directory."""
    if path.is_symlink() and not path.exists():
        raise DataError(f"{path} is a link to {os.readlink(path)}, which does not exist; restore or delete it")


def is_leftover(path: Path, root: Path) -> bool:
    """Whether `path` lies inside the temporary or aside folder of a write (never a result to read)."""
    return any(_LEFTOVER.match(part) for part in path.relative_to(root).parts)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_records(path: Path, records: Iterable[dict]) -> None:
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def upsert_rows(path: Path, rows: list[dict], key: list[str]) -> pd.DataFrame:
    """Add rows to a CSV table, replacing earlier rows with the same key (a re-run never duplicates)."""
    new = pd.DataFrame(rows)
    if path.exists():
        old = read_csv(path)
        old_keys = old[key].astype(str).agg("|".join, axis=1) if set(key) <= set(old.columns) else None
        if old_keys is not None:
            new_keys = set(new[key].astype(str).agg("|".join, axis=1))
            old = old[~old_keys.isin(new_keys)]
        new = pd.concat([old, new], ignore_index=True)
    new = new.convert_dtypes()  # integer columns stay integers beside missing values
    with atomic_path(path) as temporary:
        new.to_csv(temporary, index=False)
    return new


def read_csv(path: Path, **kwargs) -> pd.DataFrame:
    """A CSV table this project wrote; an unreadable one, or a row with fewer or more fields than the header
    (torn by an edit or a copy; pandas would fill it with NaN), is an error naming the file and line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        reader = csv.reader(io.StringIO(text))
        width = len(next(reader, []))
        for row in reader:
            if row and len(row) != width:
                raise DataError(
                    f"{path}:{reader.line_num}: a torn row ({len(row)} fields, the header has {width}); "
                    "delete that line (or the file, to redo its step)"
                )
        return pd.read_csv(io.StringIO(text), **kwargs)
    except (csv.Error, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as error:
        reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
        raise DataError(f"{path}: not a readable CSV table ({reason})") from None


def fingerprint(items: Iterable) -> str:
    digest = hashlib.sha256()
    for item in items:
        digest.update(repr(item).encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


DATA_FILE = "data_fingerprint.json"


def check_data(run_dir: Path, name: str, questions: Iterable) -> None:
    """Record a fingerprint of the questions a run uses under `name` (e.g. 'gsm test'); refuse, in one line,
    to go on when the same run directory later sees different questions (its data file changed)."""
    current = fingerprint((q.id, q.text, q.gold, sorted(q.meta.items())) for q in questions)
    path = run_dir / DATA_FILE
    saved = read_json(path, remedy="delete it to record the data's fingerprint again") if path.exists() else {}
    if not all(isinstance(value, str) for value in saved.values()):
        raise DataError(
            f"{path}: damaged (a fingerprint is not text); delete it to record the data's fingerprint again"
        )
    if saved.get(name) == current:
        return
    if name in saved:
        raise DataError(
            f"{run_dir}: the {name} questions differ from those this run started with (the data changed); "
            "restore the data or pick a new run.name"
        )
    write_text(path, json.dumps({**saved, name: current}, indent=1, sort_keys=True) + "\n")
