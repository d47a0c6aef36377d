"""Likelihood profiles of a glmer fit, as lme4's ``profile.merMod`` for a ``glmerMod``.

The parameters are lme4's: per random-effects term its SDs and correlations (column-major
lower triangle, ``.sig01``, ``.sig02``, ...), then the fixed effects. The profile of parameter
x_w is zeta(x) = sign(x - x_hat) sqrt(d(x) - d_min), with d(x) the Laplace (or adaptive
Gauss-Hermite) deviance of the fit minimized over every other parameter with x_w held at x.
Unlike an lmer profile nothing can be profiled out: each point is a bounded minimization over
all the other parameters (SD >= 0, -1 <= correlation <= 1), each evaluation a PIRLS run.

Points are placed as lme4 places them (``profile.py``'s walk: steps of ``delta`` in zeta,
extrapolated from the last two points, until |zeta| exceeds sqrt(qchisq(1 - alphamax, n_par))
or a bound is reached), each minimization starting from the previous point's parameters
(lme4's ``startmethod = "prev"``), and intervals come from R's ``backSpline(interpSpline())``
(``Profile.confint``). Differences from lme4, each for a reason:

- The first point away from a fixed effect's estimate is one ``delta`` of its standard error
  away (as lme4 does for an lmer fit), not lme4's 1.01 times the estimate, which barely moves
  from an estimate near 0.
- The minimizations run NLopt's BOBYQA with tight tolerances in coordinates made from the
  deviance's Hessian at the optimum, in which the deviance is close to half the squared norm
  (the fixed effects whitened, the bounded SDs and correlations only scaled so their bounds
  stay a box); lme4 runs the fit's own optimizer (Nelder-Mead for glmer's defaults) on the
  raw parameters.
- A negative binomial's shape is minimized over with the others (on the log scale; it is a
  parameter of the fit, counted in its ``df``) and is not profiled itself; lme4 holds it at
  the estimate.

Families with a scale (Gamma, inverse Gaussian) are refused, as lme4 refuses them, and so are
``nagq = 0`` fits, whose estimates are not the minimum of a deviance over (theta, beta).
"""
from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import MixedModelsError
from ..optimize import central_derivs
from ..pirls import PirlsError
from .bootstrap import _Progress
from .glmm_intervals import variance_names
from .glmm_refit import new_model
from .glmm_simulate import check_glmer_result
from .intervals import select_parameters
from .profile import Profile, _SdcorMap, _walk, _zeta, theta_to_sdcor, trace_all

__all__ = ["profile"]

# Central-difference steps for the Hessian that scales the minimizations: 1e-4 on the SD /
# correlation scale, relative to an SD below 1 (down to 0.1), as glmer's own steps on theta;
# 1e-2 standard errors for a fixed effect.
HESSIAN_STEP = 1e-4
HESSIAN_STEP_SE = 1e-2
# BOBYQA in the scaled coordinates, where the deviance grows by about |x|^2 / 2 and the start
# is the quadratic model's prediction: first steps of 0.1, and x to 1e-5 (the deviance to about
# 1e-10; on cbpp the intervals then agree with x to 1e-9 to 1e-13 relative, in 60 % of the
# evaluations).
INITIAL_STEP = 0.1
XTOL = 1e-5
MAXEVAL = 20_000


class _GlmmProfiler:
    """The fit's deviance over (SDs/correlations, fixed effects[, log shape]) on a private
    model, and the points of the profile traces.

    A row of a trace is an array [zeta, sd/cor..., beta...[, log shape]] (the log shape of a
    negative binomial is a nuisance parameter, dropped from the traces).
    """

    def __init__(self, result: Any):
        self.result = result
        self.model = new_model(result)
        self.map = _SdcorMap(result.terms)
        self.nvp = result.n_theta
        self.names = variance_names(result) + list(result.info.x_names)
        nuisance = [] if result.nb_theta is None else [math.log(result.nb_theta)]
        self.opt = np.concatenate([theta_to_sdcor(np.asarray(result.theta), result.terms, 1.0),
                                   result.beta, nuisance])
        free = np.full(self.opt.size - self.nvp, np.inf)
        # The templates' bounds on the SD / correlation scale (lme4's: SD >= 0,
        # -1 <= correlation <= 1; cs: -1 / (p - 1) <= rho <= 1).
        bounds = [t.covariance.sdcor_bounds() for t in result.terms]
        self.lower = np.concatenate([b[0] for b in bounds] + [-free])
        self.upper = np.concatenate([b[1] for b in bounds] + [free])
        self.base = float(result.objective)
        at_opt = self.deviance(self.opt)
        if not math.isclose(at_opt, self.base, rel_tol=1e-5):
            raise MixedModelsError(
                f"the deviance at the estimates ({at_opt:.10g}) differs from the fit's "
                f"({self.base:.10g}): cannot profile this fit")
        self.hessian = self._hessian()

    def deviance(self, pars: np.ndarray) -> float:
        """The fit's deviance at (sd/cor..., beta...[, log shape]); inf where the SDs and
        correlations give no covariance matrix or PIRLS fails."""
        theta = self.map.theta(pars[:self.nvp], 1.0)
        if theta is None:
            return math.inf
        try:
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                value = self.model.objective(np.concatenate([theta, pars[self.nvp:]]))
        except (PirlsError, np.linalg.LinAlgError, FloatingPointError):
            return math.inf
        return float(value) if np.isfinite(value) else math.inf

    def _hessian(self) -> np.ndarray:
        """(k, k) central-difference Hessian of the deviance at the estimates (NaN entries
        where a step leaves the parameter space, e.g. a correlation at +-1)."""
        steps = np.full(self.opt.size, HESSIAN_STEP)
        steps[:self.nvp] *= np.clip(np.abs(self.opt[:self.nvp]), 0.1, 1.0)
        p = self.result.beta.size
        steps[self.nvp:self.nvp + p] = HESSIAN_STEP_SE * np.asarray(self.result.se)
        _, H = central_derivs(self.deviance, self.opt, self.base, delta=steps)
        H[~np.isfinite(H)] = np.nan
        return H

    def scaling(self, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(M, bounded, slope) for profiling parameter w: the others (``free``) are
        start + M x; ``slope`` is the quadratic model's d others / d x_w, -H_ff^{-1} H_fw, which
        moves the start of each minimization along with x_w (0 where H is unusable).

        With H the Hessian restricted to ``free``, u its unbounded and b its bounded
        coordinates, M = [[L_uu^{-T}, -H_uu^{-1} H_ub D], [0, D]] with H_uu = L_uu L_uu' and D
        the inverse square roots of the diagonal of the Schur complement H_bb - H_bu
        H_uu^{-1} H_ub: then M' H M has unit diagonal and no u-b block, and each bounded
        parameter moves with its own x only, so its bounds stay bounds on x. Where H is
        unusable (not finite, not positive definite) M is the inverse square root of its
        diagonal where that is positive, else 1.
        """
        free = np.delete(np.arange(self.opt.size), w)
        H = self.hessian[np.ix_(free, free)]
        bounded = np.isfinite(self.lower[free]) | np.isfinite(self.upper[free])
        iu, ib = np.flatnonzero(~bounded), np.flatnonzero(bounded)
        M = np.zeros((free.size, free.size))
        try:
            slope = -np.linalg.solve(H, self.hessian[free, w])
        except np.linalg.LinAlgError:
            slope = np.zeros(free.size)
        slope = np.where(np.isfinite(slope), slope, 0.0)
        try:
            if not np.all(np.isfinite(H)):
                raise np.linalg.LinAlgError("non-finite Hessian")
            Huu, Hub = H[np.ix_(iu, iu)], H[np.ix_(iu, ib)]
            L = np.linalg.cholesky(Huu)
            G = np.linalg.solve(Huu, Hub)
            schur = np.diag(H[np.ix_(ib, ib)] - Hub.T @ G)
            if np.any(schur <= 0):
                raise np.linalg.LinAlgError("Schur complement not positive")
            D = 1.0 / np.sqrt(schur)
            M[np.ix_(iu, iu)] = np.linalg.inv(L).T
            M[np.ix_(iu, ib)] = -G * D
            M[ib, ib] = D
        except np.linalg.LinAlgError:
            d = np.diag(H)
            ok = np.isfinite(d) & (d > 0)
            M[np.arange(free.size), np.arange(free.size)] = np.where(
                ok, 1.0 / np.sqrt(np.where(ok, d, 1.0)), 1.0)
        return M, bounded, slope

    def point(self, w: int, value: float, last: np.ndarray, scale) -> np.ndarray:
        """Row with parameter w at ``value``, the others minimized from the row ``last``."""
        import nlopt

        M, bounded, slope = scale
        free = np.delete(np.arange(self.opt.size), w)
        lo, hi = self.lower[free], self.upper[free]
        start = np.clip(last[1:][free] + slope * (value - last[1 + w]), lo, hi)
        diag = np.diag(M)
        # Bounded parameters move with their own x only (see ``scaling``).
        x_lo = np.where(bounded, (lo - start) / diag, -np.inf)
        x_hi = np.where(bounded, (hi - start) / diag, np.inf)

        def pars_at(x: np.ndarray) -> np.ndarray:
            others = np.clip(start + M @ x, lo, hi)
            return np.insert(others, w, value)

        worst = [self.deviance(pars_at(np.zeros(free.size)))]
        best = [np.zeros(free.size), worst[0]]

        def objective(x, grad):
            f = self.deviance(pars_at(x))
            if not np.isfinite(f):
                # A finite stand-in keeps BOBYQA's quadratic model usable (as the fit does).
                return worst[0] if np.isfinite(worst[0]) else 1e300
            worst[0] = max(worst[0], f) if np.isfinite(worst[0]) else f
            if f < best[1]:
                best[0], best[1] = np.array(x), f
            return f

        if free.size:
            opt = nlopt.opt(nlopt.LN_BOBYQA, free.size)
            opt.set_min_objective(objective)
            opt.set_lower_bounds(x_lo)
            opt.set_upper_bounds(x_hi)
            # BOBYQA needs bounds at least two first steps apart (a correlation's are 2 apart).
            opt.set_initial_step(np.minimum(INITIAL_STEP, 0.25 * (x_hi - x_lo)))
            opt.set_xtol_abs(XTOL)
            opt.set_maxeval(MAXEVAL)
            try:
                opt.optimize(np.zeros(free.size))
            except nlopt.RoundoffLimited:
                pass
        pars, fval = pars_at(best[0]), best[1]
        if not np.isfinite(fval):
            return np.concatenate([[np.nan], pars])
        z = _zeta(value, self.opt[w], fval - self.base, self.names[w])
        return np.concatenate([[z], pars])

    def trace(self, w: int, delta: float, cutoff: float, maxpts: int, maxmult: float
              ) -> pd.DataFrame:
        """The walk up and down from the estimate for parameter w, sorted by its value."""
        estimate, lo, hi = self.opt[w], self.lower[w], self.upper[w]
        scale = self.scaling(w)

        def point(value: float, last: np.ndarray) -> np.ndarray:
            return self.point(w, value, last, scale)

        if w < self.nvp:
            first = estimate * 1.01 if estimate != 0 else 0.001
        else:
            first = estimate + delta * float(self.result.se.iloc[w - self.nvp])
        start = np.concatenate([[0.0], self.opt])
        shifted = point(min(hi, max(lo, first)), start)
        rows = _walk([start, shifted], w + 1, lo, hi, point, delta, cutoff, maxpts, maxmult)
        if estimate > lo:
            rows += _walk([shifted, start], w + 1, lo, hi, point, delta, cutoff, maxpts,
                          maxmult)
        columns = [".zeta"] + self.names
        table = pd.DataFrame(np.vstack(rows)[:, :len(columns)], columns=columns)
        return table.drop_duplicates().sort_values(self.names[w], kind="stable"
                                                   ).reset_index(drop=True)


def _check_profilable(result: Any) -> None:
    check_glmer_result(result)
    if result.family.has_dispersion:
        raise MixedModelsError(
            f"cannot profile a glmer fit of the {result.family.name} family: its scale is not "
            f"a parameter of the Laplace deviance (lme4 refuses too); use "
            f"confint(method='boot') or 'wald'")
    if result.nagq == 0:
        raise MixedModelsError(
            "cannot profile a glmer fit with nagq=0: its estimates do not minimize a deviance "
            "over (theta, beta); refit with nagq=1 (Laplace) to profile")


def profile(result: Any, which: Any = None, alphamax: float = 0.01, maxpts: int = 100,
            delta: float | None = None, delta_cutoff: float = 1.0 / 8.0, maxmult: float = 10.0,
            progress: bool | None = None) -> Profile:
    """Profile the deviance of a glmer fit, as lme4's ``profile.merMod``.

    Parameters
    ----------
    result : GlmerResult
        A Laplace or adaptive Gauss-Hermite fit of a family without a scale.
    which : None, str, int or list
        Parameters to profile: None (all), names (``".sig01"``, ``"period2"``, or
        ``"theta_"`` / ``"beta_"``) or 0-based indices, as lme4's ``which``.
    alphamax : float
        Each profile extends to |zeta| = sqrt(qchisq(1 - alphamax, n_par)).
    maxpts : int
        At most this many points in each direction.
    delta : float, optional
        Step in zeta between points (default: that cutoff times ``delta_cutoff``).
    delta_cutoff : float
    maxmult : float
        A step in the parameter is at most ``maxmult`` times the previous one.
    progress : bool, optional
        Count the profiled parameters on stderr; None shows the count when stderr is a
        terminal, False never.

    Returns
    -------
    Profile
        ``traces[name]`` (points, 1 + n_par): ``.zeta`` and every parameter along the profile
        of ``name``; ``confint(level)`` gives the intervals. A fixed effect whose profile does
        not reach the requested zeta gets an infinite bound, as lme4's glmer profiles.

    Raises
    ------
    MixedModelsError
        A family with a scale, an ``nagq = 0`` fit, an unknown parameter in ``which``.
    """
    _check_profilable(result)
    if not (isinstance(maxpts, (int, np.integer)) and maxpts >= 3):
        raise MixedModelsError(f"maxpts must be an integer >= 3, not {maxpts!r}")
    if not 0 < alphamax < 1:
        raise MixedModelsError(f"alphamax must be between 0 and 1, not {alphamax}")
    prof = _GlmmProfiler(result)
    names, nvp = prof.names, prof.nvp
    selected = select_parameters(which, names, nvp)
    cutoff = math.sqrt(stats.chi2.ppf(1.0 - alphamax, len(names)))
    delta = cutoff * delta_cutoff if delta is None else float(delta)
    if not delta > 0:
        raise MixedModelsError(f"delta must be positive, not {delta}")
    if progress is None:
        progress = sys.stderr.isatty()
    bar = _Progress(len(selected), bool(progress), desc="profile")
    try:
        traces, backward = trace_all(prof, selected, delta, cutoff, maxpts, maxmult,
                                     each=bar.update)
    finally:
        bar.close()
    k = len(names)
    return Profile(traces=traces, estimates=pd.Series(prof.opt[:k], index=names),
                   base_deviance=prof.base,
                   lower=pd.Series(prof.lower[:k], index=names),
                   upper=pd.Series(prof.upper[:k], index=names), _backward=backward)
