"""The linear mixed model with a residual structure: theta and phi -> objective.

``ResidualLinearMixedModel`` is a ``LinearMixedModel`` whose cross-products depend on phi:
A(phi) = M' R(phi)^-1 M and log|W| replaced by -log|R(phi)| (``algorithm.md`` §9b); sigma^2
still profiles out. Its parameter vector is theta followed by phi, so everything that works on
"the covariance parameters" of a fit (the optimizer, Satterthwaite's derivatives, ML refits)
takes phi along. A call with theta alone keeps the current phi.
"""
from __future__ import annotations

import numpy as np

from ..linalg.cholesky import BlockedCholesky
from ..lmm import LinearMixedModel
from ..start import initial_steps, moment_start
from .crossprod import ResidualCrossProducts


class ResidualLinearMixedModel(LinearMixedModel):
    """theta, phi -> objective (see module docstring).

    Parameters
    ----------
    pieces : the residual structure's cross-product pieces (``ResidualCrossProducts``).
    terms : random-effects terms, in the pieces' order.
    reml : REML criterion (True) or ML deviance (False).
    phi : (n_phi,) where to start; the layout's start when None.
    """

    def __init__(self, pieces: ResidualCrossProducts, terms, reml: bool = True,
                 phi: np.ndarray | None = None):
        self.pieces = pieces
        self.layout = pieces.layout
        self.phi_start, self.phi_steps = self.layout.start()
        self.phi = np.array(self.phi_start if phi is None else phi, dtype=float)
        super().__init__(pieces.at(self.phi), terms, reml)
        # One plan for every phi: refill swaps the values of A on the same pattern.
        self.L = BlockedCholesky(self.A, refillable=True)
        self.n_re = self.theta_lower.size
        self.theta_lower = np.concatenate([self.theta_lower, np.full(self.phi.size, -np.inf)])

    def param_names(self) -> list[str]:
        return super().param_names() + self.layout.names()

    def workspace(self, reml: bool) -> "ResidualLinearMixedModel":
        return ResidualLinearMixedModel(self.pieces, self.terms, reml, phi=self.phi)

    def set_phi(self, phi: np.ndarray) -> None:
        """Refill A and the factor's values at phi (nothing when phi is the current one)."""
        phi = np.asarray(phi, dtype=float)
        if np.array_equal(phi, self.phi):
            return
        try:
            A = self.pieces.at(phi)
        except FloatingPointError as err:
            raise np.linalg.LinAlgError(str(err)) from err
        self.theta_in_L = None
        self.A, self.phi = A, phi.copy()
        self.L.refill(A)

    def objective(self, theta: np.ndarray, reml: bool | None = None) -> float:
        """Objective at (theta, phi) (n_theta,), or at theta (n_re,) with the current phi."""
        theta = np.array(theta, dtype=float)
        if theta.size == self.n_theta:
            self.set_phi(theta[self.n_re:])
        value = super().objective(theta[:self.n_re], reml)
        self.theta_in_L = np.concatenate([theta[:self.n_re], self.phi])
        return value

    def fit(self, theta0: np.ndarray | None = None, check_convergence: bool | None = None,
            initial_step: np.ndarray | None = None):
        """Optimize (theta, phi) jointly from the moment start of theta at the layout's phi
        (or from ``theta0``, of length n_theta, or n_re with the current phi)."""
        if theta0 is None:
            self.set_phi(self.phi_start)
            start = moment_start(self.A, self.terms)
            theta0 = np.concatenate([start, self.phi])
            if initial_step is None:
                initial_step = np.concatenate([initial_steps(start, self.terms), self.phi_steps])
        else:
            theta0 = np.asarray(theta0, dtype=float)
            if theta0.size == self.n_re:
                theta0 = np.concatenate([theta0, self.phi])
        return super().fit(theta0=theta0, check_convergence=check_convergence,
                           initial_step=initial_step)

    def natural(self, theta: np.ndarray):
        """(correlation parameter, variance parameters) on nlme's scale, each a Series or
        None, at the phi part of theta (n_theta,)."""
        return self.layout.natural(np.asarray(theta, dtype=float)[self.n_re:])

    def row_sd_scale(self, theta: np.ndarray) -> np.ndarray:
        """(n,) the variance function's SD multiplier lambda_r of each row (ones without)."""
        var = self.layout.var
        log_lam = var.log_lambda(np.asarray(theta, dtype=float)[self.n_re + self.layout.n_cor:])
        return np.exp(log_lam)[var.codes]

    def normalize(self, e: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """nlme's normalized residuals from e = sqrt(w) (y - fitted) / (sigma lambda), (n,)."""
        return self.layout.normalize(e, np.asarray(theta, dtype=float)[self.n_re:])
