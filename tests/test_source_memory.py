"""What keeps a fit from a source small and repeatable: DuckDB's bounded memory on the
connections we open, the banded dense off-diagonal update, the same bits from one thread."""
from __future__ import annotations

import gc
import os

import numpy as np
import pytest

from mixedmodels.crossprod import from_design
from mixedmodels.linalg import cholesky
from mixedmodels.linalg.kernels import as_dense, scale_off
from mixedmodels.lmm import LinearMixedModel
from mixedmodels.terms import ReTerm, order_terms

from source_helpers import fit_and_warnings, make_frame

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")


def _term(name, refs, z, cols):
    levels = tuple(str(i) for i in range(int(refs.max()) + 1))
    return ReTerm(group_name=name, group_vars=(name,), levels=levels,
                  refs=refs.astype(np.int32), z=z, column_names=tuple(cols), lhs_spec=None)


def test_banded_dense_off_block_equals_the_plain_arithmetic(monkeypatch):
    """A crossed design with a dense pair block (every pair observed) and a tiled first term:
    L_21 from the banded path has the same bits as scale, copy and divide on whole blocks."""
    monkeypatch.setattr(cholesky, "SMALL_DENSE", 0)
    monkeypatch.setattr(cholesky, "BAND_ENTRIES", 64)      # many bands on a small block
    rng = np.random.default_rng(7)
    n = 900
    x = rng.normal(size=n)
    g1, g2 = rng.integers(0, 60, n), rng.integers(0, 5, n)
    terms = order_terms([_term("g1", g1, np.column_stack([np.ones(n), x]), ["(Intercept)", "x"]),
                         _term("g2", g2, np.ones((n, 1)), ["(Intercept)"])])
    X = np.column_stack([np.ones(n), x])
    y = X @ [1.0, 2.0] + rng.normal(size=n)
    A = from_design(terms, X, y, np.zeros(n), np.ones(n))
    model = LinearMixedModel(A, tuple(terms), reml=True)
    theta = np.array([0.8, 0.3, 0.5, 1.2])
    calls = []
    original = cholesky.BlockedCholesky._dense_off
    monkeypatch.setattr(cholesky.BlockedCholesky, "_dense_off",
                        lambda self, *a: calls.append(a[:2]) or original(self, *a))
    objective = model.objective(theta)
    factor = model.L
    assert calls == [(1, 0)]
    Ts = model.templates(theta)
    plain = np.array(as_dense(scale_off(factor.A_off[(1, 0)], Ts[1], Ts[0], 5, 60)))
    plain = factor.diag[0].rdiv_t(plain)
    assert np.array_equal(factor.off[(1, 0)], plain)
    monkeypatch.setattr(cholesky, "BAND_ENTRIES", 1 << 20)
    assert model.objective(theta) == objective


def test_path_connections_bound_duckdbs_memory_and_clean_up(tmp_path):
    from mixedmodels.sources.duckdb import PATH_MEMORY_LIMIT, open_path

    make_frame().to_parquet(tmp_path / "a.parquet")
    source = open_path(tmp_path / "a.parquet")
    limit, spill = source.connection.sql(
        "SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchall()[0]
    assert limit.replace(" ", "") == "244.1MiB"                 # 256MB, shown in MiB
    assert PATH_MEMORY_LIMIT == "256MB"
    assert os.path.isdir(spill) and not spill.startswith(os.getcwd())
    del source
    gc.collect()
    assert not os.path.exists(spill)


def test_one_thread_gives_the_same_bits_every_run():
    """DuckDB's parallel SUM adds its threads' partial sums in the order they finish; on a
    connection with one thread the order is the rows' and two fits agree to the bit."""
    con = duckdb.connect(config={"threads": 1})
    con.register("frame", make_frame(n=300_000))      # many chunks of rows
    rel = con.sql("SELECT * FROM frame")
    (first, w0), (second, w1) = (fit_and_warnings("y ~ x + (x | g1) + (1 | g2)", rel)
                                 for _ in range(2))
    fits = [first, second]
    assert w0 == w1
    assert np.array_equal(fits[0].theta, fits[1].theta)
    assert fits[0].objective == fits[1].objective
    assert np.array_equal(fits[0].fixef.to_numpy(), fits[1].fixef.to_numpy())
