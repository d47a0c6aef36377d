"""What a prediction from a model fitted from a source computes, whatever the engine.

``prediction_plan`` reads a ``SourceLmerResult`` and ``re_form`` into a ``PredictPlan``: the
kept columns of X as polynomials (``poly.py``) with beta, the offset, and for each
random-effects term that ``re_form`` keeps its z columns and the matching columns of b. The
engines evaluate it on new rows (SQL for DuckDB, NumPy on each Dask partition) with the
in-memory ``predict``'s rules:

- a row with a missing value in a column of X, of the offset or of a kept term's z gets NaN;
- a level of a fixed-effects factor unseen in training is an error naming column and level;
- a grouping level unseen in training (or missing) is an error naming the term and a few
  of the levels, or contributes zero random effects with ``allow_new_levels=True``.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ..formula.contrasts import level_label, parse_python, python_text
from ..predict import _selected_columns
from .poly import Poly

SHOW_LEVELS = 5


@dataclass(frozen=True)
class PlanTerm:
    """One kept random-effects term: ``index`` among the model's terms, its grouping
    factor's name, coding key and columns; ``z`` (k,) its kept columns as polynomials and
    ``b`` (levels, k) their conditional modes, levels in the coding's order."""

    index: int
    group_name: str
    key: str
    group_columns: tuple[str, ...]
    z: tuple[Poly, ...]
    b: np.ndarray
    columns: tuple[int, ...]


@dataclass(frozen=True)
class PredictPlan:
    """X[:, kept] beta + offset + the kept terms' Z b, for rows of any engine.

    x : (p,) kept columns of X with ``beta`` (p,); offset : polynomial; terms : the kept
    terms; factors : coding keys of the factors whose levels new rows must have been seen
    with; columns : the columns whose missing values make a prediction NaN (X, offset, the
    kept terms' z); needed : every column the rows must have (those and the grouping
    columns); codings : the model's codings; allow_new_levels : as ``predict``.
    """

    x: tuple[Poly, ...]
    beta: np.ndarray
    offset: Poly
    terms: tuple[PlanTerm, ...]
    factors: tuple[str, ...]
    columns: tuple[str, ...]
    needed: tuple[str, ...]
    codings: dict
    allow_new_levels: bool

    def polys(self) -> list[Poly]:
        return [*self.x, self.offset, *(z for t in self.terms for z in t.z)]


def _atom_columns(poly: Poly, codings: dict, kinds: dict[str, str]) -> list[str]:
    """The source columns a polynomial reads."""
    out: list[str] = []
    for atom in poly.atoms():
        if atom[0] == "lev":
            out += list(codings[atom[1]].columns)
        elif atom[1] in kinds:
            out.append(atom[1])
        else:
            tree, names = parse_python(python_text(atom[1], all_arithmetic=True))
            out += [names.get(n.id, n.id) for n in ast.walk(tree)
                    if isinstance(n, ast.Name) and names.get(n.id, n.id) in kinds]
    return out


def prediction_plan(result, re_form: Any, allow_new_levels: bool) -> PredictPlan:
    """The ``PredictPlan`` of ``result`` (a fit from a source) for ``re_form`` (see
    ``predict.predict``: None keeps every term, "~0" / NaN none, a formula some columns)."""
    spec = result.info.spec
    kinds = spec.kinds
    selected = _selected_columns(result, re_form)
    x = tuple(spec.x[i] for i in result.info.x_keep)
    terms = []
    for j, t in enumerate(result.terms):
        if j not in selected:
            continue
        cols = tuple(selected[j])
        key = spec.group_keys[j]
        terms.append(PlanTerm(index=j, group_name=t.group_name, key=key,
                              group_columns=spec.codings[key].columns,
                              z=tuple(spec.z[j][a] for a in cols),
                              b=np.asarray(result.b[j])[:, list(cols)], columns=cols))
    polys = [*x, spec.offset, *(z for t in terms for z in t.z)]
    columns = list(dict.fromkeys(c for p in polys for c in _atom_columns(p, spec.codings, kinds)))
    factors = list(dict.fromkeys(a[1] for p in polys for a in p.atoms()
                                 if a[0] == "lev" and not spec.codings[a[1]].boolean))
    needed = list(dict.fromkeys(columns + [c for t in terms for c in t.group_columns]))
    return PredictPlan(x=x, beta=np.asarray(result.beta, dtype=float), offset=spec.offset,
                       terms=tuple(terms), factors=tuple(factors), columns=tuple(columns),
                       needed=tuple(needed), codings=spec.codings,
                       allow_new_levels=allow_new_levels)


def check_columns(plan: PredictPlan, have, what: str = "newdata") -> None:
    """DataError naming the first column the prediction reads that ``have`` lacks."""
    for col in plan.needed:
        if col not in have:
            raise DataError(f"{what} has no column '{col}' (used by the model's predictions)")


def unseen_factor_error(plan: PredictPlan, key: str, values: list) -> DataError:
    """The in-memory error for a fixed-effects factor level unseen in training."""
    coding = plan.codings[key]
    return DataError(f"column '{coding.columns[0]}' has level '{level_label(values[0])}' that "
                     "was not present when the model was fitted (levels: "
                     f"{', '.join(coding.labels)})")


def new_levels_error(term: PlanTerm, values: list) -> DataError:
    """Unseen (or missing) levels of a kept term's grouping factor, a few of them named."""
    shown = ", ".join("None" if v is None else repr(v) for v in values[:SHOW_LEVELS])
    more = " and more" if len(values) > SHOW_LEVELS else ""
    return DataError(f"new level(s) {shown}{more} of grouping factor '{term.group_name}' in "
                     "newdata; pass allow_new_levels=True to predict with zero random "
                     "effects for them")


def group_label(values) -> str | None:
    """R's label of one row's grouping values ('a:A' for a:b), None when one is missing."""
    labels = []
    for v in values:
        if v is None or pd.isna(v):
            return None
        labels.append(level_label(v))
    return ":".join(labels)
