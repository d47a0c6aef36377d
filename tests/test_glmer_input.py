"""glmer's inputs: the responses R accepts, equivalent spellings, and every bad input's error."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.errors import DataError, FormulaError, MixedModelsError
from mixedmodels.families import FamilyError, NonIntegerWarning
from mixedmodels.glmm import SeparationWarning

CBPP = "cbind(incidence, size - incidence) ~ period + (1|herd)"


@pytest.fixture(scope="module")
def cbpp():
    return mm.datasets.load("cbpp")


@pytest.fixture(scope="module")
def cbpp_fit(cbpp):
    return mm.glmer(CBPP, cbpp)


@pytest.fixture(scope="module")
def sleep():
    return mm.datasets.load("sleepstudy")


def _counts(seed=1, n_groups=12, per=15, overdispersed=False):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=g.size)
    eta = 0.5 + 0.4 * x + rng.normal(scale=0.6, size=n_groups)[g]
    if overdispersed:
        eta = eta + rng.normal(scale=0.8, size=g.size)
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "g": [f"g{i}" for i in g]})


# ---- responses as R takes them --------------------------------------------------------------
def test_proportion_with_trials_as_weights_equals_cbind(cbpp, cbpp_fit):
    data = cbpp.assign(prop=cbpp["incidence"] / cbpp["size"])
    m = mm.glmer("prop ~ period + (1|herd)", data, weights="size")
    np.testing.assert_allclose(m.fixef, cbpp_fit.fixef, rtol=1e-6)
    np.testing.assert_allclose(m.theta, cbpp_fit.theta, rtol=1e-6)
    assert m.loglik == pytest.approx(cbpp_fit.loglik, abs=1e-8)


def test_expanded_bernoulli_rows_give_the_same_fixed_effects(cbpp, cbpp_fit):
    """One 0/1 row per trial: the same likelihood up to the binomial coefficients."""
    rows = []
    for r in cbpp.itertuples(index=False):
        rows += [(r.herd, r.period, 1)] * int(r.incidence)
        rows += [(r.herd, r.period, 0)] * int(r.size - r.incidence)
    long = pd.DataFrame(rows, columns=["herd", "period", "y"])
    long["herd"] = pd.Categorical(long["herd"], categories=cbpp["herd"].cat.categories)
    long["period"] = pd.Categorical(long["period"], categories=cbpp["period"].cat.categories)
    m = mm.glmer("y ~ period + (1|herd)", long)
    np.testing.assert_allclose(m.fixef, cbpp_fit.fixef, rtol=1e-5)
    np.testing.assert_allclose(m.theta, cbpp_fit.theta, rtol=1e-5)


def test_logical_and_factor_responses(sleep):
    by_expression = mm.glmer("I(Reaction > 300) ~ Days + (1|Subject)", sleep)
    as_bool = sleep.assign(slow=sleep["Reaction"] > 300)
    by_bool = mm.glmer("slow ~ Days + (1|Subject)", as_bool)
    as_factor = sleep.assign(speed=np.where(sleep["Reaction"] > 300, "slow", "fast"))
    by_factor = mm.glmer("speed ~ Days + (1|Subject)", as_factor)  # first level "fast" = 0
    for other in (by_bool, by_factor):
        np.testing.assert_allclose(other.fixef, by_expression.fixef, rtol=1e-8)
    assert by_factor.info.response_levels == ("fast", "slow")


def test_gaussian_identity_is_lmer_with_a_warning(sleep):
    with pytest.warns(UserWarning, match="lmer"):
        m = mm.glmer("Reaction ~ Days + (Days|Subject)", sleep, family="gaussian")
    ml = mm.lmer("Reaction ~ Days + (Days|Subject)", sleep, reml=False)
    assert isinstance(m, mm.LmerResult)
    assert m.loglik == pytest.approx(ml.loglik, abs=1e-8)


def test_family_objects_and_names_agree(cbpp, cbpp_fit):
    m = mm.glmer(CBPP, cbpp, family=mm.families.Binomial(link="logit"))
    np.testing.assert_allclose(m.fixef, cbpp_fit.fixef, rtol=1e-10)
    probit = mm.glmer(CBPP, cbpp, family=mm.families.Binomial(link="probit"))
    assert probit.family.link.name == "probit"
    assert probit.fixef.iloc[0] == pytest.approx(-0.8355, abs=2e-3)


def test_offset_enters_the_linear_predictor(cbpp):
    m = mm.glmer("incidence ~ period + offset(log(size)) + (1|herd)", cbpp, family="poisson")
    eta = m.linear_predictor().to_numpy()
    zb = np.concatenate(m.b).ravel()[m.rows.terms[0].refs]
    expected = m.rows.X @ m.beta + np.log(cbpp["size"].to_numpy()) + zb
    np.testing.assert_allclose(eta, expected, rtol=1e-12)


def test_observation_level_random_effect_is_allowed():
    data = _counts(overdispersed=True)
    data["obs"] = [f"o{i}" for i in range(len(data))]
    m = mm.glmer("y ~ x + (1|g) + (1|obs)", data, family="poisson")
    assert m.ngroups["obs"] == len(data)
    plain = mm.glmer("y ~ x + (1|g)", data, family="poisson")
    assert m.aic < plain.aic


# ---- bad input: each a clear error or R's warning ---------------------------------------------
def test_binomial_response_outside_unit_interval(cbpp):
    with pytest.raises(DataError, match="incidence"):
        mm.glmer("incidence ~ period + (1|herd)", cbpp)


def test_proportion_without_weights_warns(cbpp):
    """R's warning; one trial per row also leaves no herd variance (a singular fit)."""
    from mixedmodels.lmm import SingularFitWarning

    data = cbpp.assign(prop=cbpp["incidence"] / cbpp["size"])
    with pytest.warns(SingularFitWarning):
        with pytest.warns(NonIntegerWarning, match="weights"):
            mm.glmer("prop ~ period + (1|herd)", data)


def test_negative_counts_are_an_error():
    data = _counts()
    data.loc[3, "y"] = -1
    with pytest.raises(DataError, match="'y'"):
        mm.glmer("y ~ x + (1|g)", data, family="poisson")


def test_non_integer_counts_warn_then_fail_clearly():
    data = _counts().astype({"y": float})
    data.loc[0, "y"] = 2.5
    with pytest.warns(NonIntegerWarning, match="non-integer"):
        with pytest.raises(MixedModelsError, match="y ~ x"):
            mm.glmer("y ~ x + (1|g)", data, family="poisson")


def test_gamma_needs_positive_values(sleep):
    data = sleep.copy()
    data.loc[5, "Reaction"] = 0.0
    with pytest.raises(DataError, match="Reaction"):
        mm.glmer("Reaction ~ Days + (1|Subject)", data, family="Gamma")


@pytest.mark.parametrize("family, link, words", [
    ("binomal", None, ["binomial", "poisson"]),
    ("poisson", "logit", ["log", "sqrt", "identity"]),
    ("binomial", "inverse", ["logit", "probit", "cloglog"]),
])
def test_unknown_family_or_link_lists_the_known_ones(cbpp, family, link, words):
    with pytest.raises(FamilyError) as err:
        mm.glmer(CBPP, cbpp, family=family, link=link)
    for word in words:
        assert word in str(err.value)


def test_nagq_rules(cbpp, sleep):
    with pytest.raises(MixedModelsError, match="single random-effects term"):
        mm.glmer("total.fruits ~ nutrient + (1|popu) + (1|gen)",
                 mm.datasets.load("Arabidopsis"), family="poisson", nagq=5)
    with pytest.raises(MixedModelsError, match="Gamma"):
        mm.glmer("Reaction ~ Days + (1|Subject)", sleep, family="Gamma", nagq=5)
    for bad in (-1, 2.5, True, 101):
        with pytest.raises(MixedModelsError, match="nagq"):
            mm.glmer(CBPP, cbpp, nagq=bad)


def test_cbind_and_factor_responses_need_the_binomial(cbpp, sleep):
    with pytest.raises(FormulaError, match="binomial"):
        mm.glmer(CBPP, cbpp, family="poisson")
    data = sleep.assign(speed=np.where(sleep["Reaction"] > 300, "slow", "fast"))
    with pytest.raises(DataError, match="speed"):
        mm.glmer("speed ~ Days + (1|Subject)", data, family="poisson")


def test_complete_separation_warns(sleep):
    from mixedmodels.glmer_results import VcovWarning
    from mixedmodels.lmm import ConvergenceWarning

    data = sleep.assign(late=(sleep["Days"] >= 5).astype(int))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mm.glmer("late ~ Days + (1|Subject)", data)
    kinds = {w.category for w in caught}
    # lme4's set: separation, a Hessian that is not positive definite, the R_X fallback
    assert {SeparationWarning, ConvergenceWarning, VcovWarning} <= kinds
    assert all(w.filename == __file__ for w in caught)


def test_pirls_failure_names_the_model(cbpp, monkeypatch):
    from mixedmodels import pirls

    def fail(self, *args, **kwargs):
        raise pirls.PirlsError("step-halvings failed")

    monkeypatch.setattr(pirls.GlmmWorkspace, "pirls", fail)
    with pytest.raises(MixedModelsError, match="cbind\\(incidence"):
        mm.glmer(CBPP, cbpp)


def test_no_runtime_warnings_from_a_plain_fit(cbpp):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mm.glmer(CBPP, cbpp)


def test_glmer_nb_refuses_binomial_responses(cbpp):
    with pytest.raises(FormulaError, match="glmer_nb"):
        mm.glmer_nb(CBPP, cbpp)


def test_vcov_fallback_warns_once_at_the_fit(sleep):
    from mixedmodels.glmer_results import VcovWarning

    data = sleep.assign(late=(sleep["Days"] >= 5).astype(int))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = mm.glmer("late ~ Days + (1|Subject)", data)
        m.se, m.vcov, m.summary()
    assert sum(issubclass(w.category, VcovWarning) for w in caught) <= 1


def test_singular_glmm_reports_theta_zero_and_warns():
    """A grouping factor without variation between its levels: lme4 ends on theta = 0."""
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(10), 30)
    x = rng.normal(size=g.size)
    y = rng.binomial(1, 1 / (1 + np.exp(-(0.2 + 0.5 * x))))
    data = pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]})
    from mixedmodels.lmm import SingularFitWarning

    with pytest.warns(SingularFitWarning, match="singular"):
        m = mm.glmer("y ~ x + (1|g)", data)
    assert m.is_singular
    assert m.theta[0] == 0.0


def test_model_without_fixed_effects():
    """y ~ 0 + (1|g): lme4 fits it (theta 1.092669, logLik -412.227113 in R 4.2, lme4 1.1-31,
    for these simulated counts)."""
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(10), 20)
    data = pd.DataFrame({"y": rng.poisson(3, size=200), "g": g.astype(str)})
    m = mm.glmer("y ~ 0 + (1|g)", data, family="poisson")
    assert m.fixef.empty
    assert m.theta[0] == pytest.approx(1.092669, rel=1e-5)
    assert m.loglik == pytest.approx(-412.227113, abs=1e-5)
    assert "Random effects:" in str(m.summary())
