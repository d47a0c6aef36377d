"""lmerTest's t and F tests (Satterthwaite, Kenward-Roger) against the reference fixtures, a dense
pbkrtest oracle for the blocked Kenward-Roger algebra, and the public table functions.

Where the tests compare with R. The df and p-values are functions of theta, and p-values as
small as 1e-7 to 1e-34 move a lot for a tiny change of theta: Penicillin's REML optimum is 3e-5
(relative) from lme4's in one theta, within the theta tolerance, and that moves its Satterthwaite
p-value (3.6e-7) by 1.2e-3. So every table is checked in full at lme4's own theta
(``result.at_theta``) at the README's tolerances, which tests the inference code itself; and at
our optimum every column but the p-values is checked at the same tolerances (times 10 where
lme4's optimizer stopped short, as ``test_lmer_reference`` does).
"""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

import mixedmodels as mm
from conftest import TOL, fitted_case, lmer_case_ids, load_case, stopped_short
from mixedmodels.errors import MixedModelsError
from mixedmodels.inference import ftests
from mixedmodels.inference import kenward_roger as kr
from mixedmodels.inference import satterthwaite as sat
from oracles import dense_z

# tests/fixtures/lme4/README.md, "Suggested tolerances"
RTOL = {
    "Estimate": TOL["fixef"]["rtol"],
    "Std. Error": TOL["second"]["rtol"],
    "t value": TOL["second"]["rtol"],
    "satterthwaite df": 1e-3,
    "kenward-roger df": 1e-4,
    "p": 1e-3,
    "F": 1e-4,
}
T_COLUMNS = ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
F_COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]

# (fixture field, kind, ddf)
TABLES = [
    ("satterthwaite", "coefficients", "satterthwaite"),
    ("kenward_roger", "coefficients", "kenward-roger"),
    ("anova_type3_satterthwaite", "anova3", "satterthwaite"),
    ("anova_type3_kenward_roger", "anova3", "kenward-roger"),
    ("anova_lme4_typeI", "lme4", "lme4"),
]


def _tolerance(column: str, ddf: str) -> float:
    if column in ("df", "DenDF"):
        return RTOL[f"{ddf} df"]
    if column.startswith("Pr("):
        return RTOL["p"]
    if column in ("Sum Sq", "Mean Sq", "F value"):
        return RTOL["F"]
    return RTOL.get(column, 0.0)


def _our_table(result, kind: str, ddf: str) -> pd.DataFrame:
    if kind == "coefficients":
        return ftests.coefficients(result, ddf=ddf)
    if kind == "anova3":
        return ftests.anova(result, type=3, ddf=ddf)
    return ftests.anova(result, type=1, ddf="lme4")


def _reference_rows(case: dict, field: str, kind: str) -> list[dict]:
    entry = case["lmerTest"][field]
    return entry["coefficients"] if kind == "coefficients" else entry["table"]


def _compare(ours: pd.DataFrame, rows: list[dict], ddf: str, factor: float, with_p: bool,
             where: str) -> None:
    assert list(ours.index) == [r["term"] for r in rows], where
    for row in rows:
        for column, expected in row.items():
            if column == "term" or (column.startswith("Pr(") and not with_p):
                continue
            got = float(ours.loc[row["term"], column])
            rtol = factor * _tolerance(column, ddf)
            assert got == pytest.approx(expected, rel=rtol, abs=1e-300), (
                f"{where}: {row['term']} {column}: ours {got!r}, R {expected!r} (rtol {rtol})")


def _cases_with(field: str) -> list:
    return [case_id for case_id in lmer_case_ids()
            if field in (load_case(case_id).get("lmerTest") or {})]


_AT_LME4: dict = {}


def at_lme4_theta(case_id: str):
    """The fitted case evaluated at lme4's theta, one result per case so that the inference
    caches (keyed by result) are shared by the tables of a case."""
    if case_id not in _AT_LME4:
        case, _, m = fitted_case(case_id)
        _AT_LME4[case_id] = m.at_theta(np.array(list(case["theta"].values())))
    return _AT_LME4[case_id]


PARAMS = [pytest.param(case_id, field, kind, ddf, id=f"{case_id}-{field}")
          for field, kind, ddf in TABLES for case_id in _cases_with(field)]


def _skip_if_skipped(case: dict, field: str) -> None:
    entry = case["lmerTest"][field]
    if isinstance(entry, dict) and "skipped" in entry:
        pytest.skip(f"lmerTest reference skipped: {entry['skipped']}")


@pytest.mark.parametrize("case_id, field, kind, ddf", PARAMS)
def test_lmertest_table_at_lme4_theta(case_id, field, kind, ddf):
    case, _, _ = fitted_case(case_id)
    _skip_if_skipped(case, field)
    _compare(_our_table(at_lme4_theta(case_id), kind, ddf), _reference_rows(case, field, kind),
             ddf, 1.0, True, f"{case_id} {field} at lme4's theta")


@pytest.mark.parametrize("case_id, field, kind, ddf", PARAMS)
def test_lmertest_table_at_our_optimum(case_id, field, kind, ddf):
    case, _, m = fitted_case(case_id)
    _skip_if_skipped(case, field)
    factor = 10.0 if stopped_short(m, case["logLik"]["value"]) else 1.0
    _compare(_our_table(m, kind, ddf), _reference_rows(case, field, kind), ddf, factor, False,
             f"{case_id} {field} at our optimum")


def test_intercept_only_models_have_empty_anova():
    case, _, m = fitted_case("dyestuff_reml")
    assert "anova_type3_satterthwaite" not in case["lmerTest"]
    table = ftests.anova(m)
    assert table.empty and list(table.columns) == F_COLUMNS


# ---- Satterthwaite machinery -------------------------------------------------------------------
def test_richardson_derivatives_are_exact_on_polynomials():
    def f(x):
        return 3 * x[0] ** 2 * x[1] + x[1] ** 4 - 2 * x[0] * x[1] + 5

    x = np.array([0.7, -1.3])
    H = sat.richardson_hessian(f, x)
    expected = np.array([[6 * x[1], 6 * x[0] - 2], [6 * x[0] - 2, 12 * x[1] ** 2]])
    np.testing.assert_allclose(H, expected, rtol=1e-9)
    J = sat.richardson_jacobian(lambda x: np.array([x[0] ** 3, x[0] * x[1]]), x)
    np.testing.assert_allclose(J, [[3 * x[0] ** 2, 0.0], [x[1], x[0]]], rtol=1e-9)


def test_f_test_ddf_rule():
    assert sat.f_test_ddf(np.array([10.0])) == 10.0
    assert sat.f_test_ddf(np.array([5.0, 5.0])) == 5.0
    assert sat.f_test_ddf(np.array([1.5, 30.0])) == 2.0
    nu = np.array([8.0, 20.0])
    E = np.sum(nu / (nu - 2))
    assert sat.f_test_ddf(nu) == pytest.approx(2 * E / (E - 2))


def test_insteval_satterthwaite_is_cheap():
    """q = 4114: each factorization costs ~50 ms, so the count of evaluations matters."""
    _, _, m = fitted_case("insteval_ml")
    assert sat.varpar_derivatives(m).evaluations < 150


def test_derivatives_leave_the_fitted_workspace_alone():
    case, _, m = fitted_case("sleepstudy_reml")
    other = m.at_theta(m.theta * 1.01)          # a new result object: nothing cached for it
    before = m.model.L.xx.copy()
    sat.varpar_derivatives(other)
    kr.kenward_roger_info(other)
    np.testing.assert_array_equal(m.model.L.xx, before)
    assert m.model.L.pwrss() == pytest.approx(m.pwrss, rel=1e-12)


def test_derivatives_are_cached_per_result():
    _, _, m = fitted_case("ergostool_reml")
    assert sat.varpar_derivatives(m) is sat.varpar_derivatives(m)
    assert kr.kenward_roger_info(m) is kr.kenward_roger_info(m)


# ---- Kenward-Roger: dense pbkrtest oracle ------------------------------------------------------
def dense_pbkrtest(result, weights: str = "pbkrtest") -> dict:
    """pbkrtest 0.5.2's ``vcovAdj`` and ``Lb_ddf``, literally, with the n x n V.

    V = sum gamma_r G_r: one G = Z_i (I (x) E_ab) Z_i' per lower-triangle entry of each term's
    covariance (column-major, as ``VarCorr(m)[[i]][lower.tri(, diag = TRUE)]``), then sigma^2 with
    G = I (pbkrtest) or W^{-1} (``weights="model"``). Phi is the fit's vcov.
    """
    design = result.rows
    X = design.X
    n = X.shape[0]
    G, gamma = [], []
    for t, S in zip(design.terms, result.covariance_matrices()):
        Z = dense_z(t.refs, t.z, t.n_levels)
        for b in range(t.p):
            for a in range(b, t.p):
                E = np.zeros((t.p, t.p))
                E[a, b] = E[b, a] = 1.0
                G.append(Z @ np.kron(np.eye(t.n_levels), E) @ Z.T)
                gamma.append(S[a, b])
    G.append(np.eye(n) if weights == "pbkrtest" else np.diag(1.0 / design.weights))
    gamma.append(result.sigma**2)
    Sigma = sum(g * Gr for g, Gr in zip(gamma, G))
    SigmaInv = np.linalg.inv(Sigma)
    Phi = np.asarray(result.vcov, float)
    g_n = len(G)
    TT = SigmaInv @ X
    HH = [Gr @ SigmaInv for Gr in G]
    OO = [H @ X for H in HH]
    PP = [-(O.T @ TT) for O in OO]
    QQ = [[OO[r].T @ SigmaInv @ OO[s] for s in range(g_n)] for r in range(g_n)]
    Ktrace = np.array([[np.sum(HH[r].T * HH[s]) for s in range(g_n)] for r in range(g_n)])
    IE2 = np.array([[Ktrace[r, s] - 2 * np.sum(Phi * QQ[r][s])
                     + np.sum((Phi @ PP[r]) * (PP[s] @ Phi)) for s in range(g_n)]
                    for r in range(g_n)])
    W = 2 * np.linalg.inv(IE2)
    U = sum(W[r, s] * (QQ[r][s] - PP[r] @ Phi @ PP[s]) for r in range(g_n) for s in range(g_n))
    return {"Phi": Phi, "PhiA": Phi + 2 * Phi @ U @ Phi, "P": np.array(PP), "W": W}


def dense_lb_ddf(L: np.ndarray, oracle: dict) -> float:
    """pbkrtest's ``Lb_ddf`` for L (q, p)."""
    Phi, P, W = oracle["Phi"], oracle["P"], oracle["W"]
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    A1 = A2 = 0.0
    for i in range(len(P)):
        for j in range(i, len(P)):
            e = 1 if i == j else 2
            ui = Theta @ Phi @ P[i] @ Phi
            uj = Theta @ Phi @ P[j] @ Phi
            A1 += e * W[i, j] * np.trace(ui) * np.trace(uj)
            A2 += e * W[i, j] * np.sum(ui * uj.T)
    q = L.shape[0]
    B = (A1 + 6 * A2) / (2 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    c1, c2, c3 = (g / (3 * q + 2 * (1 - g)), (q - g) / (3 * q + 2 * (1 - g)),
                  (q + 2 - g) / (3 * q + 2 * (1 - g)))
    rho = 1 / q * ((1 - A2 / q) / (1 - c2 * B)) ** 2 * (1 + c1 * B) / (1 - c3 * B)
    return 4 + (q + 2) / (q * rho - 1)


def _simulated_crossed_vector_terms() -> pd.DataFrame:
    """Two crossed factors, each with a random intercept and slope, and a factor fixed effect."""
    rng = np.random.default_rng(7)
    g1, g2 = np.meshgrid(np.arange(8), np.arange(6), indexing="ij")
    g1, g2 = np.repeat(g1.ravel(), 2), np.repeat(g2.ravel(), 2)
    n = g1.size
    x = rng.normal(size=n)
    f = rng.integers(0, 3, n)
    b1 = rng.normal(size=(8, 2)) * [1.0, 0.5]
    b2 = rng.normal(size=(6, 2)) * [0.8, 0.6]
    y = (1 + 0.5 * x + 0.3 * f + b1[g1, 0] + b1[g1, 1] * x + b2[g2, 0] + b2[g2, 1] * x
         + rng.normal(scale=0.7, size=n))
    return pd.DataFrame({"y": y, "x": x, "f": pd.Categorical([f"f{v}" for v in f]),
                         "g1": pd.Categorical([f"a{v}" for v in g1]),
                         "g2": pd.Categorical([f"b{v}" for v in g2])})


def _oracle_fit(name: str):
    if name == "crossed_vector_terms":
        with pytest.warns(mm.SingularFitWarning):       # the simulated slopes' correlation
            return mm.lmer("y ~ x + f + (x | g1) + (x | g2)", _simulated_crossed_vector_terms())
    if name == "orthodont_factor_by_age":
        return mm.lmer("distance ~ age * Sex + (age | Subject)", mm.datasets.load("Orthodont"))
    return fitted_case(name)[2]


ORACLE_CASES = ["sleepstudy_reml", "ergostool_reml", "penicillin_crossed", "pastes_nested",
                "sleepstudy_uncorr_two_terms", "cbpp_weighted_lmm_reml",
                "dyestuff2_reml_singular", "orthodont_factor_by_age", "crossed_vector_terms"]


@pytest.mark.parametrize("name", ORACLE_CASES)
@pytest.mark.parametrize("weights", ["pbkrtest", "model"])
def test_blocked_kenward_roger_matches_dense_pbkrtest(name, weights):
    result = _oracle_fit(name)
    if weights == "model" and not result.info.has_weights:
        pytest.skip("the two weight conventions coincide without prior weights")
    oracle = dense_pbkrtest(result, weights)
    info = kr.kenward_roger_info(result, weights=weights)
    scale = np.max(np.abs(oracle["PhiA"]))
    np.testing.assert_allclose(info.vcov_adj, oracle["PhiA"], rtol=1e-8, atol=1e-10 * scale)
    np.testing.assert_allclose(info.W, oracle["W"], rtol=1e-7,
                               atol=1e-9 * np.max(np.abs(oracle["W"])))
    p = result.beta.size
    for i in range(p):
        c = np.eye(p)[i]
        ddf = kr.t_test(info, c)[2]
        assert ddf == pytest.approx(dense_lb_ddf(c[None, :], oracle), rel=1e-7)
    if p > 2:
        K = np.eye(p)[1:]
        assert kr.f_test(info, K)[3] == pytest.approx(dense_lb_ddf(K, oracle), rel=1e-7)


def test_kenward_roger_of_an_ml_fit_uses_the_reml_refit():
    ml = fitted_case("sleepstudy_ml")[2]
    reml = fitted_case("sleepstudy_reml")[2]
    info_ml, info_reml = kr.kenward_roger_info(ml), kr.kenward_roger_info(reml)
    assert info_ml.refitted and not info_reml.refitted
    np.testing.assert_allclose(info_ml.beta, info_reml.beta, rtol=1e-6)
    np.testing.assert_allclose(info_ml.vcov_adj, info_reml.vcov_adj, rtol=1e-4)
    table = ftests.coefficients(ml, ddf="kenward-roger")
    np.testing.assert_allclose(table["df"], ftests.coefficients(reml, "kenward-roger")["df"],
                               rtol=1e-4)


def test_pbkrtest_ignores_prior_weights_in_v():
    """pbkrtest's df for the weighted cbpp fit (4046 and more) come from V without weights;
    with the model's own V they are close to Satterthwaite's."""
    _, _, m = fitted_case("cbpp_weighted_lmm_reml")
    pbkr = kr.kenward_roger_info(m, weights="pbkrtest")
    model = kr.kenward_roger_info(m, weights="model")
    c = np.eye(m.beta.size)[1]
    assert kr.t_test(pbkr, c)[2] > 1000
    assert kr.t_test(model, c)[2] < 100
    with pytest.raises(ValueError, match="pbkrtest, model"):
        kr.kenward_roger_info(m, weights="unit")


# ---- public functions --------------------------------------------------------------------------
def test_coefficients_residual_and_none():
    _, _, m = fitted_case("sleepstudy_reml")
    res = ftests.coefficients(m, ddf="residual")
    assert list(res.columns) == T_COLUMNS
    assert np.all(res["df"] == m.nobs - m.beta.size)
    t = m.beta / np.sqrt(np.diag(m.vcov))
    np.testing.assert_allclose(res["Pr(>|t|)"], 2 * st.t.sf(np.abs(t), m.nobs - 2))
    none = ftests.coefficients(m, ddf="none")
    assert list(none.columns) == ["Estimate", "Std. Error", "t value"]
    assert list(none.index) == ["(Intercept)", "Days"]


def test_bad_ddf_lists_the_valid_names():
    _, _, m = fitted_case("sleepstudy_reml")
    with pytest.raises(ValueError, match="'satterthwaite', 'kenward-roger', 'residual', 'none'"):
        ftests.coefficients(m, ddf="welch")
    with pytest.raises(ValueError, match="'lme4'"):
        ftests.anova(m, ddf="welch")
    with pytest.raises(ValueError, match=r'type must be 3 \("III"\), 2 \("II"\) or 1'):
        ftests.anova(m, type=4)


def test_ddf_names_are_forgiving_about_case_and_separator():
    _, _, m = fitted_case("sleepstudy_reml")
    pd.testing.assert_frame_equal(ftests.coefficients(m, "Kenward_Roger"),
                                  ftests.coefficients(m, "kenward-roger"))


def test_contrast_of_wrong_width_names_both_widths():
    _, _, m = fitted_case("ergostool_reml")
    with pytest.raises(MixedModelsError, match=r"expected width 4, given 3"):
        ftests.contrast(m, [0, 1, -1])
    with pytest.raises(MixedModelsError, match=r"expected width 4, given 5"):
        m.contrast(np.zeros((2, 5)))
    with pytest.raises(MixedModelsError, match="TypeT9"):
        ftests.contrast(m, pd.DataFrame({"TypeT9": [1.0]}))


@pytest.mark.parametrize("ddf", ["satterthwaite", "kenward-roger"])
def test_one_row_contrast_is_a_t_test_like_the_coefficient_table(ddf):
    _, _, m = fitted_case("ergostool_reml")
    one = ftests.contrast(m, [0, 1, 0, 0], ddf=ddf)
    assert list(one.columns) == T_COLUMNS
    pd.testing.assert_series_equal(one.iloc[0], ftests.coefficients(m, ddf).loc["TypeT2"],
                                   check_names=False)
    diff = ftests.contrast(m, pd.DataFrame({"TypeT2": [1.0], "TypeT3": [-1.0]}, index=["T2-T3"]),
                           ddf=ddf)
    assert list(diff.index) == ["T2-T3"]
    assert diff["Estimate"].iloc[0] == pytest.approx(m.beta[1] - m.beta[2])


@pytest.mark.parametrize("ddf", ["satterthwaite", "kenward-roger"])
def test_several_row_contrast_is_the_anova_f_test(ddf):
    _, _, m = fitted_case("ergostool_reml")
    table = ftests.contrast(m, np.eye(4)[1:], ddf=ddf)
    assert list(table.columns) == F_COLUMNS
    pd.testing.assert_series_equal(table.iloc[0], ftests.anova(m, ddf=ddf).loc["Type"],
                                   check_names=False)


def test_type3_anova_does_not_depend_on_the_contrast_coding():
    """cake: temperature is an ordered factor (contr.poly); as unordered (contr.treatment) the
    model is the same, and so must be lmerTest's type III hypotheses."""
    cake = mm.datasets.load("cake")
    formula = "angle ~ recipe * temperature + (1 | recipe:replicate)"
    ordered = mm.lmer(formula, cake)
    plain = cake.assign(temperature=cake["temperature"].cat.as_unordered())
    treatment = mm.lmer(formula, plain)
    assert "temperature.L" in ordered.fixef.index and "temperature185" in treatment.fixef.index
    a, b = ftests.anova(ordered), ftests.anova(treatment)
    assert list(a.index) == ["recipe", "temperature", "recipe:temperature"]
    np.testing.assert_allclose(a["F value"], b["F value"], rtol=RTOL["F"])
    np.testing.assert_allclose(a["DenDF"], b["DenDF"], rtol=RTOL["satterthwaite df"])
    assert list(a["NumDF"]) == [2, 5, 10]


def test_type1_anova_is_sequential():
    """Type I tests a term after the terms before it: the first term's hypothesis differs from
    type III's, the last term's does not (with no interactions)."""
    _, _, m = fitted_case("sleepstudy_reml")
    arabidopsis = mm.lmer("log(total.fruits + 1) ~ status + nutrient + (1 | popu)",
                          mm.datasets.load("Arabidopsis"))
    t1, t3 = ftests.anova(arabidopsis, type=1), ftests.anova(arabidopsis, type=3)
    assert t1.loc["nutrient", "F value"] == pytest.approx(t3.loc["nutrient", "F value"], rel=1e-8)
    assert t1.loc["status", "F value"] != pytest.approx(t3.loc["status", "F value"], rel=1e-3)
    lme4 = ftests.anova(m, ddf="lme4")
    assert list(lme4.columns) == ["npar", "Sum Sq", "Mean Sq", "F value"]


# ---- type II ----------------------------------------------------------------------------------
CAKE = "angle ~ recipe * temperature + (1 | recipe:replicate)"


def _unbalanced_cake():
    cake = mm.datasets.load("cake")
    drop = np.random.default_rng(1).choice(len(cake), 60, replace=False)
    return cake.drop(index=drop)


def _type2_by_definition(result, term: str, containing: list[str]) -> np.ndarray:
    """The type II hypothesis of a term contained in others, from its definition: the effect of
    T's columns X_T after the unrelated columns X_U, ``X_T' M_U [X_T X_C] beta = 0`` with
    M_U = I - P_U and X_C the columns of the terms containing T (zero on X_U)."""
    X = result.rows.X
    columns = ftests._term_columns(result)
    T, C = columns[term], [j for t in containing for j in columns[t]]
    U = [j for j in range(X.shape[1]) if j not in T + C]
    resid = X[:, T] - X[:, U] @ np.linalg.lstsq(X[:, U], X[:, T], rcond=None)[0]
    K = np.zeros((len(T), X.shape[1]))
    K[:, T + C] = resid.T @ X[:, T + C]
    return K


def test_type2_equals_type3_on_a_balanced_design():
    """cake is balanced (15 replicates of every recipe x temperature cell): the two types test
    the same hypotheses. (The type III matrices are zapsmall-ed at 7 digits, hence 1e-6.)"""
    m = mm.lmer(CAKE, mm.datasets.load("cake"))
    t2, t3 = m.anova(type=2), m.anova(type="III")
    assert list(t2.index) == list(t3.index) and list(t2["NumDF"]) == [2, 5, 10]
    for column in ("Sum Sq", "Mean Sq", "DenDF", "F value", "Pr(>F)"):
        np.testing.assert_allclose(t2[column], t3[column], rtol=1e-6, err_msg=column)
    pd.testing.assert_frame_equal(m.anova(type="II"), t2)


def test_type2_on_an_unbalanced_design_follows_the_contrast_definition():
    m = mm.lmer(CAKE, _unbalanced_cake())
    table = m.anova(type=2)
    hypotheses = ftests.type2_hypotheses(m)
    columns = ftests._term_columns(m)
    # the highest-order term: its own coefficients
    np.testing.assert_array_equal(hypotheses["recipe:temperature"],
                                  np.eye(m.beta.size)[columns["recipe:temperature"]])
    for term in ("recipe", "temperature"):
        K = _type2_by_definition(m, term, ["recipe:temperature"])
        H = hypotheses[term]
        # the same hypothesis: the rows span the same space
        assert np.linalg.matrix_rank(np.vstack([H, K])) == np.linalg.matrix_rank(K) == len(H)
        direct = m.contrast(K)
        assert table.loc[term, "NumDF"] == direct["NumDF"].iloc[0]
        assert table.loc[term, "F value"] == pytest.approx(direct["F value"].iloc[0], rel=1e-9)
        # Satterthwaite's ddf of a multi-row test depends on the basis of the rows (lmerTest's
        # as well), so only closely
        assert table.loc[term, "DenDF"] == pytest.approx(direct["DenDF"].iloc[0], rel=1e-3)
    # unbalanced: recipe after temperature is neither type III's nor type I's (recipe first)
    # hypothesis; temperature after recipe and before the interaction is type I's; the last
    # term is the same in types I and II
    t1, t3 = m.anova(type=1), m.anova(type=3)
    assert table.loc["recipe", "F value"] != pytest.approx(t3.loc["recipe", "F value"], rel=1e-3)
    assert table.loc["recipe", "F value"] != pytest.approx(t1.loc["recipe", "F value"], rel=1e-3)
    for term in ("temperature", "recipe:temperature"):
        assert table.loc[term, "F value"] == pytest.approx(t1.loc[term, "F value"], rel=1e-9)


def test_type2_with_a_covariate_and_kenward_roger():
    """age is contained in age:Sex (same covariate); Sex is not (lmerTest's containment), so
    Sex gets its own coefficient's test; every hypothesis has one row, so the df agree too."""
    m = mm.lmer("distance ~ age * Sex + (age | Subject)", mm.datasets.load("Orthodont"))
    hypotheses = ftests.type2_hypotheses(m)
    p = m.beta.size
    np.testing.assert_array_equal(hypotheses["Sex"], np.eye(p)[[2]])
    K = _type2_by_definition(m, "age", ["age:Sex"])
    for ddf in ("satterthwaite", "kenward-roger"):
        table = m.anova(type=2, ddf=ddf)
        t_test = m.contrast(K[0], ddf=ddf)          # one row: a t test, F = t^2
        assert table.loc["age", "DenDF"] == pytest.approx(t_test["df"].iloc[0], rel=1e-8)
        assert table.loc["age", "F value"] == pytest.approx(t_test["t value"].iloc[0] ** 2,
                                                            rel=1e-8)
        assert table.loc["Sex", "F value"] == pytest.approx(
            m.anova(type=3, ddf=ddf).loc["Sex", "F value"], rel=1e-6)


def test_summary_fixed_effects_block_matches_lmertest_line_by_line():
    """R 4.2.2, lmerTest 3.1-3 (LANG=C):
    print(summary(lmer(Reaction ~ Days + (Days | Subject), sleepstudy)))."""
    r_block = [
        "Fixed effects:",
        "            Estimate Std. Error      df t value Pr(>|t|)    ",
        "(Intercept)  251.405      6.825  17.000  36.838  < 2e-16 ***",
        "Days          10.467      1.546  17.000   6.771 3.26e-06 ***",
        "---",
        "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1",
    ]
    _, _, m = fitted_case("sleepstudy_reml")
    lines = str(m.summary()).split("\n")
    start = lines.index("Fixed effects:")
    assert lines[start:start + len(r_block)] == r_block
    assert lines[0].startswith("Linear mixed model fit by REML. t-tests use Satterthwaite's")
