"""Tests of the GLM families and links (mixedmodels.families).

Oracles: scipy.stats log densities (deviances are 2 (saturated - model) log-likelihood, AICs
are -2 log-likelihood), finite differences, and R's formulas worked by hand at the clamps.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import special, stats

from mixedmodels import families as fam
from mixedmodels.errors import DataError, MixedModelsError
from mixedmodels.families import FamilyError, NonIntegerWarning, get_family, make_link
from mixedmodels.links import EPS

RNG = np.random.default_rng(20240611)
PROB_LINKS = ["logit", "probit", "cloglog", "cauchit"]
POSITIVE_LINKS = ["log", "identity", "sqrt", "inverse", "1/mu^2"]


# ---------------------------------------------------------------------------------------------
# links


@pytest.mark.parametrize("name", PROB_LINKS + POSITIVE_LINKS)
def test_linkinv_inverts_linkfun(name):
    link = make_link(name)
    mu = np.linspace(0.01, 0.99, 99) if name in PROB_LINKS else np.geomspace(1e-3, 1e3, 99)
    mu_copy = mu.copy()
    eta = link.linkfun(mu)
    np.testing.assert_allclose(link.linkinv(eta), mu, rtol=1e-12)
    np.testing.assert_array_equal(mu, mu_copy)  # inputs are never written
    assert link.name == name and link.valideta(eta)


@pytest.mark.parametrize("name", PROB_LINKS + POSITIVE_LINKS + ["log-neg"])
def test_mu_eta_is_the_derivative_of_linkinv(name):
    if name == "log-neg":
        name, eta = "log", np.linspace(-5, 5, 41)
    elif name in PROB_LINKS:
        eta = np.linspace(-5, 2 if name == "cloglog" else 5, 41)
    else:
        eta = np.linspace(0.2, 5, 41)
    link = make_link(name)
    h = 1e-6
    fd = (link.linkinv(eta + h) - link.linkinv(eta - h)) / (2 * h)
    # absolute round-off of the difference quotient is about eps / h
    np.testing.assert_allclose(link.mu_eta(eta), fd, rtol=1e-7, atol=1e-9)


def test_logit_exact_values_and_r_clamp():
    link = make_link("logit")
    eta = np.linspace(-30, 30, 601)
    np.testing.assert_allclose(link.linkinv(eta), special.expit(eta), rtol=1e-15)
    np.testing.assert_allclose(link.mu_eta(eta), special.expit(eta) * special.expit(-eta),
                               rtol=1e-14)
    assert link.linkinv(np.array([0.0]))[0] == 0.5
    assert link.mu_eta(np.array([0.0]))[0] == 0.25
    # R's family.c: exp(eta) replaced by eps below -30 and by 1/eps above 30
    mu = link.linkinv(np.array([-800.0, -30.5, 30.5, 800.0]))
    np.testing.assert_array_equal(mu, [EPS / (1 + EPS)] * 2 + [1 / (1 + EPS)] * 2)
    assert mu[-1] < 1.0 and mu[0] > 0.0
    inside = link.linkinv(np.array([-30.0, 30.0]))
    np.testing.assert_allclose(inside, [math.exp(-30) / (1 + math.exp(-30)),
                                        1 / (1 + math.exp(-30))], rtol=1e-14)
    np.testing.assert_array_equal(link.mu_eta(np.array([-800.0, -31.0, 31.0, 800.0])), EPS)
    np.testing.assert_allclose(link.mu_eta(np.array([30.0])), math.exp(30) / (1 + math.exp(30))**2,
                               rtol=1e-13)
    np.testing.assert_allclose(link.linkfun(np.array([0.25, 0.5])), [math.log(1 / 3), 0.0],
                               atol=1e-15)


def test_clamps_of_the_other_links():
    big = np.array([-1e300, -800.0, 800.0, 1e300])
    # probit: eta clipped at -qnorm(eps), mu.eta floored at eps
    thresh = stats.norm.isf(EPS)
    probit = make_link("probit")
    np.testing.assert_allclose(probit.linkinv(big), stats.norm.cdf([-thresh] * 2 + [thresh] * 2),
                               rtol=1e-12)
    assert probit.linkinv(big)[0] > 0 and probit.linkinv(big)[-1] < 1
    np.testing.assert_array_equal(probit.mu_eta(big), EPS)
    # cauchit: eta clipped at -qcauchy(eps) = 1/tan(pi eps) (about 1.4e15), so mu = eps at the
    # lower clamp; inside it R's pcauchy tail formula -atan(1/x)/pi
    cauchit = make_link("cauchit")
    mu = cauchit.linkinv(big)
    np.testing.assert_allclose(mu, [EPS, -math.atan(-1 / 800) / math.pi,
                                    1 + math.atan(-1 / 800) / math.pi, 1 - EPS], rtol=1e-12)
    np.testing.assert_array_equal(cauchit.mu_eta(big[[0, 3]]), EPS)
    np.testing.assert_allclose(cauchit.mu_eta(big[[1, 2]]), stats.cauchy.pdf(800.0), rtol=1e-13)
    np.testing.assert_allclose(cauchit.linkfun(np.array([0.25, 0.75, 1e-10])),
                               stats.cauchy.ppf([0.25, 0.75, 1e-10]), rtol=1e-9)
    # cloglog: mu in [eps, 1 - eps], mu.eta floored at eps (eta capped at 700 first)
    cloglog = make_link("cloglog")
    np.testing.assert_array_equal(cloglog.linkinv(big), [EPS, EPS, 1 - EPS, 1 - EPS])
    np.testing.assert_array_equal(cloglog.mu_eta(big), EPS)
    # log: mu and mu.eta floored at eps
    log = make_link("log")
    np.testing.assert_array_equal(log.linkinv(np.array([-800.0])), [EPS])
    np.testing.assert_array_equal(log.mu_eta(np.array([-800.0])), [EPS])
    np.testing.assert_array_equal(make_link("identity").mu_eta(np.zeros(3)), np.ones(3))


def test_valideta():
    assert not make_link("sqrt").valideta(np.array([1.0, 0.0]))
    assert not make_link("1/mu^2").valideta(np.array([1.0, -1.0]))
    assert not make_link("inverse").valideta(np.array([1.0, 0.0]))
    assert not make_link("inverse").valideta(np.array([1.0, np.inf]))
    assert make_link("inverse").valideta(np.array([-1.0, 2.0]))
    assert make_link("logit").valideta(np.array([-1e3, 1e3]))


# ---------------------------------------------------------------------------------------------
# construction


ALLOWED = {
    "binomial": (fam.binomial, "logit", {"logit", "probit", "cauchit", "log", "cloglog"}),
    "poisson": (fam.poisson, "log", {"log", "identity", "sqrt"}),
    "Gamma": (fam.Gamma, "inverse", {"inverse", "identity", "log"}),
    "inverse.gaussian": (fam.inverse_gaussian, "1/mu^2", {"1/mu^2", "inverse", "identity", "log"}),
    "gaussian": (fam.gaussian, "identity", {"identity", "log", "inverse"}),
}
ALL_LINKS = set(PROB_LINKS + POSITIVE_LINKS)


@pytest.mark.parametrize("name", ALLOWED)
def test_allowed_links(name):
    factory, default, allowed = ALLOWED[name]
    f = factory()
    assert f.name == name and f.link.name == default
    assert get_family(name).link.name == default
    for link in ALL_LINKS:
        if link in allowed:
            assert factory(link).link.name == link
            assert get_family(name, link).link.name == link
        else:
            with pytest.raises(FamilyError, match="available links are") as info:
                factory(link)
            assert all(repr(a) in str(info.value) for a in allowed)


def test_printing():
    assert str(fam.binomial("probit")) == "Family: binomial\nLink function: probit"
    assert repr(fam.Gamma("log")) == "GammaFamily(link='log')"
    assert repr(make_link("1/mu^2")) == "make_link('1/mu^2')"


def test_has_dispersion():
    assert [get_family(n).has_dispersion for n in ALLOWED] == [False, False, True, True, True]
    assert not fam.negative_binomial(2.0).has_dispersion


def test_get_family():
    b = fam.Binomial(link="probit")
    assert get_family(b) is b
    assert isinstance(get_family("gamma"), fam.GammaFamily)
    assert get_family("inverse_gaussian").name == "inverse.gaussian"
    with pytest.raises(FamilyError):
        get_family(b, "logit")
    with pytest.raises(FamilyError, match="binomial.*poisson.*Gamma.*inverse.gaussian.*gaussian"):
        get_family("bernoulli")
    with pytest.raises(FamilyError, match="theta"):
        get_family("negative.binomial")
    assert issubclass(FamilyError, MixedModelsError) and issubclass(FamilyError, ValueError)
    with pytest.raises(FamilyError, match="'log', 'sqrt', 'identity'"):
        fam.negative_binomial(1.0, link="logit")
    with pytest.raises(FamilyError):
        fam.negative_binomial(-1.0)


@pytest.mark.parametrize("theta, printed", [
    (0.61623456, "0.6162"), (2.0, "2"), (1.5, "1.5"), (10.0, "10"),
    (123456.78912, "123456.8"), (1e-4, "1e-04"), (1e8, "1e+08"), (3.99996, "4"),
])
def test_negative_binomial_name_as_r_prints_it(theta, printed):
    # R: paste0("Negative Binomial(", format(round(theta, 4)), ")")
    assert fam.negative_binomial(theta).name == f"Negative Binomial({printed})"


# ---------------------------------------------------------------------------------------------
# variance, deviance, aic against scipy.stats


def test_variance_against_scipy():
    mu = np.array([0.1, 0.5, 0.93])
    np.testing.assert_allclose(fam.binomial().variance(mu), stats.bernoulli.var(mu), rtol=1e-15)
    mu = np.array([0.3, 2.0, 17.0])
    np.testing.assert_allclose(fam.poisson().variance(mu), stats.poisson.var(mu), rtol=1e-15)
    shape = 2.5  # Gamma with dispersion 1/shape
    np.testing.assert_allclose(fam.Gamma().variance(mu) / shape,
                               stats.gamma.var(shape, scale=mu / shape), rtol=1e-14)
    lam = 3.0  # inverse Gaussian with dispersion 1/lambda
    np.testing.assert_allclose(fam.inverse_gaussian().variance(mu) / lam,
                               stats.invgauss.var(mu / lam, scale=lam), rtol=1e-12)
    np.testing.assert_array_equal(fam.gaussian().variance(mu), np.ones(3))
    th = 0.7
    np.testing.assert_allclose(fam.negative_binomial(th).variance(mu),
                               stats.nbinom.var(th, th / (th + mu)), rtol=1e-12)


def _counts(n):
    return RNG.poisson(3.0, n).astype(float)


def test_binomial_unit_deviance():
    trials = RNG.integers(0, 12, 200).astype(float)
    s = RNG.binomial(trials.astype(int), 0.3).astype(float)
    y = np.divide(s, trials, out=np.zeros_like(s), where=trials > 0)
    mu = RNG.uniform(0.05, 0.95, 200)
    sat = stats.binom.logpmf(s, trials, y)
    oracle = 2 * (sat - stats.binom.logpmf(s, trials, mu))
    f = fam.binomial()
    np.testing.assert_allclose(f.unit_deviance(y, mu) * trials, oracle, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(f.dev_resids(y, mu, trials), oracle, rtol=1e-9, atol=1e-10)


def test_poisson_and_negative_binomial_unit_deviance():
    y = _counts(300)
    mu = RNG.uniform(0.2, 8.0, 300)
    sat_mu = np.maximum(y, 1e-300)  # the saturated mean; y = 0 has log-likelihood 0
    oracle = 2 * (stats.poisson.logpmf(y, sat_mu) - stats.poisson.logpmf(y, mu))
    np.testing.assert_allclose(fam.poisson().unit_deviance(y, mu), oracle, rtol=1e-9, atol=1e-11)
    for th in (0.4, 3.0, 50.0):
        def ll(m):
            return stats.nbinom.logpmf(y, th, th / (th + m))
        oracle = 2 * (ll(sat_mu) - ll(mu))
        np.testing.assert_allclose(fam.negative_binomial(th).unit_deviance(y, mu), oracle,
                                   rtol=1e-8, atol=1e-10)


def test_continuous_unit_deviances():
    mu = RNG.uniform(0.5, 4.0, 300)
    y = mu * RNG.lognormal(0.0, 0.4, 300)
    k = 2.7  # Gamma shape: the log-likelihood ratio is k times the unit deviance
    oracle = 2 * (stats.gamma.logpdf(y, k, scale=y / k) - stats.gamma.logpdf(y, k, scale=mu / k))
    # the oracle's difference of log densities loses ~1e-16 absolute near y = mu
    np.testing.assert_allclose(fam.Gamma().unit_deviance(y, mu), oracle / k, rtol=1e-9,
                               atol=1e-13)
    lam = 1.8  # inverse Gaussian shape, likewise
    def ig(m):
        return stats.invgauss.logpdf(y, m / lam, scale=lam)
    np.testing.assert_allclose(fam.inverse_gaussian().unit_deviance(y, mu),
                               2 * (ig(y) - ig(mu)) / lam, rtol=1e-9, atol=1e-13)
    sd = 0.6
    oracle = 2 * (stats.norm.logpdf(y, y, sd) - stats.norm.logpdf(y, mu, sd)) * sd**2
    np.testing.assert_allclose(fam.gaussian().unit_deviance(y, mu), oracle, rtol=1e-9, atol=1e-13)


def test_deviance_at_the_boundary():
    # R's y_log_y is 0 at y = 0 whatever mu; y > 0 with mu = 0 is infinitely unlikely
    with np.errstate(divide="ignore"):
        d = fam.poisson().unit_deviance(np.array([0.0, 2.0, 1.0]), np.array([0.0, 0.0, 1.0]))
    np.testing.assert_array_equal(d, [0.0, np.inf, 0.0])
    d = fam.binomial().unit_deviance(np.array([1.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.5]))
    np.testing.assert_allclose(d, [0.0, 0.0, 2 * math.log(2)], rtol=1e-15)
    d = fam.negative_binomial(2.0).unit_deviance(np.array([0.0]), np.array([3.0]))
    np.testing.assert_allclose(d, [-2 * 2.0 * math.log(2.0 / 5.0)], rtol=1e-15)


def test_binomial_aic_with_trials_and_with_weights():
    f = fam.binomial()
    n = RNG.integers(1, 15, 150).astype(float)
    n[:3] = 0.0
    s = RNG.binomial(n.astype(int), 0.4).astype(float)
    mu = RNG.uniform(0.1, 0.9, 150)
    oracle = -2 * np.sum(stats.binom.logpmf(s, n, mu))
    y, wt, _, n_trials = f.initialize(s / np.maximum(n, 1), None, trials=n)
    dev = f.dev_resids(y, mu, wt).sum()
    assert f.aic(y, mu, wt, dev, n_trials) == pytest.approx(oracle, rel=1e-12)
    # prior weights of 2 per row count each row twice
    y2, wt2, _, n2 = f.initialize(s / np.maximum(n, 1), np.full(150, 2.0), trials=n)
    assert f.aic(y2, mu, wt2, dev, n2) == pytest.approx(2 * oracle, rel=1e-12)
    # proportions with weights = trials (no trials argument): R's m = wt
    y3, wt3, _, n3 = f.initialize(s / np.maximum(n, 1), n)
    assert f.aic(y3, mu, wt3, dev, n3) == pytest.approx(oracle, rel=1e-12)
    # 0/1 data
    yb = RNG.binomial(1, 0.3, 100).astype(float)
    mub = RNG.uniform(0.1, 0.9, 100)
    assert f.aic(yb, mub, np.ones(100), 0.0) == pytest.approx(
        -2 * np.sum(stats.bernoulli.logpmf(yb, mub)), rel=1e-13)


def test_count_aics():
    y = _counts(200)
    mu = RNG.uniform(0.5, 6.0, 200)
    wt = RNG.integers(1, 4, 200).astype(float)
    p = fam.poisson()
    assert p.aic(y, mu, wt, 0.0) == pytest.approx(
        -2 * np.sum(wt * stats.poisson.logpmf(y, mu)), rel=1e-12)
    y_frac = y.copy()
    y_frac[5] = 2.5  # R's dpois: log density -Inf off the integers
    assert p.aic(y_frac, mu, wt, 0.0) == np.inf
    for th in (0.6, 4.0):
        nb = fam.negative_binomial(th)
        oracle = -2 * np.sum(wt * stats.nbinom.logpmf(y, th, th / (th + mu)))
        assert nb.aic(y, mu, wt, 0.0) == pytest.approx(oracle, rel=1e-12)


def test_scale_family_aics():
    n = 120
    mu = RNG.uniform(0.5, 4.0, n)
    y = RNG.gamma(3.0, mu / 3.0)
    wt = RNG.integers(1, 4, n).astype(float)
    g = fam.Gamma()
    dev = g.dev_resids(y, mu, wt).sum()
    disp = dev / wt.sum()  # R's choice
    oracle = -2 * np.sum(stats.gamma.logpdf(y, 1 / disp, scale=mu * disp) * wt) + 2
    assert g.aic(y, mu, wt, dev) == pytest.approx(oracle, rel=1e-12)
    # inverse Gaussian: R's weights act as frequencies, dispersion dev / sum(wt), +2
    ig = fam.inverse_gaussian()
    dev = ig.dev_resids(y, mu, wt).sum()
    reps = wt.astype(int)
    yy, mm = np.repeat(y, reps), np.repeat(mu, reps)
    lam = 1 / (dev / wt.sum())
    oracle = -2 * np.sum(stats.invgauss.logpdf(yy, mm / lam, scale=lam)) + 2
    assert ig.aic(y, mu, wt, dev) == pytest.approx(oracle, rel=1e-12)
    # gaussian: y_i ~ N(mu_i, sigma^2 / wt_i), sigma^2 = dev / n, +2
    ga = fam.gaussian()
    dev = ga.dev_resids(y, mu, wt).sum()
    oracle = -2 * np.sum(stats.norm.logpdf(y, mu, np.sqrt(dev / n / wt))) + 2
    assert ga.aic(y, mu, wt, dev) == pytest.approx(oracle, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# initialize


def test_binomial_initialize():
    f = fam.binomial()
    y = np.array([0.0, 1.0, 1.0, 0.0])
    y_out, wt, mustart, n_trials = f.initialize(y, None)
    np.testing.assert_array_equal(mustart, [0.25, 0.75, 0.75, 0.25])  # (w y + 1/2)/(w + 1)
    np.testing.assert_array_equal(wt, 1.0)
    np.testing.assert_array_equal(n_trials, 1.0)
    with pytest.raises(DataError, match=r"response 'cbpp'.*row 2"):
        f.initialize(np.array([0.0, 1.0, 1.5, -1.0]), None, response="cbpp")
    # proportions with weights that make whole counts: no warning; R's mustart
    y = np.array([0.25, 0.5, 0.0])
    w = np.array([4.0, 2.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, wt, mustart, _ = f.initialize(y, w)
    np.testing.assert_allclose(mustart, (w * y + 0.5) / (w + 1))
    np.testing.assert_array_equal(wt, w)
    # proportions without weights: R's "non-integer #successes" warning, pointing at weights=
    with pytest.warns(NonIntegerWarning, match=r"non-integer #successes.*row 0.*weights="):
        f.initialize(y, None, response="incidence")
    assert issubclass(NonIntegerWarning, UserWarning)
    # anything is accepted where the weight is 0, and set to 0
    y_out, *_ = f.initialize(np.array([np.nan, 1.0]), np.array([0.0, 1.0]))
    np.testing.assert_array_equal(y_out, [0.0, 1.0])
    with pytest.raises(DataError, match="row 0"):
        f.initialize(np.array([np.nan, 1.0]), None)


def test_binomial_initialize_with_trials():
    f = fam.binomial()
    s, fail = np.array([2.0, 0.0, 5.0, 0.0]), np.array([3.0, 4.0, 0.0, 0.0])
    n = s + fail
    y = np.divide(s, n, out=np.zeros_like(s), where=n > 0)
    w = np.array([1.0, 2.0, 1.0, 1.0])
    y_out, wt, mustart, n_trials = f.initialize(y, w, trials=n)
    np.testing.assert_array_equal(wt, w * n)
    np.testing.assert_array_equal(n_trials, n)
    np.testing.assert_allclose(mustart, (n * y + 0.5) / (n + 1))
    np.testing.assert_array_equal(y_out, y)
    with pytest.warns(NonIntegerWarning, match="non-integer counts"):
        f.initialize(np.array([0.5]), None, trials=np.array([2.5]))
    with pytest.raises(DataError, match="'r'.*row 1"):
        f.initialize(np.array([0.5, 1.5]), None, trials=np.array([2.0, 2.0]), response="r")
    with pytest.raises(DataError, match="row 0"):
        f.initialize(np.array([0.5]), None, trials=np.array([-2.0]))
    with pytest.raises(DataError, match="only for the binomial"):
        fam.poisson().initialize(y, None, trials=n)


def test_count_initialize():
    y = np.array([0.0, 3.0, 1.0])
    y_before = y.copy()
    _, wt, mustart, n_trials = fam.poisson().initialize(y)
    np.testing.assert_allclose(mustart, y + 0.1)
    np.testing.assert_array_equal(y, y_before)
    np.testing.assert_array_equal(n_trials, 1.0)
    _, _, mustart, _ = fam.negative_binomial(1.2).initialize(y)
    np.testing.assert_allclose(mustart, [1 / 6, 3.0, 1.0])
    with pytest.raises(DataError, match=r"response 'count'.*negative values.*row 1"):
        fam.poisson().initialize(np.array([1.0, -2.0, -1.0]), response="count")
    with pytest.raises(DataError, match=r"negative values not allowed for the negative binomial"):
        fam.negative_binomial(1.0).initialize(np.array([-1.0]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fam.poisson().initialize(np.array([1.5, 2.0, 2.5]), response="ticks")
    assert len(caught) == 1 and issubclass(caught[0].category, NonIntegerWarning)
    assert "non-integer" in str(caught[0].message) and "'ticks'" in str(caught[0].message)
    assert "row 0" in str(caught[0].message)


def test_continuous_initialize():
    y = np.array([1.0, 2.5, 0.3])
    for f in (fam.Gamma(), fam.inverse_gaussian(), fam.gaussian(), fam.gaussian("log")):
        _, _, mustart, _ = f.initialize(y)
        np.testing.assert_array_equal(mustart, y)
    with pytest.raises(DataError, match=r"'time'.*non-positive values not allowed for the "
                                        r"'Gamma' family.*row 1"):
        fam.Gamma().initialize(np.array([1.0, 0.0]), response="time")
    with pytest.raises(DataError, match="inverse.gaussian.*row 0"):
        fam.inverse_gaussian().initialize(np.array([-1.0, 2.0]))
    with pytest.raises(DataError, match="row 1"):
        fam.gaussian("log").initialize(np.array([1.0, 0.0]))
    with pytest.raises(DataError, match="row 0"):
        fam.gaussian("inverse").initialize(np.array([0.0, 1.0]))
    fam.gaussian().initialize(np.array([0.0, -1.0]))
    with pytest.raises(DataError, match="non-finite"):
        fam.gaussian().initialize(np.array([0.0, np.inf]))
    with pytest.raises(DataError, match="weights"):
        fam.Gamma().initialize(y, np.array([1.0, -1.0, 1.0]))
    with pytest.raises(DataError, match="shape"):
        fam.Gamma().initialize(y, np.ones(2))


def test_validmu():
    assert fam.binomial().validmu(np.array([0.2, 0.9]))
    assert not fam.binomial().validmu(np.array([0.2, 1.0]))
    assert not fam.poisson().validmu(np.array([0.0, 1.0]))
    assert not fam.Gamma().validmu(np.array([np.inf]))
    assert fam.inverse_gaussian().validmu(np.array([-1.0]))  # R's validmu is TRUE
    assert not fam.negative_binomial(1.0).validmu(np.array([0.0]))


# ---------------------------------------------------------------------------------------------
# simulate


SIM_N = 20000


@pytest.mark.parametrize("name", ["binomial", "poisson", "Gamma", "inverse.gaussian", "gaussian",
                                  "nb"])
def test_simulate_reproducible_and_unbiased(name):
    f = fam.negative_binomial(1.5) if name == "nb" else get_family(name)
    mu = np.full(SIM_N, 0.3 if name == "binomial" else 2.0)
    weights = np.full(SIM_N, 5.0) if name == "binomial" else np.ones(SIM_N)
    disp = 0.5 if f.has_dispersion else 1.0
    a = f.simulate(mu, weights, np.random.default_rng(1), dispersion=disp)
    b = f.simulate(mu, weights, np.random.default_rng(1), dispersion=disp)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (SIM_N,)
    var = disp * f.variance(mu) / weights  # Var(y) = phi V(mu) / w
    se = np.sqrt(var.sum()) / SIM_N
    assert abs(a.mean() - mu[0]) < 4 * se
    assert a.var() == pytest.approx(var[0], rel=0.1)
    if name == "binomial":
        assert set(np.unique(a * 5)) <= set(range(6))
    if name in ("poisson", "nb"):
        assert np.array_equal(a, np.round(a))


def test_simulate_weights():
    mu = np.full(4000, 0.4)
    with pytest.raises(DataError, match="non-integer"):
        fam.binomial().simulate(mu, np.full(4000, 2.5), np.random.default_rng(0))
    with pytest.warns(UserWarning, match="ignoring prior weights"):
        fam.poisson().simulate(mu, np.full(4000, 2.0), np.random.default_rng(0))
    # Gamma weights scale the shape: Var(y) = phi mu^2 / w
    g = fam.Gamma().simulate(np.full(SIM_N, 2.0), np.full(SIM_N, 4.0), np.random.default_rng(2),
                             dispersion=0.5)
    assert g.var() == pytest.approx(0.5 * 4.0 / 4.0, rel=0.1)
