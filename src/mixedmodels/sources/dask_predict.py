"""Dask after the fit: predictions on the partitions of a Dask DataFrame.

A ``PredictPlan`` (``newdata.py``) is evaluated with NumPy on each partition: levels are
matched by their R labels, as the in-memory ``predict`` matches them, so a partition needs
no categories of the whole frame. Unseen levels are looked for in one pass before the lazy
result is returned, so the error comes from ``predict()`` itself.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..formula.contrasts import level_label
from .dask import _complete, _tree
from .newdata import (SHOW_LEVELS, PredictPlan, check_columns, new_levels_error,
                      unseen_factor_error)
from .poly import Poly, numpy_numeric


def _labels(column: pd.Series) -> np.ndarray:
    """Each value's R label (None where missing), one ``level_label`` per distinct value."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    labels = np.array([level_label(u) for u in np.asarray(uniques, dtype=object)] + [None],
                      dtype=object)
    return labels[codes]


def _codes(frame: pd.DataFrame, plan: PredictPlan, key: str) -> np.ndarray:
    """(m,) level of each row for a coding (-1: missing or unseen)."""
    coding = plan.codings[key]
    labels = _codes_labels(frame, coding.columns)
    return pd.Index(coding.labels).get_indexer(pd.Index(labels, dtype=object))


def _numbers(column: pd.Series) -> np.ndarray:
    return column.to_numpy(dtype=float, na_value=np.nan)


def _value(poly: Poly, frame: pd.DataFrame, plan: PredictPlan, codes: dict) -> np.ndarray:
    """A polynomial on every row of ``frame``; NaN where a factor is missing."""
    def atom(a):
        if a[0] == "lev":
            coding = plan.codings[a[1]]
            if coding.boolean:
                v = _numbers(frame[coding.columns[0]])
                return np.where(np.isnan(v), np.nan, (v == a[2]).astype(float))
            c = codes[a[1]]
            return np.where(c < 0, np.nan, (c == a[2]).astype(float))
        if a[1] in frame.columns:
            return _numbers(frame[a[1]])
        return numpy_numeric(a[1], lambda col: _numbers(frame[col]))

    return poly.evaluate(atom, len(frame))


def _codes_labels(frame: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    """(m,) R label of each row's grouping values ('a:A' for a:b; None where missing)."""
    labels = None
    for col in columns:
        these = _labels(frame[col])
        labels = these if labels is None else np.array(
            [None if a is None or b is None else f"{a}:{b}" for a, b in zip(labels, these)],
            dtype=object)
    return labels


def _unseen(frame: pd.DataFrame, plan: PredictPlan) -> dict:
    """A few unseen labels of each fixed-effects factor and (unless new levels are allowed)
    of each kept grouping factor, None standing for a missing grouping value."""
    out = {}
    for key in plan.factors:
        col = frame[plan.codings[key].columns[0]]
        labels = _labels(col)
        bad = (_codes(frame, plan, key) < 0) & col.notna().to_numpy()
        out[("factor", key)] = sorted(set(labels[bad]))[:SHOW_LEVELS + 1]
    if not plan.allow_new_levels:
        for t in plan.terms:
            codes = _codes(frame, plan, t.key)
            missing = frame[list(t.group_columns)].isna().any(axis=1).to_numpy()
            labels = set(_codes_labels(frame, t.group_columns)[(codes < 0) & ~missing])
            found = sorted(labels)[:SHOW_LEVELS + 1] + ([None] if missing.any() else [])
            out[("term", t.index)] = found
    return out


def _add_unseen(a: dict, b: dict) -> dict:
    out = {}
    for k in a:
        named = sorted({v for v in a[k] + b[k] if v is not None})[:SHOW_LEVELS + 1]
        out[k] = named + ([None] if None in a[k] or None in b[k] else [])
    return out


def check_levels(frame, plan: PredictPlan, compute) -> None:
    """One pass over ``frame``'s partitions for unseen levels; the in-memory errors."""
    from dask import delayed

    if not plan.factors and (plan.allow_new_levels or not plan.terms):
        return
    fn = delayed(_unseen, pure=True)
    found = compute(_tree([fn(p, plan) for p in frame.to_delayed()], _add_unseen))
    for key in plan.factors:
        if found[("factor", key)]:
            raise unseen_factor_error(plan, key, found[("factor", key)])
    for t in plan.terms:
        if found.get(("term", t.index)):
            raise new_levels_error(t, found[("term", t.index)])


def _eta(frame: pd.DataFrame, plan: PredictPlan) -> np.ndarray:
    """(m,) predictions of every row of a partition (see ``newdata`` for the rules)."""
    keys = list(dict.fromkeys([*plan.factors, *(t.key for t in plan.terms)]))
    codes = {key: _codes(frame, plan, key) for key in keys}
    eta = _value(plan.offset, frame, plan, codes)
    for beta, x in zip(plan.beta, plan.x):
        eta = eta + beta * _value(x, frame, plan, codes)
    for t in plan.terms:
        c = codes[t.key]
        if (c < 0).any() and not plan.allow_new_levels:
            raise new_levels_error(t, sorted(set(_codes_labels(frame, t.group_columns)[c < 0]),
                                             key=str))
        zb = np.zeros(len(frame))
        for k, z in enumerate(t.z):
            zb = zb + _value(z, frame, plan, codes) * t.b[np.maximum(c, 0), k]
        eta = eta + np.where(c < 0, 0.0, zb)
    if plan.columns:
        eta = np.where(frame[list(plan.columns)].isna().any(axis=1).to_numpy(), np.nan, eta)
    return eta


def _predict_partition(frame: pd.DataFrame, plan: PredictPlan, used: tuple | None
                       ) -> pd.Series:
    """A partition's predictions, indexed as its rows (its complete rows when ``used``)."""
    if used is not None:
        frame = frame.loc[_complete(frame, list(used[0]), used[1])]
    return pd.Series(_eta(frame, plan), index=frame.index, name="prediction")


def _rows_partition(frame: pd.DataFrame, plan: PredictPlan, full: PredictPlan | None,
                    y: Poly | None, used: tuple | None) -> pd.DataFrame:
    """A partition's rows with ``prediction`` (and, for the training rows, ``fitted`` and
    ``residual``)."""
    if used is not None:
        frame = frame.loc[_complete(frame, list(used[0]), used[1])]
    out = frame.assign(prediction=_eta(frame, plan))
    if full is not None:
        fitted = _eta(frame, full)
        out = out.assign(fitted=fitted, residual=_value(y, frame, full, {}) - fitted)
    return out


def predict_series(source, plan: PredictPlan, frame, used: tuple | None):
    """A Dask Series named "prediction", aligned with ``frame``'s partitions (its complete
    rows when ``used``: (the training's used columns, its NaN expressions))."""
    if used is None:
        check_columns(plan, frame.columns)
        check_levels(frame, plan, source._compute)
    return frame.map_partitions(_predict_partition, plan, used,
                                meta=pd.Series(dtype=float, name="prediction"))


def rows_frame(source, plan: PredictPlan, frame, full: PredictPlan | None, y: Poly | None,
               used: tuple | None):
    """A Dask DataFrame of the rows with their predictions, for ``write_predictions``."""
    if used is None:
        check_columns(plan, frame.columns)
        check_levels(frame, plan, source._compute)
    meta = frame._meta.assign(prediction=pd.Series(dtype=float))
    if full is not None:
        meta = meta.assign(fitted=pd.Series(dtype=float), residual=pd.Series(dtype=float))
    return frame.map_partitions(_rows_partition, plan, full, y, used, meta=meta)
