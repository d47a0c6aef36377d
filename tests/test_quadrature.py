"""Tests of the Gauss-Hermite rules (mixedmodels.quadrature) against exact normal moments."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermeder, hermeval

from mixedmodels.quadrature import gauss_hermite, tensor_gauss_hermite

ALL_K = range(1, 101)


def _he(k):
    """Coefficients of the probabilists' Hermite polynomial He_k."""
    c = np.zeros(k + 1)
    c[k] = 1.0
    return c


@pytest.mark.parametrize("k", ALL_K)
def test_weights_and_second_moment(k):
    z, w = gauss_hermite(k)
    assert z.shape == w.shape == (k,)
    assert np.all(w > 0) and np.all(np.diff(z) > 0)
    assert w.sum() == pytest.approx(1.0, abs=1e-14)
    assert np.array_equal(z, -z[::-1]) and np.array_equal(w, w[::-1])
    if k >= 2:  # a k-point rule is exact to degree 2k - 1
        assert w @ z**2 == pytest.approx(1.0, abs=1e-14)
    if k >= 3:
        assert w @ z**4 == pytest.approx(3.0, abs=1e-12)


@pytest.mark.parametrize("k", range(12, 101))
def test_smooth_expectations(k):
    # E[exp(Z)] = exp(1/2), E[cos Z] = exp(-1/2). From k = 12 on the rule's own error is below
    # 1e-13 (at k = 10 it is 1.9e-12 for exp, a property of the rule, not of round-off).
    z, w = gauss_hermite(k)
    assert abs(w @ np.exp(z) - math.exp(0.5)) < 1e-12
    assert abs(w @ np.cos(z) - math.exp(-0.5)) < 1e-12


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 13, 20])
def test_exact_for_polynomials_to_degree_2k_minus_1(k):
    z, w = gauss_hermite(k)
    for j in range(2 * k):
        exact = 0.0 if j % 2 else float(math.prod(range(1, j, 2)))  # (j-1)!!
        # round-off relative to the size of the terms summed (odd moments are 0 only by
        # cancellation)
        assert abs(w @ z**j - exact) <= 1e-13 * (w @ np.abs(z) ** j)


@pytest.mark.parametrize("k", [2, 5, 10, 20, 30])
def test_nodes_are_hermite_roots_and_weights_match_christoffel(k):
    z, w = gauss_hermite(k)
    # A Newton step from each node is negligible: z is a root of He_k.
    step = hermeval(z, _he(k)) / hermeval(z, hermeder(_he(k)))
    assert np.max(np.abs(step)) < 1e-13 * max(1.0, np.max(np.abs(z)))
    # Christoffel weights of the standard normal: k! / (k He_{k-1}(z))^2.
    expected = math.factorial(k) / (k * hermeval(z, _he(k - 1))) ** 2
    np.testing.assert_allclose(w, expected, rtol=1e-12)


def test_cached_and_read_only():
    z, w = gauss_hermite(7)
    assert gauss_hermite(7)[0] is z
    with pytest.raises(ValueError):
        z[0] = 1.0
    with pytest.raises(ValueError):
        w[0] = 1.0
    assert gauss_hermite(1)[0].tolist() == [0.0] and gauss_hermite(1)[1].tolist() == [1.0]


def test_bad_k():
    with pytest.raises(ValueError):
        gauss_hermite(0)
    with pytest.raises(TypeError):
        gauss_hermite(2.5)
    with pytest.raises(ValueError):
        tensor_gauss_hermite(3, 0)


@pytest.mark.parametrize("k, d", [(1, 1), (4, 1), (5, 2), (6, 3), (3, 3)])
def test_tensor_layout(k, d):
    nodes, weights = tensor_gauss_hermite(k, d)
    z, w = gauss_hermite(k)
    assert nodes.shape == (k**d, d) and weights.shape == (k**d,)
    expected_nodes = np.array(list(itertools.product(z, repeat=d)))
    expected_weights = np.array([math.prod(t) for t in itertools.product(w, repeat=d)])
    np.testing.assert_array_equal(nodes, expected_nodes)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-15)
    assert not nodes.flags.writeable and not weights.flags.writeable
    assert tensor_gauss_hermite(k, d)[0] is nodes


def test_tensor_integrates_products():
    nodes, weights = tensor_gauss_hermite(20, 3)
    assert weights.sum() == pytest.approx(1.0, abs=1e-14)
    a = np.array([0.3, -0.7, 1.1])
    # E[exp(a'Z)] = exp(|a|^2 / 2) for Z ~ N(0, I_3)
    assert weights @ np.exp(nodes @ a) == pytest.approx(math.exp(a @ a / 2), rel=1e-13)
    # E[Z1^2 Z2^4 cos Z3] = 1 * 3 * exp(-1/2)
    f = nodes[:, 0] ** 2 * nodes[:, 1] ** 4 * np.cos(nodes[:, 2])
    assert weights @ f == pytest.approx(3 * math.exp(-0.5), rel=1e-13)
    # odd in one coordinate: 0
    assert abs(weights @ (nodes[:, 0] * nodes[:, 1] ** 2)) < 1e-15
