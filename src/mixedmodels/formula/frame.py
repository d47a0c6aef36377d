"""The user's data as R's ``model.frame`` sees it, before any model matrix is built.

Reads pandas, polars or any narwhals-supported frame into pandas without pyarrow (column by
column through numpy, polars Enum and Categorical columns keeping R's level order), checks
the column labels, reads ``weights=`` given as a column name, an array or a Series, and finds
the rows that R's ``na.omit`` drops because an expression of the formula gives NaN there
(``log(y)`` for y < 0): R evaluates every variable of the formula before dropping rows.
The checks of cells, finite values and weights name the column or expression and the data
row by the user's label.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, MixedModelsError
from .contrasts import r_tokens
from .rexpr import evaluate

__all__ = ["WEIGHTS_COLUMN", "to_pandas", "prior_weights", "call_expressions", "nan_rows",
           "row_label", "check_finite", "check_cells", "weights_values"]

# R's own name for the weights in a model frame; the column that holds weights given as an
# array or a Series.
WEIGHTS_COLUMN = "(weights)"


def to_pandas(data: Any, what: str = "data") -> pd.DataFrame:
    """Accept pandas, polars or any narwhals-supported frame; return a pandas DataFrame.

    Parameters
    ----------
    data : data frame
        A pandas frame is returned as it is (not copied).
    what : str
        The argument's name, for errors (``"data"``, ``"newdata"``).

    Returns
    -------
    pandas.DataFrame
        With text column labels, each once. Other frames get a RangeIndex; a polars Enum
        becomes a pandas Categorical with the Enum's order, a polars Categorical one with its
        categories in polars' (lexical) order, which is also R's order of the same strings.

    Raises
    ------
    DataError
        Not a data frame (a file name gets a hint on reading it), a column label that is not
        text, or a label used twice.
    """
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        raise DataError(f"{what} must be a data frame, not the text {str(data)!r}: read a file "
                        "first (pandas.read_csv, pandas.read_parquet) or load a bundled dataset "
                        "(mixedmodels.datasets.load(name))")
    else:
        frame = _from_narwhals(data, what)
    _check_labels(frame.columns, what)
    return frame


def _from_narwhals(data: Any, what: str) -> pd.DataFrame:
    import narwhals as nw

    try:
        native = nw.from_native(data, eager_only=True)
    except TypeError:
        raise DataError(f"{what} must be a data frame (pandas, polars, ...), not "
                        f"{type(data).__name__}") from None
    columns = {}
    for name in native.columns:
        series = native.get_column(name)
        dtype = series.dtype
        if isinstance(dtype, nw.Enum):
            columns[name] = pd.Categorical(series.to_numpy(), categories=list(dtype.categories))
        elif isinstance(dtype, nw.Categorical):
            # pandas sorts the categories it infers by code point, as polars sorts a
            # Categorical and R's factor() sorts strings (C locale)
            columns[name] = pd.Categorical(series.to_numpy())
        elif isinstance(dtype, nw.Boolean) and series.null_count() > 0:
            columns[name] = pd.array(series.to_numpy(), dtype="boolean")
        elif dtype.is_nested():
            raise DataError(f"column '{name}' of {what} holds {dtype} values; a model needs "
                            "numbers, text, logicals or categories")
        else:
            columns[name] = series.to_numpy()
    return pd.DataFrame(columns, index=pd.RangeIndex(len(native)))


def _check_labels(labels: pd.Index, what: str) -> None:
    """DataError for a label that a formula cannot name: not text, or used twice."""
    for position, label in enumerate(labels):
        if not isinstance(label, str):
            raise DataError(
                f"column {position + 1} of {what} is labelled {label!r} "
                f"({type(label).__name__}); formulas name columns by text: rename the columns, "
                f"e.g. {what}.columns = {what}.columns.astype(str), and write `{label}` in the "
                "formula")
    if not labels.is_unique:
        name = labels[labels.duplicated()][0]
        where = [i + 1 for i, label in enumerate(labels) if label == name]
        raise DataError(f"column '{name}' appears {len(where)} times in {what} (columns "
                        f"{', '.join(map(str, where))}); give each column its own name")


def prior_weights(weights: Any, data: pd.DataFrame) -> tuple[str | None, np.ndarray | None]:
    """Read ``weights=`` as lme4 does: a column name, or values for the data's N rows.

    Parameters
    ----------
    weights : None, str, array-like of length N, pandas Series or other Series
        A pandas Series is matched to the data's rows by its index labels; anything else
        by position.
    data : pandas DataFrame, N rows

    Returns
    -------
    column : str or None
        The column of ``data`` that holds the weights (``None`` without weights, else the
        name given or :data:`WEIGHTS_COLUMN` for values).
    values : ndarray (N,) or None
        The values to add as :data:`WEIGHTS_COLUMN`; None when they are a column already.

    Raises
    ------
    DataError
        A name that is not a column, a wrong length, a Series whose labels are not the
        data's, or values that are not one-dimensional numbers.
    """
    if weights is None:
        return None, None
    if isinstance(weights, str):
        if weights not in data.columns:
            raise DataError(f"weights column '{weights}' is not a column of the data")
        return weights, None
    n = len(data)
    if isinstance(weights, pd.Series):
        values = _aligned(weights, data.index)
    elif isinstance(weights, (np.ndarray, list, tuple)):
        try:
            values = np.asarray(weights)
        except ValueError:
            raise DataError("weights must be numbers, one per data row; a list of them holds "
                            "something else (a list or array?)") from None
    else:
        values = _native_series(weights)
    if values.ndim != 1:
        raise DataError(f"weights must be one-dimensional (one value per data row), not of "
                        f"shape {values.shape}")
    if values.shape[0] != n:
        raise DataError(f"weights has {values.shape[0]} values but the data have {n} rows; "
                        "give one weight per data row (R: variable lengths differ)")
    if not (pd.api.types.is_numeric_dtype(values.dtype) and values.dtype != bool):
        kind = "logical" if values.dtype == bool else f"{values.dtype}"
        raise DataError(f"weights must be numbers, not {kind} values")
    return WEIGHTS_COLUMN, values.astype(np.float64)


def _aligned(weights: pd.Series, index: pd.Index) -> np.ndarray:
    """A Series' values in the order of the data's row labels."""
    if weights.index.equals(index):
        return weights.to_numpy()
    if len(weights) != len(index):
        raise DataError(f"weights has {len(weights)} values but the data have {len(index)} "
                        "rows; give one weight per data row")
    if not (weights.index.is_unique and index.is_unique):
        raise DataError("the weights Series and the data have repeated row labels, so their "
                        "rows cannot be matched: pass weights.to_numpy() to match by position")
    absent = index.difference(weights.index)
    if len(absent):
        raise DataError(f"the weights Series has no value for data rows "
                        f"{absent[:5].tolist()}: its index must hold the data's row labels "
                        "(or pass weights.to_numpy() to match by position)")
    return weights.reindex(index).to_numpy()


def _native_series(weights: Any) -> np.ndarray:
    import narwhals as nw

    try:
        return nw.from_native(weights, series_only=True).to_numpy()
    except TypeError:
        raise DataError(f"weights must be a column name, or an array or Series with one value "
                        f"per data row, not {type(weights).__name__}") from None


def call_expressions(rhs: str) -> list[str]:
    """The outermost function calls of R text, as written: ``log(x)``, ``I(z^2)``.

    These are the variables of a formula that can give NaN where their columns have none.

    Parameters
    ----------
    rhs : str
        A right-hand side or an expression, e.g. ``"x + log(z + 1):f"``.
    """
    toks = r_tokens(rhs)
    found, i = [], 0
    while i < len(toks):
        kind, tok = toks[i]
        opens = next((j for j in range(i + 1, len(toks)) if toks[j][0] != "ws"), None)
        if kind in ("name", "bq") and opens is not None and toks[opens][1] == "(":
            depth, j = 0, opens
            while j < len(toks):
                depth += {"(": 1, ")": -1}.get(toks[j][1], 0) if toks[j][0] == "op" else 0
                if depth == 0:
                    break
                j += 1
            found.append("".join(t for _, t in toks[i:j + 1]))
            i = j + 1
            continue
        i += 1
    return found


def nan_rows(exprs: Sequence[str], frame: pd.DataFrame, missing: np.ndarray
             ) -> tuple[np.ndarray, dict[str, int]]:
    """Rows where an expression gives NaN although none of its columns is missing.

    R's ``model.frame`` evaluates each variable on every row and ``na.omit`` then drops the
    rows with NaN, so ``log(y)`` drops the rows with y < 0 (R also warns "NaNs produced").
    Expressions this package's evaluator does not handle (``factor()``, ``poly()``, ...) or
    that fail are skipped here: the model matrix reports their errors.

    Parameters
    ----------
    exprs : sequence of str
        R expressions of the columns of ``frame``.
    frame : pandas DataFrame, N rows
    missing : ndarray of bool (N,)
        Rows already missing a value.

    Returns
    -------
    mask : ndarray of bool (N,)
        Rows to drop besides ``missing``.
    counts : dict
        Expression -> number of rows it drops (only expressions that drop some), in order.
    """
    mask = np.zeros(len(frame), dtype=bool)
    counts: dict[str, int] = {}
    for expr in dict.fromkeys(exprs):
        if len([kind for kind, _ in r_tokens(expr) if kind != "ws"]) < 2:
            continue  # a column or a number: missing where its column is
        try:
            values = evaluate(expr, frame)
        except (MixedModelsError, TypeError, ArithmeticError):
            continue
        made = np.isnan(values) & ~missing
        if (made & ~mask).any():
            counts[expr] = int((made & ~mask).sum())
            mask |= made
    return mask, counts


def row_label(row_index: pd.Index, i: int) -> str:
    """The user's label of kept row ``i`` (not its position in the arrays), as Python prints it."""
    return repr(row_index[i:i + 1].tolist()[0])


def check_finite(name: str, values: np.ndarray, row_index: pd.Index,
                 columns: list[str] | None = None) -> None:
    """DataError naming what is not finite (``name``, and the column of ``columns`` for a
    matrix), the kind of value (Inf, -Inf, NaN) and its data rows (the user's labels).

    values is (n,) or (n, k) with k column names ``columns``."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    if bad.ndim > 1:
        j = int(np.flatnonzero(bad.any(axis=0))[0])
        if columns is not None:
            name = f"{name} column '{columns[j]}'"
        values, bad = values[:, j], bad[:, j]
    found = values[bad]
    kinds = [k for k, hit in (("Inf", np.any(found == np.inf)), ("-Inf", np.any(found == -np.inf)),
                              ("NaN", np.any(np.isnan(found)))) if hit]
    rows = row_index[np.flatnonzero(bad)[:5]].tolist()
    hint = ("; log() of 0 is -Inf, which R's lmer refuses too ('NA/NaN/Inf'): drop those rows "
            "or shift the values" if "-Inf" in kinds and "log" in name else "")
    raise DataError(f"{name} has non-finite values ({', '.join(kinds)}) at data rows "
                    f"{rows}{hint}")


def check_cells(frame: pd.DataFrame) -> None:
    """DataError for a text (object) column with a list, dict or array in a cell."""
    for name in frame.columns:
        column = frame[name]
        if column.dtype != object:
            continue
        nested = np.fromiter((pd.api.types.is_list_like(v) and not isinstance(v, str)
                              for v in column.array), dtype=bool, count=len(column))
        if nested.any():
            i = int(np.flatnonzero(nested)[0])
            raise DataError(f"column '{name}' holds a {type(column.array[i]).__name__} at data "
                            f"row {row_label(frame.index, i)}; each cell must be one number, "
                            "text or logical value")


def weights_values(frame: pd.DataFrame, column: str, row_index: pd.Index) -> np.ndarray:
    """The prior weights (n,) of the kept rows: finite, positive numbers."""
    what = "weights" if column == WEIGHTS_COLUMN else f"weights column '{column}'"
    if not pd.api.types.is_numeric_dtype(frame[column].dtype):
        raise DataError(f"{what} is not numeric (it holds {frame[column].dtype} values)")
    w = frame[column].to_numpy(dtype=float)
    check_finite(what, w, row_index)
    where = "" if column == WEIGHTS_COLUMN else f"column '{column}', "
    if (w < 0).any():
        raise DataError(f"negative weights are not allowed ({where}first at data row "
                        f"{row_label(row_index, int(np.flatnonzero(w < 0)[0]))})")
    if (w == 0).any():
        raise DataError(f"zero weights in {what} (first at data row "
                        f"{row_label(row_index, int(np.flatnonzero(w == 0)[0]))}); drop those "
                        "rows instead")
    return w
