"""Tests of the shrinkage plot (mm.plots.shrinkage), drawn headless with Agg.

Expectations come from the model's own outputs (coef, fixef) and per-group least squares
(numpy polyfit / group means), not from the plotting code.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.patches import FancyArrowPatch

import mixedmodels as mm


@pytest.fixture(scope="module")
def sleep():
    return mm.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def salary():
    return mm.datasets.load("salary")


def arrows(ax):
    return [p for p in ax.patches if isinstance(p, FancyArrowPatch)]


def scatters(ax):
    return [np.asarray(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)]


def moves(ax):
    """The move panel's markers: one (x = move, y = row) point per group."""
    points = [line for line in ax.lines if line.get_marker() not in (None, "None", "")]
    assert len(points) == 1
    stems = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(stems) == 1
    return np.asarray(points[0].get_xdata()), stems[0]


def caption(fig):
    return " ".join(t.get_text() for t in fig.texts)


def test_equal_group_sizes_spread_along_the_axis(sleep):
    m = mm.lmer("Reaction ~ 1 + (1 | Subject)", sleep)
    assert set(sleep.groupby("Subject", observed=True).size()) == {10}
    fig = mm.plots.shrinkage(m)
    assert len(fig.axes) == 2
    main, panel = fig.axes
    own, mixed = scatters(main)
    assert len(own) == len(mixed) == 18 and len(arrows(main)) == 18
    # The groups do not pile up on one x position: each has its own.
    assert main.get_xscale() == "linear"
    assert len(np.unique(mixed[:, 0])) == 18
    np.testing.assert_allclose(own[:, 0], mixed[:, 0])
    assert "N = 10" in main.get_xlabel()
    # Own estimates are the subject means; they are spread in their order along x.
    means = sleep.groupby("Subject", observed=True)["Reaction"].mean().to_numpy()
    np.testing.assert_allclose(own[:, 1], means)
    assert np.all(np.diff(own[np.argsort(own[:, 0]), 1]) >= 0)
    np.testing.assert_allclose(mixed[:, 1], m.coef()["Subject"]["(Intercept)"])

    x, stems = moves(panel)
    assert len(x) == 18 and len(stems.get_segments()) == 18
    np.testing.assert_allclose(np.sort(x), np.sort(mixed[:, 1] - own[:, 1]))
    assert len(panel.get_yticklabels()) == 18


def test_sleepstudy_slopes_have_a_move_panel_per_coefficient(sleep):
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    fig = mm.plots.shrinkage(m, units=mm.datasets.units("sleepstudy"))
    assert len(fig.axes) == 3
    main = fig.axes[0]
    own, mixed = scatters(main)
    assert len(own) == 18 and len(arrows(main)) == 18
    assert main.get_xlabel() == "(Intercept) (ms)"
    assert main.get_ylabel() == "Days (ms per day)"
    coef = m.coef()["Subject"]
    for c, (panel, name) in enumerate(zip(fig.axes[1:], ["(Intercept)", "Days"])):
        x, _ = moves(panel)
        assert len(x) == 18
        np.testing.assert_allclose(np.sort(x), np.sort(coef[name].to_numpy() - own[:, c]))
        assert name in panel.get_title()
    assert "ms per day" in fig.axes[2].get_xlabel()


def test_small_shrinkage_is_visible_in_the_move_panel(salary):
    m = mm.lmer("salary ~ 1 + (1 | organisation)", salary)
    fig = mm.plots.shrinkage(m, data=salary)
    main, panel = fig.axes
    assert main.get_xscale() == "log"
    own, mixed = scatters(main)
    # In the arrow panel the moves are tiny against the spread of the estimates ...
    low, high = main.get_ylim()
    assert np.max(np.abs(mixed[:, 1] - own[:, 1])) < 0.05 * (high - low)
    # ... on the move panel's own scale the largest takes up a good part of the axis.
    x, _ = moves(panel)
    low, high = panel.get_xlim()
    assert np.max(np.abs(x)) > 0.3 * (high - low)
    # Sorted by size, smallest first; the labels carry N.
    labels = [t.get_text() for t in panel.get_yticklabels()]
    assert labels[0] == "Organisation10 (N=6)"


def test_units_come_from_the_loaded_data(salary):
    m = mm.lmer("salary ~ 1 + service + (1 + service | organisation)", salary)
    fig = mm.plots.shrinkage(m, data=salary)
    main = fig.axes[0]
    assert main.get_xlabel() == "(Intercept) (currency units)"
    assert main.get_ylabel() == "service (currency units per year)"
    assert len(arrows(main)) == 20
    assert [len(moves(ax)[0]) for ax in fig.axes[1:]] == [20, 20]
    # Without units, plain coefficient names.
    plain = mm.plots.shrinkage(m).axes[0]
    assert (plain.get_xlabel(), plain.get_ylabel()) == ("(Intercept)", "service")


def test_title_and_caption_say_what_to_look_for(salary):
    m = mm.lmer("salary ~ 1 + (1 | organisation)", salary)
    fig = mm.plots.shrinkage(m)
    assert "Shrinkage" in fig.get_suptitle()
    text = caption(fig)
    assert "What to look for" in text and "small organisations" in text
    assert "partial minus no pooling" in text


def test_into_an_existing_axes_draws_the_arrow_panel_only(sleep):
    m = mm.lmer("Reaction ~ 1 + (1 | Subject)", sleep)
    fig, ax = plt.subplots()
    assert mm.plots.shrinkage(m, ax=ax) is fig
    assert fig.axes == [ax] and len(arrows(ax)) == 18 and not fig.texts
    assert "Shrinkage" in ax.get_title()


def test_png_renders(tmp_path, salary):
    m = mm.lmer("salary ~ 1 + service + (1 + service | organisation)", salary)
    path = tmp_path / "shrinkage.png"
    mm.plots.shrinkage(m, data=salary).savefig(path, dpi=60)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
