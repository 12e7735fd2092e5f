"""`python -m debate_ft <command> [hydra overrides]`: the subcommands and the one top-level error handler.

Every way a command can end is decided here, once: the project's own errors (bad input, config or
environment) print one line and exit 2; a full disk or a read-only folder prints one line naming the path and
exits 2; Ctrl-C exits 130; any other exception is a bug: one line naming it and a log file holding the
traceback, exit 1. `--debug` (anywhere on the command line) or DEBATE_FT_DEBUG=1 also prints the traceback.
"""

from __future__ import annotations

import datetime
import errno
import os
import re
import sys
import traceback
from pathlib import Path

from debate_ft.config import CONF_DIR
from debate_ft.errors import ERROR_LOG, ConfigError, DebateFTError
from debate_ft.methods import FINE_TUNINGS, SCORINGS

DEBUG_ENV = "DEBATE_FT_DEBUG"
NAME_BYTES = 255  # the longest file or folder name Linux file systems take
USAGE = f"""usage: python -m debate_ft <command> [key=value ...] [--debug]

commands (Hydra overrides follow, e.g. +dataset=gsm agents.n=3 debate.rounds=2):
  debate     debate one split (debate.split=test|train) and write its transcript
  evaluate   debate the test split; score base, majority and debate (method={"|".join(SCORINGS)})
  iterate    K iterations of debate -> labels -> per-agent LoRA fine-tuning -> evaluation
             (ft_method={"|".join(FINE_TUNINGS)})
  flow       +dataset=musique: train the QA flow online (one-step deviations + weighted DPO), then
             evaluate it; flow.train=false evaluates the run's saved flow
  report     python -m debate_ft report RUN_DIR [RUN_DIR ...]: one table over runs
  serve      python -m debate_ft serve RUN_DIR [--port 8000]: an OpenAI-compatible server of a run's society
  vllm-command [model=... backend.*=...]: the `vllm serve` line that serves backend=openai runs of
             these settings (adapters loaded at run time; README, Scale)

add -m for a Hydra multirun sweep (e.g. agents.n=1,3,5); --help after a command lists every setting with its
default, choices and help, and the config the command line composes.
--debug (or DEBATE_FT_DEBUG=1) prints the traceback of an unexpected error."""

# errors of the machine, not of the program: one line naming the path
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}
# a file where a folder belongs or the reverse (a damaged run directory): one line naming the one in the way
IN_THE_WAY_ERRNOS = {errno.EISDIR, errno.ENOTDIR, errno.EEXIST}


class _State:
    run_dir: Path | None = None  # the run directory of the command in progress, once Hydra made it
    in_task: bool = False  # whether Hydra got as far as calling the command (else: a composition error)


class _Abort(BaseException):
    """Carries a command's exception through Hydra, which would log it as a failed job first."""


def _commands() -> dict:
    from debate_ft import commands

    return {
        "debate": commands.debate,
        "evaluate": commands.evaluate,
        "iterate": commands.iterate,
        "flow": commands.flow,
    }


def _hydra_run(command: str, argv: list[str]) -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig

    from debate_ft.commands import check_settings
    from debate_ft.config import load, to_dict
    from debate_ft.run_config import prepare_run_dir
    from debate_ft.runs import run_lock

    def task(cfg) -> None:
        _State.in_task = True
        _State.run_dir = Path(HydraConfig.get().runtime.output_dir)
        try:
            config = load(cfg)
            check_settings(command, config)
            with run_lock(_State.run_dir):
                prepare_run_dir(_State.run_dir, to_dict(config))
                _commands()[command](config, _State.run_dir)
        except Exception as error:
            raise _Abort() from error

    check_run_name(argv)
    saved_argv, saved_full_error = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = [f"python -m debate_ft {command}", *argv]
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises, and main() below reports, once, its own way
    try:
        hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")(task)()
    except _Abort as abort:
        raise abort.__cause__ from None
    except Exception as error:
        from_hydra = type(error).__module__.startswith(("hydra.", "omegaconf."))
        if _State.in_task or (isinstance(error, OSError) and not from_hydra):  # a full disk, a closed pipe
            raise
        raise ConfigError(composition_message(error, argv)) from error
    finally:
        sys.argv = saved_argv
        if saved_full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_full_error


def check_run_name(argv: list[str]) -> None:
    """run.name must stay inside run.root: refuse it before Hydra creates the run directory."""
    for arg in argv:
        key, _, value = arg.lstrip("+~").partition("=")
        if key != "run.name":
            continue
        for name in re.split(r"[,\s]+", value.strip("'\"")):
            parts = Path(name).parts
            if Path(name).is_absolute() or ".." in parts or name.startswith("~"):
                raise ConfigError(f"run.name={name} must be a folder name inside run.root (no '..', not absolute)")
            if any(len(part.encode()) > NAME_BYTES for part in parts):
                raise ConfigError(f"run.name is longer than a folder name may be ({NAME_BYTES} bytes): {name[:40]}...")


def composition_message(error: Exception, argv: list[str]) -> str:
    """Hydra's or OmegaConf's complaint about the command line, as one line."""
    from debate_ft.config import DatasetConfig, choices
    from debate_ft.schema_help import listed

    text = str(error).strip()
    no_dataset = not any(a.lstrip("+~").startswith(("dataset=", "experiment=")) for a in argv)
    dataset_key = next((a.split("=")[0] for a in argv if a.lstrip("+~").startswith("dataset.")), None)
    if dataset_key and no_dataset:
        return f"{dataset_key} needs a dataset: add +dataset=<name> ({listed(choices(DatasetConfig, 'name'))})"
    lines = []
    for line in text.splitlines():
        if line.strip().startswith(("Config search path", "full_key:", "object_type=")):
            break
        if line.strip():
            lines.append(line.strip())
    cause = error.__cause__
    if cause is not None and str(cause).strip():
        lines.append(f"({str(cause).strip().splitlines()[0]})")
    return " ".join(lines)[:400] or type(error).__name__


def write_error_log(text: str) -> Path | None:
    """Append a traceback to error.log in the run directory, else in $DEBATE_FT_CACHE/logs; its path."""
    from debate_ft.model_files import cache_dir

    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    entry = f"--- {stamp} python -m debate_ft {' '.join(sys.argv[1:])}\n{text}\n"
    folders = [_State.run_dir] if _State.run_dir is not None else []
    folders.append(cache_dir() / "logs")
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with (folder / ERROR_LOG).open("a", encoding="utf-8") as handle:
                handle.write(entry)
            return folder / ERROR_LOG
        except OSError:
            continue
    return None


def os_error_message(error: OSError) -> str:
    if error.errno in IN_THE_WAY_ERRNOS:
        return in_the_way_message(error)
    where = error.filename or "a file"
    reason = error.strerror or type(error).__name__
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"cannot write {where}: {reason}; free some space and re-run the same command to resume"
    return f"cannot write {where}: {reason}; pick a writable run.root (or fix the folder's permissions)"


def in_the_way_message(error: OSError) -> str:
    """Name the path of the wrong kind: the folder a file was to be read from or written to, or the file (the
    path itself or a parent) standing where a folder belongs."""
    path = Path(error.filename2 or error.filename or ".")
    culprit = path if path.is_dir() else next((p for p in (path, *path.parents) if p.is_file()), path)
    kind, wanted = ("folder", "file") if culprit.is_dir() else ("file", "folder")
    return f"{culprit} is a {kind} where a {wanted} belongs; move or delete it, then re-run the same command"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [arg for arg in argv if arg != "--debug"]
    _State.run_dir, _State.in_task = None, False
    try:
        return _main(argv)
    except DebateFTError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as error:
        in_the_way = error.errno in IN_THE_WAY_ERRNOS and error.filename is not None
        if error.errno not in ENVIRONMENT_ERRNOS and not in_the_way:
            return _unexpected(error, debug)
        print(f"error: {os_error_message(error)}", file=sys.stderr)
        return 2
    except Exception as error:
        return _unexpected(error, debug)


def vllm_command(overrides: list[str]) -> str:
    """The `vllm serve` line (with its environment) that serves `backend=openai` for these model= and backend.*
    settings: adapters loaded at run time, the same engine settings as backend=vllm (for this machine's GPU, or
    for vLLM's CPU build where it has none)."""
    import shlex

    import torch
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from debate_ft.backends.vllm import RUNTIME_LORA_ENV, server_command

    try:
        with initialize_config_dir(str(CONF_DIR), version_base=None):
            cfg = compose("config", overrides=overrides)
        model, backend = OmegaConf.to_object(cfg.model), OmegaConf.to_object(cfg.backend)
    except (HydraException, OmegaConfBaseException) as error:
        raise ConfigError(composition_message(error, overrides)) from None
    environment = " ".join(f"{key}={value}" for key, value in RUNTIME_LORA_ENV.items())
    return f"{environment} {shlex.join(server_command(model, backend, on_cpu=not torch.cuda.is_available()))}"


def _unexpected(error: Exception, debug: bool) -> int:
    text = "".join(traceback.format_exception(error))
    log = write_error_log(text)
    if debug:
        print(text, file=sys.stderr, end="")
    first = (str(error).strip().splitlines() or [""])[0][:200]
    where = f"traceback in {log}" if log else "traceback not saved"
    hint = "" if debug else f"; --debug or {DEBUG_ENV}=1 prints it"
    print(f"error: unexpected {type(error).__name__}: {first} ({where}{hint})", file=sys.stderr)
    return 1


def _main(argv: list[str]) -> int:
    command = argv[0] if argv else None
    if command == "report":
        from debate_ft.report import main as report

        return report(argv[1:])
    if command == "serve":
        from debate_ft.serve import main as serve

        return serve(argv[1:])
    if command == "vllm-command":
        print(vllm_command(argv[1:]))
        return 0
    if command not in _commands():
        print(USAGE, file=sys.stderr if command not in (None, "-h", "--help") else sys.stdout)
        if command not in (None, "-h", "--help"):
            print(f"error: unknown command {command!r}", file=sys.stderr)
            return 2
        return 0
    _hydra_run(command, argv[1:])
    return 0
