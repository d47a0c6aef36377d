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


def z_matrix(term: ReTerm) -> sp.csc_array:
    """Sparse Z_i (n, l_i p_i): row r holds z[r, :] in the column block of its level."""
    n, p = term.z.shape
    rows = np.repeat(np.arange(n), p)
    cols = (term.refs.astype(np.int64)[:, None] * p + np.arange(p)[None, :]).ravel()
    return sp.csc_array((term.z.ravel(), (rows, cols)), shape=(n, term.q))


def tiles_of(block: sp.sparray, n_levels: int, p: int) -> np.ndarray:
    """Diagonal p x p tiles (n_levels, p, p) of a block-diagonal sparse (l p, l p) matrix."""
    coo = sp.coo_array(block)
    out = np.zeros((n_levels, p, p))
    np.add.at(out, (coo.row // p, coo.row % p, coo.col % p), coo.data)
    return out


def level_pattern_nested(block: sp.sparray, p_i: int, p_j: int) -> bool:
    """True when every level of factor j meets at most one level of factor i in ``block``."""
    coo = sp.coo_array(block)
    lev_i = coo.row // p_i
    lev_j = coo.col // p_j
    pairs = np.unique(np.stack([lev_j, lev_i]), axis=1)
    return bool(np.all(np.bincount(pairs[0]) <= 1))


def from_design(terms: list[ReTerm] | tuple[ReTerm, ...], X: np.ndarray, y: np.ndarray,
                offset: np.ndarray, weights: np.ndarray) -> CrossProducts:
    """Build ``CrossProducts`` in memory from the design arrays.

    X : (n, p); y, offset, weights : (n,).
    """
    n, p = X.shape
    V = np.column_stack([X, y - offset])
    WV = V * weights[:, None]
    Zs = [z_matrix(t) for t in terms]
    WZs = [sp.csc_array(sp.diags_array(weights) @ Z) for Z in Zs]
    diag, xz, off, nested = [], [], {}, {}
    for i, (t, Z) in enumerate(zip(terms, Zs)):
        diag.append(tiles_of(Z.T @ WZs[i], t.n_levels, t.p))
        xz.append(np.ascontiguousarray((Z.T @ WV).T))
        for j in range(i):
            block = sp.csr_array(Z.T @ WZs[j])
            block.sum_duplicates()
            off[(i, j)] = block
            nested[(i, j)] = level_pattern_nested(block, t.p, terms[j].p)
    return CrossProducts(
        dims=tuple((t.n_levels, t.p) for t in terms), diag=tuple(diag), off=off, xz=tuple(xz),
        xx=V.T @ WV, n=n, p=p, sum_log_w=float(np.sum(np.log(weights))), nested=nested)
