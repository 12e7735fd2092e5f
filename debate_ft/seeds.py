"""Seeds derived from the run's seed and a step's identity, so every step (a debate chunk, a round, an adapter's
training, a bootstrap) draws its own reproducible stream whatever ran before it."""

from __future__ import annotations

import hashlib


def derive_seed(*parts) -> int:
    """A 32-bit seed from any parts with a stable repr (ints, strings, tuples of them)."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:8], 16)
