"""Confidence intervals for a glmer fit, as lme4's ``confint.merMod`` on a ``glmerMod``.

Rows use lme4's names: ``.sig01``, ... for the random-effects parameters (``.sigma`` too for
families with a scale), then the fixed effects; columns R's percent labels.

- ``"wald"``: estimate +- z SE for the fixed effects (SE from ``vcov``, lme4's default
  Hessian-based one); NaN rows for the variance parameters, as lme4's NA rows.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import MixedModelsError
from ..rformat import percent_labels
from .intervals import select_parameters

METHODS = ("wald",)


def variance_names(result, old: bool = True) -> list[str]:
    """``.sig01``, ... (and ``.sigma`` with a scale), or the new-style ``sd_x|g`` names."""
    scale = bool(result.family.has_dispersion)
    if old:
        return [f".sig{i + 1:02d}" for i in range(result.n_theta)] + ([".sigma"] if scale else [])
    names = []
    for t in result.terms:
        rows, cols = t.tril_indices()
        for i, j in zip(rows, cols):
            names.append(f"sd_{t.column_names[i]}|{t.group_name}" if i == j else
                         f"cor_{t.column_names[i]}.{t.column_names[j]}|{t.group_name}")
    return names + (["sigma"] if scale else [])


def confint(result, method: str = "wald", level: float = 0.95, parm: Any = None,
            old_names: bool = True, **kwargs: Any) -> pd.DataFrame:
    """Confidence intervals (n_rows, 2) indexed by parameter name; see the module docstring."""
    key = str(method).lower()
    if key not in METHODS:
        raise MixedModelsError(f"unknown confidence interval method {method!r} for a glmer "
                               f"fit; use one of {', '.join(METHODS)}")
    if not 0 < level < 1:
        raise MixedModelsError(f"level must be between 0 and 1, not {level}")
    if kwargs:
        raise MixedModelsError(f"unexpected arguments for Wald intervals: {sorted(kwargs)}")
    var_names = variance_names(result, old_names)
    names = var_names + list(result.design.x_names)
    a = (1.0 - level) / 2.0
    z = stats.norm.ppf([a, 1.0 - a])
    beta, se = np.asarray(result.beta), result.se.to_numpy()
    values = np.vstack([np.full((len(var_names), 2), np.nan),
                        beta[:, None] + se[:, None] * z[None, :]])
    table = pd.DataFrame(values, index=names, columns=percent_labels(level))
    rows = [names[i] for i in select_parameters(parm, names, len(var_names))]
    return table.loc[rows]
