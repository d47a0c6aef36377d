"""Likelihood profiles and profile confidence intervals, as lme4's ``profile.merMod``.

lme4 profiles the **ML** deviance (a REML fit is refitted by ML first) over the parameters on
the standard-deviation / correlation scale: per random-effects term its SDs and correlations
(column-major lower triangle, lme4's ``.sig01``, ``.sig02``, ...), then ``.sigma``, then the
fixed effects. For each parameter x the profile is ``zeta(x) = sign(x - x_hat) sqrt(d(x) -
d_min)`` where d(x) is the deviance minimized over everything else:

- an SD, correlation or sigma: d(sd/cor..., sigma) = ldL2 - log|W| + r2/sigma^2
  + n log(2 pi sigma^2) (beta profiled out, sigma not), minimized by bounded BOBYQA over the
  other SDs, correlations and sigma (SD >= 0, -1 <= cor <= 1, sigma >= 0);
- a fixed effect beta_j: beta_j x_j becomes part of the offset and column j is dropped; only
  the y column of the cross-products changes (linearly in beta_j), and the usual ML objective
  is minimized over theta. No pass over the data.

The points are placed as lme4 places them (steps of ``delta`` in zeta, extrapolated from the
last two points, until |zeta| exceeds sqrt(qchisq(1 - alphamax, n_par)) or a bound is hit).
Intervals invert a natural interpolating cubic spline of zeta(x) the way R's
``backSpline(interpSpline(...))`` does; where the profile stops at a bound before reaching the
requested zeta (an SD at 0, a correlation at +-1) the bound is the interval's end, as in lme4.
Singular fits are profiled as lme4 does (the SD's lower end is then 0).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.interpolate import CubicSpline

from ..crossprod import CrossProducts
from ..errors import MixedModelsError, warn_user
from ..lmm import LinearMixedModel
from ..optimize import minimize_theta
from ..rformat import percent_labels
from ..terms import TermSpec, theta_slices
from .intervals import param_names, select_parameters
from .protocol import FittedModel, refuse_residual_structure

__all__ = ["profile", "Profile", "ProfileWarning", "theta_to_sdcor", "sdcor_to_theta",
           "fixed_beta_crossprod"]


class ProfileWarning(UserWarning):
    """A profile that lme4 would also warn about (non-monotonic, bad spline, lower deviance)."""


# ---- the SD / correlation scale ------------------------------------------------------------------
def theta_to_sdcor(theta: np.ndarray, terms: tuple[TermSpec, ...], sigma: float) -> np.ndarray:
    """(sum of the terms' n_theta,) SDs and correlations of Sigma_i = sigma^2 T_i T_i', per
    term in the order its covariance template gives (theta's order for an unstructured term).

    A correlation with a zero SD is NaN (R's ``cov2cor``).
    """
    theta = np.asarray(theta, dtype=float)
    return np.concatenate([t.covariance.sdcor(theta[s], sigma)
                           for t, s in zip(terms, theta_slices(list(terms)))])


class _SdcorMap:
    """(sd/cor..., sigma) -> theta for fixed terms, by their covariance templates."""

    def __init__(self, terms: tuple[TermSpec, ...]):
        self.parts = [(t.covariance, s) for t, s in zip(terms, theta_slices(list(terms)))]
        self.n_theta = sum(t.n_theta for t in terms)

    def theta(self, values: np.ndarray, sigma: float) -> np.ndarray | None:
        """(n_theta,) theta, or None if a term's covariance matrix is not PSD."""
        theta = np.empty(self.n_theta)
        for cov, s in self.parts:
            piece = cov.theta_from_sdcor(values[s], sigma)
            if piece is None:
                return None
            theta[s] = piece
        return theta

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) of the SD / correlation values, each (n_theta,)."""
        pairs = [cov.sdcor_bounds() for cov, _ in self.parts]
        return (np.concatenate([lo for lo, _ in pairs]), np.concatenate([up for _, up in pairs]))


def sdcor_to_theta(values: np.ndarray, terms: tuple[TermSpec, ...], sigma: float
                   ) -> np.ndarray | None:
    """Inverse of ``theta_to_sdcor``: (n_theta,) theta, or None if a term's matrix is not PSD."""
    return _SdcorMap(terms).theta(np.asarray(values, dtype=float), sigma)


# ---- the deviance pieces ----------------------------------------------------------------------
class _SdcorDeviance:
    """ML deviance as a function of (sd/cor..., sigma), beta profiled out, sigma not.

    Owns a private workspace so the fitted model's factor is never touched.
    """

    def __init__(self, fit: FittedModel):
        self.model = LinearMixedModel(fit.model.A, fit.terms, reml=False)
        self.map = _SdcorMap(fit.terms)
        self.A = fit.model.A

    def __call__(self, pars: np.ndarray) -> float:
        sigma = pars[-1]
        if not sigma > 0:
            return math.inf
        theta = self.map.theta(pars[:-1], sigma)
        if theta is None:
            return math.inf
        L, A = self.model.L, self.A
        try:
            L.update(self.model.templates(theta))
        except np.linalg.LinAlgError:
            return math.inf
        return (L.ldL2() - A.sum_log_w + L.pwrss() / sigma**2
                + A.n * math.log(2.0 * math.pi * sigma**2))

    def beta(self, pars: np.ndarray) -> np.ndarray:
        """(p,) beta-hat at these parameters."""
        self(pars)
        return self.model.L.beta()


def fixed_beta_crossprod(A: CrossProducts, j: int, value: float) -> CrossProducts:
    """Cross-products of the model with beta_j fixed at ``value`` (x_j moved to the offset).

    Column j of X is dropped and the response becomes y - value x_j: its cross-products are
    linear (and y'Wy quadratic) in ``value``, so they come from A alone.
    """
    p = A.p
    keep = [c for c in range(p + 1) if c != j]
    y_col = A.xx[:, p] - value * A.xx[:, j]
    xx = A.xx[np.ix_(keep, keep)].copy()
    xx[:-1, -1] = xx[-1, :-1] = y_col[keep[:-1]]
    xx[-1, -1] = A.xx[p, p] - 2.0 * value * A.xx[j, p] + value**2 * A.xx[j, j]
    xz = tuple(np.vstack([Z[keep[:-1]], (Z[p] - value * Z[j])[None, :]]) for Z in A.xz)
    return dataclasses.replace(A, xx=xx, xz=xz, p=p - 1)


def _bobyqa_box(f, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray
                ) -> tuple[np.ndarray, float]:
    """Minimize f over a box with NLopt's BOBYQA (lme4's profile optimizer), tight tolerances.

    Non-finite values are replaced by the start value: an infinite value would wreck
    BOBYQA's quadratic model (the same rule as the fit's objective).
    """
    import nlopt

    x0 = np.clip(np.asarray(x0, dtype=float), lower, upper)
    f0 = f(x0)
    best = [x0.copy(), f0]

    def wrapped(x, grad):
        value = f(x)
        if not np.isfinite(value):
            return f0
        if value < best[1]:
            best[0], best[1] = np.array(x), value
        return value

    opt = nlopt.opt(nlopt.LN_BOBYQA, x0.size)
    opt.set_min_objective(wrapped)
    opt.set_lower_bounds(lower)
    opt.set_upper_bounds(upper)
    opt.set_xtol_abs(1e-10)
    opt.set_ftol_abs(1e-10)
    opt.set_maxeval(100_000)
    try:
        opt.optimize(x0)
    except nlopt.RoundoffLimited:
        # Round-off stopped the quadratic model; the best point seen is kept (as the fit does).
        pass
    return best[0], best[1]


# ---- inverse interpolation (R's backSpline of an interpSpline) ---------------------------------
class _BackSpline:
    """x as a piecewise cubic of zeta, built from a natural interpolating spline of zeta(x).

    Pieces are cubic Hermite polynomials matching x and dx/dzeta = 1 / zeta'(x) at the knots,
    except the two end pieces, which are quadratics (made linear if they would bend the wrong
    way), as R's ``backSpline``. Outside the knots' zeta range the value is NaN.
    """

    def __init__(self, x: np.ndarray, z: np.ndarray):
        if x.size < 4:
            raise ValueError("an interpolating spline needs at least 4 points")
        if np.any(np.diff(z) <= 0):
            raise ValueError("spline must be monotone")
        slope = CubicSpline(x, z, bc_type="natural")(x, 1)
        kdiff, adiff = np.diff(x), np.diff(z)
        nk = x.size
        c = np.zeros((nk - 1, 4))
        c[:, 0] = x[:-1]
        inv_slope = 1.0 / slope
        c[:, 1] = inv_slope[:-1]
        for i in range(nk - 1):
            a = adiff[i]
            M = np.array([[a**2, a**3], [2 * a, 3 * a**2]])
            rhs = np.array([kdiff[i] - a * inv_slope[i], inv_slope[i + 1] - inv_slope[i]])
            c[i, 2:] = np.linalg.solve(M, rhs)
        a0, a1 = adiff[0], adiff[-1]
        c[0, 3] = c[-1, 3] = 0.0
        c[0, 1:3] = np.linalg.solve(np.array([[a0, a0**2], [1.0, 2 * a0]]),
                                    np.array([kdiff[0], inv_slope[1]]))
        c[-1, 2] = (kdiff[-1] - a1 * c[-1, 1]) / a1**2
        if c[0, 2] > 0:
            c[0, 2], c[0, 1] = 0.0, kdiff[0] / a0
        if c[-1, 2] < 0:
            c[-1, 2], c[-1, 1] = 0.0, kdiff[-1] / a1
        self.knots = z
        self.coef = c

    def __call__(self, zeta: np.ndarray) -> np.ndarray:
        zeta = np.atleast_1d(np.asarray(zeta, dtype=float))
        out = np.full(zeta.shape, np.nan)
        inside = (zeta >= self.knots[0]) & (zeta <= self.knots[-1])
        # R's cut(): intervals (z_i, z_{i+1}], with the first knot in the first interval.
        i = np.clip(np.searchsorted(self.knots, zeta[inside], side="left") - 1, 0,
                    self.knots.size - 2)
        t = zeta[inside] - self.knots[i]
        c = self.coef[i]
        out[inside] = c[:, 0] + t * (c[:, 1] + t * (c[:, 2] + t * c[:, 3]))
        return out


def _linear_inverse(x: np.ndarray, z: np.ndarray, zeta: np.ndarray) -> np.ndarray:
    """R's ``approxfun(zeta, x)``: linear interpolation, ties in zeta averaged, NaN outside."""
    uz, inverse = np.unique(z, return_inverse=True)
    ux = np.bincount(inverse, weights=x) / np.bincount(inverse)
    out = np.interp(zeta, uz, ux)
    out[(zeta < uz[0]) | (zeta > uz[-1])] = np.nan
    return out


# ---- the Profile object -----------------------------------------------------------------------
@dataclass
class Profile:
    """Profile traces of an lmer fit (lme4's ``thpr`` object).

    Attributes
    ----------
    traces : per parameter (lme4's old names), a DataFrame sorted by that parameter with
        columns ``.zeta`` then every parameter (``.sig01``, ..., ``.sigma``, fixed effects):
        the profiled parameter's value, its zeta and the optimal values of the others.
    estimates : (n_par,) ML estimates on this scale.
    base_deviance : ML deviance at the estimates.
    lower, upper : the variance parameters' bounds; NaN for fixed effects (as lme4).
    """

    traces: dict[str, pd.DataFrame]
    estimates: pd.Series
    base_deviance: float
    lower: pd.Series
    upper: pd.Series
    _backward: dict = field(default_factory=dict, repr=False)

    def confint(self, level: float = 0.95) -> pd.DataFrame:
        """Profile intervals (lme4's ``confint(profile)``): rows by parameter, R's columns.

        Where the profile ends at a bound before reaching the requested zeta, the bound is
        returned (0 for an SD, +-1 for a correlation).
        """
        if not 0 < level < 1:
            raise MixedModelsError(f"level must be between 0 and 1, not {level}")
        a = (1.0 - level) / 2.0
        zq = stats.norm.ppf([a, 1.0 - a])
        rows = {}
        for name, trace in self.traces.items():
            back = self._backward.get(name)
            if back is not None:
                ci = back(zq)
            else:
                ok = trace[".zeta"].notna().to_numpy()
                x, z = trace[name].to_numpy()[ok], trace[".zeta"].to_numpy()[ok]
                if z.size == 0:
                    warn_user(f"bad profile for {name}", ProfileWarning)
                    rows[name] = [np.nan, np.nan]
                    continue
                warn_user(f"bad spline fit for {name}: falling back to linear "
                          f"interpolation", ProfileWarning)
                ci = _linear_inverse(x, z, zq)
            if np.isnan(ci[0]):
                ci[0] = self.lower[name]
            if np.isnan(ci[1]):
                ci[1] = self.upper[name]
            rows[name] = list(ci)
        return pd.DataFrame.from_dict(rows, orient="index", columns=percent_labels(level))

    def to_frame(self) -> pd.DataFrame:
        """All traces stacked, with lme4's ``.par`` column naming the profiled parameter."""
        frames = [trace.assign(**{".par": name}) for name, trace in self.traces.items()]
        return pd.concat(frames, ignore_index=True)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in self.traces.items())
        return f"Profile(points per parameter: {sizes})"


# ---- profiling ----------------------------------------------------------------------------------
def _next_value(prev: np.ndarray, last: np.ndarray, col: int, delta: float, lowcut: float,
                upcut: float, maxmult: float, minstep: float = 1e-6) -> float:
    """lme4's ``nextpar``: a step of ``delta`` in zeta, extrapolated from the last two points."""
    num = last[col] - prev[col]
    denom = last[0] - prev[0]
    if not np.isfinite(denom) or denom == 0:
        warn_user("Last two rows have identical or NA .zeta values: using minstep",
                  ProfileWarning)
        step = minstep
    else:
        step = delta * num / denom
        if step < 0:
            warn_user("unexpected decrease in profile: using minstep", ProfileWarning)
            step = minstep
        elif abs(step) > maxmult * abs(num):
            step = maxmult * abs(num)
    return float(min(upcut, max(lowcut, last[col] + np.sign(num) * step)))


def _walk(rows: list[np.ndarray], col: int, lowcut: float, upcut: float, zeta_fn, delta: float,
          cutoff: float, maxpts: int, maxmult: float) -> list[np.ndarray]:
    """lme4's ``fillmat``: extend the trace away from the estimate until |zeta| > cutoff, a
    bound is reached or ``maxpts`` rows exist."""
    while len(rows) < maxpts:
        last = rows[-1]
        z = last[0]
        if not (lowcut < last[col] < upcut) or (np.isfinite(z) and abs(z) > cutoff):
            break
        value = _next_value(rows[-2], last, col, delta, lowcut, upcut, maxmult)
        rows.append(zeta_fn(value, last))
    return rows


def _zeta(value: float, estimate: float, devdiff: float, name: str) -> float:
    """sign(value - estimate) sqrt(devdiff); warns when the profile beats the fit (lme4 stops
    with an error below -1e-9; here round-off up to 1e-6 is tolerated silently)."""
    if devdiff < -1e-6:
        warn_user(f"profiling {name} found a deviance {-devdiff:.3g} below the fit's: the "
                  f"fit may not be at the optimum", ProfileWarning)
    return float(np.sign(value - estimate) * math.sqrt(max(devdiff, 0.0)))


class _Profiler:
    """The ML fit, its parameters on the SD/correlation scale and one trace per parameter.

    Rows of a trace are arrays [zeta, sd/cor..., sigma, beta...] (length 1 + n_par).
    """

    def __init__(self, fit: FittedModel):
        self.fit, self.dev = fit, _SdcorDeviance(fit)
        self.nvp = fit.n_theta + 1
        self.names = param_names(fit)
        self.opt = np.concatenate([theta_to_sdcor(fit.theta, fit.terms, fit.sigma),
                                   [fit.sigma], fit.beta])
        self.base = fit.objective
        if not math.isclose(self.dev(self.opt[:self.nvp]), self.base, rel_tol=1e-5):
            raise MixedModelsError("profiling over the residual SD is not numerically "
                                   "consistent with the fit's deviance")
        lower, upper = self.dev.map.bounds()
        fixed = np.full(fit.beta.size, np.inf)
        self.lower = np.concatenate([lower, [0.0], -fixed])
        self.upper = np.concatenate([upper, [np.inf], fixed])

    def variance_point(self, w: int, value: float, last: np.ndarray) -> np.ndarray:
        """Row with variance parameter w fixed at value; the others start from ``last``."""
        nvp, dev = self.nvp, self.dev
        others, fval = _bobyqa_box(lambda o: dev(np.insert(o, w, value)),
                                   np.delete(last[1:nvp + 1], w),
                                   np.delete(self.lower[:nvp], w), np.delete(self.upper[:nvp], w))
        pars = np.insert(others, w, value)
        if not np.isfinite(fval):
            return np.concatenate([[np.nan], pars, np.full(self.fit.beta.size, np.nan)])
        z = _zeta(value, self.opt[w], fval - self.base, self.names[w])
        return np.concatenate([[z], pars, dev.beta(pars)])

    def fixed_point(self, j: int, value: float, last: np.ndarray) -> np.ndarray:
        """Row with beta_j fixed at value; theta optimized from the ML estimate (as lme4)."""
        fit, A = self.fit, self.fit.model.A
        model = LinearMixedModel(fixed_beta_crossprod(A, j, value), fit.terms, reml=False)
        # The fit's own optimizer objective (failed factorizations handled as in the fit).
        optsum = minimize_theta(model._safe_objective, fit.theta, model.theta_lower)
        model.objective(optsum.theta)
        sigma = math.sqrt(model.L.pwrss() / A.n)
        beta = np.insert(model.L.beta() if A.p > 1 else np.empty(0), j, value)
        z = _zeta(value, self.opt[self.nvp + j], optsum.fmin - self.base, self.names[self.nvp + j])
        return np.concatenate([[z], theta_to_sdcor(optsum.theta, fit.terms, sigma), [sigma],
                               beta])

    def trace(self, w: int, delta: float, cutoff: float, maxpts: int, maxmult: float
              ) -> pd.DataFrame:
        """lme4's walk up and down from the estimate for parameter w, sorted by its value."""
        estimate, lo, hi = self.opt[w], self.lower[w], self.upper[w]
        if w < self.nvp:
            def point(value, last):
                return self.variance_point(w, value, last)
            first = estimate * 1.01 if estimate != 0 else 0.001
        else:
            def point(value, last):
                return self.fixed_point(w - self.nvp, value, last)
            first = estimate + delta * self.fit.se.to_numpy()[w - self.nvp]
        start = np.concatenate([[0.0], self.opt])
        shifted = point(first, start)
        rows = _walk([start, shifted], w + 1, lo, hi, point, delta, cutoff, maxpts, maxmult)
        if estimate > lo:
            rows += _walk([shifted, start], w + 1, lo, hi, point, delta, cutoff, maxpts,
                          maxmult)
        table = pd.DataFrame(np.vstack(rows), columns=[".zeta"] + self.names)
        return table.drop_duplicates().sort_values(self.names[w], kind="stable"
                                                   ).reset_index(drop=True)


def profile(result: FittedModel, which=None, alphamax: float = 0.01, maxpts: int = 100,
            delta: float | None = None, delta_cutoff: float = 1.0 / 8.0,
            maxmult: float = 10.0) -> Profile:
    """Profile the ML deviance of an lmer fit, as lme4's ``profile.merMod``.

    Parameters
    ----------
    result : the fit (a REML fit is refitted by ML first, as lme4 does).
    which : parameters to profile: None (all), a name or list of names (``".sig01"``,
        ``".sigma"``, ``"Days"``, or ``"theta_"`` / ``"beta_"``), or 0-based indices.
    alphamax : the profile extends to |zeta| = sqrt(qchisq(1 - alphamax, n_par)).
    maxpts : at most this many points in each direction.
    delta : step in zeta between points (default: that cutoff times ``delta_cutoff``).
    maxmult : a step in the parameter is at most ``maxmult`` times the previous one.

    Returns
    -------
    Profile
    """
    from .lrt import ml_refit

    refuse_residual_structure(result, "profile")
    prof = _Profiler(ml_refit(result))
    names, nvp = prof.names, prof.nvp
    selected = select_parameters(which, names, nvp)
    cutoff = math.sqrt(stats.chi2.ppf(1.0 - alphamax, len(names)))
    delta = cutoff * delta_cutoff if delta is None else delta
    traces, backward = trace_all(prof, selected, delta, cutoff, maxpts, maxmult)
    # lme4 stores bounds for the variance parameters only: a fixed effect whose profile
    # does not reach the requested zeta gets NA.
    is_fixed = np.arange(len(names)) >= nvp
    return Profile(traces=traces, estimates=pd.Series(prof.opt, index=names),
                   base_deviance=prof.base,
                   lower=pd.Series(np.where(is_fixed, np.nan, prof.lower), index=names),
                   upper=pd.Series(np.where(is_fixed, np.nan, prof.upper), index=names),
                   _backward=backward)


def trace_all(prof: Any, selected: list[int], delta: float, cutoff: float, maxpts: int,
              maxmult: float, each: Any = None) -> tuple[dict, dict]:
    """The traces of the parameters ``selected`` (indices into ``prof.names``) and their
    backward splines (zeta -> value; None, with a ProfileWarning, where the profile is not
    monotonic). ``prof`` is an lmer or glmer profiler with ``trace(w, delta, cutoff, maxpts,
    maxmult)``; ``each()`` is called after every parameter (a progress bar)."""
    traces: dict[str, pd.DataFrame] = {}
    backward: dict[str, _BackSpline | None] = {}
    for w in selected:
        name = prof.names[w]
        traces[name] = table = prof.trace(w, delta, cutoff, maxpts, maxmult)
        good = table[table[".zeta"].notna()]
        try:
            backward[name] = _BackSpline(good[name].to_numpy(), good[".zeta"].to_numpy())
        except (ValueError, np.linalg.LinAlgError):
            warn_user(f"non-monotonic profile for {name}", ProfileWarning)
            backward[name] = None
        if each is not None:
            each()
    return traces, backward
