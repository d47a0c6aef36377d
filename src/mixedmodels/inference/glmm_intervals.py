"""Confidence intervals for a glmer fit, as lme4's ``confint.merMod`` on a ``glmerMod``.

Rows use lme4's names: ``.sig01``, ... for the random-effects parameters (``.sigma`` too for
families with a scale), then the fixed effects; columns R's percent labels. With
``old_names=False`` the variance rows are named ``sd_(Intercept)|herd``, ``cor_...``, ``sigma``.

- ``"wald"``: estimate +- z SE for the fixed effects (SE from ``vcov``, lme4's default
  Hessian-based one); NaN rows for the variance parameters, as lme4's NA rows.
- ``"profile"``: from ``glmm_profile.profile`` (the Laplace / AGQ deviance profiled over each
  SD, correlation and fixed effect). Not for families with a scale, as in lme4.
- ``"boot"``: percentile (or basic / normal) intervals from ``glmm_bootstrap.bootstrap``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import MixedModelsError
from ..rformat import percent_labels
from .intervals import select_parameters

METHODS = ("wald", "profile", "boot")
BOOT_ARGUMENTS = {"seed", "n_jobs", "progress"}
PROFILE_ARGUMENTS = {"alphamax", "maxpts", "delta", "delta_cutoff", "maxmult", "progress"}


def variance_names(result, old: bool = True) -> list[str]:
    """``.sig01``, ... (and ``.sigma`` with a scale), or the new-style ``sd_x|g`` names."""
    scale = bool(result.family.has_dispersion)
    if old:
        return [f".sig{i + 1:02d}" for i in range(result.n_theta)] + ([".sigma"] if scale else [])
    names = [name for t in result.terms
             for name in t.covariance.sdcor_names(t.group_name, t.column_names)]
    return names + (["sigma"] if scale else [])


def _wald(result, level: float) -> pd.DataFrame:
    names = variance_names(result) + list(result.info.x_names)
    n_var = len(names) - result.beta.size
    a = (1.0 - level) / 2.0
    z = stats.norm.ppf([a, 1.0 - a])
    beta, se = np.asarray(result.beta), result.se.to_numpy()
    values = np.vstack([np.full((n_var, 2), np.nan), beta[:, None] + se[:, None] * z[None, :]])
    return pd.DataFrame(values, index=names, columns=percent_labels(level))


def _check_arguments(method: str, kwargs: dict, allowed: set) -> None:
    unknown = set(kwargs) - allowed
    if unknown:
        hint = f"; allowed: {', '.join(sorted(allowed))}" if allowed else ""
        raise MixedModelsError(f"unexpected arguments for {method} intervals: "
                               f"{sorted(unknown)}{hint}")


def confint(result, method: str = "wald", level: float = 0.95, parm: Any = None,
            old_names: bool = True, **kwargs: Any) -> pd.DataFrame:
    """Confidence intervals of a glmer fit (lme4's ``confint(m, method = ...)``).

    Parameters
    ----------
    result : GlmerResult
    method : str
        "wald" (default), "profile" or "boot" (case-insensitive).
    level : float
        Confidence level, between 0 and 1.
    parm : None, str, int or list
        Rows to return: None (all), names, ``"theta_"`` / ``"beta_"`` or 0-based indices.
    old_names : bool
        lme4's ``oldNames``: ``.sig01`` style (True) or ``sd_...|group`` (False).
    **kwargs
        For "profile": ``alphamax``, ``maxpts``, ``delta``, ``delta_cutoff``, ``maxmult``,
        ``progress`` (see ``glmm_profile.profile``). For "boot": ``nsim`` (default 500, as
        lme4), ``seed``, ``n_jobs``, ``progress`` and ``type`` ("perc" default, "basic",
        "norm"); see ``glmm_bootstrap.bootstrap``.

    Returns
    -------
    pandas.DataFrame
        (n_rows, 2) indexed by parameter name, columns such as ``2.5 %`` and ``97.5 %``.

    Raises
    ------
    MixedModelsError
        An unknown method, a level outside (0, 1), an unknown parameter, or arguments that
        the method does not take; see also ``profile`` and ``bootstrap``.
    """
    key = str(method).lower()
    if key not in METHODS:
        raise MixedModelsError(f"unknown confidence interval method {method!r} for a glmer "
                               f"fit; use one of {', '.join(METHODS)}")
    if not 0 < level < 1:
        raise MixedModelsError(f"level must be between 0 and 1, not {level}")
    var_names = variance_names(result)
    names = var_names + list(result.info.x_names)
    aliases = dict(zip(variance_names(result, old=False), var_names))
    rows = [names[i] for i in select_parameters(parm, names, len(var_names), aliases)]
    if key == "wald":
        _check_arguments("Wald", kwargs, set())
        table = _wald(result, level)
    elif key == "profile":
        from .glmm_profile import profile

        _check_arguments("profile", kwargs, PROFILE_ARGUMENTS)
        table = profile(result, which=rows, **kwargs).confint(level)
    else:
        from .glmm_bootstrap import bootstrap

        boot_type = kwargs.pop("type", "perc")
        nsim = kwargs.pop("nsim", 500)
        _check_arguments("bootstrap", kwargs, BOOT_ARGUMENTS)
        boot = bootstrap(result, nsim=nsim, **kwargs)
        if boot.t.isna().all().all():
            raise MixedModelsError(f"all {boot.nsim} bootstrap refits failed: no intervals")
        table = boot.confint(level, type=boot_type)
    table = table.loc[rows]
    if not old_names:
        table = table.rename(index=dict(zip(var_names, variance_names(result, old=False))))
    return table
