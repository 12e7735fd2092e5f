"""Run the CLI with one signal planted at an exact point of its file writes (tests only).

    python tests/kill_points.py OP:PATTERN:NTH:WHEN [command and overrides ...]

or, without paying for the imports again, `run(point, argv, log)` in a process forked from a server that
imported the project once (test_kill_anywhere.py). OP is `replace` (os.replace, matched on its destination:
every atomic write ends with it) or `append` (runs.append_records, matched on its file). PATTERN is an
fnmatch pattern on the full path; NTH counts the matching calls of this process (1 = the first). WHEN is
`before` (the temporary file or folder is complete but not renamed in), `after` (the rename or append is
done, nothing after it), `torn` (append: half of the first record written) or `sigint` (a real Ctrl-C at
that point instead of a SIGKILL). The process signals itself, so the point is exact; a kill that never
fires lets the command finish (exit 0), which the tests treat as a failure.
"""

from __future__ import annotations

import fnmatch
import json
import os
import signal
import sys
from pathlib import Path


def plant(point: str) -> None:
    op, pattern, nth, when = point.split(":")
    seen = 0

    def matches(path) -> bool:
        nonlocal seen
        if fnmatch.fnmatch(str(path), pattern):
            seen += 1
            return seen == int(nth)
        return False

    def fire() -> None:
        os.kill(os.getpid(), signal.SIGINT if when == "sigint" else signal.SIGKILL)

    if when == "sigint":
        # as from a terminal: a process started by a non-interactive shell's background job inherits SIGINT
        # ignored (the whole test run then does), and the Ctrl-C would be swallowed
        signal.signal(signal.SIGINT, signal.default_int_handler)

    import debate_ft.runs as runs

    if op == "replace":
        real_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            hit = matches(dst)
            if hit and when in ("before", "sigint"):
                fire()
            real_replace(src, dst, *args, **kwargs)
            if hit and when == "after":
                fire()

        os.replace = replace
    elif op == "append":
        real_append = runs.append_records

        def append_records(path, records):
            records = list(records)
            if not matches(path):
                return real_append(path, records)
            if when == "torn":
                line = json.dumps(records[0], ensure_ascii=False)
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                with open(path, "a", encoding="utf-8") as handle:
                    handle.write(line[: len(line) // 2])
                fire()
            if when == "sigint":
                fire()
            real_append(path, records)
            fire()

        # modules that imported it by name hold their own reference
        for module in [runs, *(sys.modules.get(n) for n in ("debate_ft.debate", "debate_ft.flow.run"))]:
            if module is not None:
                module.append_records = append_records
    else:
        raise SystemExit(f"unknown op {op}")


def run(point: str | None, argv: list[str], log: str) -> None:
    """A forked child's whole life: output to `log`, the signal planted, the command run, its exit code."""
    descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    if point:
        plant(point)
    from debate_ft.cli import main

    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    plant(sys.argv[1])
    from debate_ft.cli import main

    sys.exit(main(sys.argv[2:]))
