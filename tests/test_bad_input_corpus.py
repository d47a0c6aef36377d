"""A corpus of bad or odd inputs to lmer, glmer, glmer_nb, predict and the command line.

Each case is a call, the error it must raise, and a regular expression that the message must
match: the column, term, argument or position that is wrong. Cases already covered by
test_lmer_input.py, test_glm_response.py and test_glmer_input.py are not repeated here.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.errors import DataError, FormulaError, MixedModelsError
from mixedmodels.families import FamilyError

SLEEP = "Reaction ~ Days + (Days | Subject)"
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
COUNTS = "y ~ x + (1 | g)"


def _counts() -> pd.DataFrame:
    """Poisson counts in 12 groups of 15, rows labelled r0..r179."""
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(12), 15)
    x = rng.normal(size=g.size)
    y = rng.poisson(np.exp(0.5 + 0.4 * x + rng.normal(scale=0.5, size=12)[g]))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g], "w": 1.0},
                        index=[f"r{i}" for i in range(g.size)])


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    return {"s": mm.datasets.load("sleepstudy"), "c": mm.datasets.load("cbpp"), "k": _counts()}


@pytest.fixture(scope="module")
def fitted(data) -> dict[str, Any]:
    return {"lmer": mm.lmer(SLEEP, data["s"]),
            "glmer": mm.glmer(COUNTS, data["k"], family="poisson")}


@dataclass(frozen=True)
class Case:
    id: str
    call: Callable[[dict], Any]
    error: type
    names: str


def at(frame: pd.DataFrame, row: Any, column: str, value: Any) -> pd.DataFrame:
    """A copy of ``frame`` with one value changed (the column made float for Inf and NaN, and
    object for a list or dict)."""
    out = frame.copy()
    if isinstance(value, float) and pd.api.types.is_integer_dtype(out[column].dtype):
        out[column] = out[column].astype(float)
    if pd.api.types.is_scalar(value):
        out.loc[row, column] = value
    else:
        out[column] = out[column].astype(object)
        out.at[row, column] = value
    return out


def lmer(formula: str, **kwargs) -> Callable[[dict], Any]:
    return lambda d: mm.lmer(formula, d["s"], **kwargs)


def lmer_on(formula: str, make: Callable[[pd.DataFrame], Any], **kwargs) -> Callable[[dict], Any]:
    return lambda d: mm.lmer(formula, make(d["s"]), **kwargs)


def glmer(formula: str, make: Callable[[dict], Any] = lambda d: d["k"], **kwargs):
    kwargs.setdefault("family", "poisson")
    return lambda d: mm.glmer(formula, make(d), **kwargs)


def binomial(formula: str = CBPP, make: Callable[[pd.DataFrame], Any] = lambda c: c, **kwargs):
    return lambda d: mm.glmer(formula, make(d["c"]), **kwargs)


FORMULA_CASES = [
    # not a formula at all
    Case("formula-int", lmer(3), FormulaError, r"string.*not int \(3\)"),
    Case("formula-none", lmer(None), FormulaError, r"not NoneType"),
    Case("formula-list", lmer([SLEEP]), FormulaError, r"not list"),
    Case("formula-bytes", lmer(SLEEP.encode()), FormulaError, r"not bytes"),
    Case("glmer-formula-float", glmer(1.5), FormulaError, r"not float \(1\.5\)"),
    Case("formula-empty", lmer(""), FormulaError, r"no '~'"),
    Case("formula-no-tilde", lmer("Reaction Days + (1 | Subject)"), FormulaError, r"no '~'"),
    Case("formula-no-response", lmer("~ Days + (1 | Subject)"), FormulaError, r"no response"),
    Case("formula-no-terms", lmer("Reaction ~ "), FormulaError, r"no terms right of '~'"),
    Case("formula-two-tildes", lmer("Reaction ~ Days ~ (1 | Subject)"), FormulaError,
         r"more than one '~'"),
    Case("formula-trailing-plus", lmer("Reaction ~ Days + (1 | Subject) +"), FormulaError,
         r"empty term after '\+'"),
    Case("formula-double-plus", lmer("Reaction ~ Days + + (1 | Subject)"), FormulaError,
         r"empty term after '\+'"),
    Case("formula-open-paren", lmer("Reaction ~ Days + (1 | Subject"), FormulaError,
         r"(?s)unmatched '\('.*position 19"),
    Case("formula-close-paren", lmer("Reaction ~ Days + 1 | Subject)"), FormulaError,
         r"unmatched '\)'"),
    Case("formula-unterminated-backquote", lmer("Reaction ~ `Days + (1 | Subject)"),
         FormulaError, r"unterminated ` quote"),
    Case("formula-brackets", lmer("Reaction ~ Days[1] + (1 | Subject)"), FormulaError,
         r"'\[' is not allowed"),
    Case("formula-in-operator", lmer("Reaction ~ Days %in% Subject + (1 | Subject)"),
         FormulaError, r"%in%"),
    Case("formula-comparison-rhs", lmer("Reaction ~ Days > 3 + (1 | Subject)"), FormulaError,
         r"'>' in 'Days > 3'"),
    Case("formula-unknown-function", lmer("Reaction ~ foo(Days) + (1 | Subject)"), DataError,
         r"unknown function 'foo'"),
    Case("formula-unknown-function-in-bar", lmer("Reaction ~ Days + (bar(Days) | Subject)"),
         DataError, r"unknown function 'bar'"),
    Case("formula-subtracted-offset", lmer("Reaction ~ Days - offset(Days) + (1 | Subject)"),
         FormulaError, r"offset\(\) term cannot be subtracted"),
    Case("formula-cbind-on-rhs", glmer("y ~ cbind(x, x) + (1 | g)"), FormulaError,
         r"cbind\(\) in 'cbind\(x, x\)'.*whole response"),
    Case("formula-cbind-in-bar", binomial(CBPP.replace("(1 | herd)", "(cbind(size, size) | herd)")),
         FormulaError, r"cbind\(\) in 'cbind\(size, size\)'"),
    Case("formula-cbind-inside-log", binomial("log(cbind(incidence, size)) ~ period + (1|herd)"),
         FormulaError, r"cbind\(\) in 'log\(cbind\(incidence, size\)\)'"),
    # malformed random-effects terms
    Case("bar-empty-left", lmer("Reaction ~ Days + ( | Subject)"), FormulaError,
         r"nothing left of '\|'"),
    Case("bar-two-pipes", lmer("Reaction ~ Days + (1 | Subject | Days)"), FormulaError,
         r"more than one '\|'.*\(1 \| Subject \| Days\)"),
    Case("bar-function-group", lmer("Reaction ~ Days + (1 | log(Subject))"), FormulaError,
         r"grouping factor 'log\(Subject\)'"),
    Case("bar-sum-group", lmer("Reaction ~ Days + (1 | Subject + Days)"), FormulaError,
         r"grouping factor 'Subject \+ Days'"),
    Case("bar-subtracted", lmer("Reaction ~ Days - (1 | Subject)"), FormulaError,
         r"'\(1 \| Subject\)' cannot be subtracted"),
    Case("bar-inside-call", lmer("Reaction ~ Days + log(1 | Subject)"), FormulaError,
         r"inside a function call.*log\(1 \| Subject\)"),
    Case("bar-nested-bar", lmer("Reaction ~ Days + ((1 | Subject) | Days)"), FormulaError,
         r"nested inside another term"),
    Case("bar-double-no-terms", lmer("Reaction ~ Days + (0 || Subject)"), FormulaError,
         r"'\(0 \|\| Subject\)' has no terms"),
    Case("bar-double-subtracted", lmer("Reaction ~ Days + (-Days || Subject)"), FormulaError,
         r"subtracted term '-Days'"),
    Case("bar-no-columns", lmer("Reaction ~ Days + (0 | Subject)"), FormulaError,
         r"\(0 \| Subject\) has no columns"),
    Case("glmer-bar-no-group", glmer("y ~ x + (x | )"), FormulaError, r"no grouping factor"),
]

COLUMN_CASES = [
    # an unknown column in each part of the formula
    Case("unknown-in-response-call", lmer("log(Reactio) ~ Days + (1 | Subject)"), DataError,
         r"'Reactio'.*did you mean 'Reaction'"),
    Case("unknown-in-I", lmer("Reaction ~ I(Dayz^2) + (1 | Subject)"), DataError,
         r"'Dayz'.*I\(Dayz\^2\)"),
    Case("unknown-in-bar-lhs", lmer("Reaction ~ Days + (Dayz | Subject)"), DataError,
         r"'Dayz'"),
    Case("unknown-in-offset", lmer("Reaction ~ Days + offset(Dayz) + (1 | Subject)"), DataError,
         r"'Dayz'"),
    Case("unknown-nested-group", lmer("Reaction ~ Days + (1 | Subject/Batch)"), FormulaError,
         r"grouping variable 'Batch'"),
    Case("unknown-interaction-group", lmer("Reaction ~ Days + (1 | Subject:Batch)"),
         FormulaError, r"grouping variable 'Batch'"),
    Case("unknown-backquoted", lmer("Reaction ~ `Days x` + (1 | Subject)"), DataError,
         r"'Days x'"),
    Case("unknown-lists-columns", lmer("Reaction ~ zzz + (1 | Subject)"), DataError,
         r"'zzz'.*columns Reaction, Days, Subject"),
    Case("unknown-response-alone", lmer("speed ~ Days + (1 | Subject)"), DataError,
         r"unknown column 'speed'; "),
    Case("glmer-unknown-fixed", glmer("y ~ xx + (1 | g)"), DataError, r"'xx'.*did you mean 'x'"),
    Case("glmer-unknown-group", glmer("y ~ x + (1 | gg)"), FormulaError,
         r"grouping variable 'gg'"),
    Case("glmer-unknown-offset", glmer("y ~ x + offset(log(exposure)) + (1 | g)"), DataError,
         r"'exposure'"),
    Case("glmer-unknown-cbind", binomial("cbind(incidence, sizes - incidence) ~ 1 + (1 | herd)"),
         DataError, r"'sizes'"),
    Case("glmer-unknown-weights", glmer(COUNTS, weights="ww"), DataError, r"'ww'"),
    Case("glmer-nb-unknown-response", lambda d: mm.glmer_nb("yy ~ x + (1 | g)", d["k"]),
         DataError, r"'yy'"),
    # columns of the wrong kind
    Case("text-in-arithmetic", lmer("Reaction ~ I(Subject * 2) + (1 | Subject)"), DataError,
         r"'Subject' is not numeric.*I\(Subject \* 2\)"),
    Case("text-in-bar-call", lmer("Reaction ~ Days + (log(Subject) | Subject)"), FormulaError,
         r"\(log\(Subject\) \| Subject\).*'Subject' is not numeric"),
    Case("dates-as-predictor", lmer_on("Reaction ~ t + (1 | Subject)",
                                       lambda s: s.assign(t=pd.Timestamp("2024-01-01"))),
         DataError, r"'t' holds dates"),
    Case("glmer-text-in-offset", glmer("y ~ x + offset(g) + (1 | g)"), DataError,
         r"'g' is not numeric"),
    Case("glmer-text-cbind-argument", binomial("cbind(incidence, herd) ~ 1 + (1 | herd)"),
         DataError, r"cbind\(\) argument 'herd'"),
    Case("glmer-poisson-text-response", glmer("g ~ x + (1 | g)"), DataError,
         r"response 'g'.*poisson"),
    Case("one-level-after-dropping", lmer_on("Reaction ~ Days + (1 | h)", lambda s: s.assign(
        h=np.where(s.index < 90, "a", "b"), Reaction=s["Reaction"].where(s.index < 90))),
         DataError, r"'h'.*only 1 level"),
    Case("glmer-one-level-group", glmer("y ~ x + (1 | one)", lambda d: d["k"].assign(one="a")),
         DataError, r"'one'.*only 1 level"),
]

DATA_CASES = [
    # not a data frame, or a frame a formula cannot name columns of
    Case("data-none", lambda d: mm.lmer(SLEEP, None), DataError, r"data must be a data frame.*"
         r"NoneType"),
    Case("data-dict", lambda d: mm.lmer(SLEEP, {"Reaction": [1.0]}), DataError, r"not dict"),
    Case("data-ndarray", lambda d: mm.lmer(SLEEP, d["s"].to_numpy()), DataError, r"not ndarray"),
    Case("data-series", lambda d: mm.lmer(SLEEP, d["s"]["Days"]), DataError, r"not Series"),
    # a text is a path of Parquet or CSV files for DuckDB (issue #12): other files are named
    Case("data-file-name", lambda d: mm.lmer(SLEEP, "sleep.xlsx"), DataError,
         r"'sleep\.xlsx' is not a Parquet or CSV file.*read_csv"),
    Case("glmer-data-list", lambda d: mm.glmer(CBPP, [1, 2]), DataError, r"not list"),
    Case("data-integer-labels", lambda d: mm.lmer("`0` ~ `1` + (1 | `2`)", d["s"].set_axis(
        [0, 1, 2], axis=1)), DataError, r"column 1 of data is labelled 0 \(int\)"),
    Case("data-tuple-label", lambda d: mm.lmer(SLEEP, d["s"].assign(**{"x": 1}).set_axis(
        ["Reaction", "Days", "Subject", ("a", "b")], axis=1)), DataError,
         r"column 4 of data is labelled \('a', 'b'\)"),
    Case("data-duplicated-used", lambda d: mm.lmer(SLEEP, pd.concat([d["s"], d["s"]["Days"]],
                                                                   axis=1)),
         DataError, r"'Days' appears 2 times in data \(columns 2, 4\)"),
    Case("glmer-data-duplicated", lambda d: mm.glmer(COUNTS, pd.concat(
        [d["k"], d["k"][["g"]]], axis=1), family="poisson"), DataError, r"'g' appears 2 times"),
    Case("data-list-in-cell", lmer_on(SLEEP, lambda s: at(s, 4, "Days", [1, 2])), DataError,
         r"column 'Days' holds a list at data row 4"),
    Case("glmer-dict-in-cell", glmer(COUNTS, lambda d: at(d["k"], "r2", "g", {"a": 1})),
         DataError, r"column 'g' holds a dict at data row 'r2'"),
    Case("data-no-rows", lambda d: mm.lmer(SLEEP, d["s"].iloc[:0]), DataError,
         r"data have no rows"),
    Case("data-no-columns", lambda d: mm.lmer(SLEEP, pd.DataFrame(index=range(3))), DataError,
         r"'Reaction'; the data have no columns"),
    # Inf and NaN in each kind of column
    Case("inf-response", lmer_on(SLEEP, lambda s: at(s, 5, "Reaction", np.inf)), DataError,
         r"response 'Reaction'.*\(Inf\).*\[5\]"),
    Case("minus-inf-response", lmer_on(SLEEP, lambda s: at(s, 6, "Reaction", -np.inf)),
         DataError, r"response 'Reaction'.*\(-Inf\).*\[6\]"),
    Case("inf-bar-only-column", lmer_on("Reaction ~ Days + (0 + z | Subject)",
                                        lambda s: at(s.assign(z=1.0), 8, "z", np.inf)),
         DataError, r"term \(0 \+ z \| Subject\) column 'z'.*\[8\]"),
    Case("inf-offset", lmer_on("Reaction ~ Days + offset(o) + (1 | Subject)",
                               lambda s: at(s.assign(o=0.0), 9, "o", np.inf)), DataError,
         r"offset\(o\).*\(Inf\).*\[9\]"),
    Case("inf-interaction", lmer_on("Reaction ~ Days:z + (1 | Subject)",
                                    lambda s: at(s.assign(z=1.0), 10, "z", np.inf)), DataError,
         r"fixed-effects column 'Days:z'.*\[10\]"),
    Case("division-by-zero", lmer_on("Reaction ~ I(1/z) + (1 | Subject)",
                                     lambda s: at(s.assign(z=1.0), 12, "z", 0.0)), DataError,
         r"column 'I\(1/z\)'.*\(Inf\).*\[12\]"),
    Case("log-zero-predictor", lmer_on("Reaction ~ log(z) + (1 | Subject)",
                                       lambda s: at(s.assign(z=1.0), 13, "z", 0.0)), DataError,
         r"column 'log\(z\)'.*-Inf.*\[13\].*R's lmer refuses"),
    Case("scale-of-constant", lmer_on("Reaction ~ scale(z) + (1 | Subject)",
                                      lambda s: s.assign(z=1.0)), DataError,
         r"column 'scale\(z\)'.*\(NaN\)"),
    Case("inf-weights-column", lmer_on(SLEEP, lambda s: at(s.assign(w=1.0), 14, "w", np.inf),
                                       weights="w"), DataError,
         r"weights column 'w'.*\(Inf\).*\[14\]"),
    Case("glmer-inf-predictor", glmer(COUNTS, lambda d: at(d["k"], "r3", "x", np.inf)),
         DataError, r"fixed-effects column 'x'.*'r3'"),
    Case("glmer-inf-response", glmer(COUNTS, lambda d: at(d["k"], "r4", "y", np.inf)),
         DataError, r"response 'y'.*'r4'"),
    Case("glmer-inf-cbind", binomial(make=lambda c: at(c, 2, "size", np.inf)), DataError,
         r"cbind\(\) argument 'size - incidence'.*\[2\]"),
    Case("glmer-log-zero-offset", glmer("y ~ x + offset(log(e)) + (1 | g)",
                                        lambda d: at(d["k"].assign(e=1.0), "r5", "e", 0.0)),
         DataError, r"offset\(log\(e\)\).*-Inf.*'r5'"),
    Case("glmer-inf-bar-slope", glmer("y ~ 1 + (x | g)", lambda d: at(d["k"], "r6", "x", -np.inf)),
         DataError, r"term \(x \| g\) column 'x'.*-Inf.*'r6'"),
]

ARGUMENT_CASES = [
    # weights
    Case("weights-array-negative", lambda d: mm.lmer(SLEEP, d["s"], weights=np.where(
        d["s"].index == 4, -1.0, 1.0)), DataError, r"negative weights.*data row 4"),
    Case("weights-array-zero", lambda d: mm.lmer(SLEEP, d["s"], weights=np.where(
        d["s"].index == 5, 0.0, 1.0)), DataError, r"zero weights.*data row 5"),
    Case("weights-text-column", lmer_on(SLEEP, lambda s: s.assign(w="a"), weights="w"),
         DataError, r"weights column 'w' is not numeric"),
    Case("weights-bool-array", lambda d: mm.lmer(SLEEP, d["s"], weights=np.ones(180, bool)),
         DataError, r"weights must be numbers, not logical"),
    Case("weights-text-list", lambda d: mm.lmer(SLEEP, d["s"], weights=["1"] * 180), DataError,
         r"weights must be numbers"),
    Case("weights-ragged-list", lambda d: mm.lmer(SLEEP, d["s"], weights=[1.0] * 179 + [[1.0]]),
         DataError, r"weights must be numbers"),
    Case("weights-dict", lambda d: mm.lmer(SLEEP, d["s"], weights={"w": 1}), DataError,
         r"weights must be a column name.*not dict"),
    Case("weights-number", lambda d: mm.lmer(SLEEP, d["s"], weights=2.0), DataError,
         r"weights must be a column name.*not float"),
    Case("weights-short", lambda d: mm.lmer(SLEEP, d["s"], weights=np.ones(10)), DataError,
         r"weights has 10 values but the data have 180 rows"),
    Case("weights-2d", lambda d: mm.lmer(SLEEP, d["s"], weights=np.ones((180, 2))), DataError,
         r"one-dimensional.*\(180, 2\)"),
    Case("weights-series-foreign-labels", lambda d: mm.glmer(
        COUNTS, d["k"], family="poisson", weights=pd.Series(1.0, index=range(180))), DataError,
         r"no value for data rows \['r0'"),
    Case("weights-series-repeated-labels", lambda d: mm.lmer(SLEEP, d["s"], weights=pd.Series(
        1.0, index=[0] * 180)), DataError, r"repeated row labels"),
    Case("glmer-weights-negative-column", glmer(COUNTS, lambda d: at(d["k"], "r7", "w", -2.0),
                                                weights="w"), DataError,
         r"negative weights.*column 'w'.*'r7'"),
    Case("glmer-weights-short", glmer(COUNTS, weights=np.ones(5)), DataError,
         r"weights has 5 values.*180 rows"),
    Case("glmer-nb-negative-weights", lambda d: mm.glmer_nb(COUNTS, d["k"], weights=np.where(
        np.arange(180) == 9, -1.0, 1.0)), DataError, r"negative weights.*'r9'"),
    Case("glmer-nb-text-weights", lambda d: mm.glmer_nb(COUNTS, d["k"], weights="g"), DataError,
         r"weights column 'g' is not numeric"),
    # family, link, nAGQ
    Case("family-none", binomial(family=None), FamilyError, r"unknown family None.*binomial"),
    Case("family-number", binomial(family=3), FamilyError, r"unknown family 3"),
    Case("family-capitalised", binomial(family="Binomial"), FamilyError,
         r"unknown family 'Binomial'.*'binomial'"),
    Case("link-number", binomial(link=3), FamilyError, r"link 3.*binomial.*'logit'"),
    Case("link-gamma", lambda d: mm.glmer("Reaction ~ Days + (1 | Subject)", d["s"],
                                          family="Gamma", link="logit"), FamilyError,
         r"link 'logit'.*Gamma.*'inverse'"),
    Case("nagq-text", binomial(nagq="5"), MixedModelsError, r"nagq.*'5'"),
    Case("nagq-none", binomial(nagq=None), MixedModelsError, r"nagq.*None"),
    Case("nagq-negative-count", glmer(COUNTS, nagq=-2), MixedModelsError, r"nagq.*-2"),
]

PREDICT_CASES = [
    Case("predict-empty", lambda d: d["fit"]["lmer"].predict(d["s"].iloc[:0]), DataError,
         r"newdata has no rows"),
    Case("predict-glmer-empty", lambda d: d["fit"]["glmer"].predict(d["k"].iloc[:0]), DataError,
         r"newdata has no rows"),
    Case("predict-missing-column", lambda d: d["fit"]["lmer"].predict(d["s"].drop(
        columns="Days")), DataError, r"newdata has no column 'Days'"),
    Case("predict-missing-group", lambda d: d["fit"]["lmer"].predict(d["s"].drop(
        columns="Subject")), DataError, r"no column 'Subject'"),
    Case("predict-text-in-number", lambda d: d["fit"]["lmer"].predict(d["s"].assign(Days="x")),
         DataError, r"'Days' is not numeric"),
    Case("predict-not-a-frame", lambda d: d["fit"]["lmer"].predict([1, 2]), DataError,
         r"newdata must be a data frame.*list"),
    Case("predict-integer-labels", lambda d: d["fit"]["lmer"].predict(d["s"].set_axis(
        [0, 1, 2], axis=1)), DataError, r"column 1 of newdata is labelled 0"),
    Case("predict-duplicated", lambda d: d["fit"]["lmer"].predict(pd.concat(
        [d["s"], d["s"][["Days"]]], axis=1)), DataError, r"'Days' appears 2 times in newdata"),
]

CASES = FORMULA_CASES + COLUMN_CASES + DATA_CASES + ARGUMENT_CASES + PREDICT_CASES


def test_the_corpus_is_large_and_ids_are_unique():
    assert len(CASES) + len(CLI_CASES) >= 80
    ids = [c.id for c in CASES] + [c[0] for c in CLI_CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_error_names_the_culprit(case, data, fitted):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(case.error, match=case.names):
            case.call({**data, "fit": fitted})
    # the only warning before an error is the count of rows dropped for missing values
    stray = [f"{w.category.__name__}: {w.message}" for w in caught
             if not issubclass(w.category, mm.DroppedRowsWarning)]
    assert stray == []


# ---- the command line: each bad --data is a message and exit status 2 -----------------------
CLI_CASES = [
    ("cli-xlsx", "sleep.xlsx", None, r"unsupported file type '\.xlsx'.*save the sheet as CSV"),
    ("cli-rds", "sleep.rds", None, r"unsupported file type '\.rds'.*write\.csv"),
    ("cli-json", "sleep.json", b"{}", r"unsupported file type '\.json'"),
    ("cli-missing-file", "nothere.csv", None, r"data file not found: .*nothere\.csv"),
    ("cli-directory", "folder", "dir", r"is a directory"),
    ("cli-unknown-dataset", "sleepstudie", None, r"sleepstudie.*no such file.*sleepstudy"),
    ("cli-binary-csv", "bad.csv", b"\x00\xff\xfe\xfa", r"cannot read .*bad\.csv as CSV"),
    ("cli-empty-csv", "empty.csv", b"", r"cannot read .*empty\.csv as CSV"),
    ("cli-missing-parquet", "nothere.parquet", None, r"data file not found"),
]


@pytest.mark.parametrize("name, source, content, message", CLI_CASES,
                         ids=[c[0] for c in CLI_CASES])
def test_cli_data_errors(tmp_path, capsys, monkeypatch, name, source, content, message):
    from mixedmodels.cli import main

    monkeypatch.chdir(tmp_path)
    if content == "dir":
        (tmp_path / source).mkdir()
    elif content is not None:
        (tmp_path / source).write_bytes(content)
    assert main(["fit", SLEEP, "--data", source]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert re.search(message, err), err


def test_cli_reads_tsv_and_compressed_csv(tmp_path, capsys, data):
    from mixedmodels.cli import main

    data["s"].to_csv(tmp_path / "sleep.tsv", sep="\t", index=False)
    data["s"].to_csv(tmp_path / "sleep.csv.gz", index=False)
    for name in ("sleep.tsv", "sleep.csv.gz"):
        assert main(["fit", SLEEP, "--data", str(tmp_path / name)]) == 0
        assert "Linear mixed model" in capsys.readouterr().out
