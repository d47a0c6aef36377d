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

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from .terms import ReTerm

# Rows per chunk of the grouped sums (bounds their temporaries at 8 MB a column).
CHUNK = 1 << 20
# Rows per chunk of the weighted X'W[X y] (bounds the weighted copy of X at 0.5 MB a column).
XX_CHUNK = 1 << 16


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

    def merge(self, other: "CrossProducts") -> "CrossProducts":
        """The blocks of the rows of ``self`` and ``other`` together (see ``merge``)."""
        return merge([self, other])

    @classmethod
    def from_partials(cls, parts) -> "CrossProducts":
        """The blocks of all rows from per-chunk blocks (see ``merge``)."""
        return merge(list(parts))

    def select_x(self, keep: np.ndarray) -> "CrossProducts":
        """The same blocks for the columns ``keep`` (p',) of X only (y stays last)."""
        rows = np.append(np.asarray(keep, dtype=np.intp), self.p)
        return replace(self, xz=tuple(np.ascontiguousarray(b[rows]) for b in self.xz),
                       xx=np.ascontiguousarray(self.xx[np.ix_(rows, rows)]), p=len(rows) - 1)


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


class _OffPattern:
    """The fixed sparsity pattern of Z_i' W Z_j: observed level pairs, each row's pair number and
    the CSR structure, so that a refill with new weights is grouped sums plus one permutation.

    codes : (n,) pair number of each row; order : (m p_i p_j,) position in the CSR data of each
    tile entry (tiles in pair order, entries row-major); indices, indptr : the CSR structure.
    """

    def __init__(self, ti: ReTerm, tj: ReTerm):
        li, lj, self.codes = _pair_codes(ti, tj)
        self.n_pairs = li.size
        self.shape = (ti.q, tj.q)
        rows = (li[:, None, None] * ti.p + np.arange(ti.p)[None, :, None])
        cols = (lj[:, None, None] * tj.p + np.arange(tj.p)[None, None, :])
        rows, cols = (a.ravel() for a in np.broadcast_arrays(rows, cols))
        # Pairs are unique, so each (row, col) occurs once: CSR order is a lexicographic sort.
        perm = np.lexsort((cols, rows))
        self.order = np.empty_like(perm)
        self.order[perm] = np.arange(perm.size)
        self.indices = cols[perm].astype(np.int32)
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=ti.q))]
                                     ).astype(np.int32)

    def block(self, sums: np.ndarray) -> sp.csr_array:
        """The (q_i, q_j) block from tile sums (m, p_i, p_j)."""
        data = np.empty(sums.size)
        data[self.order] = sums.ravel()
        return sp.csr_array((data, self.indices, self.indptr), shape=self.shape)


class CrossProductPlan:
    """What the grouped sums of ``[Z X y]' W [Z X y]`` need besides the values: per term the
    columns of z (None for ones), per pair of terms the level-pair pattern and the nestedness.

    Built once per model; ``fill`` then makes ``CrossProducts`` for any X, response, offset and
    weights on the same rows (a GLMM refills A with new working weights at every PIRLS step;
    the blocks keep one pattern, so a factor planned on one fill serves every later fill).
    """

    def __init__(self, terms: list[ReTerm] | tuple[ReTerm, ...], indicators: bool = False):
        self.terms = tuple(terms)
        self.zcols = [_columns(t) for t in self.terms]
        self.off: dict = {}
        self.nested: dict = {}
        for i, t in enumerate(self.terms):
            for j in range(i):
                pattern = _OffPattern(t, self.terms[j])
                self.off[(i, j)] = pattern
                block = pattern.block(np.ones((pattern.n_pairs, t.p, self.terms[j].p)))
                self.nested[(i, j)] = level_pattern_nested(block, t.p, self.terms[j].p)
        # Sparse (groups x n) indicator matrices: a refill (PIRLS) is then a few sparse
        # products instead of one bincount per pair of columns. They cost 12 bytes a row per
        # term and pair of terms, so an LMM (filled once, maybe at 1e7 rows) does without.
        self.indicators = None
        if indicators:
            self.indicators = ([_indicator(t.refs, t.n_levels) for t in self.terms],
                                {key: _indicator(pat.codes, pat.n_pairs)
                                 for key, pat in self.off.items()})

    def _sums_by_bincount(self, X, yc, w):
        """diag, xz, off blocks by chunked bincounts (no temporaries longer than a chunk)."""
        terms, zcols = self.terms, self.zcols
        p = X.shape[1]
        V = [X[:, c] for c in range(p)] + [yc]
        diag, xz, off = [], [], {}
        for i, t in enumerate(terms):
            diag.append(_tile_sums(t.refs, t.n_levels, w, zcols[i], zcols[i]))
            block = np.empty((p + 1, t.n_levels, t.p))
            for a, za in enumerate(zcols[i]):
                for c in range(p + 1):
                    block[c, :, a] = _grouped_sum(t.refs, t.n_levels, w, V[c], za)
            xz.append(block.reshape(p + 1, t.q))
            for j in range(i):
                pattern = self.off[(i, j)]
                off[(i, j)] = pattern.block(_tile_sums(pattern.codes, pattern.n_pairs, w,
                                                       zcols[i], zcols[j]))
        return diag, xz, off

    def _sums_by_indicators(self, X, yc, w):
        """diag, xz, off blocks as products of the sparse indicators with product columns."""
        terms, zcols = self.terms, self.zcols
        S_terms, S_pairs = self.indicators
        p = X.shape[1]
        wV = np.column_stack([X, yc]) if w is None else np.column_stack([X, yc]) * w[:, None]
        ones = np.ones(yc.shape[0]) if w is None else w
        diag, xz, off = [], [], {}
        for i, t in enumerate(terms):
            S = S_terms[i]
            tiles = np.empty((t.n_levels, t.p, t.p))
            block = np.empty((t.n_levels, t.p, p + 1))
            for a, za in enumerate(zcols[i]):
                wa = ones if za is None else ones * za
                for b in range(a + 1):
                    zb = zcols[i][b]
                    tiles[:, a, b] = tiles[:, b, a] = S @ (wa if zb is None else wa * zb)
                block[:, a, :] = S @ (wV if za is None else wV * za[:, None])
            diag.append(tiles)
            xz.append(np.ascontiguousarray(block.transpose(2, 0, 1)).reshape(p + 1, t.q))
            for j in range(i):
                pattern = self.off[(i, j)]
                sums = np.empty((pattern.n_pairs, t.p, terms[j].p))
                for a, za in enumerate(zcols[i]):
                    wa = ones if za is None else ones * za
                    for b, zb in enumerate(zcols[j]):
                        sums[:, a, b] = S_pairs[(i, j)] @ (wa if zb is None else wa * zb)
                off[(i, j)] = pattern.block(sums)
        return diag, xz, off

    def fill(self, X: np.ndarray, y: np.ndarray, offset: np.ndarray, weights: np.ndarray,
             sum_log_w: float | None = None) -> "CrossProducts":
        """``CrossProducts`` of these terms with X (n, p), y, offset, weights (n,) each.

        offset and weights may be zero-stride views of a constant. No (n, p + 1) copy of
        [X y] is made: the sums run column by column, so the only n-length temporaries are one
        product column at a time. ``sum_log_w`` overrides sum(log weights) (a GLMM's objective
        does not use it).
        """
        terms = self.terms
        n, p = X.shape
        yc = y - offset if np.any(offset) else y
        unweighted = bool(np.all(weights == 1.0))
        w = None if unweighted else weights
        if self.indicators is not None:
            diag, xz, off = self._sums_by_indicators(X, yc, w)
        else:
            diag, xz, off = self._sums_by_bincount(X, yc, w)
        xx = np.zeros((p + 1, p + 1))
        if w is None:
            xx[:p, :p] = X.T @ X
            xx[:p, p] = X.T @ yc
            xx[p, p] = yc @ yc
        else:
            # X' W [X y] by row chunks: no (n, p) weighted copy of X.
            for start in range(0, n, XX_CHUNK):
                part = slice(start, start + XX_CHUNK)
                Xw = X[part] * w[part, None]
                xx[:p, :p] += X[part].T @ Xw
                xx[:p, p] += Xw.T @ yc[part]
                xx[p, p] += yc[part] @ (w[part] * yc[part])
        xx[p, :p] = xx[:p, p]
        if sum_log_w is None:
            sum_log_w = 0.0 if unweighted else float(np.sum(np.log(weights)))
        return CrossProducts(
            dims=tuple((t.n_levels, t.p) for t in terms), diag=tuple(diag), off=off,
            xz=tuple(xz), xx=xx, n=n, p=p, sum_log_w=sum_log_w, nested=dict(self.nested))


def _indicator(codes: np.ndarray, n_groups: int) -> sp.csr_array:
    """(n_groups, n) sparse matrix with a one in row codes[r] of column r."""
    n = codes.shape[0]
    order = np.argsort(codes, kind="stable").astype(np.int32)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_groups))])
    return sp.csr_array((np.ones(n), order, indptr.astype(np.int64)), shape=(n_groups, n))


def from_design(terms: list[ReTerm] | tuple[ReTerm, ...], X: np.ndarray, y: np.ndarray,
                offset: np.ndarray, weights: np.ndarray) -> CrossProducts:
    """Build ``CrossProducts`` in one pass of grouped sums (``algorithm.md`` section 9).

    X : (n, p); y, offset, weights : (n,). Every block is a sum over rows, so the same code can
    run per partition of a larger-than-memory table and the partial blocks be added.
    """
    return CrossProductPlan(terms).fill(X, y, offset, weights)


def off_block(li: np.ndarray, lj: np.ndarray, tiles: np.ndarray, shape: tuple[int, int]
              ) -> sp.csr_array:
    """Z_i' W Z_j (q_i, q_j) from its observed level pairs: levels li, lj (m,) of distinct
    pairs and their tile sums (m, p_i, p_j). A pair whose tile sums to 0 stays a stored entry:
    the pattern, not the values, says which levels meet (nestedness, and the same block as
    ``from_design``). Built straight in CSR order (pairs sorted by (li, lj) first, unless they
    come sorted): no COO copy and no per-row sort, which matter at 1e7 pairs."""
    m, p_i, p_j = tiles.shape
    # Codes stay in their integer type (int32 from the sources: 40 MB less per 1e7 pairs);
    # only the sort key needs 64 bits.
    li, lj = np.asarray(li), np.asarray(lj)
    key = li.astype(np.int64) * (shape[1] // max(p_j, 1)) + lj
    if m > 1 and not np.all(key[1:] > key[:-1]):
        order = np.argsort(key, kind="stable")
        li, lj, tiles = li[order], lj[order], tiles[order]
    del key
    n_i = shape[0] // max(p_i, 1)
    per_level = np.bincount(li, minlength=n_i)                   # pairs per level of i
    row_counts = np.repeat(per_level * p_j, p_i)                 # entries per row of the block
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(row_counts, out=indptr[1:])
    index_type = np.int32 if max(shape[1], m * p_i * p_j) < 2**31 else np.int64
    if p_i == 1:          # sorted pairs of a one-column term are already in CSR order
        indices = (lj[:, None].astype(index_type) * p_j
                   + np.arange(p_j, dtype=index_type)).ravel()
        return sp.csr_array((tiles.reshape(-1), indices, indptr.astype(index_type)),
                            shape=shape)
    first_pair = np.concatenate([[0], np.cumsum(per_level)])[:-1]  # first pair of each level
    # entry (pair k, a, b) sits in row li*p_i + a, after the earlier pairs of its level
    offset = (np.arange(m) - first_pair[li]) * p_j
    pos = (indptr[:-1].reshape(n_i, p_i)[li][:, :, None] + offset[:, None, None]
           + np.arange(p_j)[None, None, :])
    data = np.empty(m * p_i * p_j)
    indices = np.empty(m * p_i * p_j, dtype=index_type)
    data[pos.ravel()] = tiles.ravel()
    indices[pos.ravel()] = np.broadcast_to((lj[:, None] * p_j + np.arange(p_j))[:, None, :],
                                           (m, p_i, p_j)).ravel()
    return sp.csr_array((data, indices, indptr.astype(index_type)), shape=shape)


def _add_blocks(a: sp.sparray, b: sp.sparray) -> sp.csr_array:
    """a + b for sparse blocks of one shape; an entry stored in either stays stored.

    scipy's sum drops entries that cancel to 0, so the pattern is summed as well (ones never
    cancel); only when the two differ are the values spread onto the pattern."""
    a, b = sp.csr_array(a), sp.csr_array(b)
    total = a + b
    pattern = _ones(a) + _ones(b)
    if total.nnz == pattern.nnz:
        return total
    keys = np.repeat(np.arange(pattern.shape[0]), np.diff(pattern.indptr)) * pattern.shape[1]
    keys += pattern.indices
    found = (np.repeat(np.arange(total.shape[0]), np.diff(total.indptr)) * total.shape[1]
             + total.indices)
    data = np.zeros(pattern.nnz)
    data[np.searchsorted(keys, found)] = total.data
    return sp.csr_array((data, pattern.indices, pattern.indptr), shape=pattern.shape)


def _ones(block: sp.csr_array) -> sp.csr_array:
    """The pattern of a CSR block (explicit zeros included) with every value 1."""
    if not block.has_canonical_format:
        block = block.copy()
        block.sum_duplicates()
    return sp.csr_array((np.ones(block.nnz), block.indices, block.indptr), shape=block.shape)


def merge(parts: list[CrossProducts]) -> CrossProducts:
    """``CrossProducts`` of the union of disjoint row sets from those of each set.

    Every block is a sum over rows (``algorithm.md`` section 9), so the blocks of all rows are
    the sums of the parts' blocks; the parts must share terms (dims, with the same levels in
    the same order) and X's columns. Nestedness is read again from the summed pattern: a
    level of factor j may meet one level of factor i in one part and another in the next.
    Parts are added pairwise in a tree, so the rounding grows with log(parts).

    Parameters
    ----------
    parts : list of CrossProducts, at least one.

    Returns
    -------
    CrossProducts
    """
    if not parts:
        raise ValueError("merge needs at least one CrossProducts")
    first = parts[0]
    for other in parts[1:]:
        if other.dims != first.dims or other.p != first.p:
            raise ValueError(f"cannot merge cross-products of different models: terms "
                             f"{other.dims} and {first.dims}, p = {other.p} and {first.p}")
    if len(parts) == 1:
        return first
    while len(parts) > 1:
        parts = [_add_two(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    total = parts[0]
    nested = {key: level_pattern_nested(block, total.dims[key[0]][1], total.dims[key[1]][1])
              for key, block in total.off.items()}
    return replace(total, nested=nested)


def _add_two(a: CrossProducts, b: CrossProducts) -> CrossProducts:
    return CrossProducts(
        dims=a.dims, diag=tuple(x + y for x, y in zip(a.diag, b.diag)),
        off={key: _add_blocks(a.off[key], b.off[key]) for key in a.off},
        xz=tuple(x + y for x, y in zip(a.xz, b.xz)), xx=a.xx + b.xx, n=a.n + b.n, p=a.p,
        sum_log_w=a.sum_log_w + b.sum_log_w, nested={})


def from_chunks(terms: list[ReTerm] | tuple[ReTerm, ...], X: np.ndarray, y: np.ndarray,
                offset: np.ndarray, weights: np.ndarray, bounds: list[int]) -> CrossProducts:
    """``from_design`` computed per chunk of rows and merged: what a partitioned source does.

    bounds : increasing row positions from 0 to n; chunk c is rows bounds[c]:bounds[c + 1].
    Each chunk's terms keep the levels of the whole, so the partial blocks line up.
    """
    parts = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        rows = slice(start, stop)
        chunk_terms = [replace(t, refs=t.refs[rows], z=t.z[rows]) for t in terms]
        parts.append(CrossProductPlan(chunk_terms).fill(X[rows], y[rows], offset[rows],
                                                        weights[rows]))
    return merge(parts)
