"""What a fitted model knows about its design without its rows (``ModelInfo``).

The formula layer (``formula.design.build_design``) reads the data once and gives a ``Design``:
this description plus the rows (y, X, offset, weights, row labels, binomial trials and each
term's codes and z). A fit from DuckDB or Dask never has the rows in memory and builds the
description alone (``sources.result.SourceInfo``, a ``ModelInfo`` with the source's extras).
A result holds the description always and the rows only when the fit had them, so every
output that needs no rows (tables, inference on the cross-products, printing) reads
``result.info`` and works for both kinds of fit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .terms import TermSpec


@dataclass(frozen=True, eq=False)
class ModelInfo:
    """The row-free description of one model's design.

    formula : the parsed ``MixedFormula``;
    x_names, x_terms : (p,) R names and term labels of X's kept columns; x_spec : rebuilds
    every column of X (before the rank check) on new data; x_keep : (p,) positions of the kept
    columns among them; dropped_columns : names dropped by the rank check;
    offset_exprs : the ``offset()`` expressions of the formula; has_weights : prior weights
    were given; terms : the random-effects term specifications in fitting order (lme4's:
    decreasing number of levels); n : rows used; n_dropped_rows : rows dropped for missing
    values; response_levels : (failure, success) labels of a GLMM's factor response (its two
    levels, or with one or more than two levels (first level, "not " + first level)), else
    None.
    """

    formula: Any
    x_names: tuple[str, ...]
    x_terms: tuple[str, ...]
    x_spec: Any
    x_keep: np.ndarray
    dropped_columns: tuple[str, ...]
    offset_exprs: tuple[str, ...]
    has_weights: bool
    terms: tuple[TermSpec, ...]
    n: int
    n_dropped_rows: int
    response_levels: tuple[str, str] | None = None

    @property
    def p(self) -> int:
        """Columns of X kept by the rank check."""
        return len(self.x_names)

    @property
    def origin(self) -> str:
        """Where the rows were read from, for messages."""
        return "a data frame"

    @property
    def data_key(self) -> tuple | None:
        """Fits with equal keys read the same rows, response and weights (likelihood-ratio
        tests); None when the rows themselves are at hand to compare."""
        return None
