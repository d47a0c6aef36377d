"""Satterthwaite denominator degrees of freedom, as lmerTest computes them (``algorithm.md`` §10).

lmerTest treats the variance parameters as ``phi = (theta, sigma)`` and needs two numerical
derivatives at the estimates:

- the Hessian H of the deviance D(theta, sigma), profiled over beta but **not** over sigma; its
  Moore-Penrose inverse gives ``Var(phi) ~ 2 H^+``;
- the Jacobian of ``C(phi) = Var(beta-hat) = sigma^2 (R_X' R_X)^{-1}``.

Both are taken by numDeriv's Richardson extrapolation (``genD`` for the Hessian, ``jacobian`` for
C), reimplemented here with numDeriv's default steps, so that the degrees of freedom agree with
lmerTest's to many digits rather than to the accuracy of the derivatives.

Every evaluation refills the factor of the fit's own workspace (``result.model``): no second
workspace is built, and no evaluation reads the data (cost independent of n). The values at the
estimates are read off the workspace as the fit left it when it still holds the fit's theta.
Afterwards the workspace is put back at the theta it held before (as ``LmerResult.at_theta``
does), so read-offs computed later from it (``cond_var``) are those of the fit. Evaluations are
cached by theta, because a step in sigma alone does not change the factor, and the Hessian's
mixed (theta_i, sigma) steps revisit its theta_i steps. The result is cached per fitted result,
so a summary and an anova share one computation.
"""
from __future__ import annotations

import contextlib
import math
import weakref
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.linalg as sla

from ..errors import warn_user
from ..lmm import LinearMixedModel

# numDeriv's defaults (numDeriv 2016.8-1.1): hessian() uses d = 0.1, jacobian() d = 1e-4.
RICHARDSON = dict(eps=1e-4, zero_tol=math.sqrt(np.finfo(float).eps / 7e-7), r=4, v=2)
HESSIAN_D = 0.1
JACOBIAN_D = 1e-4
# lmerTest: eigenvalues of H below this (in absolute value) are treated as zero.
EIGEN_TOL = 1e-8


class HessianWarning(UserWarning):
    """The deviance Hessian at the estimates has negative or near-zero eigenvalues."""


def _steps(x: np.ndarray, d: float) -> np.ndarray:
    """numDeriv's initial steps: relative ``d |x|``, absolute ``eps`` where x is (near) zero."""
    return np.abs(d * x) + RICHARDSON["eps"] * (np.abs(x) < RICHARDSON["zero_tol"])


def _extrapolate(a: np.ndarray) -> np.ndarray:
    """Richardson extrapolation over the first axis (r estimates at steps h, h/2, h/4, ...).

    Each pass removes the next even power of h from the error, as numDeriv does with v = 2.
    """
    for m in range(1, a.shape[0]):
        a = (a[1:] * 4.0**m - a[:-1]) / (4.0**m - 1.0)
    return a[0]


def richardson_hessian(f: Callable[[np.ndarray], float], x: np.ndarray,
                       d: float = HESSIAN_D) -> np.ndarray:
    """Hessian (k, k) of a scalar f at x (k,), as ``numDeriv::hessian`` (``genD``) computes it.

    Diagonal: second differences ``(f(x+h) - 2 f(x) + f(x-h)) / h^2``; off-diagonal: the
    second difference along ``e_i + e_j`` minus the two diagonal terms. Each from r step sizes
    halved in turn, combined by Richardson extrapolation.
    """
    x = np.asarray(x, dtype=float)
    k, r = x.size, RICHARDSON["r"]
    f0 = f(x)
    h0 = _steps(x, d)
    eye = np.eye(k)
    hdiag = np.empty(k)
    for i in range(k):
        approx = np.empty(r)
        h = h0.copy()
        for s in range(r):
            step = eye[i] * h
            approx[s] = (f(x + step) - 2.0 * f0 + f(x - step)) / h[i] ** 2
            h = h / RICHARDSON["v"]
        hdiag[i] = _extrapolate(approx)
    H = np.diag(hdiag)
    for i in range(k):
        for j in range(i):
            approx = np.empty(r)
            h = h0.copy()
            for s in range(r):
                step = eye[i] * h + eye[j] * h
                approx[s] = (f(x + step) - 2.0 * f0 + f(x - step) - hdiag[i] * h[i] ** 2
                             - hdiag[j] * h[j] ** 2) / (2.0 * h[i] * h[j])
                h = h / RICHARDSON["v"]
            H[i, j] = H[j, i] = _extrapolate(approx)
    return H


def richardson_jacobian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                        d: float = JACOBIAN_D) -> np.ndarray:
    """Jacobian (m, k) of a vector function f: (k,) -> (m,), as ``numDeriv::jacobian``.

    Central differences at r step sizes (halved in turn), then Richardson extrapolation.
    """
    x = np.asarray(x, dtype=float)
    k, r = x.size, RICHARDSON["r"]
    h = _steps(x, d)
    eye = np.eye(k)
    columns = []
    for i in range(k):
        approx = []
        hi = h[i]
        for _ in range(r):
            step = eye[i] * hi
            approx.append((np.asarray(f(x + step)) - np.asarray(f(x - step))) / (2.0 * hi))
            hi = hi / RICHARDSON["v"]
        columns.append(_extrapolate(np.array(approx)))
    return np.column_stack(columns)


class VarParWorkspace:
    """theta -> (ldL2, ldRX2, pwrss, L_X^{-1}), refilling a model's workspace.

    Parameters
    ----------
    model : LinearMixedModel
        The workspace to use (the fit's own, ``result.model``). Its factor is refilled at each
        new theta: use ``borrowed`` to put it back afterwards.
    reml : whether the deviance is the REML criterion (as the fit) or the ML deviance.
    """

    def __init__(self, model: LinearMixedModel, reml: bool):
        self.model = model
        self.n, self.p = model.A.n, model.A.p
        self.reml = bool(reml)
        self.evaluations = 0
        self._cache: dict[bytes, tuple[float, float, float, np.ndarray]] = {}
        # log|R| moves with a residual structure's parameters (A.sum_log_w = -log|R|, refilled
        # with them); it is constant otherwise, and its change is then exactly 0.
        self._sum_log_w = model.A.sum_log_w

    @contextlib.contextmanager
    def borrowed(self, home: np.ndarray):
        """Use the workspace inside the block; then refill it at the theta it held before
        (``home`` (n_theta,) when it held none), unless it is still there."""
        before = self.model.theta_in_L
        back = np.array(home if before is None else before, dtype=float)
        try:
            yield self
        finally:
            if not np.array_equal(self.model.theta_in_L, back):
                self.model.objective(back)

    def at(self, theta: np.ndarray) -> tuple[float, float, float, np.ndarray]:
        """(ldL2, ldRX2, pwrss, RX_inv) at theta; RX_inv (p, p) = L_X^{-1} = R_X^{-T}; ldL2
        plus the change of log|R| for a residual structure."""
        theta = np.ascontiguousarray(theta, dtype=float)
        key = theta.tobytes()
        if key not in self._cache:
            if not np.array_equal(self.model.theta_in_L, theta):
                self.model.objective(theta)
                self.evaluations += 1
            L = self.model.L
            RX_inv = sla.solve_triangular(L.xx[: self.p, : self.p], np.eye(self.p), lower=True,
                                          check_finite=False)
            log_r = self._sum_log_w - self.model.A.sum_log_w
            self._cache[key] = (L.ldL2() + log_r, L.ldRX2(), L.pwrss(), RX_inv)
        return self._cache[key]

    def deviance(self, varpar: np.ndarray) -> float:
        """lmerTest's ``devfun_vp``: -2 log-likelihood (REML or ML, as fitted) at (theta, sigma).

        ``ldL2 + r^2 / sigma^2 + nu log(2 pi sigma^2)`` (+ ``ldRX2`` for REML), nu = n or
        n - p; beta is profiled, sigma is not. The constant -log|W| is left out (as lmerTest);
        with a residual structure its change log|R(phi)| - log|R(phi-hat)| is in ``ldL2``.
        """
        ldL2, ldRX2, pwrss, _ = self.at(varpar[:-1])
        sigma2 = varpar[-1] ** 2
        nu = self.n - self.p if self.reml else self.n
        value = ldL2 + pwrss / sigma2 + nu * math.log(2.0 * math.pi * sigma2)
        return value + ldRX2 if self.reml else value

    def covbeta(self, varpar: np.ndarray) -> np.ndarray:
        """Var(beta-hat) = sigma^2 (R_X' R_X)^{-1} at (theta, sigma), flattened to (p * p,)."""
        RX_inv = self.at(varpar[:-1])[3]
        return (varpar[-1] ** 2 * (RX_inv.T @ RX_inv)).ravel()


@dataclass(frozen=True)
class VarParDerivatives:
    """What lmerTest stores in an ``lmerModLmerTest`` object, for p fixed effects, k = n_theta + 1.

    vcov_beta : (p, p) Var(beta-hat) at the estimates.
    vcov_varpar : (k, k) ``2 H^+``, the asymptotic covariance of (theta, sigma).
    jacobian : (k, p, p) derivative of Var(beta-hat) with respect to each of (theta, sigma).
    hessian : (k, k) the deviance Hessian H.
    evaluations : factorizations the derivatives needed (distinct theta values other than the
        one the workspace already held; putting the workspace back is not counted).
    """

    vcov_beta: np.ndarray
    vcov_varpar: np.ndarray
    jacobian: np.ndarray
    hessian: np.ndarray
    evaluations: int


_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def varpar_derivatives(result) -> VarParDerivatives:
    """Hessian and Jacobian of lmerTest's Satterthwaite method for ``result`` (cached).

    Warns (``HessianWarning``) as lmerTest does when the Hessian has negative or near-zero
    eigenvalues; those directions are left out of ``2 H^+``.
    """
    cached = _CACHE.get(result)
    if cached is not None:
        return cached
    varpar = np.append(np.asarray(result.theta, dtype=float), result.sigma)
    work = VarParWorkspace(result.model, result.reml)
    with work.borrowed(result.theta):
        H = richardson_hessian(work.deviance, varpar)
        jac = richardson_jacobian(work.covbeta, varpar)
    evals, evecs = np.linalg.eigh(H)
    neg = evals < -EIGEN_TOL
    zero = np.abs(evals) <= EIGEN_TOL
    if neg.any():
        warn_user(f"Model failed to converge with {int(neg.sum())} negative eigenvalue(s) of "
                  f"the deviance Hessian: {', '.join(f'{v:.1e}' for v in evals[neg])}",
                  HessianWarning)
    if zero.any():
        warn_user(f"Model may not have converged with {int(zero.sum())} eigenvalue(s) of the "
                  f"deviance Hessian close to zero: "
                  f"{', '.join(f'{v:.1e}' for v in evals[zero])}", HessianWarning)
    pos = evals > EIGEN_TOL
    vcov_varpar = 2.0 * (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T
    p = result.beta.size
    jacobian = np.stack([jac[:, m].reshape(p, p) for m in range(varpar.size)])
    out = VarParDerivatives(vcov_beta=np.asarray(result.vcov, dtype=float),
                            vcov_varpar=vcov_varpar, jacobian=jacobian, hessian=H,
                            evaluations=work.evaluations)
    _CACHE[result] = out
    return out


def t_test_df(deriv: VarParDerivatives, c: np.ndarray) -> tuple[float, float]:
    """Variance and Satterthwaite df of ``c' beta-hat`` (lmerTest ``contest1D``).

    c : (p,). Returns (v, nu) with ``v = c' C c``, ``nu = 2 v^2 / (g' A g)``, g_m = c' J_m c.
    """
    c = np.asarray(c, dtype=float)
    v = float(c @ deriv.vcov_beta @ c)
    g = np.einsum("i,mij,j->m", c, deriv.jacobian, c)
    with np.errstate(divide="ignore", invalid="ignore"):
        nu = 2.0 * v**2 / float(g @ deriv.vcov_varpar @ g)
    return v, nu


def f_test_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """lmerTest's ``get_Fstat_ddf``: one denominator df from the df of independent t tests.

    ``E = sum nu_m / (nu_m - 2)``, ``ddf = 2E / (E - h)``; 2 if any nu_m <= 2; the common value
    when all nu_m agree to tol.
    """
    nu = np.asarray(nu, dtype=float)
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * E / (E - nu.size)


def f_test(deriv: VarParDerivatives, beta: np.ndarray, K: np.ndarray
           ) -> tuple[float, int, float] | None:
    """Satterthwaite F test of ``K beta = 0`` (lmerTest ``contestMD``).

    K : (h, p). Returns (F, numerator df, denominator df), or None when ``K C K'`` has rank 0.
    The rows are rotated to independent estimates (eigenvectors of ``K C K'``, positive
    eigenvalues only), each gets its own t test and df, and the F statistic's df follows from
    theirs (``f_test_ddf``).
    """
    K = np.atleast_2d(np.asarray(K, dtype=float))
    if K.shape[0] == 1:
        v, nu = t_test_df(deriv, K[0])
        return float((K[0] @ beta) ** 2 / v), 1, nu
    d, P = np.linalg.eigh(K @ deriv.vcov_beta @ K.T)
    d, P = d[::-1], P[:, ::-1]          # decreasing, as R's eigen()
    pos = d > max(math.sqrt(np.finfo(float).eps) * d[0], 0.0)
    q = int(pos.sum())
    if q == 0:
        return None
    PtK = (P.T @ K)[:q]
    if q == 1:
        v, nu = t_test_df(deriv, PtK[0])
        return float((PtK[0] @ beta) ** 2 / v), 1, nu
    t2 = (PtK @ beta) ** 2 / d[:q]
    g = np.einsum("ri,mij,rj->rm", PtK, deriv.jacobian, PtK)
    with np.errstate(divide="ignore", invalid="ignore"):
        nu = 2.0 * d[:q] ** 2 / np.einsum("rm,mn,rn->r", g, deriv.vcov_varpar, g)
    return float(t2.sum() / q), q, f_test_ddf(nu)
