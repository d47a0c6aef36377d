"""The result's structure: one import direction, the fit's class kept by refits, read-only
arrays, lazy quantities that later inference cannot move, and the shared workspace."""
from __future__ import annotations

import ast
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.errors import MixedModelsError
from mixedmodels.inference import lrt
from mixedmodels.inference import satterthwaite as sat
from mixedmodels.inference.bootstrap import bootstrap
from mixedmodels.results import LmerResult

SRC = Path(mm.__file__).parent
SLEEP = "Reaction ~ Days + (Days | Subject)"


# ---- one direction: inference never imports results.py ---------------------------------------
def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted((SRC / "inference").glob("*.py")), ids=lambda p: p.name)
def test_inference_modules_do_not_import_results(path):
    imported = _imported_modules(path)
    assert not {name for name in imported if name.endswith("results")}, imported


def test_importing_inference_does_not_load_the_result_classes():
    modules = ", ".join(f"mixedmodels.inference.{p.stem}"
                        for p in sorted((SRC / "inference").glob("*.py")))
    code = (f"import sys, {modules}; "
            "print(sorted(m for m in sys.modules if m.endswith('results')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(SRC.parent)})
    assert out.stdout.strip() == "[]"


class _MyResult(LmerResult):
    """A subclass, as a GLMM-style result sharing LmerResult's code would be."""


@pytest.fixture(scope="module")
def sleep_fit():
    return mm.lmer(SLEEP, mm.datasets.load("sleepstudy"))


def _as_subclass(fit) -> _MyResult:
    return _MyResult.from_model(fit.model, fit.info, fit.row_data, fit.optsum, fit.formula)


def test_refits_and_at_theta_keep_the_fit_class(sleep_fit):
    mine = _as_subclass(sleep_fit)
    assert type(mine) is _MyResult
    np.testing.assert_array_equal(mine.beta, sleep_fit.beta)
    assert type(mine.at_theta(mine.theta * 0.9)) is _MyResult
    ml = lrt.ml_refit(mine)
    assert type(ml) is _MyResult and not ml.reml
    seen = []

    def statistic(fit):
        seen.append(type(fit))
        return fit.sigma

    bootstrap(mine, 2, func=statistic, seed=1)
    assert seen == [_MyResult] * 3          # the fit itself, then two refits


def test_anova_accepts_any_fit_and_names_what_it_refuses(sleep_fit):
    mine = _as_subclass(sleep_fit)
    with pytest.warns(mm.RefitMLWarning):
        table = mm.anova(sleep_fit, mine)
    assert len(table) == 2
    with pytest.raises(MixedModelsError, match="str"):
        mm.anova(sleep_fit, "not a model")


# ---- Satterthwaite on the fit's own workspace -------------------------------------------------
def _count_workspaces(monkeypatch) -> dict:
    from mixedmodels.linalg import cholesky

    counts = {"built": 0, "factorizations": 0}
    init, update = cholesky.BlockedCholesky.__init__, cholesky.BlockedCholesky.update

    def counted_init(self, *args, **kwargs):
        counts["built"] += 1
        init(self, *args, **kwargs)

    def counted_update(self, *args, **kwargs):
        counts["factorizations"] += 1
        update(self, *args, **kwargs)

    monkeypatch.setattr(cholesky.BlockedCholesky, "__init__", counted_init)
    monkeypatch.setattr(cholesky.BlockedCholesky, "update", counted_update)
    return counts


def test_summary_uses_the_fit_workspace_and_puts_it_back(monkeypatch):
    fit = mm.lmer(SLEEP, mm.datasets.load("sleepstudy"))
    before = fit.model.L.xx.copy()
    counts = _count_workspaces(monkeypatch)
    str(fit.summary())
    assert counts["built"] == 0
    # numDeriv's steps: 48 distinct theta for the Hessian and 24 for the Jacobian of the
    # 3 theta entries (steps in sigma alone reuse them); theta-hat is read off the fit's
    # factor; one more factorization puts the workspace back.
    assert sat.varpar_derivatives(fit).evaluations == 72
    assert counts["factorizations"] == 73
    np.testing.assert_array_equal(fit.model.theta_in_L, fit.theta)
    np.testing.assert_array_equal(fit.model.L.xx, before)


def test_derivatives_read_off_the_fit_equal_a_new_factorization():
    data = mm.datasets.load("sleepstudy")
    fit, moved = mm.lmer(SLEEP, data), mm.lmer(SLEEP, data)
    moved.model.objective(moved.theta * 1.3)        # theta-hat must be factored again
    a, b = sat.varpar_derivatives(fit), sat.varpar_derivatives(moved)
    assert b.evaluations == a.evaluations + 1
    for name in ("hessian", "jacobian", "vcov_varpar", "vcov_beta"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    # the moved workspace goes back to where it was, not to the fit's theta
    np.testing.assert_array_equal(moved.model.theta_in_L, moved.theta * 1.3)


# ---- deep freeze ----------------------------------------------------------------------------
def _held_arrays(fit) -> dict[str, np.ndarray]:
    arrays = {"theta": fit.theta, "beta": fit.beta, "RX_inv": fit.RX_inv,
              "rows.y": fit.rows.y, "rows.X": fit.rows.X, "x_keep": fit.info.x_keep,
              "optsum.theta": fit.optsum.theta, "optsum.theta0": fit.optsum.theta0}
    for j, t in enumerate(fit.rows.terms):
        arrays.update({f"u[{j}]": fit.u[j], f"b[{j}]": fit.b[j], f"cond_var[{j}]":
                       fit.cond_var[j], f"rows.terms[{j}].refs": t.refs,
                       f"rows.terms[{j}].z": t.z})
    return arrays


def test_every_array_the_result_holds_is_read_only(sleep_fit):
    for name, a in _held_arrays(sleep_fit).items():
        assert not a.flags.writeable, name
        with pytest.raises(ValueError, match="read-only"):
            a[(0,) * a.ndim] = 0.0
    assert isinstance(sleep_fit.optsum.fitlog, tuple)


def test_writing_into_what_methods_return_leaves_the_result_alone(sleep_fit):
    beta = sleep_fit.beta.copy()
    series = {"fixef": lambda m: m.fixef, "se": lambda m: m.se,
              "fitted": lambda m: m.fitted(), "residuals": lambda m: m.residuals(),
              "predict": lambda m: m.predict(re_form="~0")}
    for name, get in series.items():
        first = float(get(sleep_fit).iloc[0])
        out = get(sleep_fit)
        out.iloc[0] = -1.0
        assert float(get(sleep_fit).iloc[0]) == first, name
    frames = {"vcov": (lambda m: m.vcov, "Days"), "varcorr": (lambda m: m.varcorr(), "vcov"),
              "ranef": (lambda m: m.ranef(), "condval"),
              "coef": (lambda m: m.coef()["Subject"], "Days")}
    for name, (get, column) in frames.items():
        first = float(get(sleep_fit)[column].iloc[0])
        out = get(sleep_fit)
        out.loc[out.index[0], column] = -1.0
        assert float(get(sleep_fit)[column].iloc[0]) == first, name
    S = sleep_fit.covariance_matrices()[0]
    S[0, 0] = -1.0
    assert sleep_fit.covariance_matrices()[0][0, 0] > 0
    np.testing.assert_array_equal(sleep_fit.beta, beta)


def test_setting_an_attribute_is_refused(sleep_fit):
    with pytest.raises(AttributeError):
        sleep_fit.sigma = 1.0


@pytest.mark.parametrize("call", ["profile", "bootstrap", "at_theta", "summary", "anova_lrt",
                                  "kenward_roger", "ranova"])
def test_later_inference_does_not_move_lazy_quantities(call):
    data = mm.datasets.load("sleepstudy")
    fresh = mm.lmer(SLEEP, data)
    fresh_ranef, fresh_cond_var = fresh.ranef(), fresh.cond_var
    fit = mm.lmer(SLEEP, data)
    expected = pytest.warns(mm.RefitMLWarning) if call == "anova_lrt" else nullcontext()
    with expected:
        if call == "profile":
            fit.profile(which=".sig01", maxpts=4)
        elif call == "bootstrap":
            fit.bootstrap(2, seed=3)
        elif call == "at_theta":
            fit.at_theta(fit.theta * 0.5).ranef()       # also computes the other's cond_var
        elif call == "summary":
            str(fit.summary())
        elif call == "anova_lrt":
            mm.anova(fit, mm.lmer("Reaction ~ Days + (1 | Subject)", data))
        elif call == "kenward_roger":
            fit.coefficients(ddf="kenward-roger")
        else:
            fit.ranova()
    for j in range(len(fit.terms)):
        np.testing.assert_allclose(fit.cond_var[j], fresh_cond_var[j], rtol=1e-12)
    ranef = fit.ranef()
    np.testing.assert_allclose(ranef["condsd"], fresh_ranef["condsd"], rtol=1e-12)
    np.testing.assert_array_equal(ranef["condval"], fresh_ranef["condval"])


# ---- pandas outputs indexed like the data ------------------------------------------------------
@pytest.fixture(scope="module")
def labelled_fit():
    """sleepstudy with string row labels and three rows lost to missing values."""
    data = mm.datasets.load("sleepstudy")
    data.index = pd.Index([f"row{i}" for i in range(len(data))], name="obs")
    data.loc[["row3", "row50", "row177"], "Reaction"] = np.nan
    with pytest.warns(mm.DroppedRowsWarning, match=r"^3 row\(s\) dropped"):
        fit = mm.lmer(SLEEP, data)
    complete = data.dropna()
    return data, complete, fit


def test_fitted_and_residuals_are_indexed_by_the_rows_kept(labelled_fit):
    data, complete, fit = labelled_fit
    plain = mm.lmer(SLEEP, complete.reset_index(drop=True))
    for out, name, values in ((fit.fitted(), "fitted", plain.fitted()),
                              (fit.residuals(), "residuals", plain.residuals()),
                              (fit.residuals("pearson"), "residuals", plain.residuals())):
        assert isinstance(out, pd.Series) and out.name == name
        pd.testing.assert_index_equal(out.index, complete.index)
        np.testing.assert_array_equal(out.to_numpy(), values.to_numpy())
    # assigning back to the data aligns on the labels: the dropped rows get NaN
    with_fitted = data.assign(fitted=fit.fitted())
    assert with_fitted["fitted"].isna().tolist() == data["Reaction"].isna().tolist()
    np.testing.assert_allclose(with_fitted.loc["row4", "Reaction"] - fit.residuals()["row4"],
                               with_fitted.loc["row4", "fitted"])


def test_predict_is_indexed_like_newdata(labelled_fit):
    data, complete, fit = labelled_fit
    new = complete.sample(frac=0.3, random_state=1)
    pred = fit.predict(new)
    assert isinstance(pred, pd.Series) and pred.name == "predicted"
    pd.testing.assert_index_equal(pred.index, new.index)
    np.testing.assert_allclose(pred.to_numpy(), fit.fitted()[new.index].to_numpy(),
                               rtol=1e-12)
    population = fit.predict(re_form="~0")
    pd.testing.assert_index_equal(population.index, complete.index)
    X = fit.rows.X
    np.testing.assert_allclose(population.to_numpy(), X @ fit.beta, rtol=1e-12)
    pd.testing.assert_series_equal(fit.predict(), fit.fitted().rename("predicted"))


def test_simulate_names_columns_as_r_and_rows_as_the_fit(labelled_fit):
    _, complete, fit = labelled_fit
    sims = fit.simulate(3, seed=5)
    assert list(sims.columns) == ["sim_1", "sim_2", "sim_3"]
    pd.testing.assert_index_equal(sims.index, complete.index)


def test_ranef_as_dict_is_lme4_ranef_layout(sleep_fit):
    long = sleep_fit.ranef()
    wide = sleep_fit.ranef(as_dict=True)
    sds = sleep_fit.ranef_condsd()
    assert list(wide) == list(sds) == ["Subject"]
    frame = wide["Subject"]
    assert frame.index.name == "Subject" and list(frame.columns) == ["(Intercept)", "Days"]
    assert list(frame.index) == list(sleep_fit.terms[0].levels)
    for term in frame.columns:
        rows = long[long["term"] == term]
        np.testing.assert_array_equal(frame[term].to_numpy(), rows["condval"].to_numpy())
        np.testing.assert_array_equal(sds["Subject"][term].to_numpy(), rows["condsd"].to_numpy())
    np.testing.assert_allclose(sds["Subject"].to_numpy() ** 2,
                               np.diagonal(sleep_fit.cond_var[0], axis1=1, axis2=2), rtol=1e-14)


def test_ranef_as_dict_joins_the_terms_of_one_factor():
    pastes = mm.lmer("strength ~ 1 + (1 | batch/cask)", mm.datasets.load("Pastes"))
    wide = pastes.ranef(as_dict=True)
    assert set(wide) == {"batch", "cask:batch"}
    assert wide["batch"].shape == (10, 1) and wide["cask:batch"].shape == (30, 1)
    two = mm.lmer("Reaction ~ Days + (Days || Subject)", mm.datasets.load("sleepstudy"))
    assert len(two.terms) == 2
    frame = two.ranef(as_dict=True)["Subject"]
    assert list(frame.columns) == ["(Intercept)", "Days"]
    np.testing.assert_array_equal(frame["Days"].to_numpy(), two.b[1][:, 0])


def test_repr_is_one_model_line(sleep_fit):
    assert repr(sleep_fit) == ("<LmerResult REML: Reaction ~ Days + (Days | Subject), n=180, "
                               "1 grouping factor>")
    crossed = mm.lmer("diameter ~ 1 + (1|plate) + (1|sample)", mm.datasets.load("Penicillin"),
                      reml=False)
    assert repr(crossed) == ("<LmerResult ML: diameter ~ 1 + (1 | plate) + (1 | sample), "
                             "n=144, 2 grouping factors>")
    assert repr(_as_subclass(sleep_fit)).startswith("<_MyResult REML: ")


def test_varcorr_marks_missing_values_with_nan_only():
    scalar = mm.lmer("diameter ~ 1 + (1|plate) + (1|sample)", mm.datasets.load("Penicillin"))
    vector = mm.lmer(SLEEP, mm.datasets.load("sleepstudy"))
    for vc in (scalar.varcorr(), vector.varcorr()):
        for column in ("grp", "var1", "var2"):
            assert vc[column].dtype == vc["grp"].dtype
            assert all(isinstance(v, str) or (isinstance(v, float) and np.isnan(v))
                       for v in vc[column])
        assert vc["var2"].isna().sum() == len(vc) - int(vc["var2"].notna().sum())
        assert vc.iloc[-1][["var1", "var2"]].isna().all()
    assert vector.varcorr()["var2"].tolist()[2] == "Days"


# ---- printout ---------------------------------------------------------------------------------
def test_summary_correlation_option_on_a_real_fit(sleep_fit):
    default = str(sleep_fit.summary())
    assert default.endswith("Correlation of Fixed Effects:\n     (Intr)\nDays -0.138")
    assert str(sleep_fit.summary(correlation=True)) == default
    hidden = str(sleep_fit.summary(correlation=False))
    assert "Correlation" not in hidden and default.startswith(hidden)
    assert "Correlation" not in str(sleep_fit.summary(ddf=None, correlation=False))


def test_printout_never_sends_the_reader_to_r():
    dyestuff2 = mm.lmer("Yield ~ 1 + (1|Batch)", mm.datasets.load("Dyestuff2"))
    assert dyestuff2.is_singular
    text, page = str(dyestuff2.summary()), dyestuff2.summary()._repr_html_()
    assert text.split("\n")[-1] == ("boundary (singular) fit: see is_singular in "
                                     "help(mixedmodels.LmerResult)")
    for out in (text, page):
        assert "help('" not in out and "print(x" not in out and "vcov(x)" not in out
    assert "is_singular :" in LmerResult.__doc__
    assert "['" not in page and "[&#x27;" not in page


def test_glmer_results_share_the_marker_and_the_correlation_option():
    cbpp = mm.datasets.load("cbpp")
    fit = mm.glmer("cbind(incidence, size - incidence) ~ period + (1|herd)", cbpp)
    vc = fit.varcorr()
    assert list(vc["var2"].isna()) == [True] and not vc["var2"].map(lambda v: v is None).any()
    assert vc["var2"].dtype == vc["grp"].dtype
    shown = str(fit.summary())
    assert "Correlation of Fixed Effects:" in shown
    assert "Correlation" not in str(fit.summary(correlation=False))
