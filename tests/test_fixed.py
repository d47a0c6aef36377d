"""Fixed-effects model matrices against R's ``model.matrix()``.

Expected values are R's: either worked out by hand from R's rules
(contr.treatment, contr.poly, TermCode) or copied from R output / the lme4
reference fixtures.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixedmodels.errors import DataError, FormulaError
from mixedmodels.formula.contrasts import contr_poly, r_number
from mixedmodels.formula.fixed import (
    MatrixSpec,
    ModelMatrix,
    model_matrix,
    split_offsets,
    variables,
)
from mixedmodels.formula.rexpr import evaluate

DATA = Path(__file__).parent / "data"
FIXTURES = Path(__file__).parent / "fixtures" / "lme4"


def read(name: str, factors: dict[str, tuple[list[str], bool]]) -> pd.DataFrame:
    """Read a reference CSV and set R's factor levels (the CSV cannot carry them)."""
    frame = pd.read_csv(DATA / f"{name}.csv", dtype={col: str for col in factors})
    for col, (levels, ordered) in factors.items():
        frame[col] = pd.Categorical(frame[col], categories=levels, ordered=ordered)
    return frame


@pytest.fixture(scope="module")
def cake() -> pd.DataFrame:
    return read("cake", {
        "replicate": ([str(i) for i in range(1, 16)], False),
        "recipe": (["A", "B", "C"], False),
        "temperature": (["175", "185", "195", "205", "215", "225"], True),
    })


@pytest.fixture
def small() -> pd.DataFrame:
    return pd.DataFrame({
        "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        "f": pd.Categorical(list("abcabc")),
        "g": ["u", "v", "u", "v", "u", "v"],
        "h": pd.Categorical(list("ppqqpq")),
        "o": pd.Categorical(list("lmhlmh"), categories=list("lmh"), ordered=True),
    })


# --- contrasts -----------------------------------------------------------

# R: contr.poly(3), contr.poly(4), contr.poly(6) as printed (7 significant digits).
R_POLY = {
    3: [[-0.7071068, 0.4082483], [0.0, -0.8164966], [0.7071068, 0.4082483]],
    4: [[-0.6708204, 0.5, -0.2236068], [-0.2236068, -0.5, 0.6708204],
        [0.2236068, -0.5, -0.6708204], [0.6708204, 0.5, 0.2236068]],
    6: [[-0.5976143, 0.5455447, -0.3726780, 0.1889822, -0.06299408],
        [-0.3585686, -0.1091089, 0.5217492, -0.5669467, 0.31497039],
        [-0.1195229, -0.4364358, 0.2981424, 0.3779645, -0.62994079],
        [0.1195229, -0.4364358, -0.2981424, 0.3779645, 0.62994079],
        [0.3585686, -0.1091089, -0.5217492, -0.5669467, -0.31497039],
        [0.5976143, 0.5455447, 0.3726780, 0.1889822, 0.06299408]],
}


@pytest.mark.parametrize("k", [3, 4, 6])
def test_contr_poly_matches_r(k):
    matrix, suffixes = contr_poly(k)
    np.testing.assert_allclose(matrix, R_POLY[k], atol=5e-8)
    assert suffixes == [".L", ".Q", ".C", "^4", "^5"][: k - 1]


def test_contr_poly_is_orthonormal_polynomial_table():
    matrix, _ = contr_poly(6)
    exact = np.array([[-5, -3, -1, 1, 3, 5], [5, -1, -4, -4, -1, 5], [-5, 7, 4, -4, -7, 5],
                      [1, -3, 2, 2, -3, 1], [-1, 5, -10, 10, -5, 1]], dtype=float).T
    np.testing.assert_allclose(matrix, exact / np.linalg.norm(exact, axis=0), atol=1e-12)


@pytest.mark.parametrize("value, text", [
    (1.0, "1"), (2.5, "2.5"), (0.1, "0.1"), (100000.0, "1e+05"), (10000.0, "10000"),
    (0.0001, "1e-04"), (0.001, "0.001"), (123456.0, "123456"), (-3.0, "-3"), (1 / 3, "0.333333333333333"),
])
def test_numbers_formatted_as_r(value, text):
    assert r_number(value) == text


# --- main effects --------------------------------------------------------

def test_intercept_and_numeric(small):
    mm = model_matrix("1 + x", small)
    assert isinstance(mm, ModelMatrix) and isinstance(mm.spec, MatrixSpec)
    assert mm.names == ["(Intercept)", "x"]
    assert mm.term_of_column == ["(Intercept)", "x"]
    np.testing.assert_array_equal(mm.values, np.column_stack([np.ones(6), small["x"]]))
    assert mm.values.dtype == np.float64 and mm.values.flags.c_contiguous
    assert model_matrix("x", small).names == ["(Intercept)", "x"]
    assert model_matrix("1", small).values.shape == (6, 1)
    assert model_matrix("0", small).values.shape == (6, 0)


def test_treatment_contrasts(small):
    mm = model_matrix("f", small)
    assert mm.names == ["(Intercept)", "fb", "fc"]
    assert mm.term_of_column == ["(Intercept)", "f", "f"]
    np.testing.assert_array_equal(mm.values[:3], [[1, 0, 0], [1, 1, 0], [1, 0, 1]])


@pytest.mark.parametrize("rhs", ["0 + f", "-1 + f", "f - 1", "f + 0"])
def test_no_intercept_gives_full_dummies(small, rhs):
    mm = model_matrix(rhs, small)
    assert mm.names == ["fa", "fb", "fc"]
    np.testing.assert_array_equal(mm.values[:3], np.eye(3))


def test_no_intercept_dummies_only_for_first_factor(small):
    assert model_matrix("0 + x + f", small).names == ["x", "fa", "fb", "fc"]
    assert model_matrix("0 + f + g", small).names == ["fa", "fb", "fc", "gv"]


def test_ordered_factor_uses_contr_poly(small):
    mm = model_matrix("o", small)
    assert mm.names == ["(Intercept)", "o.L", "o.Q"]
    np.testing.assert_allclose(mm.values[:3, 1:], R_POLY[3], atol=5e-8)
    full = model_matrix("0 + o", small)
    assert full.names == ["ol", "om", "oh"]
    np.testing.assert_array_equal(full.values[:3], np.eye(3))


def test_string_levels_sorted_as_c_locale():
    data = pd.DataFrame({"s": ["b", "B", "a", "b", "_z"]})
    # C locale: '_' (0x5f) after 'B' (0x42), before 'a' (0x61)
    assert model_matrix("0 + s", data).names == ["sB", "s_z", "sa", "sb"]
    assert model_matrix("s", data).names == ["(Intercept)", "s_z", "sa", "sb"]


def test_logical_column_is_factor_false_true():
    data = pd.DataFrame({"b": [True, True, False]})
    mm = model_matrix("b", data)
    assert mm.names == ["(Intercept)", "bTRUE"]
    np.testing.assert_array_equal(mm.values[:, 1], [1, 1, 0])
    assert model_matrix("0 + b", pd.DataFrame({"b": [True, True]})).names == ["bFALSE", "bTRUE"]


def test_integer_column_is_numeric():
    data = pd.DataFrame({"service": [0, 1, 1, 0], "n": np.array([1, 2, 2, 3], dtype="int32")})
    assert model_matrix("service + n", data).names == ["(Intercept)", "service", "n"]


def test_unused_levels_are_dropped():
    data = pd.DataFrame({"f": pd.Categorical(["b", "c", "b"], categories=["a", "b", "c", "d"])})
    assert model_matrix("f", data).names == ["(Intercept)", "fc"]
    assert model_matrix("0 + f", data).names == ["fb", "fc"]


@pytest.mark.parametrize("rhs", ["f", "0 + f"])
def test_single_level_factor_is_an_error(rhs):
    # R: "contrasts can be applied only to factors with 2 or more levels", with or without intercept
    with pytest.raises(DataError, match="'f'"):
        model_matrix(rhs, pd.DataFrame({"f": ["a", "a"]}))


# --- interactions --------------------------------------------------------

def test_factor_by_factor_first_varies_fastest(small):
    mm = model_matrix("f * h", small)
    assert mm.names == ["(Intercept)", "fb", "fc", "hq", "fb:hq", "fc:hq"]
    assert mm.term_of_column[-1] == "f:h"
    np.testing.assert_array_equal(mm.values[:, 4], mm.values[:, 1] * mm.values[:, 3])
    mm = model_matrix("o * f", small)
    assert mm.names[5:] == ["o.L:fb", "o.Q:fb", "o.L:fc", "o.Q:fc"]


def test_numeric_by_factor(small):
    mm = model_matrix("x * f", small)
    assert mm.names == ["(Intercept)", "x", "fb", "fc", "x:fb", "x:fc"]
    np.testing.assert_array_equal(mm.values[:, 4], small["x"] * (small["f"] == "b"))


def test_missing_marginal_gives_full_dummies(small):
    # R: the factor of x:f is coded by indicators when f's main effect is absent.
    assert model_matrix("x:f", small).names == ["(Intercept)", "x:fa", "x:fb", "x:fc"]
    # ... but with x present, x:f minus f is an earlier term, so f gets contrasts
    assert model_matrix("x + x:f", small).names == ["(Intercept)", "x", "x:fb", "x:fc"]
    assert model_matrix("f:h", small).names == [
        "(Intercept)", "fa:hp", "fb:hp", "fc:hp", "fa:hq", "fb:hq", "fc:hq"]
    # h's margin is present, so h keeps contrasts while f gets indicators
    assert model_matrix("h + f:h", small).names == [
        "(Intercept)", "hq", "hp:fb", "hq:fb", "hp:fc", "hq:fc"]
    assert model_matrix("f*h - f", small).names == ["(Intercept)", "hq", "fb:hp", "fc:hp", "fb:hq", "fc:hq"]


def test_variable_order_is_first_appearance(small):
    mm = model_matrix("x + f:x", small)
    assert mm.names == ["(Intercept)", "x", "x:fb", "x:fc"]
    assert mm.term_of_column[-1] == "x:f"
    assert model_matrix("f:x + x", small).names == ["(Intercept)", "x", "fb:x", "fc:x"]


def test_terms_sorted_by_degree(small):
    names = model_matrix("(f + h + x)^2", small).names
    assert names == ["(Intercept)", "fb", "fc", "hq", "x", "fb:hq", "fc:hq", "fb:x", "fc:x", "hq:x"]
    terms = model_matrix("f*h*x", small).term_of_column
    assert list(dict.fromkeys(terms)) == ["(Intercept)", "f", "h", "x", "f:h", "f:x", "h:x", "f:h:x"]
    terms = model_matrix("f:h + x", small).term_of_column
    assert list(dict.fromkeys(terms)) == ["(Intercept)", "x", "f:h"]


# --- function terms ------------------------------------------------------

def test_function_terms_named_as_r_deparses():
    data = pd.DataFrame({"age": [8.0, 10.0, 12.0, 14.0], "x": [1.0, 2.0, 4.0, 8.0]})
    rhs = "I( age ^ 2 ) + log(x) + sqrt(x) + exp(x) + abs(x) + I(x/10) + I(2*x) + I((x+1)^2)"
    mm = model_matrix(rhs, data)
    assert mm.names == ["(Intercept)", "I(age^2)", "log(x)", "sqrt(x)", "exp(x)", "abs(x)",
                        "I(x/10)", "I(2 * x)", "I((x + 1)^2)"]
    expected = [data.age**2, np.log(data.x), np.sqrt(data.x), np.exp(data.x), data.x,
                data.x / 10, 2 * data.x, (data.x + 1) ** 2]
    np.testing.assert_allclose(mm.values[:, 1:], np.column_stack(expected))


def test_scale_uses_training_mean_and_sd():
    train = pd.DataFrame({"HEIGHT": [1.0, 2.0, 3.0, 4.0]})
    mm = model_matrix("scale(HEIGHT)", train)
    assert mm.names == ["(Intercept)", "scale(HEIGHT)"]
    sd = np.std(train.HEIGHT, ddof=1)
    np.testing.assert_allclose(mm.values[:, 1], (train.HEIGHT - 2.5) / sd)
    new = mm.spec.build(pd.DataFrame({"HEIGHT": [2.5, 10.0]}))
    np.testing.assert_allclose(new[:, 1], [0.0, 7.5 / sd])


def test_poly_matches_r():
    data = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0]})
    mm = model_matrix("poly(x, 2)", data)
    assert mm.names == ["(Intercept)", "poly(x, 2)1", "poly(x, 2)2"]
    assert mm.term_of_column[1:] == ["poly(x, 2)", "poly(x, 2)"]
    np.testing.assert_allclose(mm.values[:, 1], np.array([-2, -1, 0, 1, 2]) / np.sqrt(10))
    np.testing.assert_allclose(mm.values[:, 2], np.array([2, -1, -2, -1, 2]) / np.sqrt(14))


def test_factor_function_on_numbers():
    data = pd.DataFrame({"n": [3, 1, 2, 10, 1]})
    mm = model_matrix("factor(n)", data)
    assert mm.names == ["(Intercept)", "factor(n)2", "factor(n)3", "factor(n)10"]
    with pytest.raises(DataError, match="'7'"):
        mm.spec.build(pd.DataFrame({"n": [1, 7]}))


def test_offsets_are_not_columns(small):
    assert model_matrix("x + offset(log(x))", small).names == ["(Intercept)", "x"]


# --- rebuilding on new data ------------------------------------------------

def test_build_reproduces_training_matrix(cake):
    mm = model_matrix("recipe * temperature + temp", cake)
    np.testing.assert_array_equal(mm.spec.build(cake), mm.values)
    assert mm.spec.names == mm.names


def test_build_new_data_keeps_training_coding(small):
    mm = model_matrix("f + o + g", small)
    new = pd.DataFrame({
        "f": ["c", "a"],                     # plain strings now
        "o": pd.Categorical(["h", "h"], categories=["h", "m", "l"], ordered=True),
        "g": ["v", "v"],
    })
    out = mm.spec.build(new)
    assert out.shape == (2, len(mm.names))
    np.testing.assert_allclose(out[0], [1, 0, 1, R_POLY[3][2][0], R_POLY[3][2][1], 1], atol=5e-8)
    np.testing.assert_allclose(out[1], [1, 0, 0, R_POLY[3][2][0], R_POLY[3][2][1], 1], atol=5e-8)


def test_build_factor_stored_as_numbers():
    train = pd.DataFrame({"period": pd.Categorical(["1", "2", "3", "1"])})
    mm = model_matrix("period", train)
    out = mm.spec.build(pd.DataFrame({"period": [3, 2]}))
    np.testing.assert_array_equal(out, [[1, 0, 1], [1, 1, 0]])


def test_unseen_level_names_column_and_level(small):
    mm = model_matrix("f", small)
    with pytest.raises(DataError, match=r"'f'.*'z'"):
        mm.spec.build(pd.DataFrame({"f": ["a", "z"]}))


def test_missing_column_in_new_data(small):
    mm = model_matrix("x + f", small)
    with pytest.raises(DataError, match="'f'"):
        mm.spec.build(small[["x"]])


# --- errors --------------------------------------------------------------

def test_unknown_column(small):
    with pytest.raises(DataError, match="'Dayz'"):
        model_matrix("1 + Dayz", small)
    with pytest.raises(DataError, match="'zz'"):
        model_matrix("log(zz)", small)


def test_text_column_used_as_number(small):
    with pytest.raises(DataError, match="'g'"):
        model_matrix("log(g)", small)


def test_unknown_function(small):
    with pytest.raises(DataError, match="'foo'"):
        model_matrix("foo(x)", small)


def test_non_syntactic_names_are_back_quoted():
    data = pd.DataFrame({"my col": [1.0, 2.0, 4.0]})
    assert model_matrix("`my col` + log(`my col`)", data).names == ["(Intercept)", "`my col`", "log(`my col`)"]


@pytest.mark.parametrize("rhs", ["x +", "x + (f", "x | f", "x ~ f", "x + [1]", "x %in% f", "I(x > 3)"])
def test_bad_formula_raises_formula_error(small, rhs):
    with pytest.raises(FormulaError):
        model_matrix(rhs, small)


# --- real data -------------------------------------------------------------

def test_cake_recipe_by_temperature(cake):
    mm = model_matrix("recipe * temperature", cake)
    assert mm.values.shape == (270, 18)
    assert mm.names[:11] == [
        "(Intercept)", "recipeB", "recipeC", "temperature.L", "temperature.Q", "temperature.C",
        "temperature^4", "temperature^5", "recipeB:temperature.L", "recipeC:temperature.L",
        "recipeB:temperature.Q"]
    assert mm.names[-1] == "recipeC:temperature^5"
    assert set(mm.term_of_column) == {"(Intercept)", "recipe", "temperature", "recipe:temperature"}
    poly6 = np.array(R_POLY[6])
    levels = cake["temperature"].cat.codes.to_numpy()
    np.testing.assert_allclose(mm.values[:, 3:8], poly6[levels], atol=5e-8)
    is_b = (cake["recipe"] == "B").to_numpy()
    np.testing.assert_allclose(mm.values[:, 8], is_b * poly6[levels, 0], atol=5e-8)
    assert np.linalg.matrix_rank(mm.values) == 18


def test_arabidopsis_names_match_lme4():
    data = read("Arabidopsis", {"amd": (["clipped", "unclipped"], False),
                                "status": (["Normal", "Petri.Plate", "Transplant"], False)})
    fixef = json.loads((FIXTURES / "arabidopsis_poisson.json").read_text())["fixef"]
    mm = model_matrix("nutrient*amd + rack + status", data)
    assert mm.names == list(fixef)
    # amd and status read as plain strings give the same (sorted) levels
    plain = pd.read_csv(DATA / "Arabidopsis.csv")
    np.testing.assert_array_equal(model_matrix("nutrient*amd + rack + status", plain).values, mm.values)


def test_ergostool_least_squares_equals_lme4_fixef():
    # Balanced design: lmer's fixed effects equal ordinary least squares.
    data = read("ergoStool", {"Type": (["T1", "T2", "T3", "T4"], False)})
    fixef = json.loads((FIXTURES / "ergostool_reml.json").read_text())["fixef"]
    mm = model_matrix("Type", data)
    assert mm.names == list(fixef)
    beta = np.linalg.lstsq(mm.values, data["effort"].to_numpy(float), rcond=None)[0]
    np.testing.assert_allclose(beta, list(fixef.values()), rtol=1e-10)


def test_cbpp_response_offset_and_period():
    data = read("cbpp", {"herd": ([str(i) for i in range(1, 16)], False),
                         "period": (["1", "2", "3", "4"], False)})
    fixef = json.loads((FIXTURES / "cbpp_weighted_lmm_reml.json").read_text())["fixef"]
    rest, offsets = split_offsets("period + offset(log(size))")
    assert (rest, offsets) == ("period", ["log(size)"])
    assert model_matrix(rest, data).names == list(fixef) == ["(Intercept)", "period2", "period3", "period4"]
    np.testing.assert_allclose(evaluate("incidence/size", data), data["incidence"] / data["size"])
    np.testing.assert_allclose(evaluate(offsets[0], data), np.log(data["size"]))


def test_random_effect_left_sides(cake):
    assert model_matrix("1 + temp", cake).names == ["(Intercept)", "temp"]
    assert model_matrix("0 + recipe", cake).names == ["recipeA", "recipeB", "recipeC"]
    assert model_matrix("0 + temperature", cake).names == [f"temperature{t}" for t in range(175, 226, 10)]


# --- split_offsets, evaluate, variables -------------------------------------

@pytest.mark.parametrize("rhs, expected", [
    ("1 + offset(10 * Days)", ("1", ["10 * Days"])),
    ("x + offset(log(size))", ("x", ["log(size)"])),
    ("offset(x)", ("1", ["x"])),
    ("0 + offset(x)", ("0", ["x"])),
    ("-1 + offset(x) + a", ("-1 + a", ["x"])),
    ("a*b + offset( log(x) ) - 1", ("a*b - 1", ["log(x)"])),
    ("x + I(offset + 1)", ("x + I(offset + 1)", [])),
    ("period", ("period", [])),
])
def test_split_offsets(rhs, expected):
    assert split_offsets(rhs) == expected


def test_evaluate_arithmetic():
    data = pd.DataFrame({"incidence": [2, 3], "size": [14, 12], "Days": [0, 3], "total.fruits": [4.0, 9.0]})
    np.testing.assert_allclose(evaluate("incidence/size", data), [2 / 14, 3 / 12])
    np.testing.assert_allclose(evaluate("log(size)", data), np.log([14, 12]))
    np.testing.assert_allclose(evaluate("10 * Days", data), [0, 30])
    np.testing.assert_allclose(evaluate("sqrt(total.fruits)", data), [2, 3])
    np.testing.assert_allclose(evaluate("-2^2 + (1 + Days)^2", data), [-3, 12])
    np.testing.assert_allclose(evaluate("2^-1 * size", data), [7, 6])
    np.testing.assert_allclose(evaluate("log(size, 2) + log2(size) + round(size / 5)", data),
                               2 * np.log2([14, 12]) + [3, 2])
    np.testing.assert_allclose(evaluate("abs(exp(0) - size) + cos(0) + sin(0) + log10(100)", data), [16, 14])
    out = evaluate("3", data)
    assert out.shape == (2,) and out.dtype == np.float64


def test_evaluate_rejects_bad_input():
    data = pd.DataFrame({"y": [1.0, 2.0], "g": ["a", "b"]})
    with pytest.raises(DataError, match="'yy'"):
        evaluate("log(yy)", data)
    with pytest.raises(DataError, match="'g'"):
        evaluate("y / g", data)
    with pytest.raises(DataError):
        evaluate("__import__('os')", data)
    with pytest.raises((DataError, FormulaError)):
        evaluate("y.__class__", data)
    with pytest.raises(FormulaError):
        evaluate("y +", data)


def test_variables():
    cols = ["Reaction", "Days", "Subject", "total.fruits", "size"]
    assert variables("Days + (Days | Subject)", cols) == {"Days", "Subject"}
    assert variables("log(size) + offset(10 * Days)", cols) == {"size", "Days"}
    assert variables("total.fruits", cols) == {"total.fruits"}
    assert variables("poly(Days, degree = 2) + scale(Days, center = TRUE)", cols) == {"Days"}
    assert variables("1", cols) == set()
    assert variables("cbind(size, size - Days)", cols) == {"size", "Days"}
    with pytest.raises(DataError, match="'Dayz'"):
        variables("Dayz + Subject", cols)


# --- logical operators in the fixed part -------------------------------------

@pytest.mark.parametrize("rhs, operator", [
    ("I(x > 3)", ">"), ("x + I(x == 2)", "=="), ("I(!(x < 2))", "!"), ("I(x > 1 & x < 4)", ">"),
])
def test_logical_term_gets_a_clear_error(small, rhs, operator):
    with pytest.raises(FormulaError) as err:
        model_matrix(rhs, small)
    message = str(err.value)
    assert f"'{operator}'" in message and rhs in message and "response only" in message
    assert err.value.position == rhs.index(operator)


def test_logical_term_in_lmer_names_the_term(sleepstudy):
    import mixedmodels as mm

    with pytest.raises(FormulaError, match=r"I\(Days > 3\)"):
        mm.lmer("Reaction ~ I(Days > 3) + (1 | Subject)", sleepstudy)
    # the boolean column the message suggests is R's FALSE/TRUE factor
    m = mm.lmer("Reaction ~ late + (1 | Subject)", sleepstudy.assign(late=sleepstudy["Days"] > 3))
    assert list(m.fixef.index) == ["(Intercept)", "lateTRUE"]


def test_evaluate_reads_python_keywords_as_column_names():
    data = pd.DataFrame({"class": [1.0, 2.0, 4.0], "not": [0.0, 1.0, 3.0]})
    np.testing.assert_allclose(evaluate("class * not + log(class)", data), [0, 2 + np.log(2), 12 + np.log(4)])
