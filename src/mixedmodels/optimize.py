"""Optimizing theta: BOBYQA from NLopt with lme4's settings and boundary handling (§7).

lme4's ``lmer`` defaults: ``nloptwrap`` (NLOPT_LN_BOBYQA, xtol_abs = ftol_abs = 1e-8,
maxeval = 1e5, and nloptr's default xtol_rel = 1e-4), box constraints (0 on diagonal theta),
then ``restart_edge``, ``check.boundary`` (boundary.tol 1e-5) and a finite-difference
convergence check.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

Objective = Callable[[np.ndarray], float]


@dataclass
class OptSummary:
    """What the optimizer did: start, bounds, result, evaluation count, fit log, warnings."""

    theta0: np.ndarray
    lower: np.ndarray
    theta: np.ndarray = None
    fmin: float = np.nan
    feval: int = 0
    optimizer: str = "bobyqa"
    return_code: str = ""
    restarted: bool = False
    fitlog: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def _bobyqa(f: Objective, x0: np.ndarray, lower: np.ndarray, xtol_abs: float, ftol_abs: float,
            xtol_rel: float, ftol_rel: float, maxeval: int,
            initial_step: np.ndarray | None = None) -> tuple[np.ndarray, float, str]:
    import nlopt

    n = x0.size
    opt = nlopt.opt(nlopt.LN_BOBYQA, n)
    opt.set_min_objective(lambda x, grad: f(x))
    opt.set_lower_bounds(lower)
    opt.set_xtol_abs(xtol_abs)
    opt.set_ftol_abs(ftol_abs)
    opt.set_xtol_rel(xtol_rel)
    opt.set_ftol_rel(ftol_rel)
    opt.set_maxeval(maxeval)
    if initial_step is not None:
        opt.set_initial_step(initial_step)
    try:
        x = opt.optimize(np.maximum(x0, lower))
    except nlopt.RoundoffLimited:
        # NLopt gives up when round-off dominates its model; lme4 then keeps the best point
        # with "convergence code -4"; so do we (f logs every point it evaluated).
        return None, np.nan, "ROUNDOFF_LIMITED"
    code = {nlopt.SUCCESS: "SUCCESS", nlopt.FTOL_REACHED: "FTOL_REACHED",
            nlopt.XTOL_REACHED: "XTOL_REACHED", nlopt.MAXEVAL_REACHED: "MAXEVAL_REACHED",
            nlopt.STOPVAL_REACHED: "STOPVAL_REACHED"}.get(opt.last_optimize_result(),
                                                        str(opt.last_optimize_result()))
    return np.asarray(x, dtype=float), float(opt.last_optimum_value()), code


def _best(fitlog: list) -> tuple[np.ndarray, float]:
    theta, value = min(fitlog, key=lambda item: item[1])
    return theta.copy(), value


def minimize_theta(f: Objective, theta0: np.ndarray, lower: np.ndarray, *,
                   xtol_abs: float = 1e-8, ftol_abs: float = 1e-8, xtol_rel: float = 1e-4,
                   ftol_rel: float = 0.0,
                   maxeval: int = 100_000, initial_step: np.ndarray | None = None,
                   boundary_tol: float = 1e-5) -> OptSummary:
    """Minimize f over theta >= lower as lme4's ``optimizeLmer`` does, with lme4's stopping
    rule; ``initial_step`` (n_theta,) replaces NLopt's default first steps (see ``start.py``).

    Every call of f is logged in ``fitlog`` as (theta, value).
    """
    summary = OptSummary(theta0=np.array(theta0, dtype=float), lower=np.array(lower, dtype=float))

    def logged(theta: np.ndarray) -> float:
        value = f(theta)
        summary.fitlog.append((np.array(theta), value))
        return value

    theta, fmin, code = _bobyqa(logged, summary.theta0, summary.lower, xtol_abs, ftol_abs,
                                xtol_rel, ftol_rel, maxeval, initial_step)
    if theta is None:
        theta, fmin = _best(summary.fitlog)
    # restart_edge: a parameter stuck on its bound whose one-sided slope into the feasible
    # region is negative means BOBYQA stopped early; start again from there.
    on_bound = np.flatnonzero(theta == summary.lower)
    if on_bound.size:
        f0 = logged(theta)
        slopes = []
        for i in on_bound:
            th = theta.copy()
            th[i] = summary.lower[i] + 1e-5
            slopes.append((logged(th) - f0) / 1e-5)
        if min(slopes) < 0:
            summary.restarted = True
            theta, fmin, code = _bobyqa(logged, theta, summary.lower, xtol_abs, ftol_abs,
                                        xtol_rel, ftol_rel, maxeval)
            if theta is None:
                theta, fmin = _best(summary.fitlog)
    # check.boundary: parameters within boundary_tol of their bound go to the bound when that
    # does not make the objective worse.
    near = np.flatnonzero((theta - summary.lower < boundary_tol) & (theta != summary.lower))
    for i in near:
        th = theta.copy()
        th[i] = summary.lower[i]
        value = logged(th)
        if value <= fmin:
            theta, fmin = th, value
    summary.theta, summary.fmin, summary.return_code = theta, logged(theta), code
    summary.feval = len(summary.fitlog)
    if code == "ROUNDOFF_LIMITED":
        summary.warnings.append("convergence code -4 from BOBYQA: round-off errors stopped the "
                                "optimizer; the best point found is returned")
    if code == "MAXEVAL_REACHED":
        summary.warnings.append(f"optimizer reached the maximum number of evaluations ({maxeval})")
    return summary


def finite_difference_derivs(f: Objective, x: np.ndarray, fx: float, delta: float = 1e-4,
                             hessian: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Central-difference gradient (k,) and Hessian (k, k) of f at x (lme4's ``deriv12``)."""
    k = x.size
    grad = np.empty(k)
    hess = np.empty((k, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = delta
        fp, fm = f(x + e), f(x - e)
        grad[i] = (fp - fm) / (2 * delta)
        if not hessian:
            continue
        hess[i, i] = (fp - 2 * fx + fm) / delta**2
        for j in range(i):
            e2 = np.zeros(k)
            e2[j] = delta
            fpp, fpm = f(x + e + e2), f(x + e - e2)
            fmp, fmm = f(x - e + e2), f(x - e - e2)
            hess[i, j] = hess[j, i] = (fpp - fpm - fmp + fmm) / (4 * delta**2)
    return grad, (hess if hessian else None)


def central_derivs(f: Objective, x: np.ndarray, fx: float, delta=1e-4
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference gradient (k,) and Hessian (k, k) of f at x in k (k + 1) evaluations.

    delta : a step, or one step per coordinate (k,). The diagonal and the gradient come from
    f(x +- delta_i e_i); each off-diagonal entry from the two extra points
    x +- (delta_i e_i + delta_j e_j):
    H_ij = [f(x+d_i+d_j) - f(x+d_i) - f(x+d_j) + 2 f(x) - f(x-d_i) - f(x-d_j)
            + f(x-d_i-d_j)] / (2 delta_i delta_j),
    second-order accurate like lme4's four-point rule, which needs 2 k^2 + 1 evaluations.
    """
    k = x.size
    delta = np.broadcast_to(np.asarray(delta, dtype=float), (k,))
    plus, minus = np.empty(k), np.empty(k)
    for i in range(k):
        e = np.zeros(k)
        e[i] = delta[i]
        plus[i], minus[i] = f(x + e), f(x - e)
    grad = (plus - minus) / (2 * delta)
    hess = np.diag((plus - 2 * fx + minus) / delta**2)
    for i in range(k):
        for j in range(i):
            e = np.zeros(k)
            e[i], e[j] = delta[i], delta[j]
            both = f(x + e) + f(x - e)
            hess[i, j] = hess[j, i] = (both - plus[i] - plus[j] - minus[i] - minus[j]
                                       + 2 * fx) / (2 * delta[i] * delta[j])
    return grad, hess


def newton_step(grad: np.ndarray, hess: np.ndarray, x: np.ndarray, lower: np.ndarray
                ) -> np.ndarray | None:
    """The minimizer of the quadratic model at x within the bounds, by active sets.

    x - H^-1 g when that is feasible. Otherwise the coordinates that would cross their bound
    are held on it and the model is minimized over the others (d_F = -H_FF^-1 (g_F + H_FA d_A)),
    again until the step is feasible. On a flat likelihood whose optimum is on the boundary
    (a rank-deficient covariance, e.g. ``(0 + f | g)``) BOBYQA stops up to 1e-3 inside, where
    the objective changes by 1e-6 or less, and the plain Newton step overshoots the bound.

    Returns the new point (k,), or None when H is not positive definite.
    """
    try:
        np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        return None
    held = np.zeros(x.size, dtype=bool)
    for _ in range(x.size):
        d = np.where(held, lower - x, 0.0)
        free = ~held
        rhs = grad[free] + hess[np.ix_(free, held)] @ d[held]
        d[free] = -np.linalg.solve(hess[np.ix_(free, free)], rhs)
        crossed = free & (x + d < lower)
        if not crossed.any():
            return np.maximum(x + d, lower)
        held |= crossed
        if held.all():
            return lower.copy()
    return None


def hessian_messages(hess: np.ndarray, tol: float = 1e-6) -> list[str]:
    """lme4's ``checkHess`` (check.conv.hess, tol 1e-6) on the deviance Hessian in theta."""
    if not np.all(np.isfinite(hess)):
        return ["Problem with Hessian check (infinite or missing values?)"]
    eig = np.linalg.eigvalsh(hess)
    negative = int(np.sum(eig < -tol))
    if negative:
        return [f"Model failed to converge: degenerate Hessian with {negative} negative "
                f"eigenvalues"]
    try:
        np.linalg.cholesky(hess)
        pd_ok = True
    except np.linalg.LinAlgError:
        pd_ok = False
    if np.any(np.abs(eig) < tol) or not pd_ok:
        return ["Hessian is numerically singular: parameters are not uniquely determined"]
    messages = []
    if eig.max() * tol > 1:
        messages.append("Model is nearly unidentifiable: very large eigenvalue - Rescale "
                        "variables?")
    if eig.min() / eig.max() < tol:
        messages.append("Model is nearly unidentifiable: large eigenvalue ratio - Rescale "
                        "variables?")
    return messages


def gradient_message(grad: np.ndarray, hess: np.ndarray, tol: float = 2e-3,
                     names: np.ndarray | None = None) -> str | None:
    """lme4's gradient check (check.conv.grad, tol 2e-3); None when it passes.

    The criterion is lme4's ``max(pmin(abs(solve(chol(H), g)), abs(g)))``: R's ``chol`` is the
    upper factor R (H = R'R), so the scaled gradient is R^-1 g, not the Newton step H^-1 g.
    ``names`` (k,) are the 1-based theta positions of the entries, for the message (lme4
    always prints "component 1").
    """
    try:
        upper = np.linalg.cholesky(hess).T
    except np.linalg.LinAlgError:
        return "unable to evaluate scaled gradient"
    scaled = np.linalg.solve(upper, grad)
    if not np.all(np.isfinite(scaled)):
        return "unable to evaluate scaled gradient"
    mingrad = np.minimum(np.abs(scaled), np.abs(grad))
    if mingrad.max() > tol:
        worst = int(np.argmax(mingrad))
        component = worst + 1 if names is None else int(names[worst])
        return (f"Model failed to converge with max|grad| = {mingrad.max():.6g} "
                f"(tol = {tol:g}, component {component})")
    return None


def polish_and_check(f: Objective, theta: np.ndarray, fmin: float, lower: np.ndarray,
                     grad_tol: float = 2e-3, singular_tol: float = 1e-4
                     ) -> tuple[np.ndarray, float, list[str]]:
    """One Newton step at the optimum, then lme4's ``checkConv`` at the point kept.

    The central-difference gradient and Hessian that lme4 computes only to check convergence
    also give a Newton step; on flat likelihoods BOBYQA stops up to 1e-4 (relative) short of the
    optimum in theta, and that step closes most of the gap (see CHANGELOG). The step respects
    the bounds (``newton_step``) and is kept only if it lowers the objective. Parameters on
    their bound are left out of both (a positive slope there is expected).

    The checks follow lme4's ``checkConv``: a singular fit (a diagonal theta entry below
    ``singular_tol``) is not checked further (lme4 reports only "boundary (singular) fit", which
    the caller raises); otherwise the scaled gradient (``gradient_message``), then the Hessian
    (``hessian_messages``, joined by ";" into one message as lme4 does).

    Returns (theta, objective, convergence warning messages).
    """
    free = np.flatnonzero(theta > lower)
    if free.size == 0:
        return theta, fmin, []
    base = theta.copy()

    def f_free(x):
        th = base.copy()
        th[free] = x
        return f(th)

    grad, hess = finite_difference_derivs(f_free, theta[free], fmin)
    if not (np.all(np.isfinite(grad)) and np.all(np.isfinite(hess))):
        return theta, fmin, ["Problem with Hessian check (infinite or missing values?)"]
    step = newton_step(grad, hess, theta[free], lower[free])
    moved = False
    if step is not None:
        value = f_free(step)
        if value < fmin:
            polished = theta.copy()
            polished[free] = step
            theta, fmin, moved = polished, value, True
    diagonal = np.isfinite(lower)
    if np.any(theta[diagonal] < singular_tol):
        return theta, fmin, []
    message = gradient_message(grad, hess, grad_tol, free + 1)
    if moved and message is not None and message.startswith("Model failed"):
        # Only a failing check is worth a second gradient at the polished point.
        grad = finite_difference_derivs(f_free, theta[free], fmin, hessian=False)[0]
        message = gradient_message(grad, hess, grad_tol, free + 1)
    messages = [] if message is None else [message]
    hess_messages = hessian_messages(hess)
    if hess_messages:
        messages.append(";".join(hess_messages))
    return theta, fmin, messages
