"""glmer with structured random-effects terms (diag, cs, ar1) against glmmTMB's Laplace fits.

Fixtures: tests/fixtures/glmer_structured (tools/r/make_glmer_structured_fixtures.R, glmmTMB
1.1.5 on R 4.2). glmmTMB and lme4 use the same Laplace approximation, so the deviances agree to
round-off; the SDs and correlations are compared as glmmTMB reports them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.covariance import AR1, CompoundSymmetry, Diagonal, Unstructured
from conftest import TOL_GLMM, assert_close

HERE = Path(__file__).parent / "fixtures" / "glmer_structured"
CASES = ["sim_binomial_ar1", "sim_binomial_cs", "sim_poisson_diag", "grouseticks_poisson_diag"]


def load_case(case_id: str) -> dict:
    return json.loads((HERE / f"{case_id}.json").read_text())


def case_data(case: dict) -> pd.DataFrame:
    if case["data"] == "sim.csv":
        return pd.read_csv(HERE / "sim.csv")
    data = mm.datasets.load("grouseticks")
    data["cHEIGHT"] = data["HEIGHT"] - data["HEIGHT"].mean()
    return data


_FITS: dict = {}


def fitted(case_id: str):
    if case_id not in _FITS:
        case = load_case(case_id)
        _FITS[case_id] = mm.glmer(case["formula"], case_data(case), family=case["family"])
    return _FITS[case_id]


def _sd_and_cor(fit) -> tuple[np.ndarray, np.ndarray]:
    """(p,) SDs and (p, p) correlation matrix of the single term's covariance."""
    S = fit.covariance_matrices()[0]
    sd = np.sqrt(np.diag(S))
    return sd, S / np.outer(sd, sd)


@pytest.mark.parametrize("case_id", CASES)
def test_deviance_fixef_and_variance_components_match_glmmtmb(case_id):
    case, fit = load_case(case_id), fitted(case_id)
    assert fit.objective == pytest.approx(case["deviance"], rel=1e-9)
    assert_close(fit.beta, list(case["fixef"].values()), what="fixef", **TOL_GLMM["fixef"])
    sd, cor = _sd_and_cor(fit)
    assert_close(sd, list(case["sd"].values()), what="sd", **TOL_GLMM["theta"])
    assert_close(cor, np.asarray(case["correlation"], dtype=float), what="correlation",
                 **TOL_GLMM["theta"])
    assert not fit.fit.warnings


@pytest.mark.parametrize("formula", ["count ~ x + diag(1 + x | g)",
                                     "cbind(s, 4 - s) ~ t + diag(1 + x | g)"])
def test_diag_is_lme4s_double_bar(formula):
    data = pd.read_csv(HERE / "sim.csv")
    family = "poisson" if formula.startswith("count") else "binomial"
    structured = mm.glmer(formula, data, family=family)
    double_bar = mm.glmer(formula.replace("diag(1 + x | g)", "(1 + x || g)"), data,
                          family=family)
    assert structured.objective == pytest.approx(double_bar.objective, rel=1e-10)
    assert_close(structured.beta, double_bar.beta, what="fixef", **TOL_GLMM["fixef"])
    assert_close(np.sqrt(np.diag(structured.covariance_matrices()[0])),
                 [np.sqrt(S[0, 0]) for S in double_bar.covariance_matrices()],
                 what="sd", **TOL_GLMM["theta"])
    assert_close(structured.se, double_bar.se, rtol=1e-3, atol=0, what="se")


def test_results_show_the_structure():
    fit = fitted("sim_binomial_ar1")
    assert fit.theta_names == ["g.sd", "g.rho_t"]
    text = str(fit.summary())
    assert "ar1(0 + tf | g)" in text and "tft4 0.7689   0.8768   0.26 0.41 0.64" in text
    vc = fit.varcorr()
    assert list(vc["var1"][:4]) == ["tft1", "tft2", "tft3", "tft4"]
    ci = fit.confint(method="wald", old_names=False)
    assert list(ci.index[:2]) == ["sd_ar1|g", "rho_ar1|g"]
    re = fit.ranef()
    assert len(re) == 240
    data = pd.read_csv(HERE / "sim.csv")
    assert np.all(np.isfinite(fit.predict(data.head(8))))
    cs = fitted("sim_binomial_cs")
    assert cs.confint(method="wald", old_names=False).index[4] == "rho_cs|g"


def test_profile_bounds_follow_the_template():
    fit = fitted("sim_binomial_ar1")
    ci = fit.confint(method="profile", old_names=False, parm=[".sig02"])
    lo, hi = ci.loc["rho_ar1|g"]
    assert 0.0 < lo < 0.639 < hi < 1.0
    # the new-style name selects the same row
    wald = fit.confint(old_names=False, parm="rho_ar1|g")
    assert list(wald.index) == ["rho_ar1|g"]
    assert wald.equals(fit.confint(old_names=False, parm=".sig02"))


# ---- the templates' sign rectification ------------------------------------------------
def _covariance(template, theta):
    T = template.template(np.asarray(theta, dtype=float))
    return T @ T.T


@pytest.mark.parametrize("template, theta", [
    (Unstructured(3), [-0.5, 0.2, 0.1, 0.7, -0.3, -0.4]),
    (Diagonal(3), [-0.5, 0.7, -0.2]),
    (AR1(4), [-0.8, 0.4]),
    (CompoundSymmetry(3), [-0.5, -0.7, -0.2, 0.3]),
])
def test_rectify_keeps_the_covariance_and_the_bounds(template, theta):
    signs = template.rectify(np.asarray(theta))
    flipped = np.asarray(theta) * signs
    assert np.all(flipped >= template.lower())
    assert_close(_covariance(template, flipped), _covariance(template, theta), rtol=1e-14,
                 atol=1e-15, what="T T'")


def test_rectify_refuses_a_cs_point_outside_cs():
    # One negative SD negates the correlations of its column: not a cs covariance.
    assert CompoundSymmetry(3).rectify(np.array([-0.5, 0.7, 0.2, 0.3])) is None
    assert np.all(CompoundSymmetry(3).rectify(np.array([0.5, 0.7, 0.0, 0.3])) == 1.0)
