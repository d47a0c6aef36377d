"""Small numerical kernels behind ``BlockedCholesky.update`` (the optimizer's hot path).

Everything here works on cross-product-sized arrays only: batched p x p tiles, sparse or
dense off-diagonal blocks, and precomputed index maps. Shapes are stated per function.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Above this many (level, level) pairs a precomputed downdate map would cost more memory
# (12 bytes a pair) than it saves; fall back to a sparse product per evaluation.
MAX_DOWNDATE_PAIRS = 30_000_000
# MixedModels.jl's rule: an off-diagonal block denser than this is stored dense.
DENSE_FRACTION = 0.1
# A sparse product L_im L_jm' into a dense block costs about this many times a BLAS
# multiply-add per pair of stored entries that meet (scipy's csr_matmat: 5.8 ns a pair against
# 0.02 ns a multiply-add for one-threaded dgemm, a ratio of 290, measured on the 1,000 x
# 20,000 block of the scale benchmark at 1e6 rows); when the dense product is cheaper by this
# measure the blocks are expanded for it.
SPARSE_PAIR_COST = 200.0
# ... unless the expanded operands would take more than this many bytes.
DENSIFY_MAX_BYTES = 256 * 2**20
# A whole L with at most this many rows is factored as one dense matrix: per evaluation the
# cost of a dense (Q, Q) Cholesky stays below the fixed cost of the typed-block path's
# array operations.
SMALL_DENSE = 64


def tile_cholesky(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower Cholesky factors of tiles S (l, p, p) and their inverses, both (l, p, p).

    Closed forms for p = 1 and p = 2 (the common scalar and intercept-slope terms) avoid
    LAPACK's per-call overhead on thousands of tiny matrices.
    """
    p = S.shape[1]
    if p == 1:
        if np.any(S <= 0):
            raise np.linalg.LinAlgError("tile not positive definite")
        L = np.sqrt(S)
        return L, 1.0 / L
    if p == 2:
        a, b, c = S[:, 0, 0], S[:, 1, 0], S[:, 1, 1]
        if np.any(a <= 0):
            raise np.linalg.LinAlgError("tile not positive definite")
        l11 = np.sqrt(a)
        l21 = b / l11
        r = c - l21 * l21
        if np.any(r <= 0):
            raise np.linalg.LinAlgError("tile not positive definite")
        l22 = np.sqrt(r)
        L = np.zeros_like(S)
        L[:, 0, 0], L[:, 1, 0], L[:, 1, 1] = l11, l21, l22
        inv = np.zeros_like(S)
        inv[:, 0, 0], inv[:, 1, 1] = 1.0 / l11, 1.0 / l22
        inv[:, 1, 0] = -l21 / (l11 * l22)
        return L, inv
    L = np.linalg.cholesky(S)
    return L, np.linalg.inv(L)


def scaled_tiles(A_tiles: np.ndarray, T: np.ndarray) -> np.ndarray:
    """T' A_l T + I for every tile of A_tiles (l, p, p); T (p, p)."""
    p = T.shape[0]
    if p == 1:
        return A_tiles * (T[0, 0] ** 2) + 1.0
    out = np.matmul(T.T, np.matmul(A_tiles, T))
    out[:, np.arange(p), np.arange(p)] += 1.0
    return out


def lambda_sparse(T: np.ndarray, n_levels: int) -> sp.csr_array:
    """Lambda_i = I_l (x) T as a sparse (l p, l p) matrix."""
    return sp.csr_array(sp.kron(sp.eye_array(n_levels), sp.csr_array(T)))


def scale_dense(M: np.ndarray, Ti: np.ndarray | None, Tj: np.ndarray | None) -> np.ndarray:
    """Lambda_i' M Lambda_j for dense M (l_i p_i, l_j p_j); None means identity."""
    r, c = M.shape
    if Ti is not None:
        pi = Ti.shape[0]
        M = M * Ti[0, 0] if pi == 1 else np.matmul(Ti.T, M.reshape(r // pi, pi, c)).reshape(r, c)
    if Tj is not None:
        pj = Tj.shape[0]
        M = M * Tj[0, 0] if pj == 1 else (M.reshape(r, c // pj, pj) @ Tj).reshape(r, c)
    return M


def scale_off(A, Ti: np.ndarray, Tj: np.ndarray, li: int, lj: int):
    """Lambda_i' A Lambda_j for a sparse or dense off-diagonal block A (q_i, q_j)."""
    if not sp.issparse(A):
        return scale_dense(A, Ti, Tj)
    if Ti.shape[0] == 1 and Tj.shape[0] == 1:
        return A * (Ti[0, 0] * Tj[0, 0])
    return sp.csr_array(lambda_sparse(Ti, li).T @ A @ lambda_sparse(Tj, lj))


def subtract_tiles(tiles: np.ndarray, P) -> None:
    """tiles (l, p, p) -= the diagonal tiles of P, a product known to be block diagonal."""
    p = tiles.shape[1]
    coo = sp.coo_array(P)
    np.add.at(tiles, (coo.row // p, coo.row % p, coo.col % p), -coo.data)


def as_dense(M) -> np.ndarray:
    return M.toarray() if sp.issparse(M) else np.asarray(M)


class PairDowndate:
    """Precomputed map for C = A_i diag(s) A_j' with sparse A_i (q_i, l), A_j (q_j, l) fixed.

    When the first random-effects block is scalar and diagonal, L_i1 L_j1' equals
    Lambda_i' A_i1 diag(s) A_j1' Lambda_j with s_c = theta_1^2 / (theta_1^2 a_c + 1), which is
    linear in s. The map from s (l,) to the nonzero entries of C is a fixed sparse matrix built
    once, so each evaluation is one sparse matrix-vector product instead of a sparse-sparse
    product followed by a scatter into a dense block. With ``lower`` only entries on or below
    the diagonal are kept (a diagonal block read by a lower Cholesky).
    """

    def __init__(self, Ai: sp.sparray, Aj: sp.sparray, lower: bool, refillable: bool = False):
        Ai, Aj = self._csc_pair(Ai, Aj)
        self.shape = (Ai.shape[0], Aj.shape[0])
        rows, cols, pa, pb, col = self._pairs(Ai, Aj, lower)
        flat = rows.astype(np.int64) * self.shape[1] + cols
        # The target block is dense, so a dense marker numbers its entries without a sort.
        mark = np.zeros(self.shape[0] * self.shape[1], dtype=bool)
        mark[flat] = True
        self.targets = np.flatnonzero(mark)
        slot = (np.cumsum(mark, dtype=np.int64) - 1)[flat]
        self.embedded = None
        vals = Ai.data[pa] * Aj.data[pb]
        self.map = sp.csr_array((vals, (slot, col)), shape=(self.targets.size, Ai.shape[1]))
        # The plan apart from the values: where each pair's product lands in the map's data.
        # Kept only when A will be refilled (a GLMM's PIRLS), as it costs 24 bytes a pair.
        self._refill = None
        if refillable:
            probe = sp.csr_array((np.arange(1, vals.size + 1, dtype=float), (slot, col)),
                                 shape=self.map.shape)
            order = probe.data.astype(np.int64) - 1
            self._refill = (pa[order], pb[order])

    @staticmethod
    def _csc_pair(Ai: sp.sparray, Aj: sp.sparray) -> tuple[sp.csc_array, sp.csc_array]:
        same = Ai is Aj
        Ai = sp.csc_array(Ai)
        Ai.sort_indices()
        if same:
            return Ai, Ai
        Aj = sp.csc_array(Aj)
        Aj.sort_indices()
        return Ai, Aj

    def refill(self, Ai: sp.sparray, Aj: sp.sparray) -> None:
        """New values of A_i and A_j on the pattern this map was planned on."""
        if self._refill is None:
            raise RuntimeError("this PairDowndate was planned without refillable=True")
        Ai, Aj = self._csc_pair(Ai, Aj)
        pa, pb = self._refill
        np.multiply(Ai.data[pa], Aj.data[pb], out=self.map.data)

    @staticmethod
    def _pairs(Ai: sp.csc_array, Aj: sp.csc_array, lower: bool):
        """Every (row of A_i, row of A_j) pair sharing a column: rows, cols, the positions of
        the two entries in A_i.data and A_j.data, and the column, all (n_pairs,). Columns are
        taken in groups with the same numbers of nonzeros, so each group is one broadcast
        (m, a, b) and no n_pairs-long index arithmetic is needed."""
        ni, nj = np.diff(Ai.indptr), np.diff(Aj.indptr)
        out: list[tuple] = []
        shapes = np.stack([ni, nj], axis=1)
        for a, b in np.unique(shapes[(ni > 0) & (nj > 0)], axis=0):
            cs = np.flatnonzero((ni == a) & (nj == b))
            pa = np.broadcast_to((Ai.indptr[cs][:, None] + np.arange(a))[:, :, None],
                                 (cs.size, a, b))
            pb = np.broadcast_to((Aj.indptr[cs][:, None] + np.arange(b))[:, None, :],
                                 (cs.size, a, b))
            r, c = Ai.indices[pa], Aj.indices[pb]
            k = np.broadcast_to(cs[:, None, None], (cs.size, a, b))
            if lower and a == b and Ai is Aj:
                # Rows are sorted within a column, so the pairs on or below the diagonal are
                # the positions (u, v) with u >= v: take just those.
                u, w = np.tril_indices(a)
                out.append(tuple(x[:, u, w].ravel() for x in (r, c, pa, pb, k)))
            elif lower:
                keep = r >= c
                out.append(tuple(x[keep] for x in (r, c, pa, pb, k)))
            else:
                out.append(tuple(x.ravel() for x in (r, c, pa, pb, k)))
        if not out:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty, empty, empty
        return tuple(np.concatenate(parts) for parts in zip(*out))

    @staticmethod
    def n_pairs(Ai: sp.sparray, Aj: sp.sparray) -> int:
        return int(np.sum(np.diff(sp.csc_array(Ai).indptr) * np.diff(sp.csc_array(Aj).indptr)))

    def embed(self, row0: int, col0: int, ld: int) -> None:
        """Write into a block at (row0, col0) of a C-ordered matrix with ld columns instead."""
        rows, cols = np.divmod(self.targets, self.shape[1])
        self.embedded = (rows + row0) * ld + cols + col0

    def subtract_from(self, D: np.ndarray, s: np.ndarray, scale: float = 1.0) -> None:
        """D (q_i, q_j) -= scale * A_i diag(s) A_j' (only the mapped entries); D is the
        enclosing matrix after ``embed``. D must be C-contiguous."""
        targets = self.targets if self.embedded is None else self.embedded
        D.ravel()[targets] -= scale * (self.map @ s)


def sparse_product_pairs(Ai: sp.sparray, Aj: sp.sparray) -> int:
    """Multiply-adds of the sparse product Ai Aj' (q_i, q_m) x (q_m, q_j): per column of the
    shared dimension, the stored entries of Ai times those of Aj in it."""
    ci = np.bincount(sp.csr_array(Ai).indices, minlength=Ai.shape[1]).astype(np.int64)
    cj = np.bincount(sp.csr_array(Aj).indices, minlength=Aj.shape[1]).astype(np.int64)
    return int(ci @ cj)


def densify_product(Ai: sp.sparray, Aj: sp.sparray, same: bool) -> bool:
    """Whether L_im L_jm' (patterns of Ai, Aj; ``same``: one block, i = j) is cheaper as a
    dense product (see SPARSE_PAIR_COST and DENSIFY_MAX_BYTES)."""
    dense_bytes = 8 * Ai.shape[1] * (Ai.shape[0] + (0 if same else Aj.shape[0]))
    if dense_bytes > DENSIFY_MAX_BYTES:
        return False
    dense_flops = Ai.shape[0] * Aj.shape[0] * Ai.shape[1]
    return dense_flops < SPARSE_PAIR_COST * sparse_product_pairs(Ai, Aj)
