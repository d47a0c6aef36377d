"""DuckDB after the fit: fitted values, residuals and predictions as relations.

Each random-effects term's b is a temporary table of the rows' connection, ``mm_<id>_b<j>_*``,
keyed by the raw values of its grouping columns (written as SQL literals, so it can live on
any connection: the fit's, or the one of new data). A row reads X beta + offset as SQL and
one (left) join per kept term. The tables of a result are dropped when the result is
garbage collected (``weakref.finalize``); the relations it returned work while it lives.
"""
from __future__ import annotations

import uuid
import weakref

import numpy as np
import pandas as pd

from .duckdb import VIEW, DuckDBSource, _double_list, _plain, _string, _value_sql, quote
from .newdata import (SHOW_LEVELS, PredictPlan, check_columns, group_label, new_levels_error,
                      prediction_plan, unseen_factor_error)
from .poly import sql_double

NAN = "CAST('nan' AS DOUBLE)"


# ---- temporary tables of b -------------------------------------------------------------------
def _drop_tables(sets: list) -> None:
    """Drop every table of ``sets`` [(relation, [table names])]; a closed connection has
    nothing left to drop."""
    import duckdb

    for relation, names in sets:
        for name in names:
            try:
                relation.query(VIEW, f"DROP TABLE IF EXISTS {name}")
            except duckdb.Error:
                break


def _literal_list(values: pd.Series) -> str:
    """A typed SQL list of raw level values (exact: numbers as numbers, text quoted)."""
    kind = values.dtype.kind
    if kind == "b":
        return "[" + ", ".join("TRUE" if v else "FALSE" for v in values) + "]::BOOLEAN[]"
    if kind in "iu":
        return "[" + ", ".join(str(int(v)) for v in values) + "]::BIGINT[]"
    if kind == "f":
        return _double_list(values.to_numpy())
    return "[" + ", ".join(_value_sql(v) for v in values) + "]"


def b_tables(result, runner: DuckDBSource) -> list[str]:
    """The b table of each term (in the model's order) on ``runner``'s connection: the
    result's tables when that connection already has them, else new ones."""
    import duckdb

    sets = getattr(result, "_duckdb_tables", None)
    if sets is None:
        sets = []
        object.__setattr__(result, "_duckdb_tables", sets)
        weakref.finalize(result, _drop_tables, sets)
    for _, names in sets:
        try:
            runner.relation.query(VIEW, f"SELECT 1 FROM {names[0]} LIMIT 0")
            return names
        except duckdb.Error:
            continue
    spec = result.info.spec
    names = []
    for j, (t, b) in enumerate(zip(result.terms, result.b)):
        coding = spec.codings[spec.group_keys[j]]
        name = f"{runner.prefix}_b{j}_{uuid.uuid4().hex[:8]}"
        values = _plain(coding.values)
        items = [f"unnest({_literal_list(values[c])}) AS v{m}"
                 for m, c in enumerate(coding.columns)]
        items += [f"unnest({_double_list(np.asarray(b)[:, a])}) AS b{a}" for a in range(t.p)]
        runner.sql(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {', '.join(items)}")
        names.append(name)
    sets.append((runner.relation, names))
    return names


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


def _check_levels(runner: DuckDBSource, plan: PredictPlan, tables: list[str]) -> None:
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
        out = runner.fetch(f"SELECT DISTINCT {cols} FROM {VIEW} AS s {_joins(plan, tables)} "
                           f"WHERE bt{t.index}.b0 IS NULL ORDER BY {keys} NULLS LAST "
                           f"LIMIT {SHOW_LEVELS + 1}")
        rows = list(zip(*(out[f"k{m}"] for m in range(len(t.group_columns)))))
        if rows:
            raise new_levels_error(t, [group_label(r) for r in rows])


def _rows(source: DuckDBSource, result, plan: PredictPlan, newdata: DuckDBSource | None
          ) -> tuple[DuckDBSource, str, str]:
    """(the source that runs the query, its FROM clause with the joins, the prediction's SQL)
    for the training rows used (``newdata`` None) or for new rows, after the checks."""
    if newdata is None:
        tables = b_tables(result, source) if plan.terms else []
        return source, source.rows_sql(_joins(plan, tables)), _eta(source, plan, mask=False)
    check_columns(plan, newdata.relation.columns)
    newdata.check_used(list(plan.needed))
    tables = b_tables(result, newdata) if plan.terms else []
    _check_levels(newdata, plan, tables)
    return newdata, f"{VIEW} AS s {_joins(plan, tables)}", _eta(newdata, plan, mask=True)


def predict_relation(result, source: DuckDBSource, plan: PredictPlan,
                     newdata: DuckDBSource | None):
    """A relation of the rows' columns and ``prediction``: the training rows used when
    ``newdata`` is None, else every row of ``newdata`` (NaN where a used column is missing)."""
    runner, rows, value = _rows(source, result, plan, newdata)
    _keep_alive(result, runner)
    return runner.sql(f"SELECT s.*, {value} AS prediction FROM {rows}")


def write_predictions(result, source: DuckDBSource, path: str, plan: PredictPlan,
                      newdata: DuckDBSource | None) -> None:
    """``COPY`` the rows with ``prediction`` (and, for the training rows, ``fitted`` and
    ``residual``) to the Parquet file ``path``."""
    if newdata is None:
        full = prediction_plan(result, None, False)
        runner, rows, _ = _rows(source, result, full, None)
        fitted = _eta(source, full, mask=False)
        spec = result.info.spec
        y = source.render(spec.y, spec.codings)
        items = (f"s.*, {_eta(source, plan, mask=False)} AS prediction, {fitted} AS fitted, "
                 f"({y}) - ({fitted}) AS residual")
    else:
        runner, rows, value = _rows(source, result, plan, newdata)
        items = f"s.*, {value} AS prediction"
    runner.sql(f"COPY (SELECT {items} FROM {rows}) TO {_string(path)} (FORMAT parquet)")


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
    _, rows, value = _rows(source, result, plan, None)
    if residuals is not None:
        value = f"({source.render(spec.y, spec.codings)}) - ({value})"
        if residuals == "pearson" and spec.weights is not None:
            value = f"sqrt({source.column_sql(spec.weights)}) * ({value})"
    name = "fitted" if residuals is None else "residual"
    return source.sql(f"SELECT s.*, {value} AS {name} FROM {rows}")


class _ResidualReader:
    """The scaled Pearson residuals of a fit as SQL, for ``result.exact_quantiles``."""

    def __init__(self, source: DuckDBSource, rows: str, value: str):
        self.source, self.rows, self.value = source, rows, value

    def _scan(self) -> str:
        return f"(SELECT {self.value} AS r FROM {self.rows})"

    def histogram(self, lo: float, hi: float, bins: int) -> dict:
        lo_sql, hi_sql = sql_double(lo), sql_double(hi)
        if bins == 1:
            inside = f"FILTER (WHERE r >= {lo_sql} AND r <= {hi_sql})"
            out = self.source.fetch(
                f"SELECT count(*) FILTER (WHERE r < {lo_sql}) AS below, count(*) {inside} AS c, "
                f"min(r) {inside} AS lo, max(r) {inside} AS hi FROM {self._scan()}")
            row = {k: v[0] for k, v in out.items()}
            return {-1: (int(row["below"]), 0.0, 0.0),
                    0: (int(row["c"]), float(row["lo"]), float(row["hi"]))}
        scale = sql_double(bins / (hi - lo))
        out = self.source.fetch(
            f"SELECT CASE WHEN r < {lo_sql} THEN -1 WHEN r > {hi_sql} THEN {bins} ELSE "
            f"least(CAST(floor((r - {lo_sql}) * {scale}) AS BIGINT), {bins - 1}) END AS bin, "
            f"count(*) AS c, min(r) AS lo, max(r) AS hi FROM {self._scan()} GROUP BY bin")
        return {int(b): (int(c), float(lo_), float(hi_))
                for b, c, lo_, hi_ in zip(out["bin"], out["c"], out["lo"], out["hi"])
                if b < bins}

    def values(self, lo: float, hi: float) -> np.ndarray:
        out = self.source.fetch(f"SELECT r FROM {self._scan()} WHERE r >= {sql_double(lo)} "
                                f"AND r <= {sql_double(hi)}")
        return out["r"]


def residual_reader(source: DuckDBSource, result) -> _ResidualReader:
    spec = result.info.spec
    plan = prediction_plan(result, None, False)
    _, rows, value = _rows(source, result, plan, None)
    value = f"({source.render(spec.y, spec.codings)}) - ({value})"
    if spec.weights is not None:
        value = f"sqrt({source.column_sql(spec.weights)}) * ({value})"
    return _ResidualReader(source, rows, f"({value}) / {sql_double(result.sigma)}")


def open_newdata(newdata, kind: str) -> DuckDBSource:
    """A ``DuckDBSource`` over new data: a relation, or a path / glob of files."""
    if kind == "path":
        from .duckdb import open_path

        return open_path(newdata)
    return DuckDBSource(newdata, "newdata (a DuckDB relation)")

