"""R's rank check of the fixed-effects matrix X (lme4's ``check.rankX = "message+drop.cols"``).

R drops column j of X when its distance from the span of the earlier kept columns is below
``tol * ||x_j||``, tol = 1e-7: ``|R_jj| < tol * ||x_j||`` in the unpivoted QR ``qr(X, tol)``;
later columns go first. The same distances, over ``||x_j||``, are the diagonal of the
Cholesky factor of the column-scaled X'X. Two ways to apply the rule share one shortcut:

* ``full_rank_from_gram``: when every such ratio clears ``RANK_SAFE`` (far above tol and above
  the round-off of X'X) no column can be dropped. This settles the usual full-rank X for both
  paths below from X'X (p, p) alone.
* ``independent_columns`` (fits from a data frame): otherwise the QR of X itself, R's own
  computation, so that a borderline column (a ratio between about 1e-7 and 1e-3) is kept or
  dropped exactly as lme4 does.
* ``independent_from_gram`` (fits from a source, where only X'X reaches the client):
  otherwise the Cholesky column by column on X'X. X'X squares the condition number, so ratios
  below ``sqrt(RANK_ROUNDOFF * p * eps)`` (1.7e-7 at p = 2) cannot be told from 0 and count as
  dependent; between that and tol the two paths can disagree, which is why the in-memory one
  keeps its QR.
"""
from __future__ import annotations

import numpy as np

# R's qr() tolerance in lme4's check.rankX
RANK_TOL = 1e-7
# |R_jj| / ||x_j|| above which the Cholesky shortcut decides (full rank).
RANK_SAFE = 1e-3
# Round-off of a squared residual norm read off X'X, in units of eps * p * ||x_j||^2.
RANK_ROUNDOFF = 64.0


def full_rank_from_gram(gram: np.ndarray) -> bool:
    """True when X'X (p, p) shows that R's rank check keeps every column of X.

    The Cholesky factor of the column-scaled X'X has the diagonal |R_jj| / ||x_j||; when
    every entry clears RANK_SAFE the rule could not drop a column. False says nothing (a
    dependent, a zero or a nearly dependent column): the caller decides with the full rule.
    """
    p = gram.shape[0]
    norms = np.sqrt(np.diag(gram))
    if p == 0 or not np.all(norms > 0):
        return p == 0
    try:
        ratios = np.diag(np.linalg.cholesky(gram / np.outer(norms, norms)))
    except np.linalg.LinAlgError:
        return False
    return bool(ratios.min() > RANK_SAFE)


def independent_columns(X: np.ndarray, tol: float = RANK_TOL, chunk: int = 1 << 18
                        ) -> np.ndarray:
    """Indices (p',) of the columns of X (n, p) kept by R's rank check, increasing.

    Settled from X'X when it shows full rank (``full_rank_from_gram``); otherwise R's
    unpivoted QR, built ``chunk`` rows at a time (the R of [R_so_far; next rows] is the R of
    all rows so far), so the check needs no copy of a tall X; the column norms are those of
    R's columns.
    """
    n, p = X.shape
    if p == 0:
        return np.arange(0)
    if full_rank_from_gram(X.T @ X):
        return np.arange(p)
    from scipy.linalg import qr

    R = np.zeros((0, p))
    for start in range(0, n, chunk):
        R = qr(np.vstack([R, X[start:start + chunk]]), mode="r")[0][:p]
    norms = np.linalg.norm(R, axis=0)
    diag = np.abs(np.diag(R))
    keep = np.zeros(p, dtype=bool)
    keep[:diag.size] = diag > tol * np.where(norms[:diag.size] > 0, norms[:diag.size], 1.0)
    keep &= norms > 0
    return np.flatnonzero(keep)


def independent_from_gram(gram: np.ndarray, tol: float = RANK_TOL) -> np.ndarray:
    """Indices of the columns of X that R's rank check keeps, from X'X alone.

    Settled by ``full_rank_from_gram`` when it shows full rank; otherwise the check runs
    column by column: column j's squared distance from the earlier kept columns, over
    ``||x_j||^2``, is one minus the squared norm of its column in the upper factor of the kept
    columns. Ratios within the round-off of X'X (see the module docstring) also count as
    dependent.

    Parameters
    ----------
    gram : (p, p) X'X (unweighted, as R checks the model matrix).

    Returns
    -------
    (p',) int array of kept column indices, increasing.
    """
    gram = np.asarray(gram, dtype=float)
    p = gram.shape[0]
    if full_rank_from_gram(gram):
        return np.arange(p, dtype=np.intp)
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
