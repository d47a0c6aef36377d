"""Kenward-Roger adjusted Var(beta-hat) and denominator df, as pbkrtest 0.5.2 (``algorithm.md`` §11).

pbkrtest writes the marginal covariance linearly in the variance components,
``V = sum_r gamma_r G_r``: one gamma per entry (lower triangle) of each term's covariance
Sigma_i = sigma^2 T_i T_i' with ``G_r = Z_i (I_l (x) E_ab) Z_i'``, and sigma^2 with G = I. It then
forms the n x n inverse of V. Here nothing of size n is formed: with ``V = sigma^2 M``,
``M = I + Z D Z'`` and ``D = Lambda Lambda'``, every product reduces by the Woodbury identity
``H = M^{-1} = I - Z Lambda S^{-1} Lambda' Z'`` (S = Lambda'Z'Z Lambda + I = L L', the factor the
objective uses) to the q x q, q x p and p x p "sandwiches"

    A_ZZ = Z'HZ = C_ZZ - Y_Z'Y_Z,   A_ZX = Z'HX = C_ZX - Y_Z'Y_X,   A_XX = X'HX = C_XX - Y_X'Y_X

with C the cross-products and ``Y_Z = L^{-1} Lambda' C_ZZ``, ``Y_X = L^{-1} Lambda' C_ZX``
(= R_ZX). Write ``H G_r H = delta_r H + H Z F_r Z' H``: for a covariance entry delta_r = 0 and
F_r = I (x) E_ab on its term's block; for sigma^2, G = I = M - Z D Z' gives delta = 1, F = -D.
Then (V^{-1} = H / sigma^2)

    P_r  = -sigma^-4 (delta_r A_XX + A_ZX' F_r A_ZX)
    Q_rs =  sigma^-6 (delta_r delta_s A_XX + delta_r A_ZX'F_s A_ZX + delta_s A_ZX'F_r A_ZX
                      + A_ZX' F_r A_ZZ F_s A_ZX)
    tr(V^-1 G_r V^-1 G_s) = sigma^-4 (delta_r delta_s n + delta_r tr(F_s A_ZZ)
                                      + delta_s tr(F_r A_ZZ) + tr(F_r A_ZZ F_s A_ZZ))

and pbkrtest's remaining algebra is p x p. The dense q x q pieces cost O(q^3) once (InstEval's
q = 4100 takes a few seconds); the data are never revisited except as noted below.

Two pbkrtest behaviours are reproduced on purpose:

- **ML fits**: pbkrtest refits the model by REML (``update(REML = TRUE)``) and everything,
  including the estimates, comes from that refit. Here the REML fit is optimized on the fitted
  model's cross-products (``LinearMixedModel(A, terms, reml=True).fit``), so no data are needed.
- **Prior weights**: pbkrtest's V ignores them (its sigma^2 component is G = I, not W^{-1},
  and Z, X are unweighted) while its unadjusted Var(beta-hat) is lme4's weighted one. With
  ``weights="pbkrtest"`` (the default, which reproduces pbkrtest's numbers) the unweighted
  cross-products are built from the design arrays (one pass over n); ``weights="model"`` uses the
  model's V = sigma^2 (W^{-1} + Z D Z') throughout, the consistent version.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from scipy.linalg.blas import dsyrk

from ..crossprod import CrossProducts, from_design
from ..lmm import LinearMixedModel
from ..objective import sigma_hat

WEIGHT_MODES = ("pbkrtest", "model")


@dataclass(frozen=True)
class KenwardRogerInfo:
    """The REML fit's pieces that every Kenward-Roger test needs (p fixed effects, g = number of
    variance parameters including sigma^2).

    beta : (p,) REML estimates; sigma : REML residual SD.
    vcov : (p, p) unadjusted Var(beta-hat) (Phi); vcov_adj : (p, p) adjusted (Phi_A).
    P : (g, p, p) pbkrtest's ``P_r = -X'V^-1 G_r V^-1 X``.
    W : (g, g) ``2 I^-1``, the approximate covariance of the variance parameters.
    refitted : True when the result was an ML fit and these come from its REML refit.
    """

    beta: np.ndarray
    sigma: float
    vcov: np.ndarray
    vcov_adj: np.ndarray
    P: np.ndarray
    W: np.ndarray
    refitted: bool


# ---- the q x q sandwiches -------------------------------------------------------------------
def _dense_zz(A: CrossProducts) -> np.ndarray:
    """C_ZZ = Z'WZ as a dense (q, q) array from the stored blocks."""
    offsets = np.cumsum([0] + [l * p for l, p in A.dims])
    C = np.zeros((offsets[-1], offsets[-1]))
    for j, (l, p) in enumerate(A.dims):
        rows = slice(offsets[j], offsets[j + 1])
        C[rows, rows] = sla.block_diag(*A.diag[j]) if p > 1 else np.diag(A.diag[j][:, 0, 0])
        for i in range(j + 1, A.k):
            block = A.off[(i, j)]
            block = block.toarray() if hasattr(block, "toarray") else np.asarray(block)
            C[offsets[i]:offsets[i + 1], rows] = block
            C[rows, offsets[i]:offsets[i + 1]] = block.T
    return C


def _scale_rows(M: np.ndarray, left: np.ndarray) -> np.ndarray:
    """``(I_l (x) left) M`` for M (l p, m) and left (p, p): left applied within each level."""
    p = left.shape[0]
    l = M.shape[0] // p
    return np.einsum("ab,lbm->lam", left, M.reshape(l, p, -1)).reshape(M.shape)


def _forward_solve(L, B: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """L_theta^{-1} B for B (q, m), block by block with the blocked factor's own blocks."""
    Y = np.empty_like(B)
    for j in range(len(offsets) - 1):
        r = B[offsets[j]:offsets[j + 1]].copy()
        for m in range(j):
            r -= L.off[(j, m)] @ Y[offsets[m]:offsets[m + 1]]
        Y[offsets[j]:offsets[j + 1]] = L.diag_solve(j, r)
    return Y


def sandwiches(model: LinearMixedModel, theta: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A_ZZ (q, q), A_ZX (q, p), A_XX (p, p)): Z'HZ, Z'HX, X'HX with H = (W^-1 + Z D Z')^-1.

    Refills ``model``'s factor at theta (pass a private workspace).
    """
    A, p = model.A, model.A.p
    model.objective(theta)
    L = model.L
    templates = model.templates(theta)
    offsets = np.cumsum([0] + [l * q for l, q in A.dims])
    C = _dense_zz(A)
    B = np.vstack([_scale_rows(C[offsets[j]:offsets[j + 1]], T.T)
                   for j, T in enumerate(templates)])
    Y_Z = _forward_solve(L, B, offsets)
    del B
    Y_X = np.vstack([L.xz[j][:p].T for j in range(A.k)])
    # Y_Z'Y_Z is the O(q^3) step: a symmetric rank-k update does half the work of a product.
    YY = dsyrk(1.0, Y_Z, trans=1, lower=0)
    A_ZZ = C
    A_ZZ -= np.triu(YY) + np.triu(YY, 1).T
    del YY
    C_ZX = np.hstack([A.xz[j][:p] for j in range(A.k)]).T
    A_ZX = C_ZX - Y_Z.T @ Y_X
    Lx = L.xx[:p, :p]
    return A_ZZ, A_ZX, Lx @ Lx.T


# ---- pbkrtest's P, Q and trace terms --------------------------------------------------------
def covariance_parameters(model: LinearMixedModel, theta: np.ndarray) -> list[dict]:
    """pbkrtest's variance parameters, sigma^2 last, each as ``{term j: E_j}``.

    ``F_r`` is block diagonal with ``I (x) E_j`` on term j's random effects (zero elsewhere).
    For the covariance entry (a, b) of term j: ``{j: E_ab}`` (ones at (a, b) and (b, a)); for
    sigma^2: F = -D, that is ``{j: -T_j T_j'}`` for every term.
    """
    params = []
    for j, t in enumerate(model.terms):
        for a, b in zip(*t.tril_indices()):
            E = np.zeros((t.p, t.p))
            E[a, b] = E[b, a] = 1.0
            params.append({j: E})
    params.append({j: -(T @ T.T) for j, T in enumerate(model.templates(theta))})
    return params


def _tile_moments(A_ZZ: np.ndarray, offsets: np.ndarray, dims) -> dict:
    """``S_ij[x, y, u, v] = sum_{l, m} X_lm[x, y] X_lm[u, v]`` over the p_i x p_j tiles X_lm of
    block (i, j) of A_ZZ, for every pair of terms (i, j).

    Every trace ``tr(F_r A F_s A)`` is a contraction of these with the two parameters' E's, so
    the q x q matrix is read once, contiguously, whatever the number of parameters.
    """
    k = len(dims)
    S = {}
    for i in range(k):
        li, pi = dims[i]
        for j in range(i, k):
            lj, pj = dims[j]
            block = A_ZZ[offsets[i]:offsets[i + 1], offsets[j]:offsets[j + 1]]
            if pi == 1 and pj == 1:
                S[(i, j)] = np.full((1, 1, 1, 1), np.einsum("ab,ab->", block, block))
            else:
                tiles = block.reshape(li, pi, lj, pj).transpose(1, 3, 0, 2).reshape(pi * pj, -1)
                S[(i, j)] = (tiles @ tiles.T).reshape(pi, pj, pi, pj)
            S[(j, i)] = S[(i, j)].transpose(1, 0, 3, 2)
    return S


def kr_matrices(A_ZZ: np.ndarray, A_ZX: np.ndarray, A_XX: np.ndarray, params: list[dict],
                offsets: np.ndarray, dims, n: int, sigma2: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pbkrtest's P (g, p, p), Q (g, g, p, p) and ``tr(V^-1 G_r V^-1 G_s)`` (g, g).

    params : from ``covariance_parameters`` (sigma^2, with delta = 1, last); offsets : (k + 1,)
    start of each term's block in the q random effects; dims : per term (levels, p_j);
    n : observations; sigma2 : residual variance.
    """
    g, p = len(params), A_XX.shape[0]
    delta = np.zeros(g)
    delta[-1] = 1.0
    FX = np.zeros((g,) + A_ZX.shape)          # F_r A_ZX, (q, p) each
    trace_FA = np.zeros(g)                     # tr(F_r A_ZZ)
    for r, F in enumerate(params):
        for j, E in F.items():
            rows = slice(offsets[j], offsets[j + 1])
            FX[r, rows] = _scale_rows(A_ZX[rows], E)
            l, pj = dims[j]
            diag_sum = np.einsum("lalb->ab", A_ZZ[rows, rows].reshape(l, pj, l, pj))
            trace_FA[r] += np.sum(E * diag_sum)
    AFX = np.stack([A_ZZ @ FX[s] for s in range(g)])
    S = _tile_moments(A_ZZ, offsets, dims)
    P = np.empty((g, p, p))
    Q = np.empty((g, g, p, p))
    K = np.empty((g, g))
    for r in range(g):
        ZFZ_r = A_ZX.T @ FX[r]
        P[r] = -(delta[r] * A_XX + ZFZ_r) / sigma2**2
        for s in range(g):
            Q[r, s] = (delta[r] * delta[s] * A_XX + delta[r] * A_ZX.T @ FX[s]
                       + delta[s] * ZFZ_r + FX[r].T @ AFX[s]) / sigma2**3
            tr_FAFA = sum(np.einsum("ux,yv,xyuv->", Ei, Ej, S[(i, j)])
                          for i, Ei in params[r].items() for j, Ej in params[s].items())
            K[r, s] = (delta[r] * delta[s] * n + delta[r] * trace_FA[s] + delta[s] * trace_FA[r]
                       + tr_FAFA) / sigma2**2
    return P, Q, K


def adjusted_vcov(Phi: np.ndarray, P: np.ndarray, Q: np.ndarray, K: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """pbkrtest's ``vcovAdj_internal`` from P, Q and the trace terms: (Phi_A (p, p), W (g, g)).

    ``I_rs = tr(V^-1 G_r V^-1 G_s) - 2 tr(Phi Q_rs) + tr(Phi P_r Phi P_s)``; ``W = 2 I^-1``
    (a generalized inverse when I is near singular, as pbkrtest); ``U = sum W_rs (Q_rs -
    P_r Phi P_s)``; ``Phi_A = Phi + 2 Phi U Phi``.
    """
    g = P.shape[0]
    PhiP = np.einsum("ij,rjk->rik", Phi, P)
    info = (K - 2.0 * np.einsum("ij,rsji->rs", Phi, Q)
            + np.einsum("rij,sji->rs", PhiP, PhiP))
    info = (info + info.T) / 2.0
    if np.min(np.abs(np.linalg.eigvalsh(info))) > 1e-10:
        W = 2.0 * np.linalg.inv(info)
    else:
        W = 2.0 * np.linalg.pinv(info, rcond=np.sqrt(np.finfo(float).eps))
    W = (W + W.T) / 2.0
    U = np.zeros_like(Phi)
    for r in range(g):
        for s in range(g):
            U += W[r, s] * (Q[r, s] - P[r] @ Phi @ P[s])
    return Phi + 2.0 * Phi @ U @ Phi, W


# ---- the REML fit and the cache -------------------------------------------------------------
def _reml_fit(result) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, bool]:
    """(theta, beta, sigma, Phi, refitted) of the REML fit (the result itself when REML)."""
    if result.reml:
        return (np.asarray(result.theta, float), np.asarray(result.beta, float),
                float(result.sigma), np.asarray(result.vcov, float), False)
    model = LinearMixedModel(result.model.A, result.terms, reml=True)
    summary = model.fit(theta0=np.asarray(result.theta, float))
    theta = np.asarray(summary.theta, float)
    model.objective(theta)
    A, p = model.A, model.A.p
    L = model.L
    sigma = sigma_hat(L.pwrss(), A.n, p, True)
    RX_inv = sla.solve_triangular(L.xx[:p, :p], np.eye(p), lower=True, check_finite=False)
    return theta, L.beta(), sigma, sigma**2 * (RX_inv.T @ RX_inv), True


def _covariance_products(result, weights: str) -> CrossProducts:
    """The cross-products that define V: the model's, or pbkrtest's unweighted ones."""
    design = result.design
    if weights == "model" or np.all(np.asarray(design.weights) == 1.0):
        return result.model.A
    return from_design(result.terms, design.X, design.y, design.offset,
                       np.ones_like(design.weights))


_CACHE: dict = {mode: weakref.WeakKeyDictionary() for mode in WEIGHT_MODES}


def kenward_roger_info(result, weights: str = "pbkrtest") -> KenwardRogerInfo:
    """Phi, Phi_A, P and W of pbkrtest's ``vcovAdj`` for ``result`` (cached per result).

    weights : "pbkrtest" (V without the prior weights, as pbkrtest) or "model" (V with them);
        the two agree for unweighted fits. See the module docstring.
    """
    if weights not in WEIGHT_MODES:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_MODES)}, not {weights!r}")
    cached = _CACHE[weights].get(result)
    if cached is not None:
        return cached
    theta, beta, sigma, Phi, refitted = _reml_fit(result)
    workspace = LinearMixedModel(_covariance_products(result, weights), result.terms, reml=True)
    A_ZZ, A_ZX, A_XX = sandwiches(workspace, theta)
    dims = workspace.A.dims
    offsets = np.cumsum([0] + [l * p for l, p in dims])
    P, Q, K = kr_matrices(A_ZZ, A_ZX, A_XX, covariance_parameters(workspace, theta), offsets,
                          dims, workspace.A.n, sigma**2)
    del A_ZZ
    Phi_A, W = adjusted_vcov(Phi, P, Q, K)
    info = KenwardRogerInfo(beta=beta, sigma=sigma, vcov=Phi, vcov_adj=Phi_A, P=P, W=W,
                            refitted=refitted)
    _CACHE[weights][result] = info
    return info


# ---- tests -----------------------------------------------------------------------------------
def _div_zero(x: float, y: float, tol: float = 1e-14) -> float:
    """pbkrtest's ``.divZero``: 0/0 (both below tol) is 1."""
    return 1.0 if abs(x) < tol and abs(y) < tol else x / y


def kr_moments(info: KenwardRogerInfo, K: np.ndarray) -> tuple[float, float, int]:
    """(ddf, F scaling, h) for ``K beta = 0``, K (h, p) of full row rank (pbkrtest
    ``.KR_adjust`` / ``Lb_ddf``)."""
    K = np.atleast_2d(np.asarray(K, dtype=float))
    h = K.shape[0]
    Phi = info.vcov
    Theta = K.T @ np.linalg.solve(K @ Phi @ K.T, K)
    u = np.einsum("ij,jk,rkl,lm->rim", Theta, Phi, info.P, Phi)
    traces = np.einsum("rii->r", u)
    A1 = float(traces @ info.W @ traces)
    A2 = float(np.einsum("rs,rij,sji->", info.W, u, u))
    B = (A1 + 6.0 * A2) / (2.0 * h)
    g = ((h + 1) * A1 - (h + 4) * A2) / ((h + 2) * A2)
    denom = 3 * h + 2 * (1 - g)
    c1, c2, c3 = g / denom, (h - g) / denom, (h + 2 - g) / denom
    V0, V1, V2 = 1 + c1 * B, 1 - c2 * B, 1 - c3 * B
    V0 = 0.0 if abs(V0) < 1e-10 else V0
    rho = _div_zero(1 - A2 / h, V1) ** 2 * V0 / V2 / h
    ddf = 4 + (h + 2) / (h * rho - 1)
    scaling = 1.0 if abs(ddf - 2) < 0.01 else ddf * (1 - A2 / h) / (ddf - 2)
    return float(ddf), float(scaling), h


def full_row_rank(K: np.ndarray) -> np.ndarray:
    """pbkrtest's ``force_full_rank``: an orthonormal basis of K's row space when K (h, p) is
    rank deficient, else K."""
    K = np.atleast_2d(np.asarray(K, dtype=float))
    rank = np.linalg.matrix_rank(K)
    if rank < K.shape[0]:
        Qm, _ = np.linalg.qr(K.T)
        return Qm[:, :rank].T
    return K


def t_test(info: KenwardRogerInfo, c: np.ndarray) -> tuple[float, float, float]:
    """(estimate, adjusted SE, ddf) of ``c' beta`` (lmerTest ``get_KR1D``)."""
    c = np.asarray(c, dtype=float)
    ddf = kr_moments(info, c[None, :])[0]
    return float(c @ info.beta), float(np.sqrt(c @ info.vcov_adj @ c)), ddf


def f_test(info: KenwardRogerInfo, K: np.ndarray) -> tuple[float, float, int, float]:
    """(unscaled F, F scaling, h, ddf) for ``K beta = 0`` (pbkrtest ``KRmodcomp``).

    The unscaled F is ``(K beta)'(K Phi_A K')^-1 (K beta) / h``; pbkrtest's F is it times the
    scaling.
    """
    K = full_row_rank(K)
    ddf, scaling, h = kr_moments(info, K)
    Kb = K @ info.beta
    wald = float(Kb @ np.linalg.solve(K @ info.vcov_adj @ K.T, Kb))
    return wald / h, scaling, h, ddf
