"""The covariance template of a random-effects term, with the checks its structure needs.

``cs(0 + f | g)`` and ``ar1(0 + f | g)`` are meant for a factor f whose levels are the
positions of repeated measurements (visits, ages, days). ``ar1`` gives the k-th and l-th level
the correlation rho^|k - l|, which is only the AR(1) of the measurement times when the levels
are equally spaced; with numeric level labels that are not, the user is pointed to the
continuous-time AR(1) of the residuals (``corCAR1``).
"""
from __future__ import annotations

import math

from ..covariance import CovarianceTemplate, make_covariance
from ..errors import FormulaError


def _numbers(levels: list[str]) -> list[float] | None:
    """The level labels as numbers, or None when one of them is not a number."""
    try:
        return [float(v) for v in levels]
    except ValueError:
        return None


def _ar1_factor(mf, bar, spec, label: str) -> None:
    """ar1() needs the columns of one factor's levels, in order and equally spaced."""
    variables = getattr(spec, "_variables", [])
    if getattr(spec, "intercept", True) or len(variables) != 1:
        raise FormulaError(f"{label} needs one factor and no intercept on its left side, as in "
                           f"ar1(0 + f | {bar.group_name}): its columns are the levels of f in "
                           "order", formula=mf.text, position=bar.position)
    var = variables[0]
    if var.levels is None:
        raise FormulaError(f"{label}: '{var.label}' is numeric; ar1() correlates the levels of "
                           f"a factor (write ar1(0 + factor({var.label}) | {bar.group_name}), or "
                           f"use the residual structure correlation=mm.corAR1('~ {var.label} | "
                           f"{bar.group_name}'))", formula=mf.text, position=bar.position)
    values = _numbers(list(var.levels))
    if values is None or len(values) < 3:
        return
    steps = [b - a for a, b in zip(values, values[1:])]
    if any(not math.isclose(s, steps[0], rel_tol=1e-8, abs_tol=1e-12) for s in steps):
        raise FormulaError(
            f"{label}: the levels of '{var.label}' ({', '.join(var.levels)}) are not equally "
            f"spaced, and ar1() gives neighbouring levels the same correlation whatever their "
            f"distance; for measurements at unequal times use the continuous-time AR(1) of "
            f"the residuals, correlation=mm.corCAR1('~ time | {bar.group_name}')",
            formula=mf.text, position=bar.position)


def term_covariance(mf, bar, spec, column_names: tuple[str, ...]) -> CovarianceTemplate:
    """The template for the bar's structure over its p columns.

    Parameters
    ----------
    mf : the parsed formula (for errors); bar : the ``Bar``; spec : the left side's
        ``MatrixSpec`` (its variables say which are factors); column_names : (p,).

    Raises
    ------
    FormulaError
        ``cs()`` or ``ar1()`` with fewer than two columns (a factor with one level), and for
        ``ar1()`` anything but one factor without intercept, or numeric levels not equally
        spaced.
    """
    kind = bar.structure
    label = f"{kind}({bar.lhs} | {bar.group_name})"
    p = len(column_names)
    if kind == "ar1":
        _ar1_factor(mf, bar, spec, label)
    if kind in ("cs", "ar1") and p < 2:
        raise FormulaError(f"{label} has {p} column ({', '.join(column_names)}); {kind}() "
                           "correlates two or more levels: use (1 | "
                           f"{bar.group_name}) for a single random intercept",
                           formula=mf.text, position=bar.position)
    return make_covariance(kind, p)
