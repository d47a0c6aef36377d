"""GLMM numerics against dense oracles that do not use our blocked solver.

The oracle builds Z and Lambda as dense matrices, finds the conditional modes by a dense
Newton iteration on the penalized deviance, and forms the Laplace deviance from a dense
log-determinant; adaptive Gauss-Hermite is checked against adaptive numerical integration
(scipy.integrate.quad) of each level's integral.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

import mixedmodels as mm
from mixedmodels import families
from mixedmodels.crossprod import CrossProductPlan
from mixedmodels.formula.bars import parse_formula
from mixedmodels.formula.design import build_design
from mixedmodels.linalg.cholesky import BlockedCholesky
from mixedmodels.pirls import GlmmWorkspace


def dense_z(design) -> np.ndarray:
    blocks = []
    for t in design.terms:
        Z = np.zeros((design.n, t.q))
        for c in range(t.p):
            Z[np.arange(design.n), t.refs * t.p + c] = t.z[:, c]
        blocks.append(Z)
    return np.hstack(blocks)


def dense_lambda(design, theta) -> np.ndarray:
    blocks, start = [], 0
    for t in design.terms:
        T = t.template(theta[start:start + t.n_theta])
        start += t.n_theta
        blocks.append(np.kron(np.eye(t.n_levels), T))
    q = sum(b.shape[0] for b in blocks)
    out = np.zeros((q, q))
    o = 0
    for b in blocks:
        out[o:o + b.shape[0], o:o + b.shape[0]] = b
        o += b.shape[0]
    return out


def dense_laplace(design, fam, y, pw, n_trials, theta, beta):
    """(-2 log L Laplace, u-hat) by dense Newton steps on the penalized deviance."""
    Z = dense_z(design) @ dense_lambda(design, theta)
    base = design.X @ beta + np.asarray(design.offset)
    u = np.zeros(Z.shape[1])
    for _ in range(200):
        eta = base + Z @ u
        mu, d = fam.link.linkinv(eta), fam.link.mu_eta(eta)
        w = pw * d * d / fam.variance(mu)
        # Fisher scoring step for the penalized deviance in u
        grad = Z.T @ (pw * (y - mu) * d / fam.variance(mu)) - u
        H = Z.T @ (w[:, None] * Z) + np.eye(Z.shape[1])
        step = np.linalg.solve(H, grad)
        u = u + step
        if np.max(np.abs(step)) < 1e-13:
            break
    eta = base + Z @ u
    mu, d = fam.link.linkinv(eta), fam.link.mu_eta(eta)
    w = pw * d * d / fam.variance(mu)
    H = Z.T @ (w[:, None] * Z) + np.eye(Z.shape[1])
    dev = float(np.sum(fam.dev_resids(y, mu, pw)))
    value = np.linalg.slogdet(H)[1] + u @ u + fam.aic(y, mu, pw, dev, n_trials)
    return value, u


def _workspace(formula, data, fam, trials_col=None):
    design = build_design(parse_formula(formula), data)
    trials = None if trials_col is None else data[trials_col].to_numpy(dtype=float)
    yy = design.y if trials is None else design.y / trials
    y, pw, mustart, n_trials = fam.initialize(yy, np.ones(design.n), trials)
    ws = GlmmWorkspace(design.X, y, np.asarray(design.offset), pw, n_trials, design.terms, fam)
    ws.eta_start = fam.link.linkfun(mustart)
    return design, ws, y, pw, n_trials


CASES = [
    ("incidence ~ period + (1|herd)", "cbpp", families.binomial(), "size",
     [0.7], [-1.3, -1.0, -1.1, -1.6]),
    ("incidence ~ period + offset(log(size)) + (1|herd)", "cbpp", families.poisson(), None,
     [0.5], [-1.6, -0.8, -1.0, -1.4]),
    ("Reaction ~ Days + (Days|Subject)", "sleepstudy", families.Gamma("log"), None,
     [0.9, -0.1, 0.14], [5.5, 0.03]),
    ("incidence ~ period + (1|herd)", "cbpp", families.binomial("probit"), "size",
     [0.35], [-0.8, -0.5, -0.6, -0.8]),
]


@pytest.mark.parametrize("formula, dataset, fam, trials, theta, beta", CASES)
def test_laplace_matches_dense_oracle(formula, dataset, fam, trials, theta, beta):
    data = mm.datasets.load(dataset)
    design, ws, y, pw, n_trials = _workspace(formula, data, fam, trials)
    theta, beta = np.array(theta), np.array(beta)
    state = ws.pirls(theta, beta)
    expected, u = dense_laplace(design, fam, y, pw, n_trials, theta, beta)
    assert ws.laplace(state) == pytest.approx(expected, rel=1e-10, abs=1e-8)
    np.testing.assert_allclose(np.concatenate(state.u), u, atol=1e-8)


def test_crossed_laplace_matches_dense_oracle():
    data = mm.datasets.load("Arabidopsis")
    fam = families.poisson()
    formula = "total.fruits ~ nutrient + rack + (1|popu) + (1|gen)"
    design, ws, y, pw, n_trials = _workspace(formula, data, fam)
    theta, beta = np.array([0.3, 0.5]), np.array([3.0, 0.2, -0.7])
    state = ws.pirls(theta, beta)
    expected, u = dense_laplace(design, fam, y, pw, n_trials, theta, beta)
    assert ws.laplace(state) == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(np.concatenate(state.u), u, atol=1e-7)


def test_fast_pirls_minimizes_over_beta_too():
    """nAGQ = 0: the PIRLS solution for (u, beta) is the joint mode of the penalized deviance,
    so the dense oracle's u at that beta agrees and a nudge of beta raises the deviance."""
    data = mm.datasets.load("cbpp")
    fam = families.binomial()
    design, ws, y, pw, n_trials = _workspace("incidence ~ period + (1|herd)", data, fam, "size")
    theta = np.array([0.64])
    state = ws.pirls(theta, None)
    _, u = dense_laplace(design, fam, y, pw, n_trials, theta, state.beta)
    np.testing.assert_allclose(np.concatenate(state.u), u, atol=1e-8)
    for k in range(state.beta.size):
        nudged = state.beta.copy()
        nudged[k] += 1e-3
        other = ws.pirls(theta, nudged)
        assert other.pdev > state.pdev


def test_agq_matches_numerical_integration():
    data = mm.datasets.load("cbpp")
    fam = families.binomial()
    design, ws, y, pw, n_trials = _workspace("incidence ~ period + (1|herd)", data, fam, "size")
    theta, beta = np.array([0.65]), np.array([-1.4, -1.0, -1.13, -1.58])
    state = ws.pirls(theta, beta)
    # Exact: each herd's integral over b ~ N(0, theta^2) of prod_r p(y_r | b), normalized
    # with the family's constants (aic is -2 log-likelihood incl. the binomial coefficients).
    t = design.terms[0]
    base = design.X @ beta
    total = 0.0
    for level in range(t.n_levels):
        rows = t.refs == level

        def integrand(b):
            mu = fam.link.linkinv(base[rows] + b)
            dev = float(np.sum(fam.dev_resids(y[rows], mu, pw[rows])))
            loglik = -0.5 * fam.aic(y[rows], mu, pw[rows], dev, n_trials[rows])
            return np.exp(loglik - b * b / (2 * theta[0] ** 2)) / np.sqrt(2 * np.pi * theta[0] ** 2)

        value, _ = integrate.quad(integrand, -8, 8, epsabs=0, epsrel=1e-12, limit=200)
        total += -2.0 * np.log(value)
    errors = [abs(ws.laplace(state) + (ws.agq_correction(state, theta, k) if k > 1 else 0.0)
                  - total) for k in (1, 3, 9, 25)]
    assert errors == sorted(errors, reverse=True)     # more nodes, closer
    assert errors[0] > 1e-2                           # Laplace is visibly approximate here
    assert errors[2] < 1e-4 and errors[3] < 1e-8


@pytest.mark.parametrize("levels", [(5, 4), (300, 40)])  # one dense block; typed blocks
def test_refilled_factor_equals_a_fresh_one(levels):
    """The factor planned on one fill and refilled with new weights equals a factor planned on
    the new values (crossed scalar terms: the pair-downdate map and a dense trailing block)."""
    import pandas as pd

    rng = np.random.default_rng(3)
    n = 600
    data = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n),
                         "g1": rng.integers(0, levels[0], n).astype(str),
                         "g2": rng.integers(0, levels[1], n).astype(str)})
    design = build_design(parse_formula("y ~ x + (1|g1) + (1|g2)"), data)
    plan = CrossProductPlan(design.terms, indicators=True)
    w1, w2 = rng.uniform(0.5, 2, n), rng.uniform(0.5, 2, n)
    A1 = plan.fill(design.X, design.y, np.zeros(n), w1)
    A2 = plan.fill(design.X, design.y, np.zeros(n), w2)
    templates = [np.array([[1.3]]), np.array([[0.7]])]
    L = BlockedCholesky(A1, refillable=True)
    assert L.small == (levels == (5, 4))
    assert L.small or L._pairs
    L.refill(A2)
    L.update(templates)
    fresh = BlockedCholesky(A2)
    fresh.update(templates)
    assert L.ldL2() == pytest.approx(fresh.ldL2(), rel=1e-13)
    assert L.pwrss() == pytest.approx(fresh.pwrss(), rel=1e-12)
    np.testing.assert_allclose(L.beta(), fresh.beta(), rtol=1e-12)
    by_bincount = CrossProductPlan(design.terms).fill(design.X, design.y, np.zeros(n), w2)
    np.testing.assert_allclose(A2.off[(1, 0)].toarray(), by_bincount.off[(1, 0)].toarray(),
                               rtol=1e-13)
    for a, b in zip(A2.xz + A2.diag, by_bincount.xz + by_bincount.diag):
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_tensor_agq_for_a_vector_term_matches_2d_integration():
    """Beyond lme4: nagq > 1 with one term of two columns uses the tensor-product rule."""
    import pandas as pd

    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(6), 12)
    x = np.tile(np.linspace(-1, 1, 12), 6)
    b = rng.normal(scale=[0.8, 0.5], size=(6, 2))
    eta = -0.3 + 0.7 * x + b[g, 0] + b[g, 1] * x
    data = pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x,
                         "g": [f"g{i}" for i in g]})
    fam = families.binomial()
    design, ws, y, pw, n_trials = _workspace("y ~ x + (x|g)", data, fam)
    theta, beta = np.array([0.8, -0.2, 0.5]), np.array([-0.3, 0.7])
    state = ws.pirls(theta, beta)
    T = design.terms[0].template(theta)
    Sigma = T @ T.T
    Sinv, logdet = np.linalg.inv(Sigma), np.linalg.slogdet(Sigma)[1]
    base = design.X @ beta
    # Each level's integral on a fine grid (the midpoint rule converges fast for a smooth
    # integrand that vanishes at the edges).
    grid = np.linspace(-6, 6, 601)
    h = grid[1] - grid[0]
    B = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    log_prior = -0.5 * np.einsum("ka,ab,kb->k", B, Sinv, B) - 0.5 * logdet - np.log(2 * np.pi)
    total = 0.0
    for level in range(6):
        rows = design.terms[0].refs == level
        eta_r = base[rows][None, :] + B @ design.terms[0].z[rows].T      # (grid, rows)
        mu = fam.link.linkinv(eta_r)
        yr = y[rows][None, :]
        loglik = np.sum(yr * np.log(mu) + (1 - yr) * np.log1p(-mu), axis=1)
        total += -2.0 * np.log(np.sum(np.exp(loglik + log_prior)) * h * h)
    errors = [abs(ws.laplace(state) + (ws.agq_correction(state, theta, k) if k > 1 else 0.0)
                  - total) for k in (1, 5, 11)]
    assert errors == sorted(errors, reverse=True)
    assert errors[2] < 1e-5
