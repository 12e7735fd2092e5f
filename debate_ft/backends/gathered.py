"""Mixed-adapter LoRA in two batched matmuls per layer, whatever the number of adapters (Punica/S-LoRA's idea).

peft's `adapter_names` runs the base layer once, then loops over the distinct adapters in every LoRA layer, each
on its slice of the batch: with six agents that is six times more (and six times smaller) matmuls, plus the
slicing. Here every LoRA layer stacks the A matrices of the adapters a batch uses into one [sum r, in] matrix and
their B matrices, scaling folded in, into one [out, sum r]: x @ A^T projects every row on every adapter, a 0/1
mask keeps each row's own adapter's columns (none for a base-model row), and one more matmul adds the B side.
Masked columns contribute exact zeros, so this equals peft's path up to float rounding. The stacks are kept in
the base layer's dtype: peft keeps adapters in float32 inside a bfloat16 model, and casting every layer's input
up and its stacks down on every call made the hook cost 659 instead of 401 us per decoder layer (CPU, bfloat16,
64 rows; the layer's base matmuls take 990 us).

Serving (`prepare`, `active`) builds the stacks once, without gradients. Training (`trainable`) concatenates them
from the adapters' own parameters on every call, so autograd takes each row's loss to its own adapter alone and
all 2N adapters of an iteration train in one batch (train.py). Adapters stay peft modules either way (loading,
saving); `plain` says which adapters this handles.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F


def _lora_layers(model):
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [m for m in model.modules() if isinstance(m, BaseTunerLayer)]


class GatheredLoRA:
    """Stacked LoRA weights of one peft model, rebuilt only when the adapter set or any of its weights change."""

    def __init__(self, peft_model):
        self.peft = peft_model
        self.mask: torch.Tensor | None = None  # [rows, columns] of the batch being run, set by the caller
        self._key = None
        self._stacks: dict[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}
        self._columns: dict[str, tuple[int, int]] = {}
        self._last_dropout: tuple[torch.Tensor, torch.Tensor] | None = None  # (input, its dropout) in training

    def supported(self, names: Sequence[str]) -> bool:
        """Whether serving can stack these adapters: plain LoRA, and a pass without gradients."""
        return not (torch.is_grad_enabled() or self.peft.training) and self.plain(names)

    def plain(self, names: Sequence[str]) -> bool:
        """Whether these adapters are plain LoRA on linear layers (no DoRA, no bias, not merged)."""
        from peft.tuners.lora.layer import Linear

        for layer in _lora_layers(self.peft):
            for name in names:
                if name not in getattr(layer, "lora_A", {}) and name not in getattr(layer, "lora_embedding_A", {}):
                    continue
                if (
                    not isinstance(layer, Linear)
                    or layer.merged
                    or name in layer.lora_variant  # DoRA, aLoRA, ...
                    or layer.lora_B[name].bias is not None
                ):
                    return False
        return True

    def prepare(self, names: Sequence[str]) -> None:
        """Stack the weights of `names` (distinct internal adapter names) in every LoRA layer, unless the stacks
        already hold exactly these weights (a tensor's `_version` counts its in-place updates, e.g. training)."""
        layers = [m for m in _lora_layers(self.peft) if any(n in m.lora_A for n in names)]
        weights = [(m.lora_A[n].weight, m.lora_B[n].weight) for m in layers for n in names if n in m.lora_A]
        key = (tuple(names), tuple((id(a), a._version, id(b), b._version) for a, b in weights))
        if key == self._key:
            return
        self._key, self._stacks = None, {}  # drop the old stacks before building new ones (peak memory)
        start = self._set_columns(layers, names)
        with torch.no_grad():
            for m in layers:
                like = m.get_base_layer().weight
                a = like.new_zeros(start, m.in_features)
                b = like.new_zeros(m.out_features, start)
                for n in names:
                    if n in m.lora_A:
                        low, high = self._columns[n]
                        a[low:high] = m.lora_A[n].weight
                        b[:, low:high] = m.lora_B[n].weight * m.scaling[n]
                self._stacks[m] = (a, b.t().contiguous())
        self._key = key

    def _set_columns(self, layers, names: Sequence[str]) -> int:
        """Each adapter's [low, high) columns in the stacks; returns their width."""
        ranks = {}
        for m in layers:
            for n in names:
                if n in m.lora_A:
                    ranks.setdefault(n, m.lora_A[n].weight.shape[0])
        start, self._columns = 0, {}
        for n in names:
            self._columns[n] = (start, start + ranks.get(n, 0))
            start += ranks.get(n, 0)
        return start

    def row_mask(self, adapters: Sequence[str | None], dtype: torch.dtype | None = None) -> torch.Tensor:
        """[rows, columns] 0/1 (in the stacks' dtype unless given): row i keeps the columns of its adapter (none
        when it is None: the base model)."""
        width = max((high for _, high in self._columns.values()), default=0)
        if dtype is None:
            dtype = next(iter(self._stacks.values()))[0].dtype if self._stacks else torch.float32
        mask = torch.zeros(len(adapters), width, dtype=dtype)
        for row, name in enumerate(adapters):
            if name is not None:
                low, high = self._columns[name]
                mask[row, low:high] = 1
        return mask

    @contextmanager
    def active(self):
        """Within: a hook adds each row's adapter from the prepared stacks under `self.mask`."""
        with self._hooked(list(self._stacks), self._add_lora):
            yield self

    @contextmanager
    def trainable(self, names: Sequence[str], dropout: float):
        """Within: passes with gradients in which each row runs its own adapter of `names` (by `self.mask`, from
        `row_mask`), LoRA dropout `dropout` on every LoRA layer's input as peft applies it."""
        layers = [m for m in _lora_layers(self.peft) if any(n in m.lora_A for n in names)]
        if any(n not in m.lora_A for m in layers for n in names):
            raise ValueError("adapters trained together must wrap the same layers")
        self._key = None  # the columns change: stacks prepared for serving no longer match them
        self._set_columns(layers, names)
        self._training = (list(names), dropout)
        try:
            with self._hooked(layers, self._add_trainable_lora):
                yield self
        finally:
            self._last_dropout, self.mask = None, None

    @contextmanager
    def without_dropout(self):
        """Within `trainable`: passes without LoRA dropout (the log-probs a DPO step weighs its pairs by)."""
        names, dropout = self._training
        self._training = (names, 0.0)
        try:
            yield self
        finally:
            self._training = (names, dropout)

    def _dropped(self, x: torch.Tensor, dropout: float) -> torch.Tensor:
        """x with LoRA dropout, one mask per input tensor: q/k/v (and gate/up) read the same hidden states and
        share it. Each layer's dropout is then peft's, only not independent across layers that read the same
        input. Random masks are costly on a CPU: in a profiled bfloat16 training step they took 26% with 7 masks
        per decoder layer and 18% with these 4."""
        if not dropout:
            return x
        if self._last_dropout is None or self._last_dropout[0] is not x:
            self._last_dropout = (x, F.dropout(x, dropout))
        return self._last_dropout[1]

    @contextmanager
    def _hooked(self, modules, hook):
        """peft's own LoRA layers off (they compute the base layer alone) and `hook` after each of `modules`.
        peft's public switch (`disable_adapter`) also flips `requires_grad` on the adapters, which training code
        relies on, so the flag is set directly."""
        layers = _lora_layers(self.peft)
        before = [layer._disable_adapters for layer in layers]
        hooks = [m.register_forward_hook(hook) for m in modules]
        try:
            for layer in layers:
                layer._disable_adapters = True
            yield self
        finally:
            for layer, flag in zip(layers, before):
                layer._disable_adapters = flag
            for hook in hooks:
                hook.remove()

    def _add_lora(self, module, args, output):
        a, b_t = self._stacks[module]
        x = args[0].to(a.dtype)  # a no-op unless autocast changed the layer's input
        mask = self.mask.view(x.shape[0], *([1] * (x.dim() - 2)), -1)
        low = (x @ a.t()).mul_(mask)
        flat = output.view(-1, output.shape[-1])
        flat.addmm_(low.view(-1, low.shape[-1]).to(output.dtype), b_t.to(output.dtype))
        return output

    def _add_trainable_lora(self, module, args, output):
        names, dropout = self._training
        a = torch.cat([module.lora_A[n].weight for n in names]).to(output.dtype)
        b = torch.cat([module.lora_B[n].weight * module.scaling[n] for n in names], dim=1).to(output.dtype)
        x = self._dropped(args[0], dropout)
        mask = self.mask.to(output.dtype).view(x.shape[0], *([1] * (x.dim() - 2)), -1)
        return output + ((x.to(output.dtype) @ a.t()) * mask) @ b.t()
