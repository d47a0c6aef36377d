"""Evaluate an R arithmetic or logical expression of data columns, as R would.

The R text is translated to Python syntax by :func:`contrasts.python_text` (``^`` to
``**``, ``&``/``|``/``!`` to ``and``/``or``/``not``, whose precedences relative to each
other and to comparisons are R's) and parsed with :mod:`ast`; the tree is walked node by
node and nothing is passed to ``eval``.

R's logical values are carried as floats, 1 (TRUE), 0 (FALSE) and NaN (NA): what R gives
when a logical is coerced to numeric, as it is in a model's response.
"""
from __future__ import annotations

import ast
import difflib
import operator
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError
from .contrasts import parse_python, python_text, r_deparse, r_label, r_tokens

__all__ = ["MATH", "CONSTANTS", "evaluate", "column_kind", "numeric_column", "unknown_column"]


# R's versions where numpy's signature differs (numpy's 2nd argument of log is `out`).
MATH = {
    "log": lambda x, base=None: np.log(x) if base is None else np.log(x) / np.log(base),
    "log2": np.log2, "log10": np.log10, "log1p": np.log1p, "exp": np.exp, "expm1": np.expm1,
    "sqrt": np.sqrt, "abs": np.abs, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "round": lambda x, digits=0: np.round(x, int(digits)), "I": lambda x: x,
}
CONSTANTS = {"TRUE": True, "FALSE": False, "pi": np.pi}

_ARITHMETIC = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide,
               ast.Pow: np.power, ast.Mod: np.mod, ast.FloorDiv: np.floor_divide}
_COMPARE = {ast.Gt: (operator.gt, ">"), ast.Lt: (operator.lt, "<"), ast.GtE: (operator.ge, ">="),
            ast.LtE: (operator.le, "<="), ast.Eq: (operator.eq, "=="), ast.NotEq: (operator.ne, "!=")}


def unknown_column(name: str, expr: str, columns: Sequence[str]) -> DataError:
    """The error for a name that is not a column, suggesting close column names."""
    columns = [str(c) for c in columns]
    close = difflib.get_close_matches(name, columns, n=3)
    if close:
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?"
    else:
        shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
        hint = f"; the data have the columns {shown}" if columns else "; the data have no columns"
    where = "" if expr == name else f" in '{expr}'"
    return DataError(f"unknown column '{name}'{where}{hint}")


def column_kind(series: pd.Series) -> str:
    """``"factor"``, ``"logical"`` or ``"numeric"``, as R's model.frame would see the column.

    Raises
    ------
    DataError
        Dates and times, which R models would need converted first.
    """
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "factor"
    if pd.api.types.is_bool_dtype(dtype):
        return "logical"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        raise DataError(f"column '{series.name}' holds dates/times; convert it to a number first")
    return "factor"


def _not_numeric(series: pd.Series) -> str:
    return f"column '{series.name}' is not numeric (it holds {series.dtype} values)"


def numeric_column(series: pd.Series, used_in: str) -> np.ndarray:
    """A numeric or logical column as floats (n,), NaN where missing.

    Raises
    ------
    DataError
        A factor or text column, naming it and the expression ``used_in``.
    """
    if column_kind(series) == "factor":
        raise DataError(f"{_not_numeric(series)} but is used as a number in '{used_in}'")
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


class _Value(NamedTuple):
    """One evaluated sub-expression.

    kind is ``"number"``, ``"logical"`` or ``"text"``.  Numbers and logicals hold a float
    or a float array (n,); text holds ``(codes, labels)``: int codes (n,) or a scalar
    code into the distinct R labels, -1 where missing.  ``what`` says why text is not a
    number, for errors ("" for numbers and logicals).
    """

    kind: str
    data: Any
    what: str


def _text(codes: np.ndarray, labels: list[str], what: str) -> _Value:
    """Text value with each label once (1 and 1.0 are both R's "1")."""
    distinct = list(dict.fromkeys(labels))
    position = {lab: i for i, lab in enumerate(distinct)}
    remap = np.array([position[lab] for lab in labels] + [-1], dtype=np.int64)
    return _Value("text", (remap[codes], distinct), what)


def _column(series: pd.Series) -> _Value:
    kind = column_kind(series)
    if kind == "factor":
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        return _text(codes, [r_label(u) for u in uniques], _not_numeric(series))
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return _Value("logical" if kind == "logical" else "number", values, "")


def _number(value: _Value, expr: str) -> Any:
    if value.kind == "text":
        raise DataError(f"{value.what} but is used as a number in '{expr}'")
    return value.data


def _logical(value: _Value, expr: str) -> np.ndarray:
    """R's as.logical of a number: non-zero is TRUE; NaN stays NA."""
    if value.kind == "text":
        raise DataError(f"{value.what} but is used as a logical (TRUE/FALSE) in '{expr}'")
    data = np.asarray(value.data, dtype=np.float64)
    return np.where(np.isnan(data), np.nan, (data != 0).astype(np.float64))


def _labels(value: _Value) -> tuple[np.ndarray, list[str]]:
    """(codes, labels) of any value, numbers labelled as R's as.character does."""
    if value.kind == "text":
        return value.data
    data = np.asarray(value.data, dtype=np.float64)
    codes, uniques = pd.factorize(data.ravel(), use_na_sentinel=True)
    if value.kind == "logical":
        labels = ["TRUE" if u else "FALSE" for u in uniques]
    else:
        labels = [r_label(float(u)) for u in uniques]
    return _text(codes.reshape(data.shape), labels, value.what).data


def _text_equal(left: _Value, right: _Value) -> np.ndarray:
    """Element-wise ``left == right`` of R labels: 1, 0, or NaN where either is missing."""
    (codes_a, labels_a), (codes_b, labels_b) = _labels(left), _labels(right)
    position = {lab: i for i, lab in enumerate(labels_a)}
    # a label of b that a never has maps to -2, which no code of a equals
    in_a = np.array([position.get(lab, -2) for lab in labels_b] + [-3], dtype=np.int64)[codes_b]
    equal = (codes_a == in_a).astype(np.float64)
    return np.where((codes_a < 0) | (codes_b < 0), np.nan, equal)


def _compare(node: ast.Compare, data: pd.DataFrame, names: dict[str, str], expr: str) -> _Value:
    if len(node.ops) > 1:
        raise FormulaError(f"comparisons cannot be chained in R ('{_r_text(node, names)}' in "
                           f"'{expr}'); write (a < b) & (b < c)")
    if type(node.ops[0]) not in _COMPARE:
        raise FormulaError(f"unsupported expression '{_r_text(node, names)}' in '{expr}'")
    func, symbol = _COMPARE[type(node.ops[0])]
    left = _eval_node(node.left, data, names, expr)
    right = _eval_node(node.comparators[0], data, names, expr)
    if "text" in (left.kind, right.kind):
        if symbol not in ("==", "!="):
            which = left if left.kind == "text" else right
            text = _r_text(node, names)
            where = f"'{text}'" if text == expr else f"'{text}' in '{expr}'"
            raise DataError(f"{where} compares text with '{symbol}': {which.what}; only == and "
                            "!= compare text or factor values")
        equal = _text_equal(left, right)
        return _Value("logical", equal if symbol == "==" else 1.0 - equal, "")
    a = np.asarray(left.data, dtype=np.float64)
    b = np.asarray(right.data, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        out = np.where(np.isnan(a) | np.isnan(b), np.nan, func(a, b).astype(np.float64))
    return _Value("logical", out, "")


def _bool_op(node: ast.BoolOp, data: pd.DataFrame, names: dict[str, str], expr: str) -> _Value:
    """R's ``&`` and ``|`` element-wise, with R's NA rules (NA & FALSE is FALSE)."""
    values = [_logical(_eval_node(v, data, names, expr), expr) for v in node.values]
    stacked = np.stack(np.broadcast_arrays(*values))
    missing = np.isnan(stacked).any(axis=0)
    if isinstance(node.op, ast.And):
        decided, value = (stacked == 0).any(axis=0), 0.0
    else:
        decided, value = (stacked == 1).any(axis=0), 1.0
    out = np.where(decided, value, np.where(missing, np.nan, 1.0 - value))
    return _Value("logical", out, "")


def _r_text(node: ast.AST, names: dict[str, str]) -> str:
    """R's text of a sub-expression for messages; Python's when R has no such syntax."""
    try:
        return r_deparse(node, names)[0]
    except ValueError:
        return ast.unparse(node)


def _call(node: ast.Call, data: pd.DataFrame, names: dict[str, str], expr: str) -> _Value:
    name = node.func.id
    if name == "cbind":
        raise FormulaError(f"cbind() in '{expr}' can only be the whole response of a binomial "
                           "model: cbind(successes, failures)")
    if name not in MATH:
        raise DataError(f"unknown function '{name}' in '{expr}'")
    args = [_eval_node(a, data, names, expr) for a in node.args]
    if name == "I":
        # I() keeps its argument as it is: a logical stays logical, text stays text
        if len(args) != 1 or node.keywords:
            raise FormulaError(f"I() takes one argument in '{expr}'")
        return args[0]
    numbers = [_number(a, expr) for a in args]
    keywords = {k.arg: _number(_eval_node(k.value, data, names, expr), expr) for k in node.keywords}
    try:
        with np.errstate(all="ignore"):
            return _Value("number", MATH[name](*numbers, **keywords), "")
    except TypeError as err:
        raise FormulaError(f"bad arguments to {name}() in '{expr}': {err}") from None


def _eval_node(node: ast.AST, data: pd.DataFrame, names: dict[str, str], expr: str) -> _Value:
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left = _number(_eval_node(node.left, data, names, expr), expr)
        right = _number(_eval_node(node.right, data, names, expr), expr)
        with np.errstate(all="ignore"):
            return _Value("number", _ARITHMETIC[type(node.op)](left, right), "")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _number(_eval_node(node.operand, data, names, expr), expr)
        return _Value("number", -value if isinstance(node.op, ast.USub) else value, "")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        value = _logical(_eval_node(node.operand, data, names, expr), expr)
        return _Value("logical", 1.0 - value, "")
    if isinstance(node, ast.Compare):
        return _compare(node, data, names, expr)
    if isinstance(node, ast.BoolOp):
        return _bool_op(node, data, names, expr)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _Value("number", float(node.value), "")
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = _r_text(node, names)
        return _text(np.int64(0), [node.value], f"{text} is text")
    if isinstance(node, ast.Name):
        name = names.get(node.id, node.id)
        if name in data.columns:
            return _column(data[name])
        if name in CONSTANTS and node.id not in names:
            constant = CONSTANTS[name]
            kind = "logical" if isinstance(constant, bool) else "number"
            return _Value(kind, float(constant), "")
        raise unknown_column(name, expr, data.columns)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _call(node, data, names, expr)
    raise FormulaError(f"unsupported expression '{_r_text(node, names)}' in '{expr}'")


def evaluate(expr: str, data: pd.DataFrame) -> np.ndarray:
    """Evaluate an R expression of columns, e.g. ``"incidence/size"``, ``"log(y)"``, ``"y > 3"``.

    Supports ``+ - * / ^ %% %/%``, the comparisons ``> < >= <= == !=``, ``& | !``,
    parentheses, numbers, quoted strings, ``TRUE``, ``FALSE``, ``pi``, columns and
    ``log log2 log10 log1p exp expm1 sqrt abs sin cos tan round I``.  Logical results
    are R's logical coerced to numeric: 1 for TRUE, 0 for FALSE, NaN for NA.  Text and
    factor columns can only be compared with ``==``/``!=`` (by R label: a factor level,
    or a number as R prints it).  The expression is walked node by node; nothing is
    passed to ``eval``.

    Parameters
    ----------
    expr : str
        R text.
    data : pandas DataFrame, n rows

    Returns
    -------
    ndarray, shape (n,), float64

    Raises
    ------
    DataError
        Unknown column or function, a text column used as a number, or text compared
        with ``<``-like operators (each message names the column or expression).
    FormulaError
        Syntax the evaluator does not support (``%in%``, ``&&``/``||``, chained
        comparisons...).
    """
    for kind, tok in r_tokens(expr):
        if kind == "op" and tok.startswith("%") and tok not in ("%%", "%/%"):
            raise FormulaError(f"the operator '{tok}' is not supported in '{expr}'", expr,
                               expr.find(tok))
    tree, names = parse_python(python_text(expr, all_arithmetic=True))
    value = _number(_eval_node(tree, data, names, expr), expr)
    out = np.asarray(value, dtype=np.float64)
    if out.ndim == 0:
        out = np.full(len(data), float(out))
    if out.shape != (len(data),):
        raise DataError(f"'{expr}' gives shape {out.shape}, expected ({len(data)},)")
    return np.ascontiguousarray(out)
