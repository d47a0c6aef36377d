"""Inputs an lme4 user passes: weights as values, polars frames and their categories, columns
named like functions, Unicode and back-quoted names, and rows that R's na.omit drops.

The reference numbers are lme4 1.1's (R 4.x), from the commands quoted at each test.
"""
from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.errors import DataError
from mixedmodels.formula.design import DroppedRowsWarning
from mixedmodels.formula.frame import call_expressions, to_pandas

FORMULA = "Reaction ~ Days + (Days | Subject)"
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def sleep():
    return mm.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def cbpp():
    return mm.datasets.load("cbpp")


def quiet(func, *args, **kwargs):
    """func(*args, **kwargs), which must not warn (a warning fails the test)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return func(*args, **kwargs)


# ---- weights= as a column name, an array, a list or a Series ---------------------------------
# w <- 1 + (sleepstudy$Days %% 3)
# fixef(lmer(Reaction ~ Days + (Days|Subject), sleepstudy, weights = w))
R_WEIGHTED = [249.9507015059, 10.6773686366]


def test_weights_as_column_array_list_and_series_agree_with_lme4(sleep):
    w = 1.0 + sleep["Days"].to_numpy() % 3
    fits = [mm.lmer(FORMULA, sleep.assign(w=w), weights="w"),
            mm.lmer(FORMULA, sleep, weights=w),
            mm.lmer(FORMULA, sleep, weights=list(w)),
            mm.lmer(FORMULA, sleep, weights=pd.Series(w, index=sleep.index))]
    for m in fits:
        np.testing.assert_allclose(m.fixef, R_WEIGHTED, rtol=1e-6)
        assert m.info.has_weights


def test_weights_series_is_matched_by_row_label(sleep):
    labelled = sleep.set_index("obs" + sleep.index.astype(str))
    w = pd.Series(1.0 + sleep["Days"].to_numpy() % 3, index=labelled.index)
    shuffled = w.sample(frac=1.0, random_state=1)
    m = mm.lmer(FORMULA, labelled, weights=shuffled)
    np.testing.assert_allclose(m.fixef, R_WEIGHTED, rtol=1e-6)
    np.testing.assert_array_equal(m.rows.weights, w.to_numpy())


def test_missing_weight_drops_the_row_as_r_does(sleep):
    # R: lmer(..., weights = w) with one NA in w has nobs 179 (model.frame's "(weights)")
    w = np.ones(len(sleep))
    w[7] = np.nan
    with pytest.warns(DroppedRowsWarning, match=r"1 row.*\(weights\)"):
        m = mm.lmer(FORMULA, sleep, weights=w)
    assert m.nobs == 179 and 7 not in m.rows.row_index


@pytest.mark.parametrize("weights, words", [
    (np.ones(179), r"179 values.*180 rows"),
    (pd.Series(np.ones(181)), r"181 values.*180 rows"),
    (np.ones((180, 1)), "one-dimensional"),
    (pd.Series(np.ones(180), index=np.arange(1, 181)), r"no value for data rows \[0\]"),
])
def test_weights_of_the_wrong_shape_are_clear_errors(sleep, weights, words):
    with pytest.raises(DataError, match=words):
        mm.lmer(FORMULA, sleep, weights=weights)


def test_glmer_weights_as_values_equal_the_cbind_fit(cbpp):
    ref = mm.glmer(CBPP, cbpp)
    data = cbpp.assign(prop=cbpp["incidence"] / cbpp["size"])
    for weights in ("size", cbpp["size"].to_numpy(), cbpp["size"]):
        m = mm.glmer("prop ~ period + (1 | herd)", data, weights=weights)
        np.testing.assert_allclose(m.fixef, ref.fixef, rtol=1e-6)
        assert m.loglik == pytest.approx(ref.loglik, abs=1e-8)


def test_glmer_weights_wrong_length(cbpp):
    data = cbpp.assign(prop=cbpp["incidence"] / cbpp["size"])
    with pytest.raises(DataError, match=r"55 values.*56 rows"):
        mm.glmer("prop ~ period + (1 | herd)", data, weights=cbpp["size"].to_numpy()[:-1])


# ---- polars ----------------------------------------------------------------------------------
def _phases(sleep: pd.DataFrame) -> pd.DataFrame:
    """sleepstudy with a three-level text column, rows reversed so 'late' comes first."""
    phase = np.where(sleep["Days"] < 3, "early", np.where(sleep["Days"] < 7, "mid", "late"))
    return sleep.assign(phase=phase, Subject=sleep["Subject"].astype(str)).iloc[::-1]


def test_polars_enum_keeps_its_order(sleep):
    pl = pytest.importorskip("polars")
    data = _phases(sleep)
    order = ["mid", "late", "early"]
    frame = pl.from_pandas(data.reset_index(drop=True)).with_columns(
        pl.col("phase").cast(pl.Enum(order)))
    m = mm.lmer("Reaction ~ phase + (1 | Subject)", frame)
    ref = mm.lmer("Reaction ~ phase + (1 | Subject)",
                  data.assign(phase=pd.Categorical(data["phase"], categories=order)))
    assert list(m.fixef.index) == ["(Intercept)", "phaselate", "phaseearly"]
    np.testing.assert_allclose(m.fixef, ref.fixef, rtol=1e-10)


def test_polars_categorical_sorts_as_r_does_not_by_first_appearance(sleep):
    pl = pytest.importorskip("polars")
    data = _phases(sleep)
    frame = pl.from_pandas(data.reset_index(drop=True)).with_columns(
        pl.col("phase").cast(pl.Categorical), pl.col("Subject").cast(pl.Categorical))
    m = mm.lmer("Reaction ~ phase + (1 | Subject)", frame)
    ref = mm.lmer("Reaction ~ phase + (1 | Subject)", data)
    # R's factor() of the strings, and polars' own sort: early < late < mid
    assert list(m.fixef.index) == ["(Intercept)", "phaselate", "phasemid"]
    np.testing.assert_allclose(m.fixef, ref.fixef, rtol=1e-10)
    assert list(m.coef()["Subject"].index) == list(ref.coef()["Subject"].index)


def test_polars_frames_need_no_pyarrow(sleep, monkeypatch):
    pl = pytest.importorskip("polars")
    frame = pl.from_pandas(sleep.assign(Subject=sleep["Subject"].astype(str)))
    flags = pl.DataFrame({"b": [True, None, False], "s": ["x", None, "y"], "i": [1, None, 3]})
    # None in sys.modules makes every `import pyarrow` fail, as on a machine without it
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    m = mm.lmer(FORMULA, frame)
    np.testing.assert_allclose(m.fixef, mm.lmer(FORMULA, sleep).fixef, rtol=1e-10)
    converted = to_pandas(flags)
    assert converted["b"].dtype == "boolean" and converted["b"].isna().tolist() == [False, True,
                                                                                   False]
    assert converted["s"].isna().tolist() == [False, True, False]
    assert np.isnan(converted["i"][1])


def test_polars_weights_series_and_newdata(sleep):
    pl = pytest.importorskip("polars")
    frame = pl.from_pandas(sleep.assign(Subject=sleep["Subject"].astype(str)))
    w = pl.Series("w", 1.0 + sleep["Days"].to_numpy() % 3)
    m = mm.lmer(FORMULA, frame, weights=w)
    np.testing.assert_allclose(m.fixef, R_WEIGHTED, rtol=1e-6)
    np.testing.assert_allclose(m.predict(frame.head(3)), m.fitted()[:3], rtol=1e-10)


def test_polars_nested_column_is_named(sleep):
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"y": [1.0, 2.0], "x": [[1, 2], [3]], "g": ["a", "b"]})
    with pytest.raises(DataError, match="'x'.*List"):
        to_pandas(frame)


# ---- columns named like functions ------------------------------------------------------------
def test_column_named_like_a_function_is_the_column(sleep):
    # d$exp <- d$Days; fixef(lmer(Reaction ~ exp + (exp|Subject), d))
    m = mm.lmer("Reaction ~ exp + (exp | Subject)", sleep.assign(exp=sleep["Days"]))
    assert list(m.fixef.index) == ["(Intercept)", "exp"]
    np.testing.assert_allclose(m.fixef, [251.4051048485, 10.4672859596], rtol=1e-6)


def test_function_call_on_a_column_of_the_same_name(sleep):
    # d$log <- d$Days + 1; fixef(lmer(Reaction ~ log(log) + (1|Subject), d))
    data = sleep.assign(log=sleep["Days"] + 1.0)
    m = mm.lmer("Reaction ~ log(log) + (1 | Subject)", data)
    assert list(m.fixef.index) == ["(Intercept)", "log(log)"]
    np.testing.assert_allclose(m.fixef, [238.0542543092, 40.0238255311], rtol=1e-6)
    new = data.iloc[:4]
    np.testing.assert_allclose(m.predict(new), m.fitted()[:4], rtol=1e-10)
    m2 = mm.lmer("Reaction ~ 1 + (log(log) | Subject)", data)
    assert m2.terms[0].column_names == ("(Intercept)", "log(log)")
    m3 = mm.lmer("log(exp) ~ Days + (1 | Subject)", sleep.assign(exp=sleep["Reaction"]))
    ref = mm.lmer("log(Reaction) ~ Days + (1 | Subject)", sleep)
    np.testing.assert_allclose(m3.fixef, ref.fixef, rtol=1e-10)


# ---- Unicode and back-quoted names -----------------------------------------------------------
def test_unicode_column_names_need_no_backticks(sleep):
    data = sleep.rename(columns={"Reaction": "größe", "Days": "zeit", "Subject": "gruppe"})
    m = mm.lmer("größe ~ zeit + (zeit | gruppe)", data)
    ref = mm.lmer(FORMULA, sleep)
    assert list(m.fixef.index) == ["(Intercept)", "zeit"]
    np.testing.assert_allclose(m.fixef, ref.fixef, rtol=1e-10)
    assert m.terms[0].group_name == "gruppe"
    logged = mm.lmer("log(größe) ~ I(zeit^2) + (1 | gruppe)", data)
    assert list(logged.fixef.index) == ["(Intercept)", "I(zeit^2)"]
    np.testing.assert_allclose(logged.predict(data.iloc[:2]), logged.fitted()[:2], rtol=1e-10)
    greek = sleep.rename(columns={"Days": "τ", "Subject": "Ψ"})
    np.testing.assert_allclose(mm.lmer("Reaction ~ τ + (τ | Ψ)", greek).fixef, ref.fixef,
                               rtol=1e-10)


def test_backquoted_names_as_in_r(sleep):
    data = sleep.rename(columns={"Reaction": "reaction time", "Days": "2 days",
                                 "Subject": "sub-ject"}).assign(**{".dot.": sleep["Days"]})
    m = mm.lmer("`reaction time` ~ `2 days` + (`2 days` | `sub-ject`)", data)
    ref = mm.lmer(FORMULA, sleep)
    # R keeps the back quotes of non-syntactic names in coefficient names
    assert list(m.fixef.index) == ["(Intercept)", "`2 days`"]
    np.testing.assert_allclose(m.fixef, ref.fixef, rtol=1e-10)
    dotted = mm.lmer("`reaction time` ~ .dot. + (1 | `sub-ject`)", data)
    assert list(dotted.fixef.index) == ["(Intercept)", ".dot."]


# ---- rows that R's na.omit drops: NaN made by the formula ------------------------------------
def test_log_of_negative_response_drops_rows_as_lme4(sleep):
    # d$y <- d$Reaction; d$y[4] <- -1; d$y[100] <- -5; lmer(log(y) ~ Days + (1|Subject), d)
    y = sleep["Reaction"].to_numpy().copy()
    y[[3, 99]] = [-1.0, -5.0]
    with pytest.warns(DroppedRowsWarning, match=r"2 row.*2 where log\(y\) is NaN"):
        m = mm.lmer("log(y) ~ Days + (1 | Subject)", sleep.assign(y=y))
    assert m.nobs == 178 and m.info.n_dropped_rows == 2
    assert 3 not in m.rows.row_index and 99 not in m.rows.row_index
    np.testing.assert_allclose(m.fixef, [5.5305064788265, 0.0334417822999], rtol=1e-6)


def test_log_of_zero_is_an_error_as_in_r(sleep):
    # R: "NA/NaN/Inf in 'y'"
    y = sleep["Reaction"].to_numpy().copy()
    y[3] = 0.0
    with pytest.raises(DataError, match=r"response 'log\(y\)'.*-Inf.*\[3\]"):
        mm.lmer("log(y) ~ Days + (1 | Subject)", sleep.assign(y=y))


def test_log_of_negative_predictor_drops_rows_as_lme4(sleep):
    # d$x <- d$Days + 1; d$x[4] <- -1; lmer(Reaction ~ log(x) + (1|Subject), d)
    x = sleep["Days"].to_numpy() + 1.0
    x[3] = -1.0
    with pytest.warns(DroppedRowsWarning, match=r"1 row.*log\(x\)"):
        m = mm.lmer("Reaction ~ log(x) + (1 | Subject)", sleep.assign(x=x))
    assert m.nobs == 179
    np.testing.assert_allclose(m.fixef, [238.160157337, 40.004234752], rtol=1e-6)
    for formula in ("Reaction ~ Days + (log(x) | Subject)",
                    "Reaction ~ Days + offset(log(x)) + (1 | Subject)"):
        with pytest.warns(DroppedRowsWarning, match="1 row"):
            assert mm.lmer(formula, sleep.assign(x=x)).nobs == 179


def test_glmer_drops_nan_rows_too(cbpp):
    size = cbpp["size"].to_numpy().astype(float)
    with pytest.warns(DroppedRowsWarning, match=r"1 row.*sqrt\(s\)"):
        m = mm.glmer("incidence ~ period + sqrt(s) + (1 | herd)", cbpp.assign(
            s=np.where(np.arange(len(size)) == 5, -1.0, size)), family="poisson")
    assert m.nobs == len(cbpp) - 1


def test_call_expressions():
    assert call_expressions("x + log(z + 1):f + I((a + b)^2)") == ["log(z + 1)", "I((a + b)^2)"]
    assert call_expressions("x*y") == []
    assert call_expressions("`odd name`(x)") == ["`odd name`(x)"]
