"""The linear mixed model workspace: theta -> objective, and the fit.

``LinearMixedModel`` owns the cross-products A and the factor L. ``objective(theta)`` refills L
from A and reads the profiled deviance or REML criterion off it: it never touches the data.
``fit()`` runs the optimizer and returns the optimizer's summary; ``results.LmerResult``
freezes everything a user reads afterwards.
"""
from __future__ import annotations

import numpy as np

from . import _threads
from ._threads import with_blas_threads
from .crossprod import CrossProducts
from .errors import warn_user
from .linalg.cholesky import BlockedCholesky
from .objective import profiled_objective
from .optimize import OptSummary, minimize_theta, polish_and_check
from .start import initial_steps, moment_start
from .terms import TermSpec, specs, theta_slices


class ConvergenceWarning(UserWarning):
    """The optimizer's result failed lme4's convergence checks."""


class SingularFitWarning(UserWarning):
    """A variance component is (close to) zero: lme4's 'boundary (singular) fit'."""


def singular_message(glmm: bool = False) -> str:
    """lme4's singular-fit message, pointing at the help of the result class users hold."""
    kind = "GlmerResult" if glmm else "LmerResult"
    return f"boundary (singular) fit: see is_singular in help(mixedmodels.{kind})"


def warn_boundary(response: str, exact: bool, singular: bool) -> None:
    """The warning after an lmer fit on the boundary: a response that X reproduces exactly
    (every variance 0, infinite log-likelihood), else lme4's singular-fit message."""
    if exact:
        warn_user(f"boundary (singular) fit: the fixed effects reproduce the response "
                  f"'{response}' exactly (residual SD 0); every variance component is "
                  f"estimated as 0 and the log-likelihood is infinite", SingularFitWarning)
    elif singular:
        warn_user(singular_message(), SingularFitWarning)


SINGULAR_TOL = 1e-4
# lme4 computes finite-difference derivatives at the optimum of every fit (2 n_theta^2 + 1
# evaluations) to check convergence; we do it, and the Newton polish it allows, while
# evaluations are cheap: fewer rows than this and fewer theta entries than CHECK_MAX_THETA.
# From the moment start the polish gains at most 1.2e-9 on the larger reference fits.
CHECK_MAX_N = 10_000
CHECK_MAX_THETA = 10


class LinearMixedModel:
    """theta -> objective on fixed cross-products (``algorithm.md`` sections 3, 6 and 7).

    Parameters
    ----------
    A : the cross-product blocks, for ``terms`` in the same order.
    terms : the random-effects terms of A, in the same order; the model keeps their row-free
        specifications (``TermSpec``) only.
    reml : optimize the REML criterion (True) or the ML deviance (False).
    """

    def __init__(self, A: CrossProducts, terms: tuple[TermSpec, ...], reml: bool = True):
        self.A = A
        self.terms = specs(terms)
        self.reml = bool(reml)
        self.L = BlockedCholesky(A)
        self.slices = theta_slices(list(self.terms))
        self.theta_lower = np.concatenate([t.theta_lower() for t in self.terms])
        self._fail_value = None
        self.n_evals = 0
        self.theta_in_L = None  # the theta the workspace L was last filled for

    @property
    def n_theta(self) -> int:
        return self.theta_lower.size

    def param_names(self) -> list[str]:
        """Names of the parameter vector's entries (lme4's theta names)."""
        return [name for t in self.terms for name in t.theta_names()]

    def workspace(self, reml: bool) -> "LinearMixedModel":
        """A new workspace on the same cross-products (and residual structure), REML or ML
        (refits that must not touch this one's factor)."""
        return LinearMixedModel(self.A, self.terms, reml=reml)

    def templates(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per-term lower-triangular T_i (p_i, p_i) from theta (n_theta,), by each term's
        covariance template."""
        return [t.covariance.template(theta[s]) for t, s in zip(self.terms, self.slices)]

    def objective(self, theta: np.ndarray, reml: bool | None = None) -> float:
        """Profiled deviance (ML) or REML criterion at theta; refills the workspace L."""
        reml = self.reml if reml is None else reml
        if not _threads.active():
            with _threads.blas_threads():
                return self.objective(theta, reml)
        theta = np.array(theta, dtype=float)
        self.theta_in_L = None
        self.L.update(self.templates(theta))
        self.theta_in_L = theta
        return profiled_objective(self.L.ldL2(), self.L.ldRX2(), self.L.pwrss(), self.A.n,
                                  self.A.p, self.A.sum_log_w, reml)

    def _safe_objective(self, theta: np.ndarray) -> float:
        """The objective for the optimizer: a failed factorization returns the start value.

        An infinite value would wreck BOBYQA's quadratic model (MixedModels.jl does the same).
        """
        self.n_evals += 1
        try:
            value = self.objective(theta)
        except np.linalg.LinAlgError:
            return self._fail_value if self._fail_value is not None else 1e300
        if self._fail_value is None and np.isfinite(value):
            self._fail_value = value
        return value if np.isfinite(value) else (self._fail_value or 1e300)

    @with_blas_threads
    def fit(self, theta0: np.ndarray | None = None, check_convergence: bool | None = None,
            initial_step: np.ndarray | None = None) -> OptSummary:
        """Optimize theta; leave L at the optimum; warn as lme4 does. Returns the OptSummary.

        Without ``theta0`` the fit starts from moment estimates with first steps scaled to them
        (``start.py``); with it, from theta0 and NLopt's default first steps unless
        ``initial_step`` (n_theta,) is given.
        """
        if theta0 is None:
            start = moment_start(self.A, self.terms)
            if initial_step is None:
                initial_step = initial_steps(start, self.terms)
        else:
            start = np.asarray(theta0, dtype=float)
        summary = minimize_theta(self._safe_objective, start, self.theta_lower,
                                 initial_step=initial_step)
        if check_convergence is None:
            check_convergence = self.A.n < CHECK_MAX_N and self.n_theta < CHECK_MAX_THETA
        if check_convergence:
            before = self.n_evals
            theta, fmin, messages = polish_and_check(self._safe_objective, summary.theta,
                                                     summary.fmin, self.theta_lower)
            summary.theta, summary.fmin = theta, fmin
            summary.warnings += messages
            summary.feval += self.n_evals - before
        self.objective(summary.theta)
        for message in summary.warnings:
            warn_user(message, ConvergenceWarning)
        return summary

    def exact_fit(self) -> OptSummary:
        """The fit of a response that X reproduces exactly (``checks.fits_exactly``).

        The residual SD is 0 and the objective is -inf at every theta, so no optimizer runs:
        theta = 0, every variance component 0 (lme4 reports sigma = 0 and the variances as 0
        too, at an arbitrary theta). Leaves L at theta = 0.
        """
        theta = np.zeros(self.n_theta)
        self.objective(theta)
        # The response's pivot of L is sqrt(pwrss): exactly 0 here, round-off otherwise.
        self.L.xx[-1, -1] = 0.0
        return OptSummary(theta0=theta.copy(), lower=self.theta_lower, theta=theta,
                          fmin=-np.inf, feval=1, return_code="EXACT_FIT")

    def block_description(self) -> str:
        """A table of the storage type of every block of L (MixedModels.jl's BlockDescription).

        Rows are the terms in their fitting order (then the fixed-effects block), columns the
        block columns; "tiles" is block diagonal (l, p, p), "dense" filled in, "sparse" CSR.
        """
        L = self.L
        names = [f"{t.group_name} ({t.n_levels}x{t.p})" for t in self.terms] + ["[X y]"]
        width = max(len(n) for n in names) + 2
        heads = [t.group_name for t in self.terms] + ["[X y]"]
        lines = [" " * width + "".join(f"{h[:11]:>12}" for h in heads)]
        for i, name in enumerate(names):
            cells = []
            for j in range(i + 1):
                if i == len(self.terms):
                    kind = "dense"
                elif i == j:
                    kind = "dense" if L.diag_dense[j] else "tiles"
                else:
                    kind = "dense" if L.off_dense[(i, j)] else "sparse"
                cells.append(f"{kind:>12}")
            lines.append(f"{name:<{width}}" + "".join(cells))
        return "\n".join(lines)

    def is_singular(self, theta: np.ndarray, tol: float = SINGULAR_TOL) -> bool:
        """lme4's ``isSingular``: a diagonal entry of some template T_i within tol of zero."""
        theta = np.asarray(theta, dtype=float)
        return any(t.covariance.is_singular(theta[s], tol)
                   for t, s in zip(self.terms, self.slices))
