"""`python -m debate_ft <command> [hydra overrides]`: the subcommands and their one-line error handling."""

from __future__ import annotations

import sys
from pathlib import Path

from debate_ft.errors import DebateFTError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
USAGE = """usage: python -m debate_ft <command> [key=value ...]

commands (Hydra overrides follow, e.g. +dataset=gsm agents.n=3 debate.rounds=2):
  debate     debate one split (debate.split=test|train) and write its transcript
  evaluate   debate the test split; score base, majority and debate (method=all|base|majority|debate)
  iterate    K iterations of debate -> labels -> per-agent LoRA fine-tuning -> evaluation
  flow       +dataset=musique: train the QA flow online (one-step deviations + weighted DPO), then
             evaluate it; flow.train=false evaluates the run's saved flow
  report     python -m debate_ft report RUN_DIR [RUN_DIR ...]: one table over runs
  serve      python -m debate_ft serve RUN_DIR [--port 8000]: an OpenAI-compatible server of a run's society

add -m for a Hydra multirun sweep (e.g. agents.n=1,3,5); --help after a command shows its config."""


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

    from debate_ft.config import load, to_dict
    from debate_ft.runs import prepare_run_dir

    def task(cfg) -> None:
        try:
            config = load(cfg)
            run_dir = Path(HydraConfig.get().runtime.output_dir)
            prepare_run_dir(run_dir, to_dict(config))
            _commands()[command](config, run_dir)
        except DebateFTError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    sys.argv = [f"python -m debate_ft {command}", *argv]
    hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")(task)()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else None
    if command == "report":
        from debate_ft.report import main as report

        return report(argv[1:])
    if command == "serve":
        from debate_ft.serve import main as serve

        return serve(argv[1:])
    if command not in _commands():
        print(USAGE, file=sys.stderr if command not in (None, "-h", "--help") else sys.stdout)
        if command not in (None, "-h", "--help"):
            print(f"error: unknown command {command!r}", file=sys.stderr)
            return 2
        return 0
    _hydra_run(command, argv[1:])
    return 0
