"""Starting values for theta from moment estimates on the cross-products (``algorithm.md`` §7).

lme4 starts every fit at theta = 1 on the diagonal and 0 elsewhere. BOBYQA's first trust
region is three quarters of the distance to the bounds, so a start far from the optimum costs
evaluations: InstEval ML spends 88 of its 117 evaluations getting within one unit of deviance.
A one-way ANOVA estimate per term, read off the blocks A (no pass over the data), starts in the
right region and with a trust region of the right size.

Per term j with level tiles G_l = Z_l' W Z_l (p_j, p_j) and OLS residuals r = y - X beta_ols:

- g_l = Z_l' W r and b_l = G_l^{-1} g_l (the per-level least-squares fit of r on Z_l);
- sigma2_j = (r'Wr - sum_l g_l' b_l) / (n - p - p_j l), the residual variance once the term's
  level effects are removed; sigma^2 = the smallest over the terms;
- Sigma_j = mean_l (b_l b_l') - sigma^2 mean_l G_l^{-1} (the ANOVA estimator);
- theta_j from Sigma_j / sigma^2 by the term's covariance template (``covariance.py``: for
  lme4's unstructured term its Cholesky factor), with the eigenvalues of Sigma_j / sigma^2
  clipped to [START_MIN^2, START_MAX^2] so a start never sits on a bound or far out.

Crossed terms absorb part of each other's variance here, so this is a start, not an estimate.
"""
from __future__ import annotations

import numpy as np

from .covariance import STEP_FRACTION
from .crossprod import CrossProducts
from .terms import TermSpec

# Relative SDs (random-effect SD / residual SD) a start may take: never on the bound at 0,
# where BOBYQA's first steps would be zero, and never further out than any fit we have seen.
START_MIN = 0.1
START_MAX = 10.0
# Levels whose tile is this close to singular (relative to its trace) carry no information on
# their own (a subject with a single x value in a (1 + x | subject) term) and are left out.
TILE_RCOND = 1e-8


def _level_fits(G: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-level fits for well-conditioned tiles.

    G (l, p, p), g (l, p) -> (b (m, p), G^{-1} (m, p, p), keep (l,) bool) over the m kept levels.
    """
    p = G.shape[1]
    trace = np.trace(G, axis1=1, axis2=2)
    if p == 1:
        keep = G[:, 0, 0] > 0
        inv = 1.0 / G[keep]
        return g[keep] * inv[:, :, 0], inv, keep
    det = np.linalg.det(G)
    keep = (trace > 0) & (det > TILE_RCOND * trace ** p)
    inv = np.linalg.inv(G[keep])
    b = np.matmul(inv, g[keep][:, :, None])[:, :, 0]
    return b, inv, keep


def moment_start(A: CrossProducts, terms: tuple[TermSpec, ...]) -> np.ndarray:
    """(n_theta,) starting theta in the terms' theta order (see module docstring)."""
    p, n = A.p, A.n
    xx = A.xx
    beta = np.linalg.lstsq(xx[:p, :p], xx[:p, p], rcond=None)[0] if p else np.zeros(0)
    rss = float(xx[p, p] - xx[:p, p] @ beta) if p else float(xx[p, p])
    fits, sigma2 = [], []
    for j, term in enumerate(terms):
        l_j, p_j = A.dims[j]
        g = (A.xz[j][p] - A.xz[j][:p].T @ beta).reshape(l_j, p_j)
        b, inv, keep = _level_fits(A.diag[j], g)
        between = float(np.sum(g[keep] * b))
        df = n - p - p_j * int(keep.sum())
        if df > 0 and between < rss:
            sigma2.append((rss - between) / df)
        fits.append((b, inv))
    s2 = min(sigma2) if sigma2 else rss / max(n - p, 1)
    if not s2 > 0:
        s2 = max(rss, 1e-300) / max(n - p, 1)
    theta = []
    for term, (b, inv) in zip(terms, fits):
        p_j = term.p
        if b.shape[0] == 0:
            S = np.eye(p_j)
        else:
            S = (b.T @ b / b.shape[0] - s2 * inv.mean(axis=0)) / s2
            S = 0.5 * (S + S.T)
        vals, vecs = np.linalg.eigh(S)
        vals = np.clip(vals, START_MIN ** 2, START_MAX ** 2)
        theta.append(term.covariance.start((vecs * vals) @ vecs.T))
    return np.concatenate(theta)


def initial_steps(theta0: np.ndarray, terms: tuple[TermSpec, ...]) -> np.ndarray:
    """(n_theta,) BOBYQA's first step per coordinate for a start from ``moment_start``.

    The term's template decides (``CovarianceTemplate.initial_steps``); for lme4's
    unstructured term STEP_FRACTION of the entry for a diagonal theta, and of sqrt(T_ii T_jj)
    for the (i, j) off-diagonal one (the scale of that covariance). NLopt's default would be
    0.75 of the distance to the bound, and 1 for an unbounded entry, far too wide for a start
    in the right region (all lmer reference cases: 800 evaluations instead of 898 with the
    default steps and 1310 from lme4's start).
    """
    steps, start = [], 0
    for term in terms:
        steps.append(term.covariance.initial_steps(theta0[start:start + term.n_theta]))
        start += term.n_theta
    return np.concatenate(steps) if steps else np.empty(0)
