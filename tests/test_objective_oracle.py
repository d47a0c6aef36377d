"""The blocked objective against the dense marginal likelihood on random small designs.

Every test runs twice: with the typed blocks (tiles, sparse, pair downdates, dense trailing
part) and with the whole of L as one dense block, the path small models take.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from mixedmodels.crossprod import from_design
from mixedmodels.linalg import cholesky
from mixedmodels.lmm import LinearMixedModel
from mixedmodels.terms import ReTerm, order_terms

from oracles import dense_objective, dense_z


@pytest.fixture(autouse=True, params=["typed", "one-dense"])
def layout(request, monkeypatch):
    """The typed-block layout (no model counts as small) or the one-dense-block layout."""
    monkeypatch.setattr(cholesky, "SMALL_DENSE", 0 if request.param == "typed" else 10**9)
    return request.param


def make_term(name, refs, z, cols):
    n_levels = int(refs.max()) + 1
    return ReTerm(group_name=name, group_vars=(name,), levels=tuple(str(i) for i in range(n_levels)),
                  refs=refs.astype(np.int32), z=z, column_names=tuple(cols), lhs_spec=None)


def scenario(kind, rng):
    n = 60
    x = rng.normal(size=n)
    if kind == "scalar":
        g = rng.integers(0, 7, n)
        terms = [make_term("g", g, np.ones((n, 1)), ["(Intercept)"])]
    elif kind == "vector":
        g = rng.integers(0, 6, n)
        terms = [make_term("g", g, np.column_stack([np.ones(n), x]), ["(Intercept)", "x"])]
    elif kind == "crossed":
        g1, g2 = rng.integers(0, 9, n), rng.integers(0, 4, n)
        terms = [make_term("g1", g1, np.ones((n, 1)), ["(Intercept)"]),
                 make_term("g2", g2, np.column_stack([np.ones(n), x]), ["(Intercept)", "x"])]
    elif kind == "nested":
        outer = rng.integers(0, 4, n)
        inner = outer * 3 + rng.integers(0, 3, n)
        terms = [make_term("inner", inner, np.ones((n, 1)), ["(Intercept)"]),
                 make_term("outer", outer, np.ones((n, 1)), ["(Intercept)"])]
    elif kind == "three":
        g1, g2, g3 = rng.integers(0, 10, n), rng.integers(0, 5, n), rng.integers(0, 3, n)
        terms = [make_term("g1", g1, np.column_stack([np.ones(n), x]), ["(Intercept)", "x"]),
                 make_term("g2", g2, np.ones((n, 1)), ["(Intercept)"]),
                 make_term("g3", g3, np.column_stack([np.ones(n), x]), ["(Intercept)", "x"])]
    elif kind == "crossed_scalar":
        # Many levels: sparse off-diagonal blocks and the precomputed pair downdates.
        n = 240
        x = rng.normal(size=n)
        g1, g2, g3 = rng.integers(0, 110, n), rng.integers(0, 40, n), rng.integers(0, 25, n)
        terms = [make_term("g1", g1, np.ones((n, 1)), ["(Intercept)"]),
                 make_term("g2", g2, np.ones((n, 1)), ["(Intercept)"]),
                 make_term("g3", g3, np.ones((n, 1)), ["(Intercept)"])]
    elif kind == "crossed_sparse_vector":
        n = 240
        x = rng.normal(size=n)
        g1, g2 = rng.integers(0, 60, n), rng.integers(0, 40, n)
        terms = [make_term("g1", g1, np.ones((n, 1)), ["(Intercept)"]),
                 make_term("g2", g2, np.column_stack([np.ones(n), x]), ["(Intercept)", "x"])]
    else:  # two terms on one factor, as (1|g) + (0 + x|g)
        g = rng.integers(0, 8, n)
        terms = [make_term("g", g, np.ones((n, 1)), ["(Intercept)"]),
                 make_term("g", g, x[:, None], ["x"])]
    terms = order_terms(terms)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    assert all(t.refs.size == n for t in terms)
    y = X @ [1.0, 2.0] + rng.normal(size=n)
    for t in terms:
        y = y + np.einsum("np,np->n", t.z, rng.normal(size=(t.n_levels, t.p))[t.refs])
    return terms, X, y


KINDS = ["scalar", "vector", "crossed", "nested", "three", "same_factor", "crossed_scalar",
         "crossed_sparse_vector"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reml", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_blocked_objective_matches_dense_oracle(kind, reml, weighted):
    rng = np.random.default_rng(zlib.crc32(repr((kind, reml, weighted)).encode()))
    terms, X, y = scenario(kind, rng)
    n = len(y)
    w = rng.uniform(0.5, 2.0, n) if weighted else np.ones(n)
    offset = rng.normal(size=n) if weighted else np.zeros(n)
    A = from_design(terms, X, y, offset, w)
    model = LinearMixedModel(A, tuple(terms), reml=reml)
    for _ in range(3):
        theta = np.abs(rng.normal(size=model.n_theta)) + 0.1
        theta[~np.isfinite(model.theta_lower)] = rng.normal(size=int(np.sum(~np.isfinite(model.theta_lower))))
        Ts = model.templates(theta)
        Zs = [dense_z(t.refs, t.z, t.n_levels) for t in terms]
        Lams = [np.kron(np.eye(t.n_levels), T) for t, T in zip(terms, Ts)]
        expected = dense_objective(X, y, Zs, Lams, weights=w, offset=offset, reml=reml)
        assert model.objective(theta) == pytest.approx(expected, rel=1e-10, abs=1e-8)


def test_crossed_block_fills_in_and_nested_block_does_not(layout):
    one_dense = layout == "one-dense"
    rng = np.random.default_rng(1)
    terms, X, y = scenario("crossed", rng)
    model = LinearMixedModel(from_design(terms, X, y, np.zeros(len(y)), np.ones(len(y))), tuple(terms))
    assert model.L.diag_dense == [one_dense, True]
    terms, X, y = scenario("nested", rng)
    model = LinearMixedModel(from_design(terms, X, y, np.zeros(len(y)), np.ones(len(y))), tuple(terms))
    assert model.L.diag_dense == [one_dense, one_dense]


@pytest.mark.parametrize("kind", KINDS)
def test_modes_and_conditional_variances_match_dense_solve(kind):
    rng = np.random.default_rng(zlib.crc32(kind.encode()))
    terms, X, y = scenario(kind, rng)
    n = len(y)
    w = rng.uniform(0.5, 2.0, n)
    model = LinearMixedModel(from_design(terms, X, y, np.zeros(n), w), tuple(terms))
    theta = np.abs(rng.normal(size=model.n_theta)) + 0.2
    model.objective(theta)
    Ts = model.templates(theta)
    Z = np.hstack([dense_z(t.refs, t.z, t.n_levels) for t in terms])
    Lam = np.zeros((Z.shape[1],) * 2)
    start = 0
    for t, T in zip(terms, Ts):
        Lam[start:start + t.q, start:start + t.q] = np.kron(np.eye(t.n_levels), T)
        start += t.q
    ZL = Z @ Lam
    W = np.diag(w)
    q = ZL.shape[1]
    M = np.block([[ZL.T @ W @ ZL + np.eye(q), ZL.T @ W @ X], [X.T @ W @ ZL, X.T @ W @ X]])
    sol = np.linalg.solve(M, np.concatenate([ZL.T @ W @ y, X.T @ W @ y]))
    beta = model.L.beta()
    np.testing.assert_allclose(beta, sol[q:], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(np.concatenate(model.L.u(beta)), sol[:q], rtol=1e-9, atol=1e-10)
    Vu = np.linalg.inv(ZL.T @ W @ ZL + np.eye(q))
    start = 0
    for j, t in enumerate(terms):
        tiles = model.L.cond_var_tiles(j, chunk=3)
        for lev in range(t.n_levels):
            sl = slice(start + lev * t.p, start + (lev + 1) * t.p)
            np.testing.assert_allclose(tiles[lev], Vu[sl, sl], rtol=1e-9, atol=1e-12)
        start += t.q


def test_sparse_blocks_and_pair_downdates_are_exercised(layout):
    rng = np.random.default_rng(5)
    terms, X, y = scenario("crossed_scalar", rng)
    model = LinearMixedModel(from_design(terms, X, y, np.zeros(len(y)), np.ones(len(y))),
                             tuple(terms))
    if layout == "typed":
        assert set(model.L._pairs) == {(1, 1), (2, 1), (2, 2)}
        assert any(hasattr(b, "nnz") for b in model.L.A_off.values())
    else:
        assert model.L._pairs == {} and model.L.trail == 0


def test_block_description_names_every_block(layout):
    rng = np.random.default_rng(2)
    terms, X, y = scenario("crossed", rng)
    model = LinearMixedModel(from_design(terms, X, y, np.zeros(len(y)), np.ones(len(y))),
                             tuple(terms))
    text = model.block_description().splitlines()
    assert len(text) == 4
    first = "tiles" if layout == "typed" else "dense"
    assert text[1].split()[-1] == first and text[2].split()[-1] == "dense"


@pytest.mark.parametrize("kind", ["crossed_sparse_vector", "three", "crossed"])
def test_densified_downdates_match_the_sparse_ones(kind, layout, monkeypatch):
    """A downdate L_im L_jm' of sparse blocks into a dense one, taken as a BLAS product of
    the expanded blocks (``kernels.densify_product``), gives the sparse product's objective
    and the dense oracle's."""
    from mixedmodels.linalg import kernels

    if layout == "one-dense":
        pytest.skip("one dense block: no downdates")
    rng = np.random.default_rng(zlib.crc32(kind.encode()))
    terms, X, y = scenario(kind, rng)
    n = len(y)
    A = from_design(terms, X, y, np.zeros(n), np.ones(n))
    values, plans = [], []
    for cost in (0.0, 1e12):
        monkeypatch.setattr(kernels, "SPARSE_PAIR_COST", cost)
        model = LinearMixedModel(A, tuple(terms), reml=True)
        theta = np.linspace(0.4, 1.3, model.n_theta)
        values.append(model.objective(theta))
        plans.append(model.L._densify)
    assert plans[0] == set()
    if kind == "crossed_sparse_vector":
        assert plans[1]                       # the case has a sparse product to expand
    Ts = model.templates(theta)
    Zs = [dense_z(t.refs, t.z, t.n_levels) for t in terms]
    Lams = [np.kron(np.eye(t.n_levels), T) for t, T in zip(terms, Ts)]
    expected = dense_objective(X, y, Zs, Lams, reml=True)
    assert values[1] == pytest.approx(values[0], rel=1e-13)
    assert values[1] == pytest.approx(expected, rel=1e-10)
