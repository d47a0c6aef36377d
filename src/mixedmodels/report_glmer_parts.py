"""The numbers and figures of the GLMM report, without its HTML (``report_glmer.py``).

Each function reads a fitted ``GlmerResult`` (and, for predictions at chosen values, the rows
of the data it was fitted on) and returns a DataFrame or a matplotlib Figure: the response per
group as the family sees it, observed against predicted means per group, predictions for a
typical group, the fixed effects as odds or rate ratios, and the size of the group variation
as a latent-scale ICC or a median odds or rate ratio.
"""
from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd

from .formula import fixed as fx
from .formula.design import cbind_arguments, factor_codes
from .report import MAX_TABLE_ROWS, _is_number

# The residual variance of the latent variable behind a binary outcome: that of the standard
# logistic distribution for logit, of the standard normal for probit.
LATENT_VARIANCE = {"logit": math.pi**2 / 3.0, "probit": 1.0}
# sqrt(2) times the normal 75 % quantile: the median of |b_1 - b_2| / sigma for two groups
# drawn independently, so exp(MEDIAN_GAP * sigma) is the median odds (rate) ratio.
MEDIAN_GAP = math.sqrt(2.0) * 0.6744897501960817


# ---- what the outcome is ------------------------------------------------------------------
def outcome_kind(result: Any) -> str:
    name = result.family.name
    if name == "binomial":
        return "binomial"
    return "count" if name == "poisson" or name.startswith("Negative Binomial") else "other"


def outcome_label(result: Any) -> str:
    """The outcome in words: a cbind() response's successes, ``y = level`` for a factor."""
    info = result.info
    response = info.formula.response
    if result.family.name == "binomial":
        args = cbind_arguments(response)
        if args:
            return args[0]
        if info.response_levels is not None:
            return f"{response} = {info.response_levels[1]}"
    return response


def mean_word(result: Any) -> str:
    return {"binomial": "proportion", "count": "mean count"}.get(outcome_kind(result), "mean")


def link_scale_response(result: Any) -> str:
    """The left side of a glmer fit's equation on its link scale, e.g. ``log-odds of
    incidence`` or ``log mean TICKS``."""
    link, outcome = result.family.link.name, outcome_label(result)
    if link == "logit":
        return f"log-odds of {outcome}"
    if link == "log":
        return f"log mean {outcome}"
    if link == "identity":
        return f"mean {outcome}"
    return f"{link}(mean {outcome})"


def first_term(result: Any, mf: Any):
    """The random-effects term of the formula's first grouping factor, with its rows."""
    group = mf.bars[0].group_name
    return next(t for t in result.rows.terms if t.group_name == group)


# ---- tables -------------------------------------------------------------------------------
def group_sums(refs: np.ndarray, n_levels: int, values: np.ndarray) -> np.ndarray:
    return np.bincount(refs, weights=values, minlength=n_levels)


def row_weights(result: Any) -> np.ndarray:
    """(n,) what a row's mean counts for: its trials for a binomial response, else 1."""
    return (np.asarray(result.prior_weights, float) if outcome_kind(result) == "binomial"
            else np.ones(result.nobs))


def as_whole(values: np.ndarray) -> np.ndarray:
    """Counts as integers when they are whole numbers (they print without decimals)."""
    return values.astype(np.int64) if np.all(values == np.round(values)) else values


def describe_groups(result: Any, term: Any) -> pd.DataFrame:
    """Per level of ``term``'s factor: the response as the family sees it."""
    refs, k = term.refs, term.n_levels
    y, w = np.asarray(result.y, float), np.asarray(result.prior_weights, float)
    index = pd.Index(list(term.levels), name=term.group_name)
    n = np.bincount(refs, minlength=k)
    if outcome_kind(result) == "binomial":
        trials, successes = group_sums(refs, k, w), group_sums(refs, k, y * w)
        table = {"N": n}
        if not np.all(w == 1):
            table["trials"] = as_whole(trials)
        table["successes"] = as_whole(np.round(successes, 10))
        table["proportion"] = successes / trials
        return pd.DataFrame(table, index=index)
    stats = pd.Series(y).groupby(refs).agg(["mean", "var", "min", "max"]).reindex(range(k))
    if outcome_kind(result) == "count":
        return pd.DataFrame({"N": n, "mean": stats["mean"].to_numpy(),
                             "variance": stats["var"].to_numpy(),
                             "variance / mean": (stats["var"] / stats["mean"]).to_numpy(),
                             "zeros": group_sums(refs, k, (y == 0).astype(float)).astype(np.int64),
                             "max": as_whole(stats["max"].to_numpy())}, index=index)
    return pd.DataFrame({"N": n, "mean": stats["mean"].to_numpy(),
                         "SD": np.sqrt(stats["var"].to_numpy()),
                         "min": stats["min"].to_numpy(), "max": stats["max"].to_numpy()},
                        index=index)


def group_predictions(result: Any, term: Any) -> pd.DataFrame:
    """Per level: observed mean, the model's prediction with and without random effects,
    averaged over the group's rows (weighted by the trials for a binomial response)."""
    refs, k, w = term.refs, term.n_levels, row_weights(result)
    total = group_sums(refs, k, w)
    population = result.predict(re_form="~0", type="response").to_numpy()
    return pd.DataFrame({
        "N": np.bincount(refs, minlength=k),
        "observed": group_sums(refs, k, np.asarray(result.y, float) * w) / total,
        "predicted": group_sums(refs, k, np.asarray(result.mu, float) * w) / total,
        "random effects 0": group_sums(refs, k, population * w) / total,
    }, index=pd.Index(list(term.levels), name=term.group_name))


def fixed_variables(result: Any, rows: pd.DataFrame) -> list[str]:
    """Data columns of the fixed part (offsets included), in the order the formula names them."""
    fixed = result.info.formula.fixed
    used = fx.variables(fixed, list(rows.columns))
    order = [tok[1:-1] if kind == "bq" else tok for kind, tok in fx.r_tokens(fixed)]
    return sorted(used, key=lambda name: order.index(name) if name in order else len(order))


def level_values(column: pd.Series) -> list[Any]:
    """The column's values, one per level in R's order (Categorical order, else sorted)."""
    codes, labels = factor_codes(column)
    values = column.to_numpy()
    return [values[np.flatnonzero(codes == j)[0]] for j in range(len(labels))]


def as_column(values: list[Any], like: pd.Series) -> Any:
    if isinstance(like.dtype, pd.CategoricalDtype):
        return pd.Categorical(values, categories=like.cat.categories, ordered=like.cat.ordered)
    return values


def typical_grid(result: Any, rows: pd.DataFrame) -> tuple[pd.DataFrame | None, str]:
    """Predictions for a typical group (random effects 0) at each combination of the fixed
    part's factors, numeric variables at their mean; with the observed mean of the rows at
    those levels. (None, why) when there are too many combinations."""
    names = fixed_variables(result, rows)
    factors = [v for v in names if not _is_number(rows[v])]
    numbers = [v for v in names if _is_number(rows[v])]
    levels = [level_values(rows[v]) for v in factors]
    size = math.prod(len(lv) for lv in levels)
    if size > MAX_TABLE_ROWS:
        return None, (f"The factors of the fixed part have {size} combinations: too many for "
                      f"a table.")
    combos = list(itertools.product(*levels))
    grid = pd.DataFrame({v: as_column([c[i] for c in combos], rows[v])
                         for i, v in enumerate(factors)}, index=range(len(combos)))
    for v in numbers:
        grid[v] = float(rows[v].mean())
    predicted = result.predict(grid, re_form="~0", type="response").to_numpy()
    y, w = np.asarray(result.y, float), row_weights(result)
    observed, counts = [], []
    for combo in combos:
        match = np.ones(y.size, dtype=bool)
        for v, value in zip(factors, combo):
            match &= (rows[v] == value).to_numpy()
        counts.append(int(match.sum()))
        observed.append(float(np.sum(y[match] * w[match]) / np.sum(w[match]))
                        if match.any() else np.nan)
    table = pd.DataFrame({v: [str(c[i]) for c in combos] for i, v in enumerate(factors)})
    table["N"] = counts
    table["predicted, typical group"] = predicted
    table["observed"] = observed
    held = (f"; {', '.join(numbers)} at {'its' if len(numbers) == 1 else 'their'} mean"
            if numbers else "")
    return table, (f"predicted, typical group: all random effects 0{held}. observed: all rows "
                   f"at these levels.")


def ratio_words(result: Any) -> tuple[str, str] | None:
    """(what the exponentiated effects are, of which quantity) for a logit or log link."""
    link = result.family.link.name
    if link == "logit":
        return "odds ratios", "odds"
    if link == "log":
        if outcome_kind(result) == "count":
            return "rate ratios", "expected count"
        return ("risk ratios", "probability") if outcome_kind(result) == "binomial" else (
            "ratios of means", "mean")
    return None


def ratio_table(result: Any, name: str) -> pd.DataFrame:
    """exp(estimate) with exp(Wald interval) and the Wald p-value, per fixed effect."""
    coefs = result.coefficients()
    wald = result.confint("wald").loc[list(coefs.index)]
    p = coefs.iloc[:, -1].to_numpy()
    return pd.DataFrame({
        "estimate": coefs["Estimate"].to_numpy(),
        name: np.exp(coefs["Estimate"].to_numpy()),
        "2.5 %": np.exp(wald.iloc[:, 0].to_numpy()),
        "97.5 %": np.exp(wald.iloc[:, 1].to_numpy()),
        "p": ["< 0.0001" if v < 1e-4 else f"{v:.4f}" for v in p],
    }, index=pd.Index(list(coefs.index), name="fixed effect"))


def variation_table(result: Any, null_icc: pd.Series | None) -> pd.DataFrame:
    """Per grouping factor with a random intercept: variance, SD, MOR / MRR, latent ICC."""
    link = result.family.link.name
    variances: dict[str, float] = {}
    for t, S in zip(result.terms, result.covariance_matrices()):
        if "(Intercept)" in t.column_names:
            i = t.column_names.index("(Intercept)")
            variances[t.group_name] = variances.get(t.group_name, 0.0) + S[i, i]
    sd = np.sqrt(np.array(list(variances.values())))
    table = pd.DataFrame({"intercept variance": list(variances.values()), "SD": sd},
                         index=pd.Index(list(variances), name="grouping factor"))
    if link == "logit" or (link == "log" and outcome_kind(result) == "count"):
        table[f"median {'odds' if link == 'logit' else 'rate'} ratio"] = np.exp(MEDIAN_GAP * sd)
    if outcome_kind(result) == "binomial" and link in LATENT_VARIANCE:
        table["latent ICC"] = result.icc().reindex(table.index).to_numpy()
        if null_icc is not None:
            table["latent ICC, no predictors"] = null_icc.reindex(table.index).to_numpy()
    return table


# ---- figures -------------------------------------------------------------------------------
def _count_axis(ax: Any, which: str, top: float) -> None:
    """A log(1 + v) axis for counts that run past 20: most are small, a few large, and a
    linear axis would squeeze the small ones against zero."""
    if top <= 20:
        return
    getattr(ax, f"set_{which}scale")("function", functions=(np.log1p, np.expm1))
    # Fixed limits: autoscaled margins can reach below -1, where log(1 + v) is undefined.
    getattr(ax, f"set_{which}lim")(-0.2, 1.15 * top + 1.0)
    ticks = [t for t in (0, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000) if t <= 1.2 * top]
    getattr(ax, f"set_{which}ticks")(ticks, [str(t) for t in ticks])


def group_figure(table: pd.DataFrame, group: str, mean: str, outcome: str, counts: bool):
    """Observed, predicted and random-effects-0 means per group (the report's table), one row
    per group sorted by the prediction; ``counts`` puts a log(1 + v) axis under large counts."""
    import matplotlib.pyplot as plt

    order = np.argsort(table["predicted"].to_numpy(), kind="stable")
    part = table.iloc[order]
    pos = np.arange(len(part))
    fig, ax = plt.subplots(figsize=(7.5, min(12.0, max(3.0, 0.18 * len(part) + 1.5))))
    ax.hlines(pos, part["observed"], part["predicted"], color="0.7", linewidth=1.2)
    ax.plot(part["random effects 0"], pos, "|", color="black", markersize=9,
            label="random effects 0")
    ax.plot(part["observed"], pos, "o", markerfacecolor="none", color="C3", markersize=5,
            label="observed")
    ax.plot(part["predicted"], pos, "o", color="C0", markersize=4, label="model")
    # Beyond ~60 groups the labels overlap into a black bar; the spread is the message.
    if len(part) <= 60:
        ax.set_yticks(pos, [str(v) for v in part.index], fontsize=7)
    else:
        ax.set_yticks([])
    ax.set_ylim(-0.7, len(part) - 0.3)
    if counts:
        _count_axis(ax, "x", float(np.nanmax(part[["observed", "predicted"]].to_numpy())))
    ax.set_xlabel(f"{mean} of {outcome}")
    ax.set_ylabel(group)
    ax.set_title(f"Observed and predicted {mean} per {group}")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def curve_grid(rows: pd.DataFrame, names: list[str], x: str, xs: np.ndarray) -> pd.DataFrame:
    """len(xs) rows at ``xs``; the other variables ``names`` at their first level or mean."""
    grid = pd.DataFrame({x: xs})
    for v in names:
        if v == x:
            continue
        if _is_number(rows[v]):
            grid[v] = float(rows[v].mean())
        else:
            grid[v] = as_column([level_values(rows[v])[0]] * len(xs), rows[v])
    return grid


def curves_figure(result: Any, rows: pd.DataFrame, x: str, term: Any, outcome: str):
    """Predicted means against x: one curve per level of ``term``'s factor, one typical."""
    import matplotlib.pyplot as plt

    from .plots import _colour

    names = fixed_variables(result, rows)
    group = term.group_name
    column = rows[x].to_numpy(dtype=float)
    grids, spans = [], []
    for j in range(term.n_levels):
        own = column[term.refs == j]
        xs = np.linspace(own.min(), own.max(), 40) if np.ptp(own) > 0 else own[:1]
        grid = curve_grid(rows, names, x, xs)
        grid[group] = as_column([rows[group].to_numpy()[term.refs == j][0]] * len(xs),
                                 rows[group])
        grids.append(grid)
        spans.append(len(xs))
    both = pd.concat(grids, ignore_index=True)
    fitted = result.predict(both, re_form=f"~(1 | {group})", type="response").to_numpy()
    line = np.linspace(column.min(), column.max(), 100)
    typical = result.predict(curve_grid(rows, names, x, line), re_form="~0",
                             type="response").to_numpy()

    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    ax.scatter(column, np.asarray(result.y, float), s=10, alpha=0.35, color="0.45",
               edgecolors="none", label="observed")
    start = 0
    for j, span in enumerate(spans):
        xs, ys = both[x].to_numpy()[start:start + span], fitted[start:start + span]
        style = dict(color=_colour(j, term.n_levels), alpha=0.8)
        if span > 1:
            ax.plot(xs, ys, linewidth=1.0, **style)
        else:
            ax.plot(xs, ys, "o", markersize=4, **style)
        start += span
    ax.plot(line, typical, label=f"typical {group} (random effects 0)", color="black",
            linewidth=3.0, zorder=5)
    if outcome_kind(result) == "count":
        _count_axis(ax, "y", float(np.max(result.y)))
    ax.set_xlabel(x)
    ax.set_ylabel(f"{mean_word(result)} of {outcome}")
    ax.set_title(f"The model's curves per {group}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def held_text(result: Any, rows: pd.DataFrame, x: str) -> str:
    """Where the curves of ``curves_figure`` hold the other variables of the fixed part."""
    others = [v for v in fixed_variables(result, rows) if v != x]
    if not others:
        return ""
    held = [f"{v} at its mean" if _is_number(rows[v]) else f"{v} at {level_values(rows[v])[0]}"
            for v in others]
    return "Held fixed: " + ", ".join(held) + "."

