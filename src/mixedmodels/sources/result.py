"""The result of a fit from a source: every output read off the blocks, rows streamed.

``SourceInfo`` is the ``ModelInfo`` of such a fit (the row-free description every result
keeps) with what the source adds: the engine that reads the rows, the model's columns as
polynomials, X'X and timings. The result holds no rows: ``rows`` raises ``RowsNeededError``.
``SourceLmerResult`` is an ``LmerResult`` whose row-level outputs run where the data live:
``fitted()``, ``residuals()`` and ``predict()`` return a lazy result of the engine (a DuckDB
relation, a Dask Series), ``write_predictions()`` writes Parquet there, the summary's residual
quantiles take a few passes over the residuals, and what needs every row in client memory
(leverages, simulation, the parametric bootstrap, influence) says so.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

# RowsNeededError lives in errors.py (results raise it too); importable from here as before.
from ..errors import MixedModelsError, RowsNeededError
from ..model_info import ModelInfo
from ..results import LmerResult

__all__ = ["SourceInfo", "SourceLmerResult", "RowsNeededError", "exact_quantiles"]


@dataclass(frozen=True, eq=False, kw_only=True)
class SourceInfo(ModelInfo):
    """The ``ModelInfo`` of a fit from a source, plus what the source needs.

    xtx : (p, p) unweighted X'X of the kept columns (what inference would compute from X);
    source : the engine that reads the rows; spec : the model's columns (``SourceSpec``);
    timings : seconds of the first pass, the second pass and the optimizer.
    """

    xtx: np.ndarray
    source: Any
    spec: Any
    timings: dict = dataclasses.field(default_factory=dict)

    @property
    def origin(self) -> str:
        return f"{self.source.engine} ({self.source.label})"

    @property
    def data_key(self) -> tuple:
        """Fits with equal keys read the same rows and response (for likelihood-ratio tests)."""
        return (self.source.identity, self.spec.formula.response, self.spec.weights,
                self.n, self.n_dropped_rows)

    def unit_weight_blocks(self):
        """The cross-products of the kept columns with every weight 1 (pbkrtest's covariance
        of a weighted fit): one more pass over the source."""
        spec = dataclasses.replace(self.spec, weights=None)
        A = self.source.cross_products(spec)[0]
        return A if self.x_keep.size == A.p else A.select_x(self.x_keep)

    def refit_blocks(self, terms) -> Any:
        """Cross-products of the same fixed effects with other random-effects terms: each one
        the original term of its grouping factor with some columns kept (or, as lmerTest's
        ranova reduces ``(0 + x | g)``, an intercept): one more pass over the source.

        terms : TermSpec sequence in fitting order."""
        from .poly import Poly

        taken: set[int] = set()
        zs, keys = [], []
        for t in terms:
            j = next(j for j, o in enumerate(self.spec.terms) if j not in taken
                     and o.group_name == t.group_name
                     and set(t.column_names) <= set(o.column_names) | {"(Intercept)"})
            taken.add(j)
            names = list(self.spec.terms[j].column_names)
            zs.append(tuple(self.spec.z[j][names.index(c)] if c in names else Poly.const(1.0)
                            for c in t.column_names))
            keys.append(self.spec.group_keys[j])
        spec = dataclasses.replace(self.spec, terms=tuple(terms), z=tuple(zs),
                                   group_keys=tuple(keys))
        A = self.source.cross_products(spec)[0]
        return A if self.x_keep.size == A.p else A.select_x(self.x_keep)


@dataclass(frozen=True, eq=False, repr=False)
class SourceLmerResult(LmerResult):
    """An ``LmerResult`` fitted from a DuckDB or Dask source (see module docstring)."""

    @property
    def source(self):
        return self.info.source

    def _needs_rows(self, what: str):
        raise RowsNeededError(
            f"{what} needs every row in client memory, and this model was fitted from "
            f"{self.source.engine} ({self.source.label}); fit it from a data frame for {what}")

    @cached_property
    def _fitted(self) -> np.ndarray:
        self._needs_rows("an in-memory vector of fitted values")

    def fitted(self):
        """Fitted values X beta + Z b + offset of the rows used, as a lazy result of the
        engine: a DuckDB relation (the source's columns and ``fitted``) or a Dask Series."""
        return self.source.fitted(self, residuals=None)

    def residuals(self, type: str = "response"):
        """Residuals of the rows used ("response" y - fitted, or "pearson" sqrt(w) times
        that), lazy as ``fitted()``."""
        if type not in ("response", "pearson"):
            raise ValueError(f"residual type must be 'response' or 'pearson', not {type!r}")
        return self.source.fitted(self, residuals=type)

    def predict(self, newdata: Any = None, re_form: Any = None,
                allow_new_levels: bool = False):
        """Predictions X beta + offset (+ Z b for the random effects ``re_form`` keeps), with
        the in-memory ``predict``'s rules (``predict.predict``), lazily where rows live.

        newdata : None for the rows used by the fit; a DuckDB relation or a path / glob of
            Parquet or CSV files (a DuckDB relation of its columns and ``prediction`` comes
            back), a Dask DataFrame (a Dask Series "prediction" aligned with its
            partitions), or a pandas / polars frame (the in-memory ``predict``'s Series
            "predicted", m values).
        re_form : None (every term), "~0" / NaN (population level) or a formula of some terms.
        allow_new_levels : an unseen or missing grouping level contributes zero when True; an
            error naming the term and a few levels otherwise. An unseen level of a
            fixed-effects factor is always an error; a missing value in a column of X, the
            offset or a kept term's z gives NaN.
        """
        from ..predict import predict
        from .newdata import prediction_plan
        from .passes import open_source, source_kind

        kind = None if newdata is None else source_kind(newdata)
        if kind == "memory":
            return predict(self, newdata, re_form=re_form, allow_new_levels=allow_new_levels)
        plan = prediction_plan(self, re_form, allow_new_levels)
        if newdata is None:
            return self.source.predict(self, plan, training=True)
        return _open_newdata(newdata, kind, open_source).predict(self, plan, training=False)

    def write_predictions(self, path: Any, newdata: Any = None, re_form: Any = None,
                          allow_new_levels: bool = False) -> str:
        """Write rows and their predictions to Parquet where the rows live; returns ``path``.

        newdata None: the rows the fit used, with their columns, ``prediction`` (for
        ``re_form``), ``fitted`` (every random effect) and ``residual`` (response minus
        fitted); else the rows of ``newdata`` (as ``predict`` takes it, data frames
        excepted) with their columns and ``prediction``. DuckDB writes one Parquet file
        (``COPY ... TO path``), Dask a directory of them (``to_parquet``); nothing of length
        n comes to the client.
        """
        import os

        from .newdata import prediction_plan
        from .passes import open_source, source_kind

        text = os.fspath(path)
        plan = prediction_plan(self, re_form, allow_new_levels)
        if newdata is None:
            self.source.write_predictions(self, text, plan, training=True)
            return text
        kind = source_kind(newdata)
        if kind == "memory":
            raise RowsNeededError("write_predictions() takes new data as a DuckDB relation, a "
                                  "path of Parquet or CSV files or a Dask DataFrame; for a data "
                                  "frame use predict(newdata) and write the result yourself")
        _open_newdata(newdata, kind, open_source).write_predictions(self, text, plan,
                                                                    training=False)
        return text

    def hatvalues(self):
        self._needs_rows("hatvalues()")

    def simulate(self, nsim: int = 1, seed: Any = None):
        self._needs_rows("simulate()")

    def bootstrap(self, nsim: int, func: Any = None, seed: Any = None, n_jobs: int = 1,
                  progress: bool | None = None):
        self._needs_memory_for_bootstrap("bootstrap()")

    def _needs_memory_for_bootstrap(self, what: str):
        """The parametric bootstrap simulates and refits every row: say how to bring them."""
        read = {"DuckDB": "relation.df() (e.g. con.sql('SELECT ...').df()) or "
                          "pandas.read_parquet(path)",
                "Dask": "ddf.compute()"}.get(self.source.engine, "a data frame")
        raise RowsNeededError(
            f"the parametric bootstrap ({what}) needs the data in memory: it simulates a "
            "response for every row and refits the model to each, and this model was fitted "
            f"from {self.source.engine} ({self.source.label}). Read the rows into a data "
            f"frame with {read} and fit from the frame: "
            f"mm.lmer({self.formula!r}, frame).{what.split('(')[0]}(...)")

    def influence(self, progress: bool | None = None):
        self._needs_rows("influence()")

    def confint(self, method: str = "wald", level: float = 0.95, **kwargs: Any):
        """As ``LmerResult.confint``; "wald" and "profile" read the blocks, "boot" needs the
        rows in memory."""
        if method == "boot":
            self._needs_memory_for_bootstrap("confint(method='boot')")
        return super().confint(method=method, level=level, **kwargs)

    def scaled_residual_quantiles(self) -> list[float]:
        """Min, quartiles and max of the scaled Pearson residuals (R's type 7 quantiles), as
        the summary prints them; exact, from a few passes over the rows."""
        return exact_quantiles(self.source.residual_reader(self), self.nobs,
                               [0.0, 0.25, 0.5, 0.75, 1.0])


def _open_newdata(newdata: Any, kind: str, open_source):
    """The engine object over new data (its label says it is newdata)."""
    if kind == "duckdb":
        from .duckdb import DuckDBSource

        return DuckDBSource(newdata, "newdata (a DuckDB relation)")
    return open_source(newdata, kind)


# ---- exact quantiles in a few passes -----------------------------------------------------
BINS = 4096
FETCH_AT_MOST = 200_000
MAX_ROUNDS = 8


def exact_quantiles(reader, n: int, probs: list[float]) -> list[float]:
    """R's type 7 quantiles of n values that only a ``reader`` can see.

    ``reader.histogram(lo, hi, bins)`` cuts the values in [lo, hi] into equal bins and gives
    {bin: (count, min, max)}, with bin -1 counting the values below lo (one bin: all values
    in [lo, hi], any lo, hi); ``reader.values(lo, hi)`` gives the values in [lo, hi]. Each
    order statistic is found by narrowing a window to the bin that holds its rank (one pass
    per round, for all ranks at once) until the window is one value or few enough to read.
    """
    ranks = sorted({r for p in probs for r in (math.floor((n - 1) * p), math.ceil((n - 1) * p))})
    total, lo, hi = reader.histogram(-math.inf, math.inf, 1)[0]
    pending = {r: (lo, hi, 0, total) for r in ranks}   # rank -> (lo, hi, below lo, count)
    found: dict[int, float] = {}
    for _ in range(MAX_ROUNDS):
        groups: dict[tuple, list[int]] = {}
        for r, window in pending.items():
            groups.setdefault(window, []).append(r)
        pending = {}
        for (lo, hi, below, count), group in groups.items():
            if lo == hi:
                found.update(dict.fromkeys(group, float(lo)))
                continue
            if count <= FETCH_AT_MOST:
                values = np.sort(np.asarray(reader.values(lo, hi), dtype=float))
                if values.size != count:
                    raise MixedModelsError("the residuals changed between passes over the "
                                           "source")
                found.update({r: float(values[r - below]) for r in group})
                continue
            bins = reader.histogram(lo, hi, BINS)
            cum = bins.get(-1, (0, 0, 0))[0]
            for b in sorted(k for k in bins if k >= 0):
                c, bmin, bmax = bins[b]
                pending.update({r: (bmin, bmax, cum, c) for r in group if cum <= r < cum + c})
                cum += c
        if not pending:
            break
    if pending:
        raise MixedModelsError("could not narrow the residual quantiles down in "
                               f"{MAX_ROUNDS} passes")
    out = []
    for p in probs:
        h = (n - 1) * p
        a, b = math.floor(h), math.ceil(h)
        out.append(found[a] + (h - a) * (found[b] - found[a]))
    return out
