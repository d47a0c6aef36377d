"""Covariance templates: one object per random-effects term maps its theta to T (``algorithm.md``
§1 and §9b).

A term's covariance is Sigma = sigma^2 T T' with T (p, p) lower triangular. The template says
how T is built from the term's slice of theta, and carries everything else that depends on
that map: bounds, names, the start from a moment estimate, first optimizer steps, the
standard-deviation / correlation scale that the profile and VarCorr use, and the derivatives
of Sigma that Kenward-Roger needs. The objective, the moment start, Satterthwaite,
Kenward-Roger and the profile all go through it; none of them knows the layout of theta.

- ``Unstructured`` (``(x | g)``, ``us(x | g)``): theta is the lower triangle of T, column by
  column (lme4's ``Lind``); 0 is the lower bound of the diagonal entries.
- ``Diagonal`` (``diag(x | g)``): T = diag(theta), one relative SD per column.
- ``CompoundSymmetry`` (``cs(0 + f | g)``, glmmTMB's heterogeneous cs) and ``AR1``
  (``ar1(0 + f | g)``): relative SDs and one correlation, optimized as an unconstrained
  entry (see ``_SdRho``).
"""
from __future__ import annotations

import math

import numpy as np

# First trust-region step as a fraction of the start's scale (see ``initial_steps``).
STEP_FRACTION = 0.3


class CovarianceTemplate:
    """The map theta -> T of one term with p columns (the base of every structure).

    Subclasses set ``kind`` (the formula's name: "us", "diag", "cs", "ar1") and implement the
    methods below; shapes: theta (n_theta,), T and Sigma (p, p).
    """

    kind = ""

    def __init__(self, p: int):
        self.p = int(p)

    # ---- the parameters -------------------------------------------------------------
    @property
    def n_theta(self) -> int:
        raise NotImplementedError

    def lower(self) -> np.ndarray:
        """(n_theta,) lower bounds for the optimizer (-inf where free)."""
        raise NotImplementedError

    def template(self, theta: np.ndarray) -> np.ndarray:
        """(p, p) lower-triangular T from this term's theta."""
        raise NotImplementedError

    def theta_names(self, group: str, columns: tuple[str, ...]) -> list[str]:
        """Names of the theta entries, prefixed by the grouping factor's name."""
        raise NotImplementedError

    def start(self, S: np.ndarray) -> np.ndarray:
        """(n_theta,) theta whose T T' is close to S (p, p), a positive definite estimate of
        Sigma / sigma^2 (``start.moment_start``)."""
        raise NotImplementedError

    def initial_steps(self, theta: np.ndarray) -> np.ndarray:
        """(n_theta,) BOBYQA's first step per entry for a start ``theta`` from ``start``."""
        raise NotImplementedError

    # ---- the standard-deviation / correlation scale ------------------------------------
    def sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        """(n_theta,) SDs and correlations of Sigma = sigma^2 T T' (the profile's scale)."""
        raise NotImplementedError

    def theta_from_sdcor(self, values: np.ndarray, sigma: float) -> np.ndarray | None:
        """Inverse of ``sdcor``; None when the values give no valid covariance matrix."""
        raise NotImplementedError

    def sdcor_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper), each (n_theta,), of the values ``sdcor`` returns."""
        raise NotImplementedError

    def sdcor_names(self, group: str, columns: tuple[str, ...]) -> list[str]:
        """lme4's new-style names of the ``sdcor`` values (``sd_x|g``, ``cor_x.y|g``)."""
        raise NotImplementedError

    # ---- what inference needs ---------------------------------------------------------
    def covariance_derivatives(self, theta: np.ndarray, sigma: float) -> list[np.ndarray]:
        """dSigma / d gamma_r (p, p) each, for the variance parameters gamma of this term.

        Kenward-Roger writes V = sum gamma_r G_r + sigma^2 W^-1 and uses G_r = dV/d gamma_r.
        For a covariance linear in its parameters (unstructured: the entries of Sigma;
        diagonal: the variances) these are constant unit matrices, as pbkrtest's.
        """
        raise NotImplementedError

    def rectify(self, theta: np.ndarray) -> np.ndarray | None:
        """(n_theta,) signs (+-1) that move theta (n_theta,) onto its bounds with T T'
        unchanged, or None when a negative entry has no such partner (the point lies outside
        this structure). GLMM stage 2 runs Newton steps without bounds and uses this to come
        back (MixedModels.jl's ``rectify!``)."""
        raise NotImplementedError

    def is_singular(self, theta: np.ndarray, tol: float) -> bool:
        """lme4's ``isSingular`` for this term: a diagonal entry of T below tol."""
        return bool(np.any(np.diag(self.template(np.asarray(theta, dtype=float))) < tol))

    def reduced(self, p: int) -> "CovarianceTemplate":
        """The same kind of structure for a term left with p columns (``ranova``)."""
        return type(self)(p)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


def _psd_cholesky(S: np.ndarray) -> np.ndarray | None:
    """A lower-triangular T with T T' = S for S positive semi-definite, else None.

    Plain Cholesky in which a (numerically) zero pivot gives a zero column, so SDs of 0 and
    correlations of +-1 (boundary values in a profile) have a factor, as with lme4's
    ``safe_chol``.
    """
    p = S.shape[0]
    T = np.zeros_like(S)
    scale = max(float(np.max(np.abs(np.diag(S)))), 1e-300)
    for j in range(p):
        d = S[j, j] - T[j, :j] @ T[j, :j]
        if d < -1e-10 * scale:
            return None
        if d <= 1e-14 * scale:
            resid = S[j + 1:, j] - T[j + 1:, :j] @ T[j, :j]
            if np.any(np.abs(resid) > 1e-7 * scale):
                return None
            continue
        T[j, j] = math.sqrt(d)
        T[j + 1:, j] = (S[j + 1:, j] - T[j + 1:, :j] @ T[j, :j]) / T[j, j]
    return T


class Unstructured(CovarianceTemplate):
    """lme4's general term ``(x | g)`` (glmmTMB's ``us``): theta is the lower triangle of T."""

    kind = "us"

    def __init__(self, p: int):
        super().__init__(p)
        rows, cols = [], []
        for j in range(self.p):
            for i in range(j, self.p):
                rows.append(i)
                cols.append(j)
        self.rows, self.cols = np.array(rows, dtype=int), np.array(cols, dtype=int)
        self.on_diag = self.rows == self.cols
        # Flat positions of theta's entries in T, computed once (templates are built at every
        # evaluation of the objective).
        self.flat = self.rows * self.p + self.cols

    @property
    def n_theta(self) -> int:
        return self.rows.size

    def lower(self) -> np.ndarray:
        return np.where(self.on_diag, 0.0, -np.inf)

    def template(self, theta: np.ndarray) -> np.ndarray:
        T = np.zeros((self.p, self.p))
        T.flat[self.flat] = theta
        return T

    def theta_names(self, group: str, columns: tuple[str, ...]) -> list[str]:
        return [f"{group}.{columns[i]}" if i == j else f"{group}.{columns[i]}.{columns[j]}"
                for i, j in zip(self.rows, self.cols)]

    def start(self, S: np.ndarray) -> np.ndarray:
        return np.linalg.cholesky(S)[self.rows, self.cols]

    def rectify(self, theta: np.ndarray) -> np.ndarray:
        # Negating a column of T leaves T T' unchanged: every column whose diagonal entry is
        # negative is flipped as a whole.
        theta = np.asarray(theta, dtype=float)
        negative = np.zeros(self.p, dtype=bool)
        negative[self.cols[self.on_diag]] = theta[self.on_diag] < 0
        return np.where(negative[self.cols], -1.0, 1.0)

    def initial_steps(self, theta: np.ndarray) -> np.ndarray:
        # A fraction of the entry on the diagonal and of sqrt(T_ii T_jj) for the (i, j) entry
        # below it: the scale of that covariance.
        d = np.diag(self.template(theta))
        return STEP_FRACTION * np.where(self.on_diag, theta, np.sqrt(d[self.rows] * d[self.cols]))

    def sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        T = self.template(np.asarray(theta, dtype=float))
        S = sigma**2 * (T @ T.T)
        sd = np.sqrt(np.diag(S))
        with np.errstate(invalid="ignore", divide="ignore"):
            # A correlation with a zero SD is NaN (R's cov2cor).
            return np.where(self.on_diag, sd[self.rows],
                            S[self.rows, self.cols] / (sd[self.rows] * sd[self.cols]))

    def theta_from_sdcor(self, values: np.ndarray, sigma: float) -> np.ndarray | None:
        if self.p == 1:
            return np.asarray(values, dtype=float) / sigma
        sd = np.empty(self.p)
        sd[self.rows[self.on_diag]] = values[self.on_diag]
        R = np.eye(self.p)
        off_r, off_c = self.rows[~self.on_diag], self.cols[~self.on_diag]
        R[off_r, off_c] = R[off_c, off_r] = values[~self.on_diag]
        T = _psd_cholesky(R * np.outer(sd, sd) / sigma**2)
        return None if T is None else T[self.rows, self.cols]

    def sdcor_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.where(self.on_diag, 0.0, -1.0), np.where(self.on_diag, np.inf, 1.0))

    def sdcor_names(self, group: str, columns: tuple[str, ...]) -> list[str]:
        return [f"sd_{columns[i]}|{group}" if i == j else f"cor_{columns[i]}.{columns[j]}|{group}"
                for i, j in zip(self.rows, self.cols)]

    def covariance_derivatives(self, theta: np.ndarray, sigma: float) -> list[np.ndarray]:
        out = []
        for a, b in zip(self.rows, self.cols):
            E = np.zeros((self.p, self.p))
            E[a, b] = E[b, a] = 1.0
            out.append(E)
        return out


class Diagonal(CovarianceTemplate):
    """``diag(x | g)``: independent columns with their own variances, T = diag(theta)."""

    kind = "diag"

    @property
    def n_theta(self) -> int:
        return self.p

    def lower(self) -> np.ndarray:
        return np.zeros(self.p)

    def template(self, theta: np.ndarray) -> np.ndarray:
        return np.diag(np.asarray(theta, dtype=float))

    def theta_names(self, group: str, columns: tuple[str, ...]) -> list[str]:
        return [f"{group}.{c}" for c in columns]

    def start(self, S: np.ndarray) -> np.ndarray:
        return np.sqrt(np.diag(S))

    def rectify(self, theta: np.ndarray) -> np.ndarray:
        # T = diag(theta): each entry is a column of its own.
        return np.where(np.asarray(theta, dtype=float) < 0, -1.0, 1.0)

    def initial_steps(self, theta: np.ndarray) -> np.ndarray:
        return STEP_FRACTION * np.asarray(theta, dtype=float)

    def sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        return sigma * np.abs(np.asarray(theta, dtype=float))

    def theta_from_sdcor(self, values: np.ndarray, sigma: float) -> np.ndarray | None:
        values = np.asarray(values, dtype=float)
        return None if np.any(values < 0) else values / sigma

    def sdcor_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(self.p), np.full(self.p, np.inf)

    def sdcor_names(self, group: str, columns: tuple[str, ...]) -> list[str]:
        return [f"sd_{c}|{group}" for c in columns]

    def covariance_derivatives(self, theta: np.ndarray, sigma: float) -> list[np.ndarray]:
        out = []
        for a in range(self.p):
            E = np.zeros((self.p, self.p))
            E[a, a] = 1.0
            out.append(E)
        return out


def _unit(t):
    """t / sqrt(1 + t^2), (-1, 1) for real t and +-1 for t = +-inf (glmmTMB's ar1 map)."""
    t = float(t)
    if math.isinf(t):
        return math.copysign(1.0, t)
    return t / math.sqrt(1.0 + t * t)


def _unit_inverse(u: float) -> float:
    """The t with ``_unit(t) = u`` for u in [-1, 1] (+-inf at the ends)."""
    if abs(u) >= 1.0:
        return math.copysign(math.inf, u)
    return u / math.sqrt(1.0 - u * u)


class _SdRho(CovarianceTemplate):
    """Shared by ``CompoundSymmetry`` and ``AR1``: relative SDs (lower bound 0) and one
    correlation rho in (rho_min, 1), optimized as an unconstrained t (last entry of theta) so
    that every point BOBYQA tries is a valid covariance and Satterthwaite's numerical
    derivatives may step anywhere. rho = rho_min + (1 - rho_min) (1 + u(t)) / 2 with
    u(t) = t / sqrt(1 + t^2)."""

    rho_min = -1.0
    n_sd = 1

    def __init__(self, p: int):
        if p < 2:
            raise ValueError(f"{self.kind}() needs at least 2 columns on its left side, not {p}")
        super().__init__(p)

    @property
    def n_theta(self) -> int:
        return self.n_sd + 1

    def rho(self, t: float) -> float:
        """The correlation for the unconstrained entry t."""
        return self.rho_min + (1.0 - self.rho_min) * (1.0 + _unit(t)) / 2.0

    def t_of(self, rho: float) -> float:
        """Inverse of ``rho``."""
        return _unit_inverse(2.0 * (rho - self.rho_min) / (1.0 - self.rho_min) - 1.0)

    def lower(self) -> np.ndarray:
        return np.append(np.zeros(self.n_sd), -np.inf)

    def rectify(self, theta: np.ndarray) -> np.ndarray | None:
        # T = diag(s) chol(C): negating s_a negates row a of T, which negates the
        # correlations of column a with the others (T T' = S C S). Only negating every SD
        # together (T -> -T) keeps the covariance; the correlation entry t is unbounded.
        # With one SD (ar1) that is always the case; a cs point with SDs of both signs is a
        # covariance outside cs unless rho = 0, and is not mapped back.
        sd = np.asarray(theta[:self.n_sd], dtype=float)
        signs = np.ones(self.n_theta)
        if np.all(sd <= 0) and np.any(sd < 0):
            signs[:self.n_sd] = -1.0
        elif np.any(sd < 0):
            return None
        return signs

    def sds(self, theta: np.ndarray) -> np.ndarray:
        """(p,) relative SDs of the columns."""
        return np.broadcast_to(np.asarray(theta[:self.n_sd], dtype=float), (self.p,))

    def template(self, theta: np.ndarray) -> np.ndarray:
        return self.sds(theta)[:, None] * self.correlation_cholesky(self.rho(theta[-1]))

    def correlation(self, rho: float) -> np.ndarray:
        """(p, p) correlation matrix C(rho)."""
        raise NotImplementedError

    def correlation_cholesky(self, rho: float) -> np.ndarray:
        """(p, p) lower-triangular factor of C(rho), in closed form."""
        raise NotImplementedError

    def initial_steps(self, theta: np.ndarray) -> np.ndarray:
        # t moves rho by at most (1 - rho_min) / 4 per unit near t = 0: a step of a
        # quarter explores a change of correlation of about 0.1.
        return np.append(STEP_FRACTION * np.asarray(theta[:self.n_sd], dtype=float), 0.25)

    def sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        return np.append(sigma * np.abs(np.asarray(theta[:self.n_sd], dtype=float)),
                         self.rho(theta[-1]))

    def theta_from_sdcor(self, values: np.ndarray, sigma: float) -> np.ndarray | None:
        values = np.asarray(values, dtype=float)
        rho = values[-1]
        if np.any(values[:-1] < 0) or not self.rho_min <= rho <= 1.0:
            return None
        return np.append(values[:-1] / sigma, self.t_of(rho))

    def sdcor_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.append(np.zeros(self.n_sd), self.rho_min),
                np.append(np.full(self.n_sd, np.inf), 1.0))

    def reduced(self, p: int) -> CovarianceTemplate:
        return type(self)(p) if p >= 2 else Unstructured(p)


class CompoundSymmetry(_SdRho):
    """``cs(0 + f | g)`` as glmmTMB's: one SD per column, one common correlation rho.

    Sigma = sigma^2 S C S with S = diag(s), C = (1 - rho) I + rho 1 1' and
    rho in [-1 / (p - 1), 1] (C is positive semi-definite exactly there); T = S chol(C).
    """

    kind = "cs"

    def __init__(self, p: int):
        super().__init__(p)
        self.n_sd = self.p
        self.rho_min = -1.0 / (self.p - 1)

    def correlation(self, rho: float) -> np.ndarray:
        return (1.0 - rho) * np.eye(self.p) + rho

    def correlation_cholesky(self, rho: float) -> np.ndarray:
        # Column j has the diagonal d_j and one common value c_j below it:
        # d_j^2 = 1 - sum_{k<j} c_k^2 and c_j = (rho - sum_{k<j} c_k^2) / d_j.
        L = np.zeros((self.p, self.p))
        used = 0.0
        for j in range(self.p):
            d2 = 1.0 - used
            if d2 <= 1e-15:
                break               # rho at a bound: C is singular, the rest of L is 0
            d = math.sqrt(d2)
            c = (rho - used) / d
            L[j, j] = d
            L[j + 1:, j] = c
            used += c * c
        return L

    def theta_names(self, group: str, columns: tuple[str, ...]) -> list[str]:
        return [f"{group}.{c}" for c in columns] + [f"{group}.rho_t"]

    def start(self, S: np.ndarray) -> np.ndarray:
        s = np.sqrt(np.diag(S))
        R = S / np.outer(s, s)
        rho = float(np.mean(R[~np.eye(self.p, dtype=bool)]))
        # Well inside the interval, so the first steps see the likelihood on both sides.
        margin = 0.1 * (1.0 - self.rho_min)
        return np.append(s, self.t_of(min(max(rho, self.rho_min + margin), 1.0 - margin)))

    def sdcor_names(self, group: str, columns: tuple[str, ...]) -> list[str]:
        return [f"sd_{c}|{group}" for c in columns] + [f"rho_cs|{group}"]

    def covariance_derivatives(self, theta: np.ndarray, sigma: float) -> list[np.ndarray]:
        # gamma = (v_1..v_p, rho) with Sigma_ab = sqrt(v_a v_b) (rho + (1 - rho) delta_ab).
        s, rho = self.sds(theta), self.rho(theta[-1])
        out = []
        for a in range(self.p):
            E = np.zeros((self.p, self.p))
            if s[a] > 0:
                E[a, :] = E[:, a] = rho * s / (2.0 * s[a])
            E[a, a] = 1.0
            out.append(E)
        dR = sigma**2 * np.outer(s, s)
        np.fill_diagonal(dR, 0.0)
        return out + [dR]


class AR1(_SdRho):
    """``ar1(0 + f | g)``: one SD, correlation rho^|k - l| between the k-th and l-th columns
    (the levels of f in order), rho in (-1, 1).

    chol(C) in closed form: the first column is (1, rho, rho^2, ...), column j > 0 is
    sqrt(1 - rho^2) (0, .., 0, 1, rho, rho^2, ...) from row j on.
    """

    kind = "ar1"

    def __init__(self, p: int):
        super().__init__(p)
        lag = np.subtract.outer(np.arange(self.p), np.arange(self.p))
        self.lag = np.abs(lag)
        self.below = np.where(lag >= 0, lag, 0)

    def correlation(self, rho: float) -> np.ndarray:
        return rho ** self.lag

    def correlation_cholesky(self, rho: float) -> np.ndarray:
        L = np.tril(rho ** self.below)
        L[:, 1:] *= math.sqrt(max(1.0 - rho * rho, 0.0))
        return L

    def theta_names(self, group: str, columns: tuple[str, ...]) -> list[str]:
        return [f"{group}.sd", f"{group}.rho_t"]

    def start(self, S: np.ndarray) -> np.ndarray:
        s = np.sqrt(np.diag(S))
        R = S / np.outer(s, s)
        rho = float(np.mean(np.diag(R, -1)))
        return np.array([float(np.sqrt(np.mean(np.diag(S)))),
                         self.t_of(min(max(rho, -0.8), 0.8))])

    def sdcor_names(self, group: str, columns: tuple[str, ...]) -> list[str]:
        return [f"sd_ar1|{group}", f"rho_ar1|{group}"]

    def covariance_derivatives(self, theta: np.ndarray, sigma: float) -> list[np.ndarray]:
        # gamma = (v, rho) with Sigma = v C(rho), v = sigma^2 s^2.
        s, rho = float(theta[0]), self.rho(theta[-1])
        with np.errstate(divide="ignore", invalid="ignore"):
            dC = np.where(self.lag > 0, self.lag * rho ** np.maximum(self.lag - 1, 0), 0.0)
        return [self.correlation(rho), sigma**2 * s * s * dC]


# The formula's structure names and their templates (glmmTMB's and lme4 2.0's names).
TEMPLATES = {"us": Unstructured, "diag": Diagonal, "cs": CompoundSymmetry, "ar1": AR1}
STRUCTURES = tuple(TEMPLATES)


def make_covariance(kind: str, p: int) -> CovarianceTemplate:
    """The template of a term written ``kind(lhs | g)`` with p columns on its left side."""
    if kind not in TEMPLATES:
        raise ValueError(f"unknown covariance structure {kind!r}; known: "
                         f"{', '.join(STRUCTURES)}")
    return TEMPLATES[kind](p)
