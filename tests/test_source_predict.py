"""predict() and write_predictions() of models fitted from DuckDB and Dask sources."""
from __future__ import annotations

import gc

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.errors import DataError

from source_helpers import fit_and_warnings, make_frame

duckdb = pytest.importorskip("duckdb")
dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("pyarrow")

FORMULAS = [
    "y ~ x * f + offset(o) + (x | g1) + (1 | g2)",
    "y ~ scale(x2) + log(w) + (1 | g1) + (1 | g2/g3)",
]
RE_FORMS = [None, "NA", "~(1 | g1)", "~(0 + x | g1)"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture(scope="module")
def new() -> pd.DataFrame:
    """New rows: unseen levels of g1, a missing x, f, o and g1, a new level of g2."""
    data = make_frame(200, seed=7)
    data.loc[:4, "g1"] = ["n1", "n2", "n1", "s03", "n3"]
    data.loc[5, "x"] = np.nan
    data.loc[6, "f"] = None
    data.loc[7, "o"] = np.nan
    data.loc[8, "g2"] = 99
    return data


@pytest.fixture(scope="module")
def files(frame, new, tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    frame.to_parquet(root / "train.parquet")
    new.to_parquet(root / "new.parquet")
    return root


def _fit(formula, data):
    return mm.lmer(formula, data)


def _values(out) -> np.ndarray:
    """Predictions in the order of the rows' ``id``, whatever came back."""
    if "DuckDBPyRelation" in type(out).__name__:
        return out.df().set_index("id").sort_index()["prediction"].to_numpy()
    if hasattr(out, "compute"):
        return out.compute().sort_index().to_numpy()
    return out.to_numpy()


def _close(got, want, rtol):
    """NaN in the same rows; the rest within rtol of the predictions' scale."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.nanmax(np.abs(want)))


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("where", ["parquet", "relation", "dask"])
def test_predictions_as_in_memory(frame, new, files, formula, where):
    con = duckdb.connect()
    source = {"parquet": str(files / "train.parquet"),
              "relation": con.sql(f"SELECT * FROM read_parquet('{files / 'train.parquet'}')"),
              "dask": dd.from_pandas(frame, npartitions=3)}[where]
    (m0, w0), (m1, w1) = fit_and_warnings(formula, frame), fit_and_warnings(formula, source)
    assert w1 == w0                  # the nested formula's singular fit warns in both
    newdata = {"pandas": new, "parquet": str(files / "new.parquet"),
               "relation": con.sql(f"SELECT * FROM read_parquet('{files / 'new.parquet'}')"),
               "dask": dd.from_pandas(new, npartitions=2)}
    for re_form in RE_FORMS:
        if "~(0 + x" in str(re_form) and "(x | g1)" not in formula:
            continue
        want = m0.predict(new, re_form=re_form, allow_new_levels=True).to_numpy()
        same = m1.predict(new, re_form=re_form, allow_new_levels=True)
        assert isinstance(same, pd.Series) and same.index.equals(new.index)
        if where == "dask":
            polars = pytest.importorskip("polars")
            _close(m1.predict(polars.from_pandas(new), re_form=re_form,
                              allow_new_levels=True).to_numpy(), same.to_numpy(), 1e-15)
        for kind, data in newdata.items():
            got = _values(m1.predict(data, re_form=re_form, allow_new_levels=True))
            # the same model on every engine: round-off; against the in-memory fit: its
            # estimates agree to the optimizer's tolerance
            _close(got, same.to_numpy(), 1e-12)
            _close(got, want, 1e-9)
    if "offset(o)" in formula:                        # a missing x, f or o: NaN
        assert np.isnan(want[[5, 6, 7]]).all() and not np.isnan(want[8:]).any()


@pytest.mark.parametrize("where", ["parquet", "dask"])
def test_predict_on_the_rows_used(frame, files, where):
    formula = FORMULAS[0]
    source = str(files / "train.parquet") if where == "parquet" \
        else dd.from_pandas(frame, npartitions=3)
    m0, m1 = _fit(formula, frame), _fit(formula, source)
    out = m1.predict(re_form="NA")
    assert ("DuckDBPyRelation" in type(out).__name__) == (where == "parquet")
    _close(_values(out), m0.predict(re_form="NA").to_numpy(), 1e-9)
    _close(_values(m1.predict()), m0.fitted().to_numpy(), 1e-9)


@pytest.mark.parametrize("where", ["parquet", "dask"])
def test_unseen_levels_are_errors_that_name_them(frame, new, files, where):
    source = str(files / "train.parquet") if where == "parquet" \
        else dd.from_pandas(frame, npartitions=3)
    m1 = _fit(FORMULAS[0], source)
    newdata = {"parquet": str(files / "new.parquet"),
               "dask": dd.from_pandas(new, npartitions=2)}[where]
    with pytest.raises(DataError, match=r"new level\(s\) 'n1', 'n2', 'n3' of grouping "
                                        r"factor 'g1'.*allow_new_levels=True"):
        m1.predict(newdata)
    with pytest.raises(DataError, match=r"new level\(s\) '99' of grouping factor 'g2'"):
        m1.predict(newdata, re_form="~(1 | g2)")
    m1.predict(newdata, re_form="NA")                 # no random effects: no level needed
    bad = new.assign(f=np.where(new.id == 3, "zz", new.f))
    bad = bad if where == "parquet" else dd.from_pandas(bad, npartitions=2)
    if where == "parquet":
        bad.to_parquet(files / "bad.parquet")
        bad = str(files / "bad.parquet")
    with pytest.raises(DataError, match="column 'f' has level 'zz' that was not present"):
        m1.predict(bad, allow_new_levels=True)
    lacking = new.drop(columns="x")
    if where == "dask":
        lacking = dd.from_pandas(lacking, npartitions=2)
    else:
        con = duckdb.connect()
        con.register("lacking", lacking)
        lacking = con.sql("SELECT * FROM lacking")
    with pytest.raises(DataError, match="newdata has no column 'x'"):
        m1.predict(lacking, allow_new_levels=True)


def test_write_predictions_duckdb(frame, new, files, tmp_path):
    m0, m1 = _fit(FORMULAS[0], frame), _fit(FORMULAS[0], str(files / "train.parquet"))
    path = m1.write_predictions(tmp_path / "train_pred.parquet", re_form="NA")
    assert path == str(tmp_path / "train_pred.parquet")
    out = pd.read_parquet(path).set_index("id").sort_index()
    assert set(frame.columns) - {"id"} < set(out.columns) and len(out) == m0.nobs
    _close(out["prediction"].to_numpy(), m0.predict(re_form="NA").to_numpy(), 1e-9)
    _close(out["fitted"].to_numpy(), m0.fitted().to_numpy(), 1e-9)
    _close(out["residual"].to_numpy(), m0.residuals().to_numpy(), 1e-8)
    path = m1.write_predictions(tmp_path / "new_pred.parquet", newdata=str(files / "new.parquet"),
                                allow_new_levels=True)
    out = pd.read_parquet(path).set_index("id").sort_index()
    assert "fitted" not in out.columns
    _close(out["prediction"].to_numpy(),
           m0.predict(new, allow_new_levels=True).to_numpy(), 1e-9)


def test_write_predictions_dask(frame, new, tmp_path):
    m0, w0 = fit_and_warnings(FORMULAS[1], frame)
    m1, w1 = fit_and_warnings(FORMULAS[1], dd.from_pandas(frame, npartitions=3))
    assert w1 == w0
    path = m1.write_predictions(tmp_path / "train_pred")
    out = pd.read_parquet(path).sort_values("id")
    _close(out["prediction"].to_numpy(), m0.fitted().to_numpy(), 1e-9)
    _close(out["residual"].to_numpy(), m0.residuals().to_numpy(), 1e-8)
    path = m1.write_predictions(tmp_path / "new_pred", newdata=dd.from_pandas(new, 2),
                                re_form="NA")
    out = pd.read_parquet(path).sort_values("id")
    _close(out["prediction"].to_numpy(), m0.predict(new, re_form="NA").to_numpy(), 1e-9)


def test_no_tables_in_the_users_connection_and_relations_outlive_the_model(frame, new):
    """b reaches DuckDB as data frames that the relations hold: nothing is created in the
    user's connection, and a relation keeps working after its model is gone."""
    con = duckdb.connect()
    con.register("train", frame)
    con.register("fresh", new)

    def tables():
        return con.sql("SELECT table_name FROM duckdb_tables()").fetchall()

    models = [_fit(FORMULAS[0], con.sql("SELECT * FROM train")) for _ in range(2)]
    expected_fitted = models[0].fitted().df()["fitted"].to_numpy()
    rel = models[0].fitted()
    pred = models[1].predict(con.sql("SELECT * FROM fresh"), allow_new_levels=True)
    expected_pred = pred.df()["prediction"].to_numpy()
    summary = models[0].summary()              # its residual quantiles read b too
    assert "Scaled residuals" in str(summary)
    assert tables() == []
    del models
    gc.collect()
    assert np.array_equal(rel.df()["fitted"].to_numpy(), expected_fitted)
    assert np.array_equal(pred.df()["prediction"].to_numpy(), expected_pred, equal_nan=True)
    assert tables() == []


@pytest.mark.parametrize("where", ["parquet", "dask"])
def test_bootstrap_says_how_to_bring_the_rows_into_memory(frame, files, where):
    from mixedmodels.sources.result import RowsNeededError

    source = str(files / "train.parquet") if where == "parquet" \
        else dd.from_pandas(frame, npartitions=3)
    m1 = _fit("y ~ x + (1 | g1)", source)
    how = r"\.df\(\).*read_parquet" if where == "parquet" else r"ddf\.compute\(\)"
    with pytest.raises(RowsNeededError, match=r"parametric bootstrap \(bootstrap\(\)\) needs "
                                              rf"the data in memory.*{how}.*mm\.lmer\("):
        m1.bootstrap(5)
    with pytest.raises(RowsNeededError, match=r"parametric bootstrap \(confint\(method='boot'"
                                              rf"\)\).*{how}.*\.confint\("):
        m1.confint(method="boot")
