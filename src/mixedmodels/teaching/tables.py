"""Tables for teaching mixed models: group summaries, pooling comparisons and the ICC.

These are the tables of a first course on multilevel models: how many observations each group
has and what its mean is (``describe``); how the mixed model's group estimates sit between one
regression on all the data and a separate regression per group (``pooling``); and how much of
the variance lies between groups (``icc``).

Groups are always listed in the order the model uses: the level order of a Categorical,
otherwise R's sorted order. That is the order of ``LmerResult.coef()`` and ``ranef()``, so the
tables line up row for row with model output.
"""
from __future__ import annotations

import difflib
import html
import math
import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError
from ..formula import fixed as fx
from ..formula.bars import parse_formula
from ..formula.design import Design, factor_codes, to_pandas

__all__ = ["describe", "pooling", "icc", "ICC", "TeachingTable"]


class TeachingTable(pd.DataFrame):
    """A DataFrame that prints its numbers rounded for reading, with an optional caption.

    The values themselves are never rounded: only ``str()``, ``repr()`` and the HTML form
    are. Each float column is shown with about four significant digits of its largest value
    (no more than four decimals), so salaries print as whole units and an ICC as 0.8414.
    """

    _metadata = ["caption"]

    @property
    def _constructor(self):
        return TeachingTable

    def _display_frame(self) -> pd.DataFrame:
        shown = pd.DataFrame(self).copy()
        for name in shown.columns:
            column = shown[name]
            if pd.api.types.is_float_dtype(column.dtype):
                shown[name] = _format_floats(column.to_numpy())
        return shown

    def __repr__(self) -> str:
        # to_string wraps a wide table into blocks instead of hiding columns behind "...":
        # in a pooling table every column is part of the lesson.
        text = self._display_frame().to_string(
            line_width=pd.get_option("display.width"),
            max_rows=pd.get_option("display.max_rows"),
            min_rows=pd.get_option("display.min_rows"))
        caption = getattr(self, "caption", None)
        if not caption:
            return text
        return f"{text}\n\n{textwrap.fill(caption, width=pd.get_option('display.width'))}"

    def _repr_html_(self) -> str:
        table = self._display_frame()._repr_html_()
        caption = getattr(self, "caption", None)
        if not caption:
            return table
        return f"{table}<p><small>{html.escape(caption)}</small></p>"


def _decimals(largest: float) -> int:
    # Four significant digits of the largest value: whole units for salaries, a few decimals
    # for slopes and proportions, never scientific notation.
    magnitude = math.floor(math.log10(largest)) if largest > 0 else 0
    return min(4, max(0, 3 - magnitude))


def _format_floats(values: np.ndarray) -> list[str]:
    finite = np.abs(values[np.isfinite(values)])
    decimals = _decimals(finite.max() if finite.size else 0.0)
    return ["NaN" if not np.isfinite(v) else f"{v:.{decimals}f}" for v in values]


def _readable(value: float) -> str:
    if not np.isfinite(value):
        return "NaN"
    return f"{value:,.{_decimals(abs(value))}f}"


# ---- input checks -------------------------------------------------------------------------

def _require_column(data: pd.DataFrame, name: Any, role: str) -> None:
    if name in data.columns:
        return
    columns = [str(c) for c in data.columns]
    close = difflib.get_close_matches(str(name), columns, n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise DataError(f"unknown column {name!r} given as the {role}{hint} "
                    f"(columns: {', '.join(columns)})")


def _require_numeric(data: pd.DataFrame, name: Any) -> None:
    dtype = data[name].dtype
    if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        raise DataError(f"the outcome column {name!r} is not numeric (dtype {dtype}); "
                        f"convert it to numbers first")


def _group_codes(data: pd.DataFrame, by: Any) -> tuple[np.ndarray, list[str]]:
    """Codes and labels of a grouping column, in the model's level order; needs 2+ levels."""
    codes, labels = factor_codes(data[by])
    if len(labels) < 2:
        found = f"only the level {labels[0]!r}" if labels else "no levels"
        raise DataError(f"the grouping column {by!r} has {found}; a grouping column needs at "
                        f"least two groups")
    return codes, labels


def _complete_rows(data: Any, outcome: Any, by: Any) -> pd.DataFrame:
    """The two columns, checked, without rows where either is missing."""
    data = to_pandas(data)
    _require_column(data, outcome, "outcome")
    _require_column(data, by, "grouping column")
    _require_numeric(data, outcome)
    frame = data[[outcome, by]] if outcome != by else data[[outcome]]
    return frame.loc[frame.notna().all(axis=1).to_numpy()]


# ---- describe -------------------------------------------------------------------------------

def describe(data: Any, outcome: str, by: str) -> TeachingTable:
    """N, mean, SD, minimum and maximum of ``outcome`` for each group of ``by``.

    Parameters
    ----------
    data : pandas or polars data frame
    outcome : str
        Numeric column to summarise.
    by : str
        Grouping column.

    Returns
    -------
    TeachingTable
        A DataFrame with index named ``by`` (one row per group, in level order: a
        Categorical's order, otherwise sorted as R sorts) and columns N (int), mean, SD
        (sample SD, ddof=1; NaN for a group of one), min and max. Rows where ``outcome`` or
        ``by`` is missing are left out; unused Categorical levels get no row.

    Raises
    ------
    DataError
        Unknown column, non-numeric outcome, or a grouping column with fewer than two groups.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> table = mm.describe(mm.datasets.salary(), "salary", "organisation")
    >>> list(table.columns)
    ['N', 'mean', 'SD', 'min', 'max']
    """
    frame = _complete_rows(data, outcome, by)
    codes, labels = _group_codes(frame, by)
    values = pd.Series(frame[outcome].to_numpy(dtype=float))
    stats = values.groupby(codes).agg(["count", "mean", "std", "min", "max"])
    table = TeachingTable({
        "N": stats["count"].to_numpy(dtype=np.int64),
        "mean": stats["mean"].to_numpy(),
        "SD": stats["std"].to_numpy(),
        "min": stats["min"].to_numpy(),
        "max": stats["max"].to_numpy(),
    }, index=pd.Index(labels, name=by))
    table.caption = (f"{outcome} by {by}: {len(labels)} groups, {len(frame)} observations; "
                     f"SD is the sample SD (n - 1).")
    return table


# ---- pooling --------------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolingEstimates:
    """The three kinds of estimate for one grouping factor (arrays, for tables and plots).

    names : (p,) coefficient names; levels : (l,) group labels; n : (l,) observations per
    group; complete : (p,) one OLS fit on all rows; own : (l, p) each group's own OLS fit
    (NaN rows where not estimable); partial : (l, p) the mixed model's ``coef()``;
    notes : (l,) why a group's own fit is missing ("" when it is not).
    """

    group: str
    names: tuple[str, ...]
    levels: tuple[str, ...]
    n: np.ndarray
    complete: np.ndarray
    own: np.ndarray
    partial: np.ndarray
    notes: tuple[str, ...]


def pooling_estimates(result: Any, design: Design | None = None) -> PoolingEstimates:
    """Complete, no and partial pooling estimates for the first grouping factor of ``result``.

    "First" is lme4's term order, so with several grouping factors it is the one with the
    most levels.

    The own (no pooling) and complete pooling fits regress the response (less any offset) on
    the model's fixed-effects matrix, within each group and on all rows; the reported
    coefficients are those of the grouping factor's random-effects terms, which must all be
    fixed effects too. ``design`` defaults to the rows the model was fitted on.
    """
    design = result.rows if design is None else design
    group = result.terms[0].group_name
    terms = [t for t in result.terms if t.group_name == group]
    names = tuple(dict.fromkeys(c for t in terms for c in t.column_names))
    x_names = list(design.info.x_names)
    missing = [c for c in names if c not in x_names]
    if missing:
        raise FormulaError(f"the random effects {', '.join(missing)} of '{group}' are not in the "
                           f"fixed part, so there is no pooled estimate to compare them with; "
                           f"add them to the fixed part", formula=result.formula)
    cols = [x_names.index(c) for c in names]
    y = design.y - design.offset
    X = design.X
    complete = np.linalg.lstsq(X, y, rcond=None)[0][cols]

    # The design rebuilt from other data may code levels differently, so take the refs of the
    # term in ``design`` whose group matches.
    term = next(t for t in design.terms if t.group_name == group)
    refs, levels = term.refs, term.levels
    n_levels, p = len(levels), X.shape[1]
    own = np.full((n_levels, len(cols)), np.nan)
    notes = []
    counts = np.bincount(refs, minlength=n_levels)
    for j in range(n_levels):
        rows = refs == j
        Xj = X[rows]
        if counts[j] < p:
            obs = "observation" if counts[j] == 1 else "observations"
            notes.append(f"own fit not estimable: {counts[j]} {obs} for {p} coefficients")
            continue
        beta, _, rank, _ = np.linalg.lstsq(Xj, y[rows], rcond=None)
        if rank < p:
            notes.append("own fit not estimable: the predictors do not vary enough within "
                         "this group")
            continue
        own[j] = beta[cols]
        notes.append("")

    coef = result.coef()[group]
    partial = coef.reindex(index=list(levels))[list(names)].to_numpy(dtype=float)
    return PoolingEstimates(group=group, names=names, levels=tuple(levels), n=counts,
                            complete=complete, own=own, partial=partial, notes=tuple(notes))


def _check_pooling_formula(data: pd.DataFrame, formula: str) -> str:
    """Check the columns a pooling formula names; return its one grouping column."""
    mf = parse_formula(formula)
    columns = list(data.columns)
    if mf.response in columns:
        _require_numeric(data, mf.response)
    else:
        fx.variables(mf.response, columns)
    groups = {bar.group for bar in mf.bars}
    if len(groups) != 1:
        found = ", ".join(":".join(g) for g in groups) or "none"
        raise FormulaError(f"pooling() needs random effects for exactly one grouping factor "
                           f"(found: {found})", formula=formula)
    group = next(iter(groups))
    if len(group) != 1:
        raise FormulaError(f"pooling() needs a single grouping column, not the interaction "
                           f"{':'.join(group)}; make a column for it first", formula=formula)
    _require_column(data, group[0], "grouping column")
    _group_codes(data.loc[data[group[0]].notna().to_numpy()], group[0])
    return group[0]


def pooling(data: Any, formula: str, reml: bool = True) -> TeachingTable:
    """Complete, no and partial pooling estimates per group, side by side.

    - complete pooling: one ordinary regression of the fixed part on all the data, the same
      for every group (for ``y ~ 1 + (1 | g)``: the grand mean);
    - no pooling: each group's own ordinary regression (for ``y ~ 1 + (1 | g)``: the group
      mean);
    - partial pooling: the mixed model's estimate for the group, ``coef()`` of the fit of
      ``formula`` with ``mm.lmer`` (fixed effects plus the group's conditional mode);
    - shrinkage: partial pooling minus no pooling, how far the model moved the group's own
      estimate towards the others.

    Parameters
    ----------
    data : pandas or polars data frame
    formula : str
        An lmer formula with random effects for one grouping column, whose random-effect
        coefficients are also fixed effects, e.g. ``"salary ~ 1 + (1 | organisation)"`` or
        ``"salary ~ service + (service | organisation)"``.
    reml : bool, default True
        Fit the mixed model by REML (lme4's default) or ML.

    Returns
    -------
    TeachingTable
        One row per group (index named after the grouping column, in the model's level
        order), first the column N. Then, when the random effects are the intercept only, the
        columns ``complete_pooling``, ``no_pooling``, ``partial_pooling``, ``shrinkage``.
        With more coefficients, the same four for each coefficient in turn, prefixed as
        ``"<kind>:<coefficient>"``: ``complete_pooling:(Intercept)``,
        ``no_pooling:(Intercept)``, ..., ``shrinkage:service``. A group whose own regression
        cannot be estimated (one observation for an intercept and a slope, or a slope
        variable that is constant within the group) has NaN for no pooling and shrinkage, and
        then a last column ``note`` says why. Other predictors in the fixed part are held
        fixed in every fit; the own and complete pooling fits ignore prior weights.

    Raises
    ------
    DataError
        Unknown column, non-numeric outcome, or a grouping column with fewer than two groups.
    FormulaError
        Random effects for more than one grouping factor, or random-effect coefficients that
        are not in the fixed part.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> table = mm.pooling(mm.datasets.salary(), "salary ~ 1 + (1 | organisation)")
    >>> list(table.columns)
    ['N', 'complete_pooling', 'no_pooling', 'partial_pooling', 'shrinkage']
    """
    from ..api import lmer

    data = to_pandas(data)
    group = _check_pooling_formula(data, formula)
    result = lmer(formula, data, reml=reml)
    est = pooling_estimates(result)

    columns: dict[str, Any] = {"N": est.n.astype(np.int64)}
    plain = est.names == ("(Intercept)",)
    for c, name in enumerate(est.names):
        prefix = "" if plain else f":{name}"
        columns[f"complete_pooling{prefix}"] = np.full(len(est.levels), est.complete[c])
        columns[f"no_pooling{prefix}"] = est.own[:, c]
        columns[f"partial_pooling{prefix}"] = est.partial[:, c]
        columns[f"shrinkage{prefix}"] = est.partial[:, c] - est.own[:, c]
    if any(est.notes):
        columns["note"] = list(est.notes)
    table = TeachingTable(columns, index=pd.Index(list(est.levels), name=group))
    table.caption = ("complete pooling: one regression on all rows; no pooling: each group's "
                     "own regression; partial pooling: the mixed model's coef(); "
                     "shrinkage = partial - no pooling.")
    return table


# ---- ICC ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ICC:
    """Intraclass correlation from the intercept-only model ``outcome ~ 1 + (1 | by)``.

    Attributes
    ----------
    icc : float
        ``var_between / (var_between + var_within)``: the share of the outcome's variance that
        lies between groups, and the correlation of two observations from the same group.
    var_between : float
        Estimated variance of the group intercepts.
    var_within : float
        Estimated residual variance (sigma^2) within groups.
    n_groups : int
    nobs : int
    outcome, by : str
        Column names, for the printed form.
    reml : bool
        Whether the variances are REML (the default) or ML estimates.
    """

    icc: float
    var_between: float
    var_within: float
    n_groups: int
    nobs: int
    outcome: str = "y"
    by: str = "group"
    reml: bool = True

    def __float__(self) -> float:
        return float(self.icc)

    def _rows(self) -> list[tuple[str, str]]:
        return [
            ("ICC", f"{self.icc:.4f}"),
            ("between-group variance",
             f"{_readable(self.var_between)}  (SD {_readable(math.sqrt(self.var_between))})"),
            ("within-group variance",
             f"{_readable(self.var_within)}  (SD {_readable(math.sqrt(self.var_within))})"),
            ("groups", str(self.n_groups)),
            ("observations", str(self.nobs)),
        ]

    def _sentence(self) -> str:
        method = "REML" if self.reml else "ML"
        return (f"{100 * self.icc:.1f}% of the variance of {self.outcome} lies between groups "
                f"of {self.by} (model {self.outcome} ~ 1 + (1 | {self.by}), {method}).")

    def __str__(self) -> str:
        width = max(len(k) for k, _ in self._rows())
        lines = [f"Intraclass correlation of {self.outcome} within {self.by}"]
        lines += [f"  {k:<{width}}  {v}" for k, v in self._rows()]
        lines.append(self._sentence())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td style='text-align:right'>{html.escape(v)}</td></tr>"
                       for k, v in self._rows())
        title = html.escape(f"Intraclass correlation of {self.outcome} within {self.by}")
        return (f"<div><p><b>{title}</b></p><table>{rows}</table>"
                f"<p>{html.escape(self._sentence())}</p></div>")


def icc(data: Any, outcome: str, by: str, reml: bool = True) -> ICC:
    """The intraclass correlation of ``outcome`` within groups of ``by``.

    Fits ``outcome ~ 1 + (1 | by)`` with ``mm.lmer`` and returns
    ``var_between / (var_between + var_within)`` from its variance components.

    Parameters
    ----------
    data : pandas or polars data frame
    outcome : str
        Numeric column.
    by : str
        Grouping column.
    reml : bool, default True
        REML (lme4's default) or ML variance estimates.

    Returns
    -------
    ICC
        Frozen dataclass with icc, var_between, var_within, n_groups and nobs; ``str()``
        gives a short table and a sentence, and it renders as HTML in notebooks.

    Raises
    ------
    DataError
        Unknown column, non-numeric outcome, or a grouping column with fewer than two groups.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> res = mm.icc(mm.datasets.salary(), "salary", "organisation")
    >>> 0.75 < res.icc < 0.95
    True
    """
    from ..api import lmer

    frame = _complete_rows(data, outcome, by)
    _group_codes(frame, by)
    # Fixed internal names keep any column name (spaces, punctuation) out of the formula.
    # The group column goes in as a Series so a Categorical keeps its level order.
    model_data = pd.DataFrame({"y": frame[outcome].to_numpy(dtype=float),
                               "g": frame[by].reset_index(drop=True)})
    result = lmer("y ~ 1 + (1 | g)", model_data, reml=reml)
    var_between = float(result.covariance_matrices()[0][0, 0])
    var_within = float(result.sigma**2)
    return ICC(icc=var_between / (var_between + var_within), var_between=var_between,
               var_within=var_within, n_groups=result.ngroups["g"], nobs=result.nobs,
               outcome=str(outcome), by=str(by), reml=reml)
