"""No silent wrong answers at the edges (issue #10, item 1), against lme4 where it answers.

R's numbers and messages come from tools/r/make_edges_fixtures.R (tests/fixtures/edges/);
tolerances are those of tests/fixtures/lme4/README.md (conftest.TOL).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TOL

import mixedmodels as mm
from mixedmodels.formula.design import factor_codes, level_label
from mixedmodels.terms import ReTerm, order_terms

EDGES = Path(__file__).parent / "fixtures" / "edges"


def _fixture(name: str):
    return json.loads((EDGES / name).read_text())


def _own_warnings_only(caught) -> None:
    """Degenerate data warn as lme4 does (singular fit, convergence, scale: those warnings
    are asserted where they are the subject); nothing else (numpy's, pandas') may leak."""
    stray = [f"{w.category.__module__}.{w.category.__name__}: {w.message}" for w in caught
             if not w.category.__module__.startswith("mixedmodels")]
    assert stray == []


def _quiet_lmer(formula, data, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = mm.lmer(formula, data, **kwargs)
    _own_warnings_only(caught)
    return m


@pytest.fixture(scope="module")
def sleep():
    return mm.datasets.load("sleepstudy")


# ---- reml must be a bool ---------------------------------------------------------------------
@pytest.mark.parametrize("value", ["no", "ML", "REML", None, 0, 1, "TRUE", 1.0])
def test_reml_must_be_a_bool(sleep, value):
    with pytest.raises(mm.MixedModelsError, match="reml must be True") as info:
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleep, reml=value)
    assert repr(value) in str(info.value)


def test_reml_accepts_numpy_bool(sleep):
    m = mm.lmer("Reaction ~ Days + (1 | Subject)", sleep, reml=np.bool_(False))
    assert m.reml is False


# ---- degenerate responses --------------------------------------------------------------------
@pytest.fixture(scope="module")
def degenerate():
    """The designs of warnings.json's degenerate responses (the noise is numpy's, not R's)."""
    d = pd.DataFrame({"g": np.repeat(np.arange(1, 7), 5).astype(str),
                      "x": np.tile(np.arange(1.0, 6.0), 6)})
    gnum = np.repeat(np.arange(1.0, 7.0), 5)
    noise = np.random.default_rng(1).normal(size=30)
    d["const"] = 5.0
    d["within0"] = gnum * 2
    d["linear"] = 3 + 2 * d["x"]
    d["big"] = (gnum + noise) * 1e200
    d["small"] = (gnum + noise) * 1e-200
    return d


def _lme4_degenerate(formula: str) -> dict:
    return next(c for c in _fixture("warnings.json")["degenerate_responses"]
                if c["formula"] == formula)


@pytest.mark.parametrize("formula, exact", [
    ("const ~ 1 + (1 | g)", {"(Intercept)": 5.0}),
    ("const ~ x + (1 | g)", {"(Intercept)": 5.0, "x": 0.0}),
    ("linear ~ x + (1 | g)", {"(Intercept)": 3.0, "x": 2.0}),
    ("const ~ x + (x | g)", {"(Intercept)": 5.0, "x": 0.0}),
])
def test_exact_fit_is_a_singular_fit_with_sigma_zero(degenerate, formula, exact):
    """lme4 returns sigma = 0 with two convergence warnings and then fails in summary() ("not a
    positive definite matrix"); we return the same sigma, theta = 0 and one clear warning."""
    if formula in {c["formula"] for c in _fixture("warnings.json")["degenerate_responses"]}:
        ref = _lme4_degenerate(formula)
        assert ref["sigma"] == 0 and ref["summary"].startswith("error")
    with pytest.warns(mm.SingularFitWarning, match=r"^boundary \(singular\) fit: the fixed "
                      r"effects reproduce the response '(const|linear)' exactly") as record:
        m = mm.lmer(formula, degenerate)
    assert len(record) == 1
    assert m.sigma == 0.0 and m.is_singular
    np.testing.assert_array_equal(m.theta, 0.0)
    np.testing.assert_allclose(m.fixef[list(exact)], list(exact.values()), atol=1e-8)
    assert np.all(np.isfinite(m.beta))
    assert m.objective == -np.inf and m.loglik == np.inf
    np.testing.assert_array_equal(m.varcorr()["vcov"], 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from 0 / 0 either
        text = str(m.summary())
        table = m.coefficients()
        m.icc()
    assert "REML criterion at convergence: -Inf" in text
    np.testing.assert_array_equal(table["Std. Error"], 0.0)
    assert table["df"].isna().all()
    assert "boundary (singular) fit" in text


def test_zero_within_group_variance_warns_as_lme4(degenerate):
    """lme4: "Model is nearly unidentifiable: very large eigenvalue - Rescale variables?" (the
    likelihood grows without bound as sigma -> 0); summary() works in both."""
    ref = _lme4_degenerate("within0 ~ 1 + (1 | g)")
    assert any("very large eigenvalue" in line for line in ref["log"])
    with pytest.warns(mm.ConvergenceWarning, match="very large eigenvalue - Rescale variables"):
        m = mm.lmer("within0 ~ 1 + (1 | g)", degenerate)
    assert np.all(np.isfinite(m.beta)) and np.all(np.isfinite(m.theta))
    assert m.sigma < 1e-5 * degenerate["within0"].std()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.HessianWarning)
        assert "Random effects:" in str(m.summary())


@pytest.mark.parametrize("column, what, hint", [
    ("big", "too large a scale", "divide it by 1e200"),
    ("small", "too small a scale", "multiply it by 1e200"),
])
def test_extreme_response_scale_is_an_error_that_says_to_rescale(degenerate, column, what, hint):
    """lme4 returns sigma = Inf (1e200) or 0 (1e-200) without a word and fails in summary()."""
    ref = _lme4_degenerate(f"{column} ~ x + (1 | g)")
    assert ref["log"] == [] and ref["summary"].startswith("error")
    with pytest.raises(mm.DataError, match=what) as info:
        mm.lmer(f"{column} ~ x + (1 | g)", degenerate)
    assert f"'{column}'" in str(info.value) and "rescale" in str(info.value)
    assert hint in str(info.value)


@pytest.mark.parametrize("power", [-40, 40])
def test_ordinary_extreme_scales_still_fit(sleep, power):
    data = sleep.assign(Reaction=sleep["Reaction"] * 10.0**power)
    base = _quiet_lmer("Reaction ~ Days + (Days | Subject)", sleep)
    m = _quiet_lmer("Reaction ~ Days + (Days | Subject)", data)
    np.testing.assert_allclose(m.beta / 10.0**power, base.beta, rtol=1e-8)
    np.testing.assert_allclose(m.theta, base.theta, rtol=1e-6)
    assert "Fixed effects:" in str(m.summary(ddf=None))


ODD_DESIGNS = ["const ~ 1 + (1 | g)", "linear ~ x + (x | g)", "within0 ~ x + (1 | g)",
               "within0 ~ 1 + (1 | g) + (0 + x | g)", "linear ~ 1 + (1 | g)"]


@pytest.mark.parametrize("formula", ODD_DESIGNS)
def test_every_fit_has_finite_estimates_and_a_summary(degenerate, formula):
    m = _quiet_lmer(formula, degenerate)
    assert np.all(np.isfinite(m.beta)) and np.all(np.isfinite(m.theta))
    assert np.isfinite(m.sigma)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert "Fixed effects:" in str(m.summary())
        m.varcorr(), m.ranef(), m.confint()
    _own_warnings_only(caught)


# ---- level labels ----------------------------------------------------------------------------
def test_level_label_is_r_as_character():
    ref = _fixture("level_labels.json")
    values = sorted(float(v) for v in ref["double_values"])  # JSON has 1e5 as an integer
    labels = list(dict.fromkeys(level_label(v) for v in values))
    assert labels == ref["double_levels"]
    assert [level_label(v) for v in (1, 2, 7, 30, 100000, 123456, 2147483647)] == \
        ref["integer_levels"]
    assert [level_label(v) for v in (False, True)] == ref["logical_levels"]
    assert level_label(np.float64(1e5)) == "1e+05" and level_label(np.int64(100000)) == "100000"
    assert level_label(2.0**40) == "1099511627776" and level_label(2**40) == "1099511627776"


VALUES = {
    "int": [3, 1, 100000, 1, 3, 100000],
    "float": [0.5, 1.0, 1e5, 0.5, 1.0, 1e5],
    "bool": [True, False, True, False, True, False],
    "string": ["b", "a", "B", "a", "b", "B"],
}
EXPECTED = {"int": ["1", "3", "100000"], "float": ["0.5", "1", "1e+05"],
            "bool": ["FALSE", "TRUE"], "string": ["B", "a", "b"]}


def _grouping(kind: str, categorical: bool) -> pd.Series:
    series = pd.Series(VALUES[kind] * 6)
    return series.astype("category") if categorical else series


@pytest.mark.parametrize("categorical", [False, True], ids=["plain", "categorical"])
@pytest.mark.parametrize("kind", list(VALUES))
def test_one_labelling_at_fit_time_and_in_predict(kind, categorical):
    """A categorical of floats was "1.0" at fit time and "1" in predict: predict(training
    data) said "new level". Every dtype now goes through level_label."""
    g = _grouping(kind, categorical)
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"g": g, "x": rng.normal(size=len(g))})
    data["y"] = data["x"] + pd.factorize(g)[0] + rng.normal(size=len(g))
    m = _quiet_lmer("y ~ x + (1 | g)", data)
    assert list(m.terms[0].levels) == EXPECTED[kind]
    assert list(m.ranef()["grp"]) == EXPECTED[kind]
    np.testing.assert_allclose(m.predict(data).to_numpy(), m.fitted().to_numpy(), rtol=1e-12)
    codes, labels = factor_codes(g)
    assert labels == EXPECTED[kind]
    assert [labels[c] for c in codes] == [level_label(v) for v in g]


def test_float_categorical_predicts_on_its_training_data():
    data = pd.DataFrame({"g": pd.Categorical([1.0, 2.0, 3.0] * 8),
                         "y": np.arange(24.0) % 5 + np.repeat([0.0, 1.0, 3.0], 8)})
    m = _quiet_lmer("y ~ 1 + (1 | g)", data)
    assert list(m.terms[0].levels) == ["1", "2", "3"]
    np.testing.assert_allclose(m.predict(data), m.fitted(), rtol=1e-12)


def test_polars_categorical_labels_through_narwhals():
    pl = pytest.importorskip("polars")
    pytest.importorskip("pyarrow")
    rng = np.random.default_rng(5)
    g = ["b", "a", "c"] * 8
    y = rng.normal(size=24) + np.array([{"a": 0, "b": 1, "c": 2}[v] for v in g])
    frame = pl.DataFrame({"g": g, "y": y}).with_columns(pl.col("g").cast(pl.Categorical))
    m = _quiet_lmer("y ~ 1 + (1 | g)", frame)
    assert sorted(m.terms[0].levels) == ["a", "b", "c"]
    np.testing.assert_allclose(m.predict(frame).to_numpy(), m.fitted().to_numpy(), rtol=1e-12)


def test_numeric_grouping_levels_against_lme4():
    ref = _fixture("level_labels.json")
    data = pd.read_csv(EDGES / "labels.csv")
    m = _quiet_lmer(ref["fit_formula"], data)
    assert m.ngroups == ref["fit_ngrps"]
    ours = m.ranef()
    assert list(ours["grp"]) == ref["fit_ranef"]["grp"]
    assert list(ours["grpvar"]) == ref["fit_ranef"]["grpvar"]
    np.testing.assert_allclose(m.theta, list(ref["fit_theta"].values()), **TOL["theta"])
    scale = np.max(np.abs(ref["fit_ranef"]["condval"]))
    np.testing.assert_allclose(ours["condval"], ref["fit_ranef"]["condval"],
                               atol=TOL["ranef_rel"] * scale)
    np.testing.assert_allclose(m.predict(data), m.fitted(), rtol=1e-12)


# ---- predict(re_form=) keeps only the random effects it names -------------------------------
@pytest.fixture(scope="module")
def predict_ref():
    return _fixture("predict_re_form.json")


RE_FORMS = {"re": None, "slope_only": "~(0 + Days | Subject)",
            "intercept_only": "~(1 | Subject)", "both": "~(Days | Subject)", "fixed": np.nan}


@pytest.mark.parametrize("key", list(RE_FORMS))
@pytest.mark.parametrize("two_terms", [False, True], ids=["one_term", "two_terms"])
def test_predict_re_form_against_lme4(sleep, predict_ref, key, two_terms):
    formula = predict_ref["formula_two_terms" if two_terms else "formula"]
    m = _quiet_lmer(formula, sleep)
    newdata = pd.DataFrame(predict_ref["newdata"])
    expected = predict_ref["two_terms_newdata_pred" if two_terms else "newdata_pred"][key]
    np.testing.assert_allclose(m.predict(newdata, re_form=RE_FORMS[key]), expected,
                               **TOL["fixef"])
    if not two_terms:
        np.testing.assert_allclose(m.predict(re_form=RE_FORMS[key])[:20],
                                   predict_ref["training_pred"][key], **TOL["fixef"])


def test_predict_re_form_matches_lme4s_own_tests(sleep):
    """lme4's tests/testthat/test-predict.R ("predict and plot random slopes"), 3 decimals."""
    m = _quiet_lmer("Reaction ~ Days + (Days | Subject)", sleep)
    slope = np.round(m.predict(sleep, re_form="~(0+Days|Subject)").to_numpy()[:6], 3)
    np.testing.assert_array_equal(slope, [251.405, 271.071, 290.738, 310.404, 330.07, 349.736])
    intercept = np.round(m.predict(sleep, re_form="~(1|Subject)").to_numpy()[:6], 3)
    np.testing.assert_array_equal(intercept, [253.664, 264.131, 274.598, 285.066, 295.533, 306])


@pytest.mark.parametrize("re_form, culprit", [
    ("~(0 + Other | Subject)", "Other"),
    ("~(1 | Nope)", "Nope"),
])
def test_predict_re_form_naming_what_the_model_lacks(sleep, re_form, culprit):
    m = _quiet_lmer("Reaction ~ Days + (Days | Subject)", sleep)
    with pytest.raises(mm.DataError, match=culprit):
        m.predict(sleep, re_form=re_form)


def test_predict_re_form_column_not_in_the_term(sleep):
    m = _quiet_lmer("Reaction ~ Days + (0 + Days | Subject)", sleep)
    with pytest.raises(mm.DataError, match=r"not present in the original model: '\(Intercept\)'"):
        m.predict(sleep, re_form="~(1 | Subject)")


# ---- random-effects terms in lme4's order ----------------------------------------------------
def _term(name: str, n_levels: int) -> ReTerm:
    return ReTerm(group_name=name, group_vars=(name,), levels=tuple(map(str, range(n_levels))),
                  refs=np.zeros(1, np.int32), z=np.ones((1, 1)), column_names=("(Intercept)",),
                  lhs_spec=None)


@pytest.mark.parametrize("levels, expected", [
    # tests/fixtures/lme4/README.md's examples
    ({"Part": 10, "Operator": 3, "Part:Operator": 30}, ["Part:Operator", "Part", "Operator"]),
    ({"C": 3, "A": 5, "B": 5}, ["B", "A", "C"]),
    # no later term larger than the one before it: formula order, ties included
    ({"A": 5, "B": 5, "C": 3}, ["A", "B", "C"]),
    ({"A": 5, "B": 5}, ["A", "B"]),
    ({"plate": 24, "sample": 6}, ["plate", "sample"]),
    ({"batch": 10, "cask:batch": 30}, ["cask:batch", "batch"]),
])
def test_order_terms_is_mkReTrms(levels, expected):
    terms = [_term(name, n) for name, n in levels.items()]
    assert [t.group_name for t in order_terms(terms)] == expected


@pytest.mark.parametrize("case_id", ["ties_CAB", "ties_ABC", "ties_slope"])
def test_term_order_against_lme4(case_id):
    ref = next(c for c in _fixture("term_order.json") if c["id"] == case_id)
    data = pd.read_csv(EDGES / "crossed_ties.csv")
    m = _quiet_lmer(ref["formula"], data)
    assert not ref["isSingular"] and not m.is_singular
    assert [t.group_name for t in m.terms] == ref["term_names"]
    assert m.theta_names == list(ref["theta"])
    np.testing.assert_allclose(m.theta, list(ref["theta"].values()), **TOL["theta"])
    vc = m.varcorr()
    assert list(vc["grp"]) == [r["grp"] for r in ref["varcorr"]]
    np.testing.assert_allclose(vc["vcov"], [r["vcov"] for r in ref["varcorr"]], **TOL["second"])
    re = m.ranef()
    assert list(re["grpvar"]) == ref["ranef"]["grpvar"]
    assert list(re["term"]) == ref["ranef"]["term"]
    assert list(m.ngroups) == list(ref["ngrps"])
    np.testing.assert_allclose(m.fixef, list(ref["fixef"].values()), **TOL["fixef"])
    assert abs(m.objective - ref["objective"]) < TOL["loglik_abs"]
    printed = str(m.summary(ddf=None))
    block = printed[printed.index("Random effects:"):printed.index("Number of obs")]
    rows = [line.split()[0] for line in block.splitlines()[2:] if line.strip()]
    assert rows == list(dict.fromkeys(r["grp"] for r in ref["varcorr"]))
