"""Exceptions raised for bad input, and how the package raises its warnings.

Every message names what is wrong: the column, the term, or the position in the formula.
Every warning goes through ``warn_user``, so that it points at the line of the user's code
that led to it.
"""
from __future__ import annotations

import os
import sys
import warnings


class MixedModelsError(ValueError):
    """Base class of the errors this package raises for bad input."""


class FormulaError(MixedModelsError):
    """A formula that cannot be parsed or does not fit the data.

    ``position`` is the 0-based character offset in the formula text, when known.
    """

    def __init__(self, message: str, formula: str | None = None, position: int | None = None):
        self.formula = formula
        self.position = position
        if formula is not None and position is not None:
            message = f"{message}\n  {formula}\n  {' ' * position}^ (position {position + 1})"
        super().__init__(message)


class DataError(MixedModelsError):
    """Data that cannot be used as given (unknown column, wrong type, non-finite values...)."""


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
# Python's own modules between two of ours (functools.cached_property, contextlib, a thread
# pool) are not the user's code either.
_STDLIB_DIR = os.path.dirname(os.path.abspath(os.__file__)) + os.sep


def _internal(frame) -> bool:
    filename = os.path.abspath(frame.f_code.co_filename)
    return (filename.startswith(_PACKAGE_DIR)
            or (filename.startswith(_STDLIB_DIR) and "site-packages" not in filename))


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning raised here point at the caller's own line.

    Counts the frames from the function that calls this one up to the first frame whose code
    lives neither in the ``mixedmodels`` package nor in Python's standard library (decorators,
    cached properties and internal helpers in between are skipped), so that no fixed
    ``stacklevel`` can go stale when the call chain changes. With no such frame (the package's
    own command line), the outermost frame is used.
    """
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and _internal(frame):
        frame = frame.f_back
        level += 1
    return level


def warn_user(message: str | Warning, category: type[Warning]) -> None:
    """``warnings.warn`` pointing at the first line outside ``mixedmodels`` (the user's)."""
    warnings.warn(message, category, stacklevel=user_stacklevel())


class RowsNeededError(MixedModelsError):
    """An output that needs the rows in client memory, asked of a fit from a source."""
