"""What each CLI command does, given a validated config and its run directory."""

from __future__ import annotations

from pathlib import Path

from debate_ft.backends.engines import society_backend
from debate_ft.bases import society_name
from debate_ft.compute import Ledger
from debate_ft.config import Config
from debate_ft.debate import RunDebates
from debate_ft.errors import ConfigError
from debate_ft.evaluate import evaluate as evaluate_test
from debate_ft.evaluate import print_rows
from debate_ft.methods import DEFAULT_FINE_TUNING, DEFAULT_SCORING, SCORINGS
from debate_ft.metrics import score
from debate_ft.tables import console
from debate_ft.tasks import get_task


def check_settings(command: str, config: Config) -> None:
    """Refuse, before the run directory is touched, a setting that `command` does not read: a non-default
    method= (evaluate's), ft_method= or eval_dataset (iterate's) elsewhere would be silently ignored."""
    if command != "iterate" and config.eval_dataset is not None:
        raise ConfigError(f"eval_dataset is for iterate (transfer); `{command}` tests +dataset=<name> itself")
    if command != "iterate" and config.extra_scorings:
        instead = "scores one method=, e.g. method=self_consistency" if command == "evaluate" else "takes no scorings"
        raise ConfigError(f"extra_scorings is for iterate (got {config.extra_scorings}); `{command}` {instead}")
    if command != "iterate" and config.ft_method != DEFAULT_FINE_TUNING:
        does = "trains its nodes with online DPO" if command == "flow" else "debates the base model"
        raise ConfigError(f"ft_method is for iterate: `{command}` {does} (got ft_method={config.ft_method})")
    if command == "flow" and config.agents.models:
        raise ConfigError(f"agents.models is for societies (got {config.agents.models}); flow runs on model=<name>")
    if command != "evaluate" and config.method != DEFAULT_SCORING:
        raise ConfigError(
            {
                "debate": f"debate takes no method= (got {config.method!r}): it always writes the full debate; "
                "`evaluate method=...` scores one method",
                "iterate": f"method={config.method} is evaluate's setting: iterate scores "
                f"{', '.join(SCORINGS[DEFAULT_SCORING].writes)} every iteration",
                "flow": f"method={config.method} is evaluate's setting: flow scores answers by EM and F1",
            }[command]
        )


def debate(config: Config, run_dir: Path) -> None:
    task = get_task(config.dataset)
    ledger = Ledger(run_dir)
    backend = society_backend(config, ledger)
    split = config.debate.split
    with ledger.stage(0, "debate", split):
        records = RunDebates(config, backend, run_dir).run(task, 0, split, "debate")
    result = score(records, task, "debate")
    console().print(
        f"{len(records)} {split} questions debated -> {run_dir}/iter0; debate accuracy "
        f"{result['accuracy']:.3f} ± {result['stderr']:.3f} (n={result['n']}, no answer: {result['no_answer']})"
    )


def evaluate(config: Config, run_dir: Path) -> None:
    task = get_task(config.dataset)
    ledger = Ledger(run_dir)
    backend = society_backend(config, ledger)
    _, rows = evaluate_test(RunDebates(config, backend, run_dir), task, 0, config.method, ledger)
    print_rows(rows, f"{config.dataset.name} test, {society_name(config)} ({run_dir})")


def iterate(config: Config, run_dir: Path) -> None:
    from debate_ft.iterate import iterate as run_iterations

    run_iterations(config, run_dir)


def flow(config: Config, run_dir: Path) -> None:
    from debate_ft.flow.run import flow as run_flow

    run_flow(config, run_dir)
