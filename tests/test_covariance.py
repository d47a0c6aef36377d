"""Covariance templates (covariance.py): every map a template carries agrees with the others."""
from __future__ import annotations

import numpy as np
import pytest

from mixedmodels.covariance import AR1, CompoundSymmetry, Diagonal, Unstructured, make_covariance

RNG = np.random.default_rng(11)


def _random_cov(p: int) -> np.ndarray:
    A = RNG.normal(size=(p, p))
    return A @ A.T + 0.5 * np.eye(p)


@pytest.mark.parametrize("p", [1, 2, 4])
def test_unstructured_is_lme4s_lower_triangle(p):
    cov = Unstructured(p)
    assert cov.n_theta == p * (p + 1) // 2
    theta = RNG.normal(size=cov.n_theta)
    T = cov.template(theta)
    rows, cols = np.tril_indices(p)
    order = np.lexsort((rows, cols))            # column-major, as lme4's Lind
    np.testing.assert_array_equal(T[rows[order], cols[order]], theta)
    assert np.all(np.triu(T, 1) == 0)
    np.testing.assert_array_equal(cov.lower() == 0, rows[order] == cols[order])
    S = _random_cov(p)
    Ts = cov.template(cov.start(S))
    np.testing.assert_allclose(Ts @ Ts.T, S, rtol=1e-12)


@pytest.mark.parametrize("kind, p", [("us", 1), ("us", 3), ("diag", 1), ("diag", 3)])
def test_sdcor_round_trip_and_bounds(kind, p):
    cov = make_covariance(kind, p)
    theta = np.abs(RNG.normal(size=cov.n_theta)) + 0.1
    if kind == "us":
        theta[~cov.on_diag] = RNG.normal(size=int((~cov.on_diag).sum()))
    sigma = 1.7
    values = cov.sdcor(theta, sigma)
    lower, upper = cov.sdcor_bounds()
    assert np.all(values >= lower) and np.all(values <= upper)
    np.testing.assert_allclose(cov.theta_from_sdcor(values, sigma), theta, rtol=1e-12)
    assert len(cov.sdcor_names("g", tuple(f"x{i}" for i in range(p)))) == cov.n_theta


@pytest.mark.parametrize("kind", ["us", "diag"])
def test_linear_structures_give_pbkrtests_unit_matrices(kind):
    """For us and diag the covariance is linear in its parameters (pbkrtest's gamma): Sigma is
    the sum of the derivative matrices weighted by the matching entries of Sigma."""
    cov = make_covariance(kind, 3)
    theta = cov.start(_random_cov(3))
    T = cov.template(theta)
    Sigma = 2.0**2 * T @ T.T
    E = cov.covariance_derivatives(theta, 2.0)
    assert len(E) == cov.n_theta
    gamma = [Sigma[np.nonzero(e)][0] for e in E]
    np.testing.assert_allclose(sum(g * e for g, e in zip(gamma, E)), Sigma, rtol=1e-12)


def test_diagonal_template():
    cov = Diagonal(2)
    np.testing.assert_array_equal(cov.template(np.array([2.0, 3.0])), np.diag([2.0, 3.0]))
    assert cov.theta_names("Subject", ("(Intercept)", "Days")) == ["Subject.(Intercept)",
                                                                   "Subject.Days"]
    assert cov.is_singular(np.array([1.0, 1e-6]), 1e-4)


def test_unknown_structure_lists_the_known_ones():
    with pytest.raises(ValueError, match="known: us, diag, cs, ar1"):
        make_covariance("toep", 3)


@pytest.mark.parametrize("cls, p", [(CompoundSymmetry, 2), (CompoundSymmetry, 4), (AR1, 2),
                                    (AR1, 5)])
@pytest.mark.parametrize("t", [-30.0, -1.3, 0.0, 0.4, 2.5, 40.0])
def test_sd_rho_structures(cls, p, t):
    """T T' is S C S with the stated C, every t gives a valid rho, and the SD / correlation
    scale maps back."""
    cov = cls(p)
    sds = np.linspace(0.5, 2.0, cov.n_theta - 1)
    theta = np.append(sds, t)
    rho = cov.rho(t)
    assert cov.rho_min <= rho <= 1.0
    s = np.broadcast_to(sds, (p,))
    k = np.arange(p)
    C = (rho ** np.abs(np.subtract.outer(k, k)) if cls is AR1
         else (1 - rho) * np.eye(p) + rho)
    T = cov.template(theta)
    assert np.all(np.triu(T, 1) == 0)
    np.testing.assert_allclose(T @ T.T, np.outer(s, s) * C, atol=1e-12)
    values = cov.sdcor(theta, 3.0)
    np.testing.assert_allclose(values, np.append(3.0 * sds, rho))
    back = cov.theta_from_sdcor(values, 3.0)
    np.testing.assert_allclose(cov.template(back), T, atol=1e-7)
    lower, upper = cov.sdcor_bounds()
    assert lower[-1] == pytest.approx(-1.0 / (p - 1) if cls is CompoundSymmetry else -1.0)
    assert upper[-1] == 1.0


@pytest.mark.parametrize("cls", [CompoundSymmetry, AR1])
def test_bounds_of_rho_are_valid_templates(cls):
    cov = cls(3)
    for rho in (cov.rho_min, 1.0):
        theta = cov.theta_from_sdcor(np.append(np.ones(cov.n_theta - 1), rho), 1.0)
        T = cov.template(theta)
        assert np.all(np.isfinite(T))
        np.testing.assert_allclose(T @ T.T, cov.correlation(rho), atol=1e-12)
    assert cov.theta_from_sdcor(np.append(np.ones(cov.n_theta - 1), 1.01), 1.0) is None


@pytest.mark.parametrize("cls", [CompoundSymmetry, AR1])
def test_derivatives_for_kenward_roger(cls):
    """dSigma / d(variances, rho) by central differences of Sigma in those parameters."""
    cov = cls(4)
    theta = np.append(np.linspace(0.7, 1.6, cov.n_theta - 1), 0.8)
    sigma = 1.3

    def sigma_of(gamma):
        v, rho = gamma[:-1], gamma[-1]
        sd = np.sqrt(np.broadcast_to(v, (cov.p,)))
        return np.outer(sd, sd) * cov.correlation(rho)

    gamma = np.append((sigma * theta[:-1]) ** 2, cov.rho(theta[-1]))
    derivs = cov.covariance_derivatives(theta, sigma)
    assert len(derivs) == gamma.size
    for r, E in enumerate(derivs):
        h = np.zeros_like(gamma)
        h[r] = 1e-6
        numeric = (sigma_of(gamma + h) - sigma_of(gamma - h)) / 2e-6
        np.testing.assert_allclose(E, numeric, atol=1e-7)


def test_structures_need_two_columns():
    with pytest.raises(ValueError, match="at least 2 columns"):
        CompoundSymmetry(1)
    assert isinstance(AR1(3).reduced(1), Unstructured)
