"""Leverage and case-deletion influence: lme4's ``hatvalues``, ``influence`` and ``cooks.distance``.

**Leverage.** The fitted values are H y with H = C M^{-1} C' W, where C = [Z Lambda, X] (n, q + p)
and M = C'WC + diag(I_q, 0) is the matrix of the PLS normal equations (``algorithm.md`` §2).
M = L L' with L the blocked factor without its y row, so row r's diagonal entry is

    h_r = w_r ||L^{-1} c_r||^2,    c_r = [Lambda' z_r; x_r],

and it is computed without any n x n matrix: the c_r of a chunk of rows are the columns of a
sparse (q + p, m) matrix (row r has p_i entries in its level's slot of each term i) and the
forward substitution runs block by block, sparse through the block-diagonal blocks of L, then
one dense triangular solve for the dense trailing part. Identical to lme4's
``colSums(CL^2) + colSums(CR^2)``.

**Case deletion.** ``influence`` refits the model once without each row r (lme4's
``influence.merMod`` with its default ``groups``: one case at a time), starting from the full
fit's theta as lme4 does. Row r enters the cross-products A only as a rank-one term of each
grouped sum, so A without row r is a copy of A minus w_r times the row's own products, in the
tiles of its levels and in the [X y] blocks: no pass over the other n - 1 rows. A level left
with no rows has a zero tile, which adds nothing to the objective: the same fit as lme4's,
which drops the unused level.

Cook's distance is lme4's ``cooks.distance.influence.merMod``: with d_r = beta_(-r) - beta,
the full fit's V = vcov(beta) (its sigma), N deleted cases and p fixed effects,

    D_r = (N - p) / (N p) * d_r' V^{-1} d_r.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg as sla
import scipy.sparse as sp

from .._threads import with_blas_threads
from ..crossprod import CrossProducts
from ..errors import MixedModelsError, warn_user
from ..linalg.kernels import as_dense
from ..lmm import LinearMixedModel
from ..objective import sigma_hat
from .bootstrap import _Progress
from .protocol import refuse_residual_structure

__all__ = ["hatvalues", "influence", "Influence", "InfluenceWarning", "without_row"]

# Entries of the dense (rows x chunk) pieces of the leverage computation (32 MB of float64).
CHUNK_ENTRIES = 1 << 22
# Smallest eigenvalue of the unit-diagonal X'WX below which a deleted-row refit has lost a
# column of X (the square of the 1e-7 tolerance that drops dependent columns of the design).
RANK_TOL = 1e-14


class InfluenceWarning(UserWarning):
    """Some case-deletion refits failed."""


# ---- leverage ---------------------------------------------------------------------------------
def _workspace_at(result: Any):
    """The result's factor L at its theta (refilled if inference code moved the workspace)."""
    model = result.model
    if not np.array_equal(model.theta_in_L, result.theta):
        model.objective(result.theta)
    return model.L


def _trailing_factor(L, p: int) -> tuple[np.ndarray, np.ndarray]:
    """The dense trailing part of L without the y row: blocks trail..k-1 and X.

    Returns the lower-triangular factor (Q, Q) and the block row offsets (k - trail + 2,).
    """
    k, t = L.A.k, L.trail
    sizes = [L.A.dims[j][0] * L.A.dims[j][1] for j in range(t, k)] + [p]
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    F = np.zeros((off[-1], off[-1]))
    for j in range(t, k):
        c0, c1 = off[j - t], off[j - t + 1]
        F[c0:c1, c0:c1] = L.diag[j]
        for i in range(j + 1, k):
            F[off[i - t]:off[i - t + 1], c0:c1] = as_dense(L.off[(i, j)])
        F[off[-2]:, c0:c1] = L.xz[j][:p]
    F[off[-2]:, off[-2]:] = L.xx[:p, :p]
    return F, off


def _re_columns(term, T: np.ndarray, rows: np.ndarray) -> sp.csr_array:
    """(q_j, m) sparse: column c holds T' z_r in the slot of row r = rows[c]'s level."""
    p = term.p
    vals = term.z[rows] @ T  # (m, p_j): row c is (T' z_r)'
    r_idx = (term.refs[rows].astype(np.int64)[:, None] * p + np.arange(p)[None, :]).ravel()
    c_idx = np.repeat(np.arange(rows.size), p)
    return sp.csr_array((vals.ravel(), (r_idx, c_idx)), shape=(term.q, rows.size))


def _minus(S, prod):
    """S - prod for any mix of dense and sparse (dense when either is)."""
    if sp.issparse(S) and sp.issparse(prod):
        return S - prod
    return as_dense(S) - as_dense(prod)


def _col_sumsq(a) -> np.ndarray:
    """(m,) column sums of squares of a dense or sparse (rows, m) matrix."""
    if sp.issparse(a):
        return np.asarray(a.multiply(a).sum(axis=0)).ravel()
    return np.einsum("ij,ij->j", a, a)


def leverage(L, terms, templates: list[np.ndarray], X: np.ndarray,
             weights: np.ndarray) -> np.ndarray:
    """(n,) diagonal of the hat matrix, h_r = w_r ||L^{-1} [Lambda' z_r; x_r]||^2.

    Parameters
    ----------
    L : ``BlockedCholesky`` filled at the fit's theta.
    terms : the model's random-effects terms with their rows (``ReTerm``), in the order of
        L's blocks.
    templates : per term the (p_j, p_j) template T_j at that theta.
    X : (n, p) fixed-effects matrix; weights : (n,) prior weights.
    """
    n, p = X.shape
    k, t = L.A.k, L.trail
    F, off = _trailing_factor(L, p)
    inv = [L.diag[j].as_sparse("inv") for j in range(t)]
    rows_total = max(int(off[-1]), max((L.A.dims[j][0] * L.A.dims[j][1] for j in range(k)),
                                       default=1))
    chunk = max(1, min(n, CHUNK_ENTRIES // rows_total))
    out = np.empty(n)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(n, start + chunk))
        total = np.zeros(rows.size)
        a = []
        for j in range(t):
            rhs = _re_columns(terms[j], templates[j], rows)
            for m in range(j):
                rhs = _minus(rhs, L.off[(j, m)] @ a[m])
            a.append(inv[j] @ rhs)
            total += _col_sumsq(a[j])
        rhs = np.empty((int(off[-1]), rows.size))
        for j in range(t, k):
            rhs[off[j - t]:off[j - t + 1]] = _re_columns(terms[j], templates[j], rows).toarray()
        rhs[off[-2]:] = X[rows].T
        for m in range(t):
            for j in range(t, k):
                rhs[off[j - t]:off[j - t + 1]] -= as_dense(L.off[(j, m)] @ a[m])
            rhs[off[-2]:] -= as_dense(L.xz[m][:p] @ a[m])
        sol = sla.solve_triangular(F, rhs, lower=True, check_finite=False)
        out[rows] = weights[rows] * (total + _col_sumsq(sol))
    return out


@with_blas_threads
def hatvalues(result: Any) -> pd.Series:
    """Leverages: the diagonal of the hat matrix of the fitted values (lme4's ``hatvalues``).

    Parameters
    ----------
    result : a fitted linear mixed model (``LmerResult``).

    Returns
    -------
    Series (n,) indexed like the data rows used in the fit (``rows.row_index``); they sum to
    trace(H), the effective number of parameters of the fitted values.
    """
    refuse_residual_structure(result, "hatvalues")
    d = result.rows
    L = _workspace_at(result)
    h = leverage(L, d.terms, result.model.templates(result.theta), d.X,
                 np.asarray(d.weights, dtype=float))
    return pd.Series(h, index=d.row_index, name="hat")


# ---- case deletion ----------------------------------------------------------------------------
def _tile_positions(block: sp.csr_array, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Positions in ``block.data`` of the entries (rows[a], cols[b]) (all must be stored)."""
    pos = np.empty((rows.size, cols.size), dtype=np.int64)
    for a, r in enumerate(rows):
        lo, hi = block.indptr[r], block.indptr[r + 1]
        pos[a] = lo + np.searchsorted(block.indices[lo:hi], cols)
    if not np.array_equal(block.indices[pos], np.broadcast_to(cols, pos.shape)):
        raise MixedModelsError("a row's level pair is missing from the cross-products")
    return pos


def without_row(A: CrossProducts, terms, X: np.ndarray, y: np.ndarray, offset: np.ndarray,
                weights: np.ndarray, r: int) -> CrossProducts:
    """The cross-products of the data without row r: A minus row r's own products.

    Parameters
    ----------
    A : cross-products of all n rows (unchanged).
    terms : the random-effects terms A was built from (``ReTerm``), in the same order.
    X : (n, p); y, offset, weights : (n,) the arrays A was built from.
    r : the row to delete (0-based position).

    Returns
    -------
    CrossProducts for n - 1 rows with A's block structure (levels and pairs kept, their sums
    reduced).
    """
    w = float(weights[r])
    v = np.append(X[r], y[r] - offset[r])  # (p + 1,) the row of [X, y - offset]
    zs = [t.z[r] for t in terms]
    levels = [int(t.refs[r]) for t in terms]
    diag, xz = [], []
    for t, z, g, D, B in zip(terms, zs, levels, A.diag, A.xz):
        D = D.copy()
        D[g] -= w * np.outer(z, z)
        diag.append(D)
        B = B.copy()
        B[:, g * t.p:(g + 1) * t.p] -= w * np.outer(v, z)
        xz.append(B)
    off = {}
    for (i, j), block in A.off.items():
        block = sp.csr_array(block, copy=True)
        block.sort_indices()
        slot_i = levels[i] * terms[i].p + np.arange(terms[i].p)
        slot_j = levels[j] * terms[j].p + np.arange(terms[j].p)
        block.data[_tile_positions(block, slot_i, slot_j)] -= w * np.outer(zs[i], zs[j])
        off[(i, j)] = block
    return dataclasses.replace(A, diag=tuple(diag), off=off, xz=tuple(xz),
                               xx=A.xx - w * np.outer(v, v), n=A.n - 1,
                               sum_log_w=A.sum_log_w - math.log(w))


@dataclass(frozen=True, eq=False)
class Influence:
    """Case-deletion refits (lme4's ``influence.merMod``, one case at a time).

    Attributes
    ----------
    fixed_effects : DataFrame (n, p), row r holds beta-hat refitted without row r (lme4's
        ``fixed.effects[-case]``); index: the data rows used (``rows.row_index``).
    fixed_se : DataFrame (n, p), the standard errors of those refits (sqrt of the diagonal of
        lme4's ``vcov[-case]``).
    theta : DataFrame (n, n_theta) and sigma : Series (n,), the refits' covariance parameters.
    converged : Series (n,) bool, the refit ended without an error or a warning.
    feval : Series (n,) int, objective evaluations of each refit.
    fixef : Series (p,) and vcov : DataFrame (p, p), those of the full fit.
    """

    fixed_effects: pd.DataFrame
    fixed_se: pd.DataFrame
    theta: pd.DataFrame
    sigma: pd.Series
    converged: pd.Series
    feval: pd.Series
    fixef: pd.Series
    vcov: pd.DataFrame

    def dfbeta(self) -> pd.DataFrame:
        """(n, p) beta_(-r) - beta (lme4's ``dfbeta(influence(m))``)."""
        return self.fixed_effects - self.fixef

    def dfbetas(self) -> pd.DataFrame:
        """(n, p) dfbeta scaled by the refits' standard errors (lme4's ``dfbetas``)."""
        return self.dfbeta() / self.fixed_se

    def cooks_distance(self) -> pd.Series:
        """(n,) Cook's distance as lme4's ``cooks.distance(influence(m))`` (module docstring)."""
        db = self.dfbeta().to_numpy()
        n_cases, p = db.shape
        V = self.vcov.to_numpy()
        quad = np.einsum("ri,ri->r", db, np.linalg.solve(V, db.T).T)
        return pd.Series((n_cases - p) / (n_cases * p) * quad, index=self.fixed_effects.index,
                         name="cooks_distance")


def _check_rank(A: CrossProducts, A_r: CrossProducts, r: int) -> None:
    """Raise when X loses rank without row r (lme4 would drop a column of that refit).

    The Cholesky factor of a numerically singular X'WX need not fail after the downdate's
    rounding, and would give a meaningless beta; so look at the smallest eigenvalue of the
    downdated X'WX scaled by the full one's diagonal (a column whose weight was all in row r
    scales to about zero).
    """
    p = A.p
    scale = np.sqrt(np.diag(A.xx)[:p])
    scaled = A_r.xx[:p, :p] / np.outer(scale, scale)
    if np.linalg.eigvalsh(scaled)[0] < RANK_TOL:
        raise MixedModelsError(f"the fixed-effects matrix is rank deficient without row {r}")


def _refit_without(result: Any, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float,
                                                 bool, int]:
    """(beta, se, theta, sigma, converged, feval) of the fit without row r."""
    d, A = result.rows, result.model.A
    A_r = without_row(A, d.terms, d.X, d.y, d.offset, d.weights, r)
    _check_rank(A, A_r, r)
    model = LinearMixedModel(A_r, result.terms, reml=result.reml)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optsum = model.fit(theta0=result.theta)
    L = model.L
    sigma = sigma_hat(L.pwrss(), A_r.n, A_r.p, model.reml)
    LX_inv = sla.solve_triangular(L.xx[:A_r.p, :A_r.p], np.eye(A_r.p), lower=True)
    se = sigma * np.sqrt(np.einsum("ij,ij->j", LX_inv, LX_inv))
    return (L.beta(), se, np.asarray(optsum.theta), sigma, not caught, optsum.feval)


@with_blas_threads
def influence(result: Any, progress: bool | None = None) -> Influence:
    """Refit without each row in turn: lme4's ``influence(m)`` for a linear mixed model.

    Each refit starts at the full fit's theta, on the full cross-products minus the deleted
    row's contribution (module docstring). A refit that fails (a singular X'WX without the
    row, say) gives a row of NaN with ``converged`` False.

    Parameters
    ----------
    result : a fitted linear mixed model (``LmerResult``).
    progress : a progress counter on stderr; None shows it when there are at least 100 rows
        and stderr is a terminal, False never.

    Returns
    -------
    Influence, its frames indexed like the data rows used (``rows.row_index``); Cook's
    distance from ``.cooks_distance()``.
    """
    refuse_residual_structure(result, "influence")
    d = result.rows
    n, p, n_theta = d.n, d.X.shape[1], np.asarray(result.theta).size
    beta, se = np.full((n, p), np.nan), np.full((n, p), np.nan)
    theta, sigma = np.full((n, n_theta), np.nan), np.full(n, np.nan)
    converged, feval = np.zeros(n, dtype=bool), np.zeros(n, dtype=int)
    if progress is None:
        progress = n >= 100 and sys.stderr.isatty()
    bar = _Progress(n, bool(progress))
    failed = {}
    try:
        for r in range(n):
            try:
                beta[r], se[r], theta[r], sigma[r], converged[r], feval[r] = \
                    _refit_without(result, r)
            except (np.linalg.LinAlgError, ValueError, ArithmeticError) as exc:
                # The row keeps its NaN estimates and converged False; one warning at the end.
                failed[r] = f"{type(exc).__name__}: {exc}"
            bar.update()
    finally:
        bar.close()
    if failed:
        first = next(iter(failed.items()))
        warn_user(f"{len(failed)} of {n} case-deletion refits failed (their rows are NaN); "
                  f"first, row {first[0]}: {first[1]}", InfluenceWarning)
    names = list(result.info.x_names)
    index = d.row_index
    theta_names = [name for t in result.terms for name in t.theta_names()]
    return Influence(
        fixed_effects=pd.DataFrame(beta, index=index, columns=names),
        fixed_se=pd.DataFrame(se, index=index, columns=names),
        theta=pd.DataFrame(theta, index=index, columns=theta_names),
        sigma=pd.Series(sigma, index=index, name="sigma"),
        converged=pd.Series(converged, index=index, name="converged"),
        feval=pd.Series(feval, index=index, name="feval"),
        fixef=pd.Series(np.asarray(result.beta, dtype=float), index=names, name="fixef"),
        vcov=pd.DataFrame(np.asarray(result.vcov, dtype=float), index=names, columns=names))
