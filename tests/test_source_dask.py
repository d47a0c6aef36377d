"""lmer from a Dask DataFrame (on a LocalCluster) gives the in-memory fit, for any partitioning."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.errors import DataError
from mixedmodels.sources.result import RowsNeededError, SourceLmerResult

from source_helpers import assert_same_summary, fit_and_warnings as _fit, make_frame

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.filterwarnings(
    "ignore::mixedmodels.formula.design.DroppedRowsWarning")


@pytest.fixture(scope="module")
def client():
    """Two single-threaded workers in this process, closed after the module."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # the dashboard port may be taken
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                           dashboard_address=None)
        with distributed.Client(cluster) as c:
            yield c
        cluster.close()


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    data = make_frame(1500, seed=3)
    data.loc[[3, 10, 50], "x"] = np.nan
    data.loc[[7], "g1"] = None
    return data


@pytest.mark.parametrize("formula,kw", [
    ("y ~ x * f + (x | g1) + (1 | g2)", {}),
    ("y ~ scale(x2) + log(w) + offset(o) + (x || g1) + (1 | g2/g3)", dict(weights="w")),
])
def test_same_summary_as_in_memory(client, frame, formula, kw):
    m0, w0 = _fit(formula, frame, **kw)
    m1, w1 = _fit(formula, dd.from_pandas(frame, npartitions=4), **kw)
    assert isinstance(m1, SourceLmerResult) and w1 == w0
    assert m1.objective == pytest.approx(m0.objective, rel=1e-9)
    assert_same_summary(str(m0.summary()), str(m1.summary()))
    pd.testing.assert_frame_equal(m1.ranef(), m0.ranef(), rtol=1e-6, atol=1e-8)
    pd.testing.assert_frame_equal(m1.coefficients(ddf="kenward-roger"),
                                  m0.coefficients(ddf="kenward-roger"), rtol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_any_partitioning_agrees(client, frame, seed):
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, len(frame)), size=rng.integers(1, 9), replace=False))
    divisions = [0, *cuts.tolist(), len(frame) - 1]
    ddf = dd.from_pandas(frame, npartitions=1).repartition(divisions=divisions)
    formula = "y ~ x + f + (x | g1) + (1 | g2)"
    m0 = mm.lmer(formula, frame)
    m1 = mm.lmer(formula, ddf)
    assert m1.objective == pytest.approx(m0.objective, rel=1e-9)
    np.testing.assert_allclose(m1.theta, m0.theta, rtol=1e-5, atol=1e-7)


def test_same_partitioning_gives_the_same_bits(client, frame):
    ddf = dd.from_pandas(frame, npartitions=5)
    a = mm.lmer("y ~ x + (x | g1) + (1 | g2)", ddf).model.A
    b = mm.lmer("y ~ x + (x | g1) + (1 | g2)", ddf).model.A
    assert np.array_equal(a.xx, b.xx)
    assert all(np.array_equal(x, y) for x, y in zip(a.diag, b.diag))
    assert all(np.array_equal(x, y) for x, y in zip(a.xz, b.xz))
    assert all(np.array_equal(a.off[k].toarray(), b.off[k].toarray()) for k in a.off)


def test_fitted_and_residuals_are_dask_series(client, frame):
    formula = "y ~ x * f + offset(o) + (x | g1) + (1 | g2)"
    m0 = mm.lmer(formula, frame, weights="w")
    m1 = mm.lmer(formula, dd.from_pandas(frame, npartitions=3), weights="w")
    fitted = m1.fitted()
    assert type(fitted).__module__.startswith("dask")
    got = fitted.compute()
    pd.testing.assert_index_equal(got.index, m0.fitted().index)
    np.testing.assert_allclose(got, m0.fitted(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(m1.residuals(type="pearson").compute(),
                               m0.residuals(type="pearson"), rtol=1e-7, atol=1e-9)
    with pytest.raises(RowsNeededError, match="Dask"):
        m1.hatvalues()


def test_level_only_in_a_later_partition_and_categories(client, frame):
    data = frame.sort_values("g1", na_position="first").reset_index(drop=True)
    data["f"] = pd.Categorical(data["f"], categories=["mid", "lo", "hi"])
    ddf = dd.from_pandas(data, npartitions=4, sort=False)
    formula = "y ~ x + f + (x | g1)"
    m0, m1 = mm.lmer(formula, data), mm.lmer(formula, ddf)
    assert list(m1.fixef.index) == list(m0.fixef.index) == ["(Intercept)", "x", "flo", "fhi"]
    assert m1.ngroups == m0.ngroups
    assert m1.objective == pytest.approx(m0.objective, rel=1e-9)


def test_the_row_program_travels_to_workers(client, frame):
    from mixedmodels.sources.dask import RowProgram

    m = mm.lmer("y ~ scale(x2) + f + (x | g1)", dd.from_pandas(frame, npartitions=2))
    program = RowProgram.of(m.info.spec, m.source.categories)
    assert pickle.loads(pickle.dumps(program)).terms[0].levels == m.terms[0].levels


def test_bad_values_and_glmer(client, frame):
    ddf = dd.from_pandas(frame.assign(w=frame.w - 1.0), npartitions=2)
    with pytest.raises(DataError, match="weights column 'w' has .* negative"):
        mm.lmer("y ~ x + (1 | g1)", ddf, weights="w")
    with pytest.raises(DataError, match="glmer fits from in-memory data frames.*Dask"):
        mm.glmer("y ~ x + (1 | g1)", ddf, family="poisson")
    with pytest.raises(DataError, match="unknown column 'nope'"):
        mm.lmer("y ~ nope + (1 | g1)", ddf)


def test_ordered_factor_boolean_and_interaction_grouping(client):
    data = make_frame(900, seed=5)
    data["f"] = pd.Categorical(data["f"], categories=["lo", "mid", "hi"], ordered=True)
    data["b"] = data.x > 0
    formula = "y ~ f * x + b + (x | g2) + (1 | g1:g3)"
    m0 = mm.lmer(formula, data)
    m1 = mm.lmer(formula, dd.from_pandas(data, npartitions=3))
    assert list(m1.fixef.index) == list(m0.fixef.index) == [
        "(Intercept)", "f.L", "f.Q", "x", "bTRUE", "f.L:x", "f.Q:x"]
    assert m1.ngroups == m0.ngroups
    assert m1.objective == pytest.approx(m0.objective, rel=1e-9)
    assert_same_summary(str(m0.summary()), str(m1.summary()))
