"""Tests of the teaching tables (mm.describe, mm.pooling, mm.icc), the simulated salary data
and the plots (mm.plots).

Expectations come from small hand-made data and independent numpy/pandas computations
(group means, polyfit, varcorr), not from the code under test.
"""
from __future__ import annotations

import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.patches import FancyArrowPatch

import mixedmodels as mm
from mixedmodels.errors import DataError, FormulaError


@pytest.fixture(scope="module")
def small():
    """Three groups in a non-alphabetical Categorical order, sizes 3, 4 and 5."""
    groups = ["b"] * 3 + ["a"] * 4 + ["c"] * 5
    y = [10.0, 12.0, 17.0, 3.0, 5.0, 4.0, 8.0, 20.0, 22.0, 19.0, 25.0, 24.0]
    return pd.DataFrame({"g": pd.Categorical(groups, categories=["b", "a", "c"]), "y": y})


@pytest.fixture(scope="module")
def slopes():
    """Six groups with their own intercepts and slopes (deterministic)."""
    rng = np.random.default_rng(7)
    sizes = [5, 8, 6, 10, 7, 9]
    g = np.repeat([f"s{i}" for i in range(6)], sizes)
    x = np.round(rng.uniform(0, 10, len(g)), 1)
    a = np.repeat(rng.normal(20, 5, 6), sizes)
    b = np.repeat(rng.normal(2, 0.8, 6), sizes)
    return pd.DataFrame({"g": g, "x": x, "y": a + b * x + rng.normal(0, 1, len(g))})


@pytest.fixture(scope="module")
def salary():
    return mm.datasets.salary()


@pytest.fixture(scope="module")
def fits(salary):
    m0 = mm.lmer("salary ~ 1 + (1 | organisation)", salary)
    m1 = mm.lmer("salary ~ 1 + service + (1 + service | organisation)", salary)
    return m0, m1


# ---- describe -------------------------------------------------------------------------------

def test_describe_matches_groupby_in_level_order(small):
    table = mm.describe(small, "y", "g")
    assert isinstance(table, pd.DataFrame)
    assert list(table.index) == ["b", "a", "c"]
    assert table.index.name == "g"
    assert list(table.columns) == ["N", "mean", "SD", "min", "max"]
    for label, values in [("b", [10, 12, 17]), ("a", [3, 5, 4, 8]), ("c", [20, 22, 19, 25, 24])]:
        row = table.loc[label]
        assert row["N"] == len(values)
        assert row["mean"] == pytest.approx(np.mean(values))
        assert row["SD"] == pytest.approx(np.std(values, ddof=1))
        assert row["min"] == min(values) and row["max"] == max(values)


def test_describe_strings_sorted_and_missing_rows_dropped():
    data = pd.DataFrame({"g": ["z", "B", "a", "z", "B", None, "a"],
                         "y": [1.0, 2.0, 3.0, np.nan, 4.0, 5.0, 7.0]})
    table = mm.describe(data, "y", "g")
    assert list(table.index) == ["B", "a", "z"]  # R's C-locale order: capitals first
    assert table["N"].tolist() == [2, 2, 1]
    assert table["mean"].tolist() == [3.0, 5.0, 1.0]
    assert np.isnan(table.loc["z", "SD"])


def test_describe_prints_rounded(salary):
    text = str(mm.describe(salary, "salary", "organisation"))
    assert "org01" in text and "org20" in text
    first_row = next(line for line in text.splitlines() if line.startswith("org01"))
    assert "." not in first_row  # salaries print as whole units
    assert "<table" in mm.describe(salary, "salary", "organisation")._repr_html_()


# ---- pooling --------------------------------------------------------------------------------

def test_pooling_intercept_only(small):
    table = mm.pooling(small, "y ~ 1 + (1 | g)")
    assert list(table.columns) == ["N", "complete_pooling", "no_pooling", "partial_pooling",
                                   "shrinkage"]
    assert list(table.index) == ["b", "a", "c"]
    assert table["N"].tolist() == [3, 4, 5]
    means = small.groupby("g", observed=True)["y"].mean()
    np.testing.assert_allclose(table["no_pooling"], means.loc[["b", "a", "c"]])
    np.testing.assert_allclose(table["complete_pooling"], small["y"].mean())
    fit = mm.lmer("y ~ 1 + (1 | g)", small)
    np.testing.assert_allclose(table["partial_pooling"], fit.coef()["g"]["(Intercept)"])
    ranef = fit.ranef().set_index("grp")["condval"]
    np.testing.assert_allclose(table["partial_pooling"],
                               fit.fixef["(Intercept)"] + ranef.loc[["b", "a", "c"]])
    np.testing.assert_allclose(table["shrinkage"], table["partial_pooling"] - table["no_pooling"])
    # Partial pooling lies between the group's own mean and the population mean.
    own = table["no_pooling"] - fit.fixef["(Intercept)"]
    moved = table["partial_pooling"] - fit.fixef["(Intercept)"]
    assert np.all(np.sign(own) == np.sign(moved)) and np.all(np.abs(moved) < np.abs(own))


def test_pooling_slopes_match_per_group_ols(slopes):
    table = mm.pooling(slopes, "y ~ x + (x | g)")
    kinds = ["complete_pooling", "no_pooling", "partial_pooling", "shrinkage"]
    assert list(table.columns) == ["N"] + [f"{k}:{c}" for c in ["(Intercept)", "x"] for k in kinds]
    slope_all, intercept_all = np.polyfit(slopes.x, slopes.y, 1)
    np.testing.assert_allclose(table["complete_pooling:(Intercept)"], intercept_all)
    np.testing.assert_allclose(table["complete_pooling:x"], slope_all)
    for label, part in slopes.groupby("g"):
        slope, intercept = np.polyfit(part.x, part.y, 1)
        assert table.loc[label, "no_pooling:(Intercept)"] == pytest.approx(intercept)
        assert table.loc[label, "no_pooling:x"] == pytest.approx(slope)
        assert table.loc[label, "N"] == len(part)
    coef = mm.lmer("y ~ x + (x | g)", slopes).coef()["g"]
    np.testing.assert_allclose(table["partial_pooling:(Intercept)"], coef["(Intercept)"])
    np.testing.assert_allclose(table["partial_pooling:x"], coef["x"])
    np.testing.assert_allclose(table["shrinkage:x"],
                               table["partial_pooling:x"] - table["no_pooling:x"])


def test_pooling_group_without_own_fit_gets_nan_and_note(slopes):
    data = pd.concat([slopes, pd.DataFrame({"g": ["t1"], "x": [3.0], "y": [25.0]})],
                     ignore_index=True)
    table = mm.pooling(data, "y ~ x + (x | g)")
    assert np.isnan(table.loc["t1", "no_pooling:x"])
    assert np.isnan(table.loc["t1", "shrinkage:(Intercept)"])
    assert np.isfinite(table.loc["t1", "partial_pooling:x"])
    assert "1 observation" in table.loc["t1", "note"]
    assert table.loc["s0", "note"] == ""
    assert "not estimable" in str(table)


def test_pooling_errors(small, slopes):
    with pytest.raises(DataError, match="'grp'"):
        mm.pooling(small, "y ~ 1 + (1 | grp)")
    with pytest.raises(DataError, match="'yy'"):
        mm.pooling(small, "yy ~ 1 + (1 | g)")
    with pytest.raises(DataError, match="'g'.*not numeric"):
        mm.pooling(small.assign(g2=small.g), "g ~ 1 + (1 | g2)")
    with pytest.raises(FormulaError, match="one grouping factor"):
        mm.pooling(slopes.assign(h=slopes.g), "y ~ 1 + (1 | g) + (1 | h)")
    with pytest.raises(DataError, match="'one'"):
        mm.pooling(small.assign(one="x"), "y ~ 1 + (1 | one)")


# ---- ICC ------------------------------------------------------------------------------------

def test_icc_is_between_over_total_variance(small):
    result = mm.icc(small, "y", "g")
    vc = mm.lmer("y ~ 1 + (1 | g)", small).varcorr()
    var_b = vc.loc[vc.grp == "g", "vcov"].item()
    var_w = vc.loc[vc.grp == "Residual", "vcov"].item()
    assert result.var_between == pytest.approx(var_b, rel=1e-6)
    assert result.var_within == pytest.approx(var_w, rel=1e-6)
    assert result.icc == pytest.approx(var_b / (var_b + var_w), rel=1e-6)
    assert (result.n_groups, result.nobs) == (3, 12)
    assert float(result) == result.icc
    assert "ICC" in str(result) and f"{result.icc:.4f}" in str(result)
    assert "<table>" in result._repr_html_()
    with pytest.raises(AttributeError):
        result.icc = 0.5  # frozen


def test_icc_accepts_awkward_column_names(small):
    data = small.rename(columns={"y": "pay (k)", "g": "work place"})
    assert mm.icc(data, "pay (k)", "work place").icc == pytest.approx(mm.icc(small, "y", "g").icc)


@pytest.mark.parametrize("fn", [mm.describe, mm.icc])
def test_table_errors_name_the_column(fn, small):
    with pytest.raises(DataError, match="'yy'.*did you mean 'y'"):
        fn(small, "yy", "g")
    with pytest.raises(DataError, match="'group'"):
        fn(small, "y", "group")
    with pytest.raises(DataError, match="outcome column 'label' is not numeric"):
        fn(small.assign(label="x"), "label", "g")
    with pytest.raises(DataError, match="'one' has only the level 'x'"):
        fn(small.assign(one="x"), "y", "one")


# ---- simulated salary data ------------------------------------------------------------------

def test_salary_shape_and_determinism(salary):
    assert list(salary.columns) == ["organisation", "employee", "service", "salary"]
    assert list(salary.organisation.cat.categories) == [f"org{i:02d}" for i in range(1, 21)]
    sizes = salary.groupby("organisation", observed=False).size()
    assert len(sizes) == 20 and sizes.min() == 6 and sizes.max() <= 150 and sizes.nunique() > 10
    assert salary.employee.is_unique
    assert salary.service.between(0, 30).all()
    np.testing.assert_allclose(salary.service, salary.service.round(1))
    assert 20_000 < salary.salary.min() and salary.salary.max() < 100_000
    pd.testing.assert_frame_equal(salary, mm.datasets.salary(2024))
    other = mm.datasets.salary(seed=1)
    assert not other.equals(salary)
    pd.testing.assert_frame_equal(other, mm.datasets.salary(seed=1))


def test_salary_teaching_numbers(salary, fits):
    assert 0.75 < mm.icc(salary, "salary", "organisation").icc < 0.95
    vc = fits[1].varcorr()
    correlation = vc.loc[vc.var2.notna(), "sdcor"].item()
    assert -0.8 < correlation < -0.4


def test_salary_import_keeps_matplotlib_out():
    code = ("import sys, mixedmodels as mm; mm.datasets.salary; mm.describe; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported eagerly'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- plots ----------------------------------------------------------------------------------

def _marker_lines(ax):
    return [line for line in ax.lines if line.get_marker() not in (None, "None", "")]


def test_group_data_panels(salary):
    fig = mm.plots.group_data(salary, "service", "salary", "organisation")
    assert len(fig.axes) == 20
    for ax, label in zip(fig.axes, salary.organisation.cat.categories):
        assert ax.get_title().startswith(label)
        assert len(ax.collections) == 1 and len(ax.lines) == 1
    assert fig.axes[0].get_ylabel() == "salary"
    assert fig.axes[-1].get_xlabel() == "service"
    # The drawn line is the group's own OLS fit.
    part = salary[salary.organisation == "org01"]
    slope, intercept = np.polyfit(part.service, part.salary, 1)
    xs, ys = fig.axes[0].lines[0].get_data()
    np.testing.assert_allclose(ys, intercept + slope * np.asarray(xs))


def test_group_data_one_axes(small, salary):
    fig, ax = plt.subplots()
    data = small.assign(x=np.arange(len(small), dtype=float))
    out = mm.plots.group_data(data, "x", "y", "g", panels=False, ax=ax)
    assert out is fig
    assert len(ax.collections) == 3 and len(ax.lines) == 3
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x", "y")
    fig = mm.plots.group_data(salary, "service", "salary", "organisation", ols=False,
                              panels=False)
    assert len(fig.axes[0].collections) == 20 and len(fig.axes[0].lines) == 0


def test_group_data_errors(salary):
    with pytest.raises(DataError, match="max_panels"):
        mm.plots.group_data(salary, "service", "salary", "organisation", max_panels=10)
    with pytest.raises(DataError, match="'years'"):
        mm.plots.group_data(salary, "years", "salary", "organisation")
    with pytest.raises(DataError, match="'organisation' is not numeric"):
        mm.plots.group_data(salary, "organisation", "salary", "employee")


def test_model_lines(fits, salary):
    m1 = fits[1]
    fig = mm.plots.model_lines(m1, "service")
    ax = fig.axes[0]
    assert len(ax.lines) == 21  # 20 groups + the population line
    population = [line for line in ax.lines if line.get_label().startswith("population")]
    assert len(population) == 1 and population[0].get_linewidth() > ax.lines[0].get_linewidth()
    xs, ys = ax.lines[0].get_data()
    coef = m1.coef()["organisation"].loc["org01"]
    np.testing.assert_allclose(ys, coef["(Intercept)"] + coef["service"] * np.asarray(xs))
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("service", "salary")

    fig = mm.plots.model_lines(m1, "service", groups="org08", population=False, data=salary)
    ax = fig.axes[0]
    assert len(ax.lines) == 1 and len(ax.collections) == 1
    assert len(ax.collections[0].get_offsets()) == (salary.organisation == "org08").sum()
    with pytest.raises(DataError, match="'years'"):
        mm.plots.model_lines(m1, "years")
    with pytest.raises(DataError, match="org99"):
        mm.plots.model_lines(m1, "service", groups=["org99"])


def test_caterpillar(fits):
    m1 = fits[1]
    fig = mm.plots.caterpillar(m1)
    assert len(fig.axes) == 2
    re = m1.ranef()
    for ax, term in zip(fig.axes, ["(Intercept)", "service"]):
        points = _marker_lines(ax)
        assert len(points) == 1
        xs = np.asarray(points[0].get_xdata())
        assert len(xs) == 20 and np.all(np.diff(xs) >= 0)
        np.testing.assert_allclose(np.sort(re.loc[re.term == term, "condval"]), xs)
        intervals = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert len(intervals) == 1 and len(intervals[0].get_segments()) == 20
        assert ax.get_ylabel() == "organisation" and term in ax.get_xlabel()
    fig = mm.plots.caterpillar(m1, term="service", level=0.5)
    assert len(fig.axes) == 1
    segment = fig.axes[0].collections[0].get_segments()[0]
    row = re[re.term == "service"].sort_values("condval").iloc[0]
    assert segment[1][0] - segment[0][0] == pytest.approx(2 * 0.6744898 * row.condsd, rel=1e-6)
    with pytest.raises(DataError, match="'slope'"):
        mm.plots.caterpillar(m1, term="slope")


def test_shrinkage_one_dimension(fits):
    m0 = fits[0]
    fig = mm.plots.shrinkage(m0)
    ax = fig.axes[0]
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [len(c.get_offsets()) for c in scatters] == [20, 20]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == 20
    assert ax.get_xscale() == "log" and "organisation" in ax.get_xlabel()
    own, mixed = (np.asarray(c.get_offsets()) for c in scatters)
    np.testing.assert_allclose(mixed[:, 1], m0.coef()["organisation"]["(Intercept)"])


def test_shrinkage_two_dimensions(fits, salary):
    m1 = fits[1]
    fig = mm.plots.shrinkage(m1)
    ax = fig.axes[0]
    own, mixed = (np.asarray(c.get_offsets()) for c in ax.collections)
    assert len(own) == len(mixed) == 20
    assert len([p for p in ax.patches if isinstance(p, FancyArrowPatch)]) == 20
    part = salary[salary.organisation == "org05"]
    slope, intercept = np.polyfit(part.service, part.salary, 1)
    np.testing.assert_allclose(own[4], [intercept, slope])
    np.testing.assert_allclose(mixed, m1.coef()["organisation"][["(Intercept)", "service"]])
    population = _marker_lines(ax)[0]
    np.testing.assert_allclose(population.get_xydata()[0], m1.fixef[["(Intercept)", "service"]])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("(Intercept)", "service")
    # The same own fits from the data frame as from the stored design arrays.
    again = mm.plots.shrinkage(m1, data=salary).axes[0]
    np.testing.assert_allclose(again.collections[0].get_offsets(), own)


def test_residual_panels(fits):
    m1 = fits[1]
    fig = mm.plots.residuals(m1)
    assert len(fig.axes) == 4
    assert len(fig.axes[0].collections[0].get_offsets()) == m1.nobs
    assert fig.axes[0].get_xlabel() == "fitted salary"
    sizes = [len(_marker_lines(ax)[0].get_xdata()) for ax in fig.axes[1:]]
    assert sizes == [m1.nobs, 20, 20]
    assert all(ax.get_xlabel() and ax.get_ylabel() and ax.get_title() for ax in fig.axes)
