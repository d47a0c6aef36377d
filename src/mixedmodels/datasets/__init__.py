"""Example datasets, bundled with the package.

Eighteen datasets are the classic mixed-model examples of the R packages
``lme4`` (sleepstudy, Dyestuff, Dyestuff2, Penicillin, Pastes, cake, cbpp,
grouseticks, VerbAgg, InstEval, Arabidopsis) and ``nlme`` (Orthodont,
ergoStool, Machines, Oxboys, Rail, Ovary, BodyWeight), exported from R 4.2.2
with lme4 1.1.31 and nlme 3.1.162. The nineteenth, ``salary``, is the lecture's simulated
salary data, made once by :mod:`mixedmodels.datasets.make_salary` (its fits
give the lecture's printed numbers; :func:`salary` simulates other samples).
All are stored as gzip-compressed CSV files in ``data/``; :func:`catalog`
lists them with a one-line description and their size.

CSV cannot record factor levels, so ``data/factor_levels.json`` keeps, for
every factor, R's level order and whether it is an ordered factor. The level
order is R's, not alphabetical: it fixes the reference level and coefficient
names of fixed-effect factors and the order of random-effect levels, so
results line up with lme4's.

Examples
--------
>>> from mixedmodels import datasets
>>> datasets.names()[:3]
['Arabidopsis', 'BodyWeight', 'cake']
>>> sleep = datasets.load("sleepstudy")
>>> list(sleep.Subject.cat.categories[:2])
['308', '309']
>>> datasets.description("salary")[:36]
'Salaries by years of service in 20 o'
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from mixedmodels.errors import DataError
from mixedmodels.datasets.simulate import salary

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["names", "load", "description", "units", "catalog", "salary"]

_SUFFIX = ".csv.gz"

# The registry: one line per dataset, in the words of ``mixedmodels datasets``. Every data
# file must have an entry here (the tests check both directions).
_DESCRIPTIONS = {
    "Arabidopsis": "Fruit counts of Arabidopsis plants of 9 populations under nutrient "
                   "and clipping treatments (lme4)",
    "BodyWeight": "Body weights of 16 rats on 3 diets, weighed 11 times over 64 days "
                  "(nlme)",
    "cake": "Breaking angle of chocolate cakes: 3 recipes baked at 6 temperatures, "
            "15 replicates (lme4)",
    "cbpp": "New cases of contagious bovine pleuropneumonia in 15 zebu herds over "
            "4 periods (lme4)",
    "Dyestuff": "Yield of dyestuff from 6 batches of an intermediate product, "
                "5 preparations each (lme4)",
    "Dyestuff2": "Simulated yields in the Dyestuff layout, with no variation between "
                 "batches (lme4)",
    "ergoStool": "Effort needed to rise from 4 types of stool, each tried by 9 subjects "
                 "(nlme)",
    "grouseticks": "Ticks on red grouse chicks by brood, location, altitude and year (lme4)",
    "InstEval": "Lecture evaluations: ratings 1-5 of 1,128 lecturers by 2,972 students "
                "(lme4)",
    "Machines": "Productivity scores of 6 workers on 3 machine types, 3 repeats each (nlme)",
    "Orthodont": "Orthodontic distance of 27 children measured at ages 8, 10, 12 and 14 "
                 "(nlme)",
    "Ovary": "Ovarian follicles larger than 10 mm counted in 11 mares over their oestrus "
             "cycles (nlme)",
    "Oxboys": "Heights of 26 boys from Oxford on 9 occasions, age centred and scaled (nlme)",
    "Pastes": "Strength of a chemical paste: 10 delivery batches, 3 casks each, 2 tests "
              "per cask (lme4)",
    "Penicillin": "Penicillin potency: growth-inhibition diameters of 6 samples on "
                  "24 plates (lme4)",
    "Rail": "Ultrasonic travel times along 6 railway rails, 3 measurements each (nlme)",
    "salary": "Salaries by years of service in 20 organisations: the lecture's data "
              "(SIMULATED)",
    "sleepstudy": "Reaction times of 18 sleep-deprived subjects over 10 days (lme4)",
    "VerbAgg": "Verbal aggression questionnaire: responses of 316 people to 24 items (lme4)",
}

# Units of the columns that have one, for axis labels. ``load`` puts them in
# ``frame.attrs["units"]``, where the plots look for them.
_UNITS = {
    "Dyestuff": {"Yield": "grams of standard colour"},
    "BodyWeight": {"weight": "g", "Time": "days"},
    "Orthodont": {"distance": "mm", "age": "years"},
    "Oxboys": {"height": "cm"},
    "Penicillin": {"diameter": "mm"},
    "salary": {"service": "years", "salary": "currency units"},
    "sleepstudy": {"Reaction": "ms", "Days": "days"},
}


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


def _canonical(name: str) -> str:
    key = name.casefold() if isinstance(name, str) else None
    canonical = _names_by_key().get(key)
    if canonical is None:
        raise DataError(f"unknown dataset {name!r}; available datasets: {', '.join(names())}")
    return canonical


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
        is ordered; other columns are int64 or float64. ``frame.attrs["units"]``
        maps columns to their units (see :func:`units`).

    Raises
    ------
    DataError
        If ``name`` is not one of the bundled datasets.
    """
    canonical = _canonical(name)
    # The cached frame is shared, so hand out a deep copy.
    frame = _read(canonical).copy(deep=True)
    frame.attrs["units"] = units(canonical)
    return frame


def description(name: str) -> str:
    """One line saying what a bundled dataset holds.

    Parameters
    ----------
    name : str
        Dataset name, in any capitalisation.

    Returns
    -------
    str
        The description ``mixedmodels datasets`` prints; it ends with the R package the data
        come from, or with "(SIMULATED)".

    Raises
    ------
    DataError
        If ``name`` is not one of the bundled datasets.
    """
    return _DESCRIPTIONS[_canonical(name)]


def units(name: str) -> dict[str, str]:
    """Units of a bundled dataset's columns, where known.

    Parameters
    ----------
    name : str
        Dataset name, in any capitalisation.

    Returns
    -------
    dict of str to str
        Column name to unit, e.g. ``{"Reaction": "ms", "Days": "days"}``; columns without a
        unit (counts, factors, scores) are left out. A new dict on every call.

    Raises
    ------
    DataError
        If ``name`` is not one of the bundled datasets.
    """
    return dict(_UNITS.get(_canonical(name), {}))


def catalog() -> pd.DataFrame:
    """All bundled datasets with their size and description.

    Returns
    -------
    pandas.DataFrame
        One row per dataset in the order of :func:`names`, indexed by name, with columns
        ``rows``, ``columns`` (int64) and ``description``.
    """
    import pandas as pd

    all_names = names()
    shapes = [_read(name).shape for name in all_names]
    return pd.DataFrame({
        "rows": [rows for rows, _ in shapes],
        "columns": [columns for _, columns in shapes],
        "description": [_DESCRIPTIONS[name] for name in all_names],
    }, index=pd.Index(all_names, name="name"))
