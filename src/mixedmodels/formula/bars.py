"""Split an lme4 mixed-model formula into response, fixed part and random-effects terms.

lme4 writes random effects as ``(lhs | group)`` terms added to an ordinary R model
formula.  This module finds those "bar" terms, expands the ``||`` and ``/`` shorthands
the way lme4's ``findbars``, ``expandDoubleVerts`` and ``expandSlash`` do, and returns
the remaining fixed part as text for formulaic.  It is a small hand-written scanner, not
an R parser: it only tracks quoting, parenthesis depth and the ``+``/``-`` that join terms.

A bar may be wrapped in a covariance structure with glmmTMB's (and lme4 2.0's) names:
``us(x | g)`` (the same as ``(x | g)``), ``diag(x | g)``, ``cs(0 + f | g)``, ``ar1(0 + f | g)``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from mixedmodels.covariance import STRUCTURES
from mixedmodels.errors import FormulaError

__all__ = ["Bar", "MixedFormula", "parse_formula"]

# Characters that open a span whose contents are not syntax: strings, back-quoted
# names and %op% operators (so `%+%` or a name like `a|b` is never taken for a term joint).
_QUOTES = "\"'`%"
_NAME = r"(?:`[^`]+`|(?:[^\W\d_]|\.(?!\d))[\w.]*)"
_GROUP = re.compile(rf"\s*{_NAME}\s*(?:[:/]\s*{_NAME}\s*)*")
_GROUP_TOKEN = re.compile(rf"{_NAME}|[:/]")
# A '+'/'-' right after "1e" belongs to a number literal such as 1e-5, not to a term joint.
_EXPONENT = re.compile(r"(?:^|[^\w.])(?:\d+\.?\d*|\.\d+)[eE]$")
_SPACE = re.compile(r"\s+")
# glmmTMB's covariance structures that are not (yet) ours: named as unknown structures.
OTHER_STRUCTURES = ("ou", "exp", "gau", "mat", "toep", "rr", "homdiag", "hetar1", "homcs",
                    "propto", "equalto")
# A call's name right before its '(' (the structure of ``diag(x | g)``).
_CALL_NAME = re.compile(r"(?:[^\W\d_]|\.(?!\d))[\w.]*")


@dataclass(frozen=True)
class Bar:
    """One random-effects term ``(lhs | group)``, after ``||`` and ``/`` expansion.

    Attributes
    ----------
    lhs : str
        Model of the left of the bar, whitespace-normalised (``"1"``, ``"0 + Days"``).
    group : tuple of str
        Names of the grouping variables whose interaction defines the groups.
    correlated : bool
        False when the term came from a ``||`` term.
    position : int
        0-based offset in the formula text of the ``(`` that opens the term (of the structure's
        name for ``diag(x | g)``).
    structure : str
        Covariance structure: ``"us"`` (lme4's ``(x | g)``), ``"diag"``, ``"cs"`` or ``"ar1"``.
    """

    lhs: str
    group: tuple[str, ...]
    correlated: bool
    position: int
    structure: str = "us"

    @property
    def group_name(self) -> str:
        """The grouping factor's name as lme4 prints it, e.g. ``"cask:batch"``."""
        return ":".join(self.group)


@dataclass(frozen=True)
class MixedFormula:
    """A mixed-model formula split into its parts.

    Attributes
    ----------
    text : str
        The formula as given.
    response : str
        Text left of ``~``, stripped.
    fixed : str
        Right side with every bar term removed, terms joined by ``" + "``/``" - "``;
        ``"1"`` when only bar terms were written.
    bars : tuple of Bar
        The random-effects terms, in formula order.
    """

    text: str
    response: str
    fixed: str
    bars: tuple[Bar, ...]


class _Scanner:
    """Paren depths and term boundaries of one formula text, with errors that point into it."""

    def __init__(self, text: str):
        self.text = text
        self.masked = self._mask()
        self.depth, self.partner = self._match_parens()

    def error(self, message: str, position: int) -> FormulaError:
        return FormulaError(message, formula=self.text, position=position)

    def _mask(self) -> str:
        """Copy of the text with quoted contents blanked, so they never count as syntax."""
        chars = list(self.text)
        i = 0
        while i < len(chars):
            quote = chars[i]
            if quote in _QUOTES:
                j = i + 1
                while j < len(chars) and chars[j] != quote:
                    j += 2 if chars[j] == "\\" and quote in "\"'" else 1
                if j >= len(chars):
                    raise self.error(f"unterminated {quote} quote", i)
                # '_' is neither whitespace nor an operator, so masked spans read as one name.
                chars[i + 1 : j] = "_" * (j - i - 1)
                i = j
            i += 1
        return "".join(chars)

    def _match_parens(self) -> tuple[list[int], dict[int, int]]:
        """Depth of every character (parens count as outside themselves) and '(' -> ')' map."""
        depth, partner, stack = [0] * len(self.masked), {}, []
        for i, c in enumerate(self.masked):
            if c == ")":
                if not stack:
                    raise self.error("unmatched ')'", i)
                partner[stack.pop()] = i
            depth[i] = len(stack)
            if c == "(":
                stack.append(i)
        if stack:
            raise self.error("unmatched '('", stack[-1])
        return depth, partner

    def strip(self, start: int, end: int) -> tuple[int, int]:
        while start < end and self.text[start].isspace():
            start += 1
        while end > start and self.text[end - 1].isspace():
            end -= 1
        return start, end

    def squash(self, start: int, end: int) -> str:
        """Text of a span with whitespace runs outside quotes collapsed to one space."""
        # Masked spans hold no whitespace, so every run found in the mask is unquoted.
        pieces, pos = [], start
        for m in _SPACE.finditer(self.masked, start, end):
            pieces += [self.text[pos : m.start()], " "]
            pos = m.end()
        pieces.append(self.text[pos:end])
        return "".join(pieces).strip()

    def terms(self, start: int, end: int, level: int) -> list[tuple[str, int, int]]:
        """Split ``text[start:end]`` on the ``+``/``-`` at paren depth `level`.

        Returns ``(sign, start, end)`` spans of the stripped terms.  A leading ``+`` or
        ``-`` is unary; any other empty term is an error pointing at the operator before it.
        """
        ops = [
            i
            for i in range(start, end)
            if self.masked[i] in "+-"
            and self.depth[i] == level
            and not _EXPONENT.search(self.masked[start:i])
        ]
        found, sign, begin, last_op = [], "+", start, None
        for cut in ops + [end]:
            s, e = self.strip(begin, cut)
            if s < e:
                found.append((sign, s, e))
                sign = "+"
            elif cut == end or (self.masked[cut] == "+" and last_op is not None):
                if last_op is not None:
                    raise self.error(f"empty term after '{self.masked[last_op]}'", last_op)
            if cut < end:
                if self.masked[cut] == "-":
                    sign = "-" if sign == "+" else "+"
                last_op = cut
            begin = cut + 1
        return found

    def join(self, terms: list[tuple[str, int, int]]) -> str:
        parts = []
        for k, (sign, s, e) in enumerate(terms):
            text = self.squash(s, e)
            if k == 0:
                parts.append("-" + text if sign == "-" else text)
            else:
                parts.append(f"{sign} {text}")
        return " ".join(parts)

    def bar_paren(self, start: int, end: int) -> tuple[int, str, int] | None:
        """(position of the '(' whose contents are the bar, structure, position of the term)
        for the bar term that spans start:end, or None if it has no bar."""
        pipes = [i for i in range(start, end) if self.masked[i] == "|"]
        if not pipes:
            return None
        term = self.squash(start, end)
        outside = [i for i in pipes if self.depth[i] == 0]
        if outside:
            raise self.error(
                f"'|' outside parentheses in term '{term}'; write random effects as (lhs | group)",
                outside[0],
            )
        # Redundant parentheses around a bar term, ((1|g)), are harmless in lme4: look through them.
        a, b = start, end - 1
        while self.masked[a] == "(" and self.partner[a] == b:
            if any(self.depth[i] == self.depth[a] + 1 for i in pipes):
                return a, "us", a
            a, b = self.strip(a + 1, b)
            b -= 1
        structured = self.structure_call(a, b + 1, pipes, term)
        if structured is not None:
            return structured
        raise self.error(
            f"'|' inside a function call or expression in term '{term}'; random-effects terms "
            "must be written (lhs | group), or with a covariance structure "
            f"({', '.join(f'{k}(lhs | group)' for k in STRUCTURES)}), and joined to the rest "
            "with '+'",
            pipes[0],
        )

    def structure_call(self, start: int, end: int, pipes: list[int], term: str
                       ) -> tuple[int, str, int] | None:
        """``name(lhs | g)`` spanning start:end: (its '(', name, start) for a known structure;
        an error for another of glmmTMB's structures; None otherwise (an expression)."""
        name = _CALL_NAME.match(self.masked, start, end)
        if name is None or name.end() >= end or self.masked[name.end()] != "(":
            return None
        opening = name.end()
        if self.partner[opening] != end - 1:
            return None
        if not any(self.depth[i] == self.depth[opening] + 1 for i in pipes):
            return None
        kind = name.group(0)
        if kind in OTHER_STRUCTURES:
            raise self.error(f"unknown covariance structure '{kind}' in term '{term}'; known "
                             f"structures: {', '.join(STRUCTURES)}", start)
        # Any other call (I(a | b), log(1 | g)) is an expression, not a structure.
        return (opening, kind, start) if kind in STRUCTURES else None

    def bars(self, opening: int, structure: str = "us", position: int | None = None
             ) -> list[Bar]:
        """The expanded bars of the term whose '(' is at `opening` (the structure's '(' for
        ``diag(x | g)``, whose name starts at `position`)."""
        position = opening if position is None else position
        close, level = self.partner[opening], self.depth[opening] + 1
        term = self.squash(opening, close + 1)
        ops, i = [], opening + 1
        while i < close:
            if self.masked[i] != "|":
                i += 1
                continue
            if self.depth[i] != level:
                raise self.error(f"'|' nested inside another term in '{term}'", i)
            width = 2 if self.masked[i + 1] == "|" else 1
            ops.append((i, width))
            i += width
        if len(ops) > 1:
            raise self.error(f"more than one '|' in random-effects term '{term}'", ops[1][0])
        op, width = ops[0]
        if width == 2 and structure != "us":
            raise self.error(f"'||' inside {structure}(): write {structure}(lhs | group); "
                             "the structure sets the correlations", op)
        bar = "|" * width
        ls, le = self.strip(opening + 1, op)
        rs, re_ = self.strip(op + width, close)
        if ls == le:
            raise self.error(f"nothing left of '{bar}' in random-effects term '{term}'", op)
        if rs == re_:
            raise self.error(f"no grouping factor right of '{bar}' in '{term}'", op)
        groups = self.groups(rs, re_, term)
        lhs_terms = self.terms(ls, le, level)
        if width == 1:
            models = [self.join(lhs_terms)]
        else:
            models = self.uncorrelated(lhs_terms, term, op)
        # Expand '||' first and the slash second, as lme4 does, which fixes the order.
        return [Bar(m, g, width == 1, position, structure) for m in models for g in groups]

    def groups(self, start: int, end: int, term: str) -> list[tuple[str, ...]]:
        """Grouping factors of a bar's right side: ``a/b`` gives ``(a,)`` and ``(b, a)``."""
        text = self.text[start:end]
        if not _GROUP.fullmatch(text):
            raise self.error(
                f"grouping factor '{self.squash(start, end)}' in '{term}' is not a variable name "
                "or a ':'/'/' combination of names",
                start,
            )
        levels, current = [], []
        for token in _GROUP_TOKEN.findall(text):
            if token == "/":
                levels.append(tuple(current))
                current = []
            elif token != ":":
                current.append(token[1:-1] if token.startswith("`") else token)
        levels.append(tuple(current))
        # lme4 names a nested factor innermost first: batch/cask -> "cask:batch".
        return [tuple(n for lv in reversed(levels[: k + 1]) for n in lv) for k in range(len(levels))]

    def uncorrelated(self, terms: list[tuple[str, int, int]], term: str, op: int) -> list[str]:
        """Left sides of the bars a ``||`` term stands for: an intercept, then one per term."""
        intercept, labels = True, []
        for sign, s, e in terms:
            text = self.squash(s, e)
            if (sign, text) in (("+", "0"), ("-", "1")):
                intercept = False
            elif (sign, text) == ("+", "1"):
                continue
            elif sign == "-":
                raise self.error(f"cannot expand '||' with the subtracted term '-{text}' in '{term}'", s)
            else:
                labels.append(text)
        models = (["1"] if intercept else []) + [f"0 + {t}" for t in labels]
        if not models:
            raise self.error(f"random-effects term '{term}' has no terms", op)
        return models


def parse_formula(text: str) -> MixedFormula:
    """Split an lme4 formula such as ``"Reaction ~ Days + (Days | Subject)"``.

    Parameters
    ----------
    text : str
        An R mixed-model formula with a response.

    Returns
    -------
    MixedFormula
        Response, fixed part and the expanded random-effects terms.

    Raises
    ------
    FormulaError
        ``text`` is not a string. Else with the 0-based position of the problem: a missing
        or repeated ``~`` (position 0 or the second ``~``), an empty response or right side
        (the ``~``), unbalanced parentheses or quotes, a ``|`` outside a parenthesised term
        or nested in another expression (that ``|``), an empty side of a bar (the bar), a
        grouping side that is not a name or a ``:``/``/`` combination of names (its start),
        an empty term, one of glmmTMB's covariance structures that is not ours,
        ``toep(lhs | g)`` (the name), or ``||`` inside a structure (the ``||``).
    """
    if not isinstance(text, str):
        shown = repr(text) if len(repr(text)) <= 60 else f"{repr(text)[:57]}..."
        raise FormulaError(f"the formula must be a string such as 'y ~ x + (1 | g)', not "
                           f"{type(text).__name__} ({shown})")
    scanner = _Scanner(text)
    tildes = [i for i, c in enumerate(scanner.masked) if c == "~" and scanner.depth[i] == 0]
    if not tildes:
        raise scanner.error("formula has no '~' between response and terms", 0)
    if len(tildes) > 1:
        raise scanner.error("formula has more than one '~'", tildes[1])
    tilde = tildes[0]
    response = text[:tilde].strip()
    if not response:
        raise scanner.error("formula has no response left of '~'", tilde)
    terms = scanner.terms(tilde + 1, len(text), 0)
    if not terms:
        raise scanner.error("formula has no terms right of '~'", tilde)
    fixed, bars = [], []
    for sign, s, e in terms:
        found = scanner.bar_paren(s, e)
        if found is None:
            fixed.append((sign, s, e))
            continue
        opening, structure, position = found
        if sign == "-":
            raise scanner.error(
                f"random-effects term '{scanner.squash(s, e)}' cannot be subtracted", position
            )
        bars.extend(scanner.bars(opening, structure, position))
    return MixedFormula(text, response, scanner.join(fixed) or "1", tuple(bars))
