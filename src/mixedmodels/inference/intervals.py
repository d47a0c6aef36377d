"""Confidence intervals for an lmer fit, as lme4's ``confint.merMod``.

Rows use lme4's names (``.sig01``, ..., ``.sigma``, then the fixed effects; with
``old_names=False`` the new-style ``sd_(Intercept)|Subject``, ``cor_...``, ``sigma``) and
columns R's percent labels (``2.5 %``, ``97.5 %``).

- ``"wald"``: estimate +- z SE for the fixed effects; the variance parameters get NaN rows,
  as lme4's ``method = "Wald"`` gives NA rows for them.
- ``"profile"``: from ``profile()`` (ML deviance, see ``profile.py``).
- ``"boot"``: percentile (or basic / normal) intervals from ``bootstrap()``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import MixedModelsError
from ..rformat import percent_labels
from .protocol import FittedModel

__all__ = ["confint", "METHODS", "param_names", "variance_names", "percent_labels",
           "select_parameters"]

METHODS = ("wald", "profile", "boot")


# ---- names and labels shared by profile and bootstrap ---------------------------------------
def variance_names(result: FittedModel, old: bool = True) -> list[str]:
    """Names of the SD/correlation parameters and sigma.

    old=True: lme4's ``.sig01, .sig02, ..., .sigma``; old=False: ``sd_(Intercept)|Subject``,
    ``cor_Days.(Intercept)|Subject``, ..., ``sigma``.
    """
    if old:
        return [f".sig{i + 1:02d}" for i in range(result.n_theta)] + [".sigma"]
    names = [name for t in result.terms
             for name in t.covariance.sdcor_names(t.group_name, t.column_names)]
    return names + ["sigma"]


def param_names(result: FittedModel, old: bool = True) -> list[str]:
    """``variance_names`` followed by the fixed-effect names (lme4's confint row names)."""
    return variance_names(result, old) + list(result.info.x_names)


def select_parameters(which, names: list[str], nvp: int, aliases: dict | None = None
                      ) -> list[int]:
    """lme4's ``get.which``: None (all), names, "theta_" / "beta_", or 0-based indices.

    aliases : other names of some parameters ({new-style name: name in ``names``}), so that
        ``sd_(Intercept)|Subject`` selects ``.sig01`` whichever names the table shows."""
    if which is None:
        return list(range(len(names)))
    items = [which] if isinstance(which, (str, int, np.integer)) else list(which)
    aliases = aliases or {}
    items = [aliases.get(item, item) if isinstance(item, str) else item for item in items]
    chosen: set[int] = set()
    for item in items:
        if isinstance(item, (int, np.integer)):
            if not 0 <= item < len(names):
                raise MixedModelsError(f"parameter index {item} out of range 0..{len(names) - 1}")
            chosen.add(int(item))
        elif item == "theta_":
            chosen.update(range(nvp))
        elif item == "beta_":
            chosen.update(range(nvp, len(names)))
        elif item in names:
            chosen.add(names.index(item))
        else:
            raise MixedModelsError(f"unknown parameter {item!r}; parameters are "
                                   f"{', '.join(names)} (or 'theta_', 'beta_')")
    return sorted(chosen)


def _wald(result: FittedModel, level: float) -> pd.DataFrame:
    a = (1.0 - level) / 2.0
    z = stats.norm.ppf([a, 1.0 - a])
    beta, se = result.beta, result.se.to_numpy()
    n_var = result.n_theta + 1
    values = np.vstack([np.full((n_var, 2), np.nan), beta[:, None] + se[:, None] * z[None, :]])
    return pd.DataFrame(values, index=param_names(result), columns=percent_labels(level))


def confint(result: FittedModel, method: str = "wald", level: float = 0.95, parm: Any = None,
            old_names: bool = True, **kwargs: Any) -> pd.DataFrame:
    """Confidence intervals (lme4's ``confint(m, method = ...)``).

    Parameters
    ----------
    result : the fit.
    method : "wald", "profile" or "boot" (case-insensitive).
    level : confidence level.
    parm : rows to return: None (all), names, ``"theta_"`` / ``"beta_"`` or 0-based indices.
    old_names : lme4's ``oldNames``: ``.sig01`` style (True) or ``sd_...|group`` (False).
    **kwargs : for "profile", passed to ``profile()`` (``alphamax``, ``maxpts``, ``delta``);
        for "boot", ``nsim`` (default 500, as lme4), ``seed``, ``n_jobs``, ``progress`` and
        ``type`` ("perc" default, "basic", "norm").

    Returns
    -------
    DataFrame (n_rows, 2) indexed by parameter name.
    """
    key = str(method).lower()
    if key not in METHODS:
        raise MixedModelsError(f"unknown confidence interval method {method!r}; use one of "
                               f"{', '.join(METHODS)}")
    if not 0 < level < 1:
        raise MixedModelsError(f"level must be between 0 and 1, not {level}")
    names = param_names(result)
    aliases = dict(zip(variance_names(result, old=False), variance_names(result, old=True)))
    rows = [names[i] for i in select_parameters(parm, names, result.n_theta + 1, aliases)]
    if key == "wald":
        if kwargs:
            raise MixedModelsError(f"unexpected arguments for Wald intervals: {sorted(kwargs)}")
        table = _wald(result, level)
    elif key == "profile":
        from .profile import profile

        table = profile(result, which=rows, **kwargs).confint(level)
    else:
        from .bootstrap import bootstrap

        boot_type = kwargs.pop("type", "perc")
        nsim = kwargs.pop("nsim", 500)
        unknown = set(kwargs) - {"seed", "n_jobs", "progress"}
        if unknown:
            raise MixedModelsError(f"unexpected arguments for bootstrap intervals: "
                                   f"{sorted(unknown)}")
        table = bootstrap(result, nsim=nsim, **kwargs).confint(level, type=boot_type)
    table = table.loc[rows]
    if not old_names:
        mapping = dict(zip(variance_names(result, old=True), variance_names(result, old=False)))
        table = table.rename(index=mapping)
    return table
