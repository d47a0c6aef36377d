"""The public fitting pipeline: formula -> design -> cross-products -> model -> result."""
from __future__ import annotations

from typing import Any

from ._threads import with_blas_threads
from .crossprod import from_design
from .formula.bars import parse_formula
from .formula.design import build_design
from .lmm import LinearMixedModel
from .results import LmerResult


@with_blas_threads
def lmer(formula: str, data: Any, reml: bool = True, weights: str | None = None) -> LmerResult:
    """Fit a linear mixed model as lme4's ``lmer`` does.

    Parameters
    ----------
    formula : lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data : pandas or polars data frame.
    reml : REML (default, as lme4) or ML (``reml=False``).
    weights : name of a column of prior weights.
    """
    mf = parse_formula(formula)
    design = build_design(mf, data, weights=weights)
    A = from_design(design.terms, design.X, design.y, design.offset, design.weights)
    model = LinearMixedModel(A, design.terms, reml=reml)
    optsum = model.fit()
    return LmerResult.from_model(model, design, optsum, formula=formula)
