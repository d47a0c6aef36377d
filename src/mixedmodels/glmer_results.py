"""The frozen result of a ``glmer`` fit: estimates, lme4's tables and row-level outputs.

As ``LmerResult``, it holds the row-free description of its design (``info``) and the rows
it was fitted on (``rows``).

Everything a user reads is computed once at the optimum (``GlmerResult.from_fit``); the
conditional variances are computed on first use after one PIRLS run at this result's
(theta, beta), so later evaluations of the shared workspace (profiles, refits) cannot move them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ._threads import with_blas_threads
from .errors import warn_user
from .formula.design import Design
from .glmm import GeneralizedLinearMixedModel, GlmmFit
from .model_info import ModelInfo
from .results_common import RandomEffectsTables, frozen, readonly, varcorr_frame
from .terms import specs


class VcovWarning(UserWarning):
    """The Hessian-based covariance of the fixed effects was unusable (lme4's fallback)."""


RESIDUAL_TYPES = ("deviance", "pearson", "response", "working", "quantile")


@dataclass(frozen=True, eq=False)
class GlmerResult(RandomEffectsTables):
    """A fitted generalized linear mixed model (immutable).

    Shapes: n rows, p fixed effects, term j with l_j levels and p_j columns. ``b[j]`` is
    (l_j, p_j); ``eta`` and ``mu`` (n,) are the linear predictor and the fitted means at the
    conditional modes; ``hessian`` (k, k) is the finite-difference Hessian of the deviance
    over (theta, beta[, log shape]) at the optimum, or None. ``info`` is the row-free
    description of the design, ``terms`` its random-effects term specifications, ``rows`` the
    rows the model was fitted on (a ``Design``).
    """

    formula: str
    family: Any
    nagq: int
    info: ModelInfo = field(repr=False)
    rows: Design = field(repr=False)
    terms: tuple = field(repr=False)
    theta: np.ndarray = field(repr=False)
    beta: np.ndarray = field(repr=False)
    nb_theta: float | None
    objective: float
    deviance: float
    sigma: float
    u: tuple = field(repr=False)
    b: tuple = field(repr=False)
    eta: np.ndarray = field(repr=False)
    mu: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    prior_weights: np.ndarray = field(repr=False)
    RX_inv: np.ndarray = field(repr=False)
    hessian: np.ndarray | None = field(repr=False)
    gradient: np.ndarray | None = field(repr=False)
    fit: GlmmFit = field(repr=False)
    model: GeneralizedLinearMixedModel = field(repr=False)
    is_singular: bool = False

    reml = False            # what code shared with LMMs asks; GLMMs are ML fits

    @classmethod
    def from_fit(cls, model: GeneralizedLinearMixedModel, info: ModelInfo, rows: Design,
                 fit: GlmmFit, formula: str) -> "GlmerResult":
        ws = model.ws
        fam = model.family(fit.nb_theta)
        state = fit.state
        n = ws.n
        if fam.has_dispersion:
            # lme4's sigma for a GLMM with a scale: sqrt((sum of squared Pearson residuals
            # + ||u||^2) / n), its "sigmaML" of the last PIRLS step.
            pearson2 = ws.prior_weights * (ws.y - state.mu) ** 2 / fam.variance(state.mu)
            sigma = math.sqrt((float(np.sum(pearson2)) + state.ussq) / n)
        else:
            sigma = 1.0
        L = ws.factor_with_x(state, fit.theta, fam)
        p = ws.X.shape[1]
        RX_inv = np.linalg.inv(L.xx[:p, :p]) if p else np.zeros((0, 0))
        return cls(formula=formula, family=fam, nagq=model.nagq, info=info, rows=rows,
                   terms=specs(ws.terms), theta=frozen(fit.theta), beta=frozen(fit.beta),
                   nb_theta=fit.nb_theta, objective=float(fit.objective),
                   deviance=float(state.dev), sigma=sigma,
                   u=tuple(frozen(x) for x in state.u), b=tuple(frozen(x) for x in state.b),
                   # n-length arrays nothing else writes to: read-only views, no copies
                   eta=readonly(state.eta), mu=readonly(state.mu), y=readonly(ws.y),
                   prior_weights=readonly(ws.prior_weights), RX_inv=frozen(RX_inv),
                   hessian=None if fit.hessian is None else frozen(fit.hessian),
                   gradient=None if fit.gradient is None else frozen(fit.gradient),
                   fit=fit, model=model, is_singular=model.is_singular(fit.theta))

    @with_blas_threads
    def at_params(self, theta: np.ndarray, beta: np.ndarray,
                  nb_theta: float | None = None) -> "GlmerResult":
        """The same model evaluated at other (theta, beta[, negative binomial shape]):
        conditional modes, fitted values and tables there (no derivatives). Used to compare
        with another program's optimum."""
        from .glmm import GlmmFit

        theta = np.atleast_1d(np.asarray(theta, dtype=float))
        beta = np.atleast_1d(np.asarray(beta, dtype=float))
        params = np.concatenate([theta, beta])
        if self.nb_theta is not None:
            nb_theta = self.nb_theta if nb_theta is None else float(nb_theta)
            params = np.append(params, math.log(nb_theta))
        value, state = self.model.evaluate(params)
        point = GlmmFit(theta=theta, beta=beta, nb_theta=nb_theta, objective=value,
                        state=state, stage1=self.fit.stage1, stage2=None)
        return type(self).from_fit(self.model, self.info, self.rows, point, self.formula)

    # ---- scalars -------------------------------------------------------------------
    @property
    def df(self) -> int:
        """lme4's logLik df: fixed effects + theta (+ the scale, + the negative binomial shape)."""
        return (self.beta.size + self.n_theta + int(self.family.has_dispersion)
                + int(self.nb_theta is not None))

    @property
    def df_residual(self) -> int:
        return self.nobs - self.df

    @property
    def loglik(self) -> float:
        """The marginal log-likelihood (Laplace or adaptive Gauss-Hermite), normalized with the
        family's constants: for nagq > 1 it is the exact integral's approximation, not lme4
        1.1's value, which drops the binomial's saturated log-likelihood (lme4 issue #161)."""
        return -self.objective / 2.0

    @property
    def minus2loglik(self) -> float:
        return self.objective

    @property
    def fixef(self) -> pd.Series:
        return pd.Series(np.array(self.beta), index=list(self.info.x_names), name="fixef")

    @property
    def theta_names(self) -> list[str]:
        return [name for t in self.terms for name in t.theta_names()]


    @property
    def family_name(self) -> str:
        return self.family.name

    @property
    def optsum(self):
        """The optimizer summary of the last stage (its warnings show in the summary)."""
        summary = self.fit.stage2 or self.fit.stage1
        summary.warnings = list(self.fit.warnings)
        return summary

    # ---- covariance of the fixed effects ------------------------------------------
    def vcov_rx(self) -> pd.DataFrame:
        """sigma^2 (R_X' R_X)^{-1} from the PIRLS factor (lme4's ``use.hessian = FALSE``)."""
        V = self.sigma**2 * (self.RX_inv.T @ self.RX_inv)
        names = list(self.info.x_names)
        return pd.DataFrame(V, index=names, columns=names)

    def vcov_hessian(self) -> pd.DataFrame | None:
        """2 H^{-1} restricted to beta, from the finite-difference Hessian H of the deviance
        over (theta, beta) (lme4's default); None when it is missing or not positive definite.
        A negative binomial's shape is held fixed, as lme4 holds it in its last fit."""
        if self.hessian is None:
            return None
        k, p = self.n_theta, self.beta.size
        H = np.array(self.hessian[:k + p, :k + p])
        if not np.all(np.isfinite(H)):
            return None
        try:
            V = 2.0 * np.linalg.inv(H)[k:, k:]
        except np.linalg.LinAlgError:
            return None
        V = (V + V.T) / 2.0
        if p and np.linalg.eigvalsh(V).min() <= 0:
            return None
        names = list(self.info.x_names)
        return pd.DataFrame(V, index=names, columns=names)

    @property
    def vcov(self) -> pd.DataFrame:
        """lme4's ``vcov``: from the Hessian when it was computed and is positive definite,
        else from R_X (``glmer`` warns once at the fit when the Hessian is unusable)."""
        V = self.vcov_hessian()
        return V if V is not None else self.vcov_rx()

    def warn_vcov(self) -> None:
        """lme4's warning when a computed Hessian cannot give the covariance of beta."""
        if self.hessian is not None and self.vcov_hessian() is None:
            warn_user("the variance-covariance matrix from the finite-difference Hessian is not "
                      "positive definite or contains NA values: falling back to the one "
                      "estimated from R_X", VcovWarning)

    @property
    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=list(self.info.x_names))

    def coefficients(self) -> pd.DataFrame:
        """The fixed-effects table of lme4's glmer summary: Estimate, Std. Error, z value (t for
        families with a scale), Pr(>|z|) from the normal distribution."""
        from scipy import stats

        est, se = self.beta, self.se.to_numpy()
        stat = est / se
        name = "t value" if self.family.has_dispersion else "z value"
        return pd.DataFrame({"Estimate": est, "Std. Error": se, name: stat,
                             "Pr(>|z|)": 2.0 * stats.norm.sf(np.abs(stat))},
                            index=list(self.info.x_names))

    # ---- random effects ------------------------------------------------------------
    def covariance_matrices(self) -> list[np.ndarray]:
        """Per term Sigma_j = sigma^2 T_j T_j' (sigma = 1 without a scale), (p_j, p_j)."""
        return [self.sigma**2 * (T @ T.T) for T in self.model.ws.templates(self.theta)]

    def varcorr(self) -> pd.DataFrame:
        """lme4's ``as.data.frame(VarCorr(m))`` on the link scale; a Residual row (the square
        root of the dispersion) only for families with a scale (Gamma, inverse Gaussian)."""
        return varcorr_frame(self.terms, self.covariance_matrices(),
                             self.sigma if self.family.has_dispersion else None)

    @cached_property
    @with_blas_threads
    def cond_var(self) -> tuple[np.ndarray, ...]:
        """Per term (l_j, p_j, p_j): lme4's conditional variances sigma^2 T (L L')^{-1}_jj T'
        with L at the working weights of the conditional modes."""
        ws = self.model.ws
        ws.pirls(np.array(self.theta), np.array(self.beta), self.family)
        L = ws.factor
        return tuple(frozen(self.sigma**2 * np.matmul(T, np.matmul(L.cond_var_tiles(j), T.T)))
                     for j, T in enumerate(ws.templates(self.theta)))

    def icc(self) -> pd.Series:
        """Latent-scale ICC of each grouping factor's random intercept for binomial models:
        var_g / (sum of intercept variances + the link's latent variance), pi^2/3 for logit
        and 1 for probit (Nakagawa and Schielzeth). Other families have no latent residual."""
        latent = {"logit": math.pi**2 / 3.0, "probit": 1.0}
        if self.family.name != "binomial" or self.family.link.name not in latent:
            raise ValueError("the latent-scale ICC is defined for binomial models with a logit "
                             f"or probit link, not {self.family.name} ({self.family.link.name})")
        shares: dict[str, float] = {}
        for t, S in zip(self.terms, self.covariance_matrices()):
            if "(Intercept)" in t.column_names:
                i = t.column_names.index("(Intercept)")
                shares[t.group_name] = shares.get(t.group_name, 0.0) + S[i, i]
        total = sum(shares.values()) + latent[self.family.link.name]
        return pd.Series({g: v / total for g, v in shares.items()}, name="icc")

    # ---- row-level outputs ---------------------------------------------------------
    def _series(self, values: np.ndarray, name: str) -> pd.Series:
        return pd.Series(np.array(values), index=self.rows.row_index, name=name)

    def fitted(self) -> pd.Series:
        """(n,) fitted means on the response scale (proportions for binomial trials)."""
        return self._series(self.mu, "fitted")

    def linear_predictor(self) -> pd.Series:
        """(n,) eta = X beta + Z b + offset."""
        return self._series(self.eta, "eta")

    def residuals(self, type: str = "deviance", scaled: bool = False, nsim: int = 250,
                  seed: Any = None) -> pd.Series:
        """(n,) residuals as lme4's ``residuals.glmerMod`` (default "deviance"):

        "deviance" sign(y - mu) sqrt(d_r), "pearson" (y - mu) sqrt(w / V(mu)) (divided by
        sigma when ``scaled``), "response" y - mu, "working" (y - mu) / (dmu/deta), and
        "quantile" the simulation-based residuals of R's DHARMa (``nsim`` simulations,
        ``seed``; see ``simulated_residuals``).
        """
        fam, y, mu, w = self.family, self.y, self.mu, self.prior_weights
        if type == "response":
            r = y - mu
        elif type == "pearson":
            r = (y - mu) * np.sqrt(w / fam.variance(mu))
            if scaled:
                r = r / self.sigma
        elif type == "deviance":
            r = np.sign(y - mu) * np.sqrt(np.maximum(fam.dev_resids(y, mu, w), 0.0))
        elif type == "working":
            r = (y - mu) / fam.link.mu_eta(self.eta)
        elif type == "quantile":
            return self.simulated_residuals(nsim=nsim, seed=seed).residuals
        else:
            raise ValueError(f"residual type must be one of {RESIDUAL_TYPES}, not {type!r}")
        return self._series(r, f"{type} residuals")

    def predict(self, newdata: Any = None, type: str = "link", re_form: Any = None,
                allow_new_levels: bool = False) -> pd.Series:
        """Predictions on the link (default, as lme4) or response scale.

        re_form : None for every random-effects term, ``"~0"`` / NaN / False for population
            level, or a formula naming the grouping factors to keep.
        """
        from .predict import predict

        if type not in ("link", "response"):
            raise ValueError(f"type must be 'link' or 'response', not {type!r}")
        if newdata is None and re_form is None:
            eta = np.array(self.eta)
            index = self.rows.row_index
        else:
            eta = np.asarray(predict(self, newdata, re_form=re_form,
                                     allow_new_levels=allow_new_levels), dtype=float)
            index = self.rows.row_index if newdata is None else getattr(
                newdata, "index", pd.RangeIndex(len(eta)))
        values = eta if type == "link" else self.family.link.linkinv(eta)
        return pd.Series(values, index=index, name=f"predict ({type})")

    def simulate(self, nsim: int = 1, seed: Any = None, use_u: bool = False) -> pd.DataFrame:
        """(n, nsim) responses simulated from the fitted model, columns sim_1..sim_nsim.

        New random effects for every simulation (lme4's default ``use.u = FALSE``), or the
        conditional modes with ``use_u=True``; binomial responses are proportions of the trials.
        """
        from .inference.glmm_simulate import simulate

        return simulate(self, nsim=nsim, seed=seed, use_u=use_u)

    def simulated_residuals(self, nsim: int = 250, seed: Any = None):
        """DHARMa's simulation-based quantile residuals with their tests and plots."""
        from .diagnostics import simulated_residuals

        return simulated_residuals(self, nsim=nsim, seed=seed)

    # ---- inference -----------------------------------------------------------------
    @with_blas_threads
    def confint(self, method: str = "wald", level: float = 0.95, **kwargs: Any) -> pd.DataFrame:
        """Confidence intervals with lme4's row names (.sig01, ..., fixed effects).

        method : "wald" (default), "profile" or "boot"; ``parm``, ``old_names`` and the
        method's own arguments (``nsim``, ``seed``, ``n_jobs``, ...) as
        ``mixedmodels.inference.glmm_intervals.confint``.
        """
        from .inference.glmm_intervals import confint

        return confint(self, method=method, level=level, **kwargs)

    @with_blas_threads
    def drop1(self, test: str = "Chisq") -> pd.DataFrame:
        """lme4's ``drop1(m, test = "Chisq")``: a likelihood-ratio test for dropping each
        fixed-effects term allowed by marginality, each reduced model refitted.

        Columns npar, AIC, LRT, Pr(Chi), rows ``<none>`` then the terms; ``test="none"``
        gives npar and AIC only.
        """
        from .inference.lrt import drop1_glmer

        return drop1_glmer(self, test=test)

    @with_blas_threads
    def profile(self, **kwargs: Any):
        """Likelihood profiles over each SD, correlation and fixed effect, as lme4's
        ``profile()`` (``which``, ``alphamax``, ``maxpts``, ``delta``, ``progress``, ...; see
        ``mixedmodels.inference.glmm_profile.profile``). ``.confint()`` gives the intervals."""
        from .inference.glmm_profile import profile

        return profile(self, **kwargs)

    @with_blas_threads
    def bootstrap(self, nsim: int, func: Any = None, seed: Any = None, n_jobs: int = 1,
                  progress: bool | None = None):
        """Parametric bootstrap, as lme4's ``bootMer``: ``nsim`` responses simulated from the
        fit, each refitted; ``func`` (default: SDs/correlations and fixed effects) of each
        refit. ``.confint()`` gives percentile intervals."""
        from .inference.glmm_bootstrap import bootstrap

        return bootstrap(self, nsim=nsim, func=func, seed=seed, n_jobs=n_jobs,
                         progress=progress)

    # ---- printing ------------------------------------------------------------------
    def summary(self, correlation: bool | None = None):
        """A summary whose ``str()`` reads like lme4's ``summary(glmer(...))``."""
        from .summary import GlmerSummary

        return GlmerSummary(self, coef_table=self.coefficients(), correlation=correlation)

    def __str__(self) -> str:
        return str(self.summary())

    def __repr__(self) -> str:
        return (f"<GlmerResult {self.family.name} ({self.family.link.name}): {self.formula}, "
                f"n={self.nobs}, logLik={self.loglik:.4f}>")

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()
