"""The frozen result of an ``lmer`` fit: estimates, tables and row-level outputs.

Everything is computed once from the workspace at the optimum (``LmerResult.from_model``) and
stored, so inference code may evaluate the objective elsewhere without changing what the user
reads. The one exception is ``cond_var`` (a forward substitution per level block, the most
expensive read-off of a large fit): it is computed on first use, after putting the workspace
back at this result's theta if something moved it.

A result holds the row-free description of its design (``info``, a ``model_info.ModelInfo``)
and, for a fit from a data frame, the rows it was fitted on (``rows``, a ``Design``); a fit
from a source has none, and ``rows`` raises ``RowsNeededError``.

Read-only all the way down: every array the result holds (theta, beta, RX_inv, u, b, cond_var,
the fitted values, the rows' y and X, the terms' codes and z, the optimizer's theta) has
``flags.writeable = False``, so writing into one raises ``ValueError``; tables and Series are
built anew on each call. The optimizer summary is a copy with tuples for its logs. Only the
workspace ``model`` is shared and mutable: inference refills it and puts it back.

Inference lives in ``mixedmodels.inference`` and takes the result; the result's methods import
it on first use, never the other way round.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ._threads import with_blas_threads
from .errors import DataError, RowsNeededError
from .formula.design import Design
from .lmm import LinearMixedModel
from .model_info import ModelInfo
from .objective import profiled_objective, sigma_hat
from .optimize import OptSummary
from .results_common import RandomEffectsTables, varcorr_frame
from .terms import TermSpec


def _read_only(a: np.ndarray) -> np.ndarray:
    """``a`` itself, marked read-only (for a view only the view is marked, not its base)."""
    a.flags.writeable = False
    return a


def _frozen_optsum(optsum: OptSummary) -> OptSummary:
    """A copy of the optimizer summary with read-only arrays and tuples for its logs."""
    def ro(a):
        return None if a is None else _read_only(np.array(a, dtype=float))

    return dataclasses.replace(
        optsum, theta0=ro(optsum.theta0), lower=ro(optsum.lower), theta=ro(optsum.theta),
        fitlog=tuple((ro(theta), value) for theta, value in optsum.fitlog),
        warnings=tuple(optsum.warnings))


def freeze_rows(info: ModelInfo, rows: Design | None) -> None:
    """Mark the arrays of the design and of its rows read-only (they are a result's now)."""
    _read_only(info.x_keep)
    if rows is None:
        return
    for a in (rows.y, rows.X, rows.offset, rows.weights, rows.trials):
        if a is not None:
            _read_only(a)
    for t in rows.terms:
        _read_only(t.refs)
        _read_only(t.z)


def missing_rows(info: ModelInfo, what: str = "this output") -> RowsNeededError:
    """The error for an output that needs rows a fit from a source does not hold."""
    return RowsNeededError(
        f"{what} needs the rows in memory, and this model was fitted from {info.origin}; "
        "use fitted() / residuals(), which stream, or fit the model from a data frame")


@dataclass(frozen=True, eq=False, repr=False)
class LmerResult(RandomEffectsTables):
    """A fitted linear mixed model (immutable, read-only arrays).

    Shapes: p fixed effects, k terms, term j with l_j levels and p_j columns.
    ``b[j]`` and ``cond_var[j]`` are (l_j, p_j) and (l_j, p_j, p_j) on the original scale.

    Attributes
    ----------
    formula : the lme4 formula as given.
    reml : True for a REML fit, False for ML.
    theta : (n_theta,) relative covariance parameters (lme4's ``getME(m, "theta")``), read
        through each term's covariance template; with a residual structure its parameters
        (unconstrained, see ``theta_names``) follow.
    beta : (p,) fixed effects (``fixef`` has them with names).
    sigma : residual standard deviation.
    objective : REML criterion or ML deviance at the estimates.
    is_singular : lme4's ``isSingular``: True when a variance component is estimated at (or
        within 1e-4 of) zero, a fit on the boundary of the parameter space: some term's
        covariance matrix is singular (an SD of 0, or correlations of +-1). The data then
        hold too little information for that term; consider a simpler random-effects
        structure (drop the term, or its correlations with ``||``), and do not read its
        likelihood-ratio tests at face value (the null value is on the boundary).
    model : the workspace (``LinearMixedModel``) the fit was read off; inference refills it
        and puts it back.
    info : the row-free description of the design (names, term specs, counts).
    terms : the random-effects term specifications of ``model``, in fitting order.
    row_data : the rows of a fit from a data frame (a ``Design``), None for a fit from a
        source; read them through ``rows``.
    """

    formula: str
    reml: bool
    info: ModelInfo = field(repr=False)
    terms: tuple[TermSpec, ...] = field(repr=False)
    theta: np.ndarray = field(repr=False)
    beta: np.ndarray = field(repr=False)
    sigma: float = 0.0
    objective: float = 0.0
    ldL2: float = 0.0
    ldRX2: float = 0.0
    pwrss: float = 0.0
    ml_deviance_at_estimates: float = 0.0
    RX_inv: np.ndarray = field(repr=False, default=None)
    u: tuple[np.ndarray, ...] = field(repr=False, default=())
    b: tuple[np.ndarray, ...] = field(repr=False, default=())
    optsum: OptSummary = field(repr=False, default=None)
    is_singular: bool = False
    model: LinearMixedModel = field(repr=False, default=None)
    row_data: Design | None = field(repr=False, default=None)

    # ---- construction --------------------------------------------------------------
    @classmethod
    def from_model(cls, model: LinearMixedModel, info: ModelInfo, rows: Design | None,
                   optsum: OptSummary, formula: str) -> "LmerResult":
        """Read every estimate off the workspace L, which must hold theta-hat.

        rows : the rows the cross-products were built from, or None (a fit from a source).
        """
        L, A = model.L, model.A
        theta = _read_only(np.array(optsum.theta, dtype=float))
        beta = L.beta()
        pwrss = L.pwrss()
        sigma = sigma_hat(pwrss, A.n, A.p, model.reml)
        templates = model.templates(theta)
        u = L.u(beta)
        b = [u[j].reshape(t.n_levels, t.p) @ T.T
             for j, (t, T) in enumerate(zip(model.terms, templates))]
        p = A.p
        RX_inv = np.linalg.inv(L.xx[:p, :p])  # (p, p); p is small, LAPACK's LU is cheapest
        ml_dev = profiled_objective(L.ldL2(), L.ldRX2(), pwrss, A.n, A.p, A.sum_log_w, False)
        freeze_rows(info, rows)
        return cls(formula=formula, reml=model.reml, info=info, terms=model.terms,
                   theta=theta, beta=_read_only(beta), sigma=sigma, objective=optsum.fmin,
                   ldL2=L.ldL2(), ldRX2=L.ldRX2(), pwrss=pwrss, ml_deviance_at_estimates=ml_dev,
                   RX_inv=_read_only(RX_inv), u=tuple(_read_only(x) for x in u),
                   b=tuple(_read_only(x) for x in b), optsum=_frozen_optsum(optsum),
                   is_singular=model.is_singular(theta), model=model, row_data=rows)

    @property
    def rows(self) -> Design:
        """The rows the model was fitted on (y, X, offset, weights, row labels, the terms'
        codes and z); ``RowsNeededError`` for a fit from a source."""
        if self.row_data is None:
            raise missing_rows(self.info, "the rows (y, X, weights, row labels)")
        return self.row_data

    @cached_property
    @with_blas_threads
    def cond_var(self) -> tuple[np.ndarray, ...]:
        """Per term (l_j, p_j, p_j): Var(b | y) per level, sigma^2 T (L L')^{-1}_jj T'."""
        model = self.model
        if not np.array_equal(model.theta_in_L, self.theta):
            model.objective(self.theta)
        return tuple(
            _read_only(self.sigma**2 * np.matmul(T, np.matmul(model.L.cond_var_tiles(j), T.T)))
            for j, T in enumerate(model.templates(self.theta)))

    @with_blas_threads
    def at_theta(self, theta: np.ndarray) -> "LmerResult":
        """The same model evaluated at another theta (beta, sigma, b profiled there).

        theta : (n_theta,). Uses the model's workspace and puts it back afterwards at the theta
        it held before (this result's, unless something else moved it).
        """
        theta = np.array(theta, dtype=float)
        model = self.model
        back = np.array(self.theta if model.theta_in_L is None else model.theta_in_L)
        value = model.objective(theta)
        point = OptSummary(theta0=theta, lower=model.theta_lower, theta=theta, fmin=value)
        other = type(self).from_model(model, self.info, self.row_data, point, self.formula)
        model.objective(back)
        return other

    # ---- scalars -------------------------------------------------------------------
    @property
    def df(self) -> int:
        """Number of parameters: fixed effects + theta + sigma (lme4's logLik df)."""
        return self.beta.size + self.n_theta + 1

    @property
    def loglik(self) -> float:
        """lme4's logLik: the REML log-likelihood for REML fits, else the ML one."""
        return -self.objective / 2.0

    @property
    def deviance(self) -> float | None:
        """-2 log-likelihood of an ML fit; None for a REML fit (see ``reml_criterion``)."""
        return None if self.reml else self.objective

    @property
    def reml_criterion(self) -> float | None:
        """-2 REML log-likelihood of a REML fit; None for an ML fit."""
        return self.objective if self.reml else None

    @property
    def fixef(self) -> pd.Series:
        """(p,) fixed effects with R's coefficient names (a new Series on each call)."""
        return pd.Series(self.beta.copy(), index=list(self.info.x_names), name="fixef")

    @property
    def vcov(self) -> pd.DataFrame:
        """sigma^2 (R_X' R_X)^{-1} with R's coefficient names."""
        V = self.sigma**2 * (self.RX_inv.T @ self.RX_inv)
        names = list(self.info.x_names)
        return pd.DataFrame(V, index=names, columns=names)

    @property
    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=list(self.info.x_names))


    @property
    def theta_names(self) -> list[str]:
        """Names of theta's entries: lme4's, then a residual structure's parameters."""
        return self.model.param_names()

    # ---- residual structures (nlme's correlation= and variance=) ---------------------
    @property
    def residual_structure(self):
        """The bound residual structure (``residual.layout.ResidualLayout``), or None."""
        return getattr(self.model, "layout", None)

    @property
    def correlation_params(self) -> pd.Series | None:
        """nlme's correlation parameter: ``Phi`` of corAR1 / corCAR1, ``Rho`` of corCompSymm
        (``coef(m$modelStruct$corStruct, unconstrained = FALSE)``); None without one."""
        if self.residual_structure is None:
            return None
        return self.model.natural(self.theta)[0]

    @property
    def variance_params(self) -> pd.Series | None:
        """nlme's variance function parameters: varIdent's SD ratio of each stratum to the
        first (the first left out, as nlme's ``coef``), varPower's ``power``; None without."""
        if self.residual_structure is None:
            return None
        var = self.model.natural(self.theta)[1]
        if var is None or "power" in var.index:
            return var
        return var.iloc[1:]

    # ---- tables (shared with GlmerResult: results_common) ----------------------------
    def covariance_matrices(self) -> list[np.ndarray]:
        """Per term Sigma_j = sigma^2 T_j T_j' (p_j, p_j)."""
        Ts = self.model.templates(self.theta)
        return [self.sigma**2 * (T @ T.T) for T in Ts]

    def varcorr(self) -> pd.DataFrame:
        """lme4's ``as.data.frame(VarCorr(m))``: columns grp, var1, var2, vcov, sdcor.

        One row per variance (var2 missing), then per covariance (sdcor the correlation), per
        term; the Residual row last (var1 and var2 missing). The one missing-value marker is
        NaN, where R has NA: var1 / var2 as above, and sdcor of a correlation whose SDs
        include a 0. Test for it with ``isna()``.
        """
        return varcorr_frame(self.terms, self.covariance_matrices(), self.sigma)

    def icc(self) -> pd.Series:
        """Share of the total variance due to each grouping factor's random intercept.

        ``var_g / (sum of random-intercept variances + sigma^2)``; with one grouping factor and
        an intercept-only term this is the usual intraclass correlation. Terms without an
        intercept do not enter (for slopes the share depends on the covariate value).
        """
        shares: dict[str, float] = {}
        for t, S in zip(self.terms, self.covariance_matrices()):
            if "(Intercept)" in t.column_names:
                i = t.column_names.index("(Intercept)")
                shares[t.group_name] = shares.get(t.group_name, 0.0) + S[i, i]
        total = sum(shares.values()) + self.sigma**2
        with np.errstate(invalid="ignore"):  # every variance 0 (an exact fit): NaN
            return pd.Series({g: np.float64(v) / total for g, v in shares.items()}, name="icc")

    # ---- row-level outputs (one more pass over the data) -----------------------------
    @cached_property
    def _fitted(self) -> np.ndarray:
        rows = self.rows
        eta = rows.X @ self.beta + rows.offset
        for t, bj in zip(rows.terms, self.b):
            eta = eta + np.einsum("np,np->n", t.z, bj[t.refs])
        return _read_only(eta)

    def fitted(self) -> pd.Series:
        """(n,) fitted values X beta + Z b + offset.

        Indexed like the data: the row labels of the rows used for the fit (those kept after
        dropping rows with missing values, ``rows.row_index``).
        """
        return pd.Series(self._fitted.copy(), index=self.rows.row_index, name="fitted")

    def residuals(self, type: str = "response") -> pd.Series:
        """(n,) residuals, indexed as ``fitted()``.

        type : "response" (y - fitted); "pearson" (sqrt(w) (y - fitted), as lme4, divided by
            the variance function's lambda_r with a variance structure); "normalized" (nlme's
            ``resid(type = "normalized")``: the Pearson residuals over sigma, decorrelated
            within groups by the inverse Cholesky factor of the residual correlation).
        """
        r = self.rows.y - self._fitted
        if type in ("pearson", "normalized"):
            r = np.sqrt(self.rows.weights) * r
            if self.residual_structure is not None:
                r = r / self.model.row_sd_scale(self.theta)
            if type == "normalized":
                r = r / self.sigma
                if self.residual_structure is not None:
                    r = self.model.normalize(r, self.theta)
        elif type != "response":
            raise ValueError(f"residual type must be 'response', 'pearson' or 'normalized', "
                             f"not {type!r}")
        return pd.Series(r, index=self.rows.row_index, name="residuals")

    @with_blas_threads
    def hatvalues(self) -> pd.Series:
        """(n,) leverages, the diagonal of the hat matrix, as lme4's ``hatvalues``."""
        from .inference.influence import hatvalues

        return hatvalues(self)

    def predict(self, newdata: Any = None, re_form: Any = None,
                allow_new_levels: bool = False) -> pd.Series:
        """(m,) predictions indexed like ``newdata`` (like the fit's rows when None); see
        ``predict.predict``."""
        from .predict import predict

        return predict(self, newdata, re_form=re_form, allow_new_levels=allow_new_levels)

    def write_predictions(self, path: Any, newdata: Any = None, re_form: Any = None,
                          allow_new_levels: bool = False) -> str:
        """Write predictions to a Parquet file (needs pyarrow: ``mixedmodels[parquet]``);
        returns ``path``. As for a fit from a source: newdata None writes the fit's rows
        (their labels as column ``row``) with ``prediction`` (for ``re_form``), ``fitted`` and
        ``residual``; else newdata's columns and ``prediction``."""
        import os

        from .predict import predict

        pred = predict(self, newdata, re_form=re_form, allow_new_levels=allow_new_levels)
        if newdata is None:
            out = pd.DataFrame({"row": self.rows.row_index, "prediction": pred.to_numpy(),
                                "fitted": self._fitted, "residual": self.rows.y - self._fitted})
        else:
            from .formula.design import to_pandas

            out = to_pandas(newdata, what="newdata").reset_index(drop=True)
            if "prediction" in out.columns:
                raise DataError("newdata already has a column 'prediction'; rename it")
            out["prediction"] = pred.to_numpy()
        try:
            out.to_parquet(os.fspath(path), index=False)
        except ImportError:
            raise ImportError("writing Parquet needs pyarrow: pip install "
                              "'mixedmodels[parquet]'") from None
        return os.fspath(path)

    # ---- inference (mixedmodels.inference) ------------------------------------------
    @with_blas_threads
    def coefficients(self, ddf: str = "satterthwaite") -> pd.DataFrame:
        """Fixed-effects table: Estimate, Std. Error, df, t value, Pr(>|t|) (lmerTest).

        ddf : "satterthwaite" (default), "kenward-roger", "residual" or "none".
        """
        from .inference.ftests import coefficients

        return coefficients(self, ddf=ddf)

    @with_blas_threads
    def anova(self, type: int = 3, ddf: str = "satterthwaite") -> pd.DataFrame:
        """lmerTest's F-test table per fixed-effects term.

        type : 3 (default), 2 or 1 (also "III", "II", "I"): lmerTest's type III, type II or
            sequential hypotheses. ddf : as ``coefficients``, or "lme4" for lme4's table.
        """
        from .inference.ftests import anova

        return anova(self, type=type, ddf=ddf)

    @with_blas_threads
    def contrast(self, L: Any, ddf: str = "satterthwaite") -> pd.DataFrame:
        """t test (one row of L) or F test (several rows) of L beta = 0."""
        from .inference.ftests import contrast

        return contrast(self, L, ddf=ddf)

    @with_blas_threads
    def ranova(self) -> pd.DataFrame:
        """lmerTest's ``ranova``: likelihood-ratio test for dropping each random term."""
        from .inference.lrt import ranova

        return ranova(self)

    @with_blas_threads
    def drop1(self) -> pd.DataFrame:
        """F tests (Satterthwaite) for dropping each fixed-effects term, as lmerTest's drop1."""
        from .inference.lrt import drop1

        return drop1(self)

    @with_blas_threads
    def confint(self, method: str = "wald", level: float = 0.95, **kwargs: Any) -> pd.DataFrame:
        """Confidence intervals with lme4's row names (.sig01, ..., .sigma, fixed effects).

        method : "wald", "profile" or "boot".
        """
        from .inference.intervals import confint

        return confint(self, method=method, level=level, **kwargs)

    @with_blas_threads
    def profile(self, **kwargs: Any):
        """Likelihood profile traces, as lme4's ``profile()`` (ML deviance)."""
        from .inference.profile import profile

        return profile(self, **kwargs)

    @with_blas_threads
    def simulate(self, nsim: int = 1, seed: Any = None) -> pd.DataFrame:
        """(n, nsim) responses simulated from the fitted model (new random effects and noise).

        Columns ``sim_1 .. sim_<nsim>`` (R's names), rows indexed as ``fitted()``.
        """
        from .inference.bootstrap import simulate

        return simulate(self, nsim=nsim, seed=seed)

    @with_blas_threads
    def bootstrap(self, nsim: int, func: Any = None, seed: Any = None, n_jobs: int = 1,
                  progress: bool | None = None):
        """Parametric bootstrap, as lme4's ``bootMer``."""
        from .inference.bootstrap import bootstrap

        return bootstrap(self, nsim=nsim, func=func, seed=seed, n_jobs=n_jobs, progress=progress)

    @with_blas_threads
    def influence(self, progress: bool | None = None):
        """Refits without each row in turn, as lme4's ``influence``; ``.cooks_distance()``."""
        from .inference.influence import influence

        return influence(self, progress=progress)

    @with_blas_threads
    def summary(self, ddf: str | None = "satterthwaite", correlation: bool | None = None):
        """A ``Summary`` whose ``str()`` reads like lme4's (lmerTest's with ddf) ``summary()``.

        Parameters
        ----------
        ddf : "satterthwaite" (default), "kenward-roger", "residual", or None for lme4's
            plain table without df and p-values.
        correlation : the correlation of the fixed effects, as lme4's
            ``print(summary(m), correlation = TRUE)``: None (default) shows it for at most
            12 fixed effects, True always, False never.
        """
        from .summary import Summary

        if ddf is None or ddf == "none":
            return Summary(self, correlation=correlation)
        method = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger",
                  "residual": "residual"}.get(ddf, ddf)
        return Summary(self, coef_table=self.coefficients(ddf=ddf), ddf_method=method,
                       correlation=correlation)

    def __str__(self) -> str:
        return str(self.summary())

    def __repr__(self) -> str:
        """One line: class, REML/ML, formula, observations and grouping factors."""
        from .rformat import deparse_formula

        k = len(self.ngroups)
        factors = f"{k} grouping factor" + ("" if k == 1 else "s")
        return (f"<{type(self).__name__} {'REML' if self.reml else 'ML'}: "
                f"{deparse_formula(self.formula)}, n={self.nobs}, {factors}>")

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()
