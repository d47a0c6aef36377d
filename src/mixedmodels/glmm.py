"""The GLMM fit: lme4's two stages on the PIRLS workspace, then derivatives at the optimum.

``algorithm.md`` sections 7 and 8, ``docs/theory.md``. Stage 1 optimizes theta with beta
inside PIRLS (lme4's nAGQ = 0, BOBYQA); stage 2 optimizes (theta, beta) jointly on the Laplace
or adaptive Gauss-Hermite deviance from stage 1's optimum, with beta whitened by stage 1's
R_X covariance, by Newton steps on central-difference derivatives (BOBYQA when a Hessian is
not positive definite). lme4 runs Nelder-Mead there and often stops short (its reference fits
end with gradients up to 1e-2); the last Hessian is the one lme4 computes for its convergence
check and its default ``vcov``. For the negative binomial the shape joins stage 2 on the log
scale, so ``glmer_nb`` is one joint optimum rather than lme4's alternation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import MixedModelsError, warn_user
from .lmm import ConvergenceWarning, SINGULAR_TOL
from .optimize import OptSummary, central_derivs, minimize_theta
from .pirls import GlmmWorkspace, PirlsError, PirlsState

GRAD_TOL = 2e-3            # lme4's check.conv.grad tolerance
# Steps of the central differences in stage 2's coordinates: lme4's deriv12 step 1e-4 for
# theta; 1e-3 for the whitened beta, in units of standard errors still far inside the
# quadratic region, and 100 times larger differences against PIRLS's round-off.
DERIV_DELTA = 1e-4
DERIV_DELTA_WHITENED = 1e-3


class SeparationWarning(UserWarning):
    """Fitted probabilities numerically 0 or 1: (quasi-)complete separation."""


@dataclass
class GlmmFit:
    """What the GLMM optimizer found.

    theta : (n_theta,); beta : (p,); nb_theta : negative binomial shape or None;
    objective : -2 log-likelihood (Laplace or AGQ, with the family's constants);
    state : PIRLS at the optimum; stage1 : the nAGQ = 0 optimizer summary; stage2 : the
    joint one (None when nagq = 0); gradient : (k,) finite-difference gradient at the optimum
    over (theta, beta[, log nb_theta]); hessian : (k, k) or None; warnings : messages.
    """

    theta: np.ndarray
    beta: np.ndarray
    nb_theta: float | None
    objective: float
    state: PirlsState
    stage1: OptSummary
    stage2: OptSummary | None
    gradient: np.ndarray | None = None
    hessian: np.ndarray | None = None
    warnings: list = field(default_factory=list)

    @property
    def feval(self) -> int:
        return self.stage1.feval + (self.stage2.feval if self.stage2 is not None else 0)


class GeneralizedLinearMixedModel:
    """theta, beta -> Laplace / AGQ deviance on one PIRLS workspace, and the two-stage fit.

    Parameters
    ----------
    workspace : the data, plan and factors (``pirls.GlmmWorkspace``); its family is used
        unless ``family_at`` is given (negative binomial: a function of the shape).
    nagq : 0 (beta inside PIRLS), 1 (Laplace) or more (adaptive Gauss-Hermite, one term).
    family_at : shape -> family, for a negative binomial with its shape estimated.
    """

    def __init__(self, workspace: GlmmWorkspace, nagq: int = 1, family_at=None,
                 nb_theta: float | None = None):
        self.ws = workspace
        self.nagq = int(nagq)
        self.family_at = family_at
        self.nb_theta = nb_theta
        self.theta_lower = np.concatenate([t.theta_lower() for t in workspace.terms])
        self.n_theta = self.theta_lower.size
        self.p = workspace.X.shape[1]
        self.n_evals = 0

    def family(self, nb_theta: float | None = None):
        if self.family_at is None:
            return self.ws.family
        return self.family_at(self.nb_theta if nb_theta is None else nb_theta)

    # ---- objectives ----------------------------------------------------------------
    def objective_fast(self, theta: np.ndarray) -> float:
        """lme4's nAGQ = 0 deviance at theta: PIRLS over (u, beta), then the Laplace formula."""
        fam = self.family()
        state = self.ws.pirls(np.asarray(theta, dtype=float), None, fam)
        return self.ws.laplace(state, fam)

    def split(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray, float | None]:
        """(theta, beta, nb shape) from the stage-2 parameter vector."""
        params = np.asarray(params, dtype=float)
        theta = params[:self.n_theta]
        beta = params[self.n_theta:self.n_theta + self.p]
        nb = math.exp(params[-1]) if self.family_at is not None else None
        return theta, beta, nb

    def evaluate(self, params: np.ndarray) -> tuple[float, PirlsState]:
        """The deviance at (theta, beta[, log shape]) and the PIRLS state there."""
        theta, beta, nb = self.split(params)
        fam = self.family(nb)
        state = self.ws.pirls(theta, beta, fam)
        value = self.ws.laplace(state, fam)
        if self.nagq > 1:
            value += self.ws.agq_correction(state, theta, self.nagq, fam)
        return value, state

    def objective(self, params: np.ndarray) -> float:
        return self.evaluate(params)[0]

    def _safe(self, f):
        """f for the optimizer: a failed PIRLS or factorization gives the worst value seen so
        far instead of an exception or infinity (which would break BOBYQA's model)."""
        worst = [None]

        def g(x):
            self.n_evals += 1
            try:
                # Trial points far from the optimum can overflow mu; they are rejected below.
                with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                    value = f(x)
            except (PirlsError, np.linalg.LinAlgError, FloatingPointError):
                value = math.nan
            if not np.isfinite(value):
                return worst[0] if worst[0] is not None else 1e300
            worst[0] = value if worst[0] is None else max(worst[0], value)
            return value
        return g

    # ---- the fit -------------------------------------------------------------------
    def fit(self, theta0: np.ndarray | None = None, beta0: np.ndarray | None = None,
            derivatives: bool = True) -> GlmmFit:
        """Stage 1 (theta with beta in PIRLS), then stage 2 (theta, beta[, log shape]) unless
        nagq = 0, then derivatives and lme4's convergence and boundary checks."""
        theta0 = (np.where(np.isfinite(self.theta_lower), 1.0, 0.0) if theta0 is None
                  else np.asarray(theta0, dtype=float))
        stage1 = minimize_theta(self._safe(self.objective_fast), theta0, self.theta_lower,
                                xtol_rel=1e-4)
        _check_finite_optimum(stage1)
        fam = self.family()
        state = self.ws.pirls(stage1.theta, None, fam)
        if self.nagq == 0:
            return GlmmFit(theta=stage1.theta, beta=state.beta, nb_theta=self.nb_theta,
                           objective=self.ws.laplace(state, fam), state=state, stage1=stage1,
                           stage2=None, warnings=list(stage1.warnings))
        # Stage 2 starts PIRLS from stage 1's modes. beta is optimized in whitened
        # coordinates, beta = beta_1 + C gamma with C C' the R_X covariance at stage 1's
        # optimum: the deviance is then about 2 |gamma|^2 + const in gamma, well scaled for
        # BOBYQA whatever the coding of X (correlated dummies, covariates in large units).
        self.ws.b_start = [bj.copy() for bj in state.b]
        beta_start = state.beta if beta0 is None else np.asarray(beta0, dtype=float)
        C = self._rx_inverse(state, stage1.theta, fam)
        k_theta = self.n_theta
        J = np.eye(k_theta + self.p + (self.family_at is not None))
        J[k_theta:k_theta + self.p, k_theta:k_theta + self.p] = C
        origin = np.concatenate([np.zeros(k_theta), beta_start])
        if self.family_at is not None:
            origin = np.append(origin, 0.0)

        def to_params(x: np.ndarray) -> np.ndarray:
            return origin + J @ x

        start = np.concatenate([stage1.theta, np.zeros(self.p)])
        lower = np.concatenate([self.theta_lower, np.full(self.p, -np.inf)])
        step = np.concatenate([np.maximum(0.25 * np.abs(stage1.theta), 0.05),
                               np.full(self.p, 0.5)])
        if self.family_at is not None:
            start = np.append(start, math.log(self.nb_theta))
            lower = np.append(lower, -np.inf)
            step = np.append(step, 0.25)
        objective = self._safe(lambda x: self.objective(to_params(x)))
        before = self.n_evals
        # Steps: lme4's 1e-4 on theta, relative to theta's scale when it is small (a
        # theta of 0.003, as with an inverse link, has curvatures of 1e7: an absolute step
        # makes the differences' truncation error swamp the gradient); 1e-3 on gamma.
        delta = np.full(start.size, DERIV_DELTA)
        delta[:k_theta] = DERIV_DELTA * np.clip(np.abs(stage1.theta), 0.1, 1.0)
        delta[k_theta:k_theta + self.p] = DERIV_DELTA_WHITENED
        newton = self._newton(objective, start, delta) if derivatives else None
        # Newton's point back on the bounds; None when it left the structure (a cs term with
        # SDs of both signs), and BOBYQA then takes over from its projection onto the bounds.
        rectified = None if newton is None else self._rectify(*newton[1:2], *newton[3:])
        gradient = hessian = None
        if newton is not None and newton[0] and rectified is not None:
            x, g_x, H_x = rectified
            value = newton[2]
            x, value = self._snap_to_boundary(objective, x, value, lower)
            stage2 = OptSummary(theta0=start, lower=lower, theta=x, fmin=value,
                                feval=self.n_evals - before, optimizer="newton",
                                return_code="NEWTON_DECREMENT")
            messages = _gradient_check(g_x, H_x)
        else:
            # From the best point Newton reached (or the start), with first steps on the scale
            # of each parameter; the result is never worse than that point.
            origin_x = (start if newton is None else
                        newton[1] if rectified is None else rectified[0])
            origin_x = np.maximum(origin_x, lower)
            step = np.concatenate([np.where(origin_x[:k_theta] > 0,
                                            0.25 * np.abs(origin_x[:k_theta]), 0.05),
                                   step[k_theta:]])
            stage2 = minimize_theta(objective, origin_x, lower, xtol_abs=1e-10, ftol_abs=0.0,
                                    xtol_rel=1e-5, initial_step=step)
            _check_finite_optimum(stage2)
            x, value = stage2.theta, stage2.fmin
            origin_value = objective(origin_x)
            if origin_value < value:
                x, value = origin_x, origin_value
            messages = list(stage2.warnings)
            if derivatives:
                x, value, g_x, H_x, msg = self._polish(objective, x, value, lower, delta)
                messages += msg
        if derivatives:
            # back to (theta, beta): g = J^{-T} g_x, H = J^{-T} H_x J^{-1}
            J_inv = np.linalg.inv(J)
            gradient = J_inv.T @ g_x
            hessian = J_inv.T @ H_x @ J_inv
        params = to_params(x)
        stage2.theta = params
        theta, beta, nb = self.split(params)
        if nb is not None:
            self.nb_theta = nb
            self.ws.family = self.family(nb)
        value, state = self.evaluate(params)
        return GlmmFit(theta=theta, beta=beta, nb_theta=nb, objective=value, state=state,
                       stage1=stage1, stage2=stage2, gradient=gradient, hessian=hessian,
                       warnings=messages)

    def _newton(self, f, x: np.ndarray, delta: np.ndarray, max_iter: int = 12):
        """Newton's method on f from x with central-difference derivatives.

        Stage 2 starts in whitened coordinates next to the optimum, where the deviance is close
        to quadratic: a few Newton steps (k (k + 1) evaluations each) beat BOBYQA's model
        building, and the last Hessian is the one lme4's vcov needs. The bounded theta are
        unconstrained here (for lme4's terms the deviance is even in each of them;
        ``_rectify`` brings them back onto their bounds afterwards). Stops after the full step
        taken where the Newton decrement g' H^{-1} g was below 1e-6.

        Returns (converged, x, f(x), gradient at x, Hessian at the point before): converged is
        False when a Hessian is not positive definite or no step lowers f while the decrement
        is still large; x is then the best point reached (the caller runs BOBYQA from it).
        """
        fx = f(x)
        for _ in range(max_iter):
            g, H = central_derivs(f, x, fx, delta=delta)
            try:
                chol = np.linalg.cholesky(H)
            except np.linalg.LinAlgError:
                return False, x, fx, g, H
            step = -np.linalg.solve(chol.T, np.linalg.solve(chol, g))
            decrement = float(-g @ step)
            t = 1.0
            for _ in range(10):
                trial = f(x + t * step)
                if trial < fx:
                    break
                t /= 2.0
            else:
                # No step lowers f: what is left of the decrement is noise when it is small.
                return decrement < 1e-6, x, fx, g, H
            x, fx = x + t * step, trial
            if decrement < 1e-6 and t == 1.0:
                # Quadratic convergence: this last full step leaves a gap of about
                # decrement^2; the Hessian of the previous point serves lme4's vcov, and the
                # gradient is taken again where we stop.
                return True, x, fx, central_derivs_gradient(f, x, delta), H
        return False, x, fx, g, H

    @staticmethod
    def _snap_to_boundary(f, x: np.ndarray, value: float, lower: np.ndarray,
                          tol: float = 1e-5) -> tuple[np.ndarray, float]:
        """lme4's check.boundary: a parameter within tol of its lower bound moves onto it when
        the deviance is not worse (a singular fit reports theta = 0, as lme4's)."""
        for i in np.flatnonzero((x - lower < tol) & (x != lower)):
            trial = x.copy()
            trial[i] = lower[i]
            trial_value = f(trial)
            if trial_value <= value:
                x, value = trial, trial_value
        return x, value

    def _rectify(self, x: np.ndarray, g: np.ndarray, H: np.ndarray):
        """Flip the signs that each term's covariance template names (``rectify``: for lme4's
        terms, every template column whose diagonal entry is negative) so that x is within
        its bounds with every T T' unchanged, carrying the derivatives along (MixedModels.jl's
        ``rectify!``). x, g (k,), H (k, k); None when a term's point has no such image."""
        sign = np.ones(x.size)
        start = 0
        for t in self.ws.terms:
            block = slice(start, start + t.n_theta)
            signs = t.covariance.rectify(x[block])
            if signs is None:
                return None
            sign[block] = signs
            start += t.n_theta
        return x * sign, g * sign, H * np.outer(sign, sign)

    def _rx_inverse(self, state: PirlsState, theta: np.ndarray, fam) -> np.ndarray:
        """(p, p) R_X^{-1} at the working weights of ``state``: its product with its transpose
        is the R_X covariance of beta (without the scale)."""
        L = self.ws.factor_with_x(state, theta, fam)
        p = self.p
        return np.linalg.inv(L.xx[:p, :p]).T if p else np.zeros((0, 0))

    def _polish(self, f, params, value, lower, delta):
        """Central-difference gradient and Hessian of f at the optimum (``central_derivs``),
        one Newton step on the free parameters kept only if it lowers f, and lme4's check of
        the scaled gradient. Parameters on their bound are differenced too (the deviance is
        even in each diagonal theta, so points below 0 are valid) but not moved.
        Returns (params, value, gradient, hessian, messages)."""
        free = np.flatnonzero(params > lower)
        grad_all, hess = central_derivs(f, params, value, delta=delta)
        gradient = grad_all
        grad, H_free = grad_all[free], hess[np.ix_(free, free)]
        try:
            chol = np.linalg.cholesky(H_free)
        except np.linalg.LinAlgError:
            return params, value, gradient, hess, [
                "Model failed to converge: the Hessian at the optimum is not positive definite"]
        step = params.copy()
        step[free] -= np.linalg.solve(chol.T, np.linalg.solve(chol, grad))
        if np.all(step >= lower):
            new = f(step)
            if new < value:
                params, value = step, new
                grad_new = central_derivs_gradient(f_free_at(f, params, free), params[free],
                                                   delta[free])
                gradient = gradient.copy()
                gradient[free] = grad = grad_new
        return params, value, gradient, hess, _gradient_check(grad, H_free)

    def is_singular(self, theta: np.ndarray, tol: float = SINGULAR_TOL) -> bool:
        """lme4's ``isSingular``: a diagonal entry of some term's T below tol (for lme4's
        terms, a diagonal theta; for cs and ar1 also a correlation at its bound)."""
        theta, start, out = np.asarray(theta, dtype=float), 0, False
        for t in self.ws.terms:
            out = out or t.covariance.is_singular(theta[start:start + t.n_theta], tol)
            start += t.n_theta
        return bool(out)


def central_derivs_gradient(f, x: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """(k,) central-difference gradient with one step per coordinate."""
    grad = np.empty(x.size)
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = delta[i]
        grad[i] = (f(x + e) - f(x - e)) / (2 * delta[i])
    return grad


def _gradient_check(grad: np.ndarray, hess: np.ndarray) -> list[str]:
    """lme4's check.conv.grad: the largest of min(|H^{-1} g|, |g|) against GRAD_TOL."""
    if not grad.size:
        return []
    scaled = np.linalg.solve(hess, grad)
    worst = float(np.max(np.minimum(np.abs(scaled), np.abs(grad))))
    if worst > GRAD_TOL:
        return [f"Model failed to converge with max|grad| = {worst:.6g} (tol = {GRAD_TOL}, "
                f"component {int(np.argmax(np.abs(grad)))})"]
    return []


def _check_finite_optimum(summary: OptSummary) -> None:
    """No estimates from an optimizer that never saw a finite deviance."""
    if not np.isfinite(summary.fmin) or summary.fmin >= 1e299:
        raise PirlsError("the deviance is not finite at any parameter value tried (PIRLS "
                         "failed everywhere; for count families a non-integer response gives "
                         "an infinite log-likelihood, as in R)")


def f_free_at(f, params: np.ndarray, free: np.ndarray):
    """f as a function of the free entries of params (the others held)."""
    def g(x):
        full = params.copy()
        full[free] = x
        return f(full)
    return g


def warn_fit(fit: GlmmFit, singular: bool) -> None:
    """lme4's messages after a fit: convergence, then a singular fit (at the user's line)."""
    from .lmm import SingularFitWarning, singular_message

    for message in fit.warnings:
        warn_user(message, ConvergenceWarning)
    if singular:
        warn_user(singular_message(glmm=True), SingularFitWarning)


def check_separation(family, state: PirlsState, y: np.ndarray) -> None:
    """Warn, as R's glm does, when fitted binomial probabilities are numerically 0 or 1."""
    if family.name != "binomial":
        return
    eps = 10 * np.finfo(float).eps
    if np.any((state.mu < eps) | (state.mu > 1 - eps)):
        warn_user("fitted probabilities numerically 0 or 1 occurred: (quasi-)complete "
                  "separation; the estimates of the fixed effects concerned may be infinite "
                  "and their standard errors meaningless", SeparationWarning)


def check_nagq(nagq: int, terms, family) -> None:
    """lme4's rule for nAGQ > 1 (one scalar term), extended to one term with up to 3 columns."""
    if not isinstance(nagq, (int, np.integer)) or isinstance(nagq, bool) or nagq < 0:
        raise MixedModelsError(f"nagq must be a whole number >= 0, not {nagq!r}")
    if nagq > 100:
        raise MixedModelsError(f"nagq = {nagq} is too large (at most 100, as lme4)")
    if nagq <= 1:
        return
    if len(terms) != 1 or terms[0].p > 3:
        raise MixedModelsError(
            f"nagq = {nagq} (adaptive Gauss-Hermite) needs a single random-effects term with "
            f"at most 3 columns; this model has {len(terms)} term(s) "
            f"({', '.join(f'{t.p} column(s) on {t.group_name}' for t in terms)}). "
            "Use nagq=1 (Laplace)")
    if family.has_dispersion:
        raise MixedModelsError(
            f"nagq = {nagq} is not supported for the {family.name} family (its deviance "
            "carries an estimated dispersion); use nagq=1 (Laplace)")


def theta_ml(y: np.ndarray, mu: np.ndarray, weights: np.ndarray, limit: int = 25) -> float:
    """Maximum-likelihood negative binomial shape for fixed means (MASS's ``theta.ml``).

    Newton-Raphson on the score in theta, from the moment estimate n / sum w (y/mu - 1)^2;
    y, mu, weights (n,). Used only to start ``glmer_nb``'s joint optimization.
    """
    from scipy.special import digamma, polygamma

    total = float(np.sum(weights))
    theta = total / float(np.sum(weights * (y / mu - 1.0) ** 2))
    for _ in range(limit):
        theta = max(theta, 1e-8)
        score = np.sum(weights * (digamma(theta + y) - digamma(theta) + math.log(theta) + 1.0
                                  - np.log(theta + mu) - (y + theta) / (mu + theta)))
        info = np.sum(weights * (-polygamma(1, theta + y) + polygamma(1, theta) - 1.0 / theta
                                 + 2.0 / (mu + theta) - (y + theta) / (mu + theta) ** 2))
        step = score / info
        theta += step
        if abs(step) < 1e-8 * max(theta, 1.0):
            break
    if not np.isfinite(theta) or theta <= 0:
        raise MixedModelsError("could not estimate the negative binomial shape from the Poisson "
                               "fit (the counts may show no overdispersion)")
    return float(theta)
