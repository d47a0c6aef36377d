"""Responses for glmer: R's ``model.response`` with the binomial family's conventions.

Expected values are computed independently with pandas from R's rules:
``cbind(s, f)`` gives y = s / (s + f) (0 where s + f is 0) and trials s + f; a logical
response is 0/1; a factor response is 0 for its first level and 1 for every other, with
the levels of lme4's model.frame (unused levels dropped before rows with missing values).
Also the evaluator's comparison and logical operators, with R's NA rules.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.errors import DataError, FormulaError
from mixedmodels.formula.bars import parse_formula
from mixedmodels.formula.contrasts import parse_python, python_text, r_deparse
from mixedmodels.formula.design import DroppedRowsWarning, build_design, cbind_arguments
from mixedmodels.formula.rexpr import evaluate


def design(formula: str, data: pd.DataFrame, glm: bool = True):
    return build_design(parse_formula(formula), data, glm=glm)


@pytest.fixture
def counts() -> pd.DataFrame:
    """Six rows, three groups, labelled r0..r5 so errors must give the user's labels."""
    return pd.DataFrame({
        "k": [2, 0, 5, 1, 0, 3],
        "n": [4, 3, 5, 6, 0, 8],
        "x": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
        "g": list("aabbcc"),
    }, index=[f"r{i}" for i in range(6)])


# --- the evaluator's logical operators ---------------------------------------------------

@pytest.fixture
def logic() -> pd.DataFrame:
    return pd.DataFrame({
        "y": [1.0, 4.0, 5.0, np.nan, 3.0],
        "s": pd.Categorical(["0", "1", "1", "0", "1"]),
        "t": ["a", "b", "a", "b", None],
        "b": [True, False, True, True, False],
        "class": [1, 2, 3, 4, 5],
    })


def as_r(series: pd.Series) -> np.ndarray:
    """A pandas nullable boolean as R's logical coerced to numeric: 1, 0, NaN for NA."""
    return series.astype("boolean").astype("Float64").to_numpy(dtype=float, na_value=np.nan)


@pytest.mark.parametrize("expr, expected", [
    ("y > 3", lambda y: y > 3), ("y < 3", lambda y: y < 3), ("y >= 4", lambda y: y >= 4),
    ("y <= 4", lambda y: y <= 4), ("y == 4", lambda y: y == 4), ("y != 4", lambda y: y != 4),
    ("I(y > 3)", lambda y: y > 3), ("3 < y", lambda y: y > 3),
])
def test_comparisons_give_zero_one_and_nan_for_na(logic, expr, expected):
    out = evaluate(expr, logic)
    assert out.dtype == np.float64 and out.shape == (5,)
    np.testing.assert_array_equal(out, as_r(expected(logic["y"].astype("Float64"))))


def test_python_keyword_is_an_ordinary_r_name(logic):
    assert evaluate("class >= 2", logic).tolist() == [0, 1, 1, 1, 1]


def test_and_or_not_follow_r_na_rules(logic):
    y = logic["y"].astype("Float64")
    b = logic["b"].astype("boolean")
    # pandas' nullable booleans use Kleene logic, as R does: NA & FALSE is FALSE
    np.testing.assert_array_equal(evaluate("(y >= 4) & b", logic), as_r((y >= 4) & b))
    np.testing.assert_array_equal(evaluate("y > 3 | !b", logic), as_r((y > 3) | ~b))
    np.testing.assert_array_equal(evaluate("!(y > 3)", logic), as_r(~(y > 3)))
    np.testing.assert_array_equal(evaluate("b & TRUE", logic), as_r(b))
    np.testing.assert_array_equal(evaluate("b | FALSE", logic), as_r(b))
    np.testing.assert_array_equal(evaluate("!b", logic), as_r(~b))
    np.testing.assert_array_equal(evaluate("TRUE", logic), np.ones(5))
    # R's ! of a number is TRUE for 0 only
    np.testing.assert_array_equal(evaluate("!(class - 1)", logic), [1, 0, 0, 0, 0])


def test_r_precedence_of_logical_operators(logic):
    y = logic["y"].astype("Float64")
    b = logic["b"].astype("boolean")
    # ! is below comparisons: !y > 3 is !(y > 3)
    np.testing.assert_array_equal(evaluate("!y > 3", logic), as_r(~(y > 3)))
    # & is above |: a | b & c is a | (b & c)
    np.testing.assert_array_equal(evaluate("y < 2 | b & y > 4", logic),
                                  as_r((y < 2) | (b & (y > 4))))
    # comparisons are above & and below arithmetic
    np.testing.assert_array_equal(evaluate("y + 1 > 4 & b", logic), as_r((y + 1 > 4) & b))
    # logicals are numbers in arithmetic, as in R
    np.testing.assert_array_equal(evaluate("(y > 1) + (y > 4)", logic),
                                  as_r(y > 1) + as_r(y > 4))


def test_text_and_factor_compared_by_label(logic):
    s = logic["s"].astype(str)
    t = logic["t"].astype("string")
    np.testing.assert_array_equal(evaluate('s == "1"', logic), (s == "1").astype(float))
    # a factor compared with a number compares the number's R label, as Ops.factor
    np.testing.assert_array_equal(evaluate("s == 1", logic), (s == "1").astype(float))
    np.testing.assert_array_equal(evaluate('t != "a"', logic), as_r(t != "a"))
    np.testing.assert_array_equal(evaluate('(y >= 4) & (s == "1")', logic),
                                  as_r((logic["y"].astype("Float64") >= 4) & (s == "1")))


@pytest.mark.parametrize("expr, error, names", [
    ("y > 3 > 1", FormulaError, "y > 3 > 1"),
    ('t < "b"', DataError, "'t'"),
    ("!t", DataError, "'t'"),
    ("t + 1", DataError, "'t'"),
    ("y && b", FormulaError, "&&"),
    ("y || b", FormulaError, "||"),
    ("y %in% class", FormulaError, "%in%"),
    ("log(cbind(y, y))", FormulaError, "cbind"),
    ("yy > 3", DataError, "'yy'"),
])
def test_evaluator_errors_name_the_expression(logic, expr, error, names):
    with pytest.raises(error) as err:
        evaluate(expr, logic)
    assert names in str(err.value)


@pytest.mark.parametrize("text, expected", [
    ("x > 3", "x > 3"),
    ("!(x > 3) & s == 'a'", '!(x > 3) & s == "a"'),
    ("(a | b) & !c", "(a | b) & !c"),
    ("a | b & c", "a | b & c"),
    ("(x + 1)^2 >= y / 2", "(x + 1)^2 >= y/2"),
])
def test_logical_expressions_deparse_as_r(text, expected):
    tree, names = parse_python(python_text(text, all_arithmetic=True))
    assert r_deparse(tree, names)[0] == expected


# --- cbind(successes, failures) ----------------------------------------------------------

def test_cbind_gives_proportion_and_trials(counts):
    d = design("cbind(k, n - k) ~ x + (1 | g)", counts)
    trials = counts["n"].astype(float)
    expected = (counts["k"] / counts["n"]).fillna(0.0)  # 0 where there are no trials (row r4)
    np.testing.assert_array_equal(d.trials, trials.to_numpy())
    np.testing.assert_allclose(d.y, expected.to_numpy(), rtol=0, atol=1e-15)
    assert d.y[4] == 0 and d.trials[4] == 0
    assert d.info.response_levels is None and d.n == 6


def test_cbind_of_two_columns_and_named_arguments(counts):
    data = counts.assign(fail=counts["n"] - counts["k"])
    plain = design("cbind(k, fail) ~ x + (1 | g)", data)
    named = design("cbind(succ = k,  fail = fail) ~ x + (1 | g)", data)
    np.testing.assert_array_equal(plain.y, named.y)
    np.testing.assert_array_equal(plain.trials, data["n"].to_numpy(dtype=float))
    assert cbind_arguments("cbind(succ = k, n - k)") == ["k", "n - k"]
    assert cbind_arguments("cbind(k, n) + 1") is None
    assert cbind_arguments("k / n") is None


def test_cbind_on_cbpp():
    cbpp = mm.datasets.load("cbpp")
    d = design("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    np.testing.assert_allclose(d.y, (cbpp["incidence"] / cbpp["size"]).to_numpy(), rtol=1e-15)
    np.testing.assert_array_equal(d.trials, cbpp["size"].to_numpy(dtype=float))
    assert d.n == 56 and d.info.x_names == ("(Intercept)", "period2", "period3", "period4")
    # the proportion response of lmer fits on the same rows
    assert np.array_equal(design("incidence / size ~ period + (1 | herd)", cbpp, glm=False).y, d.y)


def test_cbind_needs_glm(counts):
    with pytest.raises(FormulaError, match="cbind.*glmer") as err:
        design("cbind(k, n - k) ~ x + (1 | g)", counts, glm=False)
    assert "cbind(k, n - k)" in str(err.value) and err.value.position == 0
    with pytest.raises(FormulaError, match="glmer"):
        mm.lmer("cbind(k, n - k) ~ x + (1 | g)", counts)


def test_cbind_negative_count_names_argument_and_row(counts):
    with pytest.raises(DataError) as err:
        design("cbind(k, k - n) ~ x + (1 | g)", counts)
    message = str(err.value)
    # the first row where k - n < 0 is r0 (2 - 4)
    assert "'k - n'" in message and "negative" in message and "'r0'" in message
    bad = counts.assign(k=[2, 0, 5, -1, 0, 3])
    with pytest.raises(DataError) as err:
        design("cbind(k, n - k) ~ x + (1 | g)", bad)
    assert "'k'" in str(err.value) and "'r3'" in str(err.value)


def test_cbind_row_label_is_the_users_after_dropped_rows(counts):
    data = counts.assign(x=[np.nan, 1.0, 1.5, 2.0, 2.5, 3.0], k=[2, 0, 5, 1, -2, 3])
    with pytest.warns(DroppedRowsWarning, match="1 row"):
        with pytest.raises(DataError) as err:
            design("cbind(k, n - k) ~ x + (1 | g)", data)
    # r4 is position 3 once r0 is dropped: the message must give the label
    assert "'r4'" in str(err.value) and "'k'" in str(err.value)


@pytest.mark.parametrize("response, names", [
    ("cbind(k)", "1 argument"),
    ("cbind(k, n, n)", "3 argument"),
    ("cbind(k, )", "argument 2"),
])
def test_cbind_needs_two_arguments(counts, response, names):
    with pytest.raises(FormulaError) as err:
        design(f"{response} ~ x + (1 | g)", counts)
    assert names in str(err.value) and response in str(err.value)


def test_cbind_argument_errors_name_the_argument(counts):
    with pytest.raises(DataError) as err:
        design("cbind(k, g) ~ x + (1 | g)", counts)
    assert "cbind() argument 'g'" in str(err.value) and "not numeric" in str(err.value)
    with pytest.raises(DataError) as err:
        design("cbind(k, n / (n - k) - 1) ~ x + (1 | g)", counts.assign(n=[4, 3, 5, 6, 1, 8]))
    # row r2 has n = k: a division by zero
    assert "'n / (n - k) - 1'" in str(err.value) and "'r2'" in str(err.value)


def test_cbind_drops_rows_with_missing_counts(counts):
    data = counts.assign(n=counts["n"].where(counts.index != "r1"))
    with pytest.warns(DroppedRowsWarning, match="1 row"):
        d = design("cbind(k, n - k) ~ x + (1 | g)", data)
    kept = counts.drop(index="r1")
    np.testing.assert_array_equal(d.trials, kept["n"].to_numpy(dtype=float))
    np.testing.assert_allclose(d.y, (kept["k"] / kept["n"]).fillna(0.0).to_numpy())
    assert list(d.row_index) == list(kept.index)


# --- logical responses -------------------------------------------------------------------

@pytest.mark.parametrize("glm", [False, True])
def test_boolean_column_response(counts, glm):
    data = counts.assign(hit=counts["k"] > 1)
    d = design("hit ~ x + (1 | g)", data, glm=glm)
    np.testing.assert_array_equal(d.y, data["hit"].astype(float).to_numpy())
    assert d.trials is None and d.info.response_levels is None


@pytest.mark.parametrize("response", ["I(k > 1)", "k > 1", "(k > 1) & (g != 'c')", "!(k <= 1)"])
def test_comparison_responses(counts, response):
    expected = {"I(k > 1)": counts["k"] > 1, "k > 1": counts["k"] > 1,
                "(k > 1) & (g != 'c')": (counts["k"] > 1) & (counts["g"] != "c"),
                "!(k <= 1)": ~(counts["k"] <= 1)}[response]
    for glm in (False, True):
        d = design(f"{response} ~ x + (1 | g)", counts, glm=glm)
        np.testing.assert_array_equal(d.y, expected.astype(float).to_numpy())


def test_insteval_style_binary_response():
    data = mm.datasets.load("InstEval")
    d = design("I(y > 3) ~ service + (1 | s)", data)
    np.testing.assert_array_equal(d.y, (data["y"] > 3).astype(float).to_numpy())
    both = design("(y >= 4) & (service == '1') ~ 1 + (1 | s)", data)
    expected = (data["y"] >= 4) & (data["service"].astype(str) == "1")
    np.testing.assert_array_equal(both.y, expected.astype(float).to_numpy())


def test_lmer_fits_a_zero_one_response(sleepstudy):
    m = mm.lmer("I(Reaction > 300) ~ Days + (1 | Subject)", sleepstudy)
    np.testing.assert_array_equal(m.rows.y, (sleepstudy["Reaction"] > 300).astype(float))


# --- factor responses --------------------------------------------------------------------

def test_two_level_text_response_first_level_is_failure(counts):
    # C-locale order: "No" < "yes" (upper case first), so "No" is the failure
    data = counts.assign(ok=["yes", "No", "yes", "yes", "No", "No"])
    d = design("ok ~ x + (1 | g)", data)
    np.testing.assert_array_equal(d.y, (data["ok"] != "No").astype(float).to_numpy())
    assert d.info.response_levels == ("No", "yes") and d.trials is None


def test_categorical_response_keeps_category_order(counts):
    ok = pd.Categorical(["yes", "no", "yes", "yes", "no", "no"], categories=["yes", "no"])
    d = design("ok ~ x + (1 | g)", counts.assign(ok=ok))
    np.testing.assert_array_equal(d.y, (pd.Series(ok) != "yes").astype(float).to_numpy())
    assert d.info.response_levels == ("yes", "no")


def test_unused_first_category_is_dropped(counts):
    ok = pd.Categorical(["b", "c", "b", "c", "c", "b"], categories=["a", "b", "c"])
    d = design("ok ~ x + (1 | g)", counts.assign(ok=ok))
    assert d.info.response_levels == ("b", "c")
    np.testing.assert_array_equal(d.y, (pd.Series(ok) == "c").astype(float).to_numpy())


def test_three_levels_first_against_the_rest(counts):
    data = counts.assign(ans=["maybe", "no", "yes", "no", "yes", "maybe"])
    d = design("ans ~ x + (1 | g)", data)
    # sorted levels: maybe, no, yes
    assert d.info.response_levels == ("maybe", "not maybe")
    np.testing.assert_array_equal(d.y, (data["ans"] != "maybe").astype(float).to_numpy())


def test_factor_of_numbers_response(counts):
    d = design("factor(k) ~ x + (1 | g)", counts)
    np.testing.assert_array_equal(d.y, (counts["k"] != 0).astype(float).to_numpy())
    assert d.info.response_levels == ("0", "not 0")


def test_levels_are_taken_before_rows_are_dropped(counts):
    # lme4's model.frame drops unused levels before its na.action: "a" is the first level
    # although its only row is dropped for a missing x, so every kept row is a success
    data = counts.assign(ok=["a", "b", "b", "c", "b", "c"],
                         x=[np.nan, 1.0, 1.5, 2.0, 2.5, 3.0])
    with pytest.warns(DroppedRowsWarning, match="1 row"):
        d = design("ok ~ x + (1 | g)", data)
    assert d.info.response_levels == ("a", "not a")
    np.testing.assert_array_equal(d.y, np.ones(5))


def test_factor_response_drops_missing_rows(counts):
    data = counts.assign(ok=["no", None, "yes", "yes", "no", "no"])
    with pytest.warns(DroppedRowsWarning, match="1 row"):
        d = design("ok ~ x + (1 | g)", data)
    kept = data.drop(index="r1")
    np.testing.assert_array_equal(d.y, (kept["ok"] == "yes").astype(float).to_numpy())
    assert d.info.response_levels == ("no", "yes")


def test_factor_response_without_glm_mentions_glmer(counts):
    data = counts.assign(ok=["yes", "no", "yes", "yes", "no", "no"],
                         ans=["maybe", "no", "yes", "no", "yes", "maybe"])
    with pytest.raises(DataError) as err:
        design("ok ~ x + (1 | g)", data, glm=False)
    assert "'ok'" in str(err.value) and "glmer" in str(err.value)
    with pytest.raises(DataError) as err:
        design("ans ~ x + (1 | g)", data, glm=False)
    assert "'ans'" in str(err.value) and "not numeric" in str(err.value)
    with pytest.raises(DataError) as err:
        design("factor(k) ~ x + (1 | g)", data, glm=False)
    assert "'factor(k)'" in str(err.value)


def test_glm_numeric_response_is_unchanged(counts):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = design("k ~ x + (1 | g)", counts)
    np.testing.assert_array_equal(d.y, counts["k"].to_numpy(dtype=float))
    assert d.trials is None and d.info.response_levels is None
