"""Example datasets from R, bundled with the package.

The sixteen datasets are the classic mixed-model examples of the R packages
``lme4`` (sleepstudy, Dyestuff, Dyestuff2, Penicillin, Pastes, cake, cbpp,
grouseticks, VerbAgg, InstEval, Arabidopsis) and ``nlme`` (Orthodont,
ergoStool, Machines, Oxboys, Rail), exported from R 4.2.2 with lme4 1.1.31
and nlme 3.1.162. They are stored as gzip-compressed CSV files in ``data/``.

CSV cannot record factor levels, so ``data/factor_levels.json`` keeps, for
every factor, R's level order and whether it is an ordered factor. The level
order is R's, not alphabetical: it fixes the reference level and coefficient
names of fixed-effect factors and the order of random-effect levels, so
results line up with lme4's.

Examples
--------
>>> from mixedmodels import datasets
>>> datasets.names()[:3]
['Arabidopsis', 'cake', 'cbpp']
>>> sleep = datasets.load("sleepstudy")
>>> list(sleep.Subject.cat.categories[:2])
['308', '309']
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from mixedmodels.errors import DataError
from mixedmodels.datasets.simulate import salary  # noqa: F401 - simulated teaching data

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["names", "load"]

_SUFFIX = ".csv.gz"


def _data_dir():
    # Imported here (like json and pandas below) to keep the package import
    # cheap: importlib.resources alone pulls in pathlib, zipfile and tempfile.
    from importlib import resources

    return resources.files(__name__) / "data"


@functools.lru_cache(maxsize=None)
def _names_by_key() -> dict[str, str]:
    # Map case-folded names to R's spelling, so lookups ignore capitalisation.
    found = {}
    for entry in _data_dir().iterdir():
        if entry.name.endswith(_SUFFIX):
            name = entry.name[: -len(_SUFFIX)]
            found[name.casefold()] = name
    return found


@functools.lru_cache(maxsize=None)
def _factor_levels() -> dict[str, dict[str, dict]]:
    import json

    with (_data_dir() / "factor_levels.json").open("r", encoding="utf-8") as fh:
        return json.load(fh)


def names() -> list[str]:
    """List the bundled datasets.

    Returns
    -------
    list of str
        Dataset names spelled as in R, sorted case-insensitively.
    """
    return sorted(_names_by_key().values(), key=str.casefold)


@functools.lru_cache(maxsize=None)
def _read(name: str) -> pd.DataFrame:
    import pandas as pd

    factors = _factor_levels().get(name, {})
    with (_data_dir() / f"{name}{_SUFFIX}").open("rb") as fh:
        frame = pd.read_csv(
            fh,
            compression="gzip",
            # Factor labels must stay exactly as written ("08", "1.SP").
            dtype={column: str for column in factors},
            # Only an empty field means NA; a label such as "NA" or "None" is data.
            keep_default_na=False,
            na_values=[""],
        )
    for column, spec in factors.items():
        dtype = pd.CategoricalDtype(spec["levels"], ordered=spec["ordered"])
        converted = frame[column].astype(dtype)
        # astype turns labels missing from the level list into NA silently;
        # that would mean the data and the level file disagree.
        lost = converted.isna() & frame[column].notna()
        if lost.any():
            bad = sorted(set(frame.loc[lost, column]))
            raise DataError(f"dataset {name!r}, column {column!r}: labels {bad} are not among its levels")
        frame[column] = converted
    return frame


def load(name: str) -> pd.DataFrame:
    """Load a bundled dataset as a pandas DataFrame.

    Parameters
    ----------
    name : str
        Dataset name, in any capitalisation (``"InstEval"``, ``"instEval"``
        and ``"insteval"`` are the same dataset). See :func:`names`.

    Returns
    -------
    pandas.DataFrame
        A new frame on every call, so it may be modified freely. Columns are
        in the order of the R data frame. Factors are ``pandas.Categorical``
        with R's levels (as strings) in R's order, ordered where R's factor
        is ordered; other columns are int64 or float64.

    Raises
    ------
    DataError
        If ``name`` is not one of the bundled datasets.
    """
    key = name.casefold() if isinstance(name, str) else None
    canonical = _names_by_key().get(key)
    if canonical is None:
        raise DataError(f"unknown dataset {name!r}; available datasets: {', '.join(names())}")
    # The cached frame is shared, so hand out a deep copy.
    return _read(canonical).copy(deep=True)
