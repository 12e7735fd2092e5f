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

Inference only: adapters stay peft modules (training, loading, saving), and a pass with gradients or in
training mode goes through peft itself (`supported` says which).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import torch


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

    def supported(self, names: Sequence[str]) -> bool:
        """Whether these adapters are plain LoRA on linear layers, and the pass needs no gradients."""
        from peft.tuners.lora.layer import Linear

        if torch.is_grad_enabled() or self.peft.training:
            return False
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
        ranks = {}
        for m in layers:
            for n in names:
                if n in m.lora_A:
                    ranks.setdefault(n, m.lora_A[n].weight.shape[0])
        start, self._columns = 0, {}
        for n in names:
            self._columns[n] = (start, start + ranks.get(n, 0))
            start += ranks.get(n, 0)
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

    def row_mask(self, adapters: Sequence[str | None]) -> torch.Tensor:
        """[rows, columns] 0/1 in the stacks' dtype: row i keeps the columns of its adapter (none when it is
        None: the base model)."""
        width = max((high for _, high in self._columns.values()), default=0)
        like = next(iter(self._stacks.values()))[0] if self._stacks else torch.empty(0)
        mask = torch.zeros(len(adapters), width, dtype=like.dtype)
        for row, name in enumerate(adapters):
            if name is not None:
                low, high = self._columns[name]
                mask[row, low:high] = 1
        return mask

    @contextmanager
    def active(self):
        """Within: peft's own LoRA layers are off (they compute the base layer alone) and a hook adds each row's
        adapter from the stacks under `self.mask`. peft's public switch (`disable_adapter`) also flips
        `requires_grad` on the adapters, which training code relies on, so the flag is set directly."""
        layers = _lora_layers(self.peft)
        before = [layer._disable_adapters for layer in layers]
        hooks = [m.register_forward_hook(self._add_lora) for m in self._stacks]
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
