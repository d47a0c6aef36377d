"""The lmer report uses one sample and passes each warning on once, cleanly.

The data: Dyestuff2 (whose random-intercept fit is singular, as in lme4) with a covariate that
is missing in 3 of the 30 rows. The fit keeps 27 rows; every table and figure of the page must
be computed on those 27 rows, and the dropped rows and the singular fit must each be reported
once, although the page fits the model, the ICC's intercept-only model and the pooling table's
models, which all raise them.
"""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels import plots
from mixedmodels.report import write_report
from mixedmodels.report_warnings import readable
from mixedmodels.teaching import tables

FORMULA = "Yield ~ x + (1 | Batch)"
MISSING = [2, 7, 11]

MAKE_DATA = f"""
import numpy as np, mixedmodels as mm
data = mm.datasets.load("Dyestuff2")
data["x"] = np.random.default_rng(1).normal(size=len(data)).round(2)
data.loc[{MISSING}, "x"] = np.nan
"""


def dyestuff2_with_gaps() -> pd.DataFrame:
    space: dict = {}
    exec(MAKE_DATA, space)
    return space["data"]


@pytest.fixture(scope="module")
def kept() -> pd.Index:
    with pytest.warns(mm.DroppedRowsWarning, match=r"^3 row\(s\) dropped"), \
            pytest.warns(mm.SingularFitWarning):
        return mm.lmer(FORMULA, dyestuff2_with_gaps()).rows.row_index


def _spy(monkeypatch, module, name: str, seen: dict, position: int = 0,
         keyword: str = "data") -> None:
    """Record the data frame that ``module.name`` is called with, then call it."""
    original = getattr(module, name)

    def spy(*args, **kwargs):
        frame = kwargs.get(keyword, args[position] if len(args) > position else None)
        seen[name] = frame
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)


def test_every_table_and_figure_uses_the_fits_rows(tmp_path, monkeypatch, kept):
    seen: dict = {}
    for name in ("describe", "icc", "pooling"):
        _spy(monkeypatch, tables, name, seen)
    _spy(monkeypatch, plots, "group_data", seen)
    _spy(monkeypatch, plots, "model_lines", seen, position=99)
    with pytest.warns(mm.DroppedRowsWarning, match=r"^3 row\(s\) dropped"), \
            pytest.warns(mm.SingularFitWarning):
        path = write_report(FORMULA, dyestuff2_with_gaps(), tmp_path / "r.html",
                            progress=False)
    assert len(kept) == 27 and not set(MISSING) & set(kept)
    assert set(seen) == {"describe", "icc", "pooling", "group_data", "model_lines"}
    for name, frame in seen.items():
        assert list(frame.index) == list(kept), name
    page = path.read_text(encoding="utf-8")
    assert "27 observations" in page and "30 observations" not in page
    assert "3 of the 30 rows have a missing value" in page


def test_each_warning_once_on_the_page_and_to_the_caller(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = write_report(FORMULA, dyestuff2_with_gaps(), tmp_path / "r.html",
                            progress=False)
    raised = [(w.category.__name__, str(w.message)) for w in caught]
    assert len(raised) == len(set(raised)), raised
    assert sorted(c for c, _ in raised) == ["DroppedRowsWarning", "SingularFitWarning"]
    dropped = next(m for c, m in raised if c == "DroppedRowsWarning")
    assert dropped == "3 row(s) dropped because of missing values (missing in x: 3)"
    page = path.read_text(encoding="utf-8")
    # one note, as the GLMM report gives it; the summary itself (as HTML and as text) says it
    # too, as lme4's summary does
    assert page.count("Warning while fitting: boundary (singular) fit") == 1
    assert page.count("boundary (singular) fit: see is_singular") == 3
    assert page.count("Warning while") == 2
    assert page.count("dropped because of missing values") == 1
    assert "{" not in dropped and "Traceback" not in page and "&#x27;x&#x27;" not in page


def test_a_session_sees_each_warning_once_without_tracebacks(tmp_path):
    """As a user runs it: Python's default warning filter, warnings printed on stderr."""
    out = tmp_path / "r.html"
    code = MAKE_DATA + (f"from mixedmodels.report import write_report\n"
                        f"write_report({FORMULA!r}, data, {str(out)!r}, progress=False)\n")
    run = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True,
                         text=True, check=True)
    lines = [line for line in run.stderr.splitlines() if "Warning:" in line]
    assert len(lines) == 2, run.stderr
    assert sum("SingularFitWarning" in line for line in lines) == 1
    assert sum("DroppedRowsWarning" in line for line in lines) == 1
    assert "Traceback" not in run.stderr and "{" not in run.stderr
    assert out.exists()


def test_a_duplicated_index_still_gives_one_sample(tmp_path, monkeypatch):
    seen: dict = {}
    _spy(monkeypatch, tables, "describe", seen)
    data = dyestuff2_with_gaps()
    data.index = np.zeros(len(data), dtype=int)
    with pytest.warns(mm.DroppedRowsWarning, match=r"^3 row\(s\) dropped"), \
            pytest.warns(mm.SingularFitWarning):
        write_report(FORMULA, data, tmp_path / "r.html", progress=False)
    assert len(seen["describe"]) == 27 and seen["describe"]["x"].notna().all()


def test_readable_warning_text():
    assert readable("3 row(s) dropped (missing per column: {'x': 2, 'age': 1})") == \
        "3 row(s) dropped (missing in x: 2, age: 1)"
    assert readable("3 row(s) dropped (missing per column: {oops})") == \
        "3 row(s) dropped (missing per column: {oops})"
    assert readable("boundary (singular) fit") == "boundary (singular) fit"
