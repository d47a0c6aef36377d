"""Tests of the bundled datasets (mixedmodels.datasets).

The expectations are read from the packaged files with the standard library
(gzip, csv, json), independently of the pandas code under test. The salary
data are checked against the lecture's printed numbers, written out here.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import re
from importlib import resources

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels import datasets
from mixedmodels.datasets import make_salary
from mixedmodels.errors import DataError

DATA = resources.files("mixedmodels.datasets") / "data"
NAMES = [
    "Arabidopsis", "BodyWeight", "cake", "cbpp", "Dyestuff", "Dyestuff2", "ergoStool",
    "grouseticks", "InstEval", "Machines", "Orthodont", "Ovary", "Oxboys", "Pastes",
    "Penicillin", "Rail", "salary", "sleepstudy", "VerbAgg",
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


# ---- registry: descriptions, units, catalog --------------------------------------------------

def test_every_dataset_has_a_one_line_description():
    for name in NAMES:
        text = datasets.description(name)
        assert text and "\n" not in text and len(text) <= 100, name
        assert text.endswith(("(lme4)", "(nlme)", "(SIMULATED)")), name
    assert datasets.description("SLEEPSTUDY") == datasets.description("sleepstudy")
    with pytest.raises(DataError, match="nosuchdata"):
        datasets.description("nosuchdata")


def test_catalog_lists_sizes_and_descriptions():
    table = datasets.catalog()
    assert list(table.index) == NAMES
    assert list(table.columns) == ["rows", "columns", "description"]
    for name in NAMES:
        header, rows = raw_csv(name)
        assert (table.at[name, "rows"], table.at[name, "columns"]) == (len(rows), len(header))
        assert table.at[name, "description"] == datasets.description(name)


def test_units_name_columns_and_travel_with_the_frame():
    for name in NAMES:
        header, _ = raw_csv(name)
        found = datasets.units(name)
        assert set(found) <= set(header), name
        assert datasets.load(name).attrs["units"] == found, name
    assert datasets.units("sleepstudy") == {"Reaction": "ms", "Days": "days"}
    assert datasets.units("Rail") == {}
    datasets.units("salary")["salary"] = "changed"
    assert datasets.units("salary")["salary"] == "currency units"


# ---- salary: the lecture's data ------------------------------------------------------------

ORGANISATIONS = [f"Organisation{i}" for i in range(1, 21)]
# The lecture's Table 1, in its order: organisation, N, mean salary.
TABLE1 = [
    ("Organisation1", 82, 62_119), ("Organisation10", 6, 63_762),
    ("Organisation11", 117, 64_465), ("Organisation12", 137, 71_003),
    ("Organisation13", 59, 74_520), ("Organisation14", 23, 53_446),
    ("Organisation15", 26, 33_954), ("Organisation16", 37, 36_620),
    ("Organisation17", 61, 45_203), ("Organisation18", 114, 63_344),
]


def within(value, target, tolerance):
    return abs(value / target - 1) <= tolerance


@pytest.fixture(scope="module")
def salary():
    return datasets.load("salary")


def test_salary_columns_and_organisation_levels(salary):
    assert list(salary.columns) == ["organisation", "employee", "service", "salary"]
    assert list(salary["organisation"].cat.categories) == ORGANISATIONS
    assert not salary["organisation"].cat.ordered
    assert set(salary["organisation"]) == set(ORGANISATIONS)
    assert salary["employee"].is_unique
    # Years of service: non-negative, one decimal, a plausible working life.
    assert salary["service"].between(0, 45).all()
    np.testing.assert_allclose(salary["service"], salary["service"].round(1))
    assert salary["salary"].dtype == "int64" and salary["salary"].min() > 10_000
    assert datasets.units("salary") == {"service": "years", "salary": "currency units"}


def test_salary_table1_sizes_and_means(salary):
    groups = salary.groupby("organisation", observed=True)["salary"]
    sizes, means = groups.size(), groups.mean()
    for organisation, size, mean in TABLE1:
        assert sizes[organisation] == size, organisation
        assert within(means[organisation], mean, 0.02), organisation


def test_salary_random_slope_model(salary):
    m = mm.lmer("salary ~ 1 + service + (1 + service | organisation)", salary)
    vc = m.varcorr()
    sd = vc.loc[vc["var2"].isna(), "sdcor"].to_numpy()
    correlation = vc.loc[vc["var2"].notna(), "sdcor"].item()
    for value, target in [(m.fixef["(Intercept)"], 55_643), (m.fixef["service"], 1_693),
                          (sd[0], 16_629), (sd[1], 763), (correlation, -0.59),
                          (m.sigma, 3_556)]:
        assert within(value, target, 0.02), (value, target)


def test_salary_random_intercept_model(salary):
    m = mm.lmer("salary ~ 1 + service + (1 | organisation)", salary)
    sd = m.varcorr()["sdcor"].to_numpy()
    for value, target in [(m.fixef["(Intercept)"], 55_874), (m.fixef["service"], 1_631),
                          (sd[0], 14_896), (sd[1], 4_276)]:
        assert within(value, target, 0.10), (value, target)


def test_salary_intercept_only_model_and_icc(salary):
    m = mm.lmer("salary ~ 1 + (1 | organisation)", salary)
    between, residual = m.varcorr()["vcov"].to_numpy()
    assert within(between, 219_641_629, 0.10)
    assert within(residual, 40_343_767, 0.10)
    assert within(between / (between + residual), 0.845, 0.10)
    assert within(mm.icc(salary, "salary", "organisation").icc, 0.845, 0.10)


def test_salary_csv_is_regenerated_bit_for_bit(tmp_path):
    packaged = (DATA / "salary.csv.gz").read_bytes()
    assert make_salary.csv_text(make_salary.make()) == gzip.decompress(packaged).decode("utf-8")
    written = make_salary.write(tmp_path / "salary.csv.gz")
    assert written.read_bytes() == packaged


def test_salary_simulator_still_makes_other_samples():
    other = datasets.salary(seed=3)
    assert other["organisation"].nunique() == 20
    assert not other.equals(datasets.load("salary"))
