"""The blocked Cholesky factor L of [Lambda'Z'WZLambda + I, ...; [X y]'...] (``algorithm.md`` §3-4).

``BlockedCholesky.update(templates)`` is the whole objective evaluation: it reads only the
cross-product blocks A and the p_i x p_i templates T_i. Block types are fixed at construction:

- diagonal block j stays block diagonal (tiles (l_j, p_j, p_j)) when every earlier factor is
  nested in factor j and their diagonal blocks are block diagonal too; otherwise it fills in and
  is stored dense (q_j, q_j);
- off-diagonal random-effects blocks L_ij stay sparse (CSR) while everything they are built from
  is sparse and L_jj is block diagonal; otherwise dense;
- the fixed-effects row L_xj is dense (p + 1, q_j) and L_xx dense (p + 1, p + 1).

A small model (all of L at most SMALL_DENSE rows: sleepstudy has 39) is one dense block from
the start: a few array operations and one LAPACK call per evaluation beat a dozen small ones.
Otherwise, once one diagonal block is dense, every block below and right of it is dense too,
so from the first dense diagonal block on, the blocks of the later terms and of [X y] are
assembled into one dense lower triangle and factored by a single LAPACK call
(``_update_trailing``); the blocks of L are views into it. One BLAS-3 factorization replaces a
Cholesky per block plus a triangular solve per block row.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.linalg import lapack

from ..crossprod import CrossProducts
from .kernels import (DENSE_FRACTION, MAX_DOWNDATE_PAIRS, SMALL_DENSE, PairDowndate, as_dense,
                      densify_product, scale_dense, scale_off, scaled_tiles, subtract_tiles,
                      tile_cholesky)


def _check_info(W: np.ndarray, info: int, what: str) -> None:
    """Raise for a failed ``dpotrf`` of W (m, m), except at its last pivot.

    The last pivot is the response's: its square is the penalized residual sum of squares,
    which is never negative, so a failure there is round-off of a zero (a response that X and
    Z reproduce exactly). It is set to 0: pwrss = 0, and the objective is -inf.
    """
    if info == W.shape[0]:
        W[-1, -1] = 0.0
    elif info != 0:
        raise np.linalg.LinAlgError(f"{what}not positive definite (info {info})")


class TileBlock:
    """A block-diagonal matrix stored as its tiles (l, p, p), with the tiles' inverses."""

    __slots__ = ("tiles", "inv")

    def __init__(self, S: np.ndarray):
        """Factor the tiles S (l, p, p): keeps the lower Cholesky factors and their inverses."""
        self.tiles, self.inv = tile_cholesky(S)

    @property
    def p(self) -> int:
        return self.tiles.shape[1]

    def logdet(self) -> float:
        """log |L_jj|^2 = 2 sum log diag."""
        return 2.0 * float(np.sum(np.log(np.diagonal(self.tiles, axis1=1, axis2=2))))

    def as_sparse(self, which: str = "L") -> sp.csr_array:
        """Sparse block diagonal of the tiles ("L"), their inverses ("inv") or inverse
        transposes ("invT")."""
        t = {"L": self.tiles, "inv": self.inv, "invT": np.swapaxes(self.inv, 1, 2)}[which]
        l, p, _ = t.shape
        base = (np.arange(l) * p)[:, None, None]
        rows = np.broadcast_to(base + np.arange(p)[None, :, None], t.shape).ravel()
        cols = np.broadcast_to(base + np.arange(p)[None, None, :], t.shape).ravel()
        return sp.csr_array((t.ravel(), (rows, cols)), shape=(l * p, l * p))

    def rdiv_t(self, S):
        """S @ L^{-T} for S dense (r, l p) or sparse."""
        l, p, _ = self.tiles.shape
        if sp.issparse(S):
            if p == 1:
                # Column scaling touches only the stored entries (no sparse product).
                S = sp.csr_array(S, copy=True)
                S.data *= self.inv[S.indices, 0, 0]
                return S
            return sp.csr_array(S @ self.as_sparse("invT"))
        if p == 1:
            return S * self.inv[:, 0, 0][None, :]
        r = S.shape[0]
        S3 = S.reshape(r, l, p)
        out = np.empty_like(S3)
        # out[r, l, a] = sum_b S[r, l, b] inv[l, a, b]: p^2 broadcast products beat einsum's
        # strided loop over l by an order of magnitude for the usual p = 2.
        for a in range(p):
            acc = S3[:, :, 0] * self.inv[:, a, 0]
            for b in range(1, p):
                acc += S3[:, :, b] * self.inv[:, a, b]
            out[:, :, a] = acc
        return out.reshape(r, l * p)

    def solve(self, b: np.ndarray, trans: bool = False) -> np.ndarray:
        """L^{-1} b (or L^{-T} b) for b of shape (l p,) or (l p, m)."""
        l, p, _ = self.tiles.shape
        inv = np.swapaxes(self.inv, 1, 2) if trans else self.inv
        return np.matmul(inv, b.reshape(l, p, -1)).reshape(b.shape)


class BlockedCholesky:
    """Workspace holding L for the current theta; ``update`` refills it from A.

    Attributes after ``update``: ``diag[j]`` (TileBlock or dense lower (q_j, q_j)),
    ``off[(i, j)]`` (sparse or dense (q_i, q_j)), ``xz[j]`` (p + 1, q_j), ``xx`` (p + 1, p + 1).
    """

    def __init__(self, A: CrossProducts, refillable: bool = False):
        self.A = A
        self.refillable = refillable
        k = A.k
        self.small = small = sum(l * p for l, p in A.dims) + A.p + 1 <= SMALL_DENSE
        # Off-diagonal A blocks denser than DENSE_FRACTION are kept dense (BLAS beats sparse).
        self._off_as_dense = {key: small or block.nnz > DENSE_FRACTION * block.shape[0]
                              * block.shape[1] for key, block in A.off.items()}
        self.A_off = {}
        self._set_off_values(A)
        self.diag_dense = []
        for j in range(k):
            self.diag_dense.append(small or any(not A.nested[(j, m)] or self.diag_dense[m]
                                                for m in range(j)))
        self.off_dense = {}
        for j in range(k):
            for i in range(j + 1, k):
                self.off_dense[(i, j)] = (self.diag_dense[j] or not sp.issparse(self.A_off[(i, j)])
                                          or any(self.off_dense[(i, m)] or self.off_dense[(j, m)]
                                                 for m in range(j)))
        self.diag: list = [None] * k
        self.off: dict = {}
        self.xz: list = [None] * k
        self.xx = None
        # The dense trailing part: blocks trail..k-1 and [X y], at these row offsets.
        self.trail = next((j for j in range(k) if self.diag_dense[j]), k)
        sizes = [l * p for l, p in A.dims[self.trail:]] + [A.p + 1]
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self._tile_idx = {}
        for j in range(self.trail, k):
            # Flat positions, in the trailing matrix, of the lower entries of block j's tiles.
            l, p = A.dims[j]
            base = (np.arange(l) * p)[:, None, None]
            rows = np.broadcast_to(base + np.arange(p)[None, :, None], (l, p, p)).ravel()
            cols = np.broadcast_to(base + np.arange(p)[None, None, :], (l, p, p)).ravel()
            lower = rows >= cols
            r0 = self._offsets[j - self.trail]
            self._tile_idx[j] = (np.flatnonzero(lower),
                                 (rows[lower] + r0) * self._offsets[-1] + cols[lower] + r0)
        self._pairs = self._plan_pair_downdates()
        self._densify = self._plan_densify()
        if small:
            self._plan_small()

    def _set_off_values(self, A: CrossProducts) -> None:
        for key, block in A.off.items():
            self.A_off[key] = block.toarray() if self._off_as_dense[key] else block

    def refill(self, A: CrossProducts) -> None:
        """Take new values of A on the pattern this factor was planned for (same terms, same
        rows, new weights or response): the plan (block types, downdate maps, index maps) is
        kept, only the values change. ``update`` then factors the new A."""
        if not self.refillable:
            raise RuntimeError("BlockedCholesky was planned without refillable=True")
        if A.dims != self.A.dims or A.p != self.A.p:
            raise ValueError("refill needs cross-products of the same terms and X columns")
        self.A = A
        self._set_off_values(A)
        for (i, j), plan in self._pairs.items():
            plan.refill(self.A_off[(i, 0)], self.A_off[(j, 0)])
        if self.small:
            self._fill_small()

    def _plan_small(self) -> None:
        """Where the template entries go in a dense Lambda (identity on the [X y] part) for
        ``_update_small``; then the values of A as one dense matrix (``_fill_small``)."""
        A, o = self.A, self._offsets
        Q = int(o[-1])
        x0 = int(o[-2])
        lam_idx, lam_src, src0 = [], [], 0
        for j, (l, p) in enumerate(A.dims):
            c0 = int(o[j])
            rows, cols = np.tril_indices(p)
            base = c0 + np.arange(l)[:, None] * p
            lam_idx.append(((base + rows) * Q + base + cols).ravel())
            lam_src.append(np.broadcast_to(src0 + rows * p + cols, (l, rows.size)).ravel())
            src0 += p * p
        self._lam = np.eye(Q)
        self._lam_idx, self._lam_src = np.concatenate(lam_idx), np.concatenate(lam_src)
        self._unit_diag = np.arange(x0) * (Q + 1)
        self._fill_small()

    def _fill_small(self) -> None:
        """The whole of A as one dense symmetric (Q, Q) matrix."""
        A, o = self.A, self._offsets
        Q = int(o[-1])
        full = np.zeros((Q, Q))
        x0 = int(o[-2])
        for j in range(A.k):
            c0, c1 = int(o[j]), int(o[j + 1])
            src, dst = self._tile_idx[j]
            full.ravel()[dst] = A.diag[j].ravel()[src]
            for i in range(j + 1, A.k):
                full[o[i]:o[i + 1], c0:c1] = as_dense(self.A_off[(i, j)])
            full[x0:, c0:c1] = A.xz[j]
        full[x0:, x0:] = A.xx
        self._A_full = np.tril(full) + np.tril(full, -1).T

    def _update_small(self, templates: list[np.ndarray]) -> None:
        """L for a small model: chol(Lambda' A Lambda + I_q) as one dense factorization."""
        flat = templates[0].ravel() if len(templates) == 1 else np.concatenate(
            [T.ravel() for T in templates])
        self._lam.ravel()[self._lam_idx] = flat[self._lam_src]
        M = self._lam.T @ self._A_full @ self._lam
        M.ravel()[self._unit_diag] += 1.0
        W, info = lapack.dpotrf(M, lower=1, clean=1, overwrite_a=1)
        _check_info(W, info, "")
        self._set_views(W)

    def _set_views(self, W: np.ndarray) -> None:
        """Point the blocks trail..k-1 and [X y] of L at their places in the factored W."""
        k, t, o = self.A.k, self.trail, self._offsets
        x0 = o[-2]
        # Running sums of log diag(W) without the last entry (sqrt(pwrss), which may be 0):
        # the log-determinants are differences of it.
        self._trail_logsum = np.cumsum(np.log(W.diagonal()[:-1]))
        for j in range(t, k):
            c0, c1 = o[j - t], o[j - t + 1]
            self.diag[j] = W[c0:c1, c0:c1]
            for i in range(j + 1, k):
                self.off[(i, j)] = W[o[i - t]:o[i - t + 1], c0:c1]
            self.xz[j] = W[x0:, c0:c1]
        self.xx = W[x0:, x0:]

    def _plan_pair_downdates(self) -> dict:
        """PairDowndate maps for the downdates L_i1 L_j1' from a scalar diagonal first block.

        Used for scalar terms i >= j >= 2 whose target block is dense, while the map stays
        below MAX_DOWNDATE_PAIRS entries (InstEval: 1.0e6 pairs for the 1128 x 1128 block).
        """
        A, plans = self.A, {}
        if A.k < 2 or self.diag_dense[0] or A.dims[0][1] != 1:
            return plans
        for j in range(1, A.k):
            for i in range(j, A.k):
                target_dense = self.diag_dense[j] if i == j else self.off_dense[(i, j)]
                Ai, Aj = self.A_off[(i, 0)], self.A_off[(j, 0)]
                if (not target_dense or A.dims[i][1] != 1 or A.dims[j][1] != 1
                        or not sp.issparse(Ai) or not sp.issparse(Aj)
                        or PairDowndate.n_pairs(Ai, Aj) > MAX_DOWNDATE_PAIRS):
                    continue
                plan = PairDowndate(Ai, Aj, lower=i == j, refillable=self.refillable)
                if j >= self.trail:
                    plan.embed(*self._block_origin(i, j), self._offsets[-1])
                plans[(i, j)] = plan
        return plans

    def _plan_densify(self) -> set:
        """(i, j, m) of the downdates L_im L_jm' into a dense block whose sparse L_im, L_jm
        are cheaper expanded (``densify_product``). The cost is estimated once from A's
        patterns: L_im has A_im's pattern when no earlier term fills it in (its L_mm is block
        diagonal), and the choice only decides speed, never values."""
        out = set()
        if self.small:
            return out
        for m in range(self.trail):
            for j in range(m + 1, self.A.k):
                for i in range(j, self.A.k):
                    target_dense = self.diag_dense[j] if i == j else self.off_dense[(i, j)]
                    Ai, Aj = self.A_off[(i, m)], self.A_off[(j, m)]
                    if (not target_dense or (m == 0 and (i, j) in self._pairs)
                            or self.off_dense[(i, m)] or self.off_dense[(j, m)]
                            or not sp.issparse(Ai) or not sp.issparse(Aj)):
                        continue
                    if densify_product(Ai, Aj, same=i == j):
                        out.add((i, j, m))
        return out

    def _block_origin(self, i: int, j: int) -> tuple[int, int]:
        """(row, column) of block (i, j) in the trailing matrix (i = k for [X y])."""
        return int(self._offsets[i - self.trail]), int(self._offsets[j - self.trail])

    def _downdate(self, S, i: int, j: int, m: int, templates, s0, W=None):
        """S - L_im L_jm' (S dense or sparse, as the target block is stored).

        S may be a view of the trailing matrix W (pass W then): dense downdates happen in place.
        """
        if m == 0 and (i, j) in self._pairs:
            scale = templates[i][0, 0] * templates[j][0, 0]
            self._pairs[(i, j)].subtract_from(S if W is None else W, s0, scale)
            return S
        Lim, Ljm = self.off[(i, m)], self.off[(j, m)]
        if isinstance(S, np.ndarray) and (i, j, m) in self._densify:
            # Expanded for BLAS: cheaper than the sparse product (``densify_product``).
            Lim = Lim.toarray()
            S -= Lim @ (Lim if i == j else Ljm.toarray()).T
            return S
        prod = Lim @ Ljm.T
        if isinstance(S, np.ndarray):
            S -= as_dense(prod)
            return S
        return S - prod

    def update(self, templates: list[np.ndarray]) -> None:
        """Refill L for the templates T_i (p_i, p_i); raises LinAlgError if not PD."""
        if self.small:
            self._update_small(templates)
            return
        A, k = self.A, self.A.k
        s0 = None
        for j in range(self.trail):
            l_j, p_j = A.dims[j]
            S = scaled_tiles(A.diag[j], templates[j])
            for m in range(j):
                Ljm = self.off[(j, m)]
                subtract_tiles(S, Ljm @ Ljm.T)
            self.diag[j] = TileBlock(S)
            if j == 0 and p_j == 1:
                # s_c = theta_1^2 / (theta_1^2 a_c + 1), the weights of the pair downdates.
                s0 = (templates[0][0, 0] * self.diag[0].inv[:, 0, 0]) ** 2
            for i in range(j + 1, k):
                if self.off_dense[(i, j)] and not sp.issparse(self.A_off[(i, j)]):
                    # Let go of the previous theta's block first: the new one is allocated
                    # while the old is freed (unless someone still holds it, who keeps it).
                    self.off[(i, j)] = None
                    self.off[(i, j)] = self._dense_off(i, j, templates, s0)
                    continue
                S_ij = scale_off(self.A_off[(i, j)], templates[i], templates[j], A.dims[i][0],
                                 l_j)
                if self.off_dense[(i, j)]:
                    S_ij = np.array(as_dense(S_ij))
                for m in range(j):
                    S_ij = self._downdate(S_ij, i, j, m, templates, s0)
                self.off[(i, j)] = self._rdiv_t(S_ij, j)
            S_x = scale_dense(A.xz[j], None, templates[j])
            for m in range(j):
                # (L_jm L_xm')' computed as sparse @ dense when L_jm is sparse.
                S_x = S_x - as_dense(self.off[(j, m)] @ self.xz[m].T).T
            self.xz[j] = self._rdiv_t(S_x, j)
        if self.trail < k:
            self._update_trailing(templates, s0)
            return
        S_xx = A.xx.copy()
        for m in range(k):
            S_xx -= self.xz[m] @ self.xz[m].T
        W, info = lapack.dpotrf(S_xx, lower=1, clean=1, overwrite_a=1)
        _check_info(W, info, "[X y] block ")
        self.xx = W

    def _update_trailing(self, templates: list[np.ndarray], s0) -> None:
        """Blocks trail..k-1 and [X y]: assemble their Schur complement after the tile blocks
        (lower triangle only) in one (Q, Q) array and factor it in place."""
        A, k, t = self.A, self.A.k, self.trail
        W = np.zeros((self._offsets[-1],) * 2)
        x0 = self._offsets[-2]
        for j in range(t, k):
            c0, c1 = self._offsets[j - t], self._offsets[j - t + 1]
            S = scaled_tiles(A.diag[j], templates[j])
            src, dst = self._tile_idx[j]
            W.ravel()[dst] = S.ravel()[src]
            for m in range(t):
                self._downdate(W[c0:c1, c0:c1], j, j, m, templates, s0, W)
            for i in range(j + 1, k):
                r0, r1 = self._offsets[i - t], self._offsets[i - t + 1]
                W[r0:r1, c0:c1] = as_dense(scale_off(self.A_off[(i, j)], templates[i],
                                                     templates[j], A.dims[i][0], A.dims[j][0]))
                for m in range(t):
                    self._downdate(W[r0:r1, c0:c1], i, j, m, templates, s0, W)
            Wx = W[x0:, c0:c1]
            Wx[...] = scale_dense(A.xz[j], None, templates[j])
            for m in range(t):
                Wx -= as_dense(self.off[(j, m)] @ self.xz[m].T).T
        S_xx = A.xx.copy()
        for m in range(t):
            S_xx -= self.xz[m] @ self.xz[m].T
        W[x0:, x0:] = np.tril(S_xx)
        # W is C-ordered with its lower triangle filled: as a Fortran array that is the upper
        # triangle of W', so LAPACK's upper factor U (U'U = W) lands where L = U' belongs.
        _, info = lapack.dpotrf(W.T, lower=0, clean=0, overwrite_a=1)
        _check_info(W, info, "trailing block ")
        self._set_views(W)

    def _rdiv_t(self, S, j: int):
        """S @ L_jj^{-T} for a block-diagonal L_jj (j < trail)."""
        return self.diag[j].rdiv_t(S)

    def _dense_off(self, i: int, j: int, templates, s0) -> np.ndarray:
        """L_ij (q_i, q_j) for a dense A_ij and j < trail: the same arithmetic as
        ``scale_off``, the downdates and ``_rdiv_t``, but into one new array, a band of
        rows at a time. A crossed pair block can hold 1e7 level pairs (160 MB dense); the
        whole-block temporaries of the plain path (scaled copy, dense copy, quotient) would
        triple the optimizer's memory."""
        A_ij = self.A_off[(i, j)]
        Ti, Tj = templates[i], templates[j]
        out = np.empty_like(A_ij)
        step = _band_rows(A_ij.shape, Ti.shape[0])
        for r0 in range(0, A_ij.shape[0], step):
            out[r0:r0 + step] = scale_dense(A_ij[r0:r0 + step], Ti, Tj)
        for m in range(j):
            self._downdate(out, i, j, m, templates, s0)
        for r0 in range(0, out.shape[0], step):
            out[r0:r0 + step] = self._rdiv_t(out[r0:r0 + step], j)
        return out

    # ---- read-offs (algorithm.md §3) -------------------------------------------------
    def ldL2(self) -> float:
        """log |L_theta|^2."""
        total = sum(self.diag[j].logdet() for j in range(self.trail))
        if self.trail < self.A.k:
            total += 2.0 * float(self._trail_logsum[self._offsets[-2] - 1])
        return total

    def ldRX2(self) -> float:
        """log |R_X|^2."""
        p = self.A.p
        if self.trail < self.A.k:
            x0 = self._offsets[-2]
            return 2.0 * float(self._trail_logsum[x0 + p - 1] - self._trail_logsum[x0 - 1])
        return 2.0 * float(np.sum(np.log(np.diag(self.xx)[:p])))

    def pwrss(self) -> float:
        """Penalized weighted residual sum of squares r^2(theta)."""
        return float(self.xx[-1, -1] ** 2)

    def beta(self) -> np.ndarray:
        """(p,) beta-hat from L_X' beta = c_beta."""
        p = self.A.p
        return np.linalg.solve(self.xx[:p, :p].T, self.xx[p, :p])

    def diag_solve(self, j: int, b: np.ndarray, trans: bool = False) -> np.ndarray:
        """L_jj^{-1} b or L_jj^{-T} b, b (q_j,) or (q_j, m)."""
        blk = self.diag[j]
        if isinstance(blk, TileBlock):
            return blk.solve(b, trans=trans)
        return sla.solve_triangular(blk, b, lower=True, trans="T" if trans else "N",
                                    check_finite=False)

    def u(self, beta: np.ndarray) -> list[np.ndarray]:
        """Spherical conditional modes u-tilde per term, each (q_j,), by back substitution."""
        k, p = self.A.k, self.A.p
        u: list = [None] * k
        for j in reversed(range(k)):
            r = self.xz[j][p, :] - self.xz[j][:p, :].T @ beta
            for i in range(j + 1, k):
                r = r - as_dense(self.off[(i, j)].T @ u[i]).ravel()
            u[j] = self.diag_solve(j, r, trans=True)
        return u

    def solve(self, r_re: list[np.ndarray], r_x: np.ndarray | None = None
              ) -> tuple[list[np.ndarray], np.ndarray | None]:
        """Solve (L L') x = r for the random-effects rows (q_j,) per term and, when the factor
        has X columns and r_x (p,) is given, the fixed-effects rows: forward then backward
        substitution through the blocks (the [y] row and column are left out)."""
        k, p = self.A.k, self.A.p
        with_x = r_x is not None and p > 0
        c: list = [None] * k
        for j in range(k):
            v = np.array(r_re[j], dtype=float)
            for m in range(j):
                v -= as_dense(self.off[(j, m)] @ c[m]).ravel()
            c[j] = self.diag_solve(j, v)
        x_beta = None
        if with_x:
            LX = self.xx[:p, :p]
            v = np.array(r_x, dtype=float)
            for j in range(k):
                v -= self.xz[j][:p, :] @ c[j]
            x_beta = sla.solve_triangular(LX, sla.solve_triangular(LX, v, lower=True,
                                                                   check_finite=False),
                                          lower=True, trans="T", check_finite=False)
        x: list = [None] * k
        for j in reversed(range(k)):
            v = c[j] - self.xz[j][:p, :].T @ x_beta if with_x else c[j].copy()
            for i in range(j + 1, k):
                v -= as_dense(self.off[(i, j)].T @ x[i]).ravel()
            x[j] = self.diag_solve(j, v, trans=True)
        return x, x_beta

    def cond_var_tiles(self, j: int, chunk: int = 512) -> np.ndarray:
        """Diagonal tiles (l_j, p_j, p_j) of block j of (L_theta L_theta')^{-1} = Var(u|y)/sigma^2.

        Block column j of L^{-1} by forward substitution, in chunks of levels so the dense
        pieces stay small; the tile for level l is the sum over block rows i >= j of
        X_i[:, l]' X_i[:, l].
        """
        A, k = self.A, self.A.k
        l_j, p_j = A.dims[j]
        out = np.empty((l_j, p_j, p_j))
        blk = self.diag[j]
        for start in range(0, l_j, chunk):
            stop = min(l_j, start + chunk)
            cols = np.arange(start * p_j, stop * p_j)
            if isinstance(blk, TileBlock):
                inv = blk.inv[start:stop]
                acc = np.einsum("lra,lrb->lab", inv, inv)
                Xj = blk.as_sparse("inv")[:, cols]
            else:
                E = np.zeros((l_j * p_j, cols.size))
                E[cols, np.arange(cols.size)] = 1.0
                Xj = self.diag_solve(j, E)
                Y = Xj.reshape(l_j * p_j, stop - start, p_j)
                acc = np.einsum("rla,rlb->lab", Y, Y)
            X = {j: Xj}
            for i in range(j + 1, k):
                r = np.zeros((A.dims[i][0] * A.dims[i][1], cols.size))
                for m in range(j, i):
                    r -= as_dense(self.off[(i, m)] @ X[m])
                X[i] = self.diag_solve(i, r)
                Y = X[i].reshape(X[i].shape[0], stop - start, p_j)
                acc += np.einsum("rla,rlb->lab", Y, Y)
            out[start:stop] = acc
        return out


# Entries per band of ``BlockedCholesky._dense_off`` (8 MB of float64 temporaries a band).
BAND_ENTRIES = 1 << 20


def _band_rows(shape: tuple[int, int], p_i: int) -> int:
    """Rows per band of a (q_i, q_j) block: about BAND_ENTRIES entries, whole tiles of p_i
    rows (``scale_dense`` multiplies p_i rows at a time)."""
    rows = max(1, BAND_ENTRIES // max(shape[1], 1))
    return max(p_i, rows - rows % p_i)
