"""Units on the axes and a "what to look for" caption: group_data, model_lines, caterpillar and
residuals, drawn headless with Agg.

The units come from ``mm.datasets.load`` (``frame.attrs["units"]``: sleepstudy's Reaction in
ms, Days in days) or from ``units=``; a frame without units keeps the bare column names.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

import mixedmodels as mm


@pytest.fixture(scope="module")
def sleep():
    return mm.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def fit(sleep):
    return mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)


def _caption(fig) -> str:
    """The figure-level text that says what to look for (not a suptitle)."""
    texts = [t.get_text() for t in fig.texts if t.get_text().startswith("What to look for")]
    assert len(texts) == 1, [t.get_text() for t in fig.texts]
    return " ".join(texts[0].split())


def _labels(fig) -> set[str]:
    return {label for ax in fig.axes for label in (ax.get_xlabel(), ax.get_ylabel()) if label}


def _caption_is_below_the_axes(fig) -> None:
    fig.canvas.draw()
    caption = next(t for t in fig.texts if t.get_text().startswith("What to look for"))
    top = caption.get_window_extent().y1
    bottom = min(ax.get_tightbbox().y0 for ax in fig.axes)
    assert top <= bottom + 1, "the caption overlaps the axes"


def test_group_data_units_from_the_data_and_caption(sleep):
    fig = mm.plots.group_data(sleep, "Days", "Reaction", "Subject")
    assert {"Days (days)", "Reaction (ms)"} <= _labels(fig)
    assert "Days" not in _labels(fig) and "Reaction" not in _labels(fig)
    text = _caption(fig)
    assert "intercepts" in text and "slopes" in text
    _caption_is_below_the_axes(fig)


def test_group_data_one_axes_and_explicit_units(sleep):
    fig = mm.plots.group_data(sleep, "Days", "Reaction", "Subject", panels=False, ols=False,
                              units={"Reaction": "milliseconds"})
    ax = fig.axes[0]
    # units= replaces the data's own units: Days has none there
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Days", "Reaction (milliseconds)")
    assert "how far apart" in _caption(fig)


def test_group_data_into_a_given_axes_adds_no_caption(sleep):
    fig, ax = plt.subplots()
    mm.plots.group_data(sleep, "Days", "Reaction", "Subject", panels=False, ax=ax)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Days (days)", "Reaction (ms)")
    assert fig.texts == []


def test_no_units_without_attrs(sleep, fit):
    bare = sleep.copy()
    bare.attrs = {}
    fig = mm.plots.group_data(bare, "Days", "Reaction", "Subject", panels=False)
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("Days", "Reaction")
    ax = mm.plots.model_lines(fit, "Days").axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Days", "Reaction")
    labels = _labels(mm.plots.caterpillar(fit))
    assert labels == {"(Intercept) (conditional mode)", "Days (conditional mode)", "Subject"}


def test_model_lines_units_and_caption(sleep, fit):
    fig = mm.plots.model_lines(fit, "Days", data=sleep)
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Days (days)", "Reaction (ms)")
    text = _caption(fig)
    assert "population line" in text and "shrinkage" in text
    _caption_is_below_the_axes(fig)
    fig = mm.plots.model_lines(fit, "Days", population=False, units={"Days": "d"})
    assert fig.axes[0].get_xlabel() == "Days (d)"
    assert "population line" not in _caption(fig)


def test_caterpillar_units_and_caption(sleep, fit):
    fig = mm.plots.caterpillar(fit, units=sleep.attrs["units"])
    xlabels = [ax.get_xlabel() for ax in fig.axes]
    # an intercept's modes are in the response's unit, a slope's per unit of its predictor
    assert xlabels == ["(Intercept) (conditional mode, ms)",
                       "Days (conditional mode, ms per day)"]
    text = _caption(fig)
    assert "intervals that miss 0" in text and "differ from the average" in text
    _caption_is_below_the_axes(fig)


def test_caterpillar_of_a_glmm_names_the_link_scale_not_units():
    cbpp = mm.datasets.load("cbpp")
    g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                 family="binomial")
    fig = mm.plots.caterpillar(g, units={"incidence": "cases"})
    assert fig.axes[0].get_xlabel() == "(Intercept) (conditional mode, logit scale)"
    assert _caption(fig)


def test_residuals_units_and_caption(sleep, fit):
    fig = mm.plots.residuals(fit, units=sleep.attrs["units"])
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("fitted Reaction (ms)", "residuals (ms)")
    assert [a.get_ylabel() for a in fig.axes[1:]] == [
        "residuals (ms)", "(Intercept) (conditional mode, ms)",
        "Days (conditional mode, ms per day)"]
    text = _caption(fig)
    assert "no pattern against the fitted values" in text
    assert "points near the red line in the QQ plots" in text
    _caption_is_below_the_axes(fig)


def test_residuals_is_still_reached_from_plots():
    from mixedmodels.plots import quantile_residuals, residuals

    assert residuals is mm.plots.residuals and callable(quantile_residuals)
    with pytest.raises(AttributeError):
        mm.plots.no_such_plot  # noqa: B018
