"""The blocked Cholesky factor L of [Lambda'Z'WZLambda + I, ...; [X y]'...] (``algorithm.md`` §3-4).

``BlockedCholesky.update(templates)`` is the whole objective evaluation: it reads only the
cross-product blocks A and the p_i x p_i templates T_i. Block types are fixed at construction:

- diagonal block j stays block diagonal (tiles (l_j, p_j, p_j)) when every earlier factor is
  nested in factor j and their diagonal blocks are block diagonal too; otherwise it fills in and
  is stored dense (q_j, q_j);
- off-diagonal random-effects blocks L_ij stay sparse (CSR) while everything they are built from
  is sparse and L_jj is block diagonal; otherwise dense;
- the fixed-effects row L_xj is dense (p + 1, q_j) and L_xx dense (p + 1, p + 1).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from ..crossprod import CrossProducts


class TileBlock:
    """A block-diagonal matrix stored as its tiles (l, p, p), with the tiles' inverses."""

    __slots__ = ("tiles", "inv")

    def __init__(self, tiles: np.ndarray):
        self.tiles = tiles
        self.inv = None

    @property
    def p(self) -> int:
        return self.tiles.shape[1]

    def factor(self) -> None:
        """In place: tiles <- lower Cholesky factors; inv <- their inverses."""
        if self.p == 1:
            d = self.tiles[:, 0, 0]
            if np.any(d <= 0):
                raise np.linalg.LinAlgError("tile not positive definite")
            np.sqrt(self.tiles, out=self.tiles)
            self.inv = 1.0 / self.tiles
        else:
            self.tiles = np.linalg.cholesky(self.tiles)
            self.inv = np.linalg.inv(self.tiles)

    def logdet(self) -> float:
        """log |L_jj|^2 = 2 sum log diag."""
        return 2.0 * float(np.sum(np.log(np.diagonal(self.tiles, axis1=1, axis2=2))))

    def as_sparse(self, which: str = "L") -> sp.csr_array:
        """Sparse block diagonal of the tiles ("L"), their inverses ("inv") or inverse
        transposes ("invT")."""
        t = {"L": self.tiles, "inv": self.inv, "invT": None}[which]
        if which == "invT":
            t = np.swapaxes(self.inv, 1, 2)
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
                return sp.csr_array(S @ sp.diags_array(self.inv[:, 0, 0]))
            return sp.csr_array(S @ self.as_sparse("invT"))
        if p == 1:
            return S * self.inv[:, 0, 0][None, :]
        r = S.shape[0]
        return np.einsum("rlb,lab->rla", S.reshape(r, l, p), self.inv).reshape(r, l * p)

    def solve(self, b: np.ndarray, trans: bool = False) -> np.ndarray:
        """L^{-1} b (or L^{-T} b) for b of shape (l p,) or (l p, m)."""
        l, p, _ = self.tiles.shape
        inv = np.swapaxes(self.inv, 1, 2) if trans else self.inv
        shape = b.shape
        bb = b.reshape(l, p, -1)
        return np.matmul(inv, bb).reshape(shape)


def _scaled_tiles(A_tiles: np.ndarray, T: np.ndarray) -> np.ndarray:
    """T' A_l T + I for every tile l: (l, p, p)."""
    p = T.shape[0]
    if p == 1:
        return A_tiles * (T[0, 0] ** 2) + 1.0
    return np.matmul(T.T, np.matmul(A_tiles, T)) + np.eye(p)


def _lambda_sparse(T: np.ndarray, n_levels: int) -> sp.csr_array:
    return sp.csr_array(sp.kron(sp.eye_array(n_levels), sp.csr_array(T)))


def _scale_off(A: sp.csr_array, Ti: np.ndarray, Tj: np.ndarray, li: int, lj: int) -> sp.csr_array:
    """Lambda_i' A Lambda_j for a sparse off-diagonal block."""
    if Ti.shape[0] == 1 and Tj.shape[0] == 1:
        return A * (Ti[0, 0] * Tj[0, 0])
    return sp.csr_array(_lambda_sparse(Ti, li).T @ A @ _lambda_sparse(Tj, lj))


def _scale_cols(A: np.ndarray, T: np.ndarray) -> np.ndarray:
    """A Lambda for a dense (r, l p) block."""
    p = T.shape[0]
    if p == 1:
        return A * T[0, 0]
    r, q = A.shape
    return (A.reshape(r, q // p, p) @ T).reshape(r, q)


def _subtract_tiles(tiles: np.ndarray, P) -> None:
    """tiles -= block-diagonal tiles of P (a product known to be block diagonal)."""
    l, p, _ = tiles.shape
    coo = sp.coo_array(P)
    np.add.at(tiles, (coo.row // p, coo.row % p, coo.col % p), -coo.data)


def _dense(M) -> np.ndarray:
    return M.toarray() if sp.issparse(M) else np.asarray(M)


class BlockedCholesky:
    """Workspace holding L for the current theta; ``update`` refills it from A.

    Attributes after ``update``: ``diag[j]`` (TileBlock or dense lower (q_j, q_j)),
    ``off[(i, j)]`` (sparse or dense (q_i, q_j)), ``xz[j]`` (p + 1, q_j), ``xx`` (p + 1, p + 1).
    """

    def __init__(self, A: CrossProducts):
        self.A = A
        k = A.k
        self.diag_dense = []
        for j in range(k):
            block = any(not A.nested[(j, m)] or self.diag_dense[m] for m in range(j))
            self.diag_dense.append(block)
        self.off_dense = {}
        for j in range(k):
            for i in range(j + 1, k):
                self.off_dense[(i, j)] = self.diag_dense[j] or any(
                    self.off_dense[(i, m)] or self.off_dense[(j, m)] for m in range(j))
        self.diag: list = [None] * k
        self.off: dict = {}
        self.xz: list = [None] * k
        self.xx = None
        # Scatter indices from tiles into a dense (q, q) block, computed once.
        self._dense_idx = {}
        for j, (l, p) in enumerate(A.dims):
            if self.diag_dense[j]:
                base = (np.arange(l) * p)[:, None, None]
                rows = np.broadcast_to(base + np.arange(p)[None, :, None], (l, p, p)).ravel()
                cols = np.broadcast_to(base + np.arange(p)[None, None, :], (l, p, p)).ravel()
                self._dense_idx[j] = (rows, cols)

    def update(self, templates: list[np.ndarray]) -> None:
        """Refill L for the templates T_i (p_i, p_i); raises LinAlgError if not PD."""
        A, k = self.A, self.A.k
        for j in range(k):
            l_j, _ = A.dims[j]
            S = _scaled_tiles(A.diag[j], templates[j])
            if self.diag_dense[j]:
                D = np.zeros((l_j * A.dims[j][1],) * 2)
                D[self._dense_idx[j]] = S.ravel()
                for m in range(j):
                    Ljm = self.off[(j, m)]
                    D -= _dense(Ljm @ Ljm.T)
                self.diag[j] = sla.cholesky(D, lower=True, overwrite_a=True, check_finite=False)
            else:
                for m in range(j):
                    Ljm = self.off[(j, m)]
                    _subtract_tiles(S, Ljm @ Ljm.T)
                blk = TileBlock(S)
                blk.factor()
                self.diag[j] = blk
            for i in range(j + 1, k):
                S_ij = _scale_off(A.off[(i, j)], templates[i], templates[j], A.dims[i][0], l_j)
                if self.off_dense[(i, j)]:
                    S_ij = _dense(S_ij)
                    for m in range(j):
                        S_ij -= _dense(self.off[(i, m)] @ self.off[(j, m)].T)
                else:
                    for m in range(j):
                        S_ij = S_ij - self.off[(i, m)] @ self.off[(j, m)].T
                self.off[(i, j)] = self._rdiv_t(S_ij, j)
            S_x = _scale_cols(A.xz[j], templates[j])
            for m in range(j):
                S_x = S_x - _dense(self.xz[m] @ self.off[(j, m)].T)
            self.xz[j] = self._rdiv_t(S_x, j)
        S_xx = A.xx.copy()
        for m in range(k):
            S_xx -= self.xz[m] @ self.xz[m].T
        self.xx = sla.cholesky(S_xx, lower=True, check_finite=False)

    def _rdiv_t(self, S, j: int):
        """S @ L_jj^{-T}."""
        Ljj = self.diag[j]
        if isinstance(Ljj, TileBlock):
            return Ljj.rdiv_t(S)
        return sla.solve_triangular(Ljj, _dense(S).T, lower=True, check_finite=False).T

    # ---- read-offs (algorithm.md §3) -------------------------------------------------
    def ldL2(self) -> float:
        """log |L_theta|^2."""
        total = 0.0
        for blk in self.diag:
            if isinstance(blk, TileBlock):
                total += blk.logdet()
            else:
                total += 2.0 * float(np.sum(np.log(np.diag(blk))))
        return total

    def ldRX2(self) -> float:
        """log |R_X|^2."""
        p = self.A.p
        return 2.0 * float(np.sum(np.log(np.diag(self.xx)[:p])))

    def pwrss(self) -> float:
        """Penalized weighted residual sum of squares r^2(theta)."""
        return float(self.xx[-1, -1] ** 2)

    def beta(self) -> np.ndarray:
        """(p,) beta-hat from L_X' beta = c_beta."""
        p = self.A.p
        return sla.solve_triangular(self.xx[:p, :p], self.xx[p, :p], lower=True, trans="T",
                                    check_finite=False)

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
                r = r - _dense(self.off[(i, j)].T @ u[i]).ravel()
            u[j] = self.diag_solve(j, r, trans=True)
        return u

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
                    r -= _dense(self.off[(i, m)] @ X[m])
                X[i] = self.diag_solve(i, r)
                Y = X[i].reshape(X[i].shape[0], stop - start, p_j)
                acc += np.einsum("rla,rlb->lab", Y, Y)
            out[start:stop] = acc
        return out
