"""Simulation-based quantile residuals for GLMMs (R's DHARMa ``simulateResiduals``).

A GLMM's Pearson and deviance residuals have no reference distribution: their spread depends
on the mean, and for binary or small counts they fall in bands. DHARMa's residuals do: for
each row, the share of responses simulated from the fitted model that fall below the observed
one. If the model is right, these are uniform on (0, 1) whatever the family (Dunn and Smyth's
randomized quantile residuals, computed by simulation).

The rule (DHARMa's "PIT" method): with F-(y) the fraction of simulated values below y and
F(y) the fraction at or below it, the residual is F-(y) when they are equal (continuous
responses) and a uniform draw between them when some simulated values equal y (counts), so
that ties do not pile residuals onto a few values.

Simulations use new random effects by default (unconditional, lme4's ``simulate`` default
and DHARMa's before version 0.5); ``conditional=True`` keeps the conditional modes (DHARMa
0.5's default), which gives the tests more power against problems within groups and none
against a wrong random-effects distribution.

Binomial responses with trials are compared as counts of successes, as DHARMa does: the
observed and simulated values held here are successes, so ties are exact and the dispersion
statistic weighs rows by their trials.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import MixedModelsError
from .inference.glmm_simulate import (check_glmer_result, check_nsim, population_means,
                                      simulate_responses)

__all__ = ["simulated_residuals", "SimulatedResiduals", "UniformityTest", "SimulationTest",
           "pit_residuals", "simulation_p_value", "rank_transform", "quantile_curves"]

ALTERNATIVES = ("two-sided", "greater", "less")


def _check_alternative(alternative: str) -> str:
    if alternative not in ALTERNATIVES:
        raise MixedModelsError(f"alternative must be one of {ALTERNATIVES}, not "
                               f"{alternative!r}")
    return alternative


def _verdict(p_value: float) -> str:
    return "significant deviation" if p_value < 0.05 else "no significant deviation"


def _format_p(p_value: float, nsim: int | None = None) -> str:
    if nsim is not None and p_value == 0:
        return f"p-value < {1.0 / nsim:.3g} (no simulation as extreme)"
    return f"p-value = {p_value:.4g}"


@dataclass(frozen=True)
class UniformityTest:
    """One-sample Kolmogorov-Smirnov test of the residuals against U(0, 1).

    statistic : the KS distance D; p_value : scipy's p-value; n : number of residuals;
    alternative : "two-sided", "greater" or "less" (scipy's meaning).
    """

    statistic: float
    p_value: float
    n: int
    alternative: str = "two-sided"

    def __str__(self) -> str:
        return (f"Uniformity test (one-sample Kolmogorov-Smirnov against U(0, 1), "
                f"{self.alternative})\n"
                f"  D = {self.statistic:.4f}, {_format_p(self.p_value)}, n = {self.n}: "
                f"{_verdict(self.p_value)}")


@dataclass(frozen=True, eq=False)
class SimulationTest:
    """A statistic of the observed data against its distribution over the simulations.

    name : what is tested ("dispersion", "zero-inflation"); statistic : observed / mean of
    the simulated values (1 when the data look like the model's); p_value : the share of
    simulations at least as extreme (two-sided: twice the smaller tail, at most 1); observed :
    the statistic on the data; simulated : (nsim,) the statistic on each simulation;
    alternative : "two-sided", "greater" (more than simulated) or "less".
    """

    name: str
    statistic: float
    p_value: float
    observed: float
    simulated: np.ndarray = field(repr=False)
    alternative: str = "two-sided"
    description: str = ""

    @property
    def expected(self) -> float:
        """Mean of the statistic over the simulations."""
        return float(np.mean(self.simulated))

    def __str__(self) -> str:
        ratio = "nan" if math.isnan(self.statistic) else f"{self.statistic:.4f}"
        return (f"{self.name.capitalize()} test ({self.description}, {self.alternative})\n"
                f"  ratio observed / simulated = {ratio} (observed {self.observed:.4g}, "
                f"simulated mean {self.expected:.4g}), "
                f"{_format_p(self.p_value, self.simulated.size)}: {_verdict(self.p_value)}")


def simulation_p_value(simulated: np.ndarray, observed: float,
                       alternative: str = "two-sided") -> float:
    """DHARMa's simulation p-value of ``observed`` against ``simulated`` (nsim,)."""
    at_most = float(np.mean(simulated <= observed))
    at_least = float(np.mean(simulated >= observed))
    if alternative == "greater":
        return at_least
    if alternative == "less":
        return at_most
    return min(1.0, 2.0 * min(at_most, at_least))


def pit_residuals(observed: np.ndarray, simulated: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """(n,) PIT residuals of ``observed`` (n,) among ``simulated`` (n, nsim), in [0, 1].

    The fraction of simulated values below the observed one; where some equal it, a uniform
    draw between the fractions below and at or below (one draw per row, from ``rng``).
    """
    obs = np.asarray(observed, dtype=float)[:, None]
    below = np.mean(simulated < obs, axis=1)
    at_or_below = np.mean(simulated <= obs, axis=1)
    # Drawing for every row (not only the tied ones) keeps the stream of draws, and so the
    # residuals, independent of which rows happen to tie.
    draws = rng.uniform(below, at_or_below)
    return np.where(below < at_or_below, draws, below)


@dataclass(frozen=True, eq=False)
class SimulatedResiduals:
    """DHARMa's scaled residuals of a GLMM fit, with their tests and plot.

    Shapes: n rows, nsim simulations.

    Attributes
    ----------
    residuals : pandas.Series
        (n,) scaled (PIT) residuals in [0, 1], indexed like the fit's data; uniform when the
        model is right.
    observed : (n,) ndarray
        The response as the residuals compare it (binomial with trials: successes).
    simulated : (n, nsim) ndarray
        Responses simulated from the fit, on the scale of ``observed``.
    fitted : (n,) ndarray
        Fitted means without the random effects, on the response scale (probabilities for
        the binomial): DHARMa's predictions, lme4's ``predict(re.form = NA, type =
        "response")``; the x axis of the plot.
    counts : (n,) ndarray
        What a mean is multiplied by to be on the scale of ``observed`` (binomial: the
        trials; otherwise ones).
    nsim : int
    conditional : bool
        Whether the simulations kept the conditional modes (else new random effects).
    result : GlmerResult
        The fit.
    """

    residuals: pd.Series
    observed: np.ndarray = field(repr=False)
    simulated: np.ndarray = field(repr=False)
    fitted: np.ndarray = field(repr=False)
    counts: np.ndarray = field(repr=False)
    nsim: int
    conditional: bool
    result: Any = field(repr=False)

    @property
    def nobs(self) -> int:
        return self.observed.size

    def test_uniformity(self, alternative: str = "two-sided") -> UniformityTest:
        """Kolmogorov-Smirnov test of the residuals against U(0, 1) (DHARMa's
        ``testUniformity``): a small p-value says the data do not look like draws from the
        model, without saying how."""
        from scipy import stats

        _check_alternative(alternative)
        res = stats.kstest(self.residuals.to_numpy(), "uniform", alternative=alternative)
        return UniformityTest(statistic=float(res.statistic), p_value=float(res.pvalue),
                              n=self.nobs, alternative=alternative)

    def test_dispersion(self, alternative: str = "two-sided") -> SimulationTest:
        """DHARMa's default dispersion test: the variance of the observed residuals
        y - fitted over the mean variance of the simulated ones sim - fitted (binomial with
        trials: on the count scale). A ratio above 1 with a small p-value is overdispersion,
        below 1 underdispersion."""
        _check_alternative(alternative)
        expected = (self.fitted * self.counts)[:, None]
        observed = float(np.var(self.observed - expected[:, 0], ddof=1))
        simulated = np.var(self.simulated - expected, axis=0, ddof=1)
        return _simulation_test("dispersion", observed, simulated, alternative,
                                "variance of y - fitted, observed vs simulated")

    def test_zero_inflation(self, alternative: str = "two-sided") -> SimulationTest:
        """DHARMa's ``testZeroInflation``: the number of zeros in the data against its
        distribution over the simulations. A ratio above 1 with a small p-value: more zeros
        than the model makes."""
        _check_alternative(alternative)
        observed = float(np.sum(self.observed == 0))
        simulated = np.sum(self.simulated == 0, axis=0).astype(float)
        return _simulation_test("zero-inflation", observed, simulated, alternative,
                                "number of zeros, observed vs simulated")

    def plot(self, **kwargs):
        """DHARMa's two panels (``mixedmodels.plots.quantile_residuals``); returns the
        matplotlib Figure. Keyword arguments go to that function."""
        from .plots import quantile_residuals

        return quantile_residuals(self, **kwargs)

    def __str__(self) -> str:
        kind = ("conditional modes" if self.conditional else "new random effects")
        lines = [f"Simulated (DHARMa) residuals of {self.result.formula}",
                 f"  {self.nobs} rows, {self.nsim} simulations with {kind}",
                 str(self.test_uniformity()), str(self.test_dispersion()),
                 str(self.test_zero_inflation())]
        return "\n".join(lines)


def rank_transform(x: np.ndarray) -> np.ndarray:
    """(n,) ranks of x (ties averaged) divided by the largest, in (0, 1] (DHARMa's x axis)."""
    from scipy.stats import rankdata

    ranks = rankdata(np.asarray(x, dtype=float), method="average")
    return ranks / ranks.max()


def quantile_curves(x: np.ndarray, residuals: np.ndarray,
                    quantiles: tuple[float, ...] = (0.25, 0.5, 0.75),
                    n_points: int = 50) -> tuple[np.ndarray, np.ndarray, bool]:
    """Quantiles of ``residuals`` along ``x`` (both (n,)), a stand-in for DHARMa's quantile
    regressions.

    With few distinct x values (one, or fewer than 10 with more than 10 rows each: DHARMa's
    rule for treating the predictions as a factor), the quantiles within each value. Else
    running quantiles: at each distinct x (or at ``n_points`` evenly spaced x when there are
    more), over the rows nearest to it in x, a fifth of them (at least 20). Rows tied with
    the farthest one are taken too, so that the order of tied rows cannot shape the curves.

    Returns
    -------
    centres : (m,) the x of each group or window
    values : (m, k) the k quantiles there
    grouped : whether the rows were grouped by distinct x
    """
    x = np.asarray(x, dtype=float)
    residuals = np.asarray(residuals, dtype=float)
    q = np.asarray(quantiles, dtype=float)
    n = x.size
    distinct, codes = np.unique(x, return_inverse=True)
    if distinct.size == 1 or (distinct.size < 10 and n / distinct.size > 10):
        values = np.stack([np.quantile(residuals[codes == g], q)
                           for g in range(distinct.size)])
        return distinct, values, True
    centres = (distinct if distinct.size <= n_points
               else np.linspace(distinct[0], distinct[-1], n_points))
    k = min(n, max(20, math.ceil(n / 5)))
    values = np.empty((centres.size, q.size))
    # One pass per window position (at most n_points of them), vectorized over the rows.
    for i, c in enumerate(centres):
        dist = np.abs(x - c)
        reach = np.partition(dist, k - 1)[k - 1]
        values[i] = np.quantile(residuals[dist <= reach], q)
    return centres, values, False


def _simulation_test(name: str, observed: float, simulated: np.ndarray, alternative: str,
                     description: str) -> SimulationTest:
    mean = float(np.mean(simulated))
    # 0 / 0 (no zeros in the data nor in any simulation, e.g. a Gamma response) has no ratio.
    ratio = observed / mean if mean != 0 else (math.nan if observed == 0 else math.inf)
    return SimulationTest(name=name, statistic=ratio,
                          p_value=simulation_p_value(simulated, observed, alternative),
                          observed=observed, simulated=simulated, alternative=alternative,
                          description=description)


def simulated_residuals(result: Any, nsim: int = 250, seed: Any = None, *,
                        conditional: bool = False) -> SimulatedResiduals:
    """DHARMa's simulated quantile residuals of a GLMM fit (R's ``simulateResiduals``).

    Parameters
    ----------
    result : GlmerResult
        The fit.
    nsim : int, default 250
        Number of responses simulated from the fit (at least 2; DHARMa's default 250).
        The residuals move in steps of 1 / nsim.
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Drives both the simulations and the draws that break ties; the same seed gives the
        same residuals.
    conditional : bool, default False
        False: new random effects in every simulation (lme4's ``simulate``); True: the
        conditional modes (DHARMa 0.5's default).

    Returns
    -------
    SimulatedResiduals
        With ``.residuals`` (n,), the tests ``test_uniformity()``, ``test_dispersion()``,
        ``test_zero_inflation()`` and ``plot()``.

    Raises
    ------
    TypeError
        When ``result`` is not a ``GlmerResult``.
    MixedModelsError
        When ``nsim`` is not an integer of at least 2.
    """
    check_glmer_result(result)
    nsim = check_nsim(nsim, minimum=2)
    rng = np.random.default_rng(seed)
    simulated = simulate_responses(result, nsim, rng, use_u=bool(conditional))
    observed = np.asarray(result.y, dtype=float)
    if result.family.name == "binomial":
        # Successes, rounded: proportions given as data (0.3333) and simulated ones (1/3)
        # would otherwise differ in the last digits and never tie.
        counts = np.asarray(result.prior_weights, dtype=float)
        observed = np.rint(observed * counts)
        simulated = np.rint(simulated * counts[:, None])
    else:
        counts = np.ones_like(observed)
    fitted = result.family.link.linkinv(population_means(result))
    residuals = pd.Series(pit_residuals(observed, simulated, rng),
                          index=result.rows.row_index, name="quantile residuals")
    return SimulatedResiduals(residuals=residuals, observed=observed, simulated=simulated,
                              fitted=np.asarray(fitted, dtype=float), counts=counts,
                              nsim=nsim, conditional=bool(conditional), result=result)
