"""The two passes over a source and the fit on their blocks, whatever the engine.

Pass 1 (``engine.first_pass``) learns what the formula needs; pass 2
(``engine.cross_products``) computes every block of ``[Z X y]' W [Z X y]`` where the rows live.
From the blocks on, the fit is the in-memory one: ``LinearMixedModel`` never sees a row.

An engine has ``engine`` and ``label`` (names for messages), ``kinds()``, ``check_used(used)``,
``first_pass(needs)``, ``fix_codes(spec)``, ``cross_products(spec)`` and, for the outputs
that need rows, ``fitted(result, residuals)`` and ``residual_reader(result)``.
"""
from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from ..checks import EXACT_FIT_TOL, check_response_scale, check_scale_sds
from ..errors import DataError, warn_user
from ..formula.bars import parse_formula
from ..formula.design import DroppedRowsWarning, RankDeficiencyWarning
from ..lmm import LinearMixedModel, warn_boundary
from ..rank import independent_from_gram
from .result import SourceInfo, SourceLmerResult
from .spec import analyse, build_spec

SUPPORTED = ("a data frame (pandas, polars, ...), a DuckDB relation, a path or glob of Parquet "
             "or CSV files (read by DuckDB), or a Dask DataFrame")


def source_kind(data: Any) -> str:
    """"memory", "path", "duckdb" or "dask" for ``data``, without importing an engine that
    ``data`` does not come from. Anything else: a DataError naming what is supported."""
    if isinstance(data, (str, os.PathLike)):
        return "path"
    module = type(data).__module__ or ""
    if module.startswith("duckdb") or module.startswith("_duckdb"):
        if hasattr(data, "query") and hasattr(data, "columns"):
            return "duckdb"
        raise DataError(f"a DuckDB {type(data).__name__} is not a source; pass a relation "
                        "(con.sql(...), con.table(...)) or a path of Parquet or CSV files")
    if module.startswith("dask"):
        if hasattr(data, "map_partitions") and hasattr(data, "columns"):
            return "dask"
        raise DataError(f"a Dask {type(data).__name__} is not a source; pass a Dask DataFrame")
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return "memory"
    if module.startswith("polars") and type(data).__name__ == "LazyFrame":
        raise DataError("data is a polars LazyFrame: collect() it for an in-memory fit, or pass "
                        "the path of its files (e.g. 'events/*.parquet') to fit through DuckDB "
                        "without loading them")
    try:
        import narwhals as nw

        nw.from_native(data, eager_only=True)
    except TypeError:
        raise DataError(f"data must be {SUPPORTED}, not {type(data).__name__}") from None
    return "memory"


def open_source(data: Any, kind: str):
    """The engine object for a source of ``kind`` (see ``source_kind``)."""
    if kind == "path":
        from .duckdb import open_path

        return open_path(data)
    if kind == "duckdb":
        from .duckdb import DuckDBSource

        return DuckDBSource(data, "a DuckDB relation")
    from .dask import DaskSource

    return DaskSource(data)


def fit_source(formula: str, engine, reml: bool = True, weights: Any = None
               ) -> SourceLmerResult:
    """``lmer`` on a source: the two passes, the rank check on X'X, the fit on the blocks.

    Checks and warns as the in-memory ``lmer``: rows dropped for missing values, columns of X
    dropped as linearly dependent, a response on a scale double precision cannot square,
    predictors on very different scales, a response that X reproduces exactly, a singular fit.
    """
    if weights is not None and not isinstance(weights, str):
        raise DataError(f"weights for a model fitted from {engine.engine} must name a column "
                        f"of the source, not a {type(weights).__name__}")
    clock = [time.perf_counter()]
    mf = parse_formula(formula)
    needs = analyse(mf, engine.kinds(), weights)
    engine.check_used(needs.used)
    first = engine.first_pass(needs)
    dropped = first.n_total - first.n
    if dropped and first.n:
        # the in-memory message (formula.design._model_frame), word for word
        parts = [f"missing per column: {first.missing}"] if first.missing else []
        parts += [f"{k} where {expr} is NaN (R: 'NaNs produced')"
                  for expr, k in first.nan_rows.items()]
        warn_user(f"{dropped} row(s) dropped because of missing values "
                  f"({'; '.join(parts)})", DroppedRowsWarning)
    spec = build_spec(mf, needs, first)
    engine.fix_codes(spec)
    clock.append(time.perf_counter())
    A_full, gram, stats = engine.cross_products(spec)
    clock.append(time.perf_counter())
    _check_finite(spec, A_full)
    keep = independent_from_gram(gram)
    dropped_columns = tuple(n for i, n in enumerate(spec.x_names) if i not in set(keep.tolist()))
    if dropped_columns:
        warn_user(f"fixed-effect model matrix is rank deficient so dropping "
                  f"{len(dropped_columns)} column(s) / coefficient(s): "
                  f"{', '.join(dropped_columns)}", RankDeficiencyWarning)
    x_names = tuple(spec.x_names[i] for i in keep)
    check_response_scale(np.array(stats.y_range), np.zeros(2), mf.response)
    check_scale_sds({j: float(stats.sd[k]) for j, k in enumerate(keep)
                     if not stats.binary[k]}, x_names)
    A = A_full if keep.size == A_full.p else A_full.select_x(keep)
    model = LinearMixedModel(A, spec.terms, reml=reml)
    exact = _fits_exactly(engine, spec, A, keep)
    optsum = model.exact_fit() if exact else model.fit()
    clock.append(time.perf_counter())
    xtx = np.ascontiguousarray(gram[np.ix_(keep, keep)])
    xtx.flags.writeable = False
    keep.flags.writeable = False
    info = SourceInfo(
        formula=mf, x_names=x_names, x_terms=tuple(spec.x_terms[i] for i in keep),
        x_spec=spec.x_spec, x_keep=keep, dropped_columns=dropped_columns,
        offset_exprs=spec.offset_exprs, has_weights=weights is not None, terms=spec.terms,
        n=first.n, n_dropped_rows=dropped, xtx=xtx, source=engine, spec=spec,
        timings=dict(zip(("first_pass", "second_pass", "optimizer"), np.diff(clock))))
    result = SourceLmerResult.from_model(model, info, None, optsum, formula=formula)
    warn_boundary(mf.response, exact, result.is_singular)
    return result


def _fits_exactly(engine, spec, A, keep: np.ndarray) -> bool:
    """``checks.fits_exactly`` without the rows: X'X settles the usual case; otherwise one more
    pass sums the squared residuals of the least-squares fit (no cancellation there)."""
    p = A.p
    if A.n <= p:
        return True
    xx = A.xx
    try:
        c = np.linalg.solve(np.linalg.cholesky(xx[:p, :p]), xx[:p, p]) if p else np.zeros(0)
        if xx[p, p] - c @ c > 1e-8 * xx[p, p]:
            return False
        coef = np.linalg.solve(xx[:p, :p], xx[:p, p]) if p else np.zeros(0)
    except np.linalg.LinAlgError:
        coef = np.linalg.lstsq(xx[:p, :p], xx[:p, p], rcond=None)[0]
    rss, yy = engine.residual_ss(spec, keep, coef)
    return float(np.sqrt(max(rss, 0.0))) <= EXACT_FIT_TOL * float(np.sqrt(yy))


def _check_finite(spec, A) -> None:
    """A non-finite sum means a non-finite value in some row: name the column it came from."""
    p = A.p
    if np.all(np.isfinite(A.xx)) and all(np.all(np.isfinite(b)) for b in A.xz):
        return
    diag = np.diag(A.xx)
    if not np.isfinite(diag[p]):
        raise DataError(f"the response '{spec.formula.response}' (minus any offset) has "
                        "non-finite values (Inf or NaN) in some rows")
    for name, value in zip(spec.x_names, diag[:p]):
        if not np.isfinite(value):
            raise DataError(f"column '{name}' of the fixed-effects model matrix has "
                            "non-finite values (Inf or NaN) in some rows")
    for t, block in zip(spec.terms, A.xz):
        if not np.all(np.isfinite(block)):
            raise DataError(f"the random-effects term ({' + '.join(t.column_names)} | "
                            f"{t.group_name}) has non-finite values (Inf or NaN) in some rows")
