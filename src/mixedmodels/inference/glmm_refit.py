"""New GLMM models on a glmer fit's data, for the inference that refits or re-evaluates it.

``drop1`` refits with fewer fixed-effects columns, the bootstrap refits to simulated responses
and the profile evaluates the deviance far from the optimum. Each gets its own
``GeneralizedLinearMixedModel`` on a new ``GlmmWorkspace`` built from the fitted workspace's
arrays: PIRLS keeps its last modes and factors in the workspace, so sharing the fit's would
make the fit's later evaluations (``at_params``, the conditional variances) start from
wherever the inference left it. No formula is parsed and no data frame is read again.

A fit is recognised by its attributes (``is_glmm_fit``); new results are built by the fit's
own class (``type(fit).from_fit``), never by importing the results module.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..families import negative_binomial
from ..glmm import GeneralizedLinearMixedModel
from ..pirls import GlmmWorkspace
from .glmm_simulate import GLMM_ATTRIBUTES

__all__ = ["is_glmm_fit", "new_model", "family_key", "family_label"]


def is_glmm_fit(obj: Any) -> bool:
    """True for a glmer fit such as ``GlmerResult`` (duck typing: the attributes the GLMM
    inference reads and a ``from_fit`` constructor)."""
    return hasattr(type(obj), "from_fit") and all(hasattr(obj, a) for a in GLMM_ATTRIBUTES)


def family_key(result: Any) -> str:
    """The family without its estimated parameters: a negative binomial is one family whatever
    its shape (two glmer_nb fits estimate different shapes of the same model)."""
    name = result.family.name
    return "negative binomial" if name.startswith("Negative Binomial") else name


def family_label(result: Any) -> str:
    """``binomial (logit link)``: the family and link, for messages."""
    return f"{result.family.name} ({result.family.link.name} link)"


def new_model(result: Any, X: np.ndarray | None = None, y: np.ndarray | None = None,
              free_shape: bool = True) -> GeneralizedLinearMixedModel:
    """A model on a new workspace with the fit's data, terms, family and quadrature.

    Parameters
    ----------
    result : GlmerResult
        The fit.
    X : (n, p') array, optional
        Fixed-effects columns to use instead of the fit's (a reduced model for ``drop1``).
    y : (n,) array, optional
        A new response on the fit's scale (binomial: proportions of the trials), e.g. a
        simulated one; PIRLS then starts from the family's starting means for it, as a new
        fit does.
    free_shape : bool
        For a negative binomial fit, whether the shape is a parameter of the model (estimated
        by ``fit``, the last entry of the parameter vector on the log scale) or held at the
        fit's value.

    Returns
    -------
    GeneralizedLinearMixedModel
    """
    ws = result.model.ws
    fam = result.family
    if y is None:
        y, eta_start = ws.y, ws.eta_start
    else:
        y = np.asarray(y, dtype=float)
        # The prior weights already hold the binomial trials, so the family's starting means
        # for proportions come out as for the fit's own response.
        _, _, mustart, _ = fam.initialize(y, ws.prior_weights)
        eta_start = fam.link.linkfun(mustart)
    X = ws.X if X is None else np.ascontiguousarray(X, dtype=float)
    new = GlmmWorkspace(X, y, ws.offset, ws.prior_weights, ws.n_trials, ws.terms, fam)
    new.eta_start = eta_start
    if result.nb_theta is not None and free_shape:
        # A module-level function and its keyword: picklable, so bootstrap workers can use it.
        family_at = functools.partial(negative_binomial, link=fam.link.name)
        return GeneralizedLinearMixedModel(new, nagq=result.nagq, family_at=family_at,
                                           nb_theta=float(result.nb_theta))
    return GeneralizedLinearMixedModel(new, nagq=result.nagq)
