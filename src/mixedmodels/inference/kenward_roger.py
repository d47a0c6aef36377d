"""Kenward-Roger adjusted Var(beta-hat) and denominator df as pbkrtest 0.5.2 (algorithm.md §11).

pbkrtest writes the marginal covariance linearly in the variance components,
``V = sum_r gamma_r G_r``: one gamma per entry (lower triangle) of each term's covariance
Sigma_i = sigma^2 T_i T_i', with ``G_r = Z_i (I_l (x) E_ab) Z_i'``, and sigma^2 with
``G = W^{-1}`` (pbkrtest: G = I, see below). A structured term (``cs()``, ``ar1()``) is not
linear in its parameters; there ``E_r = dSigma_i / d gamma_r`` at the estimates, for its
variances and correlation (``CovarianceTemplate.covariance_derivatives``), Kenward and
Roger's G_r = dV/d gamma_r with the second-derivative term left out, as pbkrtest leaves it. It then inverts the n x n V. Here nothing of size
n is formed. With ``V = sigma^2 M``, ``M = W^{-1} + Z D Z'``, ``D = Lambda Lambda'``, the Woodbury
identity ``H = M^{-1} = W - W Z Lambda S^{-1} Lambda' Z' W`` (S = Lambda'Z'WZ Lambda + I = L L',
the factor the objective uses) reduces every product to the q x q, q x p and p x p sandwiches

    A_ZZ = Z'HZ = C_ZZ - Y_Z'Y_Z,   A_ZX = Z'HX = C_ZX - Y_Z'Y_X,   A_XX = X'HX = C_XX - Y_X'Y_X

with C the cross-products Z'WZ, Z'WX, X'WX and ``Y_Z = L^{-1} Lambda' C_ZZ``,
``Y_X = L^{-1} Lambda' C_ZX`` (= R_ZX, read off the factor). Write
``H G_r H = delta_r H + H Z F_r Z' H``: for a covariance entry delta_r = 0 and F_r = I (x) E_ab
on its term's block; for sigma^2, ``G = W^{-1} = M - Z D Z'`` gives delta = 1 and F = -D. Then,
with V^{-1} = H / sigma^2,

    P_r  = -sigma^-4 (delta_r A_XX + A_ZX' F_r A_ZX)
    Q_rs =  sigma^-6 (delta_r delta_s A_XX + delta_r A_ZX'F_s A_ZX + delta_s A_ZX'F_r A_ZX
                      + A_ZX' F_r A_ZZ F_s A_ZX)
    tr(V^-1 G_r V^-1 G_s) = sigma^-4 (delta_r delta_s n + delta_r tr(F_s A_ZZ)
                                      + delta_s tr(F_r A_ZZ) + tr(F_r A_ZZ F_s A_ZZ))

and the rest of pbkrtest's algebra is p x p. The only cubic step is Y_Z'Y_Z, and the rows of
Y_Z that belong to a block-diagonal factor block (the first term's) stay sparse, so it costs
O(q^2 q_filled) with q_filled the random effects of the filled-in (crossed) terms (InstEval,
q = 4100 of which 1128 filled: about 2 s).

Two pbkrtest behaviours are reproduced on purpose:

- **ML fits**: pbkrtest refits the model by REML (``update(REML = TRUE)``) and everything,
  including the estimates, comes from that refit. Here the REML fit is optimized on the fitted
  model's cross-products (``LinearMixedModel(A, terms, reml=True).fit``), so no data are needed.
- **Prior weights**: pbkrtest's V ignores them (sigma^2 has G = I, and Z, X are unweighted)
  while its unadjusted Var(beta-hat) is lme4's weighted one, an inconsistency that gives the
  weighted cbpp fit df of 4000 to 10000. ``weights="pbkrtest"`` (the default) reproduces it,
  building unweighted cross-products from the fit's rows (one pass over n);
  ``weights="model"`` uses the model's V = sigma^2 (W^{-1} + Z D Z') throughout.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.linalg.blas import dsyrk

from ..crossprod import CrossProducts, from_design
from ..errors import MixedModelsError
from ..linalg.cholesky import TileBlock
from ..lmm import LinearMixedModel
from ..objective import sigma_hat
from .protocol import refuse_residual_structure

WEIGHT_MODES = ("pbkrtest", "model")
# Z'HZ is held dense (q, q), with a few temporaries of the same size: 12 000 random effects need
# about 3.5 GB.
MAX_DENSE_Q = 12_000


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
def _block_diag_sparse(tiles: np.ndarray) -> sp.csr_array:
    """Sparse block diagonal (l p, l p) of tiles (l, p, p)."""
    l, p, _ = tiles.shape
    base = (np.arange(l) * p)[:, None, None]
    rows = np.broadcast_to(base + np.arange(p)[None, :, None], tiles.shape).ravel()
    cols = np.broadcast_to(base + np.arange(p)[None, None, :], tiles.shape).ravel()
    return sp.csr_array((tiles.ravel(), (rows, cols)), shape=(l * p, l * p))


def _zz_block_row(A: CrossProducts, j: int) -> sp.csr_array:
    """Block row j of C_ZZ = Z'WZ, sparse (q_j, q)."""
    blocks = []
    for m in range(A.k):
        if m == j:
            blocks.append(_block_diag_sparse(A.diag[j]))
        else:
            block = A.off[(j, m)] if m < j else A.off[(m, j)].T
            blocks.append(sp.csr_array(block))
    return sp.csr_array(sp.hstack(blocks, format="csr"))


def _scale_rows(M, left: np.ndarray):
    """``(I_l (x) left) M`` for M (l p, m), dense or sparse, and left (p, p)."""
    p = left.shape[0]
    l = M.shape[0] // p
    if sp.issparse(M):
        return sp.csr_array(_block_diag_sparse(np.broadcast_to(left, (l, p, p))) @ M)
    return np.einsum("ab,lbm->lam", left, M.reshape(l, p, -1)).reshape(M.shape)


def _times(L_block, Y):
    """L_block @ Y for either operand sparse or dense; sparse only when both are."""
    if sp.issparse(L_block) and sp.issparse(Y):
        return sp.csr_array(L_block @ Y)
    if sp.issparse(Y):
        return np.asarray((Y.T @ np.asarray(L_block).T).T)
    return np.asarray(L_block @ Y)


def _forward_solve(L, B: list) -> list:
    """Block rows of L_theta^{-1} B for block rows B[j] (q_j, m).

    A block row stays sparse while everything it is computed from is sparse and L_jj is block
    diagonal (typically the first term's: its rows of L^{-1} Lambda' Z'Z have the pattern of Z'Z),
    which keeps the q x q work to the dense (filled-in) terms.
    """
    Y: list = []
    for j, b in enumerate(B):
        r = b
        for m in range(j):
            prod = _times(L.off[(j, m)], Y[m])
            if sp.issparse(r) and not sp.issparse(prod):
                r = r.toarray()
            r = r - prod
        blk = L.diag[j]
        if sp.issparse(r) and isinstance(blk, TileBlock):
            Y.append(sp.csr_array(_block_diag_sparse(blk.inv) @ r))
        else:
            r = r.toarray() if sp.issparse(r) else r
            Y.append(L.diag_solve(j, r))
    return Y


def _subtract_gram(A_ZZ: np.ndarray, Y) -> None:
    """In place: upper triangle of A_ZZ -= Y'Y (Y (r, q) sparse or dense)."""
    if sp.issparse(Y):
        G = sp.coo_array(sp.triu(Y.T @ Y))
        G.sum_duplicates()
        A_ZZ[G.row, G.col] -= G.data
    elif Y.shape[0]:
        # Y'Y is the O(q^2 q_j) step: a symmetric rank-k update does half a product's work.
        A_ZZ -= dsyrk(1.0, Y, trans=1, lower=0)


def _mirror_upper(M: np.ndarray, chunk: int = 512) -> None:
    """In place: lower triangle of the square M <- its upper triangle (chunked copies)."""
    n = M.shape[0]
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        block = M[start:stop, start:stop]
        lower = np.tril_indices(stop - start, -1)
        block[lower] = block.T[lower]
        M[stop:, start:stop] = M[start:stop, stop:].T


def sandwiches(model: LinearMixedModel, theta: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A_ZZ (q, q), A_ZX (q, p), A_XX (p, p)): Z'HZ, Z'HX, X'HX with H = (W^-1 + Z D Z')^-1.

    Refills ``model``'s factor at theta (pass a private workspace).
    """
    A, p = model.A, model.A.p
    model.objective(theta)
    L = model.L
    offsets = np.cumsum([0] + [l * q for l, q in A.dims])
    C_rows = [_zz_block_row(A, j) for j in range(A.k)]
    Y_Z = _forward_solve(L, [_scale_rows(C, T.T)
                             for C, T in zip(C_rows, model.templates(theta))])
    A_ZZ = np.empty((offsets[-1], offsets[-1]))
    for j, C in enumerate(C_rows):
        A_ZZ[offsets[j]:offsets[j + 1]] = C.toarray()
    for Y in Y_Z:
        _subtract_gram(A_ZZ, Y)
    _mirror_upper(A_ZZ)
    A_ZX = np.hstack([A.xz[j][:p] for j in range(A.k)]).T
    for j, Y in enumerate(Y_Z):
        A_ZX -= np.asarray(Y.T @ L.xz[j][:p].T)
    Lx = L.xx[:p, :p]
    return A_ZZ, A_ZX, Lx @ Lx.T


# ---- pbkrtest's P, Q and trace terms --------------------------------------------------------
def covariance_parameters(model: LinearMixedModel, theta: np.ndarray, sigma: float = 1.0
                          ) -> list[dict]:
    """pbkrtest's variance parameters, sigma^2 last, each as ``{term j: E_j}``.

    ``F_r`` is block diagonal with ``I (x) E_j`` on term j's random effects (zero elsewhere).
    For a variance parameter gamma_r of term j, E_j = dSigma_j / d gamma_r from the term's
    covariance template (an unstructured term's entry (a, b): ones at (a, b) and (b, a), as
    pbkrtest; these do not depend on theta or sigma); for sigma^2: F = -D, that is
    ``{j: -T_j T_j'}`` for every term.
    """
    params = []
    for j, (t, s) in enumerate(zip(model.terms, model.slices)):
        for E in t.covariance.covariance_derivatives(theta[s], sigma):
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
    info = result.info
    if weights == "model" or not info.has_weights:
        return result.model.A
    if hasattr(info, "unit_weight_blocks"):      # a fit from a source: one more pass
        return info.unit_weight_blocks()
    rows = result.rows
    if np.all(np.asarray(rows.weights) == 1.0):
        return result.model.A
    return from_design(rows.terms, rows.X, rows.y, rows.offset, np.ones_like(rows.weights))


_CACHE: dict = {mode: weakref.WeakKeyDictionary() for mode in WEIGHT_MODES}


def kenward_roger_info(result, weights: str = "pbkrtest") -> KenwardRogerInfo:
    """Phi, Phi_A, P and W of pbkrtest's ``vcovAdj`` for ``result`` (cached per result).

    weights : "pbkrtest" (V without the prior weights, as pbkrtest) or "model" (V with them);
        the two agree for unweighted fits. See the module docstring.
    """
    refuse_residual_structure(result, "Kenward-Roger")
    if weights not in WEIGHT_MODES:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_MODES)}, not {weights!r}")
    cached = _CACHE[weights].get(result)
    if cached is not None:
        return cached
    q = sum(t.q for t in result.terms)
    if q > MAX_DENSE_Q:
        raise MixedModelsError(
            f"Kenward-Roger needs dense q x q matrices and this model has q = {q} random effects "
            f"(limit {MAX_DENSE_Q}); use ddf='satterthwaite'")
    theta, beta, sigma, Phi, refitted = _reml_fit(result)
    workspace = LinearMixedModel(_covariance_products(result, weights), result.terms, reml=True)
    A_ZZ, A_ZX, A_XX = sandwiches(workspace, theta)
    dims = workspace.A.dims
    offsets = np.cumsum([0] + [l * p for l, p in dims])
    P, Q, K = kr_matrices(A_ZZ, A_ZX, A_XX, covariance_parameters(workspace, theta, sigma),
                          offsets, dims, workspace.A.n, sigma**2)
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
    u = (Theta @ Phi) @ info.P @ Phi             # (g, p, p): Theta Phi P_r Phi
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
    rank deficient, else K. (The KR df and F depend on K only through its row space.)"""
    K = np.atleast_2d(np.asarray(K, dtype=float))
    rank = np.linalg.matrix_rank(K)
    if rank < K.shape[0]:
        # Pivoting puts independent rows first, so the leading columns of Q span the row space.
        Qm, _, _ = sla.qr(K.T, mode="economic", pivoting=True)
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
