"""Predictions on new data: population level, conditional, and for unseen levels."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError
from .formula import fixed as fx
from .formula.bars import parse_formula
from .formula.design import factor_codes, to_pandas


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
    """Each row's grouping-factor label (None where missing), labelled as the fit labelled its
    levels (``factor_codes``; 'a:A' for a:b)."""
    out = None
    for var in group_vars:
        if var not in frame.columns:
            raise DataError(f"newdata has no column '{var}' (grouping factor)")
        col = frame[var]
        present = col.notna().to_numpy()
        labels = np.full(len(col), None, dtype=object)
        if present.any():
            codes, levels = factor_codes(col[present])
            labels[present] = np.asarray(levels, dtype=object)[codes]
        out = labels if out is None else np.array(
            [None if a is None or b is None else f"{a}:{b}" for a, b in zip(out, labels)],
            dtype=object)
    return out


def _prototype(specs: list) -> pd.DataFrame:
    """A few rows holding every variable of ``specs`` with its training type and levels, to
    read the column names a random-effects formula would have in the fitted model."""
    columns: dict[str, Any] = {}
    n = 3
    for spec in specs:
        for var in spec._variables:
            if var.levels is not None:
                n = max(n, len(var.levels))
    for spec in specs:
        for var in spec._variables:
            for name in var.columns:
                if name in columns:
                    continue
                if var.levels is None:
                    columns[name] = np.arange(1.0, n + 1.0)
                elif var.bare:
                    values = [var.levels[i % len(var.levels)] for i in range(n)]
                    columns[name] = pd.Categorical(values, categories=var.levels,
                                                   ordered=var.ordered)
                else:
                    columns[name] = [var.levels[i % len(var.levels)] for i in range(n)]
    return pd.DataFrame(columns)


def _selected_columns(result, re_form: Any) -> dict[int, list[int]]:
    """Term index -> the columns of that term whose random effects enter the prediction.

    As lme4's ``mkNewReTrms``: each term of ``re_form`` contributes the random effects its own
    model matrix names (``~(0 + Days | Subject)`` only the Days column of ``(Days | Subject)``),
    looked up among the model's terms on the same grouping factor.
    """
    terms = result.terms
    if _is_population(re_form):
        return {}
    if re_form is None:
        return {j: list(range(t.p)) for j, t in enumerate(terms)}
    if not isinstance(re_form, str):
        raise DataError(f"re_form must be None, a formula such as '~(1 | g)', '~0' or NaN, "
                        f"not {re_form!r}")
    text = re_form if "~" in re_form else f"~{re_form}"
    bars = parse_formula("y " + text[text.index("~"):]).bars
    selected: dict[int, list[int]] = {}
    for bar in bars:
        on_factor = [j for j, t in enumerate(terms) if t.group_name == bar.group_name]
        if not on_factor:
            raise DataError(f"re_form names the grouping factor '{bar.group_name}', which is not "
                            f"in the model (its grouping factors: "
                            f"{', '.join(dict.fromkeys(t.group_name for t in terms))})")
        specs = [terms[j].lhs_spec for j in on_factor]
        try:
            names = fx.model_matrix(bar.lhs, _prototype(specs)).names
        except DataError as exc:
            raise DataError(f"re_form term ({bar.lhs} | {bar.group_name}) uses variables that "
                            f"are not in the model's random effects on '{bar.group_name}': "
                            f"{exc}") from exc
        for name in names:
            found = [(j, terms[j].column_names.index(name)) for j in on_factor
                     if name in terms[j].column_names]
            if not found:
                have = [c for j in on_factor for c in terms[j].column_names]
                raise DataError(f"random effects specified in re_form that were not present "
                                f"in the original model: '{name}' of ({bar.lhs} | "
                                f"{bar.group_name}) (the model has {', '.join(have)} on "
                                f"'{bar.group_name}')")
            j, c = found[0]
            if c not in selected.setdefault(j, []):
                selected[j].append(c)
    return {j: sorted(cols) for j, cols in selected.items()}


def predict(result, newdata: Any = None, re_form: Any = None,
            allow_new_levels: bool = False) -> pd.Series:
    """(m,) predictions X beta + offset (+ Z b for the chosen random effects), as a Series named
    "predicted" indexed like ``newdata`` (its row labels), or like the fit's rows
    (``result.rows.row_index``) when ``newdata`` is None.

    re_form : None for every random-effects term (conditional predictions); ``"~0"``, ``NaN``
        or False for population-level predictions; a formula such as ``"~(1|Subject)"`` or
        ``"~(0 + Days|Subject)"`` keeps only the random effects its terms name, as lme4
        does (the intercepts, or the Days slopes, of ``(Days | Subject)``).
    allow_new_levels : an unseen level (or a missing one) contributes zero when True and is an
        error naming the factor and the level otherwise.
    """
    if newdata is None and re_form is None:
        return result.fitted().rename("predicted")
    selected = _selected_columns(result, re_form)
    info = result.info
    terms = result.terms   # the specifications rebuild z on newdata; the fit's rows hold it
    if newdata is None:
        rows = result.rows
        X, offset, frame, row_labels = rows.X, rows.offset, None, rows.row_index
        terms = rows.terms
    else:
        frame = to_pandas(newdata, what="newdata")
        if len(frame) == 0:
            raise DataError("newdata has no rows; give at least one row to predict")
        row_labels = frame.index
        frame = frame.reset_index(drop=True)
        X = info.x_spec.build(frame)[:, info.x_keep]
        offset = np.zeros(len(frame))
        for expr in info.offset_exprs:
            offset = offset + np.asarray(fx.evaluate(expr, frame), dtype=float)
    eta = X @ result.beta + offset
    if frame is not None:
        eta[info.x_spec.missing_rows(frame)] = np.nan
    for j, (t, bj) in enumerate(zip(terms, result.b)):
        if j not in selected:
            continue
        cols = selected[j]
        if frame is None:
            eta = eta + np.einsum("np,np->n", t.z[:, cols], bj[t.refs][:, cols])
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
        z = t.lhs_spec.build(frame)[:, cols]
        contrib = np.einsum("np,np->n", z, bj[np.where(unseen, 0, codes)][:, cols])
        eta = eta + np.where(unseen, 0.0, contrib)
        eta[t.lhs_spec.missing_rows(frame)] = np.nan
    return pd.Series(eta, index=row_labels, name="predicted")
