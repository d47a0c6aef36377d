"""Cross-product blocks and the design's memory-saving shortcuts, against dense products."""
from __future__ import annotations

import numpy as np
import pytest

from mixedmodels import crossprod
from mixedmodels.crossprod import from_design
from mixedmodels.formula.bars import parse_formula
from mixedmodels.formula.design import build_design, independent_columns
from mixedmodels.terms import ReTerm

from oracles import dense_z


def _term(name, refs, z):
    n_levels = int(refs.max()) + 1
    return ReTerm(group_name=name, group_vars=(name,), levels=tuple(map(str, range(n_levels))),
                  refs=refs.astype(np.int32), z=z,
                  column_names=tuple(f"c{i}" for i in range(z.shape[1])), lhs_spec=None)


@pytest.mark.parametrize("levels", [(40, 7), (400, 300)])  # grid <= 2n, and grid > 2n
def test_off_diagonal_block_equals_dense_product(levels):
    rng = np.random.default_rng(11)
    n = 500
    x = rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, n)
    ti = _term("a", rng.integers(0, levels[0], n), np.column_stack([np.ones(n), x]))
    tj = _term("b", rng.integers(0, levels[1], n), np.ones((n, 1)))
    A = from_design([ti, tj], np.ones((n, 1)), rng.normal(size=n), np.zeros(n), w)
    Zi, Zj = dense_z(ti.refs, ti.z, ti.n_levels), dense_z(tj.refs, tj.z, tj.n_levels)
    np.testing.assert_allclose(A.off[(1, 0)].toarray(), Zj.T @ (w[:, None] * Zi), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("levels", [(12, 9), (200, 150)])  # numbered on the grid; by unique
def test_pair_numbering_is_the_sorted_unique_pairs(levels):
    rng = np.random.default_rng(4)
    n = 300
    ti = _term("a", rng.integers(0, levels[0], n), np.ones((n, 1)))
    tj = _term("b", rng.integers(0, levels[1], n), np.ones((n, 1)))
    li, lj, codes = crossprod._pair_codes(ti, tj)
    key = ti.refs.astype(np.int64) * tj.n_levels + tj.refs
    pairs, expected = np.unique(key, return_inverse=True)
    np.testing.assert_array_equal(li, pairs // tj.n_levels)
    np.testing.assert_array_equal(lj, pairs % tj.n_levels)
    np.testing.assert_array_equal(codes, expected)


def test_rank_check_in_row_chunks_matches_one_qr():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(1000, 5))
    X[:, 3] = X[:, 0] - 2 * X[:, 1]
    assert independent_columns(X, chunk=64).tolist() == [0, 1, 2, 4]
    assert independent_columns(X, chunk=10_000).tolist() == [0, 1, 2, 4]
    X[:, 2] = 0.0
    assert independent_columns(X, chunk=64).tolist() == [0, 1, 4]


def test_missing_offset_and_weights_take_no_memory_and_change_nothing(sleepstudy):
    design = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"), sleepstudy)
    for arr, value in ((design.offset, 0.0), (design.weights, 1.0)):
        assert arr.strides == (0,) and not arr.flags.writeable and np.all(arr == value)
    n = len(design.y)
    implicit = from_design(design.terms, design.X, design.y, design.offset, design.weights)
    explicit = from_design(design.terms, design.X, design.y, np.zeros(n), np.ones(n))
    np.testing.assert_array_equal(implicit.xx, explicit.xx)
    for a, b in zip(implicit.xz + implicit.diag, explicit.xz + explicit.diag):
        np.testing.assert_array_equal(a, b)


def test_explicit_offset_is_subtracted(sleepstudy):
    data = sleepstudy.assign(off=np.linspace(0, 5, len(sleepstudy)))
    design = build_design(parse_formula("Reaction ~ Days + offset(off) + (1 | Subject)"), data)
    A = from_design(design.terms, design.X, design.y, design.offset, design.weights)
    yc = data["Reaction"].to_numpy() - data["off"].to_numpy()
    assert A.xx[-1, -1] == pytest.approx(float(yc @ yc), rel=1e-13)
    np.testing.assert_allclose(A.xx[:-1, -1], design.X.T @ yc, rtol=1e-13)


def test_term_columns_are_shared_not_copied(sleepstudy):
    slope = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"), sleepstudy)
    z = slope.terms[0].z
    assert np.shares_memory(z, slope.X) and not z.flags.writeable
    assert slope.terms[0].column_names == ("(Intercept)", "Days")
    intercept = build_design(parse_formula("Reaction ~ Days + (1 | Subject)"), sleepstudy)
    z = intercept.terms[0].z
    assert z.shape == (180, 1) and z.strides[0] == 0 and np.all(z == 1.0)
    own = build_design(parse_formula("Reaction ~ 1 + (Days | Subject)"), sleepstudy)
    z = own.terms[0].z
    assert not np.shares_memory(z, own.X)
    np.testing.assert_array_equal(z, np.column_stack([np.ones(180), sleepstudy["Days"]]))


@pytest.mark.parametrize("eps, kept", [(1e-1, [0, 1, 2]), (1e-5, [0, 1, 2]), (1e-9, [0, 1])])
def test_rank_check_shortcut_and_qr_agree(eps, kept):
    """Well conditioned: the Cholesky shortcut; nearly dependent (below RANK_SAFE): the QR,
    which keeps a column at |R_jj| / ||x_j|| = 1e-5 and drops one at 1e-9, as R does."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(500, 3))
    X[:, 2] = X[:, 0] + eps * rng.normal(size=500)
    assert independent_columns(X).tolist() == kept
    from scipy.linalg import qr

    R = qr(X, mode="r")[0]
    ratio = abs(R[2, 2]) / np.linalg.norm(X[:, 2])
    assert (ratio > 1e-7) == (2 in kept)
