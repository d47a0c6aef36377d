"""The warnings of a report, each passed on once and written without Python reprs.

A report fits several models to the same rows (the model, the intercept-only model of the
ICC, the pooling table's fits) and they raise the same warnings (a singular fit). Python's own
once-per-line rule does not hold across ``catch_warnings`` blocks, so the report keeps count
itself: :class:`ReportWarnings` records each block's warnings, passes each new one on to the
caller once and hands its text to the page.
"""
from __future__ import annotations

import ast
import contextlib
import re
import warnings
from typing import Iterator

from .errors import warn_user

__all__ = ["ReportWarnings", "readable"]

_PER_COLUMN = re.compile(r"missing per column: (\{[^{}]*\})")


def readable(message: str) -> str:
    """A warning's text without Python reprs: ``missing per column: {'x': 3}`` -> ``missing
    in x: 3``. Text that does not parse is left as it is."""
    def per_column(match: re.Match) -> str:
        try:
            counts = ast.literal_eval(match.group(1))
        except (ValueError, SyntaxError):
            return match.group(0)
        if not isinstance(counts, dict):
            return match.group(0)
        return "missing in " + ", ".join(f"{column}: {n}" for column, n in counts.items())

    return _PER_COLUMN.sub(per_column, message)


class ReportWarnings:
    """The warnings raised while one page is built, each passed on to the caller once.

    Examples
    --------
    >>> caught = ReportWarnings()
    >>> with caught.catch() as notes:
    ...     result = lmer(formula, data)  # doctest: +SKIP
    >>> notes  # the texts of the warnings not seen before on this page  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.seen: set[tuple[type[Warning], str]] = set()

    @contextlib.contextmanager
    def catch(self) -> Iterator[list[str]]:
        """Record the block's warnings; yields the list that receives the new ones' texts."""
        new: list[str] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                yield new
        finally:
            # Re-raised outside the recording block, so that the caller's filters apply.
            for w in caught:
                text = readable(str(w.message))
                if (w.category, text) not in self.seen:
                    self.seen.add((w.category, text))
                    new.append(text)
                    warn_user(text, w.category)
