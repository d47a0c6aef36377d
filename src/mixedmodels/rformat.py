"""R's number formatting and print primitives, shared by every printed table.

The summary (``summary.py``), the F-test tables (``inference/ftests.py``), the likelihood-ratio
table (``inference/lrt.py``) and the HTML report (``report.py``) format numbers here, as lme4
keeps its ``.prt.*`` print helpers together. Each function names the R function it follows
(``format``, ``round``, ``zapsmall``, ``format.pval``, ``symnum``, ``abbreviate``, ``cat``,
``strwrap``, ``deparse``, ``print.default``), so a difference from R's text can be traced to
one place. Nothing here reads a model.
"""
from __future__ import annotations

import html
import math
import re
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .formula.contrasts import r_tokens

WIDTH = 80                        # getOption("width")
EPS = 2.220446049250313e-16       # .Machine$double.eps, format.pval's floor
SIGNIF_LEGEND = "0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"


# ---- R's number formatting -------------------------------------------------------------
def _sig_digits(x: float, digits: int) -> tuple[int, int, bool]:
    """R's ``scientific()``: (exponent, significant digits needed, rounding widens).

    The last flag is set when rounding to ``digits`` carries into the next power of ten although
    fixed notation would not (9996 to 3 digits is 1.00e+04 but prints as 9996).
    """
    r = abs(x)
    if r == 0:
        return 0, 1, False
    mantissa, exponent = f"{r:.{digits - 1}e}".split("e")
    kpower = int(exponent)
    nsig = max(1, len(mantissa.replace(".", "").rstrip("0")))
    rgt = min(max(digits - kpower, 0), 22)
    widens = 0 < kpower <= 22 and r < 10.0**kpower - 0.5 / 10.0**rgt
    return kpower, nsig, widens


def _special(v: Any) -> str | None:
    """R's text for NA / NaN / Inf, or None for a finite number."""
    if v is None or v is pd.NA or math.isfinite(v):
        return "NA" if v is None or v is pd.NA else None
    return "NaN" if math.isnan(v) else ("Inf" if v > 0 else "-Inf")


def format_num(values: Sequence[Any], digits: int = 7, nsmall: int = 0) -> list[str]:
    """R's ``format(x, digits, nsmall)`` of a numeric vector (``formatReal``).

    All elements share one layout: fixed notation with as many decimals as the element that needs
    most to show ``digits`` significant digits, unless scientific notation is narrower; the strings
    are right-justified to a common width.
    """
    finite = [float(v) for v in values if _special(v) is None]
    fixed, decimals, width = True, 0, 0
    if finite:
        neg = int(any(v < 0 for v in finite))
        parts = [_sig_digits(v, digits) for v in finite]
        lefts = [kp + 1 - widens for kp, _, widens in parts]
        rgt = max(0, max(nsig - left for (_, nsig, _), left in zip(parts, lefts)))
        mxsl = max((v < 0) + max(left, 1) for v, left in zip(finite, lefts))
        if max(lefts) < 0:
            mxsl = 1 + neg
        sci_decimals = max(nsig for _, nsig, _ in parts) - 1
        exp_digits = 2 if max(lefts) > 100 or min(lefts) <= -99 else 1
        sci_width = neg + (sci_decimals > 0) + sci_decimals + 4 + exp_digits
        if mxsl + rgt + (rgt != 0) <= sci_width:
            decimals = max(rgt, nsmall)
            width = mxsl + decimals + (decimals != 0)
        else:
            fixed, decimals, width = False, sci_decimals, sci_width
    out = [_special(v) or (f"{float(v):.{decimals}f}" if fixed else f"{float(v):.{decimals}e}")
           for v in values]
    width = max([width] + [len(s) for s in out])
    return [s.rjust(width) for s in out]


def r_round(values: Sequence[float], digits: float) -> list[float]:
    """R's ``round(x, digits)``; fractional ``digits`` are first rounded half up (``fround``)."""
    d = math.floor(digits + 0.5)
    # adding 0.0 turns -0.0 into 0.0: R never prints a sign on a zero
    return [round(float(v), d) + 0.0 if math.isfinite(v) else float(v) for v in values]


def zapsmall(values: Sequence[float], digits: int) -> list[float]:
    """R (<= 4.3)'s ``zapsmall``: round to ``digits`` significant digits of the largest value."""
    finite = [abs(v) for v in values if math.isfinite(v)]
    mx = max(finite, default=0.0)
    return r_round(values, max(0.0, digits - math.log10(mx)) if mx > 0 else digits)


def zapsmall_array(M: np.ndarray, digits: int = 7) -> np.ndarray:
    """``zapsmall`` of an array (any shape), rounded with ``numpy.round``.

    The same number of decimals as ``zapsmall`` (``digits`` significant digits of the largest
    absolute entry); used for hypothesis matrices, where a vectorized rounding is wanted.
    """
    mx = np.max(np.abs(M)) if M.size else 0.0
    places = math.floor(max(0.0, digits - math.log10(mx)) + 0.5) if mx > 0 else digits
    return np.round(M, places)


def format_pval(pv: Sequence[float], digits: int = 3, eps: float = EPS) -> list[str]:
    """R's ``format.pval``: p-values near the fixed range formatted together, smaller ones in
    scientific notation, those below ``eps`` as ``< eps`` (``< 2e-16``)."""
    out = ["NA"] * len(pv)
    big = [i for i, p in enumerate(pv) if _special(p) is None and p >= eps]
    tiny = [i for i, p in enumerate(pv) if _special(p) is None and p < eps]
    expo = {i: math.floor(math.log10(pv[i])) for i in big}
    fixp = [i for i in big if expo[i] >= -3 or (expo[i] == -4 and digits > 1)]
    for group in (fixp, [i for i in big if i not in fixp]):
        for i, s in zip(group, format_num([pv[i] for i in group], digits)):
            out[i] = s
    if tiny:
        d, nc = max(1, digits - 2), max((len(out[i]) for i in big), default=0)
        if big and d > 1 and d + 6 > nc:
            d = max(1, nc - 7)
        sep = "" if d == 1 and (not big or nc <= 6) else " "
        for i in tiny:
            out[i] = "<" + sep + format_num([eps], d)[0]
    return out


def signif_stars(p: float) -> str:
    """``symnum`` with printCoefmat's cut points (intervals closed on the right)."""
    cuts = ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."), (math.inf, " "))
    return "" if _special(p) is not None else next(sym for cut, sym in cuts if p <= cut)


def percent_labels(level: float) -> list[str]:
    """R's column labels for a two-sided interval, e.g. ``["2.5 %", "97.5 %"]`` (``format.perc``).

    Each percentage to 3 significant digits, all with the decimals the most precise one needs.
    """
    a = (1.0 - level) / 2.0
    pct = [100.0 * a, 100.0 * (1.0 - a)]
    decimals = 0
    for v in pct:
        if v == 0:
            continue
        d = max(0, 3 - 1 - int(math.floor(math.log10(abs(v)))))
        text = f"{round(v, d):.{d}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        decimals = max(decimals, len(text.split(".")[1]) if "." in text else 0)
    return [f"{v:.{decimals}f} %" for v in pct]


def escape_html(text: Any) -> str:
    """``str(text)`` with ``& < > " '`` escaped for HTML text and attribute values."""
    return html.escape(str(text), quote=True)


# ---- R's abbreviate (C stripchars + the R-level uniqueness loop) -----------------------
def _strip_chars(name: str, minlength: int) -> str:
    """Drop characters from the end backwards, class by class, until ``minlength`` is reached:
    lower-case vowels ending a word, other lower-case vowels, lower-case letters ending a word,
    other lower-case letters, then anything; the first character of a word is always kept."""
    b = list(name.strip())
    nspace = sum(c.isspace() for c in b)     # inner blanks separate words; dropped only at the end

    def first(i: int) -> bool:
        return b[i - 1].isspace()

    def last(i: int) -> bool:
        return not first(i) and (i + 1 == len(b) or b[i + 1].isspace())

    rules = (lambda i: b[i] in "aeiou" and last(i), lambda i: b[i] in "aeiou" and not first(i),
             lambda i: b[i].islower() and last(i), lambda i: b[i].islower() and not first(i),
             lambda i: not first(i) and not b[i].isspace())
    for rule in rules:
        for i in range(len(b) - 1, 0, -1):
            if len(b) - nspace <= minlength:
                break
            if rule(i):
                del b[i]
    if len(b) > minlength:
        b = b[:1] + [c for c in b[1:] if not c.isspace()]
    return "".join(b)


def abbreviate(names: Sequence[str], minlength: int) -> list[str]:
    """R's ``abbreviate(names, minlength)``: lengthen colliding abbreviations until unique."""
    names = [n.strip() for n in names]
    unique = list(dict.fromkeys(names))
    short = [n if len(n) <= minlength else _strip_chars(n, minlength) for n in unique]
    while True:
        seen: set[str] = set()
        dup = {s for s in short if s in seen or seen.add(s)}
        if not dup:
            break
        minlength += 1
        short = [_strip_chars(u, minlength) if s in dup and len(u) > minlength else
                 (u if s in dup else s) for u, s in zip(unique, short)]
    lookup = dict(zip(unique, short))
    return [lookup[n] for n in names]


# ---- R's printing primitives ------------------------------------------------------------
def cat_fill(items: Sequence[str], sep: str = " ") -> list[str]:
    """``cat(..., sep = sep, fill = TRUE)``: the separator is written, then a line break if the
    next item would pass the console width."""
    lines, line, width = [], "", 0
    for k, item in enumerate(items):
        if k:
            line += sep
            if width + len(item) + len(sep) > WIDTH:
                lines.append(line)
                line, width = "", 0
        line += item
        width += len(item) + len(sep)
    return lines + [line]


def strwrap(text: str, width: int, exdent: int) -> list[str]:
    """``strwrap(text, width, exdent = exdent)`` for single-spaced text."""
    lines: list[list[str]] = [[]]
    limit = width - 1
    for word in text.split():
        if lines[-1] and sum(len(w) + 1 for w in lines[-1]) + len(word) + 1 > limit:
            lines.append([])
            limit = width - exdent - 1
        lines[-1].append(word)
    return [(" " * exdent if k else "") + " ".join(ws) for k, ws in enumerate(lines)]


# deparse spaces PP_BINARY operators; "/", ":", "^", "%%" and "%/%" are PP_BINARY2 (tight)
_SPACED_OPS = {"+", "-", "*", "~", "|", "||", "&", "&&", "==", "!=", "<", ">", "<=", ">=", "=",
               "<-"}


def deparse_formula(text: str) -> str:
    """The spacing ``deparse`` gives a formula: binary operators such as ``~ + - * |`` spaced,
    unary ones and ``/ : ^`` tight, ``", "`` between arguments."""
    out: list[str] = []
    prev = None
    for kind, tok in r_tokens(text):
        if kind == "ws":
            continue
        if kind == "op" and (tok in _SPACED_OPS or tok[0] == "%" and tok not in ("%%", "%/%")):
            unary = prev is None or (prev[0] == "op" and prev[1] not in ")]")
            out.append(tok if unary else f" {tok} ")
        else:
            out.append(", " if tok == "," else tok)
        prev = (kind, tok)
    return "".join(out)


def deparse_chunks(formula: str) -> list[str]:
    """Where ``deparse`` (width.cutoff = 60) splits a long formula: after a spaced binary operator
    once the line passes 60 characters; continuation lines are indented by four spaces."""
    chunks, start, indent = [], 0, ""
    for m in re.finditer(r" [-+*~|] ", formula):
        if len(indent) + m.end() - start > 60:
            chunks.append(indent + formula[start:m.end()])
            start, indent = m.end(), "    "
    return chunks + [indent + formula[start:]]


def print_matrix(col_names: Sequence[str], row_names: Sequence[str],
                 columns: Sequence[Sequence[str]], right: bool) -> list[str]:
    """``print(<character matrix>, quote = FALSE, right = right)``.

    Row names are left-justified; cells and column labels are right- or left-justified; columns
    that do not fit in the console width continue in a further block below.
    """
    rlabw = max((len(r) for r in row_names), default=0)
    widths = [max([len(h)] + [len(c) for c in col]) for h, col in zip(col_names, columns)]

    def just(s: str, w: int) -> str:
        return s.rjust(w) if right else s.ljust(w)

    lines, j = [], 0
    while j < len(columns):
        k, width = j + 1, rlabw + widths[j] + 1
        while k < len(columns) and width + widths[k] + 1 < WIDTH:
            width += widths[k] + 1
            k += 1
        lines.append(" " * rlabw + "".join(" " + just(col_names[c], widths[c])
                                           for c in range(j, k)))
        for r, name in enumerate(row_names):
            lines.append(name.ljust(rlabw) + "".join(" " + just(columns[c][r], widths[c])
                                                     for c in range(j, k)))
        j = k
    return lines


def print_named(names: Sequence[str], values: Sequence[str]) -> list[str]:
    """``print(<named vector>)``: names over values, right-justified, each followed by a gap."""
    w = max(len(s) for s in list(names) + list(values))
    per_line = max(1, WIDTH // (w + 1))
    lines = []
    for s in range(0, len(values), per_line):
        lines.append("".join(n.rjust(w) + " " for n in names[s:s + per_line]))
        lines.append("".join(v.rjust(w) + " " for v in values[s:s + per_line]))
    return lines


def print_anova(col_names: Sequence[str], row_names: Sequence[str], values: np.ndarray,
                digits: int = 5) -> list[str]:
    """R's ``print.anova`` of a numeric table (n, c): ``printCoefmat`` with its column roles.

    Columns are formatted one at a time to ``digits`` significant digits: the test statistic
    (``F``, ``Chisq``, ``Cp``, ``* value``) rounded to ``digits - 1`` decimals first, the
    columns other than ``*Df`` and the p-value passed through ``zapsmall`` first; a nonzero
    value shown as 0 is formatted again on its own; missing values (NaN, R's NA) are blank. A
    last column named ``P(...)`` / ``Pr(...)`` is a p-value (``format.pval`` with
    ``digits - 1``), followed by significance stars and their legend when one is below 0.1.
    digits : R's ``max(getOption("digits") - 2, 3)`` = 5 by default.
    """
    x = np.asarray(values, dtype=float)
    n, nc = x.shape
    names = list(col_names)
    has_p = names[-1].startswith(("P(", "Pr("))
    tst = [j for j, c in enumerate(names) if c[1:7] == " value" or c in ("F", "Cp", "Chisq")]
    other = [j for j in range(nc - has_p) if j not in tst]
    zap = [j for j in other if not names[j].endswith("Df")]
    dig_tst = max(1, min(5, digits - 1))
    missing = np.isnan(x)

    def vector(j: int, column: Sequence[float]) -> list[Any]:
        return [None if missing[i, j] else column[i] for i in range(n)]

    xm = x.copy()
    for j in zap:
        xm[:, j] = zapsmall(list(x[:, j]), digits)
    cells: list[list[str]] = [[""] * n for _ in range(nc)]
    for j in tst:
        cells[j] = format_num(vector(j, r_round(list(xm[:, j]), dig_tst)), digits)
    for j in other:
        cells[j] = format_num(vector(j, list(xm[:, j])), digits)
    shown_zero = [(j, i) for j in other for i in range(n)
                  if not missing[i, j] and (xm[i, j] == 0) != (float(cells[j][i]) == 0)]
    for (j, i), s in zip(shown_zero, format_num([xm[i, j] for j, i in shown_zero],
                                                max(1, digits - 1))):
        cells[j][i] = s
    for j in range(nc):
        cells[j] = ["" if missing[i, j] else cells[j][i] for i in range(n)]
    stars = False
    if has_p:
        ok = [i for i in range(n) if not missing[i, -1]]
        for i, s in zip(ok, format_pval([x[i, -1] for i in ok], dig_tst)):
            cells[-1][i] = s
        stars = any(x[i, -1] < 0.1 for i in ok)
        if stars:
            symbols = ["" if missing[i, -1] else signif_stars(x[i, -1]) for i in range(n)]
            cells.append([s.ljust(max(len(t) for t in symbols)) for s in symbols])
            names.append("")
    lines = print_matrix(names, list(row_names), cells, right=True)
    if stars:
        lines += ["---", "Signif. codes:  " + SIGNIF_LEGEND]
    return lines
