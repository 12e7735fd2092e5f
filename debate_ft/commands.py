"""What each CLI command does, given a validated config and its run directory."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from debate_ft.backends import make_backend
from debate_ft.compute import Ledger, Metered
from debate_ft.config import Config
from debate_ft.debate import Society
from debate_ft.errors import ConfigError
from debate_ft.evaluate import evaluate as evaluate_test
from debate_ft.evaluate import print_rows, run_debate
from debate_ft.methods import DEFAULT_FINE_TUNING, DEFAULT_SCORING
from debate_ft.metrics import score
from debate_ft.tasks import get_task


def _base_society_only(config: Config, command: str) -> None:
    """debate and evaluate debate the base model: settings of iterate's are refused rather than ignored."""
    if config.eval_dataset is not None:
        raise ConfigError(f"eval_dataset is for iterate (transfer); `{command}` tests +dataset=<name> itself")
    if config.ft_method != DEFAULT_FINE_TUNING:
        raise ConfigError(
            f"ft_method is for iterate: `{command}` debates the base model (got ft_method={config.ft_method})"
        )


def debate(config: Config, run_dir: Path) -> None:
    _base_society_only(config, "debate")
    if config.method != DEFAULT_SCORING:
        raise ConfigError(
            f"debate takes no method= (got {config.method!r}): it always writes the full debate; "
            "`evaluate method=...` scores one method"
        )
    task = get_task(config.dataset)
    ledger = Ledger(run_dir)
    backend = Metered(make_backend(config.backend, config.model), ledger)
    split = config.debate.split
    with ledger.stage(0, "debate", split):
        records = run_debate(config, task, backend, Society.base(config.agents.n), run_dir, 0, split, "debate")
    result = score(records, task, "debate")
    Console().print(
        f"{len(records)} {split} questions debated -> {run_dir}/iter0; debate accuracy "
        f"{result['accuracy']:.3f} ± {result['stderr']:.3f} (n={result['n']}, no answer: {result['no_answer']})"
    )


def evaluate(config: Config, run_dir: Path) -> None:
    _base_society_only(config, "evaluate")
    task = get_task(config.dataset)
    ledger = Ledger(run_dir)
    backend = Metered(make_backend(config.backend, config.model), ledger)
    _, rows = evaluate_test(config, task, backend, Society.base(config.agents.n), run_dir, 0, config.method, ledger)
    print_rows(rows, f"{config.dataset.name} test, {config.model.name} ({run_dir})")


def iterate(config: Config, run_dir: Path) -> None:
    from debate_ft.iterate import iterate as run_iterations

    run_iterations(config, run_dir)


def flow(config: Config, run_dir: Path) -> None:
    from debate_ft.flow.run import flow as run_flow

    run_flow(config, run_dir)
