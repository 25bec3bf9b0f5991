"""The loop that fills a label: generate a chunk, filter it, commit what passed, until the label has
its rows (or the generator stops producing rows that pass)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

from .filters import Candidate, FilterChain
from .generators import SynthGenerator
from .journal import LabelProgress


def chunk_seed(seed: int | str, label: str, chunk: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{label}/{chunk}".encode()).digest()[:4], "little")


def fill_label(generator: SynthGenerator, chain: FilterChain, label: str, want: int, p: LabelProgress, seed: int | str,
               on_chunk: Callable[[str, int, int, list[Candidate], int, dict[str, int]], None], chunk_size: int = 256,
               max_attempts: int = 20) -> None:
    """Generate chunks of `label` until `want` of its rows passed the filters, `max_attempts` x `want`
    were generated, or 5 chunks in a row kept nothing. Each chunk is sized by the acceptance so far,
    drawn from its own seed, filtered, committed to `chain`, and handed to `on_chunk(label, chunk,
    seed, kept, generated, removed)`, which must count it in `p`."""
    while p.kept < want and p.generated < max_attempts * want and p.fruitless < 5:
        need = want - p.kept
        acceptance = p.kept / p.generated if p.generated else 1.0
        n = min(chunk_size, max(1, math.ceil(1.1 * need / max(acceptance, 0.05))))
        seed_k = chunk_seed(seed, label, p.chunks)
        candidates = generator.candidates(label, n, seed_k)
        kept, removed = chain(candidates)
        kept = kept[:need]
        chain.commit(kept)
        on_chunk(label, p.chunks, seed_k, kept, len(candidates), removed)  # a generator may write fewer than n
