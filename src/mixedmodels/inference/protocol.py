"""What the inference functions read from a fitted model.

Inference takes a fit and never imports ``results.py``: the result's methods call into this
package, not the other way round. Any object with these attributes will do (``LmerResult`` is
the one the package builds); where a function needs a new fit (an ML refit, a bootstrap
replicate) it asks the fit's own class for one, ``type(fit).from_model(...)``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ..formula.design import Design
    from ..lmm import LinearMixedModel
    from ..model_info import ModelInfo
    from ..optimize import OptSummary
    from ..terms import TermSpec


class FittedModel(Protocol):
    """A fitted linear mixed model as the inference functions use it.

    Shapes: p fixed effects, k random-effects terms, n_theta covariance parameters.
    ``info`` is the row-free description of the design; ``row_data`` the rows of a fit from a
    data frame (None for a fit from a source), which ``rows`` gives or refuses with
    ``RowsNeededError``.
    """

    formula: str
    reml: bool
    info: ModelInfo
    terms: tuple[TermSpec, ...]
    row_data: Design | None
    theta: np.ndarray          # (n_theta,)
    beta: np.ndarray           # (p,)
    sigma: float
    objective: float           # REML criterion or ML deviance at the estimates
    RX_inv: np.ndarray         # (p, p) L_X^{-1}
    model: LinearMixedModel    # the fit's workspace

    @property
    def rows(self) -> Design: ...

    @property
    def nobs(self) -> int: ...

    @property
    def n_theta(self) -> int: ...

    @property
    def df(self) -> int: ...

    @property
    def loglik(self) -> float: ...

    @property
    def aic(self) -> float: ...

    @property
    def bic(self) -> float: ...

    @property
    def se(self) -> pd.Series: ...

    @property
    def vcov(self) -> pd.DataFrame: ...

    @classmethod
    def from_model(cls, model: LinearMixedModel, info: ModelInfo, rows: Design | None,
                   optsum: OptSummary, formula: str) -> Any: ...


REQUIRED = ("formula", "reml", "info", "terms", "theta", "beta", "sigma", "objective", "model",
            "loglik", "df")


def is_fitted_model(obj: Any) -> bool:
    """True when ``obj`` has what the likelihood-ratio and refit code needs (duck typing)."""
    return hasattr(type(obj), "from_model") and all(hasattr(obj, name) for name in REQUIRED)


def refuse_residual_structure(result: Any, what: str) -> None:
    """An error for inference that does not handle a residual structure (nlme's correlation
    and variance functions, ``mm.lmer(correlation=, variance=)``)."""
    if getattr(getattr(result, "model", None), "layout", None) is None:
        return
    from ..errors import MixedModelsError

    # Kenward-Roger, profiles, simulation and refits would need R(phi) and its derivatives
    # beyond the cross-products that these models keep.
    raise MixedModelsError(f"{what} is not available for a model with a residual correlation "
                           "or variance structure; use the Satterthwaite tables (summary, "
                           "coefficients, anova) or mm.anova likelihood-ratio tests")
