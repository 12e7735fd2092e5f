"""Continuous batching over a slot KV cache, with top-candidate nucleus sampling.

`model.generate` keeps every row until the longest one ends, and a batch whose finished rows merely leave
still shrinks to a few rows at its tail: small matmuls, far below the CPU's matmul peak. Here a batch has
`batch_size` slots; when a row ends (end-of-sequence or max_new_tokens), the next waiting prompt is prefilled
and takes its slot, so the batch stays full until the queue runs dry. Only then do finished rows leave.

The KV cache is one preallocated buffer per layer, [slots, kv heads, columns, head dim]: a step writes one column
instead of concatenating the whole cache (DynamicCache copies all of it every step). All slots share the column
clock; a newcomer's prompt is right-aligned at the current column with its left columns masked out, and when
the clock reaches the end, the columns no live row uses any more are dropped by one shift.

Prefill work is shared between rows that run the same weights (`groups`: in a debate, rows of one adapter). The
prompts' common prefix (the chat template's system prompt) is prefilled once per group, and each admission prefills
only its newcomers' suffixes after it; identical prompts admitted together (every agent's first-round question)
are prefilled once and their keys, values and logits copied, each row then sampling its own tokens.

Nucleus sampling looks only at the top candidates, falling back to a full sort for the rare flat row.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Sequence

import torch
from transformers import DynamicCache
from transformers.cache_utils import Cache, DynamicLayer

CANDIDATES = 64  # nucleus candidates per row; a row whose nucleus is wider sorts its whole vocabulary
SLACK = 32  # spare columns: the cache is shifted left at most once every SLACK steps
MIN_SHARED = 2  # the shortest common prompt prefix worth a forward pass of its own

# forward(input_ids, attention_mask, position_ids, cache, rows) -> last-position logits [batch, vocab]; `rows`
# are the request indices of the batch rows (so the caller can pick each row's adapter)
Forward = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Cache, torch.Tensor], torch.Tensor]


def nucleus_sample(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator) -> torch.Tensor:
    """One token per row (on the CPU): greedy at temperature 0, else sampled from the smallest set of most likely
    tokens whose probability reaches top_p (the same set as transformers' TopPLogitsWarper). The logits stay on
    their device; only each row's top candidates move to the CPU, where the seeded generator draws."""
    if temperature == 0:
        return logits.argmax(-1).cpu()
    probs = (logits.float() / temperature).softmax(-1)
    top, index = (t.cpu() for t in probs.topk(min(CANDIDATES, probs.shape[-1]), dim=-1))
    narrow = top.sum(-1) >= top_p
    tokens = torch.empty(len(probs), dtype=torch.long)
    if narrow.any():
        tokens[narrow] = _draw(top[narrow], index[narrow], top_p, generator)
    if not narrow.all():  # the nucleus reaches beyond the candidates: sort those rows' whole vocabulary
        wide = probs[(~narrow).to(probs.device)].cpu()
        tokens[~narrow] = _draw(*wide.sort(-1, descending=True), top_p, generator)
    return tokens


def _draw(ranked: torch.Tensor, order: torch.Tensor, top_p: float, generator: torch.Generator) -> torch.Tensor:
    """A token per row from probabilities in descending order (`order`: their token ids), within the nucleus."""
    in_nucleus = (ranked.cumsum(-1) - ranked) < top_p  # the mass ranked above a token is still short of top_p
    choice = torch.multinomial(ranked * in_nucleus, 1, generator=generator)
    return order.gather(1, choice)[:, 0]


class SlotLayer(DynamicLayer):
    """One layer's keys and values as views of preallocated buffers; `update` writes the new columns in place."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int):
        super().__init__()
        self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True
        self.set(keys, values, length)

    def set(self, keys: torch.Tensor, values: torch.Tensor, length: int) -> None:
        self.key_buffer, self.value_buffer, self.length = keys, values, length
        self.keys, self.values = keys[:, :, :length], values[:, :, :length]

    def update(self, key_states, value_states, *args, **kwargs):
        end = self.length + key_states.shape[-2]
        self.key_buffer[:, :, self.length : end] = key_states
        self.value_buffer[:, :, self.length : end] = value_states
        self.set(self.key_buffer, self.value_buffer, end)
        return self.keys, self.values


class Slots:
    """The running batch: per slot its request (-1: free), next position, first used column, generated tokens."""

    def __init__(self, prefill: DynamicCache, slots: int, columns: int, device):
        self.columns = columns
        self.length = 0  # columns in use, shared by all slots
        self.request = torch.full((slots,), -1, dtype=torch.long, device=device)
        self.position = torch.zeros(slots, dtype=torch.long, device=device)
        self.start = torch.zeros(slots, dtype=torch.long)
        self.mask = torch.zeros(slots, columns, dtype=torch.long, device=device)
        layers = []
        for layer in prefill.layers:
            shape = (slots, layer.keys.shape[1], columns, layer.keys.shape[3])
            layers.append(SlotLayer(layer.keys.new_zeros(shape), layer.values.new_zeros(shape), 0))
        self.cache = Cache(layers=layers)

    def live(self) -> torch.Tensor:
        return (self.request >= 0).nonzero()[:, 0]

    def free(self) -> list[int]:
        return (self.request < 0).nonzero()[:, 0].tolist()

    def _shift(self, offset: int) -> None:
        """Move every slot's columns `offset` to the right (negative: to the left, dropping the first ones)."""
        keep = self.length - max(0, -offset)
        source = slice(max(0, -offset), max(0, -offset) + keep)
        target = slice(max(0, offset), max(0, offset) + keep)
        for layer in self.cache.layers:
            for buffer in (layer.key_buffer, layer.value_buffer):
                buffer[:, :, target] = buffer[:, :, source].clone()
        self.mask[:, target] = self.mask[:, source].clone()
        if offset > 0:
            self.mask[:, :offset] = 0
        self.start += offset
        self._resize(self.length + offset)

    def _resize(self, length: int) -> None:
        self.length = length
        for layer in self.cache.layers:
            layer.set(layer.key_buffer, layer.value_buffer, length)

    def advance(self) -> None:
        """After a step: the clock and every slot's position move one column on."""
        self._resize(self.length + 1)
        self.position += 1

    def make_room(self) -> None:
        """Before a step: when the column clock is at the end, drop the columns every live row has left behind."""
        if self.length >= self.columns:
            self._shift(-int(self.start[self.live().cpu()].min()))

    def admit(self, slots: list[int], requests: torch.Tensor, prefill: DynamicCache, mask: torch.Tensor) -> None:
        """Copy a prefill of `requests` (left-padded to a common width) into `slots`, right-aligned at the clock."""
        width = mask.shape[1]
        if width > self.length:
            self._shift(width - self.length)
        index = torch.tensor(slots, device=self.request.device)
        low = self.length - width
        for layer, new in zip(self.cache.layers, prefill.layers):
            layer.key_buffer[index, :, low : self.length] = new.keys
            layer.value_buffer[index, :, low : self.length] = new.values
        self.mask[index] = 0
        self.mask[index, low : self.length] = mask
        self.start[index.cpu()] = low
        self.position[index] = mask.sum(-1)
        self.request[index] = requests

    def compact(self) -> None:
        """Drop the free slots from the batch (once nothing waits: the tail of the run)."""
        live = self.live()
        for layer in self.cache.layers:
            layer.set(layer.key_buffer[live], layer.value_buffer[live], self.length)
        self.request, self.position, self.mask = self.request[live], self.position[live], self.mask[live]
        self.start = self.start[live.cpu()]


@torch.inference_mode()
def sample(
    forward: Forward,
    prompts: Sequence[Sequence[int]],
    batch_size: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    stop_token_ids: Collection[int],
    pad_token_id: int,
    seed: int,
    device: torch.device | str = "cpu",
    progress: Callable[[int], None] | None = None,
    groups: Sequence[Hashable] | None = None,
    observe: Callable[[list[int], torch.Tensor], None] | None = None,
) -> list[list[int]]:
    """Generated token ids per prompt (the stop token included when reached), in the order of `prompts`.
    `groups`: one key per prompt, equal for rows that run the same weights (None: all do); prefill work is shared
    only within a group. `observe(requests, logits)`, if given, sees each admission's first-token logits (scoring
    a reply's first token reads them)."""
    draws = Draws(len(prompts), max_new_tokens, temperature, top_p, stop_token_ids, seed, progress)
    group = list(groups) if groups is not None else [None] * len(prompts)
    columns = max((len(p) for p in prompts), default=0) + max_new_tokens + SLACK
    decoder = Decoder(forward, prompts, group, pad_token_id, columns, device, draws)
    # pop() = shortest; identical prompts are adjacent, so they tend to be admitted together
    waiting = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), decoder.key[i][1]), reverse=True)
    slots: Slots | None = None
    while waiting or (slots is not None and len(slots.live())):
        free = list(range(min(batch_size, len(prompts)))) if slots is None else slots.free()
        if waiting and free:  # prefill newcomers into the free slots; their first token comes from the prefill
            requests = [waiting.pop() for _ in free[: len(waiting)]]
            slots = decoder.admit(requests, free, slots, observe)
            continue  # refill the slots that just finished, if any
        decoder.step(slots)
    return draws.generated


class Draws:
    """Each request's generated tokens, drawn one per row from a seeded generator, and when it is done."""

    def __init__(
        self,
        n: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop_token_ids: Collection[int],
        seed: int,
        progress: Callable[[int], None] | None,
    ):
        self.generated: list[list[int]] = [[] for _ in range(n)]
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.stop_token_ids, self.progress = stop_token_ids, progress

    def record(self, requests: list[int], logits: torch.Tensor) -> list[bool]:
        """Sample one token per row; whether each row is done."""
        tokens = nucleus_sample(logits, self.temperature, self.top_p, self.generator).tolist()
        done = []
        for request, token in zip(requests, tokens):
            self.generated[request].append(token)
            done.append(token in self.stop_token_ids or len(self.generated[request]) >= self.max_new_tokens)
        if self.progress:
            self.progress(sum(done))
        return done


class Decoder:
    """Prefills newcomers (after the prompts' shared prefix, prefilled once per group) and steps the batch."""

    def __init__(self, forward: Forward, prompts, group: list, pad_token_id: int, columns: int, device, draws: Draws):
        self.forward, self.prompts, self.group, self.pad, self.device, self.draws = (
            forward, prompts, group, pad_token_id, device, draws
        )  # fmt: skip
        self.columns = columns  # of the slot cache: the longest prompt, max_new_tokens and SLACK
        self.key = [(g, tuple(p)) for g, p in zip(group, prompts)]
        shared = _shared_prefix(prompts) if len(set(group)) < len(prompts) else 0  # worth it if a group has 2 rows
        self.shared = shared if shared >= MIN_SHARED else 0
        if self.shared:
            self._prefill_prefix()

    def _prefill_prefix(self) -> None:
        """The shared prefix's keys and values, one row per group, computed under a request of that group."""
        representative = {g: i for i, g in enumerate(self.group)}
        self.prefix_row = {g: row for row, g in enumerate(representative)}
        ids = torch.tensor([self.prompts[0][: self.shared]] * len(representative), device=self.device)
        self.prefix = DynamicCache()
        positions = torch.arange(self.shared, device=self.device).expand_as(ids)
        rows = torch.tensor([*representative.values()], device=self.device)
        self.forward(ids, torch.ones_like(ids), positions, self.prefix, rows)

    def admit(self, requests: list[int], free: list[int], slots: Slots | None, observe) -> Slots:
        """Prefill `requests` into the `free` slots (None: the first admission makes them); identical prompts of one
        group are prefilled once, then copied. The slots, with the newcomers' first tokens drawn."""
        distinct: dict[tuple, int] = {}
        copy = [distinct.setdefault(self.key[i], len(distinct)) for i in requests]
        unique = [requests[copy.index(row)] for row in range(len(distinct))]
        cache = DynamicCache()
        if self.shared:
            index = torch.tensor([self.prefix_row[self.group[i]] for i in unique], device=self.device)
            for number, layer in enumerate(self.prefix.layers):
                cache.update(layer.keys[index], layer.values[index], number)
        ids, mask = _left_pad([self.prompts[i][self.shared :] for i in unique], self.pad, self.device)
        positions = (self.shared + mask.cumsum(-1) - 1).clamp(min=self.shared)
        mask = torch.cat([mask.new_ones(len(unique), self.shared), mask], 1)  # the prefix columns come first
        logits = self.forward(ids, mask, positions, cache, torch.tensor(unique, device=self.device))
        copy = torch.tensor(copy, device=self.device)
        if observe:
            observe(requests, logits[copy])
        cache.reorder_cache(copy)
        if slots is None:
            slots = Slots(cache, len(free), self.columns, self.device)
        slots.admit(free[: len(requests)], torch.tensor(requests, device=self.device), cache, mask[copy])
        for slot, done in zip(free, self.draws.record(requests, logits[copy])):
            if done:
                slots.request[slot] = -1
        return slots

    def step(self, slots: Slots) -> None:
        """One token for every live slot."""
        if len(slots.live()) < len(slots.request):
            slots.compact()
        slots.make_room()
        tokens = torch.tensor([self.draws.generated[r][-1] for r in slots.request.tolist()], device=self.device)
        slots.mask[:, slots.length] = 1
        logits = self.forward(
            tokens[:, None], slots.mask[:, : slots.length + 1], slots.position[:, None], slots.cache, slots.request
        )
        slots.advance()
        for slot, done in enumerate(self.draws.record(slots.request.tolist(), logits)):
            if done:
                slots.request[slot] = -1


def _shared_prefix(prompts: Sequence[Sequence[int]]) -> int:
    """The length of the prompts' longest common prefix, short of the shortest prompt: every row keeps a token of
    its own to prefill, whose logits give its first generated token."""
    limit = min((len(p) for p in prompts), default=1) - 1
    length = 0
    while length < limit and len({p[length] for p in prompts}) == 1:
        length += 1
    return length


def _left_pad(rows: list[Sequence[int]], pad: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
    return ids.to(device), mask.to(device)
