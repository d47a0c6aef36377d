"""Plots for learning and checking mixed models (matplotlib).

Every function returns the matplotlib Figure and never calls ``show()``: in a notebook the
figure is displayed, in a script call ``plt.show()`` or ``fig.savefig(...)``. Functions that
draw a single axes accept ``ax=`` to draw into an existing one.

matplotlib is imported inside the functions, so ``import mixedmodels`` does not pay for it.

Groups appear in the model's level order (a Categorical's order, otherwise R's sorted order),
the order of ``coef()`` and ``ranef()``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError

__all__ = ["group_data", "model_lines", "caterpillar", "shrinkage", "residuals",
           "quantile_residuals"]

# Population (fixed-effects) lines and points: drawn black and heavy so they stand out from
# the per-group colours, as in the usual textbook figures.
_POPULATION = dict(color="black", linewidth=3.0, zorder=5)


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _colour(i: int, n: int):
    import matplotlib

    # tab20 gives distinct colours up to 20 groups; beyond that a continuous map avoids
    # repeating colours next to each other.
    cmap = matplotlib.colormaps["tab20" if n <= 20 else "viridis"]
    return cmap(i % 20) if n <= 20 else cmap(i / max(n - 1, 1))


def _one_axes(ax: Any, figsize: tuple[float, float]):
    if ax is not None:
        return ax.figure, ax
    fig, ax = _pyplot().subplots(figsize=figsize)
    return fig, ax


def _grid(n: int, ncols: int, panel_size: tuple[float, float], **kwargs):
    """A figure with ``n`` axes on a grid; unused grid cells are removed."""
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = _pyplot().subplots(nrows, ncols, squeeze=False,
                                   figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
                                   **kwargs)
    flat = list(axes.ravel())
    for extra in flat[n:]:
        fig.delaxes(extra)
    return fig, flat[:n], ncols


def _ols_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """Intercept and slope of y on x, or None when x does not vary."""
    if x.size < 2 or np.ptp(x) == 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)


def _units(units: dict[str, str] | None, data: Any = None) -> dict[str, str]:
    """The units to label axes with: ``units``, else the data's ``attrs["units"]``, else none."""
    if units is not None:
        return dict(units)
    # polars frames and plain pandas frames have no units; load() sets them on pandas frames
    return dict(getattr(data, "attrs", {}).get("units", {}))


def _with_unit(name: str, units: dict[str, str]) -> str:
    """``"Days (days)"`` for a column with a known unit, else the column's name alone."""
    unit = units.get(name)
    return f"{name} ({unit})" if unit else name


def _caption(fig: Any, text: str, fontsize: float = 9.0) -> None:
    """Write ``"What to look for: " + text`` under the axes and lay the figure out above it.

    The text is wrapped here, not by matplotlib, so that the space kept free for it is known:
    about 0.075 inch per character of a 9-point line and 0.17 inch per line.
    """
    import textwrap

    width, height = fig.get_size_inches()
    scale = fontsize / 9.0
    lines = textwrap.wrap(f"What to look for: {text}", width=max(40, int(width / (0.075 * scale))))
    fig.text(0.5, 0.06 / height, "\n".join(lines), ha="center", va="bottom", fontsize=fontsize)
    bottom = min(0.45, (0.17 * scale * len(lines) + 0.16) / height)
    fig.tight_layout(rect=(0, bottom, 1, 1))


def _numeric_columns(data: Any, columns: dict[str, Any]) -> pd.DataFrame:
    from .formula.design import to_pandas
    from .teaching.tables import _require_column

    data = to_pandas(data)
    for role, name in columns.items():
        _require_column(data, name, role)
        if role != "grouping column":
            dtype = data[name].dtype
            if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
                raise DataError(f"the {role} column {name!r} is not numeric (dtype {dtype})")
    frame = data[list(dict.fromkeys(columns.values()))]
    return frame.loc[frame.notna().all(axis=1).to_numpy()]


# ---- raw data ------------------------------------------------------------------------------

def group_data(data: Any, x: str, y: str, by: str, panels: bool = True, ols: bool = True,
               max_panels: int = 30, ax: Any = None, units: dict[str, str] | None = None):
    """Scatter plot of ``y`` against ``x`` for each group, with each group's own OLS line.

    Parameters
    ----------
    data : pandas or polars data frame
    x, y : str
        Numeric columns for the horizontal and vertical axes.
    by : str
        Grouping column.
    panels : bool, default True
        One panel per group on a grid with shared axes; False draws all groups in one axes,
        one colour per group.
    ols : bool, default True
        Draw each group's own least-squares line (the "no pooling" fit) over the group's
        range of ``x``; groups whose ``x`` does not vary get no line.
    max_panels : int, default 30
        Refuse to draw more panels than this (a grid of hundreds of panels is unreadable).
    ax : matplotlib Axes, optional
        Axes to draw into; only with ``panels=False``. The figure is then the caller's: no
        caption is added and its layout is left alone.
    units : dict of str to str, optional
        Units of columns, e.g. ``{"Reaction": "ms", "Days": "days"}``, shown on the axis
        labels (``"Days (days)"``). By default ``data.attrs["units"]`` when ``data`` has it
        (:func:`mixedmodels.datasets.load` sets it), else no units.

    Returns
    -------
    matplotlib.figure.Figure
        With panels, one axes per group, titled with the group and its N, each holding one
        scatter collection and (with ``ols``) one line. Without, one axes holding one
        scatter collection and one line per group. Unless drawn into ``ax``, a caption under
        the axes says what to look for.

    Raises
    ------
    DataError
        Unknown or non-numeric column, fewer than two groups, or more groups than
        ``max_panels`` with ``panels=True``.
    """
    from .teaching.tables import _group_codes

    units = _units(units, data)
    frame = _numeric_columns(data, {"x": x, "y": y, "grouping column": by})
    codes, labels = _group_codes(frame, by)
    xs, ys = frame[x].to_numpy(dtype=float), frame[y].to_numpy(dtype=float)
    n = len(labels)
    if panels and ax is not None:
        raise ValueError("ax= can only be used with panels=False (panels need their own figure)")
    if panels and n > max_panels:
        raise DataError(f"the grouping column {by!r} has {n} groups, more than max_panels="
                        f"{max_panels}; use panels=False or a larger max_panels")

    if panels:
        fig, axes, ncols = _grid(n, ncols=math.ceil(math.sqrt(n)), panel_size=(2.4, 2.0),
                                 sharex=True, sharey=True)
    else:
        fig, one = _one_axes(ax, figsize=(7.0, 5.0))
        axes = [one] * n
    for j, (label, target) in enumerate(zip(labels, axes)):
        rows = codes == j
        colour = "C0" if panels else _colour(j, n)
        target.scatter(xs[rows], ys[rows], s=10, alpha=0.7, color=colour,
                       label=label if not panels and n <= 10 else None)
        line = _ols_line(xs[rows], ys[rows]) if ols else None
        if line is not None:
            lo, hi = xs[rows].min(), xs[rows].max()
            target.plot([lo, hi], [line[0] + line[1] * lo, line[0] + line[1] * hi],
                        color="C3" if panels else colour, linewidth=1.5)
        if panels:
            target.set_title(f"{label} (N={int(rows.sum())})", fontsize=9)

    if panels:
        for i, target in enumerate(axes):
            # Label the outer panels only: the axes are shared, so inner labels repeat them.
            if i + ncols >= n:
                target.set_xlabel(_with_unit(x, units))
                target.xaxis.set_tick_params(labelbottom=True)
            if i % ncols == 0:
                target.set_ylabel(_with_unit(y, units))
        what = " with each group's own regression line" if ols else ""
        fig.suptitle(f"{y} against {x} per {by}{what}")
    else:
        axes[0].set_xlabel(_with_unit(x, units))
        axes[0].set_ylabel(_with_unit(y, units))
        what = " and own regression lines" if ols else ""
        axes[0].set_title(f"{y} against {x}: {n} groups of {by}{what}")
        if n <= 10:
            axes[0].legend(title=by, fontsize=8)
    if ax is None:
        if ols:
            look = (f"how much the groups' lines differ in height (intercepts) and in "
                    f"steepness (slopes): that variation between the {by} groups is what "
                    f"random intercepts and slopes describe. Lines drawn through few points "
                    f"are the least reliable.")
        else:
            look = (f"how far apart the {by} groups' clouds of points lie, and whether {y} "
                    f"rises with {x} in the same way in every group.")
        _caption(fig, look)
    return fig


# ---- fitted model --------------------------------------------------------------------------

def _term_for(result: Any, name: str | None):
    """The first random-effects term with column ``name`` (else the first term), with its
    rows."""
    terms = result.rows.terms
    for t in terms:
        if name in t.column_names:
            return t
    return terms[0]


def model_lines(result: Any, x: str, groups: Any = None, population: bool = True,
                data: Any = None, ax: Any = None, units: dict[str, str] | None = None):
    """Each group's fitted line from ``coef()`` and the population line from ``fixef``.

    A group's line is ``coef()[(Intercept)] + coef()[x] * x``, drawn over the group's own
    range of ``x``; the population line ``fixef[(Intercept)] + fixef[x] * x`` is black and
    thicker and spans all the data. Other predictors in the model are taken as 0.

    Parameters
    ----------
    result : LmerResult
    x : str
        A coefficient of the model (a numeric predictor), e.g. ``"service"``.
    groups : str or list of str, optional
        Level(s) of the grouping factor to draw; all levels by default. The grouping factor
        is the first one with a random slope for ``x`` (else the first one).
    population : bool, default True
        Draw the population (fixed-effects) line.
    data : data frame, optional
        When given, the observations of the drawn groups are shown as points (columns ``x``,
        the response and the grouping column).
    ax : matplotlib Axes, optional
        Axes to draw into; the figure is then the caller's (no caption, layout left alone).
    units : dict of str to str, optional
        Units of ``x`` and the response for the axis labels, e.g. ``{"service": "years",
        "salary": "currency units"}``. By default ``data.attrs["units"]`` when ``data`` is
        given and has it (:func:`mixedmodels.datasets.load` sets it), else no units.

    Returns
    -------
    matplotlib.figure.Figure
        One line per drawn group, plus one for the population, plus (with ``data``) one
        scatter collection per drawn group. Unless drawn into ``ax``, a caption under the
        axes says what to look for.

    Raises
    ------
    DataError
        ``x`` is not a coefficient, or an unknown group level.
    """
    term = _term_for(result, x)
    group = term.group_name
    table = result.coef()[group]
    if x not in table.columns or x not in result.info.x_names:
        raise DataError(f"{x!r} is not a fixed-effect coefficient of the model "
                        f"(coefficients: {', '.join(map(str, table.columns))})")
    levels = list(table.index)
    chosen = levels if groups is None else ([groups] if isinstance(groups, str) else list(groups))
    unknown = [g for g in chosen if g not in levels]
    if unknown:
        raise DataError(f"unknown level(s) {unknown} of the grouping factor {group!r}")

    xs = result.rows.X[:, list(result.info.x_names).index(x)]
    response = result.info.formula.response
    level_index = {label: j for j, label in enumerate(term.levels)}
    units = _units(units, data)
    own_figure = ax is None
    fig, ax = _one_axes(ax, figsize=(7.0, 5.0))

    points = None
    if data is not None:
        points = _numeric_columns(data, {"x": x, "response": response,
                                         "grouping column": group})
        from .formula.design import factor_codes

        codes, point_labels = factor_codes(points[group])
    for i, label in enumerate(chosen):
        colour = _colour(i, len(chosen))
        if points is not None and label in point_labels:
            rows = codes == point_labels.index(label)
            ax.scatter(points[x].to_numpy()[rows], points[response].to_numpy()[rows], s=10,
                       alpha=0.5, color=colour)
        own = xs[term.refs == level_index[label]]
        lo, hi = (own.min(), own.max()) if own.size else (xs.min(), xs.max())
        a = table.at[label, "(Intercept)"] if "(Intercept)" in table.columns else 0.0
        b = table.at[label, x]
        ax.plot([lo, hi], [a + b * lo, a + b * hi], color=colour, linewidth=1.2, alpha=0.9,
                label=label if len(chosen) <= 10 else None)
    if population:
        fixef = result.fixef
        a = fixef.get("(Intercept)", 0.0)
        lo, hi = xs.min(), xs.max()
        ax.plot([lo, hi], [a + fixef[x] * lo, a + fixef[x] * hi],
                label="population (fixed effects)", **_POPULATION)
    ax.set_xlabel(_with_unit(x, units))
    ax.set_ylabel(_with_unit(response, units))
    which = f"{group} {chosen[0]}" if len(chosen) == 1 else f"{len(chosen)} groups of {group}"
    ax.set_title(f"Model lines (partial pooling) for {which}")
    if population or len(chosen) <= 10:
        ax.legend(fontsize=8)
    if own_figure:
        around = " around the black population line" if population else ""
        _caption(fig, f"the spread of the {group} lines in height and slope{around}: that "
                      f"spread is what the random-effect standard deviations measure. The "
                      f"lines lie closer together than each group's own least-squares line "
                      f"would (shrinkage), most for groups with few observations.")
    return fig


def caterpillar(result: Any, term: str | None = None, group: str | None = None,
                level: float = 0.95, units: dict[str, str] | None = None):
    """Conditional modes of the random effects with intervals, sorted ("caterpillar plot").

    Each level's conditional mode is a point, with the interval condval +/- z * condsd
    (z the normal quantile for ``level``); levels are sorted by their mode. One panel per
    grouping factor and term.

    Parameters
    ----------
    result : LmerResult or GlmerResult (whose modes are on the link scale, named on the axis)
    term : str, optional
        Only this random-effect term (e.g. ``"(Intercept)"``, ``"service"``).
    group : str, optional
        Only this grouping factor.
    level : float, default 0.95
        Coverage of the intervals.
    units : dict of str to str, optional
        Units of the response and predictors, e.g. ``data.attrs["units"]`` of a frame from
        :func:`mixedmodels.datasets.load`: an intercept's modes are in the response's unit, a
        slope's in the response's unit per unit of its predictor. Ignored for a GLMM, whose
        modes are on the link scale.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per (grouping factor, term), each with one marker line holding one point
        per level and one line collection of intervals, and a caption under the axes saying
        what to look for.

    Raises
    ------
    DataError
        Unknown term or grouping factor, or a level outside (0, 1).
    """
    from scipy.stats import norm

    if not 0 < level < 1:
        raise DataError(f"level must be between 0 and 1, not {level}")
    re = result.ranef()
    for column, wanted in (("grpvar", group), ("term", term)):
        if wanted is not None:
            if wanted not in set(re[column]):
                raise DataError(f"unknown {'grouping factor' if column == 'grpvar' else 'term'} "
                                f"{wanted!r}; the model has {sorted(set(re[column]))}")
            re = re[re[column] == wanted]
    z = norm.ppf(0.5 + level / 2)
    family = getattr(result, "family", None)
    response = result.info.formula.response
    units = _units(units) if family is None else {}
    pairs = list(dict.fromkeys(zip(re["grpvar"], re["term"])))
    most = max(int(((re.grpvar == g) & (re.term == t)).sum()) for g, t in pairs)
    fig, axes, _ = _grid(len(pairs), ncols=len(pairs),
                         panel_size=(3.6, min(12.0, max(3.0, 0.18 * most + 1.2))))
    for ax, (g, t) in zip(axes, pairs):
        part = re[(re.grpvar == g) & (re.term == t)].sort_values("condval", kind="stable")
        pos = np.arange(len(part))
        cv, sd = part["condval"].to_numpy(), part["condsd"].to_numpy()
        ax.hlines(pos, cv - z * sd, cv + z * sd, color="0.55", linewidth=1.2)
        ax.plot(cv, pos, "o", color="C0", markersize=4)
        ax.axvline(0.0, color="0.3", linestyle="--", linewidth=0.8)
        # Beyond ~60 levels the labels overlap into a black bar; the shape is the message.
        if len(part) <= 60:
            ax.set_yticks(pos, list(part["grp"]), fontsize=7)
        else:
            ax.set_yticks([])
        unit = (f"{family.link.name} scale" if family is not None
                else _coef_unit(t, response, units))
        ax.set_xlabel(f"{t} (conditional mode{', ' + unit if unit else ''})")
        ax.set_ylabel(g)
        ax.set_title(f"{g}: {t}")
    fig.suptitle(f"Random effects with {100 * level:g}% intervals")
    _caption(fig, "intervals that miss 0 (the dashed line) mark groups that differ from the "
                  "average; intervals that cross it belong to groups that cannot be told "
                  "apart from the average. Wide intervals mean few or noisy observations.")
    return fig


def _singular(unit: str) -> str:
    """``"years"`` -> ``"year"`` for "per year"; short symbols (``"ms"``) stay as they are."""
    last = unit.rsplit(" ", 1)[-1]
    return unit[:-1] if last.endswith("s") and len(last) > 3 else unit


def _coef_unit(name: str, response: str, units: dict[str, str]) -> str | None:
    """A coefficient's unit: the response's unit for the intercept, the response's unit per
    unit of the predictor for a slope; None where one is not known."""
    y_unit = units.get(response)
    if name == "(Intercept)":
        return y_unit
    return f"{y_unit} per {_singular(units[name])}" if y_unit and units.get(name) else None


def _coef_label(name: str, response: str, units: dict[str, str]) -> str:
    """A coefficient's axis label with its unit, e.g. ``"Days (ms per day)"``."""
    unit = _coef_unit(name, response, units)
    return f"{name} ({unit})" if unit else name


def _shrinkage_moves(ax: Any, est: Any, c: int, order: np.ndarray, label: str) -> None:
    """One row per group: the move partial minus no pooling of coefficient ``c``, from 0."""
    move = est.partial[order, c] - est.own[order, c]
    pos = np.arange(order.size)
    ax.hlines(pos, 0.0, move, color="0.55", linewidth=1.2)
    ax.plot(move, pos, "o", color="C0", markersize=4)
    ax.axvline(0.0, color="0.3", linestyle="--", linewidth=0.8)
    if order.size <= 60:
        ax.set_yticks(pos, [f"{est.levels[j]} (N={est.n[j]})" for j in order], fontsize=7)
    else:
        ax.set_yticks([])
    ax.set_ylim(order.size - 0.5, -0.5)
    ax.set_xlabel(f"partial - no pooling: {label}", fontsize=9)
    ax.set_title(f"How far {est.names[c]} moved", fontsize=10)


def shrinkage(result: Any, data: Any = None, ax: Any = None,
              units: dict[str, str] | None = None):
    """How the mixed model moves each group's own estimate towards the population.

    For the model's first grouping factor (lme4's order: the one with the most levels), the
    first panel draws an arrow from each group's own least-squares estimate (no pooling, open
    circle) to the mixed model's estimate ``coef()`` (partial pooling, filled):

    - one random coefficient (a random intercept): estimates against the group's number of
      observations, with the population estimate (fixef) as a black line; small groups move
      the most. The N axis is logarithmic when the sizes differ by a factor of 4 or more,
      linear when they differ less; when all groups have the same size, the groups are
      spread along the axis in the order of their own estimates instead;
    - two or more (intercept and slope): the first two coefficients against each other, a 2-D
      arrow per group, and the population estimate (fixef) as a black point.

    One more panel per drawn coefficient shows each group's move, partial minus no pooling,
    on its own scale, so that moves too small to see as arrows still show. Its groups are
    sorted by size (smallest first), or by own estimate when all sizes are equal. A caption
    under the panels says what to look for.

    Parameters
    ----------
    result : LmerResult
    data : data frame, optional
        Not needed: the own fits are computed from the arrays the model was fitted on
        (``result.rows``). When given, the own fits use these rows instead (the model's
        formula is applied to them), e.g. to compare with data that the fit did not see.
    ax : matplotlib Axes, optional
        Draw only the arrow panel, into this axes (no move panels, no caption).
    units : dict of str to str, optional
        Units of the response and predictors, e.g. ``{"salary": "currency units",
        "service": "years"}``, for the axis labels: the intercept is in the response's unit,
        a slope in the response's unit per unit of its predictor. By default
        ``data.attrs["units"]`` when ``data`` has it (:func:`mixedmodels.datasets.load` sets
        it), else no units.

    Returns
    -------
    matplotlib.figure.Figure
        The first axes holds a scatter of own estimates (one point per estimable group), a
        scatter of mixed-model estimates (one per group) and one arrow patch per estimable
        group. Without ``ax``, one more axes per drawn coefficient (one or two) holds one
        marker line with a point per estimable group and one line collection of its moves.
    """
    from matplotlib.patches import FancyArrowPatch

    from .teaching.tables import pooling_estimates

    design = None
    if units is None:
        units = dict(getattr(data, "attrs", {}).get("units", {}))
    if data is not None:
        from .formula.design import build_design

        design = build_design(result.info.formula, data)
    est = pooling_estimates(result, design)
    ok = np.all(np.isfinite(est.own), axis=1)
    response = result.info.formula.response
    drawn = est.names[:2]
    labels = [_coef_label(name, response, units) for name in drawn]
    # Groups of one size give no spread along an N axis; order them by their own estimate.
    key = np.where(ok, est.own[:, 0], est.partial[:, 0])
    same_size = np.ptp(est.n) == 0
    if ax is None:
        ratios = [1.5] + [1.0] * len(drawn)
        fig, axes = _pyplot().subplots(
            1, 1 + len(drawn), gridspec_kw={"width_ratios": ratios},
            figsize=(6.5 + 3.8 * len(drawn), min(12.0, max(5.0, 0.2 * len(est.levels) + 2.0))))
        ax = axes[0]
    else:
        fig, axes = ax.figure, [ax]
    fixef = result.fixef

    if len(drawn) == 1:
        if same_size:
            xs_mix = np.argsort(np.argsort(key, kind="stable")).astype(float)
            ax.set_xlabel(f"{est.group}, in the order of the own estimates "
                          f"(every {est.group} has N = {est.n[0]})")
            if len(est.levels) <= 40:
                ax.set_xticks(xs_mix, est.levels, rotation=90, fontsize=7)
        else:
            xs_mix = est.n.astype(float)
            log = est.n.max() >= 4 * est.n.min()
            ax.set_xscale("log" if log else "linear")
            ax.set_xlabel(f"observations per {est.group} (N{', log scale' if log else ''})")
        xs_own = xs_mix[ok]
        ys_own, ys_mix = est.own[ok, 0], est.partial[:, 0]
        ax.axhline(fixef[drawn[0]], label=f"population (fixed effect {drawn[0]})",
                   **_POPULATION)
        unit = units.get(response) if drawn[0] == "(Intercept)" else None
        ax.set_ylabel(f"(Intercept) ({response}{', ' + unit if unit else ''})"
                      if drawn[0] == "(Intercept)" else labels[0])
    else:
        xs_own, ys_own = est.own[ok, 0], est.own[ok, 1]
        xs_mix, ys_mix = est.partial[:, 0], est.partial[:, 1]
        ax.plot([fixef[drawn[0]]], [fixef[drawn[1]]], "o", markersize=10,
                label="population (fixed effects)", **_POPULATION)
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])

    ax.scatter(xs_own, ys_own, s=30, facecolors="none", edgecolors="C3",
               label="no pooling (own regression)", zorder=3)
    ax.scatter(xs_mix, ys_mix, s=30, color="C0", label="partial pooling (mixed model)",
               zorder=4)
    for start, end in zip(np.column_stack([xs_own, ys_own]),
                          np.column_stack([xs_mix[ok], ys_mix[ok]])):
        ax.add_patch(FancyArrowPatch(tuple(start), tuple(end), arrowstyle="->",
                                     mutation_scale=10, color="0.45", linewidth=0.9))
    title = f"Shrinkage of the {est.group} estimates towards the population"
    ax.legend(fontsize=8)
    if len(axes) == 1:
        ax.set_title(title)
        return fig

    ax.set_title("Arrows: own estimate to mixed-model estimate", fontsize=10)
    order = np.flatnonzero(ok)
    order = order[np.lexsort((key[order],) if same_size else (key[order], est.n[order]))]
    for c, (target, label) in enumerate(zip(axes[1:], labels)):
        _shrinkage_moves(target, est, c, order, label)
    fig.suptitle(title)
    who = "" if same_size else f"small {est.group}s and for "
    fig.text(0.5, 0.01, f"What to look for: the arrows run from each {est.group}'s own estimate "
             f"towards the population estimate (black); they are longest for {who}"
             f"{est.group}s far from the population. The right-hand panels give each move "
             f"(partial minus no pooling) on its own scale, so that small moves show too.",
             ha="center", va="bottom", fontsize=9, wrap=True)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def __getattr__(name: str) -> Any:
    # The residual panels live in plots_residuals.py (this module's line budget); importing
    # them here lazily keeps mm.plots.residuals and mm.plots.quantile_residuals working.
    if name in ("residuals", "quantile_residuals"):
        from . import plots_residuals

        return getattr(plots_residuals, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
