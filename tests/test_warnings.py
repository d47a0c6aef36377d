"""Warnings as lme4 gives them (issue #10, item 2): which, when, with what text, exported from
``mixedmodels``, and pointing at the caller's line (``w.filename`` is this file).

lme4's messages come from tools/r/make_edges_fixtures.R (tests/fixtures/edges/).
"""
from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TOL, load_case

import mixedmodels as mm
from mixedmodels.optimize import gradient_message, hessian_messages, newton_step

EDGES = Path(__file__).parent / "fixtures" / "edges"
SRC = Path(mm.__file__).parent
SINGULAR = "boundary (singular) fit: see is_singular in help(mixedmodels.LmerResult)"

WARNING_CLASSES = {
    "SingularFitWarning": "mixedmodels.lmm", "ConvergenceWarning": "mixedmodels.lmm",
    "ScaleWarning": "mixedmodels.checks", "DroppedRowsWarning": "mixedmodels.formula.design",
    "RankDeficiencyWarning": "mixedmodels.formula.design",
    "SeparationWarning": "mixedmodels.glmm", "VcovWarning": "mixedmodels.glmer_results",
    "NonIntegerWarning": "mixedmodels.families", "RefitMLWarning": "mixedmodels.inference.lrt",
    "HessianWarning": "mixedmodels.inference.satterthwaite",
    "ProfileWarning": "mixedmodels.inference.profile",
    "BootstrapWarning": "mixedmodels.inference.bootstrap",
    "InfluenceWarning": "mixedmodels.inference.influence",
}


def _fixture(name: str):
    return json.loads((EDGES / name).read_text())


def _record(call):
    """(result, [warnings]) of call(), every warning recorded."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = call()
    return out, list(caught)


def _only(caught, category):
    return [w for w in caught if issubclass(w.category, category)]


@pytest.fixture(scope="module")
def sleep():
    return mm.datasets.load("sleepstudy")


# ---- every warning class is exported ---------------------------------------------------------
@pytest.mark.parametrize("name, module", list(WARNING_CLASSES.items()))
def test_every_warning_class_is_exported(name, module):
    import importlib

    cls = getattr(mm, name)
    assert cls is getattr(importlib.import_module(module), name)
    assert issubclass(cls, UserWarning)
    assert name in mm.__all__


def test_no_warning_class_is_left_out():
    """Every ``class ...Warning`` of the package is in the list above (and so exported)."""
    found = set()
    for path in SRC.rglob("*.py"):
        found |= set(re.findall(r"^class (\w+Warning)\(", path.read_text(), re.M))
    assert found == set(WARNING_CLASSES)


def test_every_warning_goes_through_warn_user():
    """A fixed ``stacklevel`` goes stale when the call chain changes (decorators, helpers);
    ``errors.warn_user`` finds the user's frame. The lead's GLMM modules pass theirs from
    ``api.glmer``, which the stacklevel tests below check."""
    allowed = {"errors.py", "glmm.py", "glmer_results.py"}
    for path in SRC.rglob("*.py"):
        if path.name in allowed:
            continue
        assert "warnings.warn(" not in path.read_text(), path


# ---- singular fits ---------------------------------------------------------------------------
def test_singular_fit_warns_at_the_callers_line():
    data = mm.datasets.load("Dyestuff2")
    m, caught = _record(lambda: mm.lmer("Yield ~ 1 + (1 | Batch)", data))
    assert m.is_singular and load_case("dyestuff2_reml_singular")["isSingular"]
    assert [(w.category, str(w.message)) for w in caught] == [(mm.SingularFitWarning, SINGULAR)]
    assert caught[0].filename == __file__


def test_regular_fit_is_silent(sleep):
    m, caught = _record(lambda: mm.lmer("Reaction ~ Days + (Days | Subject)", sleep))
    assert not m.is_singular and caught == []


@pytest.mark.parametrize("seed", [6, 19, 25, 27, 33])
def test_is_singular_on_factor_slopes_as_lme4(seed):
    """``(0 + f | g)`` with a rank-deficient covariance: the optimum is on the boundary (a
    diagonal entry of the relative Cholesky factor 0), where the objective is flat to 1e-6.
    BOBYQA used to stop up to 1e-3 inside and the Newton polish refused to cross the bound, so
    lme4 said singular where we did not (seeds 6, 19, 27, 33); the polish now projects onto the
    bounds."""
    ref = next(c for c in _fixture("factor_slope_singular.json") if c["seed"] == seed)
    data = pd.read_csv(EDGES / "factor_slope.csv").query("seed == @seed")
    m, caught = _record(lambda: mm.lmer(ref["formula"], data))
    assert m.is_singular == ref["isSingular"]
    assert m.objective <= ref["objective"] + 1e-6  # never worse than lme4's optimum
    lme4_messages = [line for line in ref["log"] if "singular" in line]
    assert [str(w.message) for w in caught] == ([SINGULAR] if lme4_messages else [])
    assert all(w.category is mm.SingularFitWarning for w in caught)
    if ref["isSingular"]:
        # lme4 checks nothing else on a singular fit (checkConv returns), nor do we
        assert not m.optsum.warnings


# ---- lme4's convergence check ----------------------------------------------------------------
def _scaled(sleep, k):
    return sleep.assign(D=sleep["Days"] * k)


def _lme4_scaled(k, formula):
    return next(c for c in _fixture("warnings.json")["scaled_predictors"]
                if c["k"] == k and c["formula"] == formula)


def test_badly_scaled_slope_warns_very_large_eigenvalue(sleep):
    """Days x 100 in a random slope: the deviance Hessian in theta has an eigenvalue near 8e6
    (lme4: 8.5e6), above lme4's 1e6, and the slope's theta (2.3e-3) is too small for the
    check's finite differences (step 1e-4): lme4 and we both warn that the gradient is large
    (lme4: 2.7; the fit is 6e-4 from Days' in theta) and to rescale."""
    ref = _lme4_scaled(100, "Reaction ~ D + (D | Subject)")
    assert [line.split(" = ")[0] for line in ref["log"]] == [
        "warning: Model failed to converge with max|grad|",
        "warning: Model is nearly unidentifiable: very large eigenvalue\n - Rescale variables?"]
    m, caught = _record(lambda: mm.lmer(ref["formula"], _scaled(sleep, 100)))
    conv = [str(w.message) for w in _only(caught, mm.ConvergenceWarning)]
    assert len(conv) == 2 and len(caught) == 2
    assert conv[0].startswith("Model failed to converge with max|grad| = ")
    assert conv[1] == "Model is nearly unidentifiable: very large eigenvalue - Rescale variables?"
    assert {w.filename for w in caught} == {__file__}
    assert list(m.optsum.warnings) == conv
    assert not m.is_singular


def test_predictor_on_a_very_different_scale_warns_as_checkScaleX(sleep):
    ref = _lme4_scaled(1000, "Reaction ~ D + (1 | Subject)")
    assert ref["log"] == ["warning: Some predictor variables are on very different scales: "
                          "consider rescaling"]
    m, caught = _record(lambda: mm.lmer(ref["formula"], _scaled(sleep, 1000)))
    assert [w.category for w in caught] == [mm.ScaleWarning]
    assert str(caught[0].message).startswith("Some predictor variables are on very different "
                                             "scales: consider rescaling (D (SD 2.88e+03))")
    assert caught[0].filename == __file__
    np.testing.assert_allclose(m.beta, list(ref["fixef"].values()), **TOL["fixef"])
    np.testing.assert_allclose(m.theta, list(ref["theta"].values()), **TOL["theta"])


def test_well_scaled_predictors_are_silent(sleep):
    ref = _lme4_scaled(1, "Reaction ~ D + (D | Subject)")
    assert ref["log"] == []
    _, caught = _record(lambda: mm.lmer(ref["formula"], _scaled(sleep, 1)))
    assert caught == []


def test_gradient_is_scaled_by_the_upper_cholesky_factor():
    """lme4: ``solve(chol(H), g)`` = R^-1 g with H = R'R, not the Newton step H^-1 g."""
    H = np.array([[1e4, 0.0], [0.0, 1.0]])
    g = np.array([0.5, 1e-3])
    # H^-1 g = (5e-5, 1e-3) would pass; R^-1 g = (5e-3, 1e-3) fails on component 1
    assert gradient_message(g, H) == ("Model failed to converge with max|grad| = 0.005 "
                                      "(tol = 0.002, component 1)")
    assert gradient_message(g / 10, H) is None
    assert gradient_message(g, -H) == "unable to evaluate scaled gradient"


@pytest.mark.parametrize("eigenvalues, expected", [
    ([1.0, 2.0], []),
    ([2e6, 3.0], ["Model is nearly unidentifiable: very large eigenvalue - Rescale variables?"]),
    ([5e5, 0.1], ["Model is nearly unidentifiable: large eigenvalue ratio - Rescale "
                   "variables?"]),
    ([2e6, 1.0], ["Model is nearly unidentifiable: very large eigenvalue - Rescale variables?",
                  "Model is nearly unidentifiable: large eigenvalue ratio - Rescale variables?"]),
    ([1.0, -1.0], ["Model failed to converge: degenerate Hessian with 1 negative eigenvalues"]),
    ([1.0, 1e-8], ["Hessian is numerically singular: parameters are not uniquely determined"]),
])
def test_hessian_messages_are_checkHess(eigenvalues, expected):
    Q = np.array([[0.6, -0.8], [0.8, 0.6]])
    H = Q @ np.diag(eigenvalues) @ Q.T
    assert hessian_messages(H) == expected


def test_newton_step_stays_within_the_bounds():
    """The quadratic model's minimum within the bounds (the boundary polish)."""
    H = np.array([[2.0, 0.5], [0.5, 1.0]])
    g = np.array([1.0, 3.0])  # the free minimum -H^-1 g lies below 0 in the second entry
    x = np.array([1.0, 0.5])
    step = newton_step(g, H, x, np.zeros(2))
    assert step[1] == 0.0
    # first entry minimizes the model with the second held: g0 + H00 d0 + H01 d1 = 0
    d1 = -0.5
    assert step[0] == pytest.approx(x[0] - (g[0] + H[0, 1] * d1) / H[0, 0])
    assert newton_step(g, -H, x, np.zeros(2)) is None


# ---- every warning points at the caller's line -----------------------------------------------
def _binary_separation():
    return pd.DataFrame({"g": np.repeat(list("abcdefgh"), 10), "x": np.tile(np.arange(10.0), 8),
                         "y": np.tile((np.arange(10) > 4).astype(float), 8)})


def _fits_for_stacklevel(sleep):
    missing = sleep.copy()
    missing.loc[3, "Reaction"] = np.nan
    missing["D2"] = missing["Days"] * 2
    m0 = mm.lmer("Reaction ~ 1 + (1 | Subject)", sleep)
    m1 = mm.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    counts = pd.DataFrame({"g": np.repeat(list("abcdefgh"), 10),
                           "y": np.tile([0.25, 0.5, 0.0, 1.0, 0.75], 16)})
    return {
        "DroppedRowsWarning": lambda: mm.lmer("Reaction ~ Days + (1 | Subject)", missing),
        "RankDeficiencyWarning": lambda: mm.lmer("Reaction ~ Days + D2 + (1 | Subject)",
                                                 missing.dropna()),
        "RefitMLWarning": lambda: mm.anova(m0, m1),
        "SeparationWarning": lambda: mm.glmer("y ~ x + (1 | g)", _binary_separation()),
        "NonIntegerWarning": lambda: mm.glmer("y ~ 1 + (1 | g)", counts, family="binomial"),
        "UserWarning": lambda: mm.glmer("Reaction ~ Days + (1 | Subject)", sleep,
                                        family="gaussian"),
    }


@pytest.mark.parametrize("name", ["DroppedRowsWarning", "RankDeficiencyWarning",
                                  "RefitMLWarning", "SeparationWarning", "NonIntegerWarning",
                                  "UserWarning"])
def test_warning_points_at_the_callers_line(sleep, name):
    category = getattr(mm, name, UserWarning)
    call = _fits_for_stacklevel(sleep)[name]
    _, caught = _record(call)
    mine = [w for w in caught if w.category is category]
    assert mine, [str(w.message) for w in caught]
    assert {w.filename for w in caught} == {__file__}


def test_hessian_warning_of_summary_points_at_the_callers_line():
    d = pd.DataFrame({"g": np.repeat(np.arange(1, 7), 5).astype(str)})
    d["y"] = np.repeat(np.arange(1.0, 7.0), 5) * 2
    m, _ = _record(lambda: mm.lmer("y ~ 1 + (1 | g)", d))
    _, caught = _record(lambda: str(m.summary()))
    assert _only(caught, mm.HessianWarning)
    assert {w.filename for w in caught} == {__file__}


def test_vcov_warning_points_at_the_callers_line(monkeypatch):
    """A Hessian that cannot give Var(beta) (forced here) warns once, at glmer's caller."""
    from mixedmodels.glmer_results import GlmerResult

    monkeypatch.setattr(GlmerResult, "vcov_hessian", lambda self: None)
    cbpp = mm.datasets.load("cbpp")
    _, caught = _record(lambda: mm.glmer("cbind(incidence, size - incidence) ~ period + "
                                         "(1 | herd)", cbpp, family="binomial"))
    assert [w.category for w in caught] == [mm.VcovWarning]
    assert caught[0].filename == __file__


def test_warn_user_skips_package_and_standard_library_frames():
    """A package function reached through functools.cached_property (Python code of the
    standard library) still warns at the caller's line, not in functools.py."""
    import functools

    from mixedmodels.errors import user_stacklevel, warn_user

    namespace = {"warn_user": warn_user}
    code = "def inner(self):\n    warn_user('hello', UserWarning)\n    return 1\n"
    exec(compile(code, str(SRC / "_not_a_module.py"), "exec"), namespace)

    class Holder:
        value = functools.cached_property(namespace["inner"])

    _, caught = _record(lambda: Holder().value)
    assert [(w.filename, str(w.message)) for w in caught] == [(__file__, "hello")]
    assert user_stacklevel() == 1


def test_glmer_singular_messages_point_at_glmer_result():
    cbpp = mm.datasets.load("cbpp")
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd) + (1 | period)"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = mm.glmer(formula, cbpp, family="binomial")
    expected = SINGULAR.replace("LmerResult", "GlmerResult")
    assert g.is_singular
    assert expected in [str(w.message) for w in caught]
    assert expected in str(g.summary()) and SINGULAR not in str(g.summary())
