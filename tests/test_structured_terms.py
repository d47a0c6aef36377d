"""Random-effects structures in the formula: us(), diag(), cs(), ar1() (glmmTMB's names).

The formula, the errors (with positions), and inference on them: diag(Days | Subject) is the
model lme4 writes (1 | Subject) + (0 + Days | Subject), so its Satterthwaite and Kenward-Roger
df, profile intervals and likelihood-ratio test are lme4's, lmerTest's and pbkrtest's numbers
(tests/fixtures/lme4/sleepstudy_uncorr_two_terms.json, lrt_sleepstudy_slope_corr.json).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.errors import FormulaError
from mixedmodels.formula.bars import parse_formula

LME4 = Path(__file__).parent / "fixtures" / "lme4"


def _lme4(name: str) -> dict:
    return json.loads((LME4 / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def diag_fit():
    return mm.lmer("Reaction ~ Days + diag(Days | Subject)", mm.datasets.load("sleepstudy"))


@pytest.fixture(scope="module")
def orthodont():
    data = mm.datasets.load("Orthodont")
    data["fage"] = pd.Categorical(data["age"].astype(int).astype(str),
                                  categories=["8", "10", "12", "14"])
    return data


# ---- the formula ---------------------------------------------------------------------------
def test_structures_parse_with_their_names_and_positions():
    mf = parse_formula("y ~ x + diag(x | g) + cs(0 + f | g) + ar1(0 + f | a/b) + us(1 | h)")
    assert [(b.structure, b.lhs, b.group, b.position) for b in mf.bars] == [
        ("diag", "x", ("g",), 8), ("cs", "0 + f", ("g",), 22),
        ("ar1", "0 + f", ("a",), 38), ("ar1", "0 + f", ("b", "a"), 38), ("us", "1", ("h",), 57)]
    assert mf.fixed == "x"
    assert parse_formula("y ~ (x | g)").bars[0].structure == "us"


def test_unknown_structure_lists_the_known_ones():
    with pytest.raises(FormulaError, match="unknown covariance structure 'toep'.*"
                                           "known structures: us, diag, cs, ar1") as err:
        parse_formula("y ~ x + toep(0 + f | g)")
    assert err.value.position == 8


def test_double_bar_inside_a_structure_is_refused():
    with pytest.raises(FormulaError, match=r"'\|\|' inside diag\(\)") as err:
        parse_formula("y ~ diag(x || g)")
    assert err.value.position == 11


def test_other_calls_are_expressions_not_structures():
    """I(a | b) is R's logical or and log(1 | g) no term; the message names the structures."""
    for text in ("y ~ I(a | b) + (1 | g)", "y ~ log(1 | g)"):
        with pytest.raises(FormulaError, match=r"inside a function call.*covariance structure "
                                               r"\(us\(lhs \| group\), diag\(lhs"):
            parse_formula(text)


def test_us_is_the_plain_term(sleepstudy):
    a = mm.lmer("Reaction ~ Days + us(Days | Subject)", sleepstudy)
    b = mm.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy)
    np.testing.assert_array_equal(a.theta, b.theta)
    assert a.theta_names == b.theta_names


# ---- bad input -----------------------------------------------------------------------------
def test_ar1_over_a_numeric_is_refused(orthodont):
    with pytest.raises(FormulaError, match="'age' is numeric.*factor\\(age\\).*corAR1") as err:
        mm.lmer("distance ~ age + ar1(0 + age | Subject)", orthodont)
    assert err.value.position == 17


def test_ar1_over_unequally_spaced_levels_points_to_corcar1(orthodont):
    data = orthodont.copy()
    data["fage"] = pd.Categorical(data["age"].map({8: "8", 10: "10", 12: "12", 14: "16"}),
                                  categories=["8", "10", "12", "16"])
    with pytest.raises(FormulaError, match=r"\(8, 10, 12, 16\) are not equally spaced.*corCAR1"):
        mm.lmer("distance ~ age + ar1(0 + fage | Subject)", data)


def test_ar1_needs_the_factor_without_intercept(orthodont):
    with pytest.raises(FormulaError, match="no intercept"):
        mm.lmer("distance ~ age + ar1(fage | Subject)", orthodont)


def test_cs_needs_two_columns(orthodont):
    with pytest.raises(FormulaError, match=r"cs\(\) correlates two or more levels") as err:
        mm.lmer("distance ~ age + cs(1 | Subject)", orthodont)
    assert err.value.position == 17


@pytest.mark.parametrize("kind", ["cs", "ar1"])
def test_cs_and_ar1_over_a_single_level(kind, orthodont):
    data = orthodont.copy()
    data["one"] = pd.Categorical(["a"] * len(data))
    with pytest.raises(FormulaError, match="factor 'one' has a single level"):
        mm.lmer(f"distance ~ age + {kind}(0 + one | Subject)", data)


# ---- inference: diag() is lme4's (1 | g) + (0 + x | g) -------------------------------------
def test_diag_equals_lme4s_two_terms(diag_fit):
    case = _lme4("sleepstudy_uncorr_two_terms")
    assert diag_fit.loglik == pytest.approx(case["logLik"]["value"], abs=1e-6)
    assert diag_fit.df == case["logLik"]["df"]
    assert diag_fit.theta_names == ["Subject.(Intercept)", "Subject.Days"]
    np.testing.assert_allclose(diag_fit.theta, list(case["theta"].values()), rtol=1e-4)
    for method, key in (("satterthwaite", "satterthwaite"), ("kenward-roger", "kenward_roger")):
        table = diag_fit.coefficients(ddf=method)
        expected = [row["df"] for row in case["lmerTest"][key]["coefficients"]]
        np.testing.assert_allclose(table["df"].to_numpy(), expected, rtol=1e-4)


def test_diag_profile_intervals_are_lme4s(diag_fit):
    case = _lme4("sleepstudy_uncorr_two_terms")
    ci = diag_fit.confint(method="profile", old_names=False)
    expected = {row["param"]: (row["lower"], row["upper"])
                for row in case["confint"]["profile"]["rows"]}
    assert list(ci.index) == list(expected)
    np.testing.assert_allclose(ci.to_numpy(), np.array(list(expected.values())), rtol=1e-3)


def test_anova_between_us_and_diag_is_lme4s_lrt(diag_fit, sleepstudy):
    case = _lme4("lrt_sleepstudy_slope_corr")
    full = mm.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy)
    with pytest.warns(UserWarning, match="refitting"):
        table = mm.anova(diag_fit, full, names=["diag", "us"])
    assert list(table.index) == ["diag", "us"]
    for row, ref in zip(table.itertuples(), case["table"]):
        assert row.npar == ref["npar"]
        assert row.AIC == pytest.approx(ref["AIC"], abs=1e-3)
        assert row.BIC == pytest.approx(ref["BIC"], abs=1e-3)
        assert row.logLik == pytest.approx(ref["logLik"], abs=1e-3)
    assert table["Chisq"].iloc[1] == pytest.approx(case["Chisq"], abs=1e-3)


# ---- cs() and ar1() results ----------------------------------------------------------------
def test_cs_theta_names_summary_and_profile_scale():
    m = mm.lmer("score ~ Machine + cs(0 + Machine | Worker)", mm.datasets.load("Machines"))
    assert m.theta_names == ["Worker.MachineA", "Worker.MachineB", "Worker.MachineC",
                             "Worker.rho_t"]
    text = str(m.summary())
    assert "MachineB 70.8921  8.4197   0.74     " in text
    assert "MachineC 19.9077  4.4618   0.74 0.74" in text
    names = list(m.confint(parm="theta_", old_names=False, method="wald").index)
    assert names == ["sd_MachineA|Worker", "sd_MachineB|Worker", "sd_MachineC|Worker",
                     "rho_cs|Worker", "sigma"]
    # The common correlation read off VarCorr is the template's rho.
    rho = m.model.terms[0].covariance.rho(m.theta[-1])
    assert m.varcorr()["sdcor"].iloc[3] == pytest.approx(rho, rel=1e-12)


def test_ar1_random_effect_correlations_decay_by_lag(orthodont):
    with pytest.warns(mm.SingularFitWarning):
        m = mm.lmer("distance ~ age + Sex + (1 | Subject) + ar1(0 + fage | Subject)", orthodont)
    vc = m.varcorr()
    cors = vc[(vc["grp"] == "Subject.1") & vc["var2"].notna()]
    by_pair = dict(zip(zip(cors["var1"], cors["var2"]), cors["sdcor"]))
    rho = by_pair[("fage8", "fage10")]
    assert by_pair[("fage8", "fage12")] == pytest.approx(rho**2, rel=1e-10)
    assert by_pair[("fage8", "fage14")] == pytest.approx(rho**3, rel=1e-10)
    assert by_pair[("fage12", "fage14")] == pytest.approx(rho, rel=1e-10)
    assert m.theta_names == ["Subject.(Intercept)", "Subject.sd", "Subject.rho_t"]
    assert m.is_singular          # the intercept's SD is 0, next to the AR(1) term
