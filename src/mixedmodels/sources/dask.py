"""Dask as a source: a Dask DataFrame on any scheduler (a ``distributed.Client`` if active).

Each pass maps a function over the partitions and adds the partial results pairwise in a
tree of tasks, so only the final sum reaches the client. Pass 1 returns counts, missing
values, the partitions' distinct levels (merged, duplicates dropped) and the moments of the
``scale()``d columns; pass 2 returns each partition's ``CrossProducts`` (the in-memory
grouped sums on the partition's rows, with the levels coded as in the whole) merged by
``crossprod.merge``. The same partitioning gives the same tree and so the same bits; any
partitioning agrees with the in-memory fit to round-off. ``dask`` is imported on first use.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..crossprod import CrossProductPlan, merge
from ..errors import DataError
from ..formula.rexpr import column_kind
from .poly import Poly, numpy_numeric
from .spec import FACTOR, ColumnStats, FirstPass, Needs, SourceSpec


def _kind(name: str, dtype) -> str:
    try:
        return column_kind(pd.Series([], dtype=dtype, name=name))
    except DataError:
        return str(dtype).upper()


def _tree(parts: list, combine):
    """One delayed value: ``parts`` added pairwise, level by level, by ``combine``."""
    from dask import delayed

    combine = delayed(combine, pure=True)
    while len(parts) > 1:
        parts = [combine(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


def _nan_drops(frame: pd.DataFrame, present: np.ndarray, nan_exprs) -> tuple[np.ndarray, dict]:
    """(rows kept (m,) bool, expression -> rows it drops): as in memory, a row whose values
    are present is dropped where an expression gives NaN, counted by the first such one."""
    kept, counts = present.copy(), {}
    for expr in nan_exprs:
        made = np.isnan(numpy_numeric(
            expr, lambda c: frame[c].to_numpy(dtype=float, na_value=np.nan))) & kept
        counts[expr] = int(made.sum())
        kept &= ~made
    return kept, counts


def _complete(frame: pd.DataFrame, used: list[str], nan_exprs=()) -> np.ndarray:
    """(m,) the rows a fit uses: no used column missing, no expression NaN."""
    present = ~frame[used].isna().any(axis=1).to_numpy()
    return _nan_drops(frame, present, nan_exprs)[0] if nan_exprs else present


# ---- pass 1 ----------------------------------------------------------------------------------
def _first_partial(frame: pd.DataFrame, needs: Needs, categories: dict) -> dict:
    """Counts, missing values, distinct levels and moments of one partition."""
    keep, nan_rows = _nan_drops(frame, _complete(frame, needs.used), needs.nan_exprs)
    rows = frame.loc[keep]
    out = {"n_total": len(frame), "n": int(keep.sum()),
           "missing": {c: int(frame[c].isna().sum()) for c in needs.used},
           "distinct": {}, "moments": {}, "inf": {}, "w_neg": 0, "w_zero": 0,
           "nan_rows": nan_rows}
    for key, cols in needs.codings.items():
        out["distinct"][key] = _aligned(rows.loc[:, list(cols)], categories).drop_duplicates()
    for c in needs.scale:
        x = rows[c].to_numpy(dtype=float)
        m = float(x.mean()) if x.size else 0.0
        out["moments"][c] = (x.size, m, float(((x - m) ** 2).sum()))
    for c in needs.numeric:
        out["inf"][c] = int(np.isinf(rows[c].to_numpy(dtype=float)).sum())
    if needs.weights is not None:
        w = rows[needs.weights].to_numpy(dtype=float)
        out["w_neg"], out["w_zero"] = int((w < 0).sum()), int((w == 0).sum())
    return out


def _aligned(frame: pd.DataFrame, categories: dict) -> pd.DataFrame:
    """Categorical columns with the categories of the whole frame (a partition's own order
    would depend on the partition); categoricals of unknown categories as text."""
    out = {}
    for c in frame.columns:
        col = frame[c]
        if c in categories:
            cats = categories[c]
            col = col.astype(object) if cats is None else col.astype(cats)
        out[c] = col
    return pd.DataFrame(out, index=frame.index)


def _add_first(a: dict, b: dict) -> dict:
    out = {"n_total": a["n_total"] + b["n_total"], "n": a["n"] + b["n"],
           "missing": {c: a["missing"][c] + b["missing"][c] for c in a["missing"]},
           "distinct": {k: pd.concat([a["distinct"][k], b["distinct"][k]]).drop_duplicates()
                        for k in a["distinct"]},
           "moments": {}, "inf": {c: a["inf"][c] + b["inf"][c] for c in a["inf"]},
           "w_neg": a["w_neg"] + b["w_neg"], "w_zero": a["w_zero"] + b["w_zero"],
           "nan_rows": {e: a["nan_rows"][e] + b["nan_rows"][e] for e in a["nan_rows"]}}
    for c, (na, ma, sa) in a["moments"].items():
        nb, mb, sb = b["moments"][c]
        n = na + nb
        # Chan et al.'s pairwise update: stable where sums of squares would cancel
        delta = mb - ma
        out["moments"][c] = (n, ma + delta * nb / n if n else 0.0,
                             sa + sb + delta * delta * na * nb / n if n else 0.0)
    return out


# ---- the rows of one partition as arrays ------------------------------------------------------
@dataclass(frozen=True)
class RowProgram:
    """What a worker needs to turn a partition into arrays (small and picklable).

    used : columns read; nan_exprs : expressions whose NaN drops a row; x, y, offset :
    polynomials; weights : column or None; z, group_keys
    : per term; lookups : coding key -> (columns, level values as an Index / MultiIndex);
    booleans : coding key -> column; categories : as ``DaskSource.categories``; terms : the
    terms without their formula specs (levels, names).
    """

    used: tuple[str, ...]
    x: tuple[Poly, ...]
    y: Poly
    offset: Poly
    weights: str | None
    z: tuple[tuple[Poly, ...], ...]
    group_keys: tuple[str, ...]
    lookups: dict
    booleans: dict
    categories: dict
    terms: tuple
    nan_exprs: tuple = ()

    @classmethod
    def of(cls, spec: SourceSpec, categories: dict) -> "RowProgram":
        lookups, booleans = {}, {}
        for key, coding in spec.codings.items():
            if coding.boolean:
                booleans[key] = coding.columns[0]
                continue
            values = _aligned(coding.values, categories)
            index = (pd.Index(values.iloc[:, 0]) if len(coding.columns) == 1
                     else pd.MultiIndex.from_frame(values))
            lookups[key] = (coding.columns, index)
        return cls(used=tuple(spec.used), x=tuple(spec.x), y=spec.y, offset=spec.offset,
                   weights=spec.weights, z=tuple(spec.z), group_keys=tuple(spec.group_keys),
                   lookups=lookups, booleans=booleans, categories=categories,
                   terms=tuple(dataclasses.replace(t, lhs_spec=None) for t in spec.terms),
                   nan_exprs=tuple(spec.nan_exprs))

    def rows(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
        """The complete rows of a partition and each coding's codes (m,) on them."""
        rows = _aligned(frame.loc[_complete(frame, list(self.used), self.nan_exprs),
                                  list(self.used)],
                        self.categories)
        codes = {}
        for key, (cols, index) in self.lookups.items():
            probe = (pd.Index(rows[cols[0]]) if len(cols) == 1
                     else pd.MultiIndex.from_frame(rows.loc[:, list(cols)]))
            codes[key] = index.get_indexer(probe).astype(np.int32)
            if codes[key].size and codes[key].min() < 0:
                raise DataError(f"a level of {', '.join(cols)} was not seen in the first pass: "
                                "the Dask DataFrame changed between the passes")
        for key, col in self.booleans.items():
            codes[key] = rows[col].to_numpy().astype(np.int32)
        return rows, codes

    def value(self, poly: Poly, rows: pd.DataFrame, codes: dict) -> np.ndarray:
        def atom(a):
            if a[0] == "lev":
                return (codes[a[1]] == a[2]).astype(float)
            if a[1] in rows.columns:
                return rows[a[1]].to_numpy(dtype=float)
            return numpy_numeric(a[1], lambda c: rows[c].to_numpy(dtype=float))

        return poly.evaluate(atom, len(rows))


def _blocks_partial(frame: pd.DataFrame, program: RowProgram, with_gram: bool):
    """(CrossProducts, unweighted X'X or None) of one partition's complete rows."""
    rows, codes = program.rows(frame)
    m = len(rows)
    X = np.column_stack([program.value(x, rows, codes) for x in program.x]) if program.x \
        else np.zeros((m, 0))
    y = program.value(program.y, rows, codes)
    offset = program.value(program.offset, rows, codes)
    w = (rows[program.weights].to_numpy(dtype=float) if program.weights is not None
         else np.ones(m))
    part_terms = []
    for t, zs, key in zip(program.terms, program.z, program.group_keys):
        z = np.column_stack([program.value(p, rows, codes) for p in zs])
        part_terms.append(t.with_rows(codes[key], z))
    A = CrossProductPlan(part_terms).fill(X, y, offset, w)
    yc = y - offset
    mean = X.mean(axis=0) if m else np.zeros(X.shape[1])
    stats = {"n": m, "mean": mean, "m2": ((X - mean) ** 2).sum(axis=0),
             "binary": np.all((X == 0) | (X == 1), axis=0),
             "y_range": (float(yc.min()), float(yc.max())) if m else (np.inf, -np.inf)}
    return A, (X.T @ X if with_gram else None), stats


def _add_stats(a: dict, b: dict) -> dict:
    """Column moments of two row sets together (Chan et al.'s pairwise update)."""
    n = a["n"] + b["n"]
    delta = b["mean"] - a["mean"]
    return {"n": n, "mean": a["mean"] + delta * (b["n"] / n if n else 0.0),
            "m2": a["m2"] + b["m2"] + delta**2 * (a["n"] * b["n"] / n if n else 0.0),
            "binary": a["binary"] & b["binary"],
            "y_range": (min(a["y_range"][0], b["y_range"][0]),
                        max(a["y_range"][1], b["y_range"][1]))}


def _add_blocks(a, b):
    return (merge([a[0], b[0]]), (None if a[1] is None else a[1] + b[1]),
            _add_stats(a[2], b[2]))


def _residual_partial(frame: pd.DataFrame, program: RowProgram, keep: tuple,
                      coef: np.ndarray) -> np.ndarray:
    rows, codes = program.rows(frame)
    yc = program.value(program.y - program.offset, rows, codes)
    r = yc.copy()
    for k, b in zip(keep, coef):
        r -= b * program.value(program.x[k], rows, codes)
    w = (rows[program.weights].to_numpy(dtype=float) if program.weights is not None
         else np.ones(len(rows)))
    return np.array([np.sum(w * r * r), np.sum(w * yc * yc)])


class DaskSource:
    """A Dask DataFrame and what the passes need to compute on it (see module docstring)."""

    engine = "Dask"

    def __init__(self, frame: Any):
        from dask.base import tokenize

        self.frame = frame
        self.label = f"a Dask DataFrame with {frame.npartitions} partitions"
        self.identity = ("dask", tokenize(frame))
        meta = frame._meta
        self._kinds = {c: _kind(c, meta[c].dtype) for c in meta.columns}
        # categories of the whole frame (None: unknown, read as text)
        self.categories = {}
        for c in meta.columns:
            if isinstance(meta[c].dtype, pd.CategoricalDtype):
                known = getattr(frame[c].cat, "known", False)
                self.categories[c] = meta[c].dtype if known else None
            elif self._kinds[c] == FACTOR:
                self.categories[c] = None

    def kinds(self) -> dict[str, str]:
        return dict(self._kinds)

    def check_used(self, used: list[str]) -> None:
        """A Dask DataFrame has one schema: nothing to check per file."""

    def _compute(self, parts: list):
        import dask

        return dask.compute(parts)[0]

    def first_pass(self, needs: Needs) -> FirstPass:
        from dask import delayed

        fn = delayed(_first_partial, pure=True)
        parts = [fn(p, needs, self.categories) for p in self.frame.to_delayed()]
        total = self._compute(_tree(parts, _add_first))
        for c, count in total["inf"].items():
            if count:
                raise DataError(f"column '{c}' has {count} infinite value(s) in {self.label}; "
                                "the model needs finite numbers")
        for key, what in (("w_neg", "negative"), ("w_zero", "zero")):
            if total[key]:
                raise DataError(f"weights column '{needs.weights}' has {total[key]} {what} "
                                f"value(s) in {self.label}; weights must be positive")
        scale = {c: (m, float(np.sqrt(s / (n - 1))) if n > 1 else float("nan"))
                 for c, (n, m, s) in total["moments"].items()}
        return FirstPass(n_total=total["n_total"], n=total["n"],
                         missing={c: k for c, k in total["missing"].items() if k},
                         distinct={k: v.reset_index(drop=True)
                                   for k, v in total["distinct"].items()},
                         scale=scale,
                         nan_rows={e: k for e, k in total["nan_rows"].items() if k})

    def fix_codes(self, spec: SourceSpec) -> None:
        """Codes come from R's order directly (``RowProgram``): nothing to fix."""

    def cross_products(self, spec: SourceSpec):
        """Pass 2: the merged ``CrossProducts`` of every column of X and the unweighted X'X."""
        from dask import delayed

        fn = delayed(_blocks_partial, pure=True)
        program = delayed(RowProgram.of(spec, self.categories))
        parts = [fn(p, program, spec.weights is not None) for p in self.frame.to_delayed()]
        A, gram, moments = self._compute(_tree(parts, _add_blocks))
        if A.n != spec.first.n:
            raise DataError(f"the second pass over {self.label} saw {A.n} complete rows and "
                            f"the first {spec.first.n}: the source changed between the passes")
        p = A.p
        sd = np.sqrt(moments["m2"] / (moments["n"] - 1)) if moments["n"] > 1 \
            else np.full(p, np.nan)
        stats = ColumnStats(y_range=moments["y_range"], sd=sd, binary=moments["binary"])
        return A, (A.xx[:p, :p].copy() if gram is None else gram), stats

    def residual_ss(self, spec: SourceSpec, keep: np.ndarray, coef: np.ndarray
                    ) -> tuple[float, float]:
        """(sum of w (y - offset - X[:, keep] coef)^2, sum of w (y - offset)^2): one pass."""
        from dask import delayed

        fn = delayed(_residual_partial, pure=True)
        program = delayed(RowProgram.of(spec, self.categories))
        parts = [fn(p, program, tuple(int(k) for k in keep), np.asarray(coef))
                 for p in self.frame.to_delayed()]
        rss, yy = self._compute(_tree(parts, np.add))
        return float(rss), float(yy)

    # ---- after the fit ----------------------------------------------------------------------
    def _estimates(self, result) -> tuple:
        spec = result.info.spec
        program = RowProgram.of(spec, self.categories)
        kept = tuple(spec.x[i] for i in result.info.x_keep)
        return program, kept, np.asarray(result.beta), tuple(np.asarray(b) for b in result.b)

    def fitted(self, result, residuals: str | None = None):
        """A Dask Series (indexed like the frame's rows used) of the fitted values, or of the
        residuals of the given type."""
        program, kept, beta, b = self._estimates(result)
        name = "fitted" if residuals is None else "residual"
        return self.frame.map_partitions(_row_values, program, kept, beta, b, residuals, 1.0,
                                         meta=pd.Series(dtype=float, name=name))

    def predict(self, result, plan, training: bool):
        """A Dask Series "prediction" of the rows ``result`` used (``training``) or of every
        row of this frame, aligned with the partitions (see ``dask_predict``)."""
        from .dask_predict import predict_series

        spec = result.info.spec
        used = (tuple(spec.used), spec.nan_exprs) if training else None
        return predict_series(self, plan, self.frame, used)

    def write_predictions(self, result, path: str, plan, training: bool) -> None:
        """Those rows and their predictions written as a directory of Parquet files."""
        from .dask_predict import rows_frame
        from .newdata import prediction_plan

        spec = result.info.spec
        full = prediction_plan(result, None, False) if training else None
        rows_frame(self, plan, self.frame, full, spec.y if training else None,
                   (tuple(spec.used), spec.nan_exprs) if training else None).to_parquet(path)

    def residual_reader(self, result) -> "_ResidualReader":
        program, kept, beta, b = self._estimates(result)
        return _ResidualReader(self, (program, kept, beta, b, "pearson", result.sigma))


def _row_values(frame: pd.DataFrame, program: RowProgram, kept: tuple, beta: np.ndarray,
                b: tuple, residuals: str | None, sigma: float) -> pd.Series:
    """Fitted values X beta + offset + Z b of a partition's complete rows, or their residuals
    (``"response"``, or ``"pearson"`` divided by ``sigma``)."""
    rows, codes = program.rows(frame)
    eta = program.value(program.offset, rows, codes)
    for coef, x in zip(beta, kept):
        eta = eta + coef * program.value(x, rows, codes)
    for zs, key, bj in zip(program.z, program.group_keys, b):
        for a, z in enumerate(zs):
            eta = eta + program.value(z, rows, codes) * bj[codes[key], a]
    if residuals is None:
        return pd.Series(eta, index=rows.index, name="fitted")
    r = program.value(program.y, rows, codes) - eta
    if residuals == "pearson":
        if program.weights is not None:
            r = np.sqrt(rows[program.weights].to_numpy(dtype=float)) * r
        r = r / sigma
    return pd.Series(r, index=rows.index, name="residual")


def _histogram_partial(frame, args, lo: float, hi: float, bins: int) -> dict:
    r = _row_values(frame, *args).to_numpy()
    out = {-1: (int((r < lo).sum()), 0.0, 0.0)}
    r = r[(r >= lo) & (r <= hi)]
    if r.size == 0:
        return out
    if bins == 1:
        which = np.zeros(r.size, dtype=np.int64)
    else:
        which = np.minimum(np.floor((r - lo) * (bins / (hi - lo))).astype(np.int64), bins - 1)
    stats = pd.Series(r).groupby(which).agg(["count", "min", "max"])
    out.update({int(k): (int(c), float(a), float(z))
                for k, c, a, z in zip(stats.index, stats["count"], stats["min"], stats["max"])})
    return out


def _add_histograms(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, (c, lo, hi) in b.items():
        if k in out and k >= 0:
            c0, lo0, hi0 = out[k]
            out[k] = (c0 + c, min(lo0, lo), max(hi0, hi))
        else:
            out[k] = (out.get(k, (0, 0.0, 0.0))[0] + c, lo, hi) if k < 0 else (c, lo, hi)
    return out


def _values_partial(frame, args, lo: float, hi: float) -> np.ndarray:
    r = _row_values(frame, *args).to_numpy()
    return r[(r >= lo) & (r <= hi)]


class _ResidualReader:
    """The scaled Pearson residuals of a fit, read by passes over the partitions."""

    def __init__(self, source: DaskSource, args: tuple):
        self.source, self.args = source, args

    def histogram(self, lo: float, hi: float, bins: int) -> dict:
        from dask import delayed

        fn, args = delayed(_histogram_partial, pure=True), delayed(self.args)
        parts = [fn(p, args, lo, hi, bins) for p in self.source.frame.to_delayed()]
        return self.source._compute(_tree(parts, _add_histograms))

    def values(self, lo: float, hi: float) -> np.ndarray:
        from dask import delayed

        fn, args = delayed(_values_partial, pure=True), delayed(self.args)
        parts = [fn(p, args, lo, hi) for p in self.source.frame.to_delayed()]
        return self.source._compute(_tree(parts, lambda a, b: np.concatenate([a, b])))
