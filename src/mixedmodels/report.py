"""One self-contained HTML page for a fitted mixed model, and the lecture's demo analysis.

``write_report`` fits a model and writes a single HTML file that a student can open offline or
attach to an e-mail: every figure is a base64 PNG inside the page, the CSS is inline and the
page links to nothing outside itself. Each section starts with a short plain-language paragraph
saying what to look at. ``run_demo`` runs the lecture's whole analysis of the simulated salary
data, prints it as text and writes the same kind of page.

Examples
--------
>>> from mixedmodels.report import write_report
>>> import mixedmodels as mm
>>> write_report("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"),
...              "sleepstudy.html", data_name="sleepstudy")  # doctest: +SKIP
"""
from __future__ import annotations

import base64
import io
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from . import __version__
from .api import lmer
from .errors import DataError, MixedModelsError
from .formula import fixed as fx
from .formula.bars import MixedFormula, parse_formula
from .formula.contrasts import r_tokens
from .formula.design import to_pandas
from .report_warnings import ReportWarnings
from .rformat import escape_html

__all__ = ["write_report", "run_demo", "prediction_equation"]

# Tables with more rows than this are cut, so a model on thousands of groups (InstEval) still
# gives a page a browser opens quickly.
MAX_TABLE_ROWS = 60
DEMO_NULL = "salary ~ 1 + (1 | organisation)"
DEMO_INTERCEPT = "salary ~ 1 + service + (1 | organisation)"
DEMO_SLOPE = "salary ~ 1 + service + (1 + service | organisation)"

EXPLAIN = {
    "data": "Before fitting anything, look at the groups: how many observations each one has "
            "and how far apart their means are. Groups with few observations are estimated "
            "less precisely, and the mixed model leans on the other groups for them.",
    "icc": "The intraclass correlation (ICC) comes from a model with no predictors. It is the "
           "share of the outcome's variance that lies between groups. Near 0, the groups "
           "hardly differ; the larger it is, the more alike observations from the same group "
           "are, and the more an analysis that ignores the grouping would overstate how much "
           "independent information the data hold.",
    "summary": "Fixed effects are the average intercept and slopes over all groups. The random "
               "effects block gives the standard deviations by which groups vary around those "
               "averages, and the residual standard deviation is the spread left within "
               "groups. Compare a group-level SD with its fixed effect to judge how much the "
               "groups differ; the p-values test each fixed effect against zero.",
    "coef": "Each group's own intercept and slopes: the fixed effect plus that group's random "
            "effect. Put one row into the model equation to get the prediction line of that "
            "group.",
    "pooling": "Three ways of estimating each group: complete pooling ignores the groups (one "
               "line for everybody), no pooling fits every group on its own, and partial "
               "pooling (the mixed model) sits in between. Partial pooling pulls small or noisy "
               "groups towards the grand mean more strongly than large ones.",
    "group_data": "The raw data of each group with the group's own least-squares line. See how "
                  "much the intercepts and slopes differ between groups: that variation is what "
                  "the random effects describe.",
    "model_lines": "The model's prediction line for every group and the population (average) "
                   "line. Compared with the separate least-squares lines, the model's lines are "
                   "closer together: that is shrinkage.",
    "caterpillar": "Each group's random effect (its deviation from the average) with a 95% "
                   "interval, sorted. Intervals that cross zero belong to groups that cannot be "
                   "told apart from the average; wide intervals mean few or noisy data.",
    "shrinkage": "Each group's own estimate (no pooling) next to its mixed-model estimate. The "
                 "further a group moves, the more its estimate borrows from the other groups: "
                 "typically small groups and groups far from the average.",
    "residuals": "Residuals against fitted values should form a band without structure around "
                 "zero, and the normal quantile plot should be close to a straight line. "
                 "Funnels, curves or isolated points suggest a mis-specified model or outliers.",
}

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 980px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
.meta { color: #555; }
.explain { background: #f3f7fb; border-left: 4px solid #4a7ab5; padding: .6em .9em; }
.equation { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 1.1em; }
.note { color: #8a4b00; }
.legend { color: #555; font-size: .85em; }
nav ol { columns: 2; }
.wide { overflow-x: auto; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .85em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { padding: .25em .7em; border-bottom: 1px solid #e2e2e2; }
td { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child { text-align: left; }
caption { font-weight: 600; text-align: left; padding: .3em 0; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: .9em; }
"""


def _decimals(size: float) -> int:
    """Decimals that show about 4 significant digits of ``size`` (at most 4, none from 1000)."""
    return min(4, max(0, 3 - int(np.floor(np.log10(size))))) if size > 0 else 0


def _fmt(value: float) -> str:
    """A number as a reader wants it: about 4 significant digits, thousands separated."""
    size = abs(float(value))
    if not np.isfinite(size) or 0 < size < 1:
        return f"{value:.3g}"
    return f"{value:,.{_decimals(size)}f}"


def _say(enabled: bool) -> Callable[[str], None]:
    """A progress printer on stderr, so that stdout stays clean for the results."""
    if not enabled:
        return lambda message: None
    return lambda message: print(message, file=sys.stderr, flush=True)


# ---- model facts read off the formula ------------------------------------------------------
def _model_columns(mf: MixedFormula, data: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
    """(data, outcome column, group column) with the response and first grouping factor present.

    A response expression such as ``log(y)`` or a grouping factor ``a:b`` is not a column, so it
    is added to a copy under its own text as the column name.
    """
    outcome, group = mf.response, mf.bars[0].group_name
    if outcome in data.columns and group in data.columns:
        return data, outcome, group
    data = data.copy()
    if outcome not in data.columns:
        data[outcome] = fx.evaluate(outcome, data)
    if group not in data.columns:
        parts = [data[g].astype(str) for g in mf.bars[0].group]
        data[group] = pd.Categorical(parts[0].str.cat(parts[1:], sep=":"))
    return data, outcome, group


def _is_number(column: pd.Series) -> bool:
    return (pd.api.types.is_numeric_dtype(column.dtype)
            and not pd.api.types.is_bool_dtype(column.dtype)
            and not isinstance(column.dtype, pd.CategoricalDtype))


def _pick_x(mf: MixedFormula, data: pd.DataFrame, x: str | None) -> str | None:
    """The x of the group and model-line figures: ``x``, else the first numeric fixed variable."""
    if x is not None:
        if x not in data.columns:
            raise DataError(f"x column '{x}' is not a column of the data")
        if not _is_number(data[x]):
            raise DataError(f"x column '{x}' is not numeric, so it cannot be a plot's x axis")
        return x
    for kind, token in r_tokens(mf.fixed):
        name = token[1:-1] if kind == "bq" else token
        if kind in ("name", "bq") and name in data.columns and _is_number(data[name]):
            return name
    return None


def prediction_equation(result: Any, level: str, group: str | None = None) -> str:
    """The prediction equation of one group, from ``result.coef()``.

    Parameters
    ----------
    result : LmerResult, or GlmerResult (the equation is then on the link scale).
    level : the group's label, e.g. ``"org07"``.
    group : grouping factor; the first one of ``result.coef()`` when None.

    Returns
    -------
    str
        E.g. ``"salary = 41,230 + 1,520 x service for organisation org07"``, or for a
        binomial fit ``"log-odds of incidence = -0.81 - 0.99 x period2 ... for herd 1"``.
    """
    coefs = result.coef()
    group = next(iter(coefs)) if group is None else group
    return f"{_equation(_lhs(result), coefs[group].loc[level])} for {group} {level}"


def _lhs(result: Any) -> str:
    """What the equation predicts: the response, or for a GLMM its link-scale mean."""
    if getattr(result, "family", None) is None:
        return result.info.formula.response
    from .report_glmer_parts import link_scale_response

    return link_scale_response(result)


def _equation(response: str, coefs: pd.Series) -> str:
    """``response = a + b x name ...`` with signs written out (``- 3.2 x age``, not ``+ -3.2``)."""
    pieces: list[str] = []
    for name, value in coefs.items():
        term = _fmt(abs(value)) if name == "(Intercept)" else f"{_fmt(abs(value))} x {name}"
        sign = "-" if value < 0 else "+"
        pieces.append(f"{sign} {term}" if pieces else ("-" if sign == "-" else "") + term)
    return f"{response} = {' '.join(pieces)}"


def _population_equation(result: Any, group: str) -> str:
    return f"{_equation(_lhs(result), result.fixef)} (average {group})"


def _fit(formula: str, data: pd.DataFrame, reml: bool, caught: ReportWarnings
         ) -> tuple[Any, list[str]]:
    """Fit, keeping the new warnings (dropped rows, a singular fit) for the page."""
    with caught.catch() as notes:
        result = lmer(formula, data, reml=reml)
    return result, notes


# ---- HTML pieces ---------------------------------------------------------------------------
def _column_text(values: np.ndarray) -> list[str]:
    """One column's numbers with the same decimals: 4 significant digits of the largest."""
    finite = np.abs(values[np.isfinite(values)])
    decimals = _decimals(finite.max() if finite.size else 0.0)
    return ["" if not np.isfinite(v) else f"{v:,.{decimals}f}" for v in values]


def _table(frame: pd.DataFrame, caption: str | None = None) -> str:
    """A table, cut at MAX_TABLE_ROWS; a teaching table's own caption goes below it."""
    shown = pd.DataFrame(frame.head(MAX_TABLE_ROWS))
    if shown.index.name is not None:
        # the group column gets its name in the header row instead of a second header row
        shown = shown.reset_index()
    for name in shown.columns:
        if pd.api.types.is_float_dtype(shown[name].dtype):
            shown[name] = _column_text(shown[name].to_numpy(dtype=float))
    # pandas escapes cell text itself (escape=True is its default, stated here on purpose)
    out = shown.to_html(escape=True, border=0, index=False, na_rep="")
    if caption:
        # the caption must be the table's first child: right after the opening <table ...>
        out = out.replace(">", f"><caption>{escape_html(caption)}</caption>", 1)
    out = f'<div class="wide">{out}</div>'
    if len(frame) > len(shown):
        out += _note(f"First {len(shown)} of {len(frame)} rows shown.")
    legend = getattr(frame, "caption", None)
    if isinstance(legend, str) and legend:
        out += f'<p class="legend">{escape_html(legend)}</p>'
    return out


def _note(text: str) -> str:
    return f'<p class="note">{escape_html(text)}</p>'


def _png(fig: Any) -> str:
    """The figure as an <img> with a base64 PNG; the figure is closed afterwards."""
    buffer = io.BytesIO()
    # savefig(format="png") renders through Agg whatever backend pyplot uses
    fig.savefig(buffer, format="png", dpi=100)
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="">'


class _Page:
    """An HTML page built section by section; all text is escaped on the way in."""

    def __init__(self, title: str, meta: list[str]):
        self.title = title
        self.meta = meta
        self.sections: list[tuple[str, str, list[str]]] = []

    def section(self, key: str, heading: str, explain: str | None = None) -> list[str]:
        """A new section; returns the list to which its HTML pieces are appended."""
        parts = [f'<p class="explain">{escape_html(explain or EXPLAIN[key])}</p>']
        self.sections.append((key, heading, parts))
        return parts

    def render(self) -> str:
        toc = "".join(f'<li><a href="#{escape_html(key)}">{escape_html(heading)}</a></li>'
                      for key, heading, _ in self.sections)
        body = "\n".join(f'<section id="{escape_html(key)}">\n<h2>{escape_html(heading)}</h2>\n'
                         + "\n".join(parts) + "\n</section>"
                         for key, heading, parts in self.sections)
        meta = "<br>".join(escape_html(line) for line in self.meta)
        return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
                f"<title>{escape_html(self.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
                f"<h1>{escape_html(self.title)}</h1>\n<p class=\"meta\">{meta}</p>\n"
                f"<nav><ol>{toc}</ol></nav>\n{body}\n</body>\n</html>\n")

    def write(self, out_path: str | Path) -> Path:
        path = Path(out_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render(), encoding="utf-8")
        return path


# ---- sections shared by the report and the demo -------------------------------------------
def _icc_section(page: _Page, ic: Any, outcome: str, group: str,
                 notes: list[str] | None = None) -> None:
    parts = page.section("icc", "How much of the variance lies between groups? (ICC)")
    parts.append(ic._repr_html_())
    reading = (f"ICC = {ic.icc:.2f}: two values of {outcome} from the same {group} correlate "
               f"about {ic.icc:.2f}.")
    parts.append(f"<p>{escape_html(reading)}</p>")
    parts.extend(_note(f"Warning while fitting the intercept-only model: {n}")
                 for n in notes or [])


def _summary_section(page: _Page, key: str, heading: str, result: Any, data_name: str | None,
                     notes: list[str], explain: str | None = None) -> None:
    summary = result.summary()
    summary.data_name = data_name
    parts = page.section(key, heading, explain)
    parts.append(summary._repr_html_())
    parts.append("<details><summary>The same summary as text (lme4's layout)</summary>"
                 f"<pre>{escape_html(summary)}</pre></details>")
    parts.extend(_note(f"Warning while fitting: {n}") for n in notes)


def _coef_section(page: _Page, result: Any, heading: str = "Coefficients of every group (coef)",
                  explain: str | None = None) -> None:
    parts = page.section("coef", heading, explain)
    for group, frame in result.coef().items():
        first = frame.index[0]
        parts.append(f'<p class="equation">{escape_html(_population_equation(result, group))}<br>'
                     f"{escape_html(prediction_equation(result, first, group))}</p>")
        parts.append(_table(frame, caption=f"coef() for {group}"))


def _pooling_section(page: _Page, data: pd.DataFrame, formula: str, reml: bool,
                     say: Callable[[str], None], caught: ReportWarnings) -> None:
    from .teaching.tables import pooling

    say("comparing complete, no and partial pooling...")
    parts = page.section("pooling", "Complete, no and partial pooling")
    with caught.catch() as notes:
        try:
            parts.append(_table(pooling(data, formula, reml=reml)))
        except ValueError as exc:
            parts.append(_note(f"The pooling table does not apply to this model: {exc}"))
    parts.extend(_note(f"Warning while pooling: {n}") for n in notes)


def _figure_sections(page: _Page, result: Any, data: pd.DataFrame, x: str | None,
                     outcome: str, group: str, say: Callable[[str], None],
                     units: dict[str, str], caught: ReportWarnings) -> None:
    """Append the figure sections that apply to this model; ``data`` holds the fit's rows."""
    from . import plots

    # (section id, heading, name in the progress message, drawing function)
    figures: list[tuple[str, str, str, Callable[[], Any]]] = []
    if x is not None:
        # a grid of more than 30 panels is unreadable: then all groups share one axes
        panels = data[group].nunique() <= 30
        # the points need the response as a column; an expression such as log(y) is not one
        points = data if result.info.formula.response in data.columns else None
        figures += [
            ("group_data", f"The data by {group}", "group data",
             lambda: plots.group_data(data, x, outcome, group, panels=panels, ols=True,
                                      units=units)),
            ("model_lines", "The model's lines", "model lines",
             lambda: plots.model_lines(result, x, data=points, units=units)),
        ]
    figures += [
        ("caterpillar", "Random effects with intervals (caterpillar plot)", "caterpillar",
         lambda: plots.caterpillar(result, units=units)),
        ("shrinkage", "Shrinkage", "shrinkage", lambda: plots.shrinkage(result, units=units)),
        ("residuals", "Residual diagnostics", "residual",
         lambda: plots.residuals(result, units=units)),
    ]
    for key, heading, label, draw in figures:
        say(f"drawing {label} plot...")
        parts = page.section(key, heading)
        with caught.catch() as notes:
            try:
                fig = draw()
            except ValueError as exc:
                # A figure that does not fit the model (e.g. shrinkage of crossed factors) is
                # reported on the page instead of stopping the whole report.
                parts.append(_note(f"This figure does not apply to this model: {exc}"))
                fig = None
            if fig is not None:
                parts.append(f"<figure>{_png(fig)}<figcaption>{escape_html(heading)}"
                             f"</figcaption></figure>")
        parts.extend(_note(f"Warning while drawing: {n}") for n in notes)
    if x is None:
        page.section("no_x", "Figures against a predictor",
                     "The fixed part of this model has no numeric predictor, so the figures of "
                     "the data and of the model's lines against x are left out.")


# ---- public entry points -------------------------------------------------------------------
def write_report(formula: str, data: Any, out_path: str | Path, data_name: str | None = None,
                 x: str | None = None, progress: bool = True, reml: bool = True,
                 family: Any = None, link: str | None = None, nagq: int = 1,
                 seed: int = 1) -> Path:
    """Fit ``formula`` to ``data`` and write one self-contained HTML report.

    Without ``family`` the model is fitted with ``lmer``; with it, with ``glmer`` (or
    ``glmer_nb`` for ``family="negative.binomial"``), and the page is adapted to a binary or
    count outcome: proportions or counts per group, the latent-scale ICC (binomial) or the
    median rate ratio (log link), the fixed effects also as odds or rate ratios, the
    predictions per group on the response scale and DHARMa's simulated residuals.

    Parameters
    ----------
    formula : lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data : pandas or polars data frame.
    out_path : the HTML file to write (parent folders are created).
    data_name : name of the data shown in the title and the summary.
    x : numeric column for the x axis of the data and model-line figures; the first numeric
        variable of the fixed part when None (those figures are left out when there is none).
    progress : print what is being done on stderr.
    reml : REML (default) or ML; lmer only (a GLMM is always fitted by maximum likelihood).
    family, link, nagq : as ``glmer``: e.g. ``family="binomial"``, ``family="poisson"``.
    seed : seed of the simulated residuals of a GLMM (the page is the same on every run).

    Returns
    -------
    pathlib.Path
        The file written.

    Warns
    -----
    Each warning raised while the page is built (dropped rows, a singular fit, convergence),
    once, however many of the page's fits raise it; the page shows it too, in the section
    where it first arose.

    Notes
    -----
    Every table and figure of an lmer report uses the rows the model was fitted on: rows
    with a missing value in a column of the model are dropped once, as ``lmer`` drops them,
    and the page says how many.
    """
    from .teaching.tables import describe, icc

    if family is not None:
        from .report_glmer import write_glmer_report

        return write_glmer_report(formula, data, out_path, family=family, link=link, nagq=nagq,
                                  data_name=data_name, x=x, progress=progress, seed=seed)
    if link is not None or nagq != 1:
        raise MixedModelsError("link and nagq apply to generalized models: give family too "
                               "(e.g. family='binomial')")
    say = _say(progress)
    mf = parse_formula(formula)
    frame, outcome, group = _model_columns(mf, to_pandas(data))
    units = dict(frame.attrs.get("units", {}))
    if not frame.index.is_unique:
        # The fit's rows are found again by their labels, which must then name one row each.
        frame = frame.reset_index(drop=True)
    x = _pick_x(mf, frame, x)
    say("fitting model...")
    caught = ReportWarnings()
    result, notes = _fit(formula, frame, reml, caught)
    # One sample for the whole page: the rows the fit kept after dropping missing values.
    rows = frame.loc[result.rows.row_index]
    name = data_name or "data"
    page = _Page(f"Mixed model report: {formula}",
                 [f"Data: {name}, {result.nobs} observations, groups: "
                  + ", ".join(f"{g} ({n})" for g, n in result.ngroups.items()),
                  f"Fitted by {'REML' if reml else 'maximum likelihood'} with mixedmodels "
                  f"{__version__}"])

    say("describing the data...")
    parts = page.section("data", f"The data: {outcome} by {group}")
    if len(rows) < len(frame):
        parts.append(_note(f"{len(frame) - len(rows)} of the {len(frame)} rows have a missing "
                           f"value in a column of the model. The fit leaves them out, and so "
                           f"does every table and figure of this page: all use the same "
                           f"{len(rows)} rows."))
    parts.append(_table(describe(rows, outcome, group)))

    say("computing the ICC of the intercept-only model...")
    with caught.catch() as icc_notes:
        ic = icc(rows, outcome, group, reml=reml)
    _icc_section(page, ic, outcome, group, icc_notes)
    _summary_section(page, "summary", "The model", result, data_name, notes)
    _coef_section(page, result)
    _pooling_section(page, rows, formula, reml, say, caught)
    _figure_sections(page, result, rows, x, outcome, group, say, units, caught)
    return page.write(out_path)


def run_demo(out_path: str | Path = "mixedmodels-demo.html", seed: int = 2024,
             progress: bool = True) -> Path:
    """The lecture's whole analysis of the simulated salary data, as text and as a report.

    Steps: descriptives by organisation, the ICC of ``salary ~ 1 + (1|organisation)``, the
    random-intercept model, the random-intercept-and-slope model, the prediction equation of
    one organisation from ``coef()``, the pooling table and the figures. The summaries, the ICC
    and the equations are printed on stdout; the page is written to ``out_path``.

    Parameters
    ----------
    out_path : the HTML file to write.
    seed : seed of ``mm.datasets.salary``.
    progress : print what is being done on stderr.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from . import datasets
    from .teaching.tables import describe, icc

    say = _say(progress)
    say(f"simulating the salary data (seed {seed})...")
    data = datasets.salary(seed=seed)
    name = f"salary (simulated, seed {seed})"
    desc = describe(data, "salary", "organisation")
    say("computing the ICC of the intercept-only model...")
    ic = icc(data, "salary", "organisation")
    caught = ReportWarnings()
    say("fitting the random-intercept model...")
    m_int, notes_int = _fit(DEMO_INTERCEPT, data, True, caught)
    say("fitting the random-intercept-and-slope model...")
    m_slope, notes_slope = _fit(DEMO_SLOPE, data, True, caught)
    level = str(m_slope.coef()["organisation"].index[0])
    equation = prediction_equation(m_slope, level, "organisation")

    rule = "=" * 78
    print(f"{rule}\nSalary and years of service in {ic.n_groups} organisations "
          f"({ic.nobs} employees, seed {seed})\n{rule}\n")
    print(f"Descriptives by organisation:\n{desc}\n")
    print(f"Intercept-only model {DEMO_NULL}:\n{ic}\n")
    for title, model in (("Random-intercept model", m_int),
                         ("Random-intercept-and-slope model", m_slope)):
        summary = model.summary()
        summary.data_name = name
        print(f"{title}:\n{summary}\n")
    print("Prediction equations from coef():")
    average = _population_equation(m_slope, "organisation")
    print(f"  {average}\n  {equation}\n")

    page = _Page("Salary and years of service: a multilevel analysis",
                 [f"Data: {name}: {ic.nobs} employees in {ic.n_groups} organisations",
                  f"Fitted by REML with mixedmodels {__version__}"])
    page.section("data", "The data: salary by organisation").append(
        _table(desc, caption="describe(data, 'salary', 'organisation')"))
    _icc_section(page, ic, "salary", "organisation")
    _summary_section(page, "intercept", "Random-intercept model", m_int, name, notes_int,
                     "Every organisation gets its own starting salary (intercept), but the "
                     "raise per year of service is assumed to be the same everywhere. Compare "
                     "the organisation SD with the residual SD.")
    _summary_section(page, "slope", "Random-intercept-and-slope model", m_slope, name,
                     notes_slope,
                     "Now the raise per year of service may differ between organisations too. "
                     "The random-effects block adds the SD of the slopes and the correlation of "
                     "intercepts and slopes: a negative correlation means that organisations "
                     "that start high give smaller raises.")
    parts = page.section("equation", "Prediction equation of one organisation",
                         "coef() adds each organisation's random effects to the fixed effects. "
                         "Those numbers give the organisation's own line: the predicted salary "
                         "for any number of years of service.")
    parts.append(f'<p class="equation">{escape_html(average)}<br>{escape_html(equation)}</p>')
    parts.append(_table(m_slope.coef()["organisation"], caption="coef() for organisation"))
    _pooling_section(page, data, DEMO_SLOPE, True, say, caught)
    # the simulated sample has the columns, and so the units, of the bundled salary data
    _figure_sections(page, m_slope, data, "service", "salary", "organisation", say,
                     datasets.units("salary"), caught)
    path = page.write(out_path)
    print(f"Report written to {path}")
    return path
