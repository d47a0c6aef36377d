"""The glmer example scripts (examples/crossed_accuracy.py, examples/count_overdispersion.py),
run end to end through their ``main()``, with checks on the numbers they print.

The count example's numbers are lme4 1.1-31's on the same data (glmer and glmer.nb on
grouseticks, run once by hand): AIC, Pearson dispersion and the likelihood-ratio statistic.
"""
from __future__ import annotations

import contextlib
import io
import math
import re
import runpy
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
NUMBER = r"-?\d+\.\d+"


def load_example(name: str) -> dict:
    """The script's globals, without running it as ``__main__``."""
    return runpy.run_path(str(EXAMPLES_DIR / f"{name}.py"), run_name=f"example_{name}")


def run_example(name: str, folder: Path, *argv: str) -> tuple[Path, str]:
    """Run the example's main() with its plot going to ``folder``; (plot path, stdout)."""
    main = load_example(name)["main"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        path = main(["--out-dir", str(folder), *argv])
    return path, out.getvalue()


def table_rows(text: str, heading: str, header: bool = True) -> dict[str, list[str]]:
    """The cells of the table printed under ``heading`` (up to the next blank line), by row
    label: the label ends at the first run of two or more spaces. ``header``: the table has a
    line of column names (a Series has none)."""
    lines = text.split(heading, 1)[1].split("\n\n", 1)[0].splitlines()
    block = [line for line in lines[1 + header:] if line.strip()]
    # a list of remarks ("- ...") may follow a table without a blank line
    block = block[:next((i for i, line in enumerate(block) if line.startswith("- ")),
                        len(block))]
    rows = (re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in block)
    return {label: rest.split() for label, rest in rows}


def assert_png(path: Path, folder: Path, stdout: str) -> None:
    assert path.parent == folder and list(folder.glob("*.png")) == [path]
    assert path.stat().st_size > 5000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot saved to {path}" in stdout


@pytest.fixture(scope="module")
def accuracy(tmp_path_factory):
    # The full-size design (1200 answers, ~3 s): the quick one is too small for the checks of
    # recovery below.
    folder = tmp_path_factory.mktemp("accuracy")
    path, stdout = run_example("crossed_accuracy", folder)
    return folder, path, stdout


@pytest.fixture(scope="module")
def counts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("counts")
    path, stdout = run_example("count_overdispersion", folder)
    return folder, path, stdout


def test_accuracy_prints_glmer_summary_and_saves_plot(accuracy):
    folder, path, stdout = accuracy
    assert_png(path, folder, stdout)
    assert path.name == "crossed_accuracy.png"
    assert stdout.startswith("Generalized linear mixed model fit by maximum likelihood (Laplace")
    assert " Family: binomial  ( logit )" in stdout
    assert "Number of obs: 1200, groups:  participant, 40; item, 30" in stdout
    assert "boundary (singular) fit" not in stdout


def test_accuracy_odds_ratios_are_exponentiated_wald_intervals(accuracy):
    stdout = accuracy[2]
    line = next(s for s in stdout.splitlines() if s.startswith("conditiondegraded "))
    est, se = (float(x) for x in line.split()[1:3])
    odds = table_rows(stdout, "Fixed effects as odds ratios")["conditiondegraded"]
    ratio, low, high = (float(x) for x in odds)
    # degraded pictures lower the odds of a correct answer, and clearly so
    assert est < 0 and low < ratio < high < 1
    # the summary rounds est and se to 4 digits: agreement to about 1e-3 is all there is
    assert ratio == pytest.approx(math.exp(est), abs=1e-3)
    assert low == pytest.approx(math.exp(est - 1.96 * se), abs=2e-3)
    assert high == pytest.approx(math.exp(est + 1.96 * se), abs=2e-3)


def test_accuracy_icc_predictions_and_recovery(accuracy):
    stdout = accuracy[2]
    icc = {k: float(v[0])
           for k, v in table_rows(stdout, "Latent-scale ICCs", header=False).items()}
    assert set(icc) == {"participant", "item"}
    assert all(0.02 < v < 0.5 for v in icc.values()) and sum(icc.values()) < 1
    accuracy_rows = table_rows(stdout, "Accuracy per condition:")
    typical = {k: float(v[0]) for k, v in accuracy_rows.items()}
    observed = {k: float(v[1]) for k, v in accuracy_rows.items()}
    assert typical["clear"] > typical["degraded"] > 0.5
    # averaging over people and items pulls the observed means towards 50 %
    assert observed["clear"] < typical["clear"] and observed["degraded"] < typical["degraded"]
    intercept = float(next(s for s in stdout.splitlines()
                           if s.startswith("(Intercept) ")).split()[1])
    assert typical["clear"] == pytest.approx(1 / (1 + math.exp(-intercept)), abs=1e-3)
    recovery = table_rows(stdout, "Recovery of the simulated values:")
    assert recovery["degraded"][0] == "-1.000" and recovery["degraded"][2] == "yes"
    assert "simulated values lie inside their 95% intervals: yes." in stdout
    assert "within 50% of its simulated value: yes" in stdout
    assert "In plain words:" in stdout


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_accuracy_quick_run_with_another_seed(tmp_path):
    path, stdout = run_example("crossed_accuracy", tmp_path, "--quick", "--seed", "7")
    assert_png(path, tmp_path, stdout)
    assert "Number of obs: 480, groups:  participant, 24; item, 20" in stdout
    # these 480 answers put the participant correlation on the boundary: the script says so
    assert "boundary (singular) fit" in stdout and "This fit is singular" in stdout
    assert "In plain words:" in stdout


def test_accuracy_simulation_is_balanced_and_seeded():
    ns = load_example("crossed_accuracy")
    data = ns["simulate"](6, 4, 3)
    assert len(data) == 24 and set(data["correct"].unique()) <= {0, 1}
    per_item = data.groupby("item", observed=True)["condition"].nunique()
    assert (per_item == 1).all()  # each picture always in one condition
    assert (data.groupby("condition", observed=True).size() == 12).all()
    assert data.equals(ns["simulate"](6, 4, 3))


def test_counts_compares_three_models_as_lme4(counts):
    folder, path, stdout = counts
    assert_png(path, folder, stdout)
    assert path.name == "count_overdispersion.png"
    assert " Family: poisson  ( log )" in stdout
    assert "groups:  INDEX, 403; BROOD, 118; LOCATION, 63" in stdout
    rows = table_rows(stdout, "Model comparison")
    assert list(rows) == ["Poisson", "Poisson + (1|INDEX)", "negative binomial"]
    table = {k: [float(x) for x in v] for k, v in rows.items()}  # df AIC BIC logLik dev disp
    lme4 = {"Poisson": (6, 1987.88, 1.74), "Poisson + (1|INDEX)": (7, 1794.54, 0.41),
            "negative binomial": (7, 1791.68, 0.73)}
    for name, (df, aic, dispersion) in lme4.items():
        assert table[name][0] == df
        assert table[name][1] == pytest.approx(aic, abs=0.011)
        assert table[name][5] == pytest.approx(dispersion, abs=0.006)
    # the observation-level term lowers the AIC (and the BIC) on grouseticks
    assert table["Poisson + (1|INDEX)"][1] < table["Poisson"][1] - 150
    assert table["Poisson + (1|INDEX)"][2] < table["Poisson"][2]
    match = re.search(rf"Chisq = ({NUMBER}), Df = 1, Pr\(>Chisq\) = (\S+)", stdout)
    assert match and float(match.group(1)) == pytest.approx(195.33, abs=0.01)
    assert float(match.group(2)) < 1e-40


def test_counts_zeros_and_plain_words(counts):
    stdout = counts[2]
    zeros = re.search(r"Chicks without ticks: observed (\d+), Poisson (\d+), "
                      r"Poisson \+ \(1\|INDEX\) (\d+), negative binomial (\d+)", stdout)
    assert zeros
    observed, poisson, olre, nb = (int(x) for x in zeros.groups())
    assert observed == 126 and poisson < olre < nb < observed
    assert "In plain words:" in stdout
    assert "theta = 3.30" in stdout
