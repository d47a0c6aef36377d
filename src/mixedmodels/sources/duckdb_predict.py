"""DuckDB after the fit: fitted values, residuals and predictions as relations.

Each random-effects term's b is a pandas data frame, ``mm_b<j>_<id>``, of the raw values of
its grouping columns and the term's columns of b; a query reads it by name (DuckDB's scan of
a Python data frame, ``duckdb._query_with_frames``), so it works on any connection (the
fit's, or the one of new data), creates no table there, and the relation returned holds the
data frames for as long as the relation lives. A row reads X beta + offset as SQL and one
(left) join per kept term.
"""
from __future__ import annotations

import uuid

import numpy as np
import pandas as pd

from .duckdb import VIEW, DuckDBSource, _plain, _string, _value_sql, quote
from .newdata import (SHOW_LEVELS, PredictPlan, check_columns, group_label, new_levels_error,
                      prediction_plan, unseen_factor_error)
from .poly import sql_double

NAN = "CAST('nan' AS DOUBLE)"


# ---- b as data frames ------------------------------------------------------------------------
def b_frames(result) -> dict[str, pd.DataFrame]:
    """{name: (levels, k + p) data frame} of each term's b, in the model's term order: the
    raw values of the grouping columns as ``v0..`` and the columns of b as ``b0..``. Made once
    per result."""
    frames = getattr(result, "_duckdb_b_frames", None)
    if frames is not None:
        return frames
    spec = result.info.spec
    tag = uuid.uuid4().hex[:8]
    frames = {}
    for j, (t, b) in enumerate(zip(result.terms, result.b)):
        coding = spec.codings[spec.group_keys[j]]
        values = _plain(coding.values).reset_index(drop=True)
        columns = {f"v{m}": values[c].to_numpy() for m, c in enumerate(coding.columns)}
        columns.update({f"b{a}": np.asarray(b)[:, a] for a in range(t.p)})
        frames[f"mm_b{j}_{tag}"] = pd.DataFrame(columns)
    object.__setattr__(result, "_duckdb_b_frames", frames)
    return frames


# ---- SQL of a plan ---------------------------------------------------------------------------
def _joins(plan: PredictPlan, tables: list[str]) -> str:
    out = []
    for t in plan.terms:
        on = " AND ".join(f"s.{quote(c)} = bt{t.index}.v{m}"
                          for m, c in enumerate(t.group_columns))
        out.append(f"LEFT JOIN {tables[t.index]} AS bt{t.index} ON {on}")
    return " ".join(out)


def _eta(runner: DuckDBSource, plan: PredictPlan, mask: bool) -> str:
    """SQL of X beta + offset + the kept terms' z b on a row ``s`` joined to ``bt<j>``; an
    unseen level contributes 0 (with ``allow_new_levels``; otherwise it was refused first).
    ``mask``: NaN where a column of the plan is missing (new rows may have any)."""
    codings = plan.codings
    parts = [f"{sql_double(beta)} * ({runner.render(x, codings)})"
             for beta, x in zip(plan.beta, plan.x)]
    if plan.offset.terms:
        parts.append(f"({runner.render(plan.offset, codings)})")
    for t in plan.terms:
        zb = " + ".join(f"({runner.render(z, codings)}) * bt{t.index}.b{a}"
                        for z, a in zip(t.z, t.columns))
        parts.append(f"(CASE WHEN bt{t.index}.b0 IS NULL THEN 0.0 ELSE {zb} END)"
                     if plan.allow_new_levels else f"({zb})")
    eta = " + ".join(parts) or "0.0"
    if not mask:
        return eta
    missing = " OR ".join(runner._missing(c) for c in plan.columns)
    value = f"coalesce({eta}, {NAN})"
    return f"(CASE WHEN {missing} THEN {NAN} ELSE {value} END)" if missing else value


def _check_levels(runner: DuckDBSource, plan: PredictPlan, frames: dict) -> None:
    """Unseen levels of a fixed-effects factor (always an error) and of a kept grouping
    factor (an error unless ``allow_new_levels``), found by one query each."""
    for key in plan.factors:
        coding = plan.codings[key]
        col = coding.columns[0]
        known = ", ".join(_value_sql(v) for v in _plain(coding.values)[col])
        out = runner.fetch(f"SELECT DISTINCT {quote(col)} AS v FROM {VIEW} WHERE NOT "
                           f"{runner._missing(col)} AND {quote(col)} NOT IN ({known}) "
                           "ORDER BY v LIMIT 1")
        if len(out["v"]):
            raise unseen_factor_error(plan, key, list(out["v"]))
    if plan.allow_new_levels:
        return
    for t in plan.terms:
        cols = ", ".join(f"s.{quote(c)} AS k{m}" for m, c in enumerate(t.group_columns))
        keys = ", ".join(f"k{m}" for m in range(len(t.group_columns)))
        out = runner.fetch(f"SELECT DISTINCT {cols} FROM {VIEW} AS s "
                           f"{_joins(plan, list(frames))} WHERE bt{t.index}.b0 IS NULL "
                           f"ORDER BY {keys} NULLS LAST LIMIT {SHOW_LEVELS + 1}", frames)
        rows = list(zip(*(out[f"k{m}"] for m in range(len(t.group_columns)))))
        if rows:
            raise new_levels_error(t, [group_label(r) for r in rows])


def _rows(source: DuckDBSource, result, plan: PredictPlan, newdata: DuckDBSource | None
          ) -> tuple[DuckDBSource, str, str, dict]:
    """(the source that runs the query, its FROM clause with the joins, the prediction's SQL,
    the data frames of b it reads) for the training rows used (``newdata`` None) or for new
    rows, after the checks."""
    frames = b_frames(result) if plan.terms else {}
    joins = _joins(plan, list(frames))
    if newdata is None:
        return source, source.rows_sql(joins), _eta(source, plan, mask=False), frames
    check_columns(plan, newdata.relation.columns)
    newdata.check_used(list(plan.needed))
    _check_levels(newdata, plan, frames)
    return newdata, f"{VIEW} AS s {joins}", _eta(newdata, plan, mask=True), frames


def predict_relation(result, source: DuckDBSource, plan: PredictPlan,
                     newdata: DuckDBSource | None):
    """A relation of the rows' columns and ``prediction``: the training rows used when
    ``newdata`` is None, else every row of ``newdata`` (NaN where a used column is missing)."""
    runner, rows, value, frames = _rows(source, result, plan, newdata)
    _keep_alive(result, runner)
    return runner.sql(f"SELECT s.*, {value} AS prediction FROM {rows}", frames)


def write_predictions(result, source: DuckDBSource, path: str, plan: PredictPlan,
                      newdata: DuckDBSource | None) -> None:
    """``COPY`` the rows with ``prediction`` (and, for the training rows, ``fitted`` and
    ``residual``) to the Parquet file ``path``."""
    if newdata is None:
        full = prediction_plan(result, None, False)
        runner, rows, _, frames = _rows(source, result, full, None)
        fitted = _eta(source, full, mask=False)
        spec = result.info.spec
        y = source.render(spec.y, spec.codings)
        items = (f"s.*, {_eta(source, plan, mask=False)} AS prediction, {fitted} AS fitted, "
                 f"({y}) - ({fitted}) AS residual")
    else:
        runner, rows, value, frames = _rows(source, result, plan, newdata)
        items = f"s.*, {value} AS prediction"
    runner.sql(f"COPY (SELECT {items} FROM {rows}) TO {_string(path)} (FORMAT parquet)",
               frames)


def _keep_alive(result, runner: DuckDBSource) -> None:
    """Hold new data's source (its connection, for a path) as long as the result."""
    held = getattr(result, "_duckdb_held", None)
    if held is None:
        held = []
        object.__setattr__(result, "_duckdb_held", held)
    if runner not in held:
        held.append(runner)


# ---- fitted values and residuals of the rows used -------------------------------------------
def fitted_relation(source: DuckDBSource, result, residuals: str | None):
    """A relation of the source's columns and ``fitted`` (or ``residual``) per row used."""
    spec = result.info.spec
    plan = prediction_plan(result, None, False)
    _, rows, value, frames = _rows(source, result, plan, None)
    if residuals is not None:
        value = f"({source.render(spec.y, spec.codings)}) - ({value})"
        if residuals == "pearson" and spec.weights is not None:
            value = f"sqrt({source.column_sql(spec.weights)}) * ({value})"
    name = "fitted" if residuals is None else "residual"
    return source.sql(f"SELECT s.*, {value} AS {name} FROM {rows}", frames)


class _ResidualReader:
    """The scaled Pearson residuals of a fit as SQL, for ``result.exact_quantiles``."""

    def __init__(self, source: DuckDBSource, rows: str, value: str, frames: dict):
        self.source, self.rows, self.value, self.frames = source, rows, value, frames

    def _scan(self) -> str:
        return f"(SELECT {self.value} AS r FROM {self.rows})"

    def histogram(self, lo: float, hi: float, bins: int) -> dict:
        lo_sql, hi_sql = sql_double(lo), sql_double(hi)
        if bins == 1:
            inside = f"FILTER (WHERE r >= {lo_sql} AND r <= {hi_sql})"
            out = self.source.fetch(
                f"SELECT count(*) FILTER (WHERE r < {lo_sql}) AS below, count(*) {inside} AS c, "
                f"min(r) {inside} AS lo, max(r) {inside} AS hi FROM {self._scan()}", self.frames)
            row = {k: v[0] for k, v in out.items()}
            return {-1: (int(row["below"]), 0.0, 0.0),
                    0: (int(row["c"]), float(row["lo"]), float(row["hi"]))}
        scale = sql_double(bins / (hi - lo))
        out = self.source.fetch(
            f"SELECT CASE WHEN r < {lo_sql} THEN -1 WHEN r > {hi_sql} THEN {bins} ELSE "
            f"least(CAST(floor((r - {lo_sql}) * {scale}) AS BIGINT), {bins - 1}) END AS bin, "
            f"count(*) AS c, min(r) AS lo, max(r) AS hi FROM {self._scan()} GROUP BY bin",
            self.frames)
        return {int(b): (int(c), float(lo_), float(hi_))
                for b, c, lo_, hi_ in zip(out["bin"], out["c"], out["lo"], out["hi"])
                if b < bins}

    def values(self, lo: float, hi: float) -> np.ndarray:
        out = self.source.fetch(f"SELECT r FROM {self._scan()} WHERE r >= {sql_double(lo)} "
                                f"AND r <= {sql_double(hi)}", self.frames)
        return out["r"]


def residual_reader(source: DuckDBSource, result) -> _ResidualReader:
    spec = result.info.spec
    plan = prediction_plan(result, None, False)
    _, rows, value, frames = _rows(source, result, plan, None)
    value = f"({source.render(spec.y, spec.codings)}) - ({value})"
    if spec.weights is not None:
        value = f"sqrt({source.column_sql(spec.weights)}) * ({value})"
    return _ResidualReader(source, rows, f"({value}) / {sql_double(result.sigma)}", frames)


def open_newdata(newdata, kind: str) -> DuckDBSource:
    """A ``DuckDBSource`` over new data: a relation, or a path / glob of files."""
    if kind == "path":
        from .duckdb import open_path

        return open_path(newdata)
    return DuckDBSource(newdata, "newdata (a DuckDB relation)")

