"""From a parsed formula and a data frame to the model's arrays (the ``Design``).

This is the only stage that reads the user's data frame. It drops rows with missing values in
any used column (and says how many), checks the data as lme4 does, codes grouping factors and
builds X, y, offset, weights and one ``ReTerm`` per bar, with the row-free ``ModelInfo`` that
a fitted result keeps. The response is R's ``model.response`` read with the binomial family's
conventions when the model is a GLMM: ``cbind(successes, failures)`` gives proportions and
trials, a factor gives 0 for its first level and 1 for every other.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError, warn_user
from ..model_info import ModelInfo
from ..rank import independent_columns
from ..terms import ReTerm, TermSpec, order_terms, specs
from . import fixed as fx
from .bars import MixedFormula
from .contrasts import level_label, r_tokens
# to_pandas is also imported from here by predict, plots, report and teaching
from .frame import (WEIGHTS_COLUMN, call_expressions, check_cells, check_finite, nan_rows,
                    prior_weights, row_label, to_pandas, weights_values)
from .rexpr import column_kind, evaluate
from .structures import term_covariance


class DroppedRowsWarning(UserWarning):
    """Rows were dropped because a used column had a missing value."""


class RankDeficiencyWarning(UserWarning):
    """Columns of X were dropped because they were linearly dependent on earlier ones."""


@dataclass(frozen=True, eq=False)
class Design:
    """One model's rows, after dropping incomplete rows, with its row-free description.

    info : the ``ModelInfo`` (names, specs, counts) a fitted result keeps;
    y : (n,) response: numbers as given, a logical (a boolean column, ``I(y > 3)``) as 0/1;
    for a GLMM also a ``cbind(successes, failures)`` response as successes / trials (0 where
    trials is 0) and a factor response as 0 (first level) / 1 (any other level);
    X : (n, p) full-rank fixed-effects matrix (dependent columns dropped);
    offset : (n,) known offset (a read-only zero-stride view of 0 when none); weights : (n,)
    prior weights (a read-only view of 1 when none);
    row_index : (n,) the data frame's row labels of the rows kept;
    terms : random-effects terms with their rows (``ReTerm``), in the order of ``info.terms``
    (lme4's: decreasing number of levels);
    trials : (n,) successes + failures of a ``cbind()`` response, else None (one trial each).
    """

    info: ModelInfo
    y: np.ndarray
    X: np.ndarray
    offset: np.ndarray
    weights: np.ndarray
    row_index: pd.Index
    terms: tuple[ReTerm, ...]
    trials: np.ndarray | None = None

    @property
    def n(self) -> int:
        return self.y.shape[0]

    @property
    def p(self) -> int:
        return self.X.shape[1]


def _merge_alike(codes: np.ndarray, labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """Codes and labels with values that print alike merged into one level, as R's
    ``factor()`` matches values by their labels (0.1 + 0.2 and 0.3 are both "0.3")."""
    unique = list(dict.fromkeys(labels))
    if len(unique) == len(labels):
        return codes, labels
    position = {lab: i for i, lab in enumerate(unique)}
    remap = np.array([position[lab] for lab in labels], dtype=np.int32)
    return remap[codes], unique


def factor_codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Code one column as an R factor: (codes (n,) int32, level labels).

    Categoricals keep their level order (unused levels dropped, as R's ``factor()``);
    strings are sorted as R sorts them in the C locale; numbers and booleans are sorted by
    value. Every label is ``level_label``'s (``1`` for 1.0 and for a category 1.0, ``1e+05``,
    ``TRUE``), the labelling ``predict`` uses too. The column must have no missing values.
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        # Straight from pandas' small integer codes: no n-length int64 copies.
        codes = column.cat.codes.to_numpy()
        categories = column.cat.categories
        used = np.zeros(len(categories) + 1, dtype=bool)
        used[codes] = True  # a missing value (-1) marks the extra last slot
        used = used[:-1]
        if used.all():
            return _merge_alike(codes.astype(np.int32), [level_label(c) for c in categories])
        lookup = (np.cumsum(used) - 1).astype(np.int32)
        return _merge_alike(lookup[codes],
                            [level_label(c) for c, u in zip(categories, used) if u])
    if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        values = column.to_numpy()
        if values.dtype == object:  # pandas' nullable Int64 / Float64 / boolean
            values = values.astype(column.dtype.numpy_dtype)
        uniq, codes = np.unique(values, return_inverse=True)
        return _merge_alike(codes.astype(np.int32), [level_label(u) for u in uniq])
    # Labelled once per distinct value; R sorts the labels in the C locale (code points).
    codes, uniques = pd.factorize(column)
    labels = [level_label(u) for u in uniques]
    levels = sorted(set(labels))
    position = {lab: i for i, lab in enumerate(levels)}
    remap = np.array([position[lab] for lab in labels], dtype=np.int32)
    return remap[codes], levels


def grouping_factor(data: pd.DataFrame, group_vars: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Code the interaction of ``group_vars`` as R's ``factor(a:b)`` does.

    Returns (refs (n,) int32, labels). Levels are ordered with the first variable varying
    slowest, unused combinations dropped; labels join the parts with ':'.
    """
    codes, labels = factor_codes(data[group_vars[0]])
    for var in group_vars[1:]:
        c2, l2 = factor_codes(data[var])
        combined = codes.astype(np.int64) * len(l2) + c2
        uniq, codes = np.unique(combined, return_inverse=True)
        labels = [f"{labels[u // len(l2)]}:{l2[u % len(l2)]}" for u in uniq]
    return codes.astype(np.int32), labels


def _used_columns(mf: MixedFormula, fixed_rhs: str, offsets: list[str], data: pd.DataFrame,
                  weights: str | None) -> list[str]:
    cols = list(data.columns)
    used: list[str] = []

    def add(names):
        for name in names:
            if name not in used:
                used.append(name)

    add(sorted(fx.variables(mf.response, cols)))
    add(sorted(fx.variables(fixed_rhs, cols)))
    for expr in offsets:
        add(sorted(fx.variables(expr, cols)))
    for bar in mf.bars:
        add(sorted(fx.variables(bar.lhs, cols)))
        for g in bar.group:
            if g not in data.columns:
                raise FormulaError(
                    f"grouping variable '{g}' of the term ({bar.lhs} | {bar.group_name}) "
                    f"is not a column of the data", formula=mf.text, position=bar.position)
            add([g])
    if weights is not None:
        add([weights])
    return used


def cbind_arguments(response: str, formula: str | None = None) -> list[str] | None:
    """The argument texts of a response written ``cbind(a, b, ...)``, else None.

    Parameters
    ----------
    response : str
        R text left of ``~``, e.g. ``"cbind(incidence, size - incidence)"``.
    formula : str, optional
        The whole formula, for the position in an error.

    Returns
    -------
    list of str or None
        Each argument as written (stripped, an ``name =`` prefix removed), e.g.
        ``["incidence", "size - incidence"]``; None when the whole response is not one
        ``cbind()`` call.

    Raises
    ------
    FormulaError
        An empty argument.
    """
    toks = r_tokens(response)
    solid = [i for i, (kind, _) in enumerate(toks) if kind != "ws"]
    if (len(solid) < 3 or toks[solid[0]] != ("name", "cbind") or toks[solid[1]][1] != "("
            or toks[solid[-1]][1] != ")"):
        return None
    args: list[list[tuple[str, str]]] = [[]]
    depth = 0
    for kind, tok in toks[solid[1] + 1:solid[-1]]:
        if kind == "op" and tok in ("(", "[", "{"):
            depth += 1
        elif kind == "op" and tok in (")", "]", "}"):
            depth -= 1
            if depth < 0:  # cbind(a, b) + c: the call closes before the end
                return None
        if kind == "op" and tok == "," and depth == 0:
            args.append([])
        else:
            args[-1].append((kind, tok))
    out = []
    for k, arg in enumerate(args):
        solid_arg = [(kind, tok) for kind, tok in arg if kind != "ws"]
        if len(solid_arg) > 2 and solid_arg[0][0] in ("name", "bq") and solid_arg[1] == ("op", "="):
            arg = arg[arg.index(solid_arg[1]) + 1:]
        text = "".join(tok for _, tok in arg).strip()
        if not text:
            raise FormulaError(f"argument {k + 1} of the response '{response}' is empty",
                               formula, None if formula is None else formula.find("cbind"))
        out.append(text)
    return out


def _response_column(response: str) -> tuple[str, bool] | None:
    """(column, written as factor(column)) when the response is one column, else None."""
    solid = [(kind, tok) for kind, tok in r_tokens(response) if kind != "ws"]
    wrapped = (len(solid) == 4 and solid[0] == ("name", "factor") and solid[1][1] == "("
               and solid[3][1] == ")")
    inner = solid[2:3] if wrapped else solid
    if len(inner) != 1 or inner[0][0] not in ("name", "bq"):
        return None
    name = inner[0][1]
    return (name[1:-1] if inner[0][0] == "bq" else name), wrapped


def _counts_response(mf: MixedFormula, args: list[str], frame: pd.DataFrame,
                     row_index: pd.Index, glm: bool) -> tuple[np.ndarray, np.ndarray]:
    """(y, trials), each (n,), of ``cbind(successes, failures)`` (R's binomial initialize)."""
    position = mf.text.find("cbind")
    if not glm:
        raise FormulaError(f"the response '{mf.response}' is binomial counts: cbind() responses "
                           "need glmer (lmer needs a numeric response)", mf.text, position)
    if len(args) != 2:
        raise FormulaError(f"cbind() in the response '{mf.response}' has {len(args)} "
                           "argument(s); a binomial response is cbind(successes, failures)",
                           mf.text, position)
    counts = []
    for arg in args:
        try:
            values = evaluate(arg, frame)
        except DataError as exc:
            raise DataError(f"in cbind() argument '{arg}' of the response: {exc}") from exc
        check_finite(f"cbind() argument '{arg}' of the response", values, row_index)
        negative = np.flatnonzero(values < 0)
        if negative.size:
            i = int(negative[0])
            raise DataError(f"cbind() argument '{arg}' of the response has a negative count "
                            f"({values[i]:g}) at data row {row_label(row_index, i)}; binomial "
                            "counts (successes, failures) must be non-negative")
        counts.append(values)
    trials = counts[0] + counts[1]
    y = np.divide(counts[0], trials, out=np.zeros_like(trials), where=trials > 0)
    return y, trials


def _factor_response(mf: MixedFormula, column: str, wrapped: bool, data: pd.DataFrame,
                     complete: np.ndarray, glm: bool) -> tuple[np.ndarray, tuple[str, str]]:
    """(y (n,), (failure, success) labels) of a factor response, by the binomial family's rule.

    The levels are those of the column's non-missing values before rows with missing values
    elsewhere are dropped: lme4's model.frame drops unused levels before its na.action.
    """
    series = data[column]
    present = series.notna().to_numpy()
    codes, levels = factor_codes(series[present])
    if not glm:
        what = "is a factor" if wrapped else f"is not numeric (it holds {series.dtype} values)"
        hint = (f"; it has two levels ('{levels[0]}', '{levels[1]}'): fit a binary outcome "
                "as a binomial model with glmer" if len(levels) == 2 else "")
        raise DataError(f"the response '{mf.response}' {what}; lmer needs a numeric "
                        f"response{hint}")
    y = (codes[complete[present]] != 0).astype(np.float64)
    if len(levels) == 2:
        return y, (levels[0], levels[1])
    return y, (levels[0], f"not {levels[0]}")


def _response(mf: MixedFormula, data: pd.DataFrame, frame: pd.DataFrame, complete: np.ndarray,
              row_index: pd.Index, glm: bool
              ) -> tuple[np.ndarray, np.ndarray | None, tuple[str, str] | None]:
    """(y, trials or None, response_levels or None); y and trials (n,) over the kept rows.

    ``data`` is the user's frame, ``frame`` its kept rows (``complete``) renumbered 0..n-1.
    """
    args = cbind_arguments(mf.response, mf.text)
    if args is not None:
        y, trials = _counts_response(mf, args, frame, row_index, glm)
        return y, trials, None
    single = _response_column(mf.response)
    if single is not None and single[0] in data.columns:
        column, wrapped = single
        if wrapped or column_kind(data[column]) == "factor":
            y, labels = _factor_response(mf, column, wrapped, data, complete, glm)
            return y, None, labels
    y = evaluate(mf.response, frame)
    check_finite(f"response '{mf.response}'", y, row_index)
    return y, None, None


def build_design(mf: MixedFormula, data: Any, weights: Any = None, *,
                 glm: bool = False) -> Design:
    """Build the ``Design`` of ``mf`` on ``data`` (see module docstring).

    Parameters
    ----------
    mf : MixedFormula
    data : pandas, polars or other narwhals-supported data frame, N rows
    weights : str, array-like or Series, optional
        Prior weights: a column, or one value per data row (see ``frame.prior_weights``).
    glm : bool
        A generalized model (glmer): also accept a ``cbind(successes, failures)`` response
        (``Design.trials``) and a factor or text response (``ModelInfo.response_levels``).

    Returns
    -------
    Design
        Over the n <= N rows without missing values in a used column.

    Raises
    ------
    FormulaError
        Formula that does not fit the data, or a ``cbind()`` response with ``glm=False``.
    DataError
        Unusable data; messages name the column or expression and the data row label.
    """
    data = to_pandas(data)
    if len(data) == 0:
        raise DataError("the data have no rows")
    if not mf.bars:
        raise FormulaError("no random-effects terms in the formula; use a linear model instead",
                           formula=mf.text, position=len(mf.text) - 1)
    fixed_rhs, offsets = fx.split_offsets(mf.fixed)
    frame, complete, weights_column = _model_frame(mf, data, fixed_rhs, offsets, weights)
    n_dropped = int((~complete).sum())
    row_index = frame.index
    frame = frame.reset_index(drop=True)

    y, trials, response_levels = _response(mf, data, frame, complete, row_index, glm)
    Xmm = fx.model_matrix(fixed_rhs, frame)
    check_finite("fixed-effects", Xmm.values, row_index, Xmm.names)
    keep = independent_columns(Xmm.values)
    dropped = tuple(n for i, n in enumerate(Xmm.names) if i not in set(keep.tolist()))
    if dropped:
        warn_user(f"fixed-effect model matrix is rank deficient so dropping "
                  f"{len(dropped)} column(s) / coefficient(s): {', '.join(dropped)}",
                  RankDeficiencyWarning)
    X = Xmm.values if keep.size == Xmm.values.shape[1] else Xmm.values[:, keep]
    X = np.ascontiguousarray(X)
    # Without offsets or weights these are read-only zero-stride views of one constant: no
    # n-length arrays for a model that has none (80 MB each at n = 1e7).
    offset = np.broadcast_to(np.float64(0.0), (len(frame),))
    for expr in offsets:
        off = np.asarray(evaluate(expr, frame), dtype=float)
        check_finite(f"offset({expr})", off, row_index)
        offset = offset + off
    if weights_column is not None:
        w = weights_values(frame, weights_column, row_index)
    else:
        w = np.broadcast_to(np.float64(1.0), (len(frame),))

    whole_x = Xmm if keep.size == Xmm.values.shape[1] else None
    terms = [_build_term(mf, bar, frame, X, fixed_rhs, whole_x, row_index) for bar in mf.bars]
    _check_terms(mf, terms, len(frame), glm)
    terms = tuple(order_terms(terms))
    info = ModelInfo(formula=mf, x_names=tuple(Xmm.names[i] for i in keep),
                     x_terms=tuple(Xmm.term_of_column[i] for i in keep), x_spec=Xmm.spec,
                     x_keep=keep, dropped_columns=dropped, offset_exprs=tuple(offsets),
                     has_weights=weights_column is not None, terms=specs(terms),
                     n=len(frame), n_dropped_rows=n_dropped, response_levels=response_levels)
    return Design(info=info, y=y, X=X, offset=offset, weights=w, row_index=row_index,
                  terms=terms, trials=trials)


def _model_frame(mf: MixedFormula, data: pd.DataFrame, fixed_rhs: str, offsets: list[str],
                 weights: Any) -> tuple[pd.DataFrame, np.ndarray, str | None]:
    """R's model.frame with na.omit: (the used columns of the kept rows, complete (N,) bool,
    the column of the weights or None).

    A row is dropped when a used column is missing there or when an expression of the
    formula gives NaN there (``log(y)`` for y < 0), with one DroppedRowsWarning that counts
    both.
    """
    weights_column, given = prior_weights(weights, data)
    used = _used_columns(mf, fixed_rhs, offsets, data,
                         weights if weights_column != WEIGHTS_COLUMN else None)
    frame = data[used]
    check_cells(frame)
    if given is not None:
        frame = frame.assign(**{WEIGHTS_COLUMN: given})
    absent = frame.isna()
    missing = absent.any(axis=1).to_numpy()
    made, counts = nan_rows(_expressions(mf, fixed_rhs, offsets), frame, missing)
    complete = ~(missing | made)
    n_dropped = int((~complete).sum())
    if n_dropped:
        frame = frame.loc[complete]
        per_col = {c: int(k) for c, k in absent.sum().items() if k}
        parts = [f"missing per column: {per_col}"] if per_col else []
        parts += [f"{k} where {expr} is NaN (R: 'NaNs produced')" for expr, k in counts.items()]
        warn_user(f"{n_dropped} row(s) dropped because of missing values "
                  f"({'; '.join(parts)})", DroppedRowsWarning)
    if len(frame) == 0:
        raise DataError("no rows left after dropping rows with missing values in the columns "
                        f"used by the model ({', '.join(used)})")
    return frame, complete, weights_column


def _expressions(mf: MixedFormula, fixed_rhs: str, offsets: list[str]) -> list[str]:
    """The expressions of the formula that can give NaN on complete rows."""
    args = cbind_arguments(mf.response, mf.text)
    exprs = args if args is not None else [mf.response]
    exprs += call_expressions(fixed_rhs) + offsets
    for bar in mf.bars:
        exprs += call_expressions(bar.lhs)
    return exprs


def _build_term(mf: MixedFormula, bar, frame: pd.DataFrame, X: np.ndarray, fixed_rhs: str,
                whole_x: fx.ModelMatrix | None, row_index: pd.Index) -> ReTerm:
    z, names, spec = _term_columns(mf, bar, frame, X, fixed_rhs, whole_x, row_index)
    refs, levels = grouping_factor(frame, bar.group)
    return ReTerm(group_name=bar.group_name, group_vars=tuple(bar.group), levels=tuple(levels),
                  refs=refs, z=z, column_names=tuple(names), lhs_spec=spec,
                  correlated=bar.correlated,
                  covariance=term_covariance(mf, bar, spec, tuple(names)))


def _term_columns(mf: MixedFormula, bar, frame: pd.DataFrame, X: np.ndarray, fixed_rhs: str,
                  whole_x: fx.ModelMatrix | None, row_index: pd.Index):
    """(z (n, p_j), column names, spec) of a term's left-hand side.

    z is not computed again when it is already known: the same right-hand side as the fixed
    effects (``y ~ x + (x | g)``, no column dropped) is X itself, and a term without variables
    (``(1 | g)``) is one row repeated, built on one row of the data.
    """
    lhs = bar.lhs
    if whole_x is not None and " ".join(lhs.split()) == " ".join(fixed_rhs.split()):
        z = X[:, :]
        z.flags.writeable = False
        return z, whole_x.names, whole_x.spec
    constant = not fx.variables(lhs, frame.columns)
    try:
        zmm = fx.model_matrix(lhs, frame.iloc[:1] if constant else frame)
    except DataError as exc:
        raise FormulaError(f"in the random-effects term ({bar.lhs} | {bar.group_name}): {exc}",
                           formula=mf.text, position=bar.position) from exc
    if zmm.values.shape[1] == 0:
        raise FormulaError(f"the random-effects term ({bar.lhs} | {bar.group_name}) has no "
                           f"columns", formula=mf.text, position=bar.position)
    check_finite(f"term ({bar.lhs} | {bar.group_name})", zmm.values, row_index, zmm.names)
    if constant:
        z = np.broadcast_to(zmm.values[0].astype(float), (len(frame), zmm.values.shape[1]))
    else:
        z = _shared_columns(np.ascontiguousarray(zmm.values, dtype=float), X)
    return z, zmm.names, zmm.spec


def _shared_columns(z: np.ndarray, X: np.ndarray) -> np.ndarray:
    """z (n, p_j) itself, or a read-only view with no memory of its own when one will do: a
    zero-stride column of ones, or the matching columns of X (``y ~ x + w + (x | g)``: z is X's
    first two columns; at n = 1e7 that is 80 MB per column)."""
    if z.shape[1] == 1 and np.all(z == 1.0):
        return np.broadcast_to(np.float64(1.0), z.shape)
    first = next((a for a in range(X.shape[1] - z.shape[1] + 1)
                  if np.array_equal(X[:, a], z[:, 0])), None)
    if first is None or not np.array_equal(X[:, first:first + z.shape[1]], z):
        return z
    view = X[:, first:first + z.shape[1]]
    view.flags.writeable = False
    return view


def _check_terms(mf: MixedFormula, terms: list[TermSpec], n: int, glm: bool = False) -> None:
    """lme4's checks: each factor has more than one level, fewer levels than rows, and q < n.

    For a GLMM only the first applies (glmerControl ignores the other two by default: an
    observation-level random effect, one level per row, models overdispersion)."""
    for t in terms:
        label = f"({' + '.join(t.column_names)} | {t.group_name})"
        if t.n_levels < 2:
            raise DataError(f"grouping factor '{t.group_name}' of the term {label} has only "
                            f"{t.n_levels} level; grouping factors must have more than one level")
        if glm:
            continue
        if t.n_levels >= n:
            raise DataError(f"grouping factor '{t.group_name}' has {t.n_levels} levels for {n} "
                            f"observations; the number of levels of each grouping factor must "
                            f"be less than the number of observations")
        # A cs() or ar1() term has a few parameters however many effects it has (one per
        # measurement occasion, as glmmTMB fits them): the count of effects says nothing.
        if t.q >= n and t.structure not in ("cs", "ar1"):
            raise DataError(f"number of observations ({n}) <= number of random effects "
                            f"({t.q}) for the term {label}; the random-effects parameters and "
                            f"the residual variance are probably unidentifiable")
