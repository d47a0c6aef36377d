"""nlme's residual structures: ``mm.lmer(correlation=, variance=)`` against nlme 3.1-162.

The public cases (tests/fixtures/structured, README tolerances: logLik 1e-3 absolute or
higher, fixef and sigma 1e-4 relative, SEs, sdcor and structure parameters 2e-3, fitted 1e-4)
and extra nlme fits (tests/fixtures/structured_extra, made by
tools/r/make_structured_extra_fixtures.R: CAR(1) with varPower, AR(1) over positions with
gaps with varIdent, compound symmetry alone and with varIdent, an ML fit, prior weights as
nlme's varFixed(~ 1/w)). The objective is also checked against a dense likelihood from the
definition of R, in both the precomputed (n-free) and the per-evaluation layouts.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.errors import DataError, FormulaError, MixedModelsError
from mixedmodels.residual import crossprod as residual_crossprod
from oracles import dense_objective, dense_z

HERE = Path(__file__).parent
PUBLIC = HERE / "fixtures" / "structured"
EXTRA = HERE / "fixtures" / "structured_extra"
LOGLIK_ABS, FIXEF_REL, SECOND_REL = 1e-3, 1e-4, 2e-3

# The public cases as our calls (the fixtures hold nlme's calls).
PUBLIC_CALLS = {
    "sleepstudy_ar1_resid": ("Reaction ~ Days + (1 | Subject)",
                             dict(correlation=mm.corAR1("~ Days | Subject"))),
    "ovary_ar1": ("follicles ~ sin(2*pi*Time) + cos(2*pi*Time) + diag(1 + sin(2*pi*Time) | Mare)",
                  dict(correlation=mm.corAR1("~ 1 | Mare"))),
    "bodyweight_car1": ("weight ~ Time * Diet + (Time | Rat)",
                        dict(correlation=mm.corCAR1("~ Time | Rat"))),
    "orthodont_varident": ("distance ~ age * Sex + (1 | Subject)",
                           dict(variance=mm.varIdent("~ 1 | Sex"))),
}
EXTRA_IDS = sorted(p.stem for p in EXTRA.glob("*.json") if p.stem != "public_normalized")
_FITS: dict = {}


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def public_fit(case_id: str):
    if case_id not in _FITS:
        case = _json(PUBLIC / f"{case_id}.json")
        formula, kwargs = PUBLIC_CALLS[case_id]
        assert formula.split("+ (")[0].split(" + diag")[0] in case["formula"]
        _FITS[case_id] = case, mm.lmer(formula, mm.datasets.load(case["dataset"]), **kwargs)
    return _FITS[case_id]


def extra_data(case_id: str) -> pd.DataFrame:
    if case_id.startswith("sleepstudy"):
        data = mm.datasets.load("sleepstudy")
        data["w"] = 1.0 + data["Days"] % 3
        if "gaps" in case_id:
            data = data[~data["Days"].isin([2, 5])].copy()
            data["phase"] = pd.Categorical(np.where(data["Days"] < 5, "early", "late"),
                                           categories=["early", "late"])
        return data
    return mm.datasets.load("Orthodont" if case_id.startswith("orthodont") else "BodyWeight")


def _spec(text: str | None):
    if text is None:
        return None
    name, form = text.split("(", 1)
    return getattr(mm, name)(form.strip(")").strip("'"))


def extra_fit(case_id: str):
    if case_id not in _FITS:
        case = _json(EXTRA / f"{case_id}.json")
        _FITS[case_id] = case, mm.lmer(case["formula"], extra_data(case_id), reml=case["REML"],
                                       weights=case["weights"],
                                       correlation=_spec(case["correlation"]),
                                       variance=_spec(case["variance"]))
    return _FITS[case_id]


# ---- the public nlme cases -------------------------------------------------------------------
@pytest.mark.parametrize("case_id", list(PUBLIC_CALLS))
def test_public_likelihood_and_fixed_effects(case_id):
    case, m = public_fit(case_id)
    gain = m.loglik - case["logLik"]
    print(f"{case_id}: logLik {m.loglik:.9f}, nlme {case['logLik']:.9f}, ours higher by "
          f"{gain:.2e}")
    assert -LOGLIK_ABS <= gain < 1e-2
    assert m.reml_criterion == pytest.approx(case["REMLcrit"], abs=2 * LOGLIK_ABS)
    assert m.aic == pytest.approx(case["AIC"], abs=2 * LOGLIK_ABS)
    # nlme's BIC of a REML fit uses log(n - p); ours log(n), as lme4's (and nlme's ML fits).
    npar, n, p = m.df, m.nobs, m.beta.size
    assert m.bic == pytest.approx(case["BIC"] - npar * math.log(n - p) + npar * math.log(n),
                                  abs=2 * LOGLIK_ABS)
    assert list(m.fixef.index) == list(case["fixef"])
    np.testing.assert_allclose(m.fixef.to_numpy(), list(case["fixef"].values()), rtol=FIXEF_REL)
    assert m.sigma == pytest.approx(case["sigma"], rel=FIXEF_REL)
    np.testing.assert_allclose(m.se.to_numpy(), list(case["se"].values()), rtol=SECOND_REL)
    np.testing.assert_allclose(m.fitted().to_numpy()[:20], case["fitted_first20"],
                               rtol=FIXEF_REL)


@pytest.mark.parametrize("case_id", list(PUBLIC_CALLS))
def test_public_structure_parameters_and_varcorr(case_id):
    case, m = public_fit(case_id)
    if "correlation" in case:
        assert m.correlation_params.to_dict() == pytest.approx(case["correlation"],
                                                               rel=SECOND_REL)
    else:
        assert m.correlation_params is None
    if "variance" in case:
        assert m.variance_params.to_dict() == pytest.approx(case["variance"], rel=SECOND_REL)
    else:
        assert m.variance_params is None
    vc = m.varcorr()
    ref = pd.DataFrame(case["varcorr"])
    assert list(vc["grp"]) == list(ref["grp"])
    np.testing.assert_allclose(vc["sdcor"].to_numpy(), ref["sdcor"].to_numpy(), rtol=SECOND_REL,
                               atol=1e-8)
    re = m.ranef(as_dict=True)
    group = next(iter(re))
    for row in case["ranef_first"]:
        values = [v for k, v in row.items() if k != "grp"]
        np.testing.assert_allclose(re[group].loc[row["grp"]].to_numpy()[:len(values)], values,
                                   rtol=SECOND_REL, atol=1e-6)


def test_public_normalized_and_pearson_residuals():
    ref = _json(EXTRA / "public_normalized.json")
    for case_id in PUBLIC_CALLS:
        _, m = public_fit(case_id)
        np.testing.assert_allclose(m.residuals("normalized").to_numpy()[:20],
                                   ref["normalized_first20"][case_id], rtol=SECOND_REL,
                                   atol=1e-4, err_msg=case_id)
        # nlme's Pearson residuals are ours (lme4's, over lambda) divided by sigma.
        np.testing.assert_allclose(m.residuals("pearson").to_numpy()[:20] / m.sigma,
                                   ref["pearson_first20"][case_id], rtol=SECOND_REL,
                                   atol=1e-4, err_msg=case_id)


def test_summary_reads_like_nlme():
    _, m = public_fit("sleepstudy_ar1_resid")
    text = str(m.summary())
    block = text[text.index("Correlation Structure"):text.index("Fixed effects")]
    assert block.splitlines() == ["Correlation Structure: AR(1)", " Formula: ~Days | Subject ",
                                  " Parameter estimate(s):", "      Phi ",
                                  f"{m.correlation_params['Phi']:.7f} ", ""]
    _, m = public_fit("orthodont_varident")
    text = str(m.summary())
    assert ("Variance function:\n Structure: Different standard deviations per stratum\n"
            " Formula: ~1 | Sex \n Parameter estimates:\n     Male    Female \n"
            "1.0000000 0.4678") in text
    assert m.theta_names == ["Subject.(Intercept)", "Residual.log_Female"]


# ---- the extra nlme fits ---------------------------------------------------------------------
@pytest.mark.parametrize("case_id", EXTRA_IDS)
def test_extra_cases(case_id):
    case, m = extra_fit(case_id)
    assert m.loglik >= case["logLik"] - LOGLIK_ABS
    assert m.loglik == pytest.approx(case["logLik"], abs=1e-2)
    assert m.nobs == case["nobs"]
    np.testing.assert_allclose(m.fixef.to_numpy(), list(case["fixef"].values()), rtol=FIXEF_REL)
    np.testing.assert_allclose(m.se.to_numpy(), list(case["se"].values()), rtol=SECOND_REL)
    np.testing.assert_allclose(m.fitted().to_numpy()[:20], case["fitted_first20"],
                               rtol=FIXEF_REL)
    if case["correlation_params"]:
        assert m.correlation_params.to_dict() == pytest.approx(case["correlation_params"],
                                                               rel=SECOND_REL, abs=1e-6)
    if case["power"] is not None:
        assert m.variance_params["power"] == pytest.approx(case["power"], rel=SECOND_REL)
    if case["stratum_sd"]:
        ratios = m.model.natural(m.theta)[1]
        ours = {k: m.sigma * v for k, v in ratios.items()}
        assert ours == pytest.approx(case["stratum_sd"], rel=SECOND_REL)
    elif case["power"] is None:
        assert m.sigma == pytest.approx(case["sigma"], rel=FIXEF_REL)
    re_sd = m.varcorr().query("var2.isna() and grp != 'Residual'")["sdcor"].to_numpy()
    np.testing.assert_allclose(re_sd, list(case["re_sd"].values()), rtol=SECOND_REL)
    np.testing.assert_allclose(m.residuals("normalized").to_numpy()[:20],
                               case["normalized_first20"], rtol=SECOND_REL, atol=1e-4)
    np.testing.assert_allclose(m.residuals("pearson").to_numpy()[:20] / m.sigma,
                               case["pearson_first20"], rtol=SECOND_REL, atol=1e-4)


def test_anova_compares_residual_structures():
    """The AR(1) model's ML refit is nlme's ML fit; mm.anova tests it against lme4's models."""
    ml = _json(EXTRA / "sleepstudy_ar1_ml.json")
    data = mm.datasets.load("sleepstudy")
    plain = mm.lmer("Reaction ~ Days + (1 | Subject)", data)
    _, ar1 = public_fit("sleepstudy_ar1_resid")
    with pytest.warns(UserWarning, match="refitting"):
        table = mm.anova(plain, ar1, names=["plain", "ar1"])
    assert list(table["npar"]) == [4, 5]
    assert table.loc["ar1", "logLik"] == pytest.approx(ml["logLik"], abs=1e-6)
    assert table.loc["ar1", "Chisq"] > 40


# ---- the objective against a dense likelihood ------------------------------------------------
def _dense_R(m, theta, times: np.ndarray) -> np.ndarray:
    """sigma^-2 Var(e) from nlme's definitions, for the fit's layout at theta: correlation
    phi^|t_i - t_j| (AR(1) over positions, CAR(1)) or rho (compound symmetry) within a group,
    SD multipliers lambda and prior weights w."""
    layout, n = m.residual_structure, m.nobs
    w = np.asarray(m.rows.weights, dtype=float)
    lam = m.model.row_sd_scale(theta)
    value = layout.correlation_value(theta[m.model.n_re])
    group = layout.cor.group
    same = group[:, None] == group[None, :]
    if isinstance(layout.cor.spec, mm.corCompSymm):
        C = np.where(same, value, 0.0) + (1.0 - value) * np.eye(n)
    else:
        C = np.where(same, value ** np.abs(times[:, None] - times[None, :]), 0.0)
    scale = lam / np.sqrt(w)
    return C * np.outer(scale, scale)


@pytest.mark.parametrize("structure", ["ar1_rows", "ar1_gaps", "car1_varpower", "cs_varident",
                                       "ar1_weights"])
@pytest.mark.parametrize("precomputed", [True, False])
def test_objective_equals_dense_likelihood(structure, precomputed, monkeypatch):
    # Both layouts on every structure: all classes as pieces, or sums over rows per evaluation.
    monkeypatch.setattr(residual_crossprod, "MAX_CLASSES", 10**6 if precomputed else 0)
    rng = np.random.default_rng(5)
    n_g = 12
    sizes = rng.integers(2, 7, size=n_g)
    g = np.repeat(np.arange(n_g), sizes)
    t = np.concatenate([np.sort(rng.choice(np.arange(12), size=s, replace=False)) for s in sizes])
    if structure == "car1_varpower":
        t = t + rng.uniform(0, 0.5, size=t.size)
    shuffle = rng.permutation(g.size)       # groups and times in no particular row order
    g, t = g[shuffle], t[shuffle]
    data = pd.DataFrame({"y": rng.normal(size=g.size) + g % 3, "x": rng.normal(size=g.size),
                         "t": t, "g": pd.Categorical(g.astype(str)),
                         "s": pd.Categorical(np.where(rng.random(g.size) < 0.5, "a", "b")),
                         "w": rng.uniform(0.5, 2.0, size=g.size)})
    kwargs, weights = {}, None
    if structure in ("ar1_rows",):
        kwargs["correlation"] = mm.corAR1("~ 1 | g")
    elif structure in ("ar1_gaps", "ar1_weights"):
        kwargs["correlation"] = mm.corAR1("~ t | g")
        weights = "w" if structure == "ar1_weights" else None
    elif structure == "car1_varpower":
        kwargs["correlation"] = mm.corCAR1("~ t | g")
        kwargs["variance"] = mm.varPower("~ t")
    else:
        kwargs["correlation"] = mm.corCompSymm("~ 1 | g")
        kwargs["variance"] = mm.varIdent("~ 1 | s")
    data["t"] = data["t"] + (1.0 if structure == "car1_varpower" else 0.0)
    with warnings.catch_warnings():
        # A random intercept next to compound symmetry is not identified: a singular fit.
        warnings.simplefilter("ignore", mm.SingularFitWarning)
        m = mm.lmer("y ~ x + (1 | g)", data, weights=weights, **kwargs)
    assert m.model.pieces.precomputed == precomputed
    times = data["t"].to_numpy(dtype=float)
    if structure == "ar1_rows":
        times = np.zeros(g.size)
        for level in np.unique(g):
            rows = np.flatnonzero(g == level)
            times[rows] = np.arange(rows.size)
    d = m.rows
    Z = dense_z(d.terms[0].refs, np.asarray(d.terms[0].z), d.terms[0].n_levels)
    for shift in (0.0, 0.3):
        theta = np.array(m.theta) + shift
        value = m.model.objective(theta)
        Lam = np.kron(np.eye(m.terms[0].n_levels), m.terms[0].template(theta[:1]))
        expected = dense_objective(d.X, d.y, [Z], [Lam], reml=True,
                                   R=_dense_R(m, theta, times))
        assert value == pytest.approx(expected, rel=1e-10), shift
    m.model.objective(m.theta)


# ---- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", [mm.corAR1("~ Days | Subject"), mm.corCAR1("~ Days | Subject")])
def test_two_rows_at_one_time_are_refused(spec, sleepstudy):
    data = sleepstudy.copy()
    data.loc[1, "Days"] = 0
    with pytest.raises(DataError, match="two rows of group '308' have the same time Days = 0"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", data, correlation=spec)


def test_varident_stratum_with_one_row(sleepstudy):
    data = sleepstudy.copy()
    data["lab"] = pd.Categorical(np.where(np.arange(len(data)) == 7, "solo", "main"),
                                 categories=["main", "solo"])
    with pytest.raises(DataError, match="varIdent: the stratum 'solo' of 'lab' has 1 row"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", data, variance=mm.varIdent("~ 1 | lab"))


def test_corar1_needs_integer_positions(sleepstudy):
    data = sleepstudy.copy()
    data["t"] = data["Days"] * 0.5
    with pytest.raises(DataError, match="integer positions.*corCAR1\\('~ t \\| Subject'\\)"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", data, correlation=mm.corAR1("~ t | Subject"))


def test_residual_groups_must_be_nested(sleepstudy):
    data = sleepstudy.copy()
    data["day"] = pd.Categorical(data["Days"].astype(str))
    with pytest.raises(DataError, match="must be nested in every random-effects grouping"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", data, correlation=mm.corAR1("~ 1 | day"))


def test_structures_in_the_wrong_argument_and_bad_forms(sleepstudy):
    with pytest.raises(DataError, match="is a variance function: pass it as variance="):
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy, correlation=mm.varIdent("~1|Days"))
    with pytest.raises(DataError, match="is a correlation structure: pass it as correlation="):
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy, variance=mm.corAR1("~ 1 | Subject"))
    with pytest.raises(DataError, match="correlation= takes mm.corAR1"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy, correlation="AR1")
    with pytest.raises(FormulaError, match="form must read"):
        mm.corAR1("Days ~ Subject")
    with pytest.raises(DataError, match="varPower: 'Days' must be numeric, finite and nonzero"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy, variance=mm.varPower("~ Days"))


def test_inference_that_needs_more_than_the_cross_products_says_so():
    _, m = public_fit("sleepstudy_ar1_resid")
    for call in (lambda: m.coefficients(ddf="kenward-roger"), m.profile, m.ranova,
                 lambda: m.bootstrap(2), m.hatvalues):
        with pytest.raises(MixedModelsError, match="residual correlation or variance structure"):
            call()


def test_rows_missing_a_structure_column_are_dropped_with_a_warning(sleepstudy):
    data = sleepstudy.copy()
    data["t"] = data["Days"].astype(float)
    data.loc[[3, 40], "t"] = np.nan
    data.index = [f"r{i}" for i in range(len(data))]
    with pytest.warns(mm.DroppedRowsWarning, match="2 row\\(s\\) dropped.*residual structure"):
        m = mm.lmer("Reaction ~ Days + (1 | Subject)", data, correlation=mm.corAR1("~ t | Subject"))
    assert m.nobs == 178
    assert "r3" not in m.fitted().index and list(m.fitted().index[:3]) == ["r0", "r1", "r2"]


def test_weights_as_values_or_a_series_with_a_structure(sleepstudy):
    """Prior weights given as values are matched as without a structure (a Series by the
    data's row labels) and give nlme's varFixed fit."""
    case = _json(EXTRA / "sleepstudy_ar1_weights.json")
    data = sleepstudy.copy()
    data.index = [f"r{i}" for i in range(len(data))]
    w = pd.Series(1.0 + data["Days"].to_numpy() % 3, index=data.index)
    for weights in (w.to_numpy(), w.iloc[::-1]):
        m = mm.lmer("Reaction ~ Days + (1 | Subject)", data, weights=weights,
                    correlation=mm.corAR1("~ Days | Subject"))
        assert m.loglik == pytest.approx(case["logLik"], abs=1e-6)
        assert list(m.fitted().index[:2]) == ["r0", "r1"]


def test_corcar1_needs_times_and_compound_symmetry_needs_pairs(sleepstudy):
    with pytest.raises(DataError, match="corCAR1 needs the times"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy, correlation=mm.corCAR1("~ 1 | Subject"))
    data = sleepstudy.copy()
    data["row"] = pd.Categorical(np.arange(len(data)).astype(str))
    with pytest.raises(DataError, match="every group of 'row' has one row"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", data, correlation=mm.corCompSymm("~ 1 | row"))


def test_start_value_inside_the_parameter_range(sleepstudy):
    m = mm.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy,
                correlation=mm.corAR1("~ Days | Subject", value=0.5))
    _, ref = public_fit("sleepstudy_ar1_resid")
    assert m.loglik == pytest.approx(ref.loglik, abs=1e-6)
    with pytest.raises(DataError, match="value=1.2 is outside \\(-1, 1\\)"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy,
                correlation=mm.corAR1("~ Days | Subject", value=1.2))
