"""A residual structure bound to the rows of a model: the algebra of R^-1 in a few pieces.

With prior weights w, a variance function lambda and a correlation structure C (block diagonal
by group), the residuals have covariance sigma^2 R, R = W^-1/2 Lambda C Lambda W^-1/2. The
objective needs M' R^-1 M for M = [Z X y] and log|R| (``algorithm.md`` §9b). Every structure
here writes R^-1 as a sum over a few **classes**, each a fixed cross-product times a
coefficient that depends on the parameters phi only:

    M' R^-1 M = sum_c d_c(phi) sum_{rows r in c} m_r m_r'
              + sum_k o_k(phi) sum_{pairs (a, b) in k} (m_a m_b' + m_b m_a') / 2

with m_r = sqrt(w_r) M[r] (rows) or sums of them (the per-group sums that compound symmetry
needs, "pseudo rows"). For a Markov correlation (corAR1, corCAR1) C^-1 is tridiagonal: with
a_t = phi^gap_t for the pair (t, t + 1) of a group in time order,
Q_tt = [1 on a first row, else 1 / (1 - a_{t-1}^2)] + [0 on a last row, else a_t^2 / (1 - a_t^2)],
Q_t,t+1 = -a_t / (1 - a_t^2), log|C_j| = sum log(1 - a_t^2). A row's class is (gap before, gap
after, variance class), a pair's (gap, variance classes); a variance class is a stratum
(varIdent) or a distinct covariate value (varPower). Compound symmetry: C_j^-1 =
(I - rho / (1 + (n_j - 1) rho) 1 1') / (1 - rho), the second part through the per-group sums
by (group size, variance classes).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import DataError
from ..formula.design import factor_codes, grouping_factor
from .spec import ResidualSpec, corAR1, corCAR1, corCompSymm, varIdent, varPower


def _unit(t: float) -> float:
    return t / math.sqrt(1.0 + t * t)


def _unit_inverse(u: float) -> float:
    return u / math.sqrt(1.0 - u * u)


def _one_minus_a2(log_a: np.ndarray) -> np.ndarray:
    """1 - a^2 from log|a|, accurate when a is close to 1."""
    return -np.expm1(2.0 * log_a)


class _Correlation:
    """The correlation part: groups, rows in order, pairs and their classes."""

    def __init__(self, spec: ResidualSpec, frame: pd.DataFrame, terms, n: int):
        self.spec = spec
        groups = spec.groups
        if not groups:
            # nlme takes the innermost grouping of the random effects: here the factor with
            # the most levels (the first term in lme4's order).
            groups = terms[0].group_vars
        self.group_vars = tuple(groups)
        self.group, self.group_labels = grouping_factor(frame, self.group_vars)
        _check_nested(self.group, self.group_vars, terms)
        self.sizes = np.bincount(self.group)
        name = type(spec).__name__
        if isinstance(spec, corCompSymm):
            if self.sizes.max() < 2:
                raise DataError(f"{name}: every group of '{':'.join(self.group_vars)}' has one "
                                "row; a correlation needs groups with two or more rows")
            self.rho_min = -1.0 / (self.sizes.max() - 1)
            return
        order, gaps = self._time_order(frame, name)
        same = self.group[order[1:]] == self.group[order[:-1]]
        self.pair_a, self.pair_b = order[:-1][same], order[1:][same]
        gap = gaps[same]
        self.gap_values, self.pair_gap = np.unique(gap, return_inverse=True)
        self.left = np.full(n, -1)
        self.right = np.full(n, -1)
        self.left[self.pair_b] = self.pair_gap
        self.right[self.pair_a] = self.pair_gap

    def _time_order(self, frame: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Rows by group then time (n,), and the time steps between neighbours (n - 1,)."""
        cov = self.spec.covariate
        n = self.group.size
        if cov is None:
            if isinstance(self.spec, corCAR1):
                raise DataError("corCAR1 needs the times: write corCAR1('~ time | group')")
            # Positions are the row order within each group: neighbours are one step apart.
            order = np.argsort(self.group, kind="stable")
            return order, np.ones(n - 1)
        else:
            if cov not in frame.columns:
                raise DataError(f"{name}: column '{cov}' is not in the data")
            times = pd.to_numeric(frame[cov], errors="coerce").to_numpy(dtype=float)
            if not np.all(np.isfinite(times)):
                raise DataError(f"{name}: the time covariate '{cov}' must be numeric and finite")
        order = np.lexsort((times, self.group))
        steps = np.diff(times[order])
        within = self.group[order[1:]] == self.group[order[:-1]]
        if np.any(within & (steps == 0)):
            k = int(np.flatnonzero(within & (steps == 0))[0])
            level = self.group_labels[self.group[order[k]]]
            raise DataError(f"{name}: two rows of group '{level}' have the same time "
                            f"{cov} = {times[order[k]]:g}; times must be distinct within a "
                            "group")
        if isinstance(self.spec, corAR1) and cov is not None:
            if np.any(within & (np.abs(steps - np.round(steps)) > 1e-8)):
                raise DataError(f"corAR1: '{cov}' must hold integer positions; for real times "
                                f"use corCAR1('~ {cov} | {':'.join(self.group_vars)}')")
            steps = np.round(steps)
        return order, steps


def _check_nested(group: np.ndarray, group_vars, terms) -> None:
    """Every random-effects factor must be constant within each residual group (nlme's
    structures sit inside the innermost grouping level); the cross-products rely on it."""
    for t in terms:
        n_groups = int(group.max()) + 1
        lo = np.full(n_groups, np.iinfo(np.int64).max)
        hi = np.full(n_groups, -1)
        np.minimum.at(lo, group, t.refs)
        np.maximum.at(hi, group, t.refs)
        if np.any(lo != hi):
            raise DataError(f"the residual correlation groups '{':'.join(group_vars)}' must be "
                            f"nested in every random-effects grouping factor, as in nlme's lme: "
                            f"'{t.group_name}' takes several levels within one group")


class _Variance:
    """The variance part: a class per row and lambda per class."""

    def __init__(self, spec: ResidualSpec | None, frame: pd.DataFrame, n: int):
        self.spec = spec
        if spec is None:
            self.codes, self.n_classes, self.n_par = np.zeros(n, dtype=int), 1, 0
            return
        name = type(spec).__name__
        if isinstance(spec, varIdent):
            if spec.covariate is not None or not spec.groups:
                raise DataError("varIdent: write the strata as varIdent('~ 1 | stratum')")
            for g in spec.groups:
                if g not in frame.columns:
                    raise DataError(f"varIdent: column '{g}' is not in the data")
            self.codes, self.labels = grouping_factor(frame, spec.groups)
            counts = np.bincount(self.codes, minlength=len(self.labels))
            if np.any(counts < 2):
                bad = [lab for lab, c in zip(self.labels, counts) if c < 2]
                raise DataError(f"varIdent: the stratum {bad[0]!r} of "
                                f"'{':'.join(spec.groups)}' has {int(counts.min())} row; its "
                                "residual SD cannot be told from its random effects")
            self.n_classes, self.n_par = len(self.labels), len(self.labels) - 1
        elif isinstance(spec, varPower):
            cov = spec.covariate
            if cov is None or spec.groups:
                raise DataError("varPower: write the covariate as varPower('~ v')")
            if cov not in frame.columns:
                raise DataError(f"varPower: column '{cov}' is not in the data")
            v = np.abs(pd.to_numeric(frame[cov], errors="coerce").to_numpy(dtype=float))
            if not np.all(np.isfinite(v)) or np.any(v == 0):
                raise DataError(f"varPower: '{cov}' must be numeric, finite and nonzero "
                                "(the residual SD is sigma |v|^power)")
            self.values, self.codes = np.unique(v, return_inverse=True)
            self.n_classes, self.n_par = self.values.size, 1
        else:
            raise DataError(f"{name} is a correlation structure: pass it as correlation=")

    def log_lambda(self, par: np.ndarray) -> np.ndarray:
        """(n_classes,) log of the SD multiplier per class."""
        if self.n_par == 0:
            return np.zeros(1)
        if isinstance(self.spec, varIdent):
            return np.concatenate([[0.0], par])
        return par[0] * np.log(self.values)

    def natural(self, par: np.ndarray) -> pd.Series:
        """nlme's parameter estimates: SD ratios per stratum (the first is 1), or the power."""
        if isinstance(self.spec, varIdent):
            return pd.Series(np.exp(np.concatenate([[0.0], par])), index=list(self.labels))
        return pd.Series([float(par[0])], index=["power"])


class ResidualLayout:
    """A correlation structure and/or a variance function bound to n rows (see module
    docstring). phi is the vector of their unconstrained parameters: the correlation's t
    first (if any), then the variance function's."""

    def __init__(self, correlation: ResidualSpec | None, variance: ResidualSpec | None,
                 frame: pd.DataFrame, terms, n: int):
        if correlation is not None and correlation.kind != "correlation":
            raise DataError(f"{type(correlation).__name__} is a variance function: pass it as "
                            "variance=")
        self.n = n
        self.cor = None if correlation is None else _Correlation(correlation, frame, terms, n)
        self.var = _Variance(variance, frame, n)
        self.n_cor = 0 if correlation is None else 1
        self.n_phi = self.n_cor + self.var.n_par
        self._classes()
        # Counts for log|R|, taken once: an evaluation must not touch an n-length array.
        self._var_counts = np.bincount(self.var.codes, minlength=self.var.n_classes)
        self._gap_counts = (None if self.cor is None or isinstance(self.cor.spec, corCompSymm)
                            else np.bincount(self.cor.pair_gap,
                                             minlength=self.cor.gap_values.size))

    # ---- parameters ---------------------------------------------------------------------
    def correlation_value(self, t: float) -> float:
        """nlme's Phi (AR(1), CAR(1)) or Rho (compound symmetry) for the unconstrained t."""
        spec = self.cor.spec
        if isinstance(spec, corAR1):
            return _unit(t)
        if isinstance(spec, corCAR1):
            return (1.0 + _unit(t)) / 2.0
        rmin = self.cor.rho_min
        return rmin + (1.0 - rmin) * (1.0 + _unit(t)) / 2.0

    def correlation_t(self, value: float) -> float:
        """Inverse of ``correlation_value``."""
        spec = self.cor.spec
        if isinstance(spec, corAR1):
            return _unit_inverse(value)
        if isinstance(spec, corCAR1):
            return _unit_inverse(2.0 * value - 1.0)
        rmin = self.cor.rho_min
        return _unit_inverse(2.0 * (value - rmin) / (1.0 - rmin) - 1.0)

    def names(self) -> list[str]:
        """Names of phi's entries (theta names of the residual part)."""
        out = []
        if self.cor is not None:
            label = "Rho" if isinstance(self.cor.spec, corCompSymm) else "Phi"
            out.append(f"Residual.{label}_t")
        if isinstance(self.var.spec, varIdent):
            out += [f"Residual.log_{lab}" for lab in self.var.labels[1:]]
        elif self.var.n_par:
            out.append("Residual.power")
        return out

    def start(self) -> tuple[np.ndarray, np.ndarray]:
        """(phi0, first steps), each (n_phi,); nlme's ``value=`` when given."""
        phi, steps = [], []
        if self.cor is not None:
            value = self.cor.spec.value
            if value is None:
                if isinstance(self.cor.spec, corCAR1):
                    # correlation 0.5 at the median gap
                    value = 0.5 ** (1.0 / float(np.median(self.cor.gap_values[self.cor.pair_gap])))
                else:
                    value = 0.3 if isinstance(self.cor.spec, corAR1) else 0.1
            low = self.cor.rho_min if isinstance(self.cor.spec, corCompSymm) else (
                0.0 if isinstance(self.cor.spec, corCAR1) else -1.0)
            if not low < float(value) < 1.0:
                raise DataError(f"{type(self.cor.spec).__name__}: value={value} is outside "
                                f"({low:g}, 1)")
            phi.append(self.correlation_t(float(value)))
            steps.append(0.5)
        if isinstance(self.var.spec, varIdent):
            given = self.var.spec.value or {}
            phi += [math.log(float(given.get(lab, 1.0))) for lab in self.var.labels[1:]]
            steps += [0.3] * self.var.n_par
        elif self.var.n_par:
            phi.append(float(self.var.spec.value or 0.0))
            steps.append(0.2)
        return np.array(phi, dtype=float), np.array(steps, dtype=float)

    def natural(self, phi: np.ndarray) -> tuple[pd.Series | None, pd.Series | None]:
        """(correlation parameter, variance parameters) on nlme's scale."""
        cor = None
        if self.cor is not None:
            label = "Rho" if isinstance(self.cor.spec, corCompSymm) else "Phi"
            cor = pd.Series([self.correlation_value(phi[0])], index=[label])
        var = self.var.natural(phi[self.n_cor:]) if self.var.n_par else None
        return cor, var

    # ---- classes and their coefficients ----------------------------------------------------
    def _classes(self) -> None:
        """Row classes, pairs and pair classes (module docstring)."""
        v = self.var.codes
        self.pseudo_of_row = None
        if self.cor is None:
            self.row_class, self.n_row_class = v, self.var.n_classes
            self.pair_a = self.pair_b = np.zeros(0, dtype=int)
            self.pair_class, self.n_pair_class = np.zeros(0, dtype=int), 0
            return
        if isinstance(self.cor.spec, corCompSymm):
            self.row_class, self.n_row_class = v, self.var.n_classes
            self._cs_pairs(v)
            return
        c = self.cor
        key = (c.left + 1) * (c.gap_values.size + 1) + (c.right + 1)
        key = key * self.var.n_classes + v
        self._row_keys, self.row_class = np.unique(key, return_inverse=True)
        self.n_row_class = self._row_keys.size
        va, vb = v[c.pair_a], v[c.pair_b]
        pkey = (c.pair_gap * self.var.n_classes + np.minimum(va, vb)) * self.var.n_classes \
            + np.maximum(va, vb)
        self._pair_keys, self.pair_class = np.unique(pkey, return_inverse=True)
        self.n_pair_class = self._pair_keys.size
        self.pair_a, self.pair_b = c.pair_a, c.pair_b

    def _cs_pairs(self, v: np.ndarray) -> None:
        """Compound symmetry: pseudo rows = (group, variance class) sums; pairs of pseudo rows
        of one group, classed by (group size, the two variance classes)."""
        c, V = self.cor, self.var.n_classes
        self.pseudo_key, self.pseudo_of_row = np.unique(c.group * V + v, return_inverse=True)
        p_group, p_var = self.pseudo_key // V, self.pseudo_key % V
        a, b = [], []
        starts = np.flatnonzero(np.r_[True, p_group[1:] != p_group[:-1]])
        ends = np.r_[starts[1:], p_group.size]
        for s, e in zip(starts, ends):
            for i in range(s, e):
                for j in range(i, e):
                    a.append(i)
                    b.append(j)
        self.pair_a, self.pair_b = np.array(a, dtype=int), np.array(b, dtype=int)
        size = c.sizes[p_group[self.pair_a]]
        pkey = (size * V + p_var[self.pair_a]) * V + p_var[self.pair_b]
        self._pair_keys, self.pair_class = np.unique(pkey, return_inverse=True)
        self.n_pair_class = self._pair_keys.size

    def coefficients(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(row coefficients (n_row_class,), pair coefficients (n_pair_class,), log|Lambda C
        Lambda|) at phi. Raises FloatingPointError where C is singular (|rho| = 1)."""
        phi = np.asarray(phi, dtype=float)
        V = self.var.n_classes
        log_lam = self.var.log_lambda(phi[self.n_cor:])
        inv_lam2 = np.exp(-2.0 * log_lam)
        logdet = 2.0 * float(self._var_counts @ log_lam)
        if self.cor is None:
            return inv_lam2, np.zeros(0), logdet
        value = self.correlation_value(phi[0])
        if isinstance(self.cor.spec, corCompSymm):
            return self._cs_coefficients(value, log_lam, inv_lam2, logdet)
        gaps = self.cor.gap_values
        if value == 0.0:
            log_a = np.full(gaps.size, -np.inf)
            sign = np.ones(gaps.size)
        else:
            log_a = gaps * math.log(abs(value))
            sign = np.where((value < 0) & (np.round(gaps) % 2 == 1), -1.0, 1.0)
        one_minus = _one_minus_a2(log_a)
        if np.any(one_minus <= 1e-14):
            raise FloatingPointError("residual correlation at +-1")
        a = sign * np.exp(log_a)
        a2_over = a * a / one_minus
        G = gaps.size + 1
        keys = self._row_keys
        v = keys % V
        left = (keys // V) // G - 1
        right = (keys // V) % G - 1
        diag = np.where(left >= 0, 1.0 / one_minus[np.maximum(left, 0)], 1.0) \
            + np.where(right >= 0, a2_over[np.maximum(right, 0)], 0.0)
        row = diag * inv_lam2[v]
        pk = self._pair_keys
        gap, va, vb = pk // (V * V), (pk // V) % V, pk % V
        # Q_{t,t+1} = -a / (1 - a^2), twice: the pair's product is (m_a m_b' + m_b m_a') / 2.
        pair = -2.0 * a[gap] / one_minus[gap] * np.exp(-log_lam[va] - log_lam[vb])
        return row, pair, logdet + float(self._gap_counts @ np.log(one_minus))

    def _cs_coefficients(self, rho, log_lam, inv_lam2, logdet):
        if not self.cor.rho_min < rho < 1.0:
            raise FloatingPointError("compound symmetry at its bound")
        V = self.var.n_classes
        row = inv_lam2 / (1.0 - rho)
        pk = self._pair_keys
        size, va, vb = pk // (V * V), (pk // V) % V, pk % V
        mult = np.where(va == vb, 1.0, 2.0)
        pair = (-rho / ((1.0 - rho) * (1.0 + (size - 1) * rho)) * mult
                * np.exp(-log_lam[va] - log_lam[vb]))
        sizes = self.cor.sizes
        logdet_c = float(np.sum((sizes - 1) * math.log(1.0 - rho)
                                + np.log(1.0 + (sizes - 1) * rho)))
        return row, pair, logdet + logdet_c

    # ---- normalized residuals ---------------------------------------------------------------
    def normalize(self, e: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """nlme's normalized residuals: e (n,) = residual / (sigma lambda), times the inverse of
        the Cholesky factor of each group's correlation matrix."""
        if self.cor is None:
            return e
        value = self.correlation_value(phi[0])
        out = np.array(e, dtype=float)
        if isinstance(self.cor.spec, corCompSymm):
            # nlme's factor F (F C F' = I) for compound symmetry: the group mean over
            # sqrt(n (1 + (n - 1) rho)), then Helmert contrasts over sqrt(1 - rho).
            order = np.argsort(self.cor.group, kind="stable")
            bounds = np.r_[0, np.cumsum(self.cor.sizes)]
            for g in range(self.cor.sizes.size):
                rows = order[bounds[g]:bounds[g + 1]]
                m, x = rows.size, e[rows]
                k = np.arange(1, m)
                partial = np.cumsum(x)[:-1]
                out[rows[0]] = x.sum() / math.sqrt(m * (1.0 + (m - 1) * value))
                out[rows[1:]] = (k * x[1:] - partial) / np.sqrt(k * (k + 1) * (1.0 - value))
            return out
        # e_t - a e_{t-1} over sqrt(1 - a^2) for every row after the first of its group
        # (a = phi^gap; AR(1) gaps are integers, so a negative phi is fine).
        a = value ** self.cor.gap_values[self.cor.pair_gap]
        b = self.cor.pair_b
        out[b] = (e[b] - a * e[self.cor.pair_a]) / np.sqrt(1.0 - a * a)
        return out
