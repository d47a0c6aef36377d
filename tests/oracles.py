"""Dense oracles that do not use the package's solver: the marginal likelihood from V."""
from __future__ import annotations

import numpy as np


def dense_z(refs: np.ndarray, z: np.ndarray, n_levels: int) -> np.ndarray:
    """Dense Z_i (n, l p): row r holds z[r] in the columns of level refs[r]."""
    n, p = z.shape
    Z = np.zeros((n, n_levels * p))
    for r in range(n):
        Z[r, refs[r] * p:(refs[r] + 1) * p] = z[r]
    return Z


def dense_objective(X, y, Zs, Lambdas, weights=None, offset=None, reml=False,
                    R=None) -> float:
    """-2 log L profiled over beta and sigma, from V0 = W^-1 + Z Lambda Lambda' Z'.

    X (n, p); y (n,); Zs list of (n, q_i); Lambdas list of (q_i, q_i); R (n, n): the
    residual covariance over sigma^2 in place of W^-1 (a residual structure).
    """
    n, p = X.shape
    w = np.ones(n) if weights is None else weights
    o = np.zeros(n) if offset is None else offset
    Z = np.hstack(Zs)
    Lam = np.zeros((Z.shape[1], Z.shape[1]))
    start = 0
    for L in Lambdas:
        q = L.shape[0]
        Lam[start:start + q, start:start + q] = L
        start += q
    V0 = (np.diag(1.0 / w) if R is None else R) + Z @ Lam @ Lam.T @ Z.T
    Vinv = np.linalg.inv(V0)
    XtVX = X.T @ Vinv @ X
    beta = np.linalg.solve(XtVX, X.T @ Vinv @ (y - o))
    r = y - o - X @ beta
    rss = r @ Vinv @ r
    logdetV = np.linalg.slogdet(V0)[1]
    if reml:
        nu = n - p
        return logdetV + np.linalg.slogdet(XtVX)[1] + nu * (1 + np.log(2 * np.pi * rss / nu))
    return logdetV + n * (1 + np.log(2 * np.pi * rss / n))
