"""Bad input gets a clear error; invariances; missing values; weights; polars; the CLI."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.errors import DataError, FormulaError, MixedModelsError
from mixedmodels.formula.design import DroppedRowsWarning

FORMULA = "Reaction ~ Days + (Days | Subject)"


def test_unknown_column_is_named(sleepstudy):
    with pytest.raises(DataError, match="Dayz"):
        mm.lmer("Reaction ~ Dayz + (1 | Subject)", sleepstudy)
    with pytest.raises(MixedModelsError, match="Subjekt"):
        mm.lmer("Reaction ~ Days + (1 | Subjekt)", sleepstudy)
    with pytest.raises(MixedModelsError, match="Reactio"):
        mm.lmer("Reactio ~ Days + (1 | Subject)", sleepstudy)


def test_malformed_bar_reports_position(sleepstudy):
    with pytest.raises(FormulaError) as err:
        mm.lmer("Reaction ~ Days + (Days | )", sleepstudy)
    assert err.value.position is not None and "^" in str(err.value)
    with pytest.raises(FormulaError) as err:
        mm.lmer("Reaction ~ Days + Days | Subject", sleepstudy)
    assert err.value.position == "Reaction ~ Days + Days | Subject".index("|")


def test_no_random_effects_is_an_error(sleepstudy):
    with pytest.raises(FormulaError, match="no random-effects"):
        mm.lmer("Reaction ~ Days", sleepstudy)


def test_non_numeric_response(sleepstudy):
    data = sleepstudy.assign(label=sleepstudy["Subject"].astype(str) + "x")
    with pytest.raises(DataError, match="label"):
        mm.lmer("label ~ Days + (1 | Subject)", data)


def test_single_level_and_too_many_levels(sleepstudy):
    with pytest.raises(DataError, match="only 1 level"):
        mm.lmer("Reaction ~ Days + (1 | one)", sleepstudy.assign(one="a"))
    with pytest.raises(DataError, match="number of levels"):
        mm.lmer("Reaction ~ Days + (1 | row)", sleepstudy.assign(row=np.arange(len(sleepstudy))))
    with pytest.raises(DataError, match="random effects"):
        mm.lmer("Reaction ~ Days + (Days | pair)",
                sleepstudy.assign(pair=np.arange(len(sleepstudy)) // 2))


def test_missing_values_dropped_and_reported(sleepstudy):
    from mixedmodels.formula.design import DroppedRowsWarning

    data = sleepstudy.copy()
    data.loc[[3, 50], "Reaction"] = np.nan
    data.loc[7, "Days"] = np.nan
    data["unused"] = np.nan
    with pytest.warns(DroppedRowsWarning, match="3 row"):
        m = mm.lmer(FORMULA, data)
    assert m.nobs == 177 and m.info.n_dropped_rows == 3
    complete = data.drop(index=[3, 7, 50])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref = mm.lmer(FORMULA, complete)
    np.testing.assert_allclose(m.fixef, ref.fixef, rtol=1e-10)
    assert "3 observations deleted due to missingness" in str(m.summary(ddf=None))


def test_no_rows_left(sleepstudy):
    data = sleepstudy.assign(Days=np.nan)
    with pytest.raises(DataError, match="no rows left"):
        with pytest.warns(mm.DroppedRowsWarning, match=r"180 row\(s\) dropped .*'Days': 180"):
            mm.lmer(FORMULA, data)


def test_non_finite_values(sleepstudy):
    data = sleepstudy.assign(Days=sleepstudy["Days"].astype(float))
    data.loc[5, "Days"] = np.inf
    with pytest.raises(DataError, match="non-finite"):
        mm.lmer(FORMULA, data)


def test_bad_weights(sleepstudy):
    with pytest.raises(DataError, match="negative weights"):
        mm.lmer(FORMULA, sleepstudy.assign(w=-1.0), weights="w")
    with pytest.raises(DataError, match="'nope'"):
        mm.lmer(FORMULA, sleepstudy, weights="nope")


def test_bad_values_named_by_the_users_row_label(sleepstudy):
    data = sleepstudy.set_index("obs" + sleepstudy.index.astype(str)).astype({"Days": float})
    data.loc["obs0", "Reaction"] = np.nan
    data.loc["obs7", "Days"] = np.inf
    with pytest.warns(DroppedRowsWarning):
        with pytest.raises(DataError, match=r"fixed-effects.*'obs7'"):
            mm.lmer(FORMULA, data)
    weights = pd.Series(1.0, index=data.index).where(data.index != "obs9", -1.0)
    with pytest.warns(DroppedRowsWarning):
        with pytest.raises(DataError, match=r"negative weights.*'w'.*'obs9'"):
            mm.lmer(FORMULA, data.assign(Days=sleepstudy["Days"].to_numpy(), w=weights),
                    weights="w")
    # log(0) is -Inf, an error in R too; the NaN of log(< 0) only drops rows (tests/test_inputs.py)
    labelled = sleepstudy.set_index("obs" + sleepstudy.index.astype(str))
    labelled.loc["obs0", "Reaction"] = 250.0
    with pytest.warns(DroppedRowsWarning, match="NaN"):
        with pytest.raises(DataError, match=r"response 'log\(Reaction - 250\)'.*-Inf.*'obs0'"):
            mm.lmer("log(Reaction - 250) ~ Days + (1 | Subject)", labelled)


def test_binomial_responses_need_glmer(sleepstudy):
    with pytest.raises(FormulaError, match=r"cbind.*glmer"):
        mm.lmer("cbind(Days, 9 - Days) ~ 1 + (1 | Subject)", sleepstudy)
    data = sleepstudy.assign(slow=np.where(sleepstudy["Reaction"] > 300, "slow", "fast"))
    with pytest.raises(DataError, match=r"'slow'.*glmer"):
        mm.lmer("slow ~ Days + (1 | Subject)", data)


def test_rank_deficient_columns_dropped_with_message(sleepstudy):
    from mixedmodels.formula.design import RankDeficiencyWarning

    data = sleepstudy.assign(Days2=2 * sleepstudy["Days"])
    with pytest.warns(RankDeficiencyWarning, match="dropping 1 column"):
        m = mm.lmer("Reaction ~ Days + Days2 + (Days | Subject)", data)
    assert list(m.fixef.index) == ["(Intercept)", "Days"]
    assert m.info.dropped_columns == ("Days2",)
    ref = mm.lmer(FORMULA, sleepstudy)
    np.testing.assert_allclose(m.fixef, ref.fixef, rtol=1e-9)


def test_row_order_does_not_matter(sleepstudy):
    ref = mm.lmer(FORMULA, sleepstudy)
    shuffled = sleepstudy.sample(frac=1.0, random_state=3)
    m = mm.lmer(FORMULA, shuffled)
    # Round-off changes BOBYQA's path slightly; the optimum is the same.
    assert m.objective == pytest.approx(ref.objective, abs=1e-8)
    np.testing.assert_allclose(m.theta, ref.theta, rtol=1e-4)
    np.testing.assert_allclose(m.fixef, ref.fixef, rtol=1e-6)
    np.testing.assert_allclose(m.fitted(), ref.predict(shuffled), rtol=1e-6)


def test_renaming_levels_does_not_matter(sleepstudy):
    ref = mm.lmer(FORMULA, sleepstudy)
    renamed = sleepstudy.assign(Subject=sleepstudy["Subject"].cat.rename_categories(
        lambda s: f"person_{s}"))
    m = mm.lmer(FORMULA, renamed)
    np.testing.assert_allclose(m.theta, ref.theta, rtol=1e-8)
    np.testing.assert_allclose(m.ranef()["condval"], ref.ranef()["condval"], rtol=1e-6,
                               atol=1e-8)
    assert m.ranef()["grp"].iloc[0] == "person_308"


def test_term_order_in_formula_does_not_matter():
    data = mm.datasets.load("Penicillin")
    a = mm.lmer("diameter ~ 1 + (1|plate) + (1|sample)", data)
    b = mm.lmer("diameter ~ 1 + (1|sample) + (1|plate)", data)
    assert a.theta_names == b.theta_names == ["plate.(Intercept)", "sample.(Intercept)"]
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-8)
    assert a.objective == pytest.approx(b.objective, abs=1e-9)


def test_string_and_numeric_grouping_columns(sleepstudy):
    ref = mm.lmer(FORMULA, sleepstudy)
    as_str = mm.lmer(FORMULA, sleepstudy.assign(Subject=sleepstudy["Subject"].astype(str)))
    as_int = mm.lmer(FORMULA, sleepstudy.assign(Subject=sleepstudy["Subject"].astype(int)))
    for m in (as_str, as_int):
        np.testing.assert_allclose(m.theta, ref.theta, rtol=1e-8)
        assert list(m.coef()["Subject"].index) == list(ref.coef()["Subject"].index)


def test_polars_input_gives_the_same_fit(sleepstudy):
    pl = pytest.importorskip("polars")
    frame = pl.from_pandas(sleepstudy.assign(Subject=sleepstudy["Subject"].astype(str)))
    m = mm.lmer(FORMULA, frame)
    ref = mm.lmer(FORMULA, sleepstudy)
    np.testing.assert_allclose(m.fixef, ref.fixef, rtol=1e-10)


def test_constant_weights_rescale_sigma_only():
    # y | b ~ N(mu, sigma^2 / c): sigma scales by sqrt(c), theta by 1/sqrt(c), and the
    # random-effects covariance sigma^2 theta^2 and beta do not change.
    data = mm.datasets.load("Dyestuff")
    a = mm.lmer("Yield ~ 1 + (1|Batch)", data)
    b = mm.lmer("Yield ~ 1 + (1|Batch)", data.assign(w=4.0), weights="w")
    np.testing.assert_allclose(b.fixef, a.fixef, rtol=1e-8)
    assert b.sigma == pytest.approx(2.0 * a.sigma, rel=1e-5)
    np.testing.assert_allclose(b.theta, a.theta / 2.0, rtol=1e-4)
    assert b.varcorr()["vcov"][0] == pytest.approx(a.varcorr()["vcov"][0], rel=1e-4)


def test_predict_population_and_unknown_level(sleepstudy):
    m = mm.lmer(FORMULA, sleepstudy)
    new = pd.DataFrame({"Days": [0.0, 5.0], "Subject": ["308", "999"]})
    with pytest.raises(DataError, match="999"):
        m.predict(new)
    pred = m.predict(new, allow_new_levels=True)
    assert pred[1] == pytest.approx(m.fixef["(Intercept)"] + 5 * m.fixef["Days"])
    np.testing.assert_allclose(m.predict(new, re_form="~0"),
                               m.fixef["(Intercept)"] + new["Days"] * m.fixef["Days"])
    np.testing.assert_allclose(m.predict(), m.fitted())


def test_result_is_immutable(sleepstudy):
    import dataclasses

    m = mm.lmer(FORMULA, sleepstudy)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.sigma = 1.0


def test_icc_of_intercept_only_model():
    data = mm.datasets.load("Dyestuff")
    m = mm.lmer("Yield ~ 1 + (1|Batch)", data)
    vc = m.varcorr()
    expected = vc["vcov"][0] / (vc["vcov"][0] + vc["vcov"][1])
    assert m.icc()["Batch"] == pytest.approx(expected, rel=1e-12)


def test_cli_fit_prints_summary(capsys):
    from mixedmodels.cli import main

    assert main(["fit", FORMULA, "--data", "sleepstudy"]) == 0
    out = capsys.readouterr().out
    assert "Linear mixed model fit by REML" in out and "Subject" in out
    assert main(["fit", "Yield ~ 1 + (1|Batch)", "--data", "Dyestuff", "--ml"]) == 0
    assert "maximum likelihood" in capsys.readouterr().out
    assert main(["fit", "Reaction ~ Dayz + (1|Subject)", "--data", "sleepstudy"]) == 2
    assert "Dayz" in capsys.readouterr().err


def test_cli_reads_csv(tmp_path, capsys, sleepstudy):
    from mixedmodels.cli import main

    path = tmp_path / "sleep.csv"
    sleepstudy.to_csv(path, index=False)
    assert main(["fit", FORMULA, "--data", str(path)]) == 0
    assert "Data: sleep" in capsys.readouterr().out


def test_summary_header_names_the_df_method(sleepstudy):
    m = mm.lmer(FORMULA, sleepstudy)
    assert "Satterthwaite's method" in str(m.summary())
    assert "Kenward-Roger's method" in str(m.summary(ddf="kenward-roger"))
    assert "residual df (n - p)" in str(m.summary(ddf="residual"))
    plain = str(m.summary(ddf=None))
    assert "['lmerMod']" in plain and "Pr(>|t|)" not in plain


def test_predict_gives_nan_for_missing_values_in_expressions(sleepstudy):
    """A missing value under factor() gives NA as in R (na.pass), not the reference level;
    so does a missing slope variable of a random-effects term."""
    m = mm.lmer("Reaction ~ factor(Days) + (Days | Subject)", sleepstudy)
    new = pd.DataFrame({"Days": [1.0, np.nan, 0.0], "Subject": ["308", "308", "309"]})
    pred = m.predict(new)
    assert np.isnan(pred[1]) and np.isfinite(pred[[0, 2]]).all()
    assert np.isnan(m.predict(new, re_form="~0")[1])
    full = m.predict(sleepstudy.iloc[[1, 10]].reset_index(drop=True))
    np.testing.assert_allclose(full, m.fitted().iloc[[1, 10]].to_numpy(), rtol=1e-12)


def test_write_predictions_in_memory(sleepstudy, tmp_path):
    pytest.importorskip("pyarrow")
    m = mm.lmer(FORMULA, sleepstudy)
    path = m.write_predictions(tmp_path / "fit.parquet", re_form="~0")
    back = pd.read_parquet(path)
    assert list(back.columns) == ["row", "prediction", "fitted", "residual"]
    np.testing.assert_array_equal(back["fitted"], m.fitted().to_numpy())
    np.testing.assert_array_equal(back["residual"], m.residuals().to_numpy())
    np.testing.assert_array_equal(back["prediction"], m.predict(re_form="~0").to_numpy())
    np.testing.assert_array_equal(back["row"], sleepstudy.index.to_numpy())
    new = pd.DataFrame({"Days": [0.0, 5.0], "Subject": ["308", "999"]})
    back = pd.read_parquet(m.write_predictions(tmp_path / "new.parquet", new,
                                               allow_new_levels=True))
    np.testing.assert_array_equal(back["prediction"],
                                  m.predict(new, allow_new_levels=True).to_numpy())
    assert list(back.columns) == ["Days", "Subject", "prediction"]
