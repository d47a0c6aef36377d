"""What a formula needs from a source, and the model's columns once the first pass is in.

``analyse`` reads the formula against the source's column kinds and says what the first pass
must learn: the levels of every factor and grouping factor, the mean and SD of each
``scale()``d column. ``build_spec`` turns the first pass into a ``SourceSpec``: every column of
X and of each term's z, the response and the offset as polynomials (``poly.py``), R's column
names, and one ``TermSpec`` per term (levels, names, covariance template: no rows).

The column names, the term labels and the ``MatrixSpec`` come from the in-memory code itself
(``formula.fixed.model_matrix``) run on a small synthetic frame that has every level, so they
are the in-memory ones by construction.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError
from ..formula import fixed as fx
from ..formula.bars import MixedFormula
from ..formula.contrasts import interaction_columns, level_codes, r_levels, r_tokens
from ..formula.design import _check_terms, _expressions, _used_columns, cbind_arguments
from ..formula.structures import term_covariance
from ..terms import TermSpec, order_terms
from .poly import Poly, parse_numeric

NUMERIC, LOGICAL, FACTOR = "numeric", "logical", "factor"


@dataclass
class Needs:
    """What the first pass must compute (from ``analyse``).

    used : the columns the model reads (rows with a missing value in any are dropped);
    codings : coding key -> the columns whose (combined) levels it codes; numeric : columns
    used as numbers (checked for Inf); scale : columns under ``scale()``; weights : the
    weights column or None; factors : columns that enter a model matrix as factors.
    """

    used: list[str]
    codings: dict[str, tuple[str, ...]]
    numeric: list[str]
    scale: list[str]
    weights: str | None
    kinds: dict[str, str]
    fixed_rhs: str = ""
    offsets: list[str] = field(default_factory=list)
    factors: list[str] = field(default_factory=list)
    nan_exprs: list[str] = field(default_factory=list)


@dataclass
class FirstPass:
    """What the first pass learned.

    n_total : rows of the source; n : rows without a missing value in a used column;
    missing : column -> rows where it is missing (over all rows, columns with any only);
    distinct : coding key -> the distinct combinations of its columns on the complete rows
    (one row each, any order); scale : column -> (mean, SD with n - 1) on the complete rows;
    nan_rows : expression -> rows it drops (NaN there, no column missing, not dropped by an
    earlier expression; only expressions that drop some), as the in-memory warning counts.
    """

    n_total: int
    n: int
    missing: dict[str, int]
    distinct: dict[str, pd.DataFrame]
    scale: dict[str, tuple[float, float]]
    nan_rows: dict[str, int] = field(default_factory=dict)


@dataclass
class ColumnStats:
    """What lme4's checks before the fit read off the rows, from the second pass.

    y_range : (min, max) of the response minus the offset; sd : (p_full,) SD (n - 1) of each
    column of X; binary : (p_full,) whether a column holds only 0s and 1s.
    """

    y_range: tuple[float, float]
    sd: np.ndarray
    binary: np.ndarray


@dataclass
class Coding:
    """Levels of one coding key in R's order: ``values`` row i (a frame with one column per
    source column) is level i, labelled ``labels[i]``; ``boolean`` codes FALSE 0 and TRUE 1
    straight from a logical column (no table); ``order`` (l,) the rows of the first pass's
    distinct frame in level order."""

    key: str
    columns: tuple[str, ...]
    values: pd.DataFrame | None
    labels: list[str]
    boolean: bool = False
    order: np.ndarray | None = None


@dataclass
class SourceSpec:
    """A model's columns as polynomials, with everything the result reports about them.

    x : (p_full,) polynomials of X's columns before the rank check, named ``x_names`` with
    R term labels ``x_terms``; terms : the random-effects terms in fitting order (levels and
    names, no rows); z : per term its (p_i,) polynomials; group_keys : per term its coding
    key; y, offset : polynomials; weights : the weights column or None; kinds : the used
    columns' kinds; nan_exprs : as ``Needs``.
    """

    formula: MixedFormula
    x: list[Poly]
    x_names: list[str]
    x_terms: list[str]
    x_spec: object
    y: Poly
    offset: Poly
    offset_exprs: tuple[str, ...]
    weights: str | None
    terms: tuple[TermSpec, ...]
    z: tuple[tuple[Poly, ...], ...]
    group_keys: tuple[str, ...]
    codings: dict[str, Coding]
    first: FirstPass
    used: list[str]
    kinds: dict[str, str] = field(default_factory=dict)
    nan_exprs: tuple[str, ...] = ()

    def numeric_atoms(self) -> list[str]:
        """The expressions behind every numeric atom, for the engines to evaluate."""
        polys = [*self.x, self.y, self.offset, *(z for zs in self.z for z in zs)]
        return sorted({a[1] for p in polys for a in p.atoms() if a[0] == "num"})


def _sample(kinds: dict[str, str], levels: dict[str, tuple[list, list[str], bool]],
            n: int, scale: dict[str, tuple[float, float]] | None = None) -> pd.DataFrame:
    """A synthetic frame with the used columns: numbers, booleans and, for factor columns,
    every level (``levels``: column -> (raw values, labels, ordered)) at least once.

    A column of ``scale`` (column -> (mean, SD)) gets that mean and SD, so the ``scale()``
    state the model matrices keep (and the in-memory ``predict`` reads) is the training one.
    """
    rng = np.random.default_rng(0)
    out = {}
    for name, kind in kinds.items():
        if scale and name in scale and kind == NUMERIC:
            draws = rng.normal(size=n)
            mean, sd = scale[name]
            out[name] = mean + sd * (draws - draws.mean()) / draws.std(ddof=1)
        elif name in levels:
            raw, labels, ordered = levels[name]
            reps = np.arange(n) % len(raw)
            if kind == FACTOR:
                out[name] = pd.Categorical.from_codes(reps, categories=labels, ordered=ordered)
            else:                      # a numeric column under factor(): its own values
                out[name] = np.asarray(raw)[reps]
        elif kind == NUMERIC:
            out[name] = rng.normal(size=n) + 2.0
        elif kind == LOGICAL:
            out[name] = np.arange(n) % 2 == 1
        else:
            out[name] = np.array(["a", "b"])[np.arange(n) % 2]
    return pd.DataFrame(out)


def _scale_column(v) -> str | None:
    """The column of a plain ``scale(column)`` variable, else None."""
    try:
        tree = ast.parse(v.factor.expr, mode="eval").body
    except SyntaxError:
        return None
    if (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name)
            and tree.func.id == "scale" and len(tree.args) == 1 and not tree.keywords
            and len(v.columns) == 1):
        return next(iter(v.columns))
    return None


def _variable_needs(v, kinds: dict[str, str], where: str, needs: Needs) -> None:
    """Record what the first pass needs for one variable of a model matrix (or refuse it)."""
    cols = list(v.columns)
    if v.levels is not None:
        if len(cols) != 1 or not (v.bare or v.factor.expr == f"factor({cols[0]})"):
            raise FormulaError(f"{where}: the factor '{v.label}' is not supported when fitting "
                               "from a DuckDB or Dask source (use a column, or factor(column))")
        if kinds[cols[0]] == LOGICAL and v.bare:
            return
        needs.codings.setdefault(cols[0], (cols[0],))
        if cols[0] not in needs.factors:
            needs.factors.append(cols[0])
        return
    if _scale_column(v) is not None:
        col = _scale_column(v)
        if col not in needs.scale:
            needs.scale.append(col)
    elif not v.bare:
        parse_numeric(v.label, kinds, f"{where}, term '{v.label}'")
    for col in cols:
        if col not in needs.numeric:
            needs.numeric.append(col)


def analyse(mf: MixedFormula, kinds: dict[str, str], weights: str | None) -> Needs:
    """What the first pass must learn for ``mf`` on a source whose columns have ``kinds``.

    Raises the in-memory errors for unknown columns, and a FormulaError naming the term for
    what sources do not support.
    """
    if not mf.bars:
        raise FormulaError("no random-effects terms in the formula; use a linear model instead",
                           formula=mf.text, position=len(mf.text) - 1)
    fixed_rhs, offsets = fx.split_offsets(mf.fixed)
    used = _used_columns(mf, fixed_rhs, offsets, pd.DataFrame(columns=list(kinds)), weights)
    for col in used:
        if kinds[col] not in (NUMERIC, LOGICAL, FACTOR):
            raise DataError(f"column '{col}' has type {kinds[col]}, which a model cannot use; "
                            "convert it to a number or a string first")
    used_kinds = {c: kinds[c] for c in used}
    needs = Needs(used=used, codings={}, numeric=[], scale=[], weights=weights, kinds=used_kinds,
                  fixed_rhs=fixed_rhs, offsets=offsets)
    sample = _sample(used_kinds, {}, 6)
    for v in fx.model_matrix(fixed_rhs, sample).spec._variables:
        _variable_needs(v, used_kinds, "fixed effects", needs)
    for bar in mf.bars:
        where = f"random-effects term ({bar.lhs} | {bar.group_name})"
        for v in fx.model_matrix(bar.lhs, sample).spec._variables:
            _variable_needs(v, used_kinds, where, needs)
        needs.codings.setdefault(":".join(bar.group), tuple(bar.group))
    _response_poly(mf, used_kinds)
    for expr in offsets:
        parse_numeric(expr, used_kinds, f"offset({expr})")
    if weights is not None and used_kinds[weights] != NUMERIC:
        raise DataError(f"weights column '{weights}' is not numeric")
    needs.nan_exprs = _nan_expressions(mf, fixed_rhs, offsets, used_kinds)
    return needs


def _nan_expressions(mf: MixedFormula, fixed_rhs: str, offsets: list[str],
                     kinds: dict[str, str]) -> list[str]:
    """The formula's expressions that can give NaN on a complete row, as the in-memory
    ``_model_frame`` evaluates them; those a source cannot evaluate as numbers (``scale()``,
    ``factor()``) cannot give NaN where their columns have none and are skipped."""
    out = []
    for expr in dict.fromkeys(_expressions(mf, fixed_rhs, offsets)):
        if len([kind for kind, _ in r_tokens(expr) if kind != "ws"]) < 2:
            continue
        try:
            parse_numeric(expr, kinds, expr)
        except FormulaError:
            continue
        out.append(expr)
    return out


def _response_poly(mf: MixedFormula, kinds: dict[str, str]) -> Poly:
    if cbind_arguments(mf.response, mf.text) is not None:
        raise FormulaError(f"the response '{mf.response}' is binomial counts: cbind() responses "
                           "need glmer (lmer needs a numeric response)", mf.text,
                           mf.text.find("cbind"))
    name = mf.response.strip().strip("`")
    if kinds.get(name) == FACTOR:
        raise DataError(f"the response '{mf.response}' is not numeric (it holds text or factor "
                        "values); lmer needs a numeric response")
    parse_numeric(mf.response, kinds, "the response")
    return _numeric_poly(mf.response, kinds)


def _numeric_poly(expr: str, kinds: dict[str, str]) -> Poly:
    name = expr.strip()
    name = name[1:-1] if name.startswith("`") and name.endswith("`") else name
    return Poly.atom(("num", name if name in kinds else expr))


def _coding(key: str, columns: tuple[str, ...], distinct: pd.DataFrame
            ) -> tuple[Coding, dict[str, tuple[list, list[str], bool]]]:
    """Levels in R's order from the distinct combinations: a single column as ``factor()``,
    several as R's ``factor(a:b)`` (first column slowest, unused combinations dropped)."""
    per_column, codes = {}, []
    for col in columns:
        labels, ordered = r_levels(distinct[col])
        c, _ = level_codes(distinct[col], labels)
        codes.append(c)
        # the raw value of each level: np.unique returns the codes sorted, so level order
        first_rows = np.unique(c, return_index=True)[1]
        per_column[col] = (list(distinct[col].to_numpy()[first_rows]), labels, ordered)
    order = np.lexsort(tuple(reversed(codes)))
    values = distinct.loc[:, list(columns)].iloc[order].reset_index(drop=True)
    labels = [":".join(per_column[col][1][codes[k][i]] for k, col in enumerate(columns))
              for i in order]
    return (Coding(key=key, columns=columns, values=values, labels=labels, order=order),
            per_column)


def _symbolic_columns(mm, codings: dict[str, Coding], first: FirstPass, kinds: dict[str, str],
                      where: str) -> list[Poly]:
    """The polynomial of each column of a model matrix built by ``fx.model_matrix``."""
    spec = mm.spec
    full = []
    for v in spec._variables:
        cols = list(v.columns)
        if v.levels is not None:
            if kinds[cols[0]] == LOGICAL and v.bare:
                key = "bool:" + cols[0]
            else:
                key = cols[0]
                if codings[key].labels != list(v.levels):
                    raise DataError(f"{where}: the levels of '{v.label}' could not be matched "
                                    "between the source and the formula")
            atoms = [Poly.atom(("lev", key, code)) for code in range(len(v.levels))]
        elif _scale_column(v) is not None:
            mean, sd = first.scale[_scale_column(v)]
            atoms = [(Poly.atom(("num", _scale_column(v))) - mean) * (1.0 / sd)]
        else:
            atoms = [_numeric_poly(v.label if not v.bare else cols[0], kinds)]
        row = np.empty((1, len(atoms)), dtype=object)
        row[0, :] = atoms
        full.append(row)
    out: list[Poly] = [Poly.const(1.0)] if spec.intercept else []
    for term in spec._terms:
        parts = [spec._variables[i].block(full[i], code) for i, code in term]
        values, _ = interaction_columns([p[0] for p in parts], [p[1] for p in parts])
        out.extend(values[0, :].tolist())
    if len(out) != len(mm.names):
        raise DataError(f"{where}: could not rebuild the columns {mm.names} from the source")
    return [p if isinstance(p, Poly) else Poly.const(p) for p in out]


def build_spec(mf: MixedFormula, needs: Needs, first: FirstPass) -> SourceSpec:
    """The ``SourceSpec`` of ``mf`` from what the first pass learned (see module docstring)."""
    if first.n == 0:
        raise DataError("no rows left after dropping rows with missing values in the columns "
                        f"used by the model ({', '.join(needs.used)})")
    codings: dict[str, Coding] = {}
    sample_levels: dict[str, tuple[list, list[str], bool]] = {}
    for key, columns in needs.codings.items():
        coding, per_column = _coding(key, columns, first.distinct[key])
        codings[key] = coding
        if columns[0] in needs.factors and len(columns) == 1:
            # only factors of the model matrices need every level in the synthetic frame
            sample_levels[columns[0]] = per_column[columns[0]]
    for col, kind in needs.kinds.items():
        if kind == LOGICAL:
            codings["bool:" + col] = Coding(key="bool:" + col, columns=(col,), values=None,
                                            labels=["FALSE", "TRUE"], boolean=True)
    kinds = needs.kinds
    rows = max([6] + [len(v[0]) for v in sample_levels.values()])
    sample = _sample(kinds, sample_levels, rows, first.scale)
    xmm = fx.model_matrix(needs.fixed_rhs, sample)
    x = _symbolic_columns(xmm, codings, first, kinds, "fixed effects")
    terms, zs = [], []
    for bar in mf.bars:
        where = f"random-effects term ({bar.lhs} | {bar.group_name})"
        zmm = fx.model_matrix(bar.lhs, sample)
        if len(zmm.names) == 0:
            raise FormulaError(f"the random-effects term ({bar.lhs} | {bar.group_name}) has no "
                               f"columns", formula=mf.text, position=bar.position)
        z = _symbolic_columns(zmm, codings, first, kinds, where)
        key = ":".join(bar.group)
        terms.append(TermSpec(group_name=bar.group_name, group_vars=tuple(bar.group),
                              levels=tuple(codings[key].labels), column_names=tuple(zmm.names),
                              lhs_spec=zmm.spec, correlated=bar.correlated,
                              covariance=term_covariance(mf, bar, zmm.spec,
                                                         tuple(zmm.names))))
        zs.append((tuple(z), key))
    ordered = order_terms(terms)
    index = [next(i for i, t in enumerate(terms) if t is o) for o in ordered]
    _check_terms(mf, ordered, first.n)
    offset = Poly()
    for expr in needs.offsets:
        offset = offset + _numeric_poly(expr, kinds)
    return SourceSpec(
        formula=mf, x=x, x_names=list(xmm.names), x_terms=list(xmm.term_of_column),
        x_spec=xmm.spec, y=_response_poly(mf, kinds), offset=offset,
        offset_exprs=tuple(needs.offsets), weights=needs.weights, terms=tuple(ordered),
        z=tuple(zs[i][0] for i in index), group_keys=tuple(zs[i][1] for i in index),
        codings=codings, first=first, used=needs.used,
        kinds=dict(needs.kinds), nan_exprs=tuple(needs.nan_exprs))
