"""Likelihood-ratio tests: lme4's ``anova(m0, m1, ...)``, lmerTest's ``ranova`` and ``drop1``,
and lme4's ``drop1(test = "Chisq")`` for glmer fits (``drop1_glmer``).

Every model refitted here is built from cross-products the fit already holds (or rebuilt from
the fit's rows, or for a fit from a source from one more pass over it), never from the user's
data frame: the cross-products do not depend on
REML versus ML, and dropping a random-effects term only removes its blocks.

lme4 prints the message "refitting model(s) with ML (instead of REML)" when ``anova`` refits
REML fits; here it is a ``RefitMLWarning`` (a ``UserWarning``), so it shows once per call
site by default and can be silenced with
``warnings.simplefilter("ignore", mixedmodels.RefitMLWarning)``.

glmer fits are maximum-likelihood fits already: ``anova`` compares them as they are (lme4's
``anova`` for glmerMod), and ``drop1_glmer`` refits on the fit's workspace arrays with the
dropped term's columns of X removed (``glmm_refit.new_model``).
"""
from __future__ import annotations

import dataclasses
import sys
import weakref
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.linalg as sla
from scipy import stats

from ..crossprod import CrossProducts, from_design
from ..errors import MixedModelsError, warn_user
from ..lmm import LinearMixedModel
from ..objective import profiled_objective
from ..rformat import deparse_formula, print_anova
from ..terms import ReTerm, TermSpec, order_terms
from .glmm_refit import family_key, family_label, is_glmm_fit, new_model
from .protocol import FittedModel, is_fitted_model, refuse_residual_structure

__all__ = ["anova", "ranova", "drop1", "drop1_glmer", "ml_refit", "RefitMLWarning", "LRTTable",
           "Drop1Table"]

REFIT_MESSAGE = "refitting model(s) with ML (instead of REML)"

LRT_COLUMNS = ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"]
RANOVA_COLUMNS = ["npar", "logLik", "AIC", "LRT", "Df", "Pr(>Chisq)"]
DROP1_COLUMNS = ["npar", "AIC", "LRT", "Pr(Chi)"]


class RefitMLWarning(UserWarning):
    """lme4's message: REML fits were refitted by ML before comparing likelihoods."""


# ML refits are reused by anova, profile and confint; the key is the (immutable) result, held
# weakly so the cache never keeps a fit alive.
_ML_REFITS: "weakref.WeakKeyDictionary[FittedModel, FittedModel]" = weakref.WeakKeyDictionary()


def ml_refit(result: FittedModel) -> FittedModel:
    """The ML fit of the same model (lme4's ``refitML``); an ML fit is returned unchanged.

    Starts the optimizer at the REML theta as lme4 does. Only the cross-products are used.
    """
    if not result.reml:
        return result
    cached = _ML_REFITS.get(result)
    if cached is not None:
        return cached
    model = result.model.workspace(reml=False)
    optsum = model.fit(theta0=result.theta)
    refit = type(result).from_model(model, result.info, result.row_data, optsum,
                                    result.formula)
    _ML_REFITS[result] = refit
    return refit


# ---- anova(m0, m1, ...) ---------------------------------------------------------------------
def _check_same_data(labelled: list[tuple[str, FittedModel]]) -> None:
    """Likelihoods are comparable only on the same response (lme4 checks nobs and the data)."""
    first_label, first = labelled[0]
    for label, m in labelled[1:]:
        if m.nobs != first.nobs:
            raise MixedModelsError(
                f"models were not all fitted to the same size of dataset: '{first_label}' has "
                f"{first.nobs} observations, '{label}' has {m.nobs}")
        keys = [m.info.data_key, first.info.data_key]
        if keys != [None, None]:
            # fits from a source hold no rows: the same source, response, weights and rows
            if keys[0] != keys[1]:
                raise MixedModelsError(
                    f"models were not all fitted to the same data: '{label}' and "
                    f"'{first_label}' read different sources, responses, weights or columns")
            continue
        rows, first_rows = m.rows, first.rows
        if not np.array_equal(rows.y, first_rows.y):
            raise MixedModelsError(
                f"models were not all fitted to the same data: the response values of "
                f"'{label}' differ from those of '{first_label}'")
        if not np.array_equal(rows.weights, first_rows.weights):
            raise MixedModelsError(
                f"models were not all fitted with the same prior weights ('{first_label}' and "
                f"'{label}'); their likelihoods are not comparable")
        trials = (first_rows.trials, rows.trials)
        if (trials[0] is None) != (trials[1] is None) or (
                trials[0] is not None and not np.array_equal(*trials)):
            raise MixedModelsError(
                f"models were not all fitted to the same data: the binomial trials of "
                f"'{label}' differ from those of '{first_label}'")


def _check_kinds(labelled: list[tuple[str, FittedModel]]) -> None:
    """All lmer fits, or all glmer fits of one family: other likelihoods do not compare.

    Links may differ (logit and probit fits of the same data have comparable likelihoods, as in
    lme4); a negative binomial compares with another negative binomial whatever the shapes.
    """
    for k, (label, m) in enumerate(labelled):
        if not (is_fitted_model(m) or is_glmm_fit(m)):
            raise MixedModelsError(f"anova() compares fitted lmer or glmer models; argument "
                                   f"{k + 1} ('{label}') is a {type(m).__name__}")
    glmm = [is_glmm_fit(m) for _, m in labelled]
    if any(glmm) and not all(glmm):
        lmm_label = labelled[glmm.index(False)][0]
        glmm_label = labelled[glmm.index(True)][0]
        raise MixedModelsError(
            f"anova() cannot compare an lmer fit ('{lmm_label}') with a glmer fit "
            f"('{glmm_label}'): their likelihoods belong to different response distributions")
    if not all(glmm):
        return
    first_label, first = labelled[0]
    for label, m in labelled[1:]:
        if family_key(m) != family_key(first):
            raise MixedModelsError(
                f"anova() compares glmer fits of one family: '{first_label}' is "
                f"{family_label(first)}, '{label}' is {family_label(m)}")


class LRTTable(pd.DataFrame):
    """lme4's ``anova(m0, m1, ...)`` table: a DataFrame that prints as R prints it.

    ``str()`` / ``repr()`` give R's print: the "Models:" lines (label: formula), then the table
    by ``print.anova``'s rules (5 significant digits, blanks for NA, stars and their legend).
    ``formulas`` maps each row label to its model's formula.
    """

    _metadata = ["formulas"]

    @property
    def _constructor(self):
        return LRTTable

    def __str__(self) -> str:
        formulas = getattr(self, "formulas", None) or {}
        heading = ["Models:"] + [f"{label}: {deparse_formula(formulas[label])}"
                                 for label in self.index if label in formulas]
        table = print_anova([str(c) for c in self.columns], [str(i) for i in self.index],
                            self.to_numpy(dtype=float))
        return "\n".join((heading if len(heading) > 1 else []) + table)

    __repr__ = __str__


def _caller_names(models: tuple, frame) -> list[str] | None:
    """The names the calling code gives the models, as lme4 labels rows by the arguments.

    A model counts only when exactly one name without a leading underscore is bound to it in
    the caller's locals (else its globals); None unless every model has its own name, or when
    the caller is this package's own code.
    """
    if frame is None or str(frame.f_globals.get("__name__", "")).startswith("mixedmodels."):
        return None
    names = []
    for m in models:
        found = None
        for scope in (frame.f_locals, frame.f_globals):
            bound = [k for k, v in scope.items() if v is m and not k.startswith("_")]
            if bound:
                found = bound[0] if len(bound) == 1 else None
                break
        if found is None:
            return None
        names.append(found)
    return names if len(set(names)) == len(names) else None


def anova(*models: FittedModel, refit: bool = True,
          names: Sequence[str] | None = None) -> LRTTable:
    """Likelihood-ratio tests between nested models, as lme4's ``anova(m0, m1, ...)``.

    Parameters
    ----------
    *models : two or more fits of the same data: all lmer fits, or all glmer fits of one
        family (Laplace or adaptive Gauss-Hermite; npar = ``fit.df``; never refitted).
    refit : refit REML fits by ML first (lme4's default ``refit = TRUE``); emits a
        ``RefitMLWarning`` with lme4's message when it does. glmer fits are ML fits.
    names : row labels, one per model in argument order, e.g.
        ``anova(m0, m1, names=["intercepts", "slopes"])``. When None, each model is labelled
        by the variable name it has in the calling code (``mm.anova(small, big)`` gives rows
        ``small`` and ``big``, as lme4 uses the argument names) when every model has exactly
        one; otherwise ``m0, m1, ...`` by position.

    Returns
    -------
    LRTTable (a DataFrame printing as R): one row per model ordered by number of parameters
    (stable), indexed by label (index name "model"), columns ``npar, AIC, BIC, logLik,
    deviance, Chisq, Df, Pr(>Chisq)``; the first row has NaN in the last three.
    Chisq = 2 max(0, logLik_i - logLik_{i-1}). ``formulas`` maps label -> formula.

    Raises
    ------
    MixedModelsError : fewer than two models, something that is not a fit, names of the wrong
        number or not unique, models fitted to different data, lmer and glmer fits together, or
        glmer fits of different families.
    """
    for k, m in enumerate(models):
        if not (is_fitted_model(m) or is_glmm_fit(m)):
            raise MixedModelsError(f"anova() compares fitted lmer or glmer models; argument "
                                   f"{k + 1} is a {type(m).__name__}")
    if len(models) < 2:
        raise MixedModelsError("anova() compares two or more models; for F tests of one "
                               "model's fixed effects use result.anova()")
    if names is None:
        names = _caller_names(models, sys._getframe(1)) or [f"m{k}" for k in range(len(models))]
    labels = [str(n) for n in names]
    if len(labels) != len(models):
        raise MixedModelsError(f"anova() got {len(labels)} names for {len(models)} models")
    if len(set(labels)) < len(labels):
        raise MixedModelsError(f"anova() needs one distinct name per model, got {labels}")
    labelled = list(zip(labels, models))
    _check_kinds(labelled)
    _check_same_data(labelled)
    reml = [m.reml for _, m in labelled]
    if refit:
        if any(reml):
            warn_user(REFIT_MESSAGE, RefitMLWarning)
        labelled = [(lab, ml_refit(m)) for lab, m in labelled]
    elif any(reml) and not all(reml):
        warn_user("some models fit with REML = TRUE, some not", UserWarning)
    labelled.sort(key=lambda item: item[1].df)
    npar = np.array([m.df for _, m in labelled], dtype=float)
    loglik = np.array([m.loglik for _, m in labelled])
    chisq = np.concatenate([[np.nan], 2.0 * np.maximum(0.0, np.diff(loglik))])
    df = np.concatenate([[np.nan], np.diff(npar)])
    with np.errstate(invalid="ignore"):
        pval = np.where(df == 0, np.nan, stats.chi2.sf(chisq, np.where(df > 0, df, np.nan)))
    table = LRTTable({
        "npar": npar.astype(int), "AIC": [m.aic for _, m in labelled],
        "BIC": [m.bic for _, m in labelled], "logLik": loglik, "deviance": -2.0 * loglik,
        "Chisq": chisq, "Df": df, "Pr(>Chisq)": pval},
        index=pd.Index([lab for lab, _ in labelled], name="model"))
    table = table[LRT_COLUMNS]
    table.formulas = {lab: m.formula for lab, m in labelled}
    return table


# ---- ranova ---------------------------------------------------------------------------------
def _lm_objective(A: CrossProducts, reml: bool) -> float:
    """-2 log-likelihood (ML) or REML criterion of the linear model without random effects.

    This is the mixed-model objective at theta = 0 (L_theta = I), read off the Cholesky factor
    of the [X y] block alone; it equals R's ``-2 * logLik(lm(...), REML = reml)``.
    """
    R = sla.cholesky(A.xx, lower=True, check_finite=False)
    ldRX2 = 2.0 * float(np.sum(np.log(np.diag(R)[: A.p])))
    return profiled_objective(0.0, ldRX2, float(R[-1, -1] ** 2), A.n, A.p, A.sum_log_w, reml)


def _bars_with_terms(result: FittedModel) -> list[tuple[object, int]]:
    """(bar, index into result.terms) in the order of lme4's ``findbars``.

    The design sorts terms by number of levels; bars are matched back by grouping factor and
    left-hand side. ``findbars`` lists the pieces of a nested ``(1 | a/b)`` innermost first,
    while the parser lists them outermost first, so those groups are reversed.
    """
    bars = list(result.info.formula.bars)
    unused = list(range(len(result.terms)))
    matched = []
    for bar in bars:
        for pos, j in enumerate(unused):
            t = result.terms[j]
            spec_rhs = getattr(t.lhs_spec, "rhs", None)
            if (t.group_name == bar.group_name and spec_rhs == bar.lhs
                    and t.structure == bar.structure):
                matched.append((bar, j))
                del unused[pos]
                break
        else:
            raise MixedModelsError(f"cannot match the random-effects term ({bar.lhs} | "
                                   f"{bar.group_name}) to the fitted model's terms")
    ordered, i = [], 0
    while i < len(matched):
        group = [matched[i]]
        while i + len(group) < len(matched) and matched[i + len(group)][0].position == \
                matched[i][0].position:
            group.append(matched[i + len(group)])
        if len(group) > 1 and group[0][0].correlated:
            group.reverse()
        ordered.extend(group)
        i += len(group)
    return ordered


def _lhs_structure(term: TermSpec) -> tuple[list[str], list[frozenset], list[list[int]], bool]:
    """Labels, variable sets and column indices of the terms of a bar's left-hand side.

    Returns (labels, variable index sets, column indices per term, has intercept). Reads the
    term structure the formula module keeps in its ``MatrixSpec`` (``_variables``, ``_terms``),
    the only record of which columns came from which term.
    """
    spec = term.lhs_spec
    variables = spec._variables
    labels = [":".join(variables[i].label for i, _ in tt) for tt in spec._terms]
    var_sets = [frozenset(i for i, _ in tt) for tt in spec._terms]
    owners = list(spec.term_of_column)
    columns = [[c for c, owner in enumerate(owners) if owner == lab] for lab in labels]
    return labels, var_sets, columns, bool(spec.intercept)


def _drop_scope(var_sets: list[frozenset]) -> list[int]:
    """R's ``drop.scope``: terms not contained in another term (marginality)."""
    return [i for i, s in enumerate(var_sets)
            if not any(s < other for j, other in enumerate(var_sets) if j != i)]


def _reduced_term(term: TermSpec, drop: int) -> TermSpec:
    """The term with one left-hand-side term removed, as lmerTest's ``get_newforms``.

    When nothing but that term was on the left (``(0 + x | g)``), lmerTest keeps ``(1 | g)``.
    The reduced term is used for fitting only (``lhs_spec`` is cleared: it could not rebuild
    the reduced columns on new data). A ``ReTerm`` gives a ReTerm (its z reduced alike), a
    ``TermSpec`` a TermSpec.
    """
    labels, var_sets, columns, intercept = _lhs_structure(term)
    if len(labels) == 1:
        keep = None
        names: tuple[str, ...] = ("(Intercept)",)
    else:
        variables = term.lhs_spec._variables
        is_factor = [variables[i].levels is not None for i in range(len(variables))]
        dropped_factor = any(is_factor[i] for i in var_sets[drop])
        kept_factor = any(is_factor[i] for k, s in enumerate(var_sets) if k != drop for i in s)
        if not intercept and dropped_factor and kept_factor:
            # Without an intercept R codes the first factor with all its levels; removing it
            # changes the coding of the next one, which needs the data frame to rebuild.
            raise MixedModelsError(
                f"cannot reduce the term ({term.lhs_spec.rhs} | {term.group_name}) by dropping "
                f"'{labels[drop]}' from the fitted design: the remaining factor would be "
                f"re-coded; refit the reduced model with lmer()")
        keep = [c for c in range(term.p) if c not in set(columns[drop])]
        names = tuple(term.column_names[c] for c in keep)
    spec = dataclasses.replace(term.spec, column_names=names, lhs_spec=None,
                               covariance=term.covariance.reduced(len(names)))
    if not isinstance(term, ReTerm):
        return spec
    z = (np.ones((term.z.shape[0], 1)) if keep is None
         else np.ascontiguousarray(term.z[:, keep]))
    return spec.with_rows(term.refs, z)


def _terms_to_reduce(result: FittedModel) -> list[TermSpec]:
    """The fit's terms in fitting order: with their rows (``ReTerm``) when the fit holds them,
    for refits on cross-products built from them; the specifications alone for a fit from a
    source, whose refits take one more pass over it (``SourceInfo.refit_blocks``)."""
    if hasattr(result.info, "refit_blocks"):
        return list(result.terms)
    return list(result.rows.terms)


def _refit_terms(result: FittedModel, terms: list[TermSpec]) -> tuple[float, int]:
    """(objective, npar) of the model with these random-effects terms (from
    ``_terms_to_reduce``), same REML/ML setting."""
    p = result.info.p
    if not terms:
        # Only the [X y] block is needed, and it is the same as the fitted model's.
        return _lm_objective(result.model.A, result.reml), p + 1
    terms = order_terms(terms)
    refit = getattr(result.info, "refit_blocks", None)      # a fit from a source
    if refit is not None:
        A = refit(terms)
    else:
        rows = result.rows
        A = from_design(terms, rows.X, rows.y, rows.offset, rows.weights)
    model = LinearMixedModel(A, tuple(terms), reml=result.reml)
    optsum = model.fit()
    return optsum.fmin, p + model.n_theta + 1


def ranova(result: FittedModel, reduce_terms: bool = True) -> pd.DataFrame:
    """lmerTest's ``ranova``: likelihood-ratio test for each random-effects term.

    For a term with covariates on its left (``(1 + x | g)``) each droppable covariate is
    removed in turn (``x in (1 + x | g)`` reduces it to ``(1 | g)``); a scalar term is removed.
    With ``reduce_terms=False`` every term is removed whole. Reduced models keep the fit's REML
    or ML setting (lmerTest does not refit by ML here); a model left without random effects is
    the ordinary linear model.

    Returns
    -------
    DataFrame indexed by ``<none>`` then one row per reduced model, columns
    ``npar, logLik, AIC, LRT, Df, Pr(>Chisq)``; LRT = 2 (logLik_full - logLik_reduced).
    """
    refuse_residual_structure(result, "ranova")
    terms = _terms_to_reduce(result)
    rows: list[tuple[str, float, int]] = [("<none>", result.objective, result.df)]
    for bar, j in _bars_with_terms(result):
        structure = "" if bar.structure == "us" else bar.structure
        label = f"{structure}({bar.lhs} | {bar.group_name})"
        others = terms[:j] + terms[j + 1:]
        labels, var_sets, _, _ = _lhs_structure(terms[j])
        scope = _drop_scope(var_sets) if reduce_terms else []
        if not scope:
            rows.append((label, *_refit_terms(result, others)))
            continue
        for drop in scope:
            new_term = _reduced_term(terms[j], drop)
            # R's update() keeps one copy of identical terms: (1 | g) + (1 | g) is (1 | g).
            same = [(t.group_name, t.column_names) == (new_term.group_name,
                                                       new_term.column_names) for t in others]
            reduced = others if any(same) else others + [new_term]
            rows.append((f"{labels[drop]} in {label}", *_refit_terms(result, reduced)))
    loglik = np.array([-objective / 2.0 for _, objective, _ in rows])
    npar = np.array([n for _, _, n in rows], dtype=float)
    lrt = np.concatenate([[np.nan], 2.0 * (loglik[0] - loglik[1:])])
    df = np.concatenate([[np.nan], npar[0] - npar[1:]])
    with np.errstate(invalid="ignore"):
        pval = stats.chi2.sf(lrt, np.where(df > 0, df, np.nan))
    table = pd.DataFrame({"npar": npar.astype(int), "logLik": loglik,
                          "AIC": -2.0 * loglik + 2.0 * npar, "LRT": lrt, "Df": df,
                          "Pr(>Chisq)": pval},
                         index=pd.Index([label for label, _, _ in rows]))
    return table[RANOVA_COLUMNS]


# ---- drop1 ----------------------------------------------------------------------------------
def _marginal_fixed_terms(result: FittedModel) -> list[str]:
    """Labels of the fixed-effects terms that ``drop.scope`` allows dropping."""
    spec = result.info.x_spec
    variables = spec._variables
    labels = [":".join(variables[i].label for i, _ in tt) for tt in spec._terms]
    var_sets = [frozenset(i for i, _ in tt) for tt in spec._terms]
    return [labels[i] for i in _drop_scope(var_sets)]


def drop1(result: FittedModel, ddf: str = "satterthwaite") -> pd.DataFrame:
    """lmerTest's ``drop1``: F test for dropping each marginal fixed-effects term.

    For a marginal term (one not contained in another, e.g. only ``a:b`` in ``a*b``) the
    hypothesis is the type III one, so this is ``result.anova(type=3)`` restricted to the
    terms R's ``drop.scope`` lists. Columns as lmerTest: ``Sum Sq, Mean Sq, NumDF, DenDF,
    F value, Pr(>F)``.
    """
    table = result.anova(type=3, ddf=ddf)
    marginal = set(_marginal_fixed_terms(result))
    return table.loc[[label for label in table.index if label in marginal]]



# ---- drop1 for glmer fits ------------------------------------------------------------------
class Drop1Table(pd.DataFrame):
    """lme4's ``drop1`` table for a glmer fit: a DataFrame that prints as R prints it
    ("Single term deletions", the model's formula, then the table by ``print.anova``'s rules).
    ``formula`` is the full model's formula."""

    _metadata = ["formula"]

    @property
    def _constructor(self):
        return Drop1Table

    def __str__(self) -> str:
        formula = getattr(self, "formula", None)
        heading = ["Single term deletions", "", "Model:", deparse_formula(formula)] \
            if formula else []
        table = print_anova([str(c) for c in self.columns], [str(i) for i in self.index],
                            self.to_numpy(dtype=float))
        return "\n".join(heading + table)

    __repr__ = __str__


def _recoded_by_dropping(result, label: str) -> bool:
    """Whether removing term ``label`` changes how R codes the factors of the other terms.

    R codes a factor by contrasts or by indicators depending on the other terms (without an
    intercept the first factor gets all its levels), so the reduced formula's X is not always
    the full X minus the term's columns: compare R's coding of the remaining terms.
    """
    from ..formula.fixed import term_codes

    spec = result.info.x_spec
    variables, coded = spec._variables, spec._terms
    labels = [":".join(variables[i].label for i, _ in tt) for tt in coded]
    nlevels = [len(v.levels) if v.levels is not None else 0 for v in variables]
    kept = [tt for k, tt in enumerate(coded) if labels[k] != label]
    recoded = term_codes([tuple(v for v, _ in tt) for tt in kept], spec.intercept, nlevels)
    return [tuple(tt) for tt in recoded] != [tuple(tt) for tt in kept]


def _refit_without(result, label: str) -> tuple[float, int]:
    """(-2 log-likelihood, npar) of the glmer fit without the fixed-effects term ``label``."""
    from ..lmm import ConvergenceWarning
    from ..pirls import PirlsError

    if _recoded_by_dropping(result, label):
        raise MixedModelsError(
            f"cannot drop '{label}' from the fitted design: R would code the remaining "
            f"factors differently without it (a model without an intercept); fit the reduced "
            f"model with glmer() and compare with mixedmodels.anova()")
    keep = [c for c, owner in enumerate(result.info.x_terms) if owner != label]
    model = new_model(result, X=result.rows.X[:, keep])
    try:
        fit = model.fit()
    except PirlsError as err:
        raise MixedModelsError(f"drop1: the model without '{label}' could not be fitted: "
                               f"{err}") from err
    for message in fit.warnings:
        warn_user(f"drop1, model without '{label}': {message}", ConvergenceWarning)
    npar = len(keep) + result.n_theta + int(result.family.has_dispersion) \
        + int(result.nb_theta is not None)
    return float(fit.objective), npar


def drop1_glmer(result, test: str = "Chisq") -> Drop1Table:
    """lme4's ``drop1(m, test = "Chisq")`` for a glmer fit: a likelihood-ratio test for
    dropping each fixed-effects term that R's ``drop.scope`` allows (a term not contained in
    another one: only ``a:b`` of ``a * b``).

    Each reduced model is refitted from the default start, as lme4 refits the updated formula
    (a negative binomial's shape is estimated again, as ``update()`` of a ``glmer.nb`` fit
    does), on the fit's arrays with the term's columns of X removed. Columns that the fit
    dropped for rank deficiency stay dropped.

    Parameters
    ----------
    result : GlmerResult
    test : "Chisq" (default) for the LRT columns, or "none" for npar and AIC only (lme4's
        default ``test = "none"``).

    Returns
    -------
    Drop1Table (a DataFrame printing as R), indexed by ``<none>`` and the dropped terms;
    columns ``npar`` (parameters removed; NaN for ``<none>``), ``AIC``, and with "Chisq"
    ``LRT`` = -2 log L(reduced) + 2 log L(full) and ``Pr(Chi)`` from the chi-squared
    distribution on npar degrees of freedom.

    Raises
    ------
    MixedModelsError : an unknown ``test``, or a term whose removal would re-code the other
        factors (models without an intercept), or a reduced model that cannot be fitted.
    """
    if test not in ("Chisq", "none"):
        raise MixedModelsError(f"test must be 'Chisq' or 'none' for a glmer fit, not {test!r}")
    rows = [("<none>", float(result.objective), int(result.df))]
    for label in _marginal_fixed_terms(result):
        rows.append((label, *_refit_without(result, label)))
    objective = np.array([o for _, o, _ in rows])
    npar = np.array([k for _, _, k in rows], dtype=float)
    dropped = np.concatenate([[np.nan], npar[0] - npar[1:]])
    table = Drop1Table({"npar": dropped, "AIC": objective + 2.0 * npar},
                       index=pd.Index([label for label, _, _ in rows]))
    if test == "Chisq":
        # Not clipped at 0, as lme4: a reduced fit with a lower deviance than the full one
        # (the full fit stopped short) shows up as a negative LRT.
        lrt = np.concatenate([[np.nan], objective[1:] - objective[0]])
        with np.errstate(invalid="ignore"):
            table["LRT"] = lrt
            table["Pr(Chi)"] = stats.chi2.sf(lrt, dropped)
    table.formula = result.formula
    return table
