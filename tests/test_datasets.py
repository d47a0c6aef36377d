"""Tests of the bundled datasets (mixedmodels.datasets).

The expectations are read from the packaged files with the standard library
(gzip, csv, json), independently of the pandas code under test.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import re
from importlib import resources

import pandas as pd
import pytest

from mixedmodels import datasets
from mixedmodels.errors import DataError

DATA = resources.files("mixedmodels.datasets") / "data"
NAMES = [
    "Arabidopsis", "cake", "cbpp", "Dyestuff", "Dyestuff2", "ergoStool",
    "grouseticks", "InstEval", "Machines", "Orthodont", "Oxboys", "Pastes",
    "Penicillin", "Rail", "sleepstudy", "VerbAgg",
]
FACTOR_LEVELS = json.loads((DATA / "factor_levels.json").read_text(encoding="utf-8"))
INTEGER = re.compile(r"-?\d+")


def raw_csv(name: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a packaged CSV, as text."""
    text = gzip.decompress((DATA / f"{name}.csv.gz").read_bytes()).decode("utf-8")
    header, *rows = csv.reader(io.StringIO(text))
    return header, rows


@pytest.fixture(scope="module", params=NAMES)
def dataset(request):
    name = request.param
    header, rows = raw_csv(name)
    return name, datasets.load(name), header, rows


def test_names():
    assert datasets.names() == NAMES


def test_every_dataset_has_levels_and_data_file():
    assert sorted(FACTOR_LEVELS, key=str.casefold) == NAMES
    for name in NAMES:
        assert (DATA / f"{name}.csv.gz").is_file()


def test_shape_and_column_order(dataset):
    name, frame, header, rows = dataset
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == header
    assert frame.shape == (len(rows), len(header))


def test_factors_match_level_file(dataset):
    name, frame, header, rows = dataset
    for column, spec in FACTOR_LEVELS[name].items():
        values = frame[column]
        assert isinstance(values.dtype, pd.CategoricalDtype), column
        assert list(values.cat.categories) == spec["levels"], column
        assert values.cat.ordered is spec["ordered"], column
        # Labels come back exactly as written in the CSV, none lost to NA.
        position = header.index(column)
        assert list(values.astype(str)) == [row[position] for row in rows], column


def test_other_columns_are_numeric(dataset):
    name, frame, header, rows = dataset
    for position, column in enumerate(header):
        if column in FACTOR_LEVELS[name]:
            continue
        text = [row[position] for row in rows]
        integral = all(INTEGER.fullmatch(value) for value in text)
        assert frame[column].dtype == ("int64" if integral else "float64"), column
        # Parsed exactly: the nearest double to the written decimal.
        expected = [int(value) if integral else float(value) for value in text]
        assert frame[column].tolist() == expected, column


def test_sleepstudy():
    frame = datasets.load("sleepstudy")
    assert len(frame) == 180
    assert list(frame["Subject"].cat.categories[:2]) == ["308", "309"]
    assert frame["Reaction"].iloc[0] == 249.56


def test_insteval():
    frame = datasets.load("InstEval")
    assert len(frame) == 73421
    assert list(frame["dept"].cat.categories[:3]) == ["15", "5", "10"]
    assert frame["studage"].cat.ordered
    assert not frame["dept"].cat.ordered


def test_orthodont_sex_levels_are_not_alphabetical():
    frame = datasets.load("Orthodont")
    assert list(frame["Sex"].cat.categories) == ["Male", "Female"]


def test_labels_keep_their_text():
    frame = datasets.load("Arabidopsis")
    assert "1.SP" in frame["popu"].cat.categories


@pytest.mark.parametrize("spelling", ["instEval", "insteval", "INSTEVAL", "InstEval"])
def test_load_ignores_case(spelling):
    frame = datasets.load(spelling)
    assert len(frame) == 73421


def test_load_dyestuff_lower_case():
    assert datasets.load("dyestuff").equals(datasets.load("Dyestuff"))


@pytest.mark.parametrize("bad", ["nosuchdata", "", "sleep study", None])
def test_unknown_name_raises(bad):
    with pytest.raises(DataError) as caught:
        datasets.load(bad)
    message = str(caught.value)
    assert "sleepstudy" in message and "InstEval" in message


def test_returned_frame_is_a_fresh_copy():
    first = datasets.load("Dyestuff")
    first.loc[0, "Yield"] = -1
    first["Batch"] = first["Batch"].cat.rename_categories(list("uvwxyz"))
    first["extra"] = 1
    second = datasets.load("Dyestuff")
    assert second.loc[0, "Yield"] == 1545
    assert list(second["Batch"].cat.categories) == list("ABCDEF")
    assert "extra" not in second.columns
    assert second is not first
