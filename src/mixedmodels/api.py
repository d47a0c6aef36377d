"""The public fitting pipeline: formula -> design -> cross-products -> model -> result."""
from __future__ import annotations

from typing import Any

import numpy as np

from ._threads import with_blas_threads
from .crossprod import from_design
from .formula.bars import parse_formula
from .formula.design import build_design
from .checks import check_reml, check_response_scale, check_scale_x, fits_exactly
from .errors import warn_user
from .lmm import LinearMixedModel, warn_boundary
from .results import LmerResult


@with_blas_threads
def lmer(formula: str, data: Any, reml: bool = True, weights: Any = None,
         correlation: Any = None, variance: Any = None) -> LmerResult:
    """Fit a linear mixed model as lme4's ``lmer`` does (with nlme's residual structures).

    Parameters
    ----------
    formula : lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``; random-effects
        terms may carry a structure: ``diag(x | g)``, ``cs(0 + f | g)``, ``ar1(0 + f | g)``.
    data : pandas or polars data frame.
    reml : True for REML (default, as lme4) or False for maximum likelihood.
    weights : prior weights: a column name, or an array or Series with one value per row of
        ``data`` (a pandas Series is matched by the data's row labels). A missing weight drops
        its row, as R's na.omit does.
    correlation : nlme's residual correlation within groups, ``mm.corAR1("~ 1 | g")``,
        ``mm.corAR1("~ t | g")``, ``mm.corCAR1("~ time | g")`` or ``mm.corCompSymm("~ 1 | g")``.
    variance : nlme's variance function, ``mm.varIdent("~ 1 | s")`` or ``mm.varPower("~ v")``.

    Warns as lme4 does: ``ScaleWarning`` for predictors on very different scales,
    ``ConvergenceWarning`` when lme4's convergence check fails, ``SingularFitWarning`` for a
    fit on the boundary ("boundary (singular) fit", ``is_singular``); a response that the
    fixed effects reproduce exactly gives such a fit with residual SD 0. A response whose
    scale double precision cannot square is an error that says how to rescale it.

    ``data`` may also be a source whose rows stay where they are (``docs/scale.md``): a DuckDB
    relation, a path or glob of Parquet or CSV files (read by DuckDB), or a Dask DataFrame;
    ``weights`` is then a column name.
    """
    reml = check_reml(reml)
    from .sources.passes import source_kind

    kind = source_kind(data)
    if kind != "memory":
        from .sources.passes import fit_source, open_source

        if correlation is not None or variance is not None:
            from .errors import DataError

            # A residual structure's R(phi) couples rows within a group in their order:
            # its cross-products are not sums of per-level tiles that a GROUP BY can give.
            raise DataError("correlation= and variance= (nlme's residual structures) fit from "
                            "in-memory data frames only, not from a DuckDB or Dask source")
        return fit_source(formula, open_source(data, kind), reml=reml, weights=weights)
    mf = parse_formula(formula)
    if correlation is None and variance is None:
        design = build_design(mf, data, weights=weights)
        check_response_scale(design.y, design.offset, mf.response)
        check_scale_x(design.X, design.info.x_names)
        A = from_design(design.terms, design.X, design.y, design.offset, design.weights)
        model = LinearMixedModel(A, design.terms, reml=reml)
    else:
        from .residual import residual_model

        design, model = residual_model(mf, data, reml, weights, correlation, variance)
        check_response_scale(design.y, design.offset, mf.response)
        check_scale_x(design.X, design.info.x_names)
        A = model.A
    exact = fits_exactly(design.X, design.y, design.offset, design.weights, A.xx)
    optsum = model.exact_fit() if exact else model.fit()
    result = LmerResult.from_model(model, design.info, design, optsum, formula=formula)
    warn_boundary(mf.response, exact, result.is_singular)
    return result


def _refuse_source(data: Any, what: str) -> None:
    """glmer reads rows at every PIRLS step: it takes in-memory frames only (for now)."""
    from .errors import DataError
    from .sources.passes import source_kind

    kind = source_kind(data)
    if kind != "memory":
        name = {"path": "Parquet/CSV files", "duckdb": "a DuckDB relation",
                "dask": "a Dask DataFrame"}[kind]
        raise DataError(f"{what} fits from in-memory data frames (pandas, polars) only, not "
                        f"from {name}; load the rows into a data frame, or fit a linear "
                        "mixed model with lmer, which accepts these sources")


def _glmm_design(formula: str, data: Any, weights: Any):
    mf = parse_formula(formula)
    return build_design(mf, data, weights=weights, glm=True)


def _fit_or_explain(model, formula: str, family, **kwargs):
    """model.fit(); a PIRLS failure becomes an error that names the model."""
    from .errors import MixedModelsError
    from .pirls import PirlsError

    try:
        fit = model.fit(**kwargs)
    except PirlsError as err:
        raise MixedModelsError(f"glmer could not fit {formula} ({family.name}, "
                               f"{family.link.name} link): {err}") from err
    if not (np.all(np.isfinite(fit.theta)) and np.all(np.isfinite(fit.beta))):
        raise MixedModelsError(f"glmer found no finite estimates for {formula} "
                               f"({family.name}, {family.link.name} link)")
    return fit


@with_blas_threads
def glmer(formula: str, data: Any, family: Any = "binomial", link: str | None = None,
          weights: Any = None, nagq: int = 1):
    """Fit a generalized linear mixed model as lme4's ``glmer`` does.

    Parameters
    ----------
    formula : lme4 formula; the response may be 0/1, logical (``I(y > 3)``), a factor (first
        level = failure), ``cbind(successes, failures)``, a proportion with ``weights=`` (the
        trials), or counts; ``offset(log(exposure))`` in the fixed part.
    data : pandas or polars data frame.
    family : "binomial", "poisson", "Gamma", "inverse.gaussian", "gaussian", or a family
        object (``mm.families.Binomial(link="probit")``).
    link : the link when ``family`` is a name (None: the family's default).
    weights : prior weights as for ``lmer``: a column name, or an array or Series of length N
        (binomial: the numbers of trials).
    nagq : 1 Laplace (default); 0 fixed effects inside PIRLS; > 1 adaptive Gauss-Hermite
        with that many nodes per dimension (one random-effects term with up to 3 columns).
    """
    from .families import get_family
    from .glmer_results import GlmerResult
    from .glmm import GeneralizedLinearMixedModel, check_nagq, check_separation, warn_fit
    from .pirls import GlmmWorkspace

    _refuse_source(data, "glmer")
    fam = get_family(family, link)
    if fam.name == "gaussian" and fam.link.name == "identity":
        warn_user("glmer() with family gaussian (identity link) is a linear mixed model: "
                  "fitting it with lmer() (REML = False, as glmer would)", UserWarning)
        return lmer(formula, data, reml=False, weights=weights)
    design = _glmm_design(formula, data, weights)
    check_nagq(nagq, design.terms, fam)
    ws = GlmmWorkspace.from_design(design, fam)
    model = GeneralizedLinearMixedModel(ws, nagq=nagq)
    fit = _fit_or_explain(model, formula, fam)
    result = GlmerResult.from_fit(model, design.info, design, fit, formula)
    warn_fit(fit, result.is_singular)
    check_separation(fam, fit.state, ws.y)
    result.warn_vcov()
    return result


@with_blas_threads
def glmer_nb(formula: str, data: Any, weights: Any = None, nagq: int = 1,
             link: str = "log"):
    """Negative binomial GLMM with its shape theta estimated, as lme4's ``glmer.nb``.

    The shape is started from a Poisson fit (MASS's ``theta.ml`` on its fitted means) and then
    optimized jointly with (theta, beta) on the log scale, so the result is the joint maximum of
    the Laplace likelihood rather than the end of lme4's alternation.
    """
    from .families import get_family, negative_binomial
    from .glmer_results import GlmerResult
    from .glmm import (GeneralizedLinearMixedModel, check_nagq, theta_ml, warn_fit)
    from .pirls import GlmmWorkspace

    from .errors import FormulaError

    _refuse_source(data, "glmer_nb")
    design = _glmm_design(formula, data, weights)
    if design.trials is not None or design.info.response_levels is not None:
        raise FormulaError("glmer_nb models counts; a cbind(successes, failures) or factor "
                           "response is binomial: use glmer(..., family='binomial')",
                           formula=formula)
    poisson = GlmmWorkspace.from_design(design, get_family("poisson", link))
    check_nagq(nagq, design.terms, poisson.family)
    start = _fit_or_explain(GeneralizedLinearMixedModel(poisson, nagq=0), formula,
                            poisson.family, derivatives=False)
    shape = theta_ml(poisson.y, start.state.mu, poisson.prior_weights)

    def family_at(value: float):
        return negative_binomial(value, link)

    ws = GlmmWorkspace.from_design(design, family_at(shape))
    model = GeneralizedLinearMixedModel(ws, nagq=nagq, family_at=family_at, nb_theta=shape)
    fit = _fit_or_explain(model, formula, ws.family, theta0=start.theta)
    result = GlmerResult.from_fit(model, design.info, design, fit, formula)
    warn_fit(fit, result.is_singular)
    result.warn_vcov()
    return result
