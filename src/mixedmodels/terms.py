"""Random-effects terms: one per bar after expansion, with its grouping factor and template.

A term ``(lhs | g)`` has a raw model matrix ``z`` (n, p) built from ``lhs``, a grouping factor
coded as ``refs`` (n,) into ``levels`` (l,), and a covariance template (``covariance.py``) that
maps its slice of ``theta`` to the p x p lower-triangular ``T`` (for lme4's ``(x | g)`` the
column-major lower triangle, as lme4's ``Lind``). See ``algorithm.md`` sections 1 and 9b.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .covariance import CovarianceTemplate, Unstructured


@dataclass(frozen=True, eq=False)
class ReTerm:
    """One random-effects term.

    Attributes
    ----------
    group_name : lme4's name of the grouping factor ("Subject", "cask:batch").
    group_vars : data columns whose interaction is the grouping factor.
    levels : (l,) level labels in R's order.
    refs : (n,) int32 codes of each row's level into ``levels``.
    z : (n, p) float64 raw model matrix of the bar's left side.
    column_names : (p,) R names of the columns of ``z`` ("(Intercept)", "Days").
    lhs_spec : rebuilds ``z`` on new data (``formula.fixed.MatrixSpec``).
    correlated : False for terms that came from ``||`` (label only: lme4 1.1 keeps a full
        template for each expanded piece).
    covariance : the theta -> T map (``covariance.py``); lme4's unstructured one by default.
    """

    group_name: str
    group_vars: tuple[str, ...]
    levels: tuple[str, ...]
    refs: np.ndarray
    z: np.ndarray
    column_names: tuple[str, ...]
    lhs_spec: Any = field(repr=False)
    correlated: bool = True
    covariance: CovarianceTemplate = field(default=None, repr=False)

    def __post_init__(self):
        if self.covariance is None:
            object.__setattr__(self, "covariance", Unstructured(self.z.shape[1]))
        elif self.covariance.p != self.z.shape[1]:
            raise ValueError(f"covariance template for {self.covariance.p} columns on a term "
                             f"with {self.z.shape[1]}")

    @property
    def p(self) -> int:
        """Columns per level."""
        return self.z.shape[1]

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def q(self) -> int:
        """Number of random effects of this term, l * p."""
        return self.n_levels * self.p

    @property
    def n_theta(self) -> int:
        return self.covariance.n_theta

    @property
    def structure(self) -> str:
        """The formula's name of the covariance structure: "us", "diag", "cs" or "ar1"."""
        return self.covariance.kind

    def tril_indices(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices of the lower triangle of a p x p matrix, column-major (the
        layout of an unstructured term's theta)."""
        rows, cols = np.tril_indices(self.p)
        order = np.lexsort((rows, cols))
        return rows[order], cols[order]

    def theta_lower(self) -> np.ndarray:
        """(n_theta,) lower bounds of this term's theta."""
        return self.covariance.lower()

    def template(self, theta_i: np.ndarray) -> np.ndarray:
        """(p, p) lower-triangular T from this term's slice of theta."""
        return self.covariance.template(theta_i)

    def theta_names(self) -> list[str]:
        """lme4's names: ``Subject.(Intercept)``, ``Subject.Days.(Intercept)``, ``Subject.Days``."""
        return self.covariance.theta_names(self.group_name, self.column_names)


def theta_slices(terms: list[ReTerm]) -> list[slice]:
    """Slice of the full theta vector that belongs to each term, in term order."""
    out, start = [], 0
    for t in terms:
        out.append(slice(start, start + t.n_theta))
        start += t.n_theta
    return out


def order_terms(terms: list[ReTerm]) -> list[ReTerm]:
    """lme4's order of the random-effects terms (``mkReTrms`` with ``reorder.terms = TRUE``).

    The terms stay in formula order unless some term has more levels than the one before it
    (``any(diff(nl) > 0)``); then they are put in ``rev(order(nl))``: decreasing number of
    levels, with terms of equal size in REVERSE formula order (R's ``order`` is stable and
    ``rev`` reverses the ties). ``(1|C) + (1|A) + (1|B)`` with 3, 5 and 5 levels becomes B, A, C;
    ``(1|A) + (1|B) + (1|C)`` stays as it is.

    The first block of L never receives a downdate, so the largest factor goes first and the
    fill-in from crossing lands in the smaller ones (``algorithm.md`` section 5).
    """
    levels = [t.n_levels for t in terms]
    if not any(b > a for a, b in zip(levels, levels[1:])):
        return list(terms)
    ascending = sorted(range(len(terms)), key=lambda i: levels[i])
    return [terms[i] for i in reversed(ascending)]
