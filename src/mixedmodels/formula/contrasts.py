"""R's factor codings and R-style labels, used by :mod:`mixedmodels.formula.fixed`.

Everything here reproduces a piece of base R exactly: ``contr.treatment``,
``contr.poly``, the level labels ``factor()`` gives numbers, and the column
order of interaction terms in ``model.matrix()``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "contr_treatment",
    "contr_poly",
    "contr_identity",
    "r_number",
    "r_label",
    "r_levels",
    "interaction_columns",
]


def contr_treatment(levels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """R's ``contr.treatment``: the first level is the reference.

    Parameters
    ----------
    levels : sequence of str, length k >= 2

    Returns
    -------
    matrix : ndarray, shape (k, k - 1)
        Row ``i`` codes level ``i``; level 0 is all zeros.
    suffixes : list of str, length k - 1
        Column-name suffixes (the non-reference levels).
    """
    k = len(levels)
    return np.eye(k)[:, 1:], [str(lev) for lev in levels[1:]]


def contr_identity(levels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Indicator coding (``contrasts = FALSE``): one column per level.

    Returns
    -------
    matrix : ndarray, shape (k, k)
    suffixes : list of str, length k
    """
    return np.eye(len(levels)), [str(lev) for lev in levels]


def contr_poly(k: int) -> tuple[np.ndarray, list[str]]:
    """R's ``contr.poly(k)``: orthonormal polynomials in the scores 1..k.

    Follows R's ``make.poly``: QR of the centred Vandermonde matrix, columns
    ``Q[:, j] * R[j, j]`` (which fixes the sign so each polynomial has a
    positive leading coefficient), then scaled to unit length.

    Returns
    -------
    matrix : ndarray, shape (k, k - 1)
    suffixes : list of str, length k - 1
        ``.L``, ``.Q``, ``.C``, ``^4``, ``^5``, ...
    """
    if k < 2:
        raise ValueError("contr.poly needs at least 2 levels")
    scores = np.arange(1.0, k + 1.0)
    centred = scores - scores.mean()
    vander = centred[:, None] ** np.arange(k)[None, :]
    q, r = np.linalg.qr(vander)
    raw = q * np.diag(r)[None, :]
    z = raw / np.sqrt((raw**2).sum(axis=0))[None, :]
    named = [".L", ".Q", ".C"]
    suffixes = [named[j] if j < 3 else f"^{j + 1}" for j in range(k - 1)]
    return np.ascontiguousarray(z[:, 1:]), suffixes


def r_number(x: float) -> str:
    """Format a number as R's ``as.character()`` / ``deparse()`` do.

    Up to 15 significant digits, the fewest that reproduce the value, and
    scientific notation only when it is strictly shorter (``1e+05``,
    ``1e-04``, but ``10000`` and ``0.001``).
    """
    x = float(x)
    if np.isnan(x):
        return "NaN"
    if np.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    if x == 0:
        return "0"
    target = float(f"{x:.14e}")
    digits = next(d for d in range(1, 16) if float(f"{x:.{d - 1}e}") == target)
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    exp_int = int(exponent)
    sci = f"{mantissa}e{'-' if exp_int < 0 else '+'}{abs(exp_int):02d}"
    fixed = f"{x:.{max(0, digits - 1 - exp_int)}f}"
    return fixed if len(fixed) <= len(sci) else sci


def r_label(value: object) -> str:
    """The level label R gives a value: ``TRUE``/``FALSE``, R-formatted numbers, else ``str``."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return r_number(value)
    return str(value)


def r_levels(values: pd.Series) -> tuple[list[str], bool]:
    """Levels R's ``factor()`` would give, after dropping unused levels.

    Parameters
    ----------
    values : pandas Series, length n
        Missing values are ignored.

    Returns
    -------
    levels : list of str
        Categorical: the categories that occur, in category order.
        Numbers: sorted numerically.  Logical: ``FALSE``, ``TRUE`` (those
        present).  Text: sorted as R sorts in the C locale (plain code-point
        order).
    ordered : bool
        True for an ordered pandas Categorical.
    """
    dtype = values.dtype
    present = values.dropna()
    if isinstance(dtype, pd.CategoricalDtype):
        seen = set(present.cat.codes.unique().tolist())
        cats = [c for i, c in enumerate(dtype.categories) if i in seen]
        return [r_label(c) for c in cats], bool(dtype.ordered)
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return [r_label(v) for v in sorted(present.unique().tolist())], False
    return sorted({r_label(v) for v in present.tolist()}), False


def interaction_columns(
    blocks: Sequence[np.ndarray], names: Sequence[Sequence[str]]
) -> tuple[np.ndarray, list[str]]:
    """Row-wise products of column blocks in R's interaction order.

    Parameters
    ----------
    blocks : sequence of ndarray, each shape (n, p_i)
        One block per variable of the term, in R's variable order.
    names : sequence of sequence of str, lengths p_i
        Column names of each block.

    Returns
    -------
    values : ndarray, shape (n, prod(p_i))
        The first block varies fastest, as in ``model.matrix()``.
    names : list of str
        Names joined with ``:``.
    """
    values, labels = blocks[0], list(names[0])
    for block, block_names in zip(blocks[1:], names[1:]):
        n = values.shape[0]
        values = (block[:, :, None] * values[:, None, :]).reshape(n, -1)
        labels = [f"{a}:{b}" for b in block_names for a in labels]
    return values, labels
