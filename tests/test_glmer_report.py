"""The HTML report of a GLMM (write_report(..., family=...) and `mixedmodels report --family`):
one self-contained page with the glmer summary, odds or rate ratios, the latent-scale ICC or
the median rate ratio, predictions per group, the caterpillar and DHARMa's residual panel."""
from __future__ import annotations

import html
import math
import re
import warnings

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.cli import main
from mixedmodels.errors import MixedModelsError
from mixedmodels.report import _column_text, prediction_equation, write_report

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
TICKS = "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)"
IMG = '<img src="data:image/png;base64,'
LINK = re.compile(r"""\b(?:src|href)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
CELL = re.compile(r"<t[dh][^>]*>(.*?)</t[dh]>", re.S)


def section(page: str, key: str) -> str:
    match = re.search(f'<section id="{key}">(.*?)</section>', page, re.S)
    assert match, f"no section {key}"
    return match.group(1)


def table_rows(page: str, caption: str) -> dict[str, list[str]]:
    """The body rows of the table with this caption: first cell -> the other cells."""
    start = page.index(f"<caption>{html.escape(caption)}</caption>")
    body = page[start:page.index("</table>", start)]
    body = body[body.index("<tbody>"):]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = [html.unescape(c.strip()) for c in CELL.findall(row)]
        rows[cells[0]] = cells[1:]
    return rows


def check_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    found = ["".join(m.groups(default="")) for m in LINK.finditer(page)]
    assert found and all(u.startswith(("#", "data:image/png;base64,")) for u in found)
    assert "<script" not in page and "<link" not in page and "url(" not in page
    assert "http:" not in page and "https:" not in page
    # a short plain-language explanation opens each section
    assert page.count('<p class="explain">') == page.count("<section ")


@pytest.fixture(scope="module")
def cbpp_report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cbpp")
    data = mm.datasets.load("cbpp")
    path = write_report(CBPP, data, folder / "cbpp.html", family="binomial", data_name="cbpp",
                        progress=False)
    fit = mm.glmer(CBPP, data, family="binomial")
    return folder, path, path.read_text(encoding="utf-8"), fit


@pytest.fixture(scope="module")
def ticks_report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ticks")
    data = mm.datasets.load("grouseticks")
    path = write_report(TICKS, data, folder / "ticks.html", family="poisson",
                        data_name="grouseticks", progress=False)
    fit = mm.glmer(TICKS, data, family="poisson")
    return folder, path, path.read_text(encoding="utf-8"), fit


def test_binomial_report_is_one_self_contained_page(cbpp_report):
    folder, path, page, _ = cbpp_report
    assert list(folder.iterdir()) == [path]
    check_self_contained(page)
    for key in ("data", "icc", "summary", "ratios", "coef", "predictions", "group_figure",
                "no_x", "caterpillar", "residuals"):
        assert f'<section id="{key}">' in page
    # no least-squares comparisons for a binary outcome, no Gaussian residual plots
    for key in ("pooling", "shrinkage", "group_data", "model_lines"):
        assert f'<section id="{key}">' not in page
    assert page.count(IMG) == 3            # group figure, caterpillar, DHARMa panel
    assert "binomial family, logit link; fitted by maximum likelihood (Laplace" in page


def test_binomial_report_holds_the_glmer_summary(cbpp_report):
    page, fit = cbpp_report[2], cbpp_report[3]
    summary = fit.summary()
    summary.data_name = "cbpp"
    assert html.escape(str(summary)) in page
    assert "Family: binomial  ( logit )" in page


def test_odds_ratios_are_exponentiated_fixed_effects_and_wald_limits(cbpp_report):
    page, fit = cbpp_report[2], cbpp_report[3]
    rows = table_rows(page, "exp(estimate) with 95% Wald intervals (odds ratios)")
    assert list(rows) == list(fit.fixef.index)
    wald = fit.confint("wald").loc[list(fit.fixef.index)]
    columns = [np.exp(fit.fixef.to_numpy()), np.exp(wald.iloc[:, 0].to_numpy()),
               np.exp(wald.iloc[:, 1].to_numpy())]
    texts = [_column_text(c) for c in columns]
    for i, name in enumerate(fit.fixef.index):
        assert rows[name][1:4] == [t[i] for t in texts]
    ratio = float(rows["period2"][1])
    assert ratio == pytest.approx(math.exp(fit.fixef["period2"]), abs=5e-5)
    assert rows["period4"][4] == "0.0002"            # the summary's Pr(>|z|) 0.000218


def test_latent_icc_and_median_odds_ratio(cbpp_report):
    page, fit = cbpp_report[2], cbpp_report[3]
    text = section(page, "icc")
    assert "(latent-scale ICC)" in text
    var = float(fit.varcorr()["vcov"].iloc[0])
    icc = var / (var + math.pi**2 / 3)
    assert icc == pytest.approx(float(fit.icc()["herd"]), rel=1e-12)
    null = mm.glmer("cbind(incidence, size - incidence) ~ 1 + (1 | herd)",
                    mm.datasets.load("cbpp"), family="binomial").icc()["herd"]
    assert (f"{100 * icc:.1f}% of the latent variance lies between groups of herd in this "
            f"model ({100 * null:.1f}% in the model without predictors)") in text
    mor = math.exp(math.sqrt(2 * var) * 0.6744897501960817)
    assert f"<td>{mor:.3f}</td>" in text


def test_predictions_per_group_and_for_a_typical_group(cbpp_report):
    page, fit = cbpp_report[2], cbpp_report[3]
    data = mm.datasets.load("cbpp")
    rows = table_rows(page, "Observed and predicted proportion of incidence per herd")
    totals = data.groupby("herd", observed=True)[["incidence", "size"]].sum()
    observed = (totals["incidence"] / totals["size"]).to_numpy()
    assert [r[1] for r in rows.values()] == _column_text(observed)
    mu = fit.fitted().to_numpy()
    size = data["size"].to_numpy()
    predicted = (data.assign(e=mu * size).groupby("herd", observed=True)["e"].sum()
                 / totals["size"]).to_numpy()
    assert [r[2] for r in rows.values()] == _column_text(predicted)
    typical = table_rows(page, "Predicted proportion of incidence for a typical herd")
    assert list(typical) == ["1", "2", "3", "4"]
    eta = fit.fixef["(Intercept)"] + np.r_[0.0, fit.fixef[["period2", "period3", "period4"]]]
    assert [r[1] for r in typical.values()] == _column_text(1 / (1 + np.exp(-eta)))
    assert [r[0] for r in typical.values()] == ["15", "14", "14", "13"]


def test_coef_equations_are_on_the_logit_scale(cbpp_report):
    page, fit = cbpp_report[2], cbpp_report[3]
    assert "log-odds of incidence = -1.399 - 0.992 x period2" in section(page, "coef")
    assert prediction_equation(fit, "1").startswith("log-odds of incidence = -0.809 - 0.992")


def test_dharma_panel_is_seeded(cbpp_report):
    page, fit = cbpp_report[2], cbpp_report[3]
    text = section(page, "residuals")
    assert IMG in text and "seed 1" in text
    assert f"<pre>{html.escape(str(fit.simulated_residuals(seed=1)))}</pre>" in text


def test_poisson_report_has_rate_ratios_and_curves(ticks_report):
    folder, path, page, fit = ticks_report
    check_self_contained(page)
    assert list(folder.iterdir()) == [path]
    for key in ("data", "icc", "summary", "ratios", "coef", "predictions", "group_figure",
                "model_curves", "caterpillar", "residuals"):
        assert f'<section id="{key}">' in page
    assert page.count(IMG) == 4
    rows = table_rows(page, "exp(estimate) with 95% Wald intervals (rate ratios)")
    assert float(rows["YEAR96"][1]) == pytest.approx(math.exp(fit.fixef["YEAR96"]), rel=1e-3)
    assert float(rows["scale(HEIGHT)"][1]) == pytest.approx(
        math.exp(fit.fixef["scale(HEIGHT)"]), rel=1e-3)
    icc = section(page, "icc")
    assert "(median rate ratio)" in icc and "latent" not in icc
    sd = fit.varcorr().set_index("grp")["sdcor"]
    for group in ("BROOD", "LOCATION"):
        mrr = math.exp(math.sqrt(2) * 0.6744897501960817 * sd[group])
        assert f"<td>{mrr:.3f}</td>" in icc
    assert "log mean TICKS = " in section(page, "coef")
    assert "Held fixed: YEAR at 95." in section(page, "model_curves")


def test_poisson_report_describes_counts_and_typical_years(ticks_report):
    page, fit = ticks_report[2], ticks_report[3]
    data = mm.datasets.load("grouseticks")
    described = section(page, "data")
    for name in ("mean", "variance", "variance / mean", "zeros"):
        assert f"<th>{name}</th>" in described
    typical = table_rows(page, "Predicted mean count of TICKS for a typical BROOD")
    assert list(typical) == ["95", "96", "97"]
    grid = data[["YEAR"]].drop_duplicates().sort_values("YEAR").assign(
        HEIGHT=data["HEIGHT"].mean())
    expected = fit.predict(grid, re_form="~0", type="response").to_numpy()
    assert [r[1] for r in typical.values()] == _column_text(expected)
    observed = data.groupby("YEAR", observed=True)["TICKS"].mean().to_numpy()
    assert [r[2] for r in typical.values()] == _column_text(observed)


def test_caterpillar_accepts_a_glmer_fit(cbpp_report):
    import matplotlib.pyplot as plt

    fig = mm.plots.caterpillar(cbpp_report[3])
    (ax,) = fig.axes
    assert ax.get_xlabel() == "(Intercept) (conditional mode, logit scale)"
    assert len(ax.get_yticklabels()) == 15
    plt.close(fig)


# period is a fixed effect too, so its variance ends at zero: a singular fit
SINGULAR = "cbind(incidence, size - incidence) ~ period + (1 | herd) + (1 | period)"


def test_warnings_pass_on_once(tmp_path):
    data = mm.datasets.load("cbpp")
    formula = SINGULAR
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = write_report(formula, data, tmp_path / "r.html", family="binomial",
                            progress=False)
    messages = [str(w.message) for w in caught]
    singular = [m for m in messages if m.startswith("boundary (singular) fit")]
    assert len(singular) == 1 and len(messages) == len(set(messages))
    page = path.read_text(encoding="utf-8")
    assert page.count("Warning while fitting: boundary (singular) fit") == 1


def test_cli_report_with_family(tmp_path, capsys):
    out = tmp_path / "cbpp.html"
    code = main(["report", SINGULAR, "--data", "cbpp", "--family", "binomial",
                 "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0 and captured.out == f"wrote {out}\n"
    warned = [line for line in captured.err.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1 and warned[0].startswith("warning: boundary (singular) fit")
    assert "UserWarning" not in captured.err and "simulating 250" in captured.err
    page = out.read_text(encoding="utf-8")
    check_self_contained(page)
    assert "Family: binomial  ( logit )" in page and "Data: cbpp" in page


def test_cli_report_negative_binomial_and_nagq(tmp_path, capsys):
    out = tmp_path / "nb.html"
    code = main(["report", "TICKS ~ YEAR + (1 | LOCATION)", "--data", "grouseticks",
                 "--family", "nb", "--out", str(out)])
    assert code == 0
    page = out.read_text(encoding="utf-8")
    assert "Family: Negative Binomial(" in page and "rate ratios" in page
    out = tmp_path / "agq.html"
    code = main(["report", CBPP, "--data", "cbpp", "--family", "binomial", "--nagq", "5",
                 "--link", "probit", "--out", str(out)])
    assert code == 0
    page = out.read_text(encoding="utf-8")
    assert "adaptive Gauss-Hermite quadrature, nAGQ = 5" in page
    # a probit fit has a latent ICC but no odds ratios
    assert '<section id="ratios">' not in page and "latent ICC" in page
    capsys.readouterr()


@pytest.mark.parametrize("extra, message", [
    (["--family", "binomial", "--ml"], "--ml does not apply with --family"),
    (["--link", "logit"], "--link and --nagq apply to generalized models"),
    (["--family", "gaussian"], "is a linear mixed model"),
])
def test_cli_report_rejects_options(extra, message, tmp_path, capsys):
    code = main(["report", CBPP, "--data", "cbpp", "--out", str(tmp_path / "r.html"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert not (tmp_path / "r.html").exists()


def test_link_without_family_is_refused(tmp_path):
    with pytest.raises(MixedModelsError, match="give family too"):
        write_report("Reaction ~ Days + (1 | Subject)", mm.datasets.load("sleepstudy"),
                     tmp_path / "r.html", link="log", progress=False)
