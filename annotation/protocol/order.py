"""A session's presentation order: a seeded permutation per participant (``random``), a
balanced Latin square across participants (``latin``), or one order for all (``fixed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gazelab.annotation.protocol.machine import ProtocolError


def stimulus_order(image_ids: Sequence[str], seed: int) -> list[str]:
    """The session's presentation order: a permutation fixed by the stored seed
    (docs/running-a-session.md#the-protocol)."""
    import numpy as np

    perm = np.random.default_rng(seed).permutation(len(image_ids))
    return [image_ids[i] for i in perm]


def participant_seed(pseudonym: str, seed: int) -> int:
    """A seed of one participant's own: reproducible from the pseudonym and the study seed."""
    import hashlib

    digest = hashlib.sha256(f"{seed}:{pseudonym.strip()}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**31


def balanced_latin_row(n: int, row: int) -> list[int]:
    """Row ``row`` of a balanced Latin square (Williams design) over ``n`` conditions.

    Each position shows every item once across ``n`` rows, and each item follows every
    other equally often (first-order carry-over balanced). For odd ``n`` balance needs
    ``2n`` rows: rows ``n..2n-1`` are rows ``0..n-1`` reversed.
    """
    if n <= 0:
        return []
    first = [0]
    lo, hi = 1, n - 1
    for k in range(1, n):
        if k % 2:
            first.append(lo)
            lo += 1
        else:
            first.append(hi)
            hi -= 1
    out = [(x + row) % n for x in first]
    if n % 2 and (row // n) % 2:
        out.reverse()
    return out


def session_order(
    image_ids: Sequence[str],
    method: str,
    *,
    participant: str,
    participant_index: int,
    seed: int,
) -> tuple[list[str], int, dict[str, Any]]:
    """A new session's presentation order: ``(order, seed stored, what was done)``.

    ``random``: a permutation seeded by :func:`participant_seed` (each participant their
    own order, the same pseudonym always the same); ``latin``: the ``seed`` permutation
    rearranged by row ``participant_index`` of :func:`balanced_latin_row` (counterbalanced
    across the store's participants); ``fixed``: the ``seed`` permutation for everyone.
    """
    if method == "random":
        own = participant_seed(participant, seed)
        return stimulus_order(image_ids, own), own, {"method": method, "seed": own}
    base = stimulus_order(image_ids, seed)
    if method == "fixed":
        return base, seed, {"method": method, "seed": seed}
    if method == "latin":
        row = balanced_latin_row(len(base), participant_index)
        info = {"method": method, "seed": seed, "latin_row": participant_index}
        return [base[i] for i in row], seed, info
    raise ProtocolError(f"order {method!r}: use random, latin or fixed")
