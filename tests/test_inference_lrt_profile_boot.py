"""Likelihood-ratio tests, ranova, profiles, confidence intervals, simulation and bootstrap.

References: the public lme4 fixtures (``lrt_*.json`` tables, ``confint.profile`` and
``confint.wald`` of the lmer cases) at tests/fixtures/lme4/README.md's tolerances, and for
``ranova`` and lme4's bootstrap intervals, numbers computed by hand in R 4.2 (lme4 1.1-31,
lmerTest 3.1-3); the R call that produced each is next to it.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import FIXTURES, TOL, fit_args, fitted_case, lmer_case_ids, load_case
from mixedmodels.errors import MixedModelsError
from mixedmodels.inference.bootstrap import BootstrapWarning, bootstrap, simulate
from mixedmodels.inference.lrt import RefitMLWarning, anova, ranova
from mixedmodels.inference.profile import profile

# lmer comparisons; the glmer one (lrt_cbpp_period) is tested in test_glmer_inference.py
LRT_IDS = sorted(p.stem for p in FIXTURES.glob("lrt_*.json")
                 if json.loads(p.read_text())["model_type"] == "lmer")
LRT_CHISQ_ABS = 1e-3   # README: LRT Chisq absolute 1e-3
LRT_P_REL = 1e-3       # README: LRT p relative 1e-3
PROFILE_REL = 1e-3     # README: profile CI bounds relative 1e-3


def _loglik_abs(dataset: str) -> float:
    return TOL["loglik_abs_insteval"] if dataset == "InstEval" else TOL["loglik_abs"]


def _fit(dataset: str, formula: str, args: dict):
    """Reuse the session's fit of an lmer reference case when it is the same model."""
    for case_id in lmer_case_ids():
        case = load_case(case_id)
        if (case["dataset"], case["formula"], fit_args(case)) == (dataset, formula, args):
            return fitted_case(case_id)[2]
    return mm.lmer(formula, mm.datasets.load(dataset), **args)


# ---- anova(m0, m1) --------------------------------------------------------------------------
@pytest.mark.parametrize("lrt_id", LRT_IDS)
def test_lrt_fixture(lrt_id):
    case = load_case(lrt_id)
    args = fit_args(case)
    small = _fit(case["dataset"], case["small"], args)
    big = _fit(case["dataset"], case["big"], args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = anova(small, big, names=["m_small", "m_big"])
    refit_msgs = [str(w.message) for w in caught if issubclass(w.category, RefitMLWarning)]
    assert refit_msgs == case["anova_messages"]
    assert list(table.index) == [row["model"] for row in case["table"]]
    assert list(table.columns) == ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df",
                                   "Pr(>Chisq)"]
    ref = pd.DataFrame(case["table"]).set_index("model").astype(float)
    tol = _loglik_abs(case["dataset"])
    np.testing.assert_array_equal(table["npar"], ref["npar"])
    for col in ["AIC", "BIC", "logLik", "deviance"]:
        np.testing.assert_allclose(table[col], ref[col], rtol=0, atol=tol, err_msg=col)
    assert np.isnan(table.iloc[0][["Chisq", "Df", "Pr(>Chisq)"]].astype(float)).all()
    assert table["Df"].iloc[1] == ref["Df"].iloc[1]
    assert table["Chisq"].iloc[1] == pytest.approx(ref["Chisq"].iloc[1], abs=LRT_CHISQ_ABS)
    assert table["Pr(>Chisq)"].iloc[1] == pytest.approx(ref["Pr(>Chisq)"].iloc[1],
                                                        rel=LRT_P_REL)


def test_anova_positional_labels_order_and_refit_cache():
    case = load_case("lrt_sleepstudy_random_slope")
    sleep = mm.datasets.load("sleepstudy")
    small = mm.lmer(case["small"], sleep)
    big = fitted_case("sleepstudy_reml")[2]
    with pytest.warns(RefitMLWarning, match=r"refitting model\(s\) with ML"):
        table = anova(big, small)
    # Ordered by number of parameters whatever the argument order; labelled by the names the
    # models have here, as lme4 labels rows by the argument names.
    assert list(table.index) == ["small", "big"]
    assert table.formulas == {"small": case["small"], "big": big.formula}
    assert table["Chisq"].iloc[1] == pytest.approx(case["Chisq"], abs=LRT_CHISQ_ABS)
    # The ML refit of the REML fit is the sleepstudy_ml reference fit.
    ml = load_case("sleepstudy_ml")
    assert table["logLik"].iloc[1] == pytest.approx(ml["logLik"]["value"],
                                                    abs=TOL["loglik_abs"])
    # ML fits are not refitted, so no message.
    ml_small = mm.lmer(case["small"], sleep, reml=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RefitMLWarning)
        again = anova(ml_small, fitted_case("sleepstudy_ml")[2])
    np.testing.assert_allclose(again["logLik"], table["logLik"], atol=1e-6)


def test_anova_rejects_different_data():
    sleep = mm.datasets.load("sleepstudy")
    m = fitted_case("sleepstudy_reml")[2]
    fewer = mm.lmer("Reaction ~ Days + (1|Subject)", sleep.iloc[:-10])
    with pytest.raises(MixedModelsError, match="same size of dataset"):
        anova(m, fewer)
    shifted = sleep.assign(Reaction=sleep["Reaction"] + 1.0)
    other = mm.lmer("Reaction ~ Days + (1|Subject)", shifted)
    with pytest.raises(MixedModelsError, match="same data"):
        anova(m, other)
    with pytest.raises(MixedModelsError, match="two or more models"):
        anova(m)


# What lme4 (>= 1.1-27, LANG=C) prints for
#   fm1 <- lmer(Reaction ~ Days + (1|Subject), sleepstudy)
#   fm2 <- lmer(Reaction ~ Days + (Days|Subject), sleepstudy); anova(fm1, fm2)
# (the layout of its documentation, laid out by print.anova's rules from the numbers of the
# lrt_sleepstudy_random_slope fixture), without the "Data: sleepstudy" line: a Python fit
# does not know its data's name.
SLEEP_LRT = """\
Models:
fm1: Reaction ~ Days + (1 | Subject)
fm2: Reaction ~ Days + (Days | Subject)
    npar    AIC    BIC  logLik deviance  Chisq Df Pr(>Chisq)    
fm1    4 1802.1 1814.8 -897.04   1794.1                         
fm2    6 1763.9 1783.1 -875.97   1751.9 42.139  2  7.072e-10 ***
---
Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"""


def test_anova_prints_like_r_with_the_callers_names():
    sleep = mm.datasets.load("sleepstudy")
    fm1 = mm.lmer("Reaction ~ Days + (1|Subject)", sleep)
    fm2 = fitted_case("sleepstudy_reml")[2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RefitMLWarning)
        table = mm.anova(fm2, fm1)
        assert str(table) == repr(table) == SLEEP_LRT
        named = anova(fm1, fm2, names=["intercepts", "slopes"])
        generic = anova(mm.lmer("Reaction ~ 1 + (1|Subject)", sleep), fm1)
        alias = fm1
        ambiguous = anova(alias, fm2)
    assert list(named.index) == ["intercepts", "slopes"]
    assert str(named).split("\n")[1] == "intercepts: Reaction ~ Days + (1 | Subject)"
    assert list(generic.index) == ["m0", "m1"]        # the first model has no name here
    assert list(ambiguous.index) == ["m0", "m1"]      # fm1 is also called alias
    # a row subset keeps its formulas; a table prints within 80 columns
    assert str(table.loc[["fm2"]]).split("\n")[:2] == ["Models:",
                                                       "fm2: Reaction ~ Days + (Days | Subject)"]
    assert max(len(line) for line in str(named).split("\n")) <= 80
    # the numbers behind the text are the unrounded ones
    assert table.loc["fm2", "Chisq"] == pytest.approx(42.1392985420164, abs=LRT_CHISQ_ABS)


def test_anova_names_must_fit_the_models():
    m = fitted_case("sleepstudy_ml")[2]
    small = mm.lmer("Reaction ~ Days + (1|Subject)", mm.datasets.load("sleepstudy"), reml=False)
    with pytest.raises(MixedModelsError, match="3 names for 2 models"):
        anova(small, m, names=["a", "b", "c"])
    with pytest.raises(MixedModelsError, match="distinct"):
        anova(small, m, names=["a", "a"])
    with pytest.raises(MixedModelsError, match="argument 2 is a str"):
        anova(small, "m")


# ---- ranova ---------------------------------------------------------------------------------
# Each number: R 4.2.2, lmerTest 3.1-3, options(digits = 15), as.data.frame(ranova(m)) with
#   m <- lmer(<formula>, <data>[, REML = FALSE]).
RANOVA_R = {
    # m <- lmer(Reaction ~ Days + (Days|Subject), sleepstudy); ranova(m)
    ("Reaction ~ Days + (Days|Subject)", True): {
        "<none>": (6, -871.814135979976, None, None, None),
        "Days in (Days | Subject)": (4, -893.232542697461, 42.8368134349691, 2,
                                     4.99004143060735e-10)},
    # m <- lmer(Reaction ~ Days + (Days|Subject), sleepstudy, REML = FALSE); ranova(m)
    ("Reaction ~ Days + (Days|Subject)", False): {
        "<none>": (6, -875.969672244495, None, None, None),
        "Days in (Days | Subject)": (4, -897.039321502613, 42.1392985162349, 2,
                                     7.07241263839854e-10)},
    # m <- lmer(Reaction ~ Days + (1|Subject) + (0+Days|Subject), sleepstudy); ranova(m)
    ("Reaction ~ Days + (1|Subject) + (0+Days|Subject)", True): {
        "<none>": (5, -871.834646790741, None, None, None),
        "(1 | Subject)": (4, -883.262513742785, 22.8557339040888, 1, 1.74627589670900e-06),
        "Days in (0 + Days | Subject)": (4, -893.232542697461, 42.7957918134400, 1,
                                         6.07627309942783e-11)},
}


@pytest.mark.parametrize("formula,reml", list(RANOVA_R))
def test_ranova_sleepstudy(formula, reml):
    m = mm.lmer(formula, mm.datasets.load("sleepstudy"), reml=reml)
    table = ranova(m)
    expected = RANOVA_R[(formula, reml)]
    assert list(table.index) == list(expected)
    assert list(table.columns) == ["npar", "logLik", "AIC", "LRT", "Df", "Pr(>Chisq)"]
    for label, (npar, loglik, lrt, df, p) in expected.items():
        row = table.loc[label]
        assert row["npar"] == npar
        assert row["logLik"] == pytest.approx(loglik, abs=TOL["loglik_abs"])
        assert row["AIC"] == pytest.approx(-2 * loglik + 2 * npar, abs=2 * TOL["loglik_abs"])
        if lrt is None:
            assert np.isnan(row[["LRT", "Df", "Pr(>Chisq)"]].astype(float)).all()
            continue
        assert row["LRT"] == pytest.approx(lrt, abs=LRT_CHISQ_ABS)
        assert row["Df"] == df
        assert row["Pr(>Chisq)"] == pytest.approx(p, rel=LRT_P_REL)


def test_ranova_without_random_effects_left_is_the_linear_model():
    m = fitted_case("dyestuff_reml")[2]
    table = m.ranova()
    # m <- lmer(Yield ~ 1 + (1|Batch), Dyestuff); ranova(m): the reduced model is
    # lm(Yield ~ 1) with its REML log-likelihood, npar 2.
    assert list(table.index) == ["<none>", "(1 | Batch)"]
    assert table["npar"].tolist() == [3, 2]
    assert table.loc["(1 | Batch)", "logLik"] == pytest.approx(-163.011616077939,
                                                               abs=TOL["loglik_abs"])
    assert table.loc["(1 | Batch)", "LRT"] == pytest.approx(6.3689553136212,
                                                            abs=LRT_CHISQ_ABS)
    assert table.loc["(1 | Batch)", "Pr(>Chisq)"] == pytest.approx(0.0116133944354536,
                                                                   rel=LRT_P_REL)


def test_drop1_is_type3_anova_of_marginal_terms():
    pytest.importorskip("mixedmodels.inference.ftests")
    m = fitted_case("ergostool_reml")[2]
    pd.testing.assert_frame_equal(m.drop1(), m.anova(type=3))
    # Only the marginal term of recipe * temp is tested. R:
    #   m <- lmer(angle ~ recipe * temp + (1|recipe:replicate), cake); drop1(m)
    #   recipe:temp  Sum Sq 1.74158730157725  NumDF 2  DenDF 222.000004766068
    #                F value 0.0416924459459087  Pr(>F) 0.959172238624198
    cake = mm.lmer("angle ~ recipe * temp + (1|recipe:replicate)", mm.datasets.load("cake"))
    table = cake.drop1()
    assert list(table.index) == ["recipe:temp"]
    row = table.loc["recipe:temp"]
    assert row["NumDF"] == 2
    assert row["Sum Sq"] == pytest.approx(1.74158730157725, rel=1e-4)
    assert row["F value"] == pytest.approx(0.0416924459459087, rel=1e-4)
    assert row["DenDF"] == pytest.approx(222.000004766068, rel=1e-3)
    assert row["Pr(>F)"] == pytest.approx(0.959172238624198, rel=1e-3)


# ---- profile and profile intervals ------------------------------------------------------------
PROFILE_CASES = [cid for cid in lmer_case_ids()
                 if "skipped" not in load_case(cid)["confint"]["profile"]]
_PROFILES: dict = {}


def _profile(case_id):
    if case_id not in _PROFILES:
        _PROFILES[case_id] = profile(fitted_case(case_id)[2])
    return _PROFILES[case_id]


@pytest.mark.parametrize("case_id", lmer_case_ids())
def test_profile_confint_fixture(case_id):
    case = load_case(case_id)
    ref = case["confint"]["profile"]
    if "skipped" in ref:
        pytest.skip(f"{case_id}: lme4 did not record a profile ({ref['skipped']})")
    ci = _profile(case_id).confint(level=ref["level"])
    assert list(ci.columns) == ["2.5 %", "97.5 %"]
    assert list(ci.index) == [row["old_name"] for row in ref["rows"]]
    for row in ref["rows"]:
        if not row["reliable"]:
            continue
        # A bound of exactly 0 (an SD profiled down to its boundary) must be exactly 0.
        np.testing.assert_allclose(ci.loc[row["old_name"]], [row["lower"], row["upper"]],
                                   rtol=PROFILE_REL, atol=0, err_msg=row["old_name"])


def test_profile_traces_and_confint_method():
    m = fitted_case("sleepstudy_reml")[2]
    prof = _profile("sleepstudy_reml")
    names = [".sig01", ".sig02", ".sig03", ".sigma", "(Intercept)", "Days"]
    assert list(prof.traces) == names
    for name, trace in prof.traces.items():
        assert list(trace.columns) == [".zeta"] + names
        # zeta increases with the parameter and passes through 0 at the ML estimate.
        assert np.all(np.diff(trace[".zeta"]) > 0)
        at_estimate = trace.loc[trace[".zeta"] == 0, name]
        assert at_estimate.iloc[0] == pytest.approx(prof.estimates[name])
    assert set(prof.to_frame()[".par"]) == set(names)
    # Intervals from result.confint(method="profile") on a subset are the same numbers.
    sub = m.confint(method="profile", parm=["Days", ".sigma"])
    np.testing.assert_allclose(sub, prof.confint().loc[[".sigma", "Days"]], rtol=1e-6)
    # lme4's new-style names select the same rows (here shown in the old style)
    by_new = m.confint(method="profile", parm=["Days", "sigma", "sd_Days|Subject"])
    assert list(by_new.index) == [".sig03", ".sigma", "Days"]
    np.testing.assert_allclose(by_new.loc[[".sigma", "Days"]], sub, rtol=0)
    wider = prof.confint(level=0.99)
    assert list(wider.columns) == ["0.5 %", "99.5 %"]
    assert np.all(wider.iloc[:, 0] < prof.confint().iloc[:, 0])


def test_profile_and_confint_bad_arguments():
    m = fitted_case("dyestuff_reml")[2]
    with pytest.raises(MixedModelsError, match="unknown parameter"):
        profile(m, which=".sig07")
    with pytest.raises(MixedModelsError, match="unknown confidence interval method"):
        m.confint(method="likelihood")
    with pytest.raises(MixedModelsError, match="level"):
        m.confint(level=95)


# ---- Wald intervals -------------------------------------------------------------------------
@pytest.mark.parametrize("case_id", lmer_case_ids())
def test_wald_confint_fixture(case_id):
    case, _, m = fitted_case(case_id)
    ci = m.confint(method="Wald")
    # lme4's layout: NA rows for the variance parameters, then the fixed effects.
    n_var = m.n_theta + 1
    assert list(ci.index[:n_var]) == [f".sig{i + 1:02d}" for i in range(m.n_theta)] + [".sigma"]
    assert ci.iloc[:n_var].isna().all().all()
    rows = case["confint"]["wald"]["rows"]
    expected = np.array([[row["lower"], row["upper"]] for row in rows])
    np.testing.assert_allclose(ci.loc[[row["old_name"] for row in rows]], expected,
                               **TOL["second"])


# ---- simulate and bootstrap -------------------------------------------------------------------
def test_simulate_reproducible_and_centred():
    m = fitted_case("sleepstudy_reml")[2]
    sims = simulate(m, nsim=400, seed=7)
    assert sims.shape == (m.nobs, 400)
    assert list(sims.columns[[0, 1, -1]]) == ["sim_1", "sim_2", "sim_400"]
    pd.testing.assert_index_equal(sims.index, m.rows.row_index)
    pd.testing.assert_frame_equal(sims, simulate(m, nsim=400, seed=7))
    pd.testing.assert_frame_equal(sims, m.simulate(nsim=400, seed=7))
    assert not np.array_equal(sims, simulate(m, nsim=400, seed=8))
    y = sims.to_numpy()
    # Row means estimate X beta; the marginal variance of row r is
    # sigma^2 (z_r T T' z_r' + 1/w_r), so each mean is within 5 of its standard errors.
    t = m.rows.terms[0]
    T = m.model.templates(m.theta)[0]
    var = m.sigma**2 * (np.einsum("np,pq,nq->n", t.z, T @ T.T, t.z) + 1.0)
    z = (y.mean(axis=1) - m.rows.X @ m.beta) / np.sqrt(var / y.shape[1])
    assert np.max(np.abs(z)) < 5


def test_bootstrap_reproducible_and_independent_of_n_jobs():
    m = fitted_case("sleepstudy_reml")[2]
    one = bootstrap(m, nsim=12, seed=2024)
    again = bootstrap(m, nsim=12, seed=2024)
    two_jobs = bootstrap(m, nsim=12, seed=2024, n_jobs=2)
    assert list(one.t.columns) == [".sig01", ".sig02", ".sig03", ".sigma", "(Intercept)",
                                   "Days"]
    pd.testing.assert_frame_equal(one.t, again.t)
    pd.testing.assert_frame_equal(one.t, two_jobs.t)
    assert list(one.t0.index) == list(m.confint().index)
    assert one.t0["Days"] == pytest.approx(m.fixef["Days"])
    assert one.t0[".sigma"] == pytest.approx(m.sigma)


def test_bootstrap_bad_arguments():
    m = fitted_case("dyestuff_reml")[2]
    with pytest.raises(MixedModelsError, match="picklable"):
        bootstrap(m, nsim=4, func=lambda r: r.sigma, n_jobs=2)
    with pytest.raises(MixedModelsError, match="nsim"):
        bootstrap(m, nsim=0)
    boot = bootstrap(m, nsim=4, seed=1)
    with pytest.raises(MixedModelsError, match="interval type"):
        boot.confint(type="bca")


def test_bootstrap_custom_statistic_sees_the_simulated_fit():
    m = fitted_case("sleepstudy_reml")[2]
    boot = bootstrap(m, nsim=6, seed=11, func=lambda r: {"slope": r.fixef["Days"],
                                                         "resid_ss": float(np.sum(
                                                             r.residuals() ** 2))})
    assert list(boot.t.columns) == ["slope", "resid_ss"]
    default = bootstrap(m, nsim=6, seed=11)
    np.testing.assert_allclose(boot.t["slope"], default.t["Days"], rtol=1e-12)
    # Replicate i is refitted to column i of simulate() with the same seed.
    y = simulate(m, nsim=6, seed=11)
    refit = mm.lmer("Reaction ~ Days + (Days|Subject)",
                    mm.datasets.load("sleepstudy").assign(Reaction=y["sim_3"]))
    assert boot.t["slope"].iloc[2] == pytest.approx(refit.fixef["Days"], rel=1e-6)
    assert boot.t["resid_ss"].iloc[2] == pytest.approx(np.sum(refit.residuals() ** 2),
                                                       rel=1e-6)


# lme4's own bootstrap intervals. The variance parameters' percentile intervals differ from the
# profile ones by more than Monte Carlo error (the bootstrap distribution of the REML SD
# estimates is shifted down; the correlation's piles up at +1), so those are checked against
# lme4's bootstrap instead:
#   m <- lmer(Reaction ~ Days + (Days|Subject), sleepstudy)
#   confint(m, method = "boot", nsim = 10000, seed = 101)
LME4_BOOT = {".sig01": (12.2302615, 35.5650783), ".sig02": (-0.4973455, 0.9022804),
             ".sig03": (3.3668533, 8.2457314), ".sigma": (22.5745282, 28.5004336),
             "(Intercept)": (238.2182506, 265.0734640), "Days": (7.3936864, 13.5263781)}
BOOT_NSIM = 500


def test_bootstrap_percentile_intervals_agree_with_profile_and_lme4():
    """Monte Carlo tolerance.

    The alpha-quantile of N draws has standard error sqrt(alpha (1 - alpha) / N) / f(q). For a
    roughly normal estimator with SD s the 95 % interval is W = 3.92 s wide and f(q) at the
    2.5 % point is 0.0584 / s, so the SE of each bound is 2.67 s / sqrt(N) = 0.68 W / sqrt(N):
    0.030 W for N = 500. Allowing 4 SE, plus 0.02 W for the difference between the methods
    (profile intervals are ML-based, bootstrap refits are REML; measured with 4000 draws:
    <= 0.025 W for the fixed effects and sigma), gives 0.14 W. lme4's 10000-draw intervals
    add their own SE (0.007 W); the skewed SD and correlation distributions have a smaller
    density at the quantile, hence a larger SE, so those get 0.20 W.
    """
    m = fitted_case("sleepstudy_reml")[2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BootstrapWarning)
        boot_ci = m.confint(method="boot", nsim=BOOT_NSIM, seed=20240601, n_jobs=2)
    prof_ci = _profile("sleepstudy_reml").confint()
    width = (prof_ci["97.5 %"] - prof_ci["2.5 %"])
    for name in [".sigma", "(Intercept)", "Days"]:
        diff = np.abs(boot_ci.loc[name] - prof_ci.loc[name]) / width[name]
        assert diff.max() < 0.14, (name, boot_ci.loc[name].tolist(), prof_ci.loc[name].tolist())
    for name, bounds in LME4_BOOT.items():
        diff = np.abs(boot_ci.loc[name].to_numpy() - np.array(bounds)) / width[name]
        tol = 0.20 if name.startswith(".sig0") else 0.14
        assert diff.max() < tol, (name, boot_ci.loc[name].tolist(), bounds)
