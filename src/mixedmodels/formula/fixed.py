"""Model matrices exactly as R's ``model.matrix()`` builds them.

formulaic parses the formula (term expansion, ``*``, ``/``, ``^``, ``-``) and
evaluates each variable (columns, ``I()``, ``log()``, ``scale()``, ``poly()``
and their stateful re-use on new data).  This module adds what R does
differently: which factor in which term gets contrasts and which gets full
dummies, ``contr.treatment``/``contr.poly``, the order of variables and of
interaction columns, and R's column names.
"""
from __future__ import annotations

import ast
import copy
import re
import warnings
from collections.abc import Sequence
from functools import lru_cache
from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic import Formula
from formulaic import model_matrix as _formulaic_matrix
from formulaic.errors import FormulaicError
from formulaic.parser import DefaultFormulaParser
from formulaic.parser.types import Factor, Term
from formulaic.transforms import stateful_transform

from ..errors import DataError, FormulaError
from .contrasts import (
    contr_identity,
    contr_poly,
    contr_treatment,
    interaction_columns,
    level_codes,
    level_label,
    next_op,
    parse_python,
    python_text,
    r_deparse,
    r_levels,
    r_name,
    r_tokens,
)
# evaluate lives in rexpr; the name stays importable here for callers not yet moved to it
from .rexpr import CONSTANTS, MATH, column_kind, evaluate, numeric_column, unknown_column

__all__ = ["ModelMatrix", "MatrixSpec", "model_matrix", "split_offsets", "term_codes", "variables"]


# cbind() only so variables() accepts binomial responses such as cbind(k, n - k)
_FORMULA_ONLY = {"scale", "poly", "factor", "offset", "cbind"}
_KNOWN_FUNCTIONS = set(MATH) | _FORMULA_ONLY
# R's comparison and logical operators: a logical term needs R's FALSE/TRUE factor coding,
# which the formulaic path below does not give, so such terms are refused with a clear error.
_LOGICAL_OPERATORS = {">", "<", ">=", "<=", "==", "!=", "!", "&", "&&"}


def variables(expr: str, columns: Sequence[str]) -> set[str]:
    """Data columns that a formula right-hand side or an R expression uses.

    Parameters
    ----------
    expr : str
        E.g. ``"Days + (Days | Subject)"`` or ``"log(size)"``.
    columns : sequence of str
        The data's column names.

    Returns
    -------
    set of str

    Raises
    ------
    DataError
        A name that is neither a column, a known function nor ``TRUE``,
        ``FALSE`` or ``pi``.
    """
    cols = set(columns)
    toks = r_tokens(expr)
    used: set[str] = set()
    for i, (kind, tok) in enumerate(toks):
        if kind == "bq":
            tok = tok[1:-1]
        elif kind != "name":
            continue
        follow = next_op(toks, i)
        if follow == "(":
            if tok not in _KNOWN_FUNCTIONS:
                raise DataError(f"unknown function '{tok}' in '{expr}'")
        elif follow == "=":
            continue  # a named argument, e.g. poly(x, degree = 2)
        elif tok in cols:
            used.add(tok)
        elif tok not in CONSTANTS or kind == "bq":
            raise unknown_column(tok, expr, columns)
    return used


def split_offsets(rhs: str) -> tuple[str, list[str]]:
    """Remove the top-level ``offset(...)`` terms of a right-hand side.

    Returns
    -------
    rest : str
        The remaining terms as written, ``"1"`` if none remain.
    offsets : list of str
        The argument of each ``offset()``, e.g. ``["log(size)"]``.
    """
    chunks: list[list] = [["+", ""]]
    depth = 0
    for kind, tok in r_tokens(rhs):
        if kind == "op" and tok in "([{":
            depth += 1
        elif kind == "op" and tok in ")]}":
            depth -= 1
        if kind == "op" and tok in ("+", "-") and depth == 0:
            if chunks[-1][1].strip():
                chunks.append([tok, ""])
            else:  # a leading sign, e.g. "-1 + x"
                chunks[-1][0] = "-" if (chunks[-1][0] == "-") != (tok == "-") else "+"
            continue
        chunks[-1][1] += tok
    if len(chunks) > 1 and not chunks[-1][1].strip():
        raise FormulaError("the formula ends with an operator", rhs, len(rhs.rstrip()) - 1)
    kept, offsets = [], []
    for sign, text in chunks:
        text = text.strip()
        match = re.fullmatch(r"offset\s*\((.*)\)", text, re.S)
        if match and _balanced(match.group(1)):
            if sign == "-":
                raise FormulaError("an offset() term cannot be subtracted", rhs, rhs.find(text))
            offsets.append(match.group(1).strip())
        elif text:
            kept.append((sign, text))
    if not kept:
        return "1", offsets
    rest = ("-" if kept[0][0] == "-" else "") + kept[0][1]
    rest += "".join(f" {sign} {text}" for sign, text in kept[1:])
    return rest, offsets


def _balanced(text: str) -> bool:
    """Whether the parentheses of ``text`` never close below depth zero."""
    depth = 0
    for kind, tok in r_tokens(text):
        depth += (tok == "(") - (tok == ")") if kind == "op" else 0
        if depth < 0:
            return False
    return depth == 0


def _walk_columns(node: ast.AST, names: dict[str, str], in_factor: bool, out: dict[str, bool]):
    """Record each column name used and whether it sits inside ``factor()``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        inside = in_factor or node.func.id == "factor"
        for child in [*node.args, *(k.value for k in node.keywords)]:
            _walk_columns(child, names, inside, out)
        return
    if isinstance(node, ast.Name):
        name = names.get(node.id, node.id)
        out[name] = out.get(name, True) and in_factor
        return
    for child in ast.iter_child_nodes(node):
        _walk_columns(child, names, in_factor, out)


def _shadowed_columns(tree: ast.AST, names: dict[str, str], columns: dict[str, bool]
                      ) -> dict[str, str]:
    """Column -> alias for the columns named like a function the expression calls.

    formulaic looks names up in the data before its functions, so a column ``log`` would hide
    ``log()`` in ``log(log + 1)``; R takes the name before ``(`` as the function, the others
    as the column.
    """
    called = {names.get(node.func.id, node.func.id) for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    return {name: f"_mm_column{k}_" for k, name in enumerate(sorted(called & set(columns)))}


def _rename_columns(tree: ast.AST, names: dict[str, str], aliases: dict[str, str]) -> str:
    """Python text of ``tree`` with the columns of ``aliases`` renamed (calls keep their
    function names) and other back-quoted names back-quoted again for formulaic."""
    calls = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    renamed = copy.deepcopy(tree)
    # ast.walk visits a tree and its copy in the same order
    for old, new in zip(ast.walk(tree), ast.walk(renamed)):
        if isinstance(new, ast.Name) and id(old) not in calls:
            new.id = aliases.get(names.get(new.id, new.id), new.id)
    text = ast.unparse(renamed)
    return re.sub(r"\b_bq\d+_\b", lambda m: f"`{names[m.group()]}`", text)


@stateful_transform
def _r_factor(x, _state={}):  # noqa: B006 - formulaic replaces _state per model spec
    """R's ``factor(x)``; on new data keeps the training levels and rejects unseen ones."""
    series = x if isinstance(x, pd.Series) else pd.Series(np.asarray(x))
    if "levels" not in _state:
        _state["levels"] = r_levels(series)[0]
    codes, unseen = level_codes(series, _state["levels"])
    if unseen:
        raise DataError(f"level '{unseen}' was not present when the model was fitted")
    return pd.Categorical.from_codes(codes, categories=_state["levels"])


_CONTEXT = {**MATH, **CONSTANTS, "factor": _r_factor}


_BARE = object()  # spec marker: a plain column encoded without formulaic


class _Variable:
    """One R variable (a column or an expression) and its trained encoding."""

    def __init__(self, factor: Factor, columns: Sequence[str]):
        self.factor = factor
        self.aliases: dict[str, str] = {}
        self.bare = factor.eval_method is Factor.EvalMethod.LOOKUP
        if self.bare:
            self.label = r_name(factor.expr)
            self.columns = {factor.expr: False}
        else:
            tree, names = parse_python(factor.expr)
            try:
                self.label = r_deparse(tree, names)[0]
            except ValueError as err:
                raise FormulaError(f"{err} in term '{factor.expr}'") from None
            self.columns = {}
            _walk_columns(tree, names, False, self.columns)
            for name in self.columns:
                if name not in columns and name not in CONSTANTS and name not in _CONTEXT:
                    raise unknown_column(name, self.label, columns)
            self.columns = {k: v for k, v in self.columns.items() if k in columns}
            self.aliases = _shadowed_columns(tree, names, self.columns)
            if self.aliases:
                self.factor = Factor(_rename_columns(tree, names, self.aliases),
                                     eval_method=Factor.EvalMethod.PYTHON)
        self.levels: list[str] | None = None
        self.ordered = False
        self.spec = None

    def frame(self, data: pd.DataFrame) -> pd.DataFrame:
        """The columns this variable needs, converted as R's model.frame would."""
        out = {}
        for name, raw in self.columns.items():
            if name not in data.columns:
                # fitting checks the columns first: a missing one is missing from new data
                raise DataError(f"newdata has no column '{name}' (used in '{self.label}')")
            series = data[name]
            # A column trained as a factor stays one even if new data stores it as numbers.
            trained = self.spec is not None
            as_factor = self.levels is not None if trained else column_kind(series) != "numeric"
            key = self.aliases.get(name, name)
            if self.bare and as_factor:
                out[key] = self._as_factor(series)
            elif raw:
                out[key] = series.reset_index(drop=True)
            else:
                out[key] = numeric_column(series, self.label)
        return pd.DataFrame(out)

    def _as_factor(self, series: pd.Series) -> pd.Categorical:
        if self.levels is None:
            if column_kind(series) == "logical":
                self.levels, self.ordered = ["FALSE", "TRUE"], False
            else:
                self.levels, self.ordered = r_levels(series)
        codes, unseen = level_codes(series, self.levels)
        if unseen is not None:
            raise DataError(
                f"column '{series.name}' has level '{unseen}' that was not present "
                f"when the model was fitted (levels: {', '.join(self.levels)})"
            )
        return pd.Categorical.from_codes(codes, categories=self.levels, ordered=self.ordered)

    def evaluate(self, data: pd.DataFrame) -> np.ndarray:
        """Formulaic's encoding of this variable alone: full dummies for a factor.

        Returns
        -------
        ndarray, shape (n, k)
        """
        frame = self.frame(data)
        if self.bare and (self.spec is None or self.spec is _BARE):
            # A plain column needs no formula machinery: numbers as they are, a factor as
            # one-hot columns of its codes (formulaic costs ~10 ms a variable here).
            self.spec = _BARE
            column = frame.iloc[:, 0]
            if isinstance(column.dtype, pd.CategoricalDtype):
                codes = column.cat.codes.to_numpy()
                full = np.zeros((len(codes), len(self.levels)))
                full[np.arange(len(codes)), codes] = 1.0
                full[codes < 0] = np.nan
            else:
                full = column.to_numpy(dtype=np.float64).reshape(-1, 1)
            self._check_levels()
            return full
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if self.spec is None:
                    mm = _formulaic_matrix(
                        Formula([Term([self.factor])]), frame, context=_CONTEXT, na_action="ignore"
                    )
                    self.spec = mm.model_spec
                    state = self.spec.encoder_state.get(self.factor.expr)
                    if state is not None and state[0] is Factor.Kind.CATEGORICAL and self.levels is None:
                        self.levels = [level_label(c) for c in state[1]["categories"]]
                else:
                    mm = self.spec.get_model_matrix(frame, context=_CONTEXT, na_action="ignore")
        except (FormulaicError, ValueError, TypeError, ArithmeticError) as err:
            # formulaic wraps errors raised inside transforms (our factor()); unwrap ours
            cause = err if isinstance(err, DataError) else (err.__cause__ or err.__context__)
            if isinstance(cause, DataError):
                raise DataError(f"{cause} (in '{self.label}', columns {', '.join(self.columns)})") from None
            raise DataError(f"cannot evaluate '{self.label}': {err}") from None
        self._check_levels()
        return np.asarray(mm, dtype=np.float64).reshape(len(frame), -1)

    def _check_levels(self) -> None:
        if self.levels is not None and len(self.levels) < 2:
            # R's model.matrix sets contrasts on every factor, which fails below 2 levels
            raise DataError(
                f"factor '{self.label}' has a single level ('{self.levels[0]}') in the data; "
                "R's contrasts need 2 or more levels"
            )

    def block(self, full: np.ndarray, code: int) -> tuple[np.ndarray, list[str]]:
        """Columns and names of this variable inside a term (code 1: contrasts, 2: dummies)."""
        if self.levels is None:
            if full.shape[1] == 1:
                return full, [self.label]
            return full, [f"{self.label}{j + 1}" for j in range(full.shape[1])]
        if code == 2:
            coding, suffixes = contr_identity(self.levels)
        elif self.ordered:
            coding, suffixes = contr_poly(len(self.levels))
        else:
            coding, suffixes = contr_treatment(self.levels)
        return full @ coding, [f"{self.label}{s}" for s in suffixes]


class MatrixSpec:
    """Everything needed to rebuild a model matrix's columns on new data.

    Holds the training factor levels and the state of stateful transforms
    (``scale()`` mean and sd, ``poly()`` coefficients).
    """

    def __init__(self, rhs: str, intercept: bool, variables_: list[_Variable],
                 terms: list[tuple[tuple[int, int], ...]]):
        self.rhs = rhs
        self.intercept = intercept
        self._variables = variables_
        self._terms = terms
        self.names: list[str] = []
        self.term_of_column: list[str] = []

    def build(self, data: pd.DataFrame) -> np.ndarray:
        """Model matrix of ``data`` with the training columns and coding.

        Parameters
        ----------
        data : pandas DataFrame, m rows

        Returns
        -------
        ndarray, shape (m, p), float64, C-contiguous

        Raises
        ------
        DataError
            A missing column, or a factor level not seen in training.
        """
        values, _, _ = self._assemble(data, [v.evaluate(data) for v in self._variables])
        return values

    def missing_rows(self, data: pd.DataFrame) -> np.ndarray:
        """(m,) bool: rows of ``data`` with a missing value in a column this matrix reads
        (R's na.pass then gives NA; a factor() expression would otherwise code NA as the
        reference level)."""
        missing = np.zeros(len(data), dtype=bool)
        for var in self._variables:
            for name in var.columns:
                if name in data.columns:
                    missing |= data[name].isna().to_numpy()
        return missing

    def _assemble(
        self, data: pd.DataFrame, full: list[np.ndarray]
    ) -> tuple[np.ndarray, list[str], list[str]]:
        """Matrix (n, p), column names and term labels from each variable's full encoding."""
        n = len(data)
        blocks, names, owners = [], [], []
        if self.intercept:
            names.append("(Intercept)")
            owners.append("(Intercept)")
        for term in self._terms:
            parts = [self._variables[i].block(full[i], code) for i, code in term]
            values, labels = interaction_columns([p[0] for p in parts], [p[1] for p in parts])
            label = ":".join(self._variables[i].label for i, _ in term)
            blocks.append(values)
            names.extend(labels)
            owners.extend([label] * len(labels))
        # Filled in place: no n-length column of ones and no stacked copy of the blocks.
        matrix = np.empty((n, len(names)))
        start = 0
        if self.intercept:
            matrix[:, 0] = 1.0
            start = 1
        for values in blocks:
            matrix[:, start:start + values.shape[1]] = values
            start += values.shape[1]
        return matrix, names, owners

    def __repr__(self) -> str:
        return f"MatrixSpec({self.rhs!r}, columns={self.names!r})"


@dataclass(frozen=True)
class ModelMatrix:
    """A model matrix with R's column names.

    Attributes
    ----------
    values : ndarray, shape (n, p), float64, C-contiguous
    names : list of str, length p
        R's column names, e.g. ``(Intercept)``, ``TypeT2``, ``temperature.L``.
    term_of_column : list of str, length p
        The R term label each column belongs to, e.g. ``recipe:temperature``.
    spec : MatrixSpec
        Rebuilds the same columns on new data.
    """

    values: np.ndarray
    names: list[str]
    term_of_column: list[str]
    spec: MatrixSpec


def term_codes(
    terms: list[tuple[int, ...]], intercept: bool, nlevels: list[int]
) -> list[tuple[tuple[int, int], ...]]:
    """R's coding of each factor in each term (stats:::TermCode and modelmatrix).

    A factor is coded by contrasts (1) when the term without it is empty or
    contained in an earlier term, otherwise by full dummies (2).  Without an
    intercept the first factor of the first term that has one gets dummies.
    Numeric variables get code 1 (ignored).
    """
    codes = [[[v, 1 if not set(term) - {v} or any(set(term) - {v} <= set(e) for e in terms[:t]) else 2]
              for v in term] for t, term in enumerate(terms)]
    if not intercept:
        first = next(((t, j) for t, row in enumerate(codes) for j, (v, _) in enumerate(row)
                      if nlevels[v] > 1), None)
        if first is not None:
            codes[first[0]][first[1]][1] = 2
    return [tuple((v, c) for v, c in row) for row in codes]


def _parse_error(err: FormulaicError, rhs: str, code: str) -> FormulaError:
    """formulaic's syntax error as a FormulaError pointing into the user's text.

    formulaic marks the offending token with ``⧛...⧚`` and ANSI colours; the
    position is only meaningful when the text was passed through unchanged.
    """
    message, _, context = str(err).partition("\n\n")
    context = re.sub(r"\x1b\[[0-9;]*m", "", context)
    position = context.find("⧛") if code == rhs and "⧛" in context else None
    return FormulaError(f"cannot parse formula '{rhs}': {message}", rhs, position)


@lru_cache(maxsize=256)
def _parse_rhs(code: str) -> tuple[bool, dict[str, Factor], tuple[str, ...],
                                   tuple[tuple[str, ...], ...]]:
    """formulaic's reading of a right-hand side, kept per text (refits, bootstraps and
    simulation studies parse the same formula again and again; this is a third of a small
    fit's set-up).

    Returns (has intercept, factor per expression, expressions in order of first appearance,
    the expressions of every non-intercept term). Nothing returned is mutated by callers.
    """
    formula = Formula(code)
    order: dict[str, int] = {}
    for tok in DefaultFormulaParser().get_tokens(code):
        if tok.kind.name in ("NAME", "PYTHON"):
            order.setdefault(tok.token, len(order))
    intercept = any(t.degree == 0 for t in formula)
    found: dict[str, Factor] = {}
    for term in formula:
        for factor in term.factors:
            if factor.eval_method is not Factor.EvalMethod.LITERAL:
                found.setdefault(factor.expr, factor)
    exprs = tuple(sorted(found, key=lambda e: order.get(e, len(order))))
    term_exprs = tuple(tuple(f.expr for f in t.factors) for t in formula if t.degree > 0)
    return intercept, found, exprs, term_exprs


def _refuse_logical(rhs: str) -> None:
    """A clear error for comparisons and ``& | !`` on the right-hand side.

    R codes a logical term such as ``I(x > 3)`` as a factor with levels FALSE and TRUE; a
    boolean column of the data gets exactly that coding here.
    """
    position = 0
    for kind, tok in r_tokens(rhs):
        if kind == "op" and tok in _LOGICAL_OPERATORS:
            raise FormulaError(
                f"the comparison or logical operator '{tok}' in '{rhs}' is supported in the "
                "response only; for a FALSE/TRUE predictor add a boolean column to the data "
                "(e.g. data['big'] = data['x'] > 3) and use that column", rhs, position)
        position += len(tok)


def _refuse_cbind(rhs: str) -> None:
    """cbind() outside the response: a FormulaError pointing at it."""
    toks = r_tokens(rhs)
    position = 0
    for i, (kind, tok) in enumerate(toks):
        if kind == "name" and tok == "cbind" and next_op(toks, i) == "(":
            raise FormulaError(f"cbind() in '{rhs}' can only be the whole response of a "
                               "binomial model: cbind(successes, failures) ~ ...", rhs, position)
        position += len(tok)


def model_matrix(rhs: str, data: pd.DataFrame) -> ModelMatrix:
    """R's ``model.matrix(~ rhs, data)``.

    Parameters
    ----------
    rhs : str
        Right-hand side of a formula without random-effect bars, e.g.
        ``"recipe * temperature"``, ``"0 + f"``, ``"I(age^2) + log(x)"``.
        Top-level ``offset()`` terms are ignored, as R does.
    data : pandas DataFrame, n rows
        Categorical columns are factors (ordered ones get ``contr.poly``),
        text and bool columns become unordered factors, numbers are numeric.

    Returns
    -------
    ModelMatrix
        ``values`` has shape (n, p).

    Raises
    ------
    FormulaError
        The formula cannot be parsed.
    DataError
        Unknown column, text used as a number, one-level factor needing
        contrasts.
    """
    rest, offsets = split_offsets(rhs)
    rest = rest if offsets else rhs
    if re.search(r"offset\s*\(", rest) or any(t in ("|", "||", "~") for _, t in r_tokens(rest)):
        raise FormulaError(f"'{rhs}' must be a plain right-hand side: no bars, '~' or nested offset()")
    if "%in%" in (t for _, t in r_tokens(rest)):
        # formulaic reads a %in% b as nesting (b + b:a), R as the single term a:b
        raise FormulaError(f"'%in%' is not supported in '{rhs}'; write the interaction a:b", rhs, rhs.find("%in%"))
    _refuse_logical(rhs)
    _refuse_cbind(rhs)
    variables(rest, data.columns)
    code = python_text(rest, all_arithmetic=False)
    try:
        intercept, found, exprs, term_exprs = _parse_rhs(code)
    except FormulaicError as err:
        raise _parse_error(err, rhs, code) from None
    except SyntaxError as err:  # formulaic parses the Python inside calls with ast
        raise FormulaError(f"cannot parse formula '{rhs}': {err.msg}", rhs) from None
    vars_ = [_Variable(found[e], list(data.columns)) for e in exprs]
    index = {e: i for i, e in enumerate(exprs)}
    # R names and orders a term's variables by their first appearance in the formula.
    terms = [tuple(sorted(index[e] for e in t if e in index)) for t in term_exprs]
    full = [v.evaluate(data) for v in vars_]
    nlevels = [len(v.levels) if v.levels is not None else 0 for v in vars_]
    spec = MatrixSpec(rhs, intercept, vars_, term_codes(terms, intercept, nlevels))
    values, names, owners = spec._assemble(data, full)
    spec.names, spec.term_of_column = names, owners
    return ModelMatrix(values=values, names=names, term_of_column=owners, spec=spec)

