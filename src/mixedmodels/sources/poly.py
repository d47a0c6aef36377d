"""Columns of X, z, y and the offset as polynomials in a few row-level atoms.

Every column a supported formula builds is a sum of products of *atoms*: a number read from a
column or an arithmetic expression of columns (``("num", expr)``), or the indicator that a
factor takes one level (``("lev", key, code)``). A treatment contrast is one indicator, an
interaction a product, ``scale(x)`` the affine ``(x - mean) / sd``. Written that way, the
same column can be rendered as SQL for DuckDB and evaluated with NumPy on a Dask partition,
and products of two columns (the cross-products) stay polynomials.
"""
from __future__ import annotations

import ast
from typing import Callable

import numpy as np

from ..errors import FormulaError
from ..formula.contrasts import parse_python, python_text

Atom = tuple
Monomial = tuple  # sorted atoms


def _mono_product(a: Monomial, b: Monomial) -> Monomial | None:
    """Product of two monomials; None when two indicators of one factor exclude each other."""
    levels: dict = {}
    nums = []
    for atom in a + b:
        if atom[0] == "lev":
            seen = levels.get(atom[1])
            if seen is not None and seen != atom[2]:
                return None
            levels[atom[1]] = atom[2]
        else:
            nums.append(atom)
    atoms = [("lev", key, code) for key, code in levels.items()] + nums
    return tuple(sorted(atoms, key=repr))


class Poly:
    """A polynomial in atoms: {monomial: coefficient}; the empty monomial is the constant."""

    __slots__ = ("terms",)

    def __init__(self, terms: dict | None = None):
        self.terms = {m: c for m, c in (terms or {}).items() if c != 0.0}

    @classmethod
    def const(cls, value: float) -> "Poly":
        return cls({(): float(value)})

    @classmethod
    def atom(cls, atom: Atom) -> "Poly":
        return cls({(atom,): 1.0})

    def __add__(self, other) -> "Poly":
        other = other if isinstance(other, Poly) else Poly.const(other)
        out = dict(self.terms)
        for m, c in other.terms.items():
            out[m] = out.get(m, 0.0) + c
        return Poly(out)

    __radd__ = __add__

    def __neg__(self) -> "Poly":
        return Poly({m: -c for m, c in self.terms.items()})

    def __sub__(self, other) -> "Poly":
        return self + (-other if isinstance(other, Poly) else -float(other))

    def __mul__(self, other) -> "Poly":
        if not isinstance(other, Poly):
            return Poly({m: c * float(other) for m, c in self.terms.items()})
        out: dict = {}
        for ma, ca in self.terms.items():
            for mb, cb in other.terms.items():
                m = _mono_product(ma, mb)
                if m is not None:
                    out[m] = out.get(m, 0.0) + ca * cb
        return Poly(out)

    __rmul__ = __mul__

    def atoms(self) -> set:
        return {a for m in self.terms for a in m}

    def is_one(self) -> bool:
        return self.terms == {(): 1.0}

    def key(self) -> tuple:
        """A hashable, order-free identity (equal polynomials, equal keys)."""
        return tuple(sorted(((m, c) for m, c in self.terms.items()), key=repr))

    def render(self, atom_text: Callable[[Atom], str], mul: str = " * ") -> str:
        """SQL-like text: coefficients as exact float literals, atoms through ``atom_text``.

        Indicators of a monomial become a ``CASE WHEN ... THEN ... ELSE 0 END`` around its
        numeric part, so a sum over rows skips the rows of other levels."""
        if not self.terms:
            return "0.0"
        parts = []
        for m, c in sorted(self.terms.items(), key=lambda mc: repr(mc[0])):
            nums = [atom_text(a) for a in m if a[0] != "lev"]
            conds = [atom_text(a) for a in m if a[0] == "lev"]
            body = mul.join(([] if c == 1.0 and nums else [sql_double(c)]) + nums)
            parts.append(f"CASE WHEN {' AND '.join(conds)} THEN {body} ELSE 0.0 END" if conds
                         else body)
        return " + ".join(f"({p})" for p in parts)

    def evaluate(self, atom_value: Callable[[Atom], np.ndarray], n: int) -> np.ndarray:
        """(n,) values with atoms from ``atom_value`` (numbers, or 0/1 arrays for levels)."""
        out = np.zeros(n)
        for m, c in self.terms.items():
            value = np.full(n, c)
            for a in m:
                value = value * atom_value(a)
            out += value
        return out

    def __repr__(self) -> str:
        return f"Poly({self.render(lambda a: str(a[1]) if a[0] == 'num' else f'[{a[1]}=={a[2]}]')})"


def sql_double(value: float) -> str:
    """An exact SQL DOUBLE: the shortest round-trip text, parsed as text (a decimal literal
    such as 0.30000000000000004 would round twice)."""
    return f"CAST('{float(value)!r}' AS DOUBLE)"


# ---- numeric expressions of columns ---------------------------------------------------------
_SQL_FUNCTIONS = {"log": "ln", "log2": "log2", "log10": "log10", "exp": "exp", "sqrt": "sqrt",
                  "abs": "abs", "log1p": None, "expm1": None, "I": ""}
_NUMPY_FUNCTIONS = {"log": np.log, "log2": np.log2, "log10": np.log10, "exp": np.exp,
                    "sqrt": np.sqrt, "abs": np.abs, "log1p": np.log1p, "expm1": np.expm1,
                    "I": lambda x: x}
_SQL_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_NUMPY_OPS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
              ast.Div: np.true_divide, ast.Pow: np.power}


def parse_numeric(expr: str, columns, what: str) -> tuple[ast.expr, dict[str, str]]:
    """Parse an R arithmetic expression of numeric columns, or say which part is unsupported.

    Parameters
    ----------
    expr : R text, e.g. ``"log(x + 1)"``, ``"I(age^2)"``; columns : the source's columns;
    what : how an error names the place of ``expr`` (a term, the response).

    Returns
    -------
    (tree, names) as ``contrasts.parse_python``.
    """
    tree, names = parse_python(python_text(expr, all_arithmetic=True))

    def check(node):
        if isinstance(node, ast.BinOp) and type(node.op) in _NUMPY_OPS:
            check(node.left), check(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            check(node.operand)
        elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            pass
        elif isinstance(node, ast.Name) and names.get(node.id, node.id) in columns:
            pass
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in _NUMPY_FUNCTIONS and not node.keywords
              and len(node.args) == 1):
            check(node.args[0])
        else:
            raise FormulaError(
                f"{what}: '{expr}' is not supported when fitting from a DuckDB or Dask source "
                "(supported: numeric columns, + - * / ^ with numbers, I(), log(), log2(), "
                "log10(), exp(), sqrt(), abs(), log1p(), expm1(), scale(column), factors)")

    check(tree)
    return tree, names


def sql_numeric(expr: str, column_sql: Callable[[str], str]) -> str:
    """SQL text of a checked numeric expression (``parse_numeric``); columns as DOUBLE."""
    tree, names = parse_python(python_text(expr, all_arithmetic=True))

    def walk(node) -> str:
        if isinstance(node, ast.BinOp):
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow):
                return f"pow({left}, {right})"
            return f"({left} {_SQL_OPS[type(node.op)]} {right})"
        if isinstance(node, ast.UnaryOp):
            return f"({'-' if isinstance(node.op, ast.USub) else '+'}{walk(node.operand)})"
        if isinstance(node, ast.Constant):
            return sql_double(node.value)
        if isinstance(node, ast.Name):
            return column_sql(names.get(node.id, node.id))
        arg = walk(node.args[0])
        name = node.func.id
        if name == "log1p":
            return f"ln(1.0 + {arg})"
        if name == "expm1":
            return f"(exp({arg}) - 1.0)"
        return f"{_SQL_FUNCTIONS[name]}({arg})"

    return walk(tree)


def numpy_numeric(expr: str, column: Callable[[str], np.ndarray]) -> np.ndarray:
    """NumPy value of a checked numeric expression, columns from ``column(name)``."""
    tree, names = parse_python(python_text(expr, all_arithmetic=True))

    def walk(node):
        if isinstance(node, ast.BinOp):
            return _NUMPY_OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return column(names.get(node.id, node.id))
        return _NUMPY_FUNCTIONS[node.func.id](walk(node.args[0]))

    with np.errstate(all="ignore"):
        return np.asarray(walk(tree), dtype=float)
