"""Cross-product blocks assembled from grouped sums, and R's rank check read off X'X.

An engine (DuckDB, Dask) returns sums over rows grouped by level codes; this module turns them
into ``CrossProducts`` and decides which columns of X to drop without the rows of X.
"""
from __future__ import annotations

import numpy as np

# R's qr() tolerance in lme4's check.rankX
RANK_TOL = 1e-7
# Round-off of a squared residual norm read off X'X, in units of eps * p * ||x_j||^2: a
# Gram matrix squares the condition number, so ratios below sqrt(RANK_ROUNDOFF * p * eps)
# (1.7e-7 at p = 2) cannot be told from 0 and count as dependent.
RANK_ROUNDOFF = 64.0


def independent_from_gram(gram: np.ndarray, tol: float = RANK_TOL) -> np.ndarray:
    """Indices of the columns of X that R's rank check keeps, from X'X alone.

    R (``qr(X, tol = 1e-7)`` in lme4's ``check.rankX``) drops column j when its distance
    from the span of the earlier kept columns is below ``tol * ||x_j||``; later columns go
    first. The same distance is the diagonal entry of an in-order Cholesky factor of X'X
    restricted to the kept columns, so the check runs column by column on X'X (p, p). Ratios
    within the round-off of X'X (see ``RANK_ROUNDOFF``) also count as dependent.

    Parameters
    ----------
    gram : (p, p) X'X (unweighted, as R checks the model matrix).

    Returns
    -------
    (p',) int array of kept column indices, increasing.
    """
    gram = np.asarray(gram, dtype=float)
    p = gram.shape[0]
    norms2 = np.diag(gram).copy()
    floor = max(tol * tol, RANK_ROUNDOFF * p * np.finfo(float).eps)
    keep: list[int] = []
    R = np.zeros((p, p))             # upper factor of the kept columns, in keep order
    for j in range(p):
        if not norms2[j] > 0:
            continue
        k = len(keep)
        scale = np.sqrt(norms2[j])
        col = gram[keep, j] / scale if k else np.zeros(0)
        r = np.linalg.solve(R[:k, :k].T, col) if k else col
        resid2 = 1.0 - float(r @ r)  # squared distance / ||x_j||^2
        if resid2 < floor:
            continue
        R[:k, k] = r * scale
        R[k, k] = np.sqrt(resid2) * scale
        keep.append(j)
    return np.array(keep, dtype=np.intp)
