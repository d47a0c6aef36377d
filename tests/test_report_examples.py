"""The HTML report, the lecture demo, their CLI subcommands, and the example scripts, end to end."""
from __future__ import annotations

import html
import re
import runpy
import sys
from pathlib import Path

import pytest

import mixedmodels as mm
from mixedmodels.cli import main
from mixedmodels.report import prediction_equation, write_report

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = ["repeated_measures", "pre_post_intervention", "crossed_trials", "pupils_in_schools",
            "growth_model", "experience_sampling"]
SLEEP = "Reaction ~ Days + (Days | Subject)"
IMG = '<img src="data:image/png;base64,'
# every src= / href= value, quoted or not
LINK = re.compile(r"""\b(?:src|href)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)


def links(page: str) -> list[str]:
    return ["".join(m.groups(default="")) for m in LINK.finditer(page)]


@pytest.fixture(scope="module")
def sleep_report(tmp_path_factory):
    """One report on sleepstudy for the tests that only read it (it takes a few seconds)."""
    folder = tmp_path_factory.mktemp("report")
    path = write_report(SLEEP, mm.datasets.load("sleepstudy"), folder / "sleep.html",
                        data_name="sleepstudy", progress=False)
    return folder, path, path.read_text(encoding="utf-8")


def test_report_is_one_html_file(sleep_report):
    folder, path, page = sleep_report
    assert list(folder.iterdir()) == [path]
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_report_holds_summary_icc_coef_and_pooling(sleep_report):
    page = sleep_report[2]
    summary = mm.lmer(SLEEP, mm.datasets.load("sleepstudy")).summary()
    summary.data_name = "sleepstudy"
    assert html.escape(str(summary)) in page
    icc = mm.icc(mm.datasets.load("sleepstudy"), "Reaction", "Subject")
    assert f"{icc.icc:.4f}" in page
    for section in ("data", "icc", "summary", "coef", "pooling", "group_data", "model_lines",
                    "caterpillar", "shrinkage", "residuals"):
        assert f'<section id="{section}">' in page
    assert "no_pooling:Days" in page
    assert "Reaction = 251.4 + 10.47 x Days (average Subject)" in page


def test_report_figures_are_embedded_and_nothing_is_external(sleep_report):
    page = sleep_report[2]
    assert page.count(IMG) >= 4
    found = links(page)
    assert found, "the table of contents links to the sections"
    # only in-page anchors and inline PNGs (whose base64 text is not checked for letters)
    assert all(u.startswith(("#", "data:image/png;base64,")) for u in found)
    assert not [u for u in found if not u.startswith("data:") and "http" in u.lower()]
    assert "<script" not in page and "<link" not in page and "url(" not in page
    # a short plain-language explanation opens each section
    assert page.count('<p class="explain">') == page.count("<section ")


def test_report_escapes_text_and_reports_progress(tmp_path, capsys):
    data = mm.datasets.load("sleepstudy")
    path = write_report("Reaction ~ 1 + (1 | Subject)", data, tmp_path / "sub" / "r.html",
                        data_name="<b>sleep & study</b>", progress=True)
    page = path.read_text(encoding="utf-8")
    assert "&lt;b&gt;sleep &amp; study&lt;/b&gt;" in page and "<b>sleep &" not in page
    # no numeric predictor: the figures against x are left out, the others stay
    assert '<section id="group_data">' not in page and '<section id="no_x">' in page
    assert page.count(IMG) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert "fitting model..." in err and "drawing caterpillar plot..." in err


def test_prediction_equation_signs():
    m = mm.lmer(SLEEP, mm.datasets.load("sleepstudy"))
    assert prediction_equation(m, "335").startswith("Reaction = 251.1 - 0.285 x Days")
    assert prediction_equation(m, "308", "Subject").endswith("x Days for Subject 308")


def test_cli_demo_writes_page_and_prints_equation(tmp_path, capsys):
    out = tmp_path / "demo.html"
    assert main(["demo", "--out", str(out), "--seed", "2024"]) == 0
    page = out.read_text(encoding="utf-8")
    stdout, stderr = capsys.readouterr()
    equation = re.search(r"salary = [\d,.]+ [+-] [\d,.]+ x service for organisation org\d\d",
                         stdout)
    assert equation, stdout
    assert html.escape(equation.group(0)) in page
    assert "Intraclass correlation of salary within organisation" in stdout
    assert "salary ~ 1 + service + (1 + service | organisation)" in stdout
    assert "fitting the random-intercept-and-slope model..." in stderr
    assert page.count(IMG) >= 4
    assert all(u.startswith(("#", "data:image/png;base64,")) for u in links(page))


def test_cli_report(tmp_path, capsys):
    # a small model: the sleepstudy report above already checks the content
    out = tmp_path / "report.html"
    code = main(["report", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff", "--out", str(out),
                 "--ml"])
    assert code == 0 and out.exists()
    stdout, stderr = capsys.readouterr()
    assert str(out) in stdout and "fitting model..." in stderr
    page = out.read_text(encoding="utf-8")
    assert "Data: Dyestuff" in page and "maximum likelihood" in page
    assert page.count(IMG) == 3


def test_cli_report_bad_x(tmp_path, capsys):
    code = main(["report", SLEEP, "--data", "sleepstudy", "--out", str(tmp_path / "r.html"),
                 "--x", "Subject"])
    assert code == 2
    assert "not numeric" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_examples_are_the_lecture_designs():
    scripts = [p.stem for p in EXAMPLES_DIR.glob("*.py") if not p.stem.startswith("_")]
    # the GLMM examples run in tests/test_glmer_examples.py, the covariance structures
    # example in tests/test_structured_example.py
    assert sorted(scripts) == sorted(EXAMPLES + ["crossed_accuracy", "count_overdispersion",
                                                 "time_grid_structures"])


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_and_saves_plot(name, tmp_path, monkeypatch, capsys):
    # runpy runs the file as ``python examples/<name>.py --quick --out-dir <tmp>`` would, in this
    # process: no interpreter start and no second import of numpy, pandas and matplotlib.
    script = EXAMPLES_DIR / f"{name}.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--quick", "--out-dir", str(tmp_path)])
    runpy.run_path(str(script), run_name="__main__")
    plots = list(tmp_path.glob("*.png"))
    assert len(plots) == 1 and plots[0].stat().st_size > 5000
    assert plots[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stdout = capsys.readouterr().out
    assert "Linear mixed model fit by" in stdout
    assert f"plot saved to {plots[0]}" in stdout
    assert "In plain words:" in stdout
