"""Responses simulated from a fitted GLMM (lme4's ``simulate.merMod`` for ``glmer`` fits).

One call draws all simulations at once: first the spherical random effects of every
simulation (term by term), then one response per row and simulation from the family, so the
work is a few (nsim, n) array operations whatever the number of rows.

Random effects. With ``use_u=False`` (lme4's default) each simulation gets new effects
u ~ N(0, I) per level, b_j = T_j u_j, multiplied by sigma for the families with a scale
(Gamma, inverse Gaussian), so that they follow the covariance ``varcorr()`` reports,
sigma^2 T T'. lme4's own ``simulate`` leaves them unscaled for GLMMs, which makes the
simulated spread of a Gamma model disagree with its VarCorr (lme4 issue #643); the two agree
for the binomial, Poisson and negative binomial, whose sigma is 1. With ``use_u=True`` every
simulation keeps the conditional modes ``result.b`` (lme4's ``use.u = TRUE``).

Reproducibility: ``seed`` goes through ``numpy.random.default_rng``; the same seed and
``nsim`` give the same numbers. Column i depends on ``nsim`` (all effects are drawn before
any response), as in R.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd

from ..errors import MixedModelsError
from ..results_common import zb_rows

__all__ = ["simulate", "simulate_responses", "population_means", "check_glmer_result",
           "check_nsim"]


GLMM_ATTRIBUTES = ("family", "prior_weights", "info", "rows", "terms", "theta", "beta", "b", "sigma",
                   "model")


def check_glmer_result(result: Any, what: str = "result") -> None:
    """Raise ``TypeError`` unless ``result`` is a GLMM fit such as a ``GlmerResult`` (checked
    by its attributes: inference does not import the result modules)."""
    if not all(hasattr(result, name) for name in GLMM_ATTRIBUTES):
        hint = (" (an lmer() fit: use mixedmodels.inference.bootstrap.simulate)"
                if type(result).__name__ == "LmerResult" else "")
        raise TypeError(f"{what} must be a GlmerResult from mixedmodels.glmer(), not "
                        f"{type(result).__name__}{hint}")


def check_nsim(nsim: Any, minimum: int = 1) -> int:
    """``nsim`` as an int, or a ``MixedModelsError`` naming it when it is not an integer
    of at least ``minimum``."""
    if isinstance(nsim, bool) or not isinstance(nsim, numbers.Integral) or nsim < minimum:
        raise MixedModelsError(f"nsim must be an integer >= {minimum}, not {nsim!r}")
    return int(nsim)


def population_means(result: Any) -> np.ndarray:
    """(n,) eta = X beta + offset, the linear predictor without random effects."""
    rows = result.rows
    return rows.X @ np.asarray(result.beta) + np.asarray(rows.offset, dtype=float)


def _new_effects_zb(result: Any, nsim: int, rng: np.random.Generator) -> np.ndarray:
    """(nsim, n) Z b for new effects b_j = scale * u_j T_j', u_j (nsim, l_j, p_j) ~ N(0, I)."""
    scale = result.sigma if result.family.has_dispersion else 1.0
    zb = np.zeros((nsim, result.nobs))
    for t, T in zip(result.rows.terms, result.model.ws.templates(np.asarray(result.theta))):
        u = rng.standard_normal((nsim, t.n_levels, t.p))
        b = scale * (u @ T.T)
        # One column of z at a time keeps the temporary at (nsim, n), not (nsim, n, p).
        for c in range(t.p):
            zb += t.z[:, c] * b[:, t.refs, c]
    return zb


def simulate_responses(result: Any, nsim: int, rng: np.random.Generator,
                       use_u: bool = False) -> np.ndarray:
    """(n, nsim) responses simulated from a ``GlmerResult``, drawn from ``rng``.

    The array behind ``simulate``; arguments are not checked. Binomial responses are
    proportions of the trials (the prior weights), as the fit's response.
    """
    eta0 = population_means(result)
    if use_u:
        eta = np.broadcast_to(eta0 + zb_rows(result.rows.terms, result.b), (nsim, result.nobs))
    else:
        eta = eta0 + _new_effects_zb(result, nsim, rng)
    fam = result.family
    mu = fam.link.linkinv(np.ravel(eta))
    # The families draw one value per row of (n,) arrays, so the nsim blocks go end to end
    # with the weights repeated for each.
    weights = np.tile(np.asarray(result.prior_weights, dtype=float), nsim)
    y = fam.simulate(mu, weights, rng, dispersion=result.sigma**2)
    return np.asarray(y, dtype=float).reshape(nsim, result.nobs).T


def simulate(result: Any, nsim: int = 1, seed: Any = None, use_u: bool = False
             ) -> pd.DataFrame:
    """Responses simulated from a fitted GLMM, as lme4's ``simulate(glmer_fit)``.

    Parameters
    ----------
    result : GlmerResult
        The fit.
    nsim : int, default 1
        Number of simulated responses.
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Passed to ``numpy.random.default_rng``; a Generator is used (and advanced) as is.
    use_u : bool, default False
        False: new random effects for every simulation (sigma^2 T T' for Gamma and inverse
        Gaussian fits); True: the conditional modes of the fit in every simulation.

    Returns
    -------
    pandas.DataFrame
        (n, nsim), indexed by the fit's row labels, columns ``sim_1`` .. ``sim_<nsim>``.
        Binomial responses are proportions of successes (multiples of 1 / trials).

    Raises
    ------
    TypeError
        When ``result`` is not a ``GlmerResult``.
    MixedModelsError
        When ``nsim`` is not a positive integer.
    """
    check_glmer_result(result)
    nsim = check_nsim(nsim)
    rng = np.random.default_rng(seed)
    y = simulate_responses(result, nsim, rng, use_u=bool(use_u))
    return pd.DataFrame(y, index=result.rows.row_index,
                        columns=[f"sim_{i}" for i in range(1, nsim + 1)])
