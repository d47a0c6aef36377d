"""Residual correlation and variance structures as nlme's ``lme()`` has them (issue #11).

``mm.lmer(formula, data, correlation=mm.corAR1("~ 1 | Subject"))``, ``corAR1("~ t | g")``
(integer positions), ``corCAR1("~ time | g")``, ``corCompSymm("~ 1 | g")``, and
``variance=mm.varIdent("~ 1 | stratum")`` or ``mm.varPower("~ v")``. See ``layout.py`` for the
algebra and ``crossprod.py`` for which structures stay free of n per evaluation.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..crossprod import CrossProductPlan
from ..errors import DataError, warn_user
from ..formula.design import DroppedRowsWarning, build_design, to_pandas
from ..formula.frame import prior_weights
from .crossprod import ResidualCrossProducts
from .layout import ResidualLayout
from .model import ResidualLinearMixedModel
from .spec import ResidualSpec, corAR1, corCAR1, corCompSymm, varIdent, varPower

__all__ = ["corAR1", "corCAR1", "corCompSymm", "varIdent", "varPower", "residual_model"]


def _check_spec(value, what: str) -> ResidualSpec | None:
    if value is None or isinstance(value, ResidualSpec):
        return value
    raise DataError(f"{what}= takes mm.corAR1(...), mm.corCAR1(...), mm.corCompSymm(...), "
                    f"mm.varIdent(...) or mm.varPower(...), not {type(value).__name__}")


def residual_model(mf, data, reml: bool, weights, correlation, variance):
    """(design, workspace) of a model with a residual structure.

    The structure's columns take part in dropping incomplete rows; the design's row index is
    the data's (as without a structure).
    """
    correlation = _check_spec(correlation, "correlation")
    variance = _check_spec(variance, "variance")
    data = to_pandas(data)
    # Weights given as values (a Series matched by the data's labels): by position from here
    # on, dropped with their rows below.
    values = prior_weights(weights, data)[1]
    columns = []
    for spec in (correlation, variance):
        for col in ([] if spec is None else spec.columns()):
            if col not in data.columns:
                raise DataError(f"{type(spec).__name__}: column '{col}' is not in the data")
            columns.append(col)
    positional = data.reset_index(drop=True)
    keep = ~positional[columns].isna().any(axis=1).to_numpy() if columns else None
    if keep is not None and not keep.all():
        warn_user(f"{int((~keep).sum())} row(s) dropped because of missing values in the "
                  f"residual structure's columns", DroppedRowsWarning)
        positional = positional.loc[keep]
        values = None if values is None else values[keep]
    design = build_design(mf, positional, weights=weights if values is None else values)
    rows = np.asarray(design.row_index)
    frame = positional.loc[rows].reset_index(drop=True)
    design = dataclasses.replace(design, row_index=data.index[rows])
    layout = ResidualLayout(correlation, variance, frame, design.terms, design.n)
    pieces = ResidualCrossProducts(CrossProductPlan(design.terms), design.X, design.y,
                                   design.offset, design.weights, layout)
    return design, ResidualLinearMixedModel(pieces, design.terms, reml=reml)
