"""Run-directory I/O: strict readers for inputs, crash-safe writers for outputs.

Whole files are written to a temporary sibling and renamed, so a kill leaves the old file or the new one,
never half of one. Transcripts are appended a record at a time and fsynced; a torn final line (killed
mid-write) is cut off on the next read instead of being read as a record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from debate_ft.errors import DataError

log = logging.getLogger(__name__)


def read_jsonl(path: Path | str) -> list[dict]:
    """Every record of an input JSONL file; a malformed line is an error naming file and line."""
    path = Path(path)
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{number}: malformed JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            records.append(record)
    return records


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
    lines = complete.decode("utf-8").splitlines() if complete else []
    return [json.loads(line) for line in lines if line.strip()]


def append_records(path: Path, records: Iterable[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` (file or directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name
    try:
        yield temporary
        if path.is_dir():
            shutil.rmtree(path)
        os.replace(temporary, path)
    finally:
        shutil.rmtree(temporary.parent, ignore_errors=True)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_records(path: Path, records: Iterable[dict]) -> None:
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def upsert_rows(path: Path, rows: list[dict], key: list[str]) -> pd.DataFrame:
    """Add rows to a CSV table, replacing earlier rows with the same key (a re-run never duplicates)."""
    new = pd.DataFrame(rows)
    if path.exists():
        old = pd.read_csv(path)
        old_keys = old[key].astype(str).agg("|".join, axis=1) if set(key) <= set(old.columns) else None
        if old_keys is not None:
            new_keys = set(new[key].astype(str).agg("|".join, axis=1))
            old = old[~old_keys.isin(new_keys)]
        new = pd.concat([old, new], ignore_index=True)
    new = new.convert_dtypes()  # integer columns stay integers beside missing values
    with atomic_path(path) as temporary:
        new.to_csv(temporary, index=False)
    return new


# Settings that may change between invocations on one run directory without changing any result.
VOLATILE = (
    "method",
    "iterations",
    "run",
    "backend.threads",
    "backend.device",
    "backend.score_memory_mib",
    "backend.base_url",  # the openai backend's connection settings: the same served model anywhere
    "backend.api_key_env",
    "backend.concurrency",
    "backend.max_retries",
    "backend.timeout_s",
    "debate.split",
    "flow.train",
    "flow.eval_before",
    "diversity.enabled",  # only adds diversity.csv; every other output is the same with it on or off
)


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _fingerprint(settings: dict) -> dict:
    return {k: v for k, v in _flatten(settings).items() if not any(k == p or k.startswith(p + ".") for p in VOLATILE)}


def prepare_run_dir(run_dir: Path, settings: dict) -> None:
    """Save the resolved config; refuse to resume a run directory made with different settings."""
    from omegaconf import OmegaConf

    from debate_ft.errors import ConfigError

    saved_path = run_dir / "config.yaml"
    if saved_path.exists():
        saved = _fingerprint(OmegaConf.to_container(OmegaConf.load(saved_path)))
        current = _fingerprint(settings)
        changed = sorted(k for k in saved.keys() | current.keys() if saved.get(k) != current.get(k))
        if changed:
            raise ConfigError(
                f"{run_dir} holds a run with other settings ({', '.join(changed[:6])}); "
                "resume it with the same settings or pick a new run.name"
            )
    write_text(saved_path, OmegaConf.to_yaml(OmegaConf.create(settings)))
