"""Predictions on new data: population level, conditional, and for unseen levels."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError
from .formula import fixed as fx
from .formula.bars import parse_formula
from .formula.design import level_label, to_pandas


def _is_population(re_form: Any) -> bool:
    """lme4's ``re.form = NA`` / ``~0``: no random effects."""
    if re_form is False:
        return True
    if isinstance(re_form, float) and np.isnan(re_form):
        return True
    if isinstance(re_form, str) and re_form.replace(" ", "") in ("~0", "0", "NA", "~-1"):
        return True
    return False


def _row_labels(frame: pd.DataFrame, group_vars: tuple[str, ...]) -> np.ndarray:
    """Each row's grouping-factor label, written as training labels are ('a:A' for a:b)."""
    out = None
    for var in group_vars:
        if var not in frame.columns:
            raise DataError(f"newdata has no column '{var}' (grouping factor)")
        col = frame[var]
        labels = np.array([None if pd.isna(v) else level_label(v) for v in col.tolist()],
                          dtype=object)
        out = labels if out is None else np.array(
            [None if a is None or b is None else f"{a}:{b}" for a, b in zip(out, labels)],
            dtype=object)
    return out


def predict(result, newdata: Any = None, re_form: Any = None,
            allow_new_levels: bool = False) -> pd.Series:
    """(m,) predictions X beta + offset (+ Z b for the chosen terms), as a Series named
    "predicted" indexed like ``newdata`` (its row labels), or like the fit's rows
    (``result.design.row_index``) when ``newdata`` is None.

    re_form : None for every random-effects term (conditional predictions); ``"~0"``, ``NaN``
        or False for population-level predictions; a formula such as ``"~(1|Subject)"`` keeps
        only the terms on the grouping factors it names.
    allow_new_levels : an unseen level (or a missing one) contributes zero when True and is an
        error naming the factor and the level otherwise.
    """
    if newdata is None and re_form is None:
        return result.fitted().rename("predicted")
    if _is_population(re_form):
        keep_groups: set[str] = set()
    elif re_form is None:
        keep_groups = {t.group_name for t in result.terms}
    else:
        text = re_form if "~" in re_form else f"~{re_form}"
        bars = parse_formula("y " + text[text.index("~"):]).bars
        keep_groups = {b.group_name for b in bars}
        unknown = keep_groups - {t.group_name for t in result.terms}
        if unknown:
            raise DataError(f"re_form names grouping factors not in the model: {sorted(unknown)}")
    d = result.design
    if newdata is None:
        X, offset, frame, row_labels = d.X, d.offset, None, d.row_index
    else:
        frame = to_pandas(newdata)
        row_labels = frame.index
        frame = frame.reset_index(drop=True)
        X = d.x_spec.build(frame)[:, d.x_keep]
        offset = np.zeros(len(frame))
        for expr in d.offset_exprs:
            offset = offset + np.asarray(fx.evaluate(expr, frame), dtype=float)
    eta = X @ result.beta + offset
    for t, bj in zip(result.terms, result.b):
        if t.group_name not in keep_groups:
            continue
        if frame is None:
            eta = eta + np.einsum("np,np->n", t.z, bj[t.refs])
            continue
        labels = _row_labels(frame, t.group_vars)
        index = {lev: i for i, lev in enumerate(t.levels)}
        codes = np.array([index.get(lab, -1) if lab is not None else -1 for lab in labels])
        unseen = codes < 0
        if unseen.any() and not allow_new_levels:
            first = labels[np.flatnonzero(unseen)[0]]
            raise DataError(f"new level {first!r} of grouping factor '{t.group_name}' in "
                            f"newdata; pass allow_new_levels=True to predict with zero random "
                            f"effects for it")
        z = t.lhs_spec.build(frame)
        contrib = np.einsum("np,np->n", z, bj[np.where(unseen, 0, codes)])
        eta = eta + np.where(unseen, 0.0, contrib)
    return pd.Series(eta, index=row_labels, name="predicted")
