"""The HTML report of a generalized linear mixed model: ``write_report(..., family=...)``.

The same kind of page as the lmer report (report.py's page, tables and embedded figures), with
what a binary or count outcome needs in place of what only a Gaussian model has: proportions
or counts per group instead of means and SDs, the latent-scale ICC and the median odds or rate
ratio instead of the ICC of variances, the fixed effects also as odds or rate ratios, the
model's predictions per group on the response scale, and DHARMa's simulated residuals instead
of normal QQ plots. The pooling table and the shrinkage plot compare with least-squares fits,
which do not describe a binary or count outcome, so they are left out.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from . import __version__
from .errors import MixedModelsError, warn_user
from .formula.bars import parse_formula
from .formula.design import to_pandas
from .report import (_coef_section, _note, _Page, _pick_x, _png, _say, _summary_section,
                     _table)
from .report_glmer_parts import (LATENT_VARIANCE, curves_figure, describe_groups, first_term,
                                 fixed_variables, group_figure, group_predictions, held_text,
                                 mean_word, outcome_kind, outcome_label, ratio_table,
                                 ratio_words, typical_grid, variation_table)
from .rformat import escape_html

__all__ = ["write_glmer_report", "fit_glmm"]

NEGATIVE_BINOMIAL = ("negative.binomial", "negbin", "nb")
NSIM = 250

EXPLAIN = {
    "data_binomial":
        "Before fitting anything, look at the groups: how many observations (and trials) each "
        "one has and how far apart their observed proportions are. A proportion from few "
        "trials is noisy, and the mixed model leans on the other groups for it.",
    "data_count":
        "Before fitting anything, look at the groups: how many observations each one has, "
        "their mean count and its variance. A Poisson count has a variance equal to its mean; "
        "a variance / mean ratio well above 1 hints at more spread than a Poisson model allows "
        "(overdispersion), although predictors that differ within a group add to it too.",
    "data":
        "Before fitting anything, look at the groups: how many observations each one has and "
        "how far apart their means are.",
    "icc_binomial":
        "Think of the binary outcome as a continuous tendency on the {link} scale that shows "
        "as a success once it passes a threshold; its residual variance is fixed at {latent} "
        "by the link. The latent-scale ICC is the share of the total variance of that "
        "tendency that lies between groups (Nakagawa and Schielzeth). The median odds ratio "
        "(MOR) says the same in odds: over pairs of randomly chosen groups with the same "
        "predictors, the median ratio of the odds of the higher to the lower one. An MOR of 1 "
        "means that the groups do not differ.",
    "icc_log":
        "A count model has no residual variance on the log scale to set the group variance "
        "against, so the variation between groups is given as the median rate ratio (MRR): "
        "over pairs of randomly chosen groups with the same predictors, the median ratio of "
        "the expected counts of the higher to the lower one. An MRR of 1 means that the "
        "groups do not differ.",
    "icc":
        "The variances and SDs of the random intercepts, on the scale of the link function.",
    "summary":
        "The fixed effects are on the scale of the link function ({link}): the intercept is "
        "the {scale} at the reference levels for a typical group (all random effects 0), each "
        "slope how much a predictor changes it. The random-effects block gives the SDs by "
        "which groups vary around that on the same scale. There is no residual SD for a "
        "binomial, Poisson or negative binomial model: the variance follows from the mean. "
        "The p-values are Wald z tests of each fixed effect against zero.",
    "ratios":
        "The fixed effects exponentiated: {what}. Above 1, the predictor goes with higher "
        "{quantity}; below 1, with lower; the other predictors and the random effects held "
        "fixed. The intervals are Wald intervals on the {link} scale, exponentiated, so they "
        "are not symmetric around the estimate. The intercept row is not a ratio but the "
        "{quantity} itself at the reference levels for a typical group.",
    "coef":
        "Each group's own intercept and slopes on the {link} scale: the fixed effect plus that "
        "group's random effect. Put one row into the equation and apply the inverse link to "
        "get the group's predicted {mean}.",
    "predictions":
        "Each group's observed {mean} next to the model's prediction on the response scale, "
        "averaged over the group's rows. The prediction usually lies between the group's own "
        "value and the prediction for the same rows with all random effects at zero: the "
        "model pulls every group towards the others, small groups the most. The second table "
        "gives the prediction for a typical group (all random effects 0) at each combination of "
        "the factors in the fixed part. On a {link} scale a typical group is not an average "
        "one: averaged over groups, {averaged}.",
    "group_figure":
        "For each group the observed {mean} (open circle) and the model's prediction "
        "(filled), joined by a line: how far the model moves the group towards the others. "
        "Black bars mark the prediction for the same rows with all random effects at zero.",
    "model_curves":
        "The model's predicted {mean} against {x} for each {group} (thin lines) and for a "
        "typical {group} (black), on the response scale: the straight lines of the {link} "
        "scale become curves. {held}",
    "no_x":
        "The fixed part of this model has no numeric predictor to draw the model's curves "
        "against (x= chooses one of its columns).",
    "caterpillar":
        "Each group's random effect (its deviation from the average, on the {link} scale) "
        "with a 95% interval, sorted. Intervals that cross zero belong to groups that cannot "
        "be told apart from the average; wide intervals mean few or uninformative data.",
    "residuals":
        "DHARMa's simulated residuals: for each row, the share of responses simulated from the "
        "fitted model that lie below the observed one. If the model is right they are uniform "
        "between 0 and 1 whatever the family, so the QQ points follow the diagonal and, on the "
        "right, the curves stay near the dashed lines. The tests check uniformity, dispersion "
        "and the number of zeros. {nsim} simulations with new random effects, seed {seed}: "
        "the same page every time.",
}


# ---- fitting ------------------------------------------------------------------------------
def fit_glmm(formula: str, data: Any, family: Any, link: str | None = None, nagq: int = 1):
    """``glmer``, or ``glmer_nb`` for a negative binomial family name ("negative.binomial",
    "negbin", "nb"); a Gaussian family with the identity link is refused (it is an lmer
    model, and the lmer report describes it)."""
    from .api import glmer, glmer_nb
    from .families import get_family

    if isinstance(family, str) and family.lower().replace("_", ".") in NEGATIVE_BINOMIAL:
        return glmer_nb(formula, data, nagq=nagq, link=link or "log")
    fam = get_family(family, link)
    if fam.name == "gaussian" and fam.link.name == "identity":
        raise MixedModelsError("a gaussian family with the identity link is a linear mixed "
                               "model: write its report without family (reml=False for the "
                               "maximum-likelihood fit that glmer would give)")
    return glmer(formula, data, family=fam, nagq=nagq)


def _caught(fit: Callable[[], Any]) -> tuple[Any, list[warnings.WarningMessage]]:
    """fit() with its warnings kept (in order, each message once) instead of shown."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = fit()
    unique = {(w.category, str(w.message)): w for w in caught}
    return value, list(unique.values())


def _figure(parts: list[str], heading: str, draw: Callable[[], Any]) -> None:
    try:
        fig = draw()
    except ValueError as exc:
        # A figure that does not fit the model is reported on the page instead of stopping
        # the whole report.
        parts.append(_note(f"This figure does not apply to this model: {exc}"))
        return
    parts.append(f"<figure>{_png(fig)}<figcaption>{escape_html(heading)}</figcaption></figure>")


# ---- the page -----------------------------------------------------------------------------
def _method(result: Any) -> str:
    if result.nagq == 1:
        return "maximum likelihood (Laplace approximation)"
    if result.nagq == 0:
        return "maximum likelihood (nAGQ = 0: fixed effects estimated inside PIRLS)"
    return f"maximum likelihood (adaptive Gauss-Hermite quadrature, nAGQ = {result.nagq})"


def _null_icc(result: Any, frame: pd.DataFrame, group: str, say: Callable[[str], None]
              ) -> tuple[pd.Series | None, list[str]]:
    """The latent ICC of ``response ~ 1 + (1 | group)``, for a binomial logit or probit fit."""
    from .api import glmer

    if outcome_kind(result) != "binomial" or result.family.link.name not in LATENT_VARIANCE:
        return None, []
    say("fitting the intercept-only model for the ICC...")
    formula = f"{result.info.formula.response} ~ 1 + (1 | {group})"
    try:
        null, caught = _caught(lambda: glmer(formula, frame, family=result.family))
    except MixedModelsError as exc:
        # The ICC of the fitted model stands on its own; the comparison is only a reading aid.
        return None, [f"intercept-only model {formula}: {exc}"]
    notes = [f"intercept-only model {formula}: {w.message}" for w in caught]
    for w, note in zip(caught, notes):
        warn_user(note, w.category)
    return null.icc(), notes


def _variation_section(page: _Page, result: Any, null_icc: pd.Series | None,
                       notes: list[str]) -> None:
    link = result.family.link.name
    if outcome_kind(result) == "binomial" and link in LATENT_VARIANCE:
        latent = "pi^2/3 = 3.29" if link == "logit" else "1"
        heading = "How much of the variation lies between groups? (latent-scale ICC)"
        explain = EXPLAIN["icc_binomial"].format(link=link, latent=latent)
    elif link == "log" and outcome_kind(result) == "count":
        heading, explain = "How much do the groups differ? (median rate ratio)", EXPLAIN["icc_log"]
    else:
        heading, explain = "How much do the groups differ?", EXPLAIN["icc"]
    parts = page.section("icc", heading, explain)
    table = variation_table(result, null_icc)
    if table.empty:
        parts.append(_note("No grouping factor has a random intercept."))
    else:
        parts.append(_table(table))
        first = table.iloc[0]
        if "latent ICC" in table.columns:
            reading = (f"{100 * first['latent ICC']:.1f}% of the latent variance lies between "
                       f"groups of {table.index[0]} in this model")
            if "latent ICC, no predictors" in table.columns:
                reading += (f" ({100 * first['latent ICC, no predictors']:.1f}% in the model "
                            f"without predictors)")
            parts.append(f"<p>{escape_html(reading + '.')}</p>")
    parts.extend(_note(f"While fitting the {n}") for n in notes)


def _ratio_section(page: _Page, result: Any) -> None:
    words = ratio_words(result)
    if words is None:
        return
    what, quantity = words
    name = what[:-1]
    explain = EXPLAIN["ratios"].format(what=what, quantity=quantity,
                                       link=result.family.link.name)
    parts = page.section("ratios", f"Fixed effects as {what}", explain)
    table = ratio_table(result, name)
    parts.append(_table(table, caption=f"exp(estimate) with 95% Wald intervals ({what})"))


def _averaged_words(result: Any) -> str:
    link = result.family.link.name
    if link in ("logit", "probit"):
        return "probabilities lie closer to 0.5 than the typical group's"
    if link == "log":
        return "means are larger than the typical group's"
    return "the prediction differs from the typical group's"


def _predictions_section(page: _Page, result: Any, term: Any, rows: pd.DataFrame
                         ) -> pd.DataFrame:
    group, outcome, mean = term.group_name, outcome_label(result), mean_word(result)
    parts = page.section("predictions", f"Predicted {mean} per {group}",
                         EXPLAIN["predictions"].format(mean=mean, link=result.family.link.name,
                                                       averaged=_averaged_words(result)))
    by_group = group_predictions(result, term)
    parts.append(_table(by_group, caption=f"Observed and predicted {mean} of {outcome} per "
                                          f"{group}"))
    grid, legend = typical_grid(result, rows)
    if grid is None:
        parts.append(_note(legend))
    else:
        parts.append(_table(grid, caption=f"Predicted {mean} of {outcome} for a typical "
                                          f"{group}"))
        parts.append(f'<p class="legend">{escape_html(legend)}</p>')
    return by_group


def _figure_sections(page: _Page, result: Any, term: Any, rows: pd.DataFrame, x: str | None,
                     by_group: pd.DataFrame, seed: int, say: Callable[[str], None]) -> None:
    from . import plots

    group, outcome, mean = term.group_name, outcome_label(result), mean_word(result)
    link = result.family.link.name
    say("drawing the figures...")
    heading = f"Observed and predicted {mean} per {group}"
    parts = page.section("group_figure", heading, EXPLAIN["group_figure"].format(mean=mean))
    counts = outcome_kind(result) == "count"
    _figure(parts, heading, lambda: group_figure(by_group, group, mean, outcome, counts))
    if x is None or x not in fixed_variables(result, rows):
        page.section("no_x", "Curves against a predictor", EXPLAIN["no_x"])
    else:
        heading = f"The model's curves against {x}"
        parts = page.section("model_curves", heading, EXPLAIN["model_curves"].format(
            mean=mean, x=x, group=group, link=link, held=held_text(result, rows, x)))
        if len(term.group_vars) > 1 or x in term.group_vars:
            parts.append(_note(f"The curves need a grouping factor that is one column other "
                               f"than {x}; {group} is not."))
        else:
            _figure(parts, heading, lambda: curves_figure(result, rows, x, term, outcome))
    heading = "Random effects with intervals (caterpillar plot)"
    parts = page.section("caterpillar", heading, EXPLAIN["caterpillar"].format(link=link))
    _figure(parts, heading, lambda: plots.caterpillar(result))

    say(f"simulating {NSIM} data sets for the residuals...")
    heading = "Residual diagnostics (simulated residuals, DHARMa)"
    parts = page.section("residuals", heading, EXPLAIN["residuals"].format(nsim=NSIM, seed=seed))
    try:
        sim = result.simulated_residuals(nsim=NSIM, seed=seed)
    except ValueError as exc:
        parts.append(_note(f"The responses could not be simulated from this fit: {exc}"))
        return
    _figure(parts, heading, sim.plot)
    parts.append(f"<pre>{escape_html(sim)}</pre>")


def write_glmer_report(formula: str, data: Any, out_path: str | Path, family: Any,
                       link: str | None = None, nagq: int = 1, data_name: str | None = None,
                       x: str | None = None, progress: bool = True, seed: int = 1) -> Path:
    """Fit a GLMM and write its self-contained HTML report (see ``report.write_report``).

    Parameters
    ----------
    formula, data, out_path, data_name, x, progress : as ``report.write_report``.
    family, link, nagq : as ``glmer``; a family named "negative.binomial" (or "nb")
        fits ``glmer_nb``.
    seed : seed of the DHARMa simulations (the residual figure and its tests).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    say = _say(progress)
    frame = to_pandas(data)
    mf = parse_formula(formula)
    x = _pick_x(mf, frame, x)
    say("fitting model...")
    result, caught = _caught(lambda: fit_glmm(formula, frame, family, link, nagq))
    for w in caught:
        warn_user(w.message, w.category)
    term = first_term(result, mf)
    group, fam = term.group_name, result.family
    rows = frame.loc[result.rows.row_index]
    page = _Page(f"Mixed model report: {formula}",
                 [f"Data: {data_name or 'data'}, {result.nobs} observations, groups: "
                  + ", ".join(f"{g} ({n})" for g, n in result.ngroups.items()),
                  f"{fam.name} family, {fam.link.name} link; fitted by {_method(result)} with "
                  f"mixedmodels {__version__}"])

    say("describing the data...")
    kind = outcome_kind(result)
    parts = page.section("data", f"The data: {outcome_label(result)} by {group}",
                         EXPLAIN.get(f"data_{kind}", EXPLAIN["data"]))
    parts.append(_table(describe_groups(result, term)))
    null_icc, null_notes = (_null_icc(result, frame, group, say) if len(term.group_vars) == 1
                            else (None, []))
    _variation_section(page, result, null_icc, null_notes)
    scale = {"logit": "log-odds", "log": "log of the mean"}.get(fam.link.name,
                                                                 f"{fam.link.name} of the mean")
    _summary_section(page, "summary", "The model", result, data_name,
                     [str(w.message) for w in caught],
                     EXPLAIN["summary"].format(link=fam.link.name, scale=scale))
    _ratio_section(page, result)
    _coef_section(page, result, f"Coefficients of every group on the {fam.link.name} scale "
                                f"(coef)", EXPLAIN["coef"].format(link=fam.link.name,
                                                                  mean=mean_word(result)))
    say("computing predictions...")
    by_group = _predictions_section(page, result, term, rows)
    _figure_sections(page, result, term, rows, x, by_group, seed, say)
    return page.write(out_path)
