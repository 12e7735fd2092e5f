"""LoRA fine-tuning of the agents' adapters inside the shared base model.

Each conversation is tokenized the way generation sees it (the chat template rendered turn by turn), and only
assistant turns carry loss. A job of preference examples (TRL's conversational prompt/chosen/rejected) trains its
adapter by DPO instead (joint loop only), against the adapter's start (its log-probs taken before the first step:
no second model or adapter in memory) and without LoRA dropout, as TRL's DPO trainer does by default. Adapters
train under temporary names, are saved as plain PEFT directories, and are dropped again, so serving adapters and
the base weights are never touched. Two loops, one result:
- `train_adapters` (train.loop=joint): all of an iteration's adapters in one loop, each row of a pass through its
  own adapter; step s is step s of every adapter's own (SFT) trainer (its batches, loss, clipping, AdamW state and
  learning-rate decay), so it trains what the separate trainers train, in a fraction of the time.
- `train_adapter` (train.loop=separate): one TRL SFT trainer per adapter, the reference.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from datasets import Dataset
from tqdm.auto import trange

from debate_ft.backends.gathered import GatheredLoRA
from debate_ft.chat import with_system
from debate_ft.config import TrainConfig
from debate_ft.errors import ModelError, TrainingError
from debate_ft.models import HostedModel
from debate_ft.preference import dpo_row_weights

log = logging.getLogger(__name__)

TRAINING = "training"  # the adapter name used while training
MAX_GRAD_NORM = 1.0  # TRL's (transformers') default, per adapter in the joint loop
PASS_COST = 64  # a pass's fixed cost in padded tokens' time (hooks, kernel launches): what splitting must save


def lora_config(config: TrainConfig):
    from peft import LoraConfig

    targets = config.target_modules
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules="all-linear" if list(targets) == ["all-linear"] else list(targets),
        task_type="CAUSAL_LM",
    )


def tokenize_conversation(tokenizer, messages: Sequence[dict]) -> dict:
    """input_ids and assistant_masks (1 on assistant tokens, end-of-turn included) of one conversation,
    rendered prefix by prefix so every assistant turn is tokenized exactly as it was generated."""
    input_ids: list[int] = []
    masks: list[int] = []
    rendered = ""
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = tokenizer.apply_chat_template(list(messages[:index]), tokenize=False, add_generation_prompt=True)
        turn = tokenizer.apply_chat_template(list(messages[: index + 1]), tokenize=False)
        if not (prompt.startswith(rendered) and turn.startswith(prompt)):
            raise ModelError("the chat template is not prefix-preserving; cannot mask assistant turns")
        for text, mask in ((prompt[len(rendered) :], 0), (turn[len(prompt) :], 1)):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            input_ids += ids
            masks += [mask] * len(ids)
        rendered = turn
    return {"input_ids": input_ids, "assistant_masks": masks}


def tokenized_dataset(tokenizer, examples: Sequence[dict], system_prompt: str | None) -> Dataset:
    rows = [tokenize_conversation(tokenizer, with_system(e["messages"], system_prompt)) for e in examples]
    return Dataset.from_list(rows)


def train_adapter(
    hosted: HostedModel,
    examples: Sequence[dict],
    out_dir: Path,
    config: TrainConfig,
    seed: int,
    init_from: Path | None = None,
    system_prompt: str | None = None,
) -> dict:
    """Train one LoRA adapter on chat examples and save it at `out_dir`; returns the trainer's metrics."""
    from trl import SFTConfig, SFTTrainer

    _attach(hosted, TRAINING, seed, init_from, config)
    dataset = tokenized_dataset(hosted.tokenizer, examples, system_prompt)
    on_gpu = hosted.device.type == "cuda"
    with tempfile.TemporaryDirectory() as scratch:
        args = SFTConfig(
            output_dir=scratch,
            num_train_epochs=config.epochs,
            per_device_train_batch_size=config.batch_size,
            gradient_accumulation_steps=config.grad_accum,
            learning_rate=config.learning_rate,
            max_length=config.max_length,
            seed=seed,
            data_seed=seed,
            report_to=[] if config.report_to == "none" else [config.report_to],  # the schema checked the package
            logging_strategy="epoch",
            save_strategy="no",
            use_cpu=not on_gpu,
            bf16=on_gpu and torch.cuda.is_bf16_supported(),
            gradient_checkpointing=False,  # it only slows a small CPU run down
            logging_nan_inf_filter=False,  # a NaN step must show in the training loss (the check below)
            disable_tqdm=False,
        )
        trainer = SFTTrainer(model=hosted.peft, args=args, train_dataset=dataset, processing_class=hosted.tokenizer)
        result = trainer.train()
    hosted.peft.eval()
    try:
        _check_finite(result.training_loss, out_dir.name, f"over {result.global_step} steps")
    except TrainingError:
        hosted.delete_adapter(TRAINING)
        raise
    hosted.save_adapter(TRAINING, out_dir)
    hosted.delete_adapter(TRAINING)
    log.info("trained %s on %d examples: loss %.4f", out_dir.name, len(examples), result.training_loss)
    return {"examples": len(examples), "loss": result.training_loss, "steps": result.global_step}


@dataclass(frozen=True)
class Job:
    """One adapter for `train_adapters`: its examples, where it is saved, its seed, the adapter it starts from."""

    name: str
    examples: Sequence[dict]
    out_dir: Path
    seed: int
    init_from: Path | None = None


@dataclass
class Row:
    adapter: int  # index into the jobs
    input_ids: list[int]
    answer: list[int]  # 1 where the token is an assistant token (its loss counts)


@dataclass
class Pair:
    """A preference example's two rows (its prompt with the chosen, with the rejected completion) and their
    summed log-probs under the adapter's start, the DPO reference (taken before the first step)."""

    chosen: Row
    rejected: Row
    reference: tuple[float, float] = (0.0, 0.0)

    @property
    def rows(self) -> tuple[Row, Row]:
        return self.chosen, self.rejected


def rows_of(units: Sequence[Row | Pair]) -> list[Row]:
    return [row for unit in units for row in (unit.rows if isinstance(unit, Pair) else (unit,))]


def train_adapters(
    hosted: HostedModel, jobs: Sequence[Job], config: TrainConfig, system_prompt: str | None = None
) -> dict[str, dict]:
    """Train every job's LoRA adapter in one loop and save each at its out_dir; returns metrics by job name.

    Each pass holds rows of many adapters (length-sorted, at most `config.pass_tokens` padded tokens), each run
    through its own adapter (GatheredLoRA.trainable), so a row's loss reaches its adapter alone; only answer
    positions go through the vocabulary head. A job of preference examples trains by DPO (train.beta).
    """
    units, dropped = zip(*(answer_rows(hosted.tokenizer, j, i, config, system_prompt) for i, j in enumerate(jobs)))
    attached: list[str] = []
    try:
        for job in jobs:
            attached.append(_attach(hosted, f"{TRAINING}-{job.name}", job.seed, job.init_from, config))
        losses, plans = _train_jointly(hosted, attached, units, jobs, config)
        for job in jobs:
            hosted.save_adapter(f"{TRAINING}-{job.name}", job.out_dir)
    finally:  # the training adapters go, also when training fails
        if attached:
            hosted.peft.eval()
        for job in jobs[: len(attached)]:
            hosted.delete_adapter(f"{TRAINING}-{job.name}")
    metrics = {}
    for j, job in enumerate(jobs):
        loss = sum(losses[j]) / len(losses[j])
        metrics[job.name] = {"examples": len(job.examples), "dropped": dropped[j], "loss": loss, "steps": len(plans[j])}
        log.info("trained %s on %d examples: loss %.4f", job.name, len(job.examples), loss)
    return metrics


def _train_jointly(hosted: HostedModel, names: list[str], units, jobs: Sequence[Job], config: TrainConfig):
    """The loop itself over the attached adapters `names`; returns each adapter's step losses and its plan."""
    gather = GatheredLoRA(hosted.peft)
    if not gather.plain(names):
        raise ModelError("the joint training loop takes plain LoRA adapters only; set train.loop=separate")
    groups = [{"params": _parameters(hosted.peft, name)} for name in names]
    per_step = config.batch_size * config.grad_accum
    plans = [step_plan(len(u), per_step, config.epochs, job.seed) for u, job in zip(units, jobs)]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, weight_decay=0.0)
    decay = torch.optim.lr_scheduler.LambdaLR(optimizer, [_linear_decay(len(plan)) for plan in plans])
    losses: list[list[float]] = [[] for _ in jobs]
    torch.manual_seed(jobs[0].seed)  # LoRA dropout's masks
    hosted.peft.train()
    with gather.trainable(names, config.lora_dropout), _cpu_bfloat16_eager_attention(hosted):
        pairs = [unit for job_units in units for unit in job_units if isinstance(unit, Pair)]
        logprobs = summed_logprobs(hosted, gather, names, rows_of(pairs), config.pass_tokens)
        for pair in pairs:  # the adapters are at their start: these are the references
            pair.reference = (logprobs[id(pair.chosen)], logprobs[id(pair.rejected)])
        for step in trange(max(map(len, plans)), desc=f"train {len(jobs)} adapters"):
            batch = [units[j][i] for j, plan in enumerate(plans) if step < len(plan) for i in plan[step]]
            for j, loss in step_gradients(hosted, gather, names, batch, config).items():
                _check_finite(loss, jobs[j].name, f"at step {step + 1}")
                losses[j].append(loss)
                torch.nn.utils.clip_grad_norm_(groups[j]["params"], MAX_GRAD_NORM)
            for j, plan in enumerate(plans):
                if step >= len(plan):  # past its last step: its zero gradient must not move it (AdamW skips None)
                    for p in groups[j]["params"]:
                        p.grad = None
            optimizer.step()
            decay.step()
            optimizer.zero_grad(set_to_none=True)
    return losses, plans


def _check_finite(loss: float, name: str, when: str) -> None:
    """A NaN or infinite loss stops training before anything is saved: its adapter would be NaN throughout."""
    if not math.isfinite(loss):
        raise TrainingError(
            f"{name}'s training loss is {loss} {when}; nothing was saved (lower train.learning_rate, or train in "
            "float32: backend.dtype=float32)"
        )


def answer_rows(tokenizer, job: Job, index: int, config: TrainConfig, system_prompt: str | None) -> tuple[list, int]:
    """The job's tokenized rows (a Pair of two for a preference example), cut to max_length from the end, and
    how many examples were dropped (no answer token left to learn from, as TRL drops them); none left is an
    error."""
    units = []
    for example in job.examples:
        if "chosen" in example:  # a preference pair
            conversations = [example["prompt"] + example["chosen"], example["prompt"] + example["rejected"]]
        else:
            conversations = [example["messages"]]
        rows = [_row(tokenizer, index, messages, config, system_prompt) for messages in conversations]
        if all(rows):
            units.append(Pair(*rows) if len(rows) == 2 else rows[0])
    if len({type(unit) for unit in units}) > 1:  # one loss per adapter: its metrics report one
        raise ModelError(f"{job.name}: its examples mix preference pairs and conversations; give one kind")
    if not units:
        raise ModelError(f"{job.name}: none of its {len(job.examples)} examples has an answer within max_length")
    dropped = len(job.examples) - len(units)
    if dropped:
        log.warning("%s: %d of %d examples have no answer within max_length and are left out", job.name, dropped,
                    len(job.examples))  # fmt: skip
    return units, dropped


def _row(tokenizer, index: int, messages: list[dict], config: TrainConfig, system_prompt: str | None) -> Row | None:
    tokens = tokenize_conversation(tokenizer, with_system(messages, system_prompt))
    ids, answer = tokens["input_ids"][: config.max_length], tokens["assistant_masks"][: config.max_length]
    return Row(index, ids, answer) if any(answer[1:]) else None  # the first token has nothing to predict it


def step_plan(n: int, per_step: int, epochs: float, seed: int) -> list[list[int]]:
    """Each optimizer step's example indices, as a trainer draws them: a fresh shuffle per epoch cut into
    `per_step` examples (an epoch's last step smaller), ceil(epochs x steps per epoch) steps."""
    generator = torch.Generator().manual_seed(seed)
    steps: list[list[int]] = []
    for _ in range(math.ceil(epochs)):
        order = torch.randperm(n, generator=generator).tolist()
        steps += [order[i : i + per_step] for i in range(0, n, per_step)]
    return steps[: math.ceil(epochs * math.ceil(n / per_step))]


def step_gradients(
    hosted: HostedModel, gather: GatheredLoRA, names: Sequence[str], batch: Sequence[Row | Pair], config: TrainConfig
) -> dict[int, float]:
    """Accumulate one step's gradients; returns each adapter's loss: a supervised adapter's mean over its answer
    tokens in the step, a preference adapter's DPO loss, mean over its pairs in the step. A pair row's weight is
    the loss's derivative in its log-prob, so its gradient is the loss's own even when its two rows run in
    different passes (both passes without dropout)."""
    rows = [unit for unit in batch if isinstance(unit, Row)]
    pairs = [unit for unit in batch if isinstance(unit, Pair)]
    tokens: dict[int, int] = {}
    for row in rows:
        tokens[row.adapter] = tokens.get(row.adapter, 0) + sum(row.answer[1:])
    weights = {id(row): 1 / tokens[row.adapter] for row in rows}
    policy = summed_logprobs(hosted, gather, names, rows_of(pairs), config.pass_tokens)
    losses = {}
    for adapter in {pair.chosen.adapter for pair in pairs}:
        mine = [pair for pair in pairs if pair.chosen.adapter == adapter]
        at = [(policy[id(pair.chosen)], policy[id(pair.rejected)]) for pair in mine]
        losses[adapter], row_weights = dpo_row_weights(at, [pair.reference for pair in mine], config.beta)
        for pair, (chosen, rejected) in zip(mine, row_weights):
            weights[id(pair.chosen)], weights[id(pair.rejected)] = chosen, rejected
    totals = backward(hosted, gather, names, rows, weights, config.pass_tokens)
    with gather.without_dropout():
        backward(hosted, gather, names, rows_of(pairs), weights, config.pass_tokens)
    return {**{adapter: totals[adapter] for adapter in tokens}, **losses}


def backward(
    hosted: HostedModel,
    gather: GatheredLoRA,
    names: Sequence[str],
    rows: Sequence[Row],
    weights: dict[int, float],
    pass_tokens: int,
) -> dict[int, float]:
    """Accumulate the gradients of the sum over rows of weights[id(row)] x the row's summed answer-token loss
    (-log p); returns that weighted sum by adapter index."""
    totals = torch.zeros(len(names), dtype=torch.float64)
    for chunk in passes(rows, pass_tokens):
        token_loss, row_of = _answer_token_losses(hosted, gather, names, chunk)
        weighted = token_loss * torch.tensor([weights[id(row)] for row in chunk], device=token_loss.device)[row_of]
        weighted.sum().backward()
        owner = torch.tensor([row.adapter for row in chunk])[row_of.cpu()]
        totals.index_add_(0, owner, weighted.detach().cpu().double())
    return {row.adapter: totals[row.adapter].item() for row in rows}


@torch.no_grad()
def summed_logprobs(
    hosted: HostedModel, gather: GatheredLoRA, names: Sequence[str], rows: Sequence[Row], pass_tokens: int
) -> dict[int, float]:
    """Each row's summed answer-token log-prob under its adapter, without LoRA dropout, by id(row) (the rows
    live as long as the step or the training run that asks)."""
    out: dict[int, float] = {}
    with gather.without_dropout():
        for chunk in passes(rows, pass_tokens):
            token_loss, row_of = _answer_token_losses(hosted, gather, names, chunk)
            sums = torch.zeros(len(chunk), dtype=torch.float64).index_add_(0, row_of.cpu(), -token_loss.cpu().double())
            out.update({id(row): value for row, value in zip(chunk, sums.tolist())})
    return out


def _answer_token_losses(hosted: HostedModel, gather: GatheredLoRA, names: Sequence[str], rows: Sequence[Row]):
    """One pass of `rows`, each through its adapter: every answer token's loss (-log p, float32) and its row's
    index in `rows`; only answer positions go through the vocabulary head."""
    decoder, head = hosted.base.get_decoder(), hosted.base.get_output_embeddings()
    ids, attention, answer = _padded(rows, hosted.tokenizer.pad_token_id or 0, hosted.device)
    gather.mask = gather.row_mask([names[r.adapter] for r in rows], head.weight.dtype).to(hosted.device)
    hidden = decoder(input_ids=ids, attention_mask=attention, use_cache=False).last_hidden_state
    pick = answer[:, 1:].bool()
    token_loss = F.cross_entropy(head(hidden[:, :-1][pick]).float(), ids[:, 1:][pick], reduction="none")
    row_of = torch.arange(len(rows), device=ids.device)[:, None].expand_as(pick)[pick]
    return token_loss, row_of


def passes(batch: Sequence[Row], pass_tokens: int) -> list[list[Row]]:
    """The rows, longest first, cut into passes of at most `pass_tokens` padded tokens (a longer row alone) so
    that padded tokens plus PASS_COST per pass are fewest (dynamic programming over the sorted rows)."""
    rows = sorted(batch, key=lambda r: len(r.input_ids), reverse=True)
    best = [0.0] + [math.inf] * len(rows)  # best[i]: cost of the first i rows
    cut = [0] * (len(rows) + 1)
    for end in range(1, len(rows) + 1):
        for start in range(end - 1, -1, -1):
            padded = (end - start) * len(rows[start].input_ids)
            if padded > pass_tokens and end - start > 1:
                break
            if best[start] + padded + PASS_COST < best[end]:
                best[end], cut[end] = best[start] + padded + PASS_COST, start
    out, end = [], len(rows)
    while end:
        out.append(rows[cut[end] : end])
        end = cut[end]
    return out[::-1]


def _padded(rows: Sequence[Row], pad: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = len(rows[0].input_ids)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention = torch.zeros(len(rows), width, dtype=torch.long)
    answer = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row.input_ids)] = torch.tensor(row.input_ids)
        attention[i, : len(row.input_ids)] = 1
        answer[i, : len(row.answer)] = torch.tensor(row.answer)
    return ids.to(device), attention.to(device), answer.to(device)


def _attach(hosted: HostedModel, name: str, seed: int, init_from: Path | None, config: TrainConfig) -> str:
    """A trainable adapter named `name`: a fresh LoRA (its initial weights drawn from `seed`), or a copy of
    `init_from`; returns its peft name."""
    torch.manual_seed(seed)
    if init_from is not None:
        hosted.load_adapter(name, init_from, trainable=True)
    else:
        hosted.add_adapter(name, lora_config(config))
    return hosted.internal_name(name)


def _parameters(peft_model, name: str) -> list[torch.nn.Parameter]:
    """The adapter's LoRA weights, made trainable (peft leaves only its newest adapter so)."""
    params = [p for key, p in peft_model.named_parameters() if f".{name}." in key]
    for p in params:
        p.requires_grad_(True)
    return params


@contextmanager
def _cpu_bfloat16_eager_attention(hosted: HostedModel):
    """Within: eager attention when training runs in bfloat16 on a CPU, where torch's flash kernel is slow at
    these lengths (a joint step of 24 rows of 70-257 tokens: 6.5 s with sdpa, 5.1 s eager; in float32 eager is
    5% slower, so it is left alone)."""
    model = hosted.base
    before = model.config._attn_implementation
    switch = hosted.device.type == "cpu" and model.dtype == torch.bfloat16 and before == "sdpa"
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(before)


def _linear_decay(steps: int):
    """The learning rate's factor at each step: linear from 1 to 0 over `steps`, TRL's default schedule."""
    return lambda step: max(0.0, (steps - step) / max(1, steps))
