"""Exceptions raised for bad input.

Every message names what is wrong: the column, the term, or the position in the formula.
"""
from __future__ import annotations


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
