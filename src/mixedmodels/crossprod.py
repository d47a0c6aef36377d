"""The cross-product blocks A of [Z X y]' W [Z X y] (``algorithm.md`` sections 3, 4 and 9).

After this one pass over the data nothing in the optimizer touches an n-length array: the
objective at any theta is read off a Cholesky factor of blocks built from ``CrossProducts``.

Blocks, for random-effects terms i > j and the fixed block x = [X, y - offset]:

- ``diag[i]``: Z_i' W Z_i, block diagonal, stored as tiles (l_i, p_i, p_i);
- ``off[(i, j)]``: Z_i' W Z_j, scipy CSR (q_i, q_j), one p_i x p_j tile per observed level pair;
- ``xz[j]``: [X y]' W Z_j, dense (p + 1, q_j);
- ``xx``: [X y]' W [X y], dense (p + 1, p + 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .terms import ReTerm

# Rows per chunk of the grouped sums (bounds their temporaries at 8 MB a column).
CHUNK = 1 << 20


@dataclass(frozen=True, eq=False)
class CrossProducts:
    """All the data a linear mixed model's objective needs (see module docstring).

    dims : per term (n_levels, p_i); n : rows; p : columns of X; sum_log_w : sum of log weights;
    nested[(i, j)] : True when factor j (j < i) is nested in factor i.
    """

    dims: tuple[tuple[int, int], ...]
    diag: tuple[np.ndarray, ...]
    off: dict
    xz: tuple[np.ndarray, ...]
    xx: np.ndarray
    n: int
    p: int
    sum_log_w: float
    nested: dict

    @property
    def k(self) -> int:
        return len(self.dims)


def _columns(term: ReTerm) -> list[np.ndarray | None]:
    """Columns of z, with None for a column of ones (saves a multiplication per row)."""
    return [None if np.all(col == 1.0) else col for col in term.z.T]


def _times(w: np.ndarray | None, *cols: np.ndarray | None) -> np.ndarray | None:
    """The row-wise product of w and cols (None: a column of ones; all None gives None)."""
    out = w
    for col in cols:
        if col is not None:
            out = col if out is None else out * col
    return out


def _grouped_sum(codes: np.ndarray, n_codes: int, w: np.ndarray | None, *cols) -> np.ndarray:
    """(n_codes,) sums of w * cols over rows grouped by ``codes`` (w None and None columns: 1).

    Taken CHUNK rows at a time: np.bincount converts its codes to int64 and the product of
    the columns is a new array, and per chunk both stay small (at n = 1e7 each would be 80 MB).
    """
    out = np.zeros(n_codes)
    for start in range(0, codes.size, CHUNK):
        part = slice(start, start + CHUNK)
        weights = _times(None if w is None else w[part], *(c if c is None else c[part]
                                                          for c in cols))
        out += np.bincount(codes[part], weights=weights, minlength=n_codes)
    return out


def _tile_sums(codes: np.ndarray, n_codes: int, w: np.ndarray | None, zi: list, zj: list
               ) -> np.ndarray:
    """(n_codes, p_i, p_j) sums over rows of w z_i z_j' grouped by ``codes`` (w None: 1)."""
    out = np.empty((n_codes, len(zi), len(zj)))
    for a, ca in enumerate(zi):
        for b, cb in enumerate(zj):
            out[:, a, b] = _grouped_sum(codes, n_codes, w, ca, cb)
    return out


def level_pattern_nested(block: sp.sparray, p_i: int, p_j: int) -> bool:
    """True when every level of factor j meets at most one level of factor i in ``block``.

    O(nnz) with no sort: in CSC order the entries come grouped by column, hence by level of
    j, and a level is nested when the smallest and largest level of i it meets agree.
    """
    csc = sp.csc_array(block)
    if csc.nnz == 0:
        return True
    counts = np.diff(csc.indptr)
    lev_i = csc.indices // p_i
    lev_j = np.repeat(np.arange(csc.shape[1]) // p_j, counts)
    starts = np.flatnonzero(np.r_[True, lev_j[1:] != lev_j[:-1]])
    return bool(np.array_equal(np.minimum.reduceat(lev_i, starts),
                               np.maximum.reduceat(lev_i, starts)))


def _pair_codes(ti: ReTerm, tj: ReTerm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed (level_i, level_j) pairs and each row's pair number.

    Returns (li, lj, codes): the pairs' levels (m,) each and codes (n,) in 0..m-1. While the
    grid of all level pairs is not much larger than n, the pairs are numbered through a
    count over that grid (no sort of an n-length key); otherwise by np.unique.
    """
    grid = ti.n_levels * tj.n_levels
    dtype = np.int32 if grid < 2**31 else np.int64
    key = ti.refs.astype(dtype) * dtype(tj.n_levels)
    key += tj.refs
    if grid <= 2 * key.size:
        seen = np.zeros(grid, dtype=bool)
        seen[key] = True
        pairs = np.flatnonzero(seen)
        slot = np.cumsum(seen, dtype=dtype) - 1
        codes = slot[key]
    else:
        pairs, codes = np.unique(key, return_inverse=True)
    del key
    return pairs // tj.n_levels, pairs % tj.n_levels, codes


def _off_block(ti: ReTerm, tj: ReTerm, w: np.ndarray | None, zi: list, zj: list
               ) -> sp.csr_array:
    """Z_i' W Z_j (q_i, q_j) from grouped sums over the observed (level_i, level_j) pairs."""
    li, lj, codes = _pair_codes(ti, tj)
    sums = _tile_sums(codes, li.size, w, zi, zj)
    rows = (li[:, None, None] * ti.p + np.arange(ti.p)[None, :, None])
    cols = (lj[:, None, None] * tj.p + np.arange(tj.p)[None, None, :])
    rows, cols = np.broadcast_arrays(rows, cols)
    return sp.csr_array((sums.ravel(), (rows.ravel(), cols.ravel())), shape=(ti.q, tj.q))


def from_design(terms: list[ReTerm] | tuple[ReTerm, ...], X: np.ndarray, y: np.ndarray,
                offset: np.ndarray, weights: np.ndarray) -> CrossProducts:
    """Build ``CrossProducts`` in one pass of grouped sums (``algorithm.md`` section 9).

    X : (n, p); y, offset, weights : (n,), offset and weights possibly zero-stride views of
    a constant. Every block is a sum over rows, so the same code can run per partition of a
    larger-than-memory table and the partial blocks be added. No (n, p + 1) copy of [X y] is
    made: the sums run column by column, so the only n-length temporaries are one product
    column at a time.
    """
    n, p = X.shape
    yc = y - offset if np.any(offset) else y
    unweighted = bool(np.all(weights == 1.0))
    w = None if unweighted else weights
    V = [X[:, c] for c in range(p)] + [yc]
    zcols = [_columns(t) for t in terms]
    diag, xz, off, nested = [], [], {}, {}
    for i, t in enumerate(terms):
        diag.append(_tile_sums(t.refs, t.n_levels, w, zcols[i], zcols[i]))
        block = np.empty((p + 1, t.n_levels, t.p))
        for a, za in enumerate(zcols[i]):
            for c in range(p + 1):
                block[c, :, a] = _grouped_sum(t.refs, t.n_levels, w, V[c], za)
        xz.append(block.reshape(p + 1, t.q))
        for j in range(i):
            off[(i, j)] = _off_block(t, terms[j], w, zcols[i], zcols[j])
            nested[(i, j)] = level_pattern_nested(off[(i, j)], t.p, terms[j].p)
    xx = np.empty((p + 1, p + 1))
    if w is None:
        xx[:p, :p] = X.T @ X
        xx[:p, p] = X.T @ yc
    else:
        xx[:p, :p] = X.T @ (X * w[:, None])
        xx[:p, p] = X.T @ (w * yc)
    xx[p, :p] = xx[:p, p]
    xx[p, p] = yc @ yc if w is None else yc @ (w * yc)
    return CrossProducts(
        dims=tuple((t.n_levels, t.p) for t in terms), diag=tuple(diag), off=off, xz=tuple(xz),
        xx=xx, n=n, p=p, sum_log_w=0.0 if unweighted else float(np.sum(np.log(weights))),
        nested=nested)
