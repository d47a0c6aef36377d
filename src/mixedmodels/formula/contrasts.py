"""R conventions that :mod:`mixedmodels.formula.fixed` and :mod:`~mixedmodels.formula.rexpr` reproduce.

Factor codings (``contr.treatment``, ``contr.poly``), the level labels
``factor()`` gives, the column order of interaction terms in
``model.matrix()``, ``deparse()`` of a term, and the small R-syntax layer
(tokens, R-to-Python translation) that lets formulaic and Python's ``ast``
read R text.
"""
from __future__ import annotations

import ast
import keyword
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import FormulaError

__all__ = [
    "contr_treatment",
    "contr_poly",
    "contr_identity",
    "r_number",
    "r_label",
    "level_label",
    "r_levels",
    "level_codes",
    "r_deparse",
    "r_name",
    "interaction_columns",
    "r_tokens",
    "next_op",
    "python_text",
    "parse_python",
]


def contr_treatment(levels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """R's ``contr.treatment``: the first level is the reference.

    Parameters
    ----------
    levels : sequence of str, length k >= 2

    Returns
    -------
    matrix : ndarray, shape (k, k - 1)
        Row ``i`` codes level ``i``; level 0 is all zeros.
    suffixes : list of str, length k - 1
        Column-name suffixes (the non-reference levels).
    """
    k = len(levels)
    return np.eye(k)[:, 1:], [str(lev) for lev in levels[1:]]


def contr_identity(levels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Indicator coding (``contrasts = FALSE``): one column per level.

    Returns
    -------
    matrix : ndarray, shape (k, k)
    suffixes : list of str, length k
    """
    return np.eye(len(levels)), [str(lev) for lev in levels]


def contr_poly(k: int) -> tuple[np.ndarray, list[str]]:
    """R's ``contr.poly(k)``: orthonormal polynomials in the scores 1..k.

    Follows R's ``make.poly``: QR of the centred Vandermonde matrix, columns
    ``Q[:, j] * R[j, j]`` (which fixes the sign so each polynomial has a
    positive leading coefficient), then scaled to unit length.

    Returns
    -------
    matrix : ndarray, shape (k, k - 1)
    suffixes : list of str, length k - 1
        ``.L``, ``.Q``, ``.C``, ``^4``, ``^5``, ...
    """
    if k < 2:
        raise ValueError("contr.poly needs at least 2 levels")
    scores = np.arange(1.0, k + 1.0)
    centred = scores - scores.mean()
    vander = centred[:, None] ** np.arange(k)[None, :]
    q, r = np.linalg.qr(vander)
    raw = q * np.diag(r)[None, :]
    z = raw / np.sqrt((raw**2).sum(axis=0))[None, :]
    named = [".L", ".Q", ".C"]
    suffixes = [named[j] if j < 3 else f"^{j + 1}" for j in range(k - 1)]
    return np.ascontiguousarray(z[:, 1:]), suffixes


def r_number(x: float) -> str:
    """Format a number as R's ``as.character()`` / ``deparse()`` do.

    Up to 15 significant digits, the fewest that reproduce the value, and
    scientific notation only when it is strictly shorter (``1e+05``,
    ``1e-04``, but ``10000`` and ``0.001``).
    """
    x = float(x)
    if np.isnan(x):
        return "NaN"
    if np.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    if x == 0:
        return "0"
    target = float(f"{x:.14e}")
    digits = next(d for d in range(1, 16) if float(f"{x:.{d - 1}e}") == target)
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    exp_int = int(exponent)
    sci = f"{mantissa}e{'-' if exp_int < 0 else '+'}{abs(exp_int):02d}"
    fixed = f"{x:.{max(0, digits - 1 - exp_int)}f}"
    return fixed if len(fixed) <= len(sci) else sci


def r_label(value: object) -> str:
    """The level label R gives a value: ``TRUE``/``FALSE``, R-formatted numbers, else ``str``."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return r_number(value)
    return str(value)


# R's integers are 32-bit; a larger whole number in the data is a double in R.
_R_INT_MAX = 2**31 - 1


def level_label(value: object) -> str:
    """The factor level R gives a data value (``as.character`` in ``factor()``).

    The one labelling of data values: grouping factors at fit time and in ``predict``, and
    factors in the fixed effects, all go through it, so a value gets the same label wherever
    it is read. Booleans are ``TRUE``/``FALSE``; integers are R integers (``100000``); other
    numbers are R doubles, written as ``as.character`` writes them (``1e+05``, ``0.5``,
    ``1`` for 1.0, 15 significant digits); text stays as it is.
    """
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, np.integer)) and abs(int(value)) <= _R_INT_MAX:
        return str(int(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return r_number(value)
    return str(value)


def r_levels(values: pd.Series) -> tuple[list[str], bool]:
    """Levels R's ``factor()`` would give, after dropping unused levels.

    Parameters
    ----------
    values : pandas Series, length n
        Missing values are ignored.

    Returns
    -------
    levels : list of str
        Categorical: the categories that occur, in category order.
        Numbers: sorted numerically.  Logical: ``FALSE``, ``TRUE`` (those
        present).  Text: sorted as R sorts in the C locale (plain code-point
        order).
    ordered : bool
        True for an ordered pandas Categorical.
    """
    dtype = values.dtype
    present = values.dropna()
    if isinstance(dtype, pd.CategoricalDtype):
        seen = set(present.cat.codes.unique().tolist())
        cats = [c for i, c in enumerate(dtype.categories) if i in seen]
        # R's factor() matches values by their labels: values that print alike are one level.
        return list(dict.fromkeys(level_label(c) for c in cats)), bool(dtype.ordered)
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return list(dict.fromkeys(level_label(v) for v in sorted(present.unique().tolist()))), False
    return sorted({level_label(v) for v in present.unique().tolist()}), False


def interaction_columns(
    blocks: Sequence[np.ndarray], names: Sequence[Sequence[str]]
) -> tuple[np.ndarray, list[str]]:
    """Row-wise products of column blocks in R's interaction order.

    Parameters
    ----------
    blocks : sequence of ndarray, each shape (n, p_i)
        One block per variable of the term, in R's variable order.
    names : sequence of sequence of str, lengths p_i
        Column names of each block.

    Returns
    -------
    values : ndarray, shape (n, prod(p_i))
        The first block varies fastest, as in ``model.matrix()``.
    names : list of str
        Names joined with ``:``.
    """
    values, labels = blocks[0], list(names[0])
    for block, block_names in zip(blocks[1:], names[1:]):
        n = values.shape[0]
        # 0 x Inf is NaN, as in R; the caller's finiteness check names the column and row
        with np.errstate(invalid="ignore"):
            values = (block[:, :, None] * values[:, None, :]).reshape(n, -1)
        labels = [f"{a}:{b}" for b in block_names for a in labels]
    return values, labels


def level_codes(series: pd.Series, levels: Sequence[str]) -> tuple[np.ndarray, str | None]:
    """Level index of each value, matched by its R label.

    Labels are computed once per distinct value, which keeps big columns fast.

    Returns
    -------
    codes : ndarray of int64, shape (n,)
        Index into ``levels``; -1 for missing or unseen values.
    unseen : str or None
        The first (sorted) label not among ``levels``.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    position = {lev: i for i, lev in enumerate(levels)}
    labels = [level_label(u) for u in uniques]
    mapped = np.array([position.get(lab, -1) for lab in labels] + [-1], dtype=np.int64)
    unseen = sorted(lab for lab in labels if lab not in position)
    return mapped[codes], (unseen[0] if unseen else None)


def r_name(name: str) -> str:
    """A column name as R deparses it: back-quoted unless it is a syntactic R name."""
    # R in a UTF-8 locale counts letters of any script as letters (größe is syntactic)
    syntactic = re.fullmatch(r"(?:[^\W\d_]|\.(?!\d))[\w.]*|\.", name)
    return name if syntactic else f"`{name}`"


# R's operator text and precedence (?Syntax); R writes ``/``, ``^`` and ``%%`` without spaces.
_R_BINARY = {
    ast.Pow: ("^", 14), ast.Mod: ("%%", 12), ast.FloorDiv: ("%/%", 12),
    ast.Mult: (" * ", 11), ast.Div: ("/", 11), ast.Add: (" + ", 10), ast.Sub: (" - ", 10),
}
_R_COMPARE = {ast.Gt: " > ", ast.Lt: " < ", ast.GtE: " >= ", ast.LtE: " <= ", ast.Eq: " == ",
              ast.NotEq: " != "}
_COMPARE_PREC, _NOT_PREC = 9, 8
_R_LOGICAL = {ast.And: (" & ", 7), ast.Or: (" | ", 6)}
_ATOM = 20


def r_deparse(node: ast.expr, names: dict[str, str]) -> tuple[str, int]:
    """R's ``deparse()`` of an arithmetic or logical expression parsed by Python's ``ast``.

    Parameters
    ----------
    node : ast.expr
        Names, numbers, strings, ``+ - * / ^ %% %/%``, unary signs, comparisons,
        ``and``/``or``/``not`` (R's ``&``, ``|``, ``!``) and function calls.
    names : dict
        Placeholder identifier -> real column name (for back-quoted names).

    Returns
    -------
    text : str
        E.g. ``I(age^2)``, ``log(x + 1)``, ``poly(x, degree = 2)``.
    precedence : int
        Of the outermost operator, so callers know where R keeps parentheses.

    Raises
    ------
    ValueError
        Any other syntax.
    """
    if isinstance(node, ast.BinOp) and type(node.op) in _R_BINARY:
        op, prec = _R_BINARY[type(node.op)]
        left, lp = r_deparse(node.left, names)
        right, rp = r_deparse(node.right, names)
        right_assoc = isinstance(node.op, ast.Pow)
        if lp < prec or (lp == prec and right_assoc):
            left = f"({left})"
        if rp < prec or (rp == prec and not right_assoc):
            right = f"({right})"
        return f"{left}{op}{right}", prec
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner, ip = r_deparse(node.operand, names)
        sign = "-" if isinstance(node.op, ast.USub) else "+"
        return sign + (f"({inner})" if ip < 13 else inner), 13
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        # parenthesised unless an atom: users write !(x > 3), which R keeps as written
        inner, ip = r_deparse(node.operand, names)
        return "!" + (f"({inner})" if ip < _ATOM else inner), _NOT_PREC
    if isinstance(node, ast.Compare) and all(type(op) in _R_COMPARE for op in node.ops):
        # R's comparisons do not associate: an operand that is itself one keeps its parentheses
        parts = [r_deparse(x, names) for x in [node.left, *node.comparators]]
        texts = [f"({t})" if p <= _COMPARE_PREC else t for t, p in parts]
        out = texts[0]
        for op, text in zip(node.ops, texts[1:]):
            out += _R_COMPARE[type(op)] + text
        return out, _COMPARE_PREC
    if isinstance(node, ast.BoolOp):
        op, prec = _R_LOGICAL[type(node.op)]
        parts = [r_deparse(v, names) for v in node.values]
        return op.join(f"({t})" if p < prec else t for t, p in parts), prec
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        args = [r_deparse(a, names)[0] for a in node.args]
        args += [f"{k.arg} = {r_deparse(k.value, names)[0]}" for k in node.keywords]
        return f"{node.func.id}({', '.join(args)})", _ATOM
    if isinstance(node, ast.Name):
        return r_name(names.get(node.id, node.id)), _ATOM
    if isinstance(node, ast.Constant) and isinstance(node.value, (bool, int, float)):
        return r_label(node.value), _ATOM
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        escaped = node.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"', _ATOM
    raise ValueError(f"unsupported expression '{ast.unparse(node)}'")


# --- R text -------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    |(?P<bq>`[^`]*`)
    |(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<name>(?:[^\W\d]|\.)[\w.]*)
    |(?P<op>%[^%\s]*%|\*\*|\|\||&&|==|!=|<=|>=|.)""",
    re.X | re.S,
)


def r_tokens(text: str) -> list[tuple[str, str]]:
    """Split R text into ``(kind, text)`` tokens; whitespace is kept so text can be rebuilt."""
    return [(m.lastgroup, m.group()) for m in _TOKEN.finditer(text)]


def next_op(toks: list[tuple[str, str]], i: int) -> str:
    """The operator right after token ``i`` (skipping whitespace), or ``""`` if a non-operator follows."""
    for kind, tok in toks[i + 1:]:
        if kind != "ws":
            return tok if kind == "op" else ""
    return ""


# R operators inside expressions and their Python spelling.  Python's and/or/not rank
# below comparisons and or < and < not, exactly as R's | & ! do, so the tree is R's.
_PY_OPERATOR = {"^": "**", "%%": "%", "%/%": "//", "&": " and ", "|": " or ", "!": " not "}


def python_text(text: str, all_arithmetic: bool) -> str:
    """Translate R text to what formulaic / Python's parser read.

    Inside function calls (or everywhere when ``all_arithmetic``), where the
    operators are R's arithmetic and logic rather than formula syntax: ``^``
    becomes ``**``, ``%%``/``%/%`` become ``%``/``//`` and ``&``/``|``/``!``
    become ``and``/``or``/``not``.  Dotted R names are back-quoted everywhere
    since Python would read them as attribute access, and so are names with
    non-ASCII letters, which Python would NFKC-normalise; with ``all_arithmetic``
    (text for :func:`parse_python` only) so are names that are Python keywords.

    Raises
    ------
    FormulaError
        ``[``, ``]``, ``{``, ``}``, or R's scalar ``&&``/``||`` inside an expression.
    """
    toks = r_tokens(text)
    out, calls = [], []
    prev = ("", "")
    position = 0
    for i, (kind, tok) in enumerate(toks):
        arithmetic = all_arithmetic or any(calls)
        start, position = position, position + len(tok)
        if kind == "name" and next_op(toks, i) != "(" and (
                "." in tok or not tok.isascii() or (all_arithmetic and keyword.iskeyword(tok))):
            tok = f"`{tok}`"
        elif kind == "op" and tok == "(":
            calls.append(prev[0] in ("name", "bq"))
        elif kind == "op" and tok == ")" and calls:
            calls.pop()
        elif kind == "op" and arithmetic and tok in ("&&", "||"):
            raise FormulaError(f"'{tok}' takes single values in R; use '{tok[0]}' to combine "
                               "conditions row by row", text, start)
        elif kind == "op" and arithmetic:
            tok = _PY_OPERATOR.get(tok, tok)
        if kind == "op" and tok in "[]{}":
            raise FormulaError(f"'{tok}' is not allowed in a formula", text, start)
        out.append(tok)
        if kind != "ws":
            prev = (kind, tok)
    return "".join(out)


def parse_python(code: str) -> tuple[ast.expr, dict[str, str]]:
    """Parse Python code whose back-quoted names are replaced by placeholders.

    Returns the expression tree and the placeholder -> original-name map.
    """
    names: dict[str, str] = {}

    def placeholder(m: re.Match) -> str:
        key = f"_bq{len(names)}_"
        names[key] = m.group()[1:-1]
        return key

    try:
        tree = ast.parse(re.sub(r"`[^`]*`", placeholder, code).strip(), mode="eval").body
    except SyntaxError as err:
        position = err.offset - 1 if err.offset else None
        raise FormulaError(f"cannot parse '{code}': {err.msg}", code, position) from None
    return tree, names
