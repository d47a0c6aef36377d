"""lmer from DuckDB (relations, Parquet and CSV paths) gives the in-memory fit."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.errors import DataError, FormulaError
from mixedmodels.formula.design import RankDeficiencyWarning
from mixedmodels.sources.result import RowsNeededError, SourceLmerResult

from source_helpers import assert_same_summary, fit_and_warnings as _fit, make_frame

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")

FORMULAS = [
    ("y ~ x * f + (x | g1) + (1 | g2)", {}),
    ("y ~ scale(x2) + log(w) + offset(o) + (x || g1) + (1 | g2/g3)", dict(weights="w")),
    ("y ~ x + I(x2^2) + (1 | g1) + (1 | g2)", dict(reml=False)),
]


def _split(frame: pd.DataFrame, parts: int) -> list[pd.DataFrame]:
    bounds = np.linspace(0, len(frame), parts + 1).astype(int)
    return [frame.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture(scope="module")
def files(frame, tmp_path_factory):
    """The frame as one Parquet file, as four Parquet files and as two CSV files."""
    root = tmp_path_factory.mktemp("duck")
    frame.to_parquet(root / "all.parquet")
    (root / "parts").mkdir()
    for k, part in enumerate(_split(frame, 4)):
        part.to_parquet(root / "parts" / f"part{k}.parquet")
    (root / "csv").mkdir()
    for k, part in enumerate(_split(frame, 2)):
        part.to_csv(root / "csv" / f"part{k}.csv", index=False)
    return root


@pytest.mark.parametrize("formula,kw", FORMULAS)
@pytest.mark.parametrize("where", ["file", "glob", "csv", "relation"])
def test_same_summary_as_in_memory(frame, files, formula, kw, where):
    m0, w0 = _fit(formula, frame, **kw)
    if where == "relation":
        con = duckdb.connect()
        source = con.sql(f"SELECT * FROM read_parquet('{files / 'all.parquet'}')")
    else:
        source = {"file": str(files / "all.parquet"), "glob": str(files / "parts" / "*.parquet"),
                  "csv": str(files / "csv" / "*.csv")}[where]
    m1, w1 = _fit(formula, source, **kw)
    assert isinstance(m1, SourceLmerResult)
    assert w1 == w0
    assert m1.objective == pytest.approx(m0.objective, rel=1e-9)
    assert_same_summary(str(m0.summary()), str(m1.summary()))
    np.testing.assert_allclose(m1.fixef, m0.fixef, rtol=1e-7, atol=1e-9)
    pd.testing.assert_frame_equal(m1.varcorr(), m0.varcorr(), rtol=1e-6)
    pd.testing.assert_frame_equal(m1.ranef(), m0.ranef(), rtol=1e-6, atol=1e-8)
    for g, table in m0.coef().items():
        pd.testing.assert_frame_equal(m1.coef()[g], table, rtol=1e-6, atol=1e-8)
    assert m1.nobs == m0.nobs and m1.ngroups == m0.ngroups


def test_inference_from_the_blocks(frame, files):
    formula = "y ~ x * f + (x | g1) + (1 | g2)"
    m0 = mm.lmer(formula, frame, weights="w")
    m1 = mm.lmer(formula, str(files / "parts" / "*.parquet"), weights="w")
    for ddf in ("satterthwaite", "kenward-roger"):
        pd.testing.assert_frame_equal(m1.coefficients(ddf=ddf), m0.coefficients(ddf=ddf),
                                      rtol=1e-6)
    for kind in (1, 2, 3):
        pd.testing.assert_frame_equal(m1.anova(type=kind), m0.anova(type=kind), rtol=1e-6)
    pd.testing.assert_frame_equal(m1.confint(method="wald"), m0.confint(method="wald"),
                                  rtol=1e-6)
    np.testing.assert_allclose(m1.vcov, m0.vcov, rtol=1e-6)


def test_likelihood_ratio_test_between_fits_on_one_source(frame, files, tmp_path):
    path = str(files / "all.parquet")
    formulas = ("y ~ x + (1 | g1)", "y ~ x + (x | g1)")
    (small0, w0), (big0, w1) = (_fit(f, frame, reml=False) for f in formulas)
    (small1, v0), (big1, v1) = (_fit(f, path, reml=False) for f in formulas)
    assert (v0, v1) == (w0, w1)          # the same warnings (a singular slope model)
    np.testing.assert_allclose(mm.anova(small1, big1).to_numpy(float),
                               mm.anova(small0, big0).to_numpy(float), rtol=1e-6)
    frame.assign(y=frame.y.to_numpy()[::-1]).to_parquet(tmp_path / "other.parquet")
    with pytest.warns(mm.SingularFitWarning):    # reversed y: no slope variance left
        other = mm.lmer("y ~ x + (x | g1)", str(tmp_path / "other.parquet"), reml=False)
    with pytest.raises(Exception, match="same data"):
        mm.anova(small1, other)


def test_fitted_and_residuals_stream_as_relations(frame, files):
    formula = "y ~ x * f + offset(o) + (x | g1) + (1 | g2)"
    m0 = mm.lmer(formula, frame, weights="w")
    m1 = mm.lmer(formula, str(files / "parts" / "*.parquet"), weights="w")
    rel = m1.fitted()
    assert "DuckDBPyRelation" in type(rel).__name__
    got = rel.df().set_index("id").sort_index()
    np.testing.assert_allclose(got["fitted"], m0.fitted().to_numpy(), rtol=1e-8, atol=1e-10)
    res = m1.residuals(type="pearson").df().set_index("id").sort_index()["residual"]
    np.testing.assert_allclose(res, m0.residuals(type="pearson").to_numpy(), rtol=1e-7,
                               atol=1e-9)
    assert m1.predict().df().shape[0] == m0.nobs
    for call in (m1.hatvalues, m1.simulate, lambda: m1.bootstrap(2), m1.influence,
                 lambda: m1.rows.X):
        with pytest.raises(RowsNeededError, match="DuckDB"):
            call()


def test_missing_values_dropped_and_counted_as_in_memory(frame, tmp_path):
    data = frame.copy()
    data.loc[[3, 10, 50], "x"] = np.nan
    data.loc[[7, 10], "g1"] = None
    data.loc[[99], "f"] = None
    data.loc[[500], "x2"] = np.nan          # not used: no row dropped for it
    data.to_parquet(tmp_path / "na.parquet")
    formula = "y ~ x + f + (x | g1) + (1 | g2)"
    m0, w0 = _fit(formula, data)
    m1, w1 = _fit(formula, str(tmp_path / "na.parquet"))
    assert w1 == w0 and any("5 row(s) dropped" in w for w in w1)
    assert m1.nobs == m0.nobs == len(data) - 5
    assert "(5 observations deleted due to missingness)" in str(m1.summary())
    assert_same_summary(str(m0.summary()), str(m1.summary()))


def test_a_level_only_in_a_later_file(frame, tmp_path):
    early = frame[frame.g1 != "s49"]
    late = frame[frame.g1 == "s49"]
    early.to_parquet(tmp_path / "a.parquet")
    late.to_parquet(tmp_path / "b.parquet")
    m0 = mm.lmer("y ~ x + (x | g1)", pd.concat([early, late]))
    m1 = mm.lmer("y ~ x + (x | g1)", str(tmp_path / "*.parquet"))
    assert m1.ngroups == {"g1": 50}
    assert m1.objective == pytest.approx(m0.objective, rel=1e-9)
    pd.testing.assert_frame_equal(m1.ranef(), m0.ranef(), rtol=1e-6, atol=1e-8)


def test_rank_deficient_columns_dropped_as_in_memory(frame, tmp_path):
    data = frame.assign(x3=2 * frame.x - frame.x2)
    data.to_parquet(tmp_path / "rank.parquet")
    formula = "y ~ x + x2 + x3 + (1 | g1)"
    m0, w0 = _fit(formula, data)
    m1, w1 = _fit(formula, str(tmp_path / "rank.parquet"))
    assert w1 == w0 and any(RankDeficiencyWarning.__name__ in w for w in w1)
    assert m1.info.dropped_columns == m0.info.dropped_columns == ("x3",)
    assert_same_summary(str(m0.summary()), str(m1.summary()))


def test_a_column_missing_from_some_files(frame, tmp_path):
    frame.iloc[:100].to_parquet(tmp_path / "a.parquet")
    frame.iloc[100:].drop(columns="x").to_parquet(tmp_path / "b.parquet")
    with pytest.raises(DataError, match=r"column 'x' is missing from 1 of 2 files.*b\.parquet"):
        mm.lmer("y ~ x + (1 | g1)", str(tmp_path / "*.parquet"))
    # a column no file is asked for may be missing anywhere
    m = mm.lmer("y ~ x2 + (1 | g1)", str(tmp_path / "*.parquet"))
    assert m.nobs == len(frame)


def test_files_whose_schemas_disagree(frame, tmp_path):
    frame.iloc[:100].to_parquet(tmp_path / "a.parquet")
    frame.iloc[100:].assign(g2=lambda d: d.g2.map("k{}".format)).to_parquet(tmp_path / "b.parquet")
    with pytest.raises(DataError, match=r"column 'g2' has different types.*BIGINT.*VARCHAR"):
        mm.lmer("y ~ x + (1 | g2)", str(tmp_path / "*.parquet"))
    # numbers that only widen (integer in one file, double in another) are fine
    frame.iloc[100:].assign(g3=lambda d: d.g3.astype(float)).to_parquet(tmp_path / "b.parquet")
    m = mm.lmer("y ~ g3 + (1 | g1)", str(tmp_path / "*.parquet"))
    assert m.nobs == len(frame)


def test_unreadable_paths(tmp_path):
    with pytest.raises(DataError, match="no file matches"):
        mm.lmer("y ~ x + (1 | g)", str(tmp_path / "nothing" / "*.parquet"))
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"cannot read '.*bad\.parquet' as PARQUET"):
        mm.lmer("y ~ x + (1 | g)", str(tmp_path / "bad.parquet"))
    (tmp_path / "data.json").write_text("{}")
    with pytest.raises(DataError, match="'.*data.json' is not a Parquet or CSV file"):
        mm.lmer("y ~ x + (1 | g)", str(tmp_path / "data.json"))
    with pytest.raises(DataError, match=r"'sleepstudy' is a bundled dataset: pass "
                                        r"mixedmodels\.datasets\.load\('sleepstudy'\)"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", "SleepStudy")


def test_unsupported_sources_and_terms(frame, files):
    with pytest.raises(DataError, match="a DuckDB relation, a path or glob of Parquet or CSV "
                                        "files.*Dask DataFrame, not ndarray"):
        mm.lmer("y ~ x + (1 | g1)", frame.to_numpy())
    with pytest.raises(DataError, match="no file matches 'sleepstudy'.*datasets.load"):
        mm.lmer("y ~ x + (1 | g1)", "sleepstudy")
    pl = pytest.importorskip("polars")
    with pytest.raises(DataError, match=r"polars LazyFrame: collect\(\) it .* pass the path"):
        mm.lmer("y ~ x + (1 | g1)", pl.from_pandas(frame).lazy())
    with pytest.raises(DataError, match="a DuckDB relation, a path or glob of Parquet or CSV "
                                        "files.*Dask DataFrame, not ndarray"):
        mm.lmer("y ~ x + (1 | g1)", frame.to_numpy())
    path = str(files / "all.parquet")
    with pytest.raises(FormulaError, match=r"'poly\(x, 2\)' is not supported"):
        mm.lmer("y ~ poly(x, 2) + (1 | g1)", path)
    with pytest.raises(DataError, match="unknown column 'nope'"):
        mm.lmer("y ~ nope + (1 | g1)", path)
    with pytest.raises(FormulaError, match="grouping variable 'gg'"):
        mm.lmer("y ~ x + (1 | gg)", path)
    with pytest.raises(DataError, match="glmer fits from in-memory data frames.*not from "
                                        "Parquet/CSV files"):
        mm.glmer("y ~ x + (1 | g1)", path, family="poisson")


def test_bad_values_name_the_column(frame, tmp_path):
    frame.assign(w=frame.w - 1.0).to_parquet(tmp_path / "w.parquet")
    with pytest.raises(DataError, match="weights column 'w' has .* negative"):
        mm.lmer("y ~ x + (1 | g1)", str(tmp_path / "w.parquet"), weights="w")
    frame.assign(x=np.where(frame.id == 5, np.inf, frame.x)).to_parquet(tmp_path / "i.parquet")
    with pytest.raises(DataError, match="column 'x' has 1 infinite"):
        mm.lmer("y ~ x + (1 | g1)", str(tmp_path / "i.parquet"))


def test_enum_and_boolean_columns_keep_r_levels(frame):
    con = duckdb.connect()
    data = frame.assign(big=frame.x > 0,
                        f=pd.Categorical(frame.f, categories=["mid", "lo", "hi"]))
    con.register("frame_view", data)
    rel = con.sql("SELECT * FROM frame_view")
    formula = "y ~ x + f + big + (1 | g1)"
    m0, m1 = mm.lmer(formula, data), mm.lmer(formula, rel)
    assert list(m1.fixef.index) == list(m0.fixef.index) == [
        "(Intercept)", "x", "flo", "fhi", "bigTRUE"]
    assert m1.objective == pytest.approx(m0.objective, rel=1e-9)


def test_ranova_profile_and_drop1_from_the_blocks(frame, files):
    formula = "y ~ x + f + (x | g1) + (1 | g2/g3)"
    m0, w0 = _fit(formula, frame)
    m1, w1 = _fit(formula, str(files / "all.parquet"))
    assert w1 == w0
    # a boundary term has LRT ~ 0: its p-value near 1 is compared absolutely
    pd.testing.assert_frame_equal(m1.ranova(), m0.ranova(), rtol=1e-7, atol=1e-5)
    pd.testing.assert_frame_equal(m1.drop1(), m0.drop1(), rtol=1e-6)
    small0 = mm.lmer("y ~ x + (1 | g1)", frame.iloc[:600])
    frame.iloc[:600].to_parquet(files / "small.parquet")
    small1 = mm.lmer("y ~ x + (1 | g1)", str(files / "small.parquet"))
    pd.testing.assert_frame_equal(small1.confint(method="profile"),
                                  small0.confint(method="profile"), rtol=1e-5, atol=1e-7)
    with pytest.raises(RowsNeededError, match="parametric bootstrap"):
        m1.confint(method="boot", nsim=3)


def test_lme4s_checks_before_the_fit_as_in_memory(frame, tmp_path):
    data = frame.assign(big=frame.x * 1e5, exact=2.0 + 3.0 * frame.x, huge=frame.y * 1e60)
    data.to_parquet(tmp_path / "checks.parquet")
    path = str(tmp_path / "checks.parquet")
    for formula in ("y ~ big + (1 | g1)", "exact ~ x + (1 | g1)"):
        m0, w0 = _fit(formula, data)
        m1, w1 = _fit(formula, path)
        assert w1 == w0 and w1, formula          # ScaleWarning; the exact fit's warning
        assert m1.sigma == pytest.approx(m0.sigma, rel=1e-6, abs=1e-12)
        assert_same_summary(str(m0.summary()), str(m1.summary()))
    with pytest.raises(DataError, match="the response 'huge' is on too large a scale"):
        mm.lmer("huge ~ x + (1 | g1)", path)
    with pytest.raises(DataError, match="must name a column of the source"):
        mm.lmer("y ~ x + (1 | g1)", path, weights=frame.w.to_numpy())
    with pytest.raises(Exception, match="reml must be True"):
        mm.lmer("y ~ x + (1 | g1)", path, reml="ML")


def test_structured_terms_and_residual_structures(frame, files):
    path = str(files / "all.parquet")
    for formula in ("y ~ x + diag(x | g1) + (1 | g2)", "y ~ x + us(x | g1)"):
        m0, m1 = mm.lmer(formula, frame), mm.lmer(formula, path)
        assert m1.objective == pytest.approx(m0.objective, rel=1e-9)
        assert_same_summary(str(m0.summary()), str(m1.summary()))
    with pytest.raises(DataError, match="residual structures.*in-memory data frames only"):
        mm.lmer("y ~ x + (1 | g1)", path, correlation=mm.corAR1("~ 1 | g1"))


def test_levels_in_rs_order_under_another_collation(frame):
    # a case-insensitive collation sorts 's00_1' before 'S01_0'; R's C order does not
    data = frame.assign(g1=np.where(frame.id % 3 == 0, frame.g1.str.upper(), frame.g1)
                        + "_" + (frame.id % 3).astype(str))
    con = duckdb.connect()
    con.execute("SET default_collation = 'nocase'")
    con.register("frame_view", data)
    m0 = mm.lmer("y ~ x + (1 | g1)", data)
    m1 = mm.lmer("y ~ x + (1 | g1)", con.sql("SELECT * FROM frame_view"))
    assert m1.terms[0].levels == m0.terms[0].levels
    pd.testing.assert_frame_equal(m1.ranef(), m0.ranef(), rtol=1e-6, atol=1e-8)
    got = m1.fitted().df().set_index("id").sort_index()["fitted"]
    np.testing.assert_allclose(got, m0.fitted(), rtol=1e-8, atol=1e-10)
