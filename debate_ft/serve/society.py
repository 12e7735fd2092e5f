"""A run's trained society, loaded from its run directory, answering the server's requests.

The models it serves: `base` (the base model), every trained adapter by name (gen0, crit0, ... or `shared`),
each as the latest iteration trained it, and `society`, a whole debate among the run's agents; a mixed society
also serves each of its base models by its key (bases.py). Models are not thread-safe, so requests take turns
(a lock).
"""

from __future__ import annotations

import shlex
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from debate_ft.backends import Completion, Request
from debate_ft.backends.hf import HFBackend
from debate_ft.backends.openai import served_name
from debate_ft.backends.routed import RoutedBackend
from debate_ft.bases import agent_bases, base_configs, default_base
from debate_ft.config import LORA_RANKS, Config, GenerationConfig
from debate_ft.debate import RunDebates
from debate_ft.errors import ConfigError
from debate_ft.layout import RunDir
from debate_ft.run_config import saved_config
from debate_ft.tasks import Question, Task, get_task
from debate_ft.transcript import Record

BASE_MODEL = "base"
SOCIETY_MODEL = "society"


def trained_adapters(run_dir: Path, iteration: int | None = None) -> tuple[int, dict[str, Path]]:
    """(iteration, adapter name -> folder) of the society after `iteration` (default: the last one trained); an
    adapter an iteration did not retrain keeps its earlier folder, as in `iterate`."""
    layout = RunDir(run_dir)
    iterations = layout.iterations()
    trained = [k for k in iterations if any(layout.adapters(k).glob("*/adapter_config.json"))]
    if iteration is not None and not 0 <= iteration <= max(iterations, default=0):
        raise ConfigError(f"--iteration {iteration}: {run_dir} has iterations 0..{max(iterations, default=0)}")
    last = iteration if iteration is not None else max(trained, default=0)
    adapters: dict[str, Path] = {}
    for k in iterations:
        if 1 <= k <= last:
            saved = sorted(layout.adapters(k).glob("*/adapter_config.json"))
            adapters.update((path.parent.name, path.parent) for path in saved)
    return last, adapters


def vllm_command(run_dir: Path, iteration: int | None = None) -> str:
    """The `vllm serve` command that serves the same models as `serve` (the society itself excepted), with the
    run's vLLM settings (backend.max_lora_rank: one of vLLM's ranks, at least the adapters')."""
    from debate_ft.backends.vllm import server_command

    config = saved_config(run_dir)
    if config.agents.mixed:
        raise ConfigError(
            f"{run_dir} is a mixed society (agents.models={config.agents.models}): one vllm server serves one base "
            "model; use `serve`"
        )
    _, adapters = trained_adapters(run_dir, iteration)
    rank = min(r for r in LORA_RANKS if r >= max(config.train.lora_r, config.backend.max_lora_rank))
    base = base_configs(config)[default_base(config)]  # agents.models may name one base other than `model`
    command = server_command(base, replace(config.backend, max_lora_rank=rank), False, BASE_MODEL)
    if adapters:
        command += ["--lora-modules", *(f"{served_name(name, path)}={path}" for name, path in adapters.items())]
    return shlex.join(command)


@dataclass
class ServedSociety:
    config: Config
    backend: RoutedBackend  # in-process hf engines, one per base: the server also scores raw token ids
    task: Task
    debates: RunDebates  # the run's society and effective debate settings, as iterate debated with them
    iteration: int
    adapters: dict[str, Path]

    def __post_init__(self):
        self.lock = threading.Lock()
        self.society = self.debates.society(self.adapters)
        # each adapter also answers to the name backend=openai asks for: iter<k>/<name> (see served_name)
        self.aliases = {served_name(name, path): name for name, path in self.adapters.items()}

    @classmethod
    def load(cls, run_dir: Path, iteration: int | None = None, device: str = "auto") -> ServedSociety:
        config = saved_config(run_dir)
        iteration, adapters = trained_adapters(run_dir, iteration)
        hf = replace(config.backend, name="hf", device=device)
        backend = RoutedBackend.for_society(config, lambda model: HFBackend.from_config(model, hf))
        for name, path in adapters.items():
            backend.load_adapter(name, path)
        return cls(config, backend, get_task(config.dataset), RunDebates(config, backend), iteration, adapters)

    def bases(self) -> list[str]:
        """A mixed society's base models, served by their keys."""
        return [key for key in dict.fromkeys(agent_bases(self.config)) if key]

    def models(self) -> list[str]:
        return [BASE_MODEL, *self.bases(), *self.adapters, *self.aliases, SOCIETY_MODEL]

    def adapter(self, model: str) -> str | None:
        """The adapter a served model name stands for (None: a base model)."""
        return None if model in (BASE_MODEL, *self.bases()) else self.aliases.get(model, model)

    def base(self, model: str) -> str | None:
        """The base key of a served model name, a base key or None (the society and `base`: the default base)."""
        adapter = self.adapter(model) if model != SOCIETY_MODEL else None
        if adapter is not None:
            return self.backend.adapter_bases[adapter]
        return model if model in self.bases() else None

    def engine(self, model: str) -> HFBackend:
        """The engine serving `model` (a served name or a base key), for its tokenizer and context."""
        return self.backend.engine(self.base(model))

    def sampling(self, max_tokens: int | None, temperature: float | None, top_p: float | None) -> GenerationConfig:
        """The run's sampling settings, with what a request sets."""
        settings = self.config.generation
        return GenerationConfig(
            max_new_tokens=max_tokens or settings.max_new_tokens,
            temperature=settings.temperature if temperature is None else temperature,
            top_p=settings.top_p if top_p is None else top_p,
        )

    def chat(self, model: str, messages: list[dict], sampling: GenerationConfig, seed: int) -> tuple[Completion, int]:
        """One reply by the base model or one adapter, and its prompt's token count."""
        request = Request(messages, self.adapter(model), model=self.base(model))
        with self.lock:
            completion = self.backend.generate([request], sampling, seed, desc="serve")[0]
        return completion, self.engine(model).prompt_tokens(messages)

    def debate(self, question: str, sampling: GenerationConfig, seed: int) -> Record:
        """The society's debate on one question, as a transcript line holds it (its gold is empty)."""
        debate = self.debates.debate(self.task, self.adapters, sampling=sampling)
        with self.lock:
            return debate.chunk([Question(id="request", text=question, gold="")], seed)[0]

    def score(self, model: str, ids: list[int]) -> list[float | None]:
        """Log-probability of every token of `ids` given the ones before it (None for the first)."""
        with self.lock:
            return self.engine(model).token_logprobs(ids, self.adapter(model))
