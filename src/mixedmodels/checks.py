"""lme4's checks of an ``lmer`` model before it is fitted, with lme4's messages.

- ``check_reml``: ``reml`` is True or False (R's ``REML`` is a logical; a string such as "ML"
  would otherwise be read as true).
- ``check_response_scale``: a response whose squares overflow or underflow double precision
  is an error that says to rescale (lme4 1.1-31 returns sigma = Inf at 1e200 and sigma = 0 at
  1e-200 without a word).
- ``fits_exactly``: the response lies in the column space of X (a constant response, or one
  the fixed effects reproduce exactly); ``lmer`` then returns lme4's answer for it, a fit with
  residual SD 0, and says so (lme4 reports sigma = 0 with "unable to evaluate scaled gradient").
- ``check_scale_x``: lme4's ``checkScaleX`` (``check.scaleX = "warning"``): "Some predictor
  variables are on very different scales: consider rescaling".

The checks after the optimizer (lme4's ``checkConv``) are in ``optimize.polish_and_check``.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import DataError, MixedModelsError, warn_user


class ScaleWarning(UserWarning):
    """Fixed-effect predictors on very different scales (lme4's ``checkScaleX``)."""


# |y| above this overflows the cross-products' sums of squares for large n, and the
# Satterthwaite derivatives (sigma^4) long before double precision's 1.8e308; a spread below
# its inverse underflows them.
RESPONSE_SCALE_LIMIT = 1e50
# The relative residual below which the response counts as reproduced by X (round-off of a
# least-squares fit is about 1e-15 relative).
EXACT_FIT_TOL = 1e-10
# lme4's checkScaleX tolerance: column SDs (and their ratios) beyond a factor 1000.
SCALE_X_TOL = 1e3


def check_reml(reml: object) -> bool:
    """``reml`` as a bool; a clear error for anything but True / False.

    Raises
    ------
    MixedModelsError
        ``reml`` is not a bool (``"ML"``, ``"no"``, ``None``, 0...), naming the argument.
    """
    if isinstance(reml, (bool, np.bool_)):
        return bool(reml)
    raise MixedModelsError(f"reml must be True (REML, the default) or False (maximum "
                           f"likelihood), not {reml!r}")


def check_response_scale(y: np.ndarray, offset: np.ndarray, response: str) -> None:
    """A clear error for a response (minus offset) whose squares leave double precision.

    Parameters
    ----------
    y, offset : (n,) the response and the known offset.
    response : the response as written in the formula, for the message.

    Raises
    ------
    DataError
        ``max |y - offset|`` above ``RESPONSE_SCALE_LIMIT``, or its range (when not 0) below
        the limit's inverse; the message says how to rescale.
    """
    r = y - offset
    largest = float(np.max(np.abs(r))) if r.size else 0.0
    spread = float(np.max(r) - np.min(r)) if r.size else 0.0
    if largest > RESPONSE_SCALE_LIMIT:
        power = int(math.floor(math.log10(largest)))
        raise DataError(f"the response '{response}' is on too large a scale (largest |value| "
                        f"{largest:.3g}): its sums of squares overflow double precision; "
                        f"rescale it (e.g. divide it by 1e{power}) and fit again")
    if 0 < spread < 1 / RESPONSE_SCALE_LIMIT:
        power = -int(math.floor(math.log10(spread)))
        raise DataError(f"the response '{response}' varies on too small a scale (range "
                        f"{spread:.3g}): its sums of squares underflow double precision; "
                        f"rescale it (e.g. multiply it by 1e{power}) and fit again")


def fits_exactly(X: np.ndarray, y: np.ndarray, offset: np.ndarray, weights: np.ndarray,
                 xx: np.ndarray | None = None, chunk: int = 1 << 18) -> bool:
    """True when ``y - offset`` is reproduced by the columns of X: a residual SD of 0.

    Parameters
    ----------
    X : (n, p) full-rank fixed-effects matrix; y, offset, weights : (n,).
    xx : (p + 1, p + 1) cross-products [X, y - offset]' W [X, y - offset], when known: a
        residual sum of squares from them above 1e-8 of the response's settles the common
        case without another pass over the data.

    The residual comes from an unpivoted QR of sqrt(w) [X, y - offset] taken ``chunk`` rows at
    a time (its last diagonal entry is the residual norm, free of the cancellation of the
    normal equations); the response counts as reproduced when that norm is below
    ``EXACT_FIT_TOL`` times the response's norm.
    """
    from scipy.linalg import qr

    n, p = X.shape
    if n <= p:
        return True
    if xx is not None and xx[p, p] > 0:
        try:
            c = np.linalg.solve(np.linalg.cholesky(xx[:p, :p]), xx[:p, p]) if p else np.zeros(0)
            if xx[p, p] - c @ c > 1e-8 * xx[p, p]:
                return False
        except np.linalg.LinAlgError:
            pass
    R = np.zeros((0, p + 1))
    for start in range(0, n, chunk):
        part = slice(start, start + chunk)
        sw = np.sqrt(weights[part])[:, None]
        block = np.hstack([X[part], (y[part] - offset[part])[:, None]]) * sw
        R = qr(np.vstack([R, block]), mode="r")[0][:p + 1]
    norm = float(np.linalg.norm(R[:, p]))
    return abs(R[p, p]) <= EXACT_FIT_TOL * norm


def _continuous_sds(X: np.ndarray, chunk: int = 1 << 16) -> dict[int, float]:
    """Column index -> SD (n - 1 denominator) of each column of X that is not all 0s and 1s.

    Two passes over row chunks (mean, then squared deviations), so that no n-length
    temporary is made (80 MB a column at n = 1e7).
    """
    n, p = X.shape
    binary = np.ones(p, dtype=bool)
    total = np.zeros(p)
    for start in range(0, n, chunk):
        part = X[start:start + chunk]
        binary &= np.all((part == 0) | (part == 1), axis=0)
        total += part.sum(axis=0)
    mean = total / n
    squares = np.zeros(p)
    for start in range(0, n, chunk):
        squares += ((X[start:start + chunk] - mean) ** 2).sum(axis=0)
    sds = np.sqrt(squares / (n - 1))
    return {j: float(sds[j]) for j in range(p) if not binary[j]}


def check_scale_x(X: np.ndarray, names: tuple[str, ...], tol: float = SCALE_X_TOL) -> None:
    """lme4's ``checkScaleX``: warn when a continuous column of X has an SD beyond a factor
    ``tol`` from 1, or from another column's SD (columns of 0s and 1s do not count)."""
    if X.shape[0] < 2:
        return
    check_scale_sds(_continuous_sds(X), names, tol)


def check_scale_sds(sds: dict[int, float], names: tuple[str, ...], tol: float = SCALE_X_TOL
                    ) -> None:
    """``check_scale_x`` from the SDs (column index -> SD) of the continuous columns of X; a
    fit from a source computes them where its rows are."""
    if not sds:
        return
    values = np.array(list(sds.values()))
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(values)
        spread = np.abs(logs[:, None] - logs[None, :])
        worst = max(float(np.nanmax(np.abs(logs))), float(np.nanmax(spread)))
    if worst > math.log(tol):
        listed = ", ".join(f"{names[j]} (SD {sd:.3g})" for j, sd in sds.items())
        warn_user(f"Some predictor variables are on very different scales: consider "
                  f"rescaling ({listed})", ScaleWarning)
