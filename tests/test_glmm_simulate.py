"""Tests of simulate() for glmer fits (lme4's simulate.merMod).

Expected values come from the fitted model (fitted means, fixef, VarCorr, the data's trials)
and from the moments of the distributions (Poisson, log-normal, Gamma), never from the
simulation code itself.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.errors import MixedModelsError
from mixedmodels.inference.glmm_simulate import simulate


@pytest.fixture(scope="module")
def cbpp():
    return mm.datasets.load("cbpp")


@pytest.fixture(scope="module")
def binomial_fit(cbpp):
    return mm.glmer("cbind(incidence, size - incidence) ~ period + (1|herd)", cbpp)


@pytest.fixture(scope="module")
def poisson_fit(cbpp):
    return mm.glmer("incidence ~ period + offset(log(size)) + (1|herd)", cbpp,
                    family="poisson")


@pytest.fixture(scope="module")
def gamma_fit():
    sleep = mm.datasets.load("sleepstudy")
    return mm.glmer("Reaction ~ Days + (Days|Subject)", sleep, family="Gamma", link="log")


def test_shape_index_and_columns(cbpp):
    data = cbpp.set_index(pd.Index(np.arange(1000, 1000 + len(cbpp)), name="row"))
    fit = mm.glmer("cbind(incidence, size - incidence) ~ period + (1|herd)", data)
    sims = fit.simulate(nsim=3, seed=1)
    assert isinstance(sims, pd.DataFrame)
    assert sims.shape == (len(cbpp), 3)
    assert list(sims.columns) == ["sim_1", "sim_2", "sim_3"]
    assert sims.index.equals(data.index)
    assert np.isfinite(sims.to_numpy()).all()


def test_same_seed_same_numbers(poisson_fit):
    a = simulate(poisson_fit, nsim=4, seed=42)
    b = poisson_fit.simulate(nsim=4, seed=42)
    pd.testing.assert_frame_equal(a, b)
    c = simulate(poisson_fit, nsim=4, seed=43)
    assert not np.array_equal(a.to_numpy(), c.to_numpy())
    # A SeedSequence and a Generator built from the same seed give the same draws.
    d = simulate(poisson_fit, nsim=4, seed=np.random.SeedSequence(42))
    e = simulate(poisson_fit, nsim=4, seed=np.random.default_rng(42))
    pd.testing.assert_frame_equal(a, d)
    pd.testing.assert_frame_equal(a, e)


def test_binomial_proportions_are_multiples_of_one_over_trials(binomial_fit, cbpp):
    sims = binomial_fit.simulate(nsim=50, seed=3).to_numpy()
    size = cbpp["size"].to_numpy(dtype=float)[:, None]
    successes = sims * size
    assert np.all(np.abs(successes - np.rint(successes)) < 1e-9)
    assert sims.min() >= 0 and sims.max() <= 1
    # Not all 0 or all trials: the draws do vary within rows.
    assert np.all(sims.std(axis=1) > 0)


def test_use_u_means_match_fitted_binomial(binomial_fit, cbpp):
    nsim = 20000
    sims = binomial_fit.simulate(nsim=nsim, seed=5, use_u=True).to_numpy()
    mu = binomial_fit.fitted().to_numpy()
    size = cbpp["size"].to_numpy(dtype=float)
    se = np.sqrt(mu * (1 - mu) / (size * nsim))
    assert np.all(np.abs(sims.mean(axis=1) - mu) < 5 * se)
    # Conditional on the modes the variance is the binomial one, mu (1 - mu) / trials.
    np.testing.assert_allclose(sims.var(axis=1), mu * (1 - mu) / size, rtol=0.06)


def test_use_u_means_match_fitted_poisson_with_offset(poisson_fit):
    nsim = 20000
    sims = poisson_fit.simulate(nsim=nsim, seed=6, use_u=True).to_numpy()
    mu = poisson_fit.fitted().to_numpy()
    assert np.all(np.abs(sims.mean(axis=1) - mu) < 5 * np.sqrt(mu / nsim))
    np.testing.assert_allclose(sims.var(axis=1), mu, rtol=0.06)


def test_new_random_effects_poisson_marginal_moments(poisson_fit):
    """With u ~ N(0, 1) per herd, y has the log-normal mixture's moments:
    E y = exp(eta0 + s^2 / 2), Var y = E y + (E y)^2 (exp(s^2) - 1), s^2 from VarCorr."""
    nsim = 20000
    fit = poisson_fit
    sims = fit.simulate(nsim=nsim, seed=7).to_numpy()
    s2 = fit.varcorr()["vcov"].iloc[0]
    eta0 = fit.predict(re_form="~0").to_numpy()
    mean = np.exp(eta0 + s2 / 2)
    var = mean + mean**2 * np.expm1(s2)
    assert np.all(np.abs(sims.mean(axis=1) - mean) < 5 * np.sqrt(var / nsim))
    ratio = sims.var(axis=1) / var
    assert abs(ratio.mean() - 1) < 0.03
    # Overdispersed against the Poisson in every row, and more spread in total than the
    # simulations at the conditional modes, whose variance is the fitted mean.
    assert np.all(sims.var(axis=1) > sims.mean(axis=1))
    assert sims.var(axis=1).sum() > 1.2 * fit.fitted().sum()


def test_new_random_effects_binomial_variance_exceeds_conditional(binomial_fit, cbpp):
    new = binomial_fit.simulate(nsim=5000, seed=8).to_numpy()
    cond = binomial_fit.simulate(nsim=5000, seed=8, use_u=True).to_numpy()
    assert new.var(axis=1).sum() > 1.2 * cond.var(axis=1).sum()
    # Var y = E Var(y | b) + Var E(y | b) exceeds the binomial variance at the same mean by
    # Var(mu) (1 - 1 / trials): overdispersed in most rows and in total.
    size = cbpp["size"].to_numpy(dtype=float)
    m = new.mean(axis=1)
    binomial_var = m * (1 - m) / size
    assert np.mean(new.var(axis=1) > binomial_var) > 0.9
    assert new.var(axis=1).sum() > 1.2 * binomial_var.sum()


def test_gamma_new_effects_follow_varcorr(gamma_fit):
    """Gamma (log link) with a scale: b has VarCorr's covariance sigma^2 T T', so
    eta = eta0 + z'b is normal with variance z' Sigma z and
    E y = exp(eta0 + v / 2), E y^2 = (1 + sigma^2) exp(2 eta0 + 2 v)."""
    fit = gamma_fit
    nsim = 8000
    sims = fit.simulate(nsim=nsim, seed=9).to_numpy()
    frame = fit.varcorr()
    assert list(frame["grp"]) == ["Subject", "Subject", "Subject", "Residual"]
    assert list(frame["var1"][:3]) == ["(Intercept)", "Days", "(Intercept)"]
    v_int, v_days, c, sigma2 = frame["vcov"].to_numpy()
    days = mm.datasets.load("sleepstudy")["Days"].to_numpy(dtype=float)
    v = v_int + 2 * c * days + v_days * days**2
    eta0 = fit.predict(re_form="~0").to_numpy()
    mean = np.exp(eta0 + v / 2)
    second = (1 + sigma2) * np.exp(2 * eta0 + 2 * v)
    sd = np.sqrt(second - mean**2)
    assert np.all(np.abs(sims.mean(axis=1) - mean) < 5 * sd / np.sqrt(nsim))
    assert abs(np.mean((sims**2).mean(axis=1) / second) - 1) < 0.02


def test_gamma_use_u_means_match_fitted(gamma_fit):
    nsim = 8000
    sims = gamma_fit.simulate(nsim=nsim, seed=10, use_u=True).to_numpy()
    mu = gamma_fit.fitted().to_numpy()
    # Var(y | b) = sigma^2 mu^2 for the Gamma family
    sd = gamma_fit.sigma * mu
    assert np.all(np.abs(sims.mean(axis=1) - mu) < 5 * sd / np.sqrt(nsim))
    np.testing.assert_allclose(sims.std(axis=1) / mu, gamma_fit.sigma, rtol=0.06)


def test_negative_binomial_use_u_mean_and_variance():
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(20), 10)
    mu = np.exp(1.0 + rng.normal(0, 0.7, 20)[g])
    y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))
    fit = mm.glmer_nb("y ~ 1 + (1|g)", pd.DataFrame({"y": y, "g": g.astype(str)}))
    nsim = 20000
    sims = fit.simulate(nsim=nsim, seed=12, use_u=True).to_numpy()
    m = fit.fitted().to_numpy()
    var = m + m**2 / fit.nb_theta
    assert np.all(np.abs(sims.mean(axis=1) - m) < 5 * np.sqrt(var / nsim))
    assert abs(np.mean(sims.var(axis=1) / var) - 1) < 0.03


@pytest.mark.parametrize("nsim", [0, -2, 1.5, True, "3"])
def test_bad_nsim_names_the_argument(binomial_fit, nsim):
    with pytest.raises(MixedModelsError, match="nsim"):
        binomial_fit.simulate(nsim=nsim)


def test_rejects_a_non_glmm_result():
    fit = mm.lmer("Reaction ~ Days + (1|Subject)", mm.datasets.load("sleepstudy"))
    with pytest.raises(TypeError, match="GlmerResult"):
        simulate(fit)
    with pytest.raises(TypeError, match="result"):
        simulate("not a fit")
