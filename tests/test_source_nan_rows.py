"""Rows where a formula expression gives NaN are dropped and counted as in memory."""
from __future__ import annotations


import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.errors import DataError

from source_helpers import assert_same_summary, fit_and_warnings as _fit, make_frame

duckdb = pytest.importorskip("duckdb")
dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("pyarrow")

FORMULA = "log(yp) ~ x + sqrt(x2c) + offset(log(w)) + (1 | g1)"


@pytest.fixture(scope="module")
def data():
    frame = make_frame(800, seed=3)
    frame["yp"] = frame.y + 3.0          # a few negative: log() NaN
    frame["x2c"] = frame.x2 - 3.0        # a few negative: sqrt() NaN
    frame.loc[[2, 9], "x"] = np.nan      # missing, and NaN in an expression on row 9 too
    frame.loc[9, "yp"] = -1.0
    return frame


@pytest.mark.parametrize("where", ["parquet", "dask"])
def test_nan_rows_dropped_and_counted_as_in_memory(data, tmp_path, where):
    assert (data.yp < 0).sum() > 2 and (data.x2c < 0).sum() > 2
    data.to_parquet(tmp_path / "d.parquet")
    source = str(tmp_path / "d.parquet") if where == "parquet" \
        else dd.from_pandas(data, npartitions=3)
    m0, w0 = _fit(FORMULA, data)
    m1, w1 = _fit(FORMULA, source)
    assert any("where log(yp) is NaN" in w and "where sqrt(x2c) is NaN" in w for w in w0)
    assert w1 == w0
    assert m1.nobs == m0.nobs and m1.info.n_dropped_rows == m0.info.n_dropped_rows
    assert m1.objective == pytest.approx(m0.objective, rel=1e-9)
    assert_same_summary(str(m0.summary()), str(m1.summary()))
    fitted = m1.predict()
    got = fitted.df()["prediction"] if where == "parquet" else fitted.compute()
    assert len(got) == m0.nobs


@pytest.mark.parametrize("where", ["parquet", "dask"])
def test_log_of_zero_stays_an_error(data, tmp_path, where):
    zero = data.assign(yp=np.where(data.id == 5, 0.0, data.yp.abs() + 0.1))
    zero.to_parquet(tmp_path / "z.parquet")
    dropped = pytest.warns(mm.DroppedRowsWarning, match=r"2 row\(s\) dropped .*'x': 2")
    with pytest.raises(DataError, match="-Inf"), dropped:
        mm.lmer("log(yp) ~ x + (1 | g1)", zero)
    source = str(tmp_path / "z.parquet") if where == "parquet" \
        else dd.from_pandas(zero, npartitions=3)
    dropped = pytest.warns(mm.DroppedRowsWarning, match=r"2 row\(s\) dropped .*'x': 2")
    with pytest.raises(DataError, match=r"response 'log\(yp\)'.*non-finite"), dropped:
        mm.lmer("log(yp) ~ x + (1 | g1)", source)
