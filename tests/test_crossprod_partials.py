"""Partial cross-products: blocks of row chunks add up to the blocks of all rows."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from mixedmodels.crossprod import CrossProducts, from_chunks, from_design, merge
from mixedmodels.formula.bars import parse_formula
from mixedmodels.formula.design import build_design, independent_columns
from mixedmodels.lmm import LinearMixedModel
from mixedmodels.rank import full_rank_from_gram, independent_from_gram


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g1 = rng.integers(0, 30, n)
    return pd.DataFrame({
        "y": rng.normal(size=n), "x": rng.normal(size=n), "w": rng.uniform(0.5, 2.0, n),
        "g1": g1, "g2": rng.integers(0, 12, n),
        # g3 is nested in g1 on all rows; a chunk alone may see a nested or crossed pattern
        "g3": g1 // 3})


def _design(formula: str, data: pd.DataFrame, weights: str | None = None):
    return build_design(parse_formula(formula), data, weights=weights)


def _assert_same(a: CrossProducts, b: CrossProducts) -> None:
    assert a.dims == b.dims and a.n == b.n and a.p == b.p
    np.testing.assert_allclose(a.xx, b.xx, rtol=1e-12, atol=1e-10)
    assert a.sum_log_w == pytest.approx(b.sum_log_w, rel=1e-12, abs=1e-10)
    for x, y in zip(a.diag, b.diag):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-10)
    for x, y in zip(a.xz, b.xz):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-10)
    assert a.off.keys() == b.off.keys()
    for key in a.off:
        assert a.off[key].nnz == b.off[key].nnz  # the same pattern, zeros included
        np.testing.assert_allclose(a.off[key].toarray(), b.off[key].toarray(), rtol=1e-12,
                                   atol=1e-10)
    assert a.nested == b.nested


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("formula,weights", [
    ("y ~ x + (x | g1) + (1 | g2)", None),
    ("y ~ x + (1 | g1) + (1 | g3) + (0 + x | g2)", "w"),
])
def test_random_chunkings_add_up_to_the_whole(seed, formula, weights):
    data = _frame(700, seed)
    d = _design(formula, data, weights)
    whole = from_design(d.terms, d.X, d.y, d.offset, d.weights)
    rng = np.random.default_rng(100 + seed)
    cuts = np.sort(rng.choice(np.arange(0, d.n + 1), size=rng.integers(1, 9)))
    bounds = [0, *cuts.tolist(), d.n]  # empty chunks included
    _assert_same(from_chunks(d.terms, d.X, d.y, d.offset, d.weights, bounds), whole)


def test_merge_is_the_method_and_order_free():
    d = _design("y ~ x + (x | g1) + (1 | g2)", _frame(400, 1))
    parts = [from_chunks(d.terms, d.X, d.y, d.offset, d.weights, [a, b])
             for a, b in [(0, 100), (100, 250), (250, 400)]]
    forward = parts[0].merge(parts[1]).merge(parts[2])
    _assert_same(forward, CrossProducts.from_partials(parts[::-1]))
    _assert_same(forward, from_design(d.terms, d.X, d.y, d.offset, d.weights))


def test_nestedness_is_read_from_the_merged_pattern():
    # every chunk alone sees g_outer with one level per level of g_inner, the whole does not
    n = 200
    inner = np.arange(n) % 20
    outer = np.where(np.arange(n) < n // 2, inner // 2, (inner // 2 + 1) % 10)
    data = pd.DataFrame({"y": np.random.default_rng(3).normal(size=n), "a": inner, "b": outer})
    d = _design("y ~ 1 + (1 | a) + (1 | b)", data)
    halves = [from_chunks(d.terms, d.X, d.y, d.offset, d.weights, [s, s + n // 2])
              for s in (0, n // 2)]
    assert all(h.nested[(1, 0)] for h in halves)
    merged = merge(halves)
    assert not merged.nested[(1, 0)]
    _assert_same(merged, from_design(d.terms, d.X, d.y, d.offset, d.weights))


def test_objective_from_merged_blocks_equals_in_memory():
    d = _design("y ~ x + (x | g1) + (1 | g2)", _frame(600, 4), None)
    whole = from_design(d.terms, d.X, d.y, d.offset, d.weights)
    merged = from_chunks(d.terms, d.X, d.y, d.offset, d.weights, [0, 77, 300, 301, 600])
    theta = np.array([0.7, 0.1, 0.4, 0.9])
    a = LinearMixedModel(whole, d.terms).objective(theta)
    b = LinearMixedModel(merged, d.terms).objective(theta)
    assert b == pytest.approx(a, rel=1e-13)


def test_merge_refuses_blocks_of_different_models():
    d = _design("y ~ x + (x | g1)", _frame(100, 0))
    e = _design("y ~ x + (1 | g1)", _frame(100, 0))
    a = from_design(d.terms, d.X, d.y, d.offset, d.weights)
    b = from_design(e.terms, e.X, e.y, e.offset, e.weights)
    with pytest.raises(ValueError, match="different models"):
        a.merge(b)


def test_select_x_equals_blocks_of_the_kept_columns():
    d = _design("y ~ x + w + (x | g1)", _frame(300, 2))
    A = from_design(d.terms, d.X, d.y, d.offset, d.weights)
    B = from_design(d.terms, np.ascontiguousarray(d.X[:, [0, 2]]), d.y, d.offset, d.weights)
    _assert_same(A.select_x(np.array([0, 2])), B)


@pytest.mark.parametrize("seed", range(5))
def test_rank_from_gram_matches_the_qr_of_x(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(500, 7))
    X[:, 0] = 1.0
    X[:, 3] = X[:, 1] - 2 * X[:, 2]
    X[:, 5] = 0.0
    X[:, 6] = 3 * X[:, 0] + X[:, 4]
    keep = independent_from_gram(X.T @ X)
    assert keep.tolist() == independent_columns(X).tolist() == [0, 1, 2, 4]


def test_rank_from_gram_keeps_full_rank_and_poorly_scaled_columns():
    rng = np.random.default_rng(8)
    x = 1e4 + rng.normal(size=1000)            # intercept and x nearly collinear, not dependent
    X = np.column_stack([np.ones(1000), x, rng.normal(size=1000) * 1e-6])
    assert independent_from_gram(X.T @ X).tolist() == [0, 1, 2]


@pytest.mark.parametrize("eps, full", [(1e-1, True), (1e-5, False), (0.0, False)])
def test_both_rank_checks_share_the_full_rank_shortcut(eps, full):
    """Well conditioned X'X settles full rank for both paths; otherwise each applies its own
    rule (the QR of X in memory, the Cholesky of X'X for a source), which agree here."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(500, 3))
    X[:, 2] = X[:, 0] + eps * rng.normal(size=500)
    assert full_rank_from_gram(X.T @ X) is full
    kept = [0, 1, 2] if eps > 0 else [0, 1]
    assert independent_from_gram(X.T @ X).tolist() == independent_columns(X).tolist() == kept


def test_merged_sparse_blocks_keep_entries_that_cancel():
    import scipy.sparse as sp

    from mixedmodels.crossprod import _add_blocks

    a = sp.csr_array(np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]]))
    b = sp.csr_array(np.array([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    total = _add_blocks(a, b)
    assert total.nnz == 4 and total.has_canonical_format     # (0, 0) is stored, as a 0
    np.testing.assert_array_equal(total.toarray(), [[0.0, 0.0, 2.0], [1.0, 3.0, 0.0]])
