"""Within-school re-randomization for randomization inference (private).

The trial randomized students within schools, so the reference distribution permutes the
assignment within each school: every permuted assignment keeps each school's number of
program students, exactly as the real lottery did. Permutations are generated in chunks of
rows (one row per permuted assignment) so memory stays bounded for any number of them.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ._typing import FloatArray, IntArray

__all__ = ["CHUNK", "within_block_permutations"]

CHUNK = 1000
"""Permuted assignments held in memory at once."""


def within_block_permutations(
    z: FloatArray,
    starts: IntArray,
    sizes: IntArray,
    n_perm: int,
    rng: np.random.Generator,
    *,
    chunk: int = CHUNK,
) -> Iterator[FloatArray]:
    """Yield ``(b, n)`` arrays of assignments permuted within blocks, ``n_perm`` rows in all.

    Parameters
    ----------
    z : ndarray, shape (n,)
        The observed assignment, rows sorted by block.
    starts, sizes : ndarray of int
        Start row and size of each block.
    n_perm : int
        Number of permuted assignments.
    rng : numpy.random.Generator
        Source of randomness (seeded by the caller).
    chunk : int
        Rows per yielded array.
    """
    done = 0
    while done < n_perm:
        b = min(chunk, n_perm - done)
        out = np.empty((b, z.size))
        for s, m in zip(starts, sizes, strict=True):
            block = np.broadcast_to(z[s : s + m], (b, m)).copy()
            out[:, s : s + m] = rng.permuted(block, axis=1)
        done += b
        yield out
