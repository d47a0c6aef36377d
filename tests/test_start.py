"""Moment starting values (start.py): checked against a direct per-level computation from the
raw data, and the optimum they lead to against lme4's start."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.crossprod import from_design
from mixedmodels.formula.bars import parse_formula
from mixedmodels.formula.design import build_design
from mixedmodels.lmm import LinearMixedModel
from mixedmodels.start import START_MAX, START_MIN, STEP_FRACTION, initial_steps, moment_start


def _model(formula: str, data: pd.DataFrame, reml: bool = True) -> LinearMixedModel:
    design = build_design(parse_formula(formula), data)
    A = from_design(design.terms, design.X, design.y, design.offset, design.weights)
    return LinearMixedModel(A, design.terms, reml=reml)


def test_sleepstudy_start_matches_per_subject_least_squares(sleepstudy):
    """The (Days | Subject) start from the blocks equals the ANOVA estimate computed from the
    rows: OLS residuals, one least-squares line per subject, their second moment minus the
    average sampling covariance."""
    model = _model("Reaction ~ Days + (Days | Subject)", sleepstudy)
    X = np.column_stack([np.ones(len(sleepstudy)), sleepstudy["Days"].to_numpy(float)])
    y = sleepstudy["Reaction"].to_numpy(float)
    r = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    coefs, inverses, within = [], [], 0.0
    for _, rows in sleepstudy.groupby("Subject", observed=True).indices.items():
        Xs, rs = X[rows], r[rows]
        b = np.linalg.solve(Xs.T @ Xs, Xs.T @ rs)
        coefs.append(b)
        inverses.append(np.linalg.inv(Xs.T @ Xs))
        within += float(np.sum((rs - Xs @ b) ** 2))
    coefs = np.array(coefs)
    sigma2 = within / (len(y) - 2 - 2 * len(coefs))
    Sigma = coefs.T @ coefs / len(coefs) - sigma2 * np.mean(inverses, axis=0)
    T = np.linalg.cholesky(Sigma / sigma2)
    expected = np.array([T[0, 0], T[1, 0], T[1, 1]])
    np.testing.assert_allclose(moment_start(model.A, model.terms), expected, rtol=1e-10)


def test_scalar_start_recovers_a_balanced_one_way_design():
    rng = np.random.default_rng(7)
    groups, per, sd_g, sd_e = 400, 25, 2.0, 1.0
    g = np.repeat(np.arange(groups), per)
    y = 5 + rng.normal(0, sd_g, groups)[g] + rng.normal(0, sd_e, g.size)
    model = _model("y ~ 1 + (1 | g)", pd.DataFrame({"y": y, "g": g.astype(str)}))
    start = moment_start(model.A, model.terms)
    assert start.shape == (1,)
    assert abs(start[0] - sd_g / sd_e) < 0.15


def test_start_is_clipped_away_from_the_bound_and_from_far_out():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(50), 6)
    flat = pd.DataFrame({"y": rng.normal(size=g.size), "g": g.astype(str)})
    assert moment_start(*_parts(flat))[0] == pytest.approx(START_MIN)
    steep = flat.assign(y=flat["y"] * 1e-3 + 1e3 * rng.normal(size=50)[g])
    assert moment_start(*_parts(steep))[0] == pytest.approx(START_MAX)


def _parts(frame: pd.DataFrame):
    model = _model("y ~ 1 + (1 | g)", frame)
    return model.A, model.terms


def test_levels_with_singular_tiles_are_left_out(sleepstudy):
    """A subject seen on one day only cannot fit a line of its own; the start stays finite."""
    data = sleepstudy[~((sleepstudy["Subject"] == "308") & (sleepstudy["Days"] > 0))]
    model = _model("Reaction ~ Days + (Days | Subject)", data)
    start = moment_start(model.A, model.terms)
    assert np.all(np.isfinite(start)) and start[0] > 0 and start[2] > 0


def test_initial_steps_scale_with_the_start():
    model = _model("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    theta = np.array([0.9, -0.02, 0.25])
    steps = initial_steps(theta, model.terms)
    expected = STEP_FRACTION * np.array([0.9, np.sqrt(0.9 * 0.25), 0.25])
    np.testing.assert_allclose(steps, expected, rtol=1e-14)


@pytest.mark.parametrize("dataset, formula, reml", [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", True),
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", False),
    ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", True),
    ("Pastes", "strength ~ 1 + (1 | batch/cask)", True),
    ("Machines", "score ~ Machine + (0 + Machine | Worker)", True),
])
def test_moment_start_reaches_the_optimum_of_lme4s_start(dataset, formula, reml):
    data = mm.datasets.load(dataset)
    ours = _model(formula, data, reml)
    fit = ours.fit()
    lme4_start = _model(formula, data, reml)
    lower = lme4_start.theta_lower
    reference = lme4_start.fit(theta0=np.where(np.isfinite(lower), 1.0, 0.0))
    assert fit.fmin <= reference.fmin + 1e-8
    np.testing.assert_allclose(fit.theta, reference.theta, rtol=1e-3, atol=1e-4)
