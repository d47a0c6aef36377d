"""Random-effects terms: one per bar after expansion, with its grouping factor and template.

A term ``(lhs | g)`` is split in two:

* ``TermSpec``, its specification: the grouping factor's name, variables and levels, the
  names of the columns of its raw model matrix, how to rebuild them on new data
  (``lhs_spec``) and its covariance template (``covariance.py``), which maps the term's slice
  of ``theta`` to the p x p lower-triangular ``T`` (for lme4's ``(x | g)`` the column-major
  lower triangle, as lme4's ``Lind``). Everything that does not read rows (the model on its
  cross-products, theta handling, results, inference on the blocks, printing) works on specs.
  Fits from DuckDB or Dask build specs only.
* ``ReTerm``, a ``TermSpec`` with the term's rows: ``refs`` (n,), each row's level, and ``z``
  (n, p), the raw model matrix. Only the code that reads rows (cross-products, PIRLS,
  leverages, influence, simulation, teaching tables and plots) takes ReTerms. A ReTerm is a
  TermSpec (a subclass), so it can go wherever a spec is expected; ``term.spec`` is the
  row-free specification of either (the TermSpec itself, or the one a ReTerm was made with),
  which is what a fitted model keeps.

See ``algorithm.md`` sections 1 and 9b.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .covariance import CovarianceTemplate, Unstructured


@dataclass(frozen=True, eq=False)
class TermSpec:
    """The specification of one random-effects term (no rows).

    Attributes
    ----------
    group_name : lme4's name of the grouping factor ("Subject", "cask:batch").
    group_vars : data columns whose interaction is the grouping factor.
    levels : (l,) level labels in R's order.
    column_names : (p,) R names of the columns of the term's raw model matrix z
        ("(Intercept)", "Days").
    lhs_spec : rebuilds z on new data (``formula.fixed.MatrixSpec``).
    correlated : False for terms that came from ``||`` (label only: lme4 1.1 keeps a full
        template for each expanded piece).
    covariance : the theta -> T map (``covariance.py``); lme4's unstructured one by default.
    """

    group_name: str
    group_vars: tuple[str, ...]
    levels: tuple[str, ...]
    column_names: tuple[str, ...]
    lhs_spec: Any = field(repr=False)
    correlated: bool = True
    covariance: CovarianceTemplate = field(default=None, repr=False)

    def __post_init__(self):
        if self.covariance is None:
            object.__setattr__(self, "covariance", Unstructured(self.p))
        elif self.covariance.p != self.p:
            raise ValueError(f"covariance template for {self.covariance.p} columns on a term "
                             f"with {self.p}")

    @property
    def spec(self) -> "TermSpec":
        """The row-free specification: the TermSpec itself."""
        return self

    @property
    def p(self) -> int:
        """Columns per level."""
        return len(self.column_names)

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

    def with_rows(self, refs: np.ndarray, z: np.ndarray) -> "ReTerm":
        """This term with rows: refs (n,) level codes, z (n, p) raw model matrix."""
        return ReTerm(**{f.name: getattr(self, f.name) for f in fields(TermSpec)},
                      refs=refs, z=z)


@dataclass(frozen=True, eq=False, kw_only=True)
class ReTerm(TermSpec):
    """One random-effects term with its rows: a ``TermSpec`` plus

    refs : (n,) int32 codes of each row's level into ``levels``.
    z : (n, p) float64 raw model matrix of the bar's left side (columns ``column_names``).

    ``spec`` is the TermSpec of the same fields, made once (so it keeps its identity).
    """

    refs: np.ndarray
    z: np.ndarray
    _spec: TermSpec = field(init=False, repr=False)

    def __post_init__(self):
        if self.z.ndim != 2 or self.z.shape[1] != len(self.column_names):
            raise ValueError(f"z has shape {self.z.shape} for a term with columns "
                             f"{self.column_names}")
        super().__post_init__()
        spec = TermSpec(**{f.name: getattr(self, f.name) for f in fields(TermSpec)})
        object.__setattr__(self, "_spec", spec)

    @property
    def spec(self) -> TermSpec:
        """The row-free specification of this term."""
        return self._spec


def specs(terms) -> tuple[TermSpec, ...]:
    """The row-free specifications of ``terms`` (TermSpecs or ReTerms), in order."""
    return tuple(t.spec for t in terms)


def theta_slices(terms: list[TermSpec]) -> list[slice]:
    """Slice of the full theta vector that belongs to each term, in term order."""
    out, start = [], 0
    for t in terms:
        out.append(slice(start, start + t.n_theta))
        start += t.n_theta
    return out


def order_terms(terms: list[TermSpec]) -> list[TermSpec]:
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
