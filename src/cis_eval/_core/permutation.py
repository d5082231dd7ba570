"""Within-school re-randomization for randomization inference (private).

The trial randomized students within schools, so the reference distribution permutes the
assignment within each school: every permuted assignment keeps each school's number of
program students, exactly as the real lottery did. Permutations are generated in chunks of
rows (one row per permuted assignment) so memory stays bounded for any number of them.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .._typing import FloatArray, IntArray

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
    chunk: int | None = None,
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
    chunk = chunk or CHUNK
    done = 0
    while done < n_perm:
        b = min(chunk, n_perm - done)
        out = np.empty((b, z.size))
        for s, m in zip(starts, sizes, strict=True):
            n1 = int(np.rint(z[s : s + m].sum()))
            if n1 in (0, m):
                out[:, s : s + m] = n1 // max(m, 1)
                continue
            # A uniformly random set of n1 of the m students: those whose random keys are
            # among the n1 smallest (a partial sort; ties have probability ~1e-16).
            keys = rng.random((b, m))
            kth = np.partition(keys, n1 - 1, axis=1)[:, n1 - 1 : n1]
            out[:, s : s + m] = keys <= kth
        done += b
        yield out
