"""``mixedmodels fit ... --family``: glmer and glmer.nb from the command line, on bundled data."""
from __future__ import annotations

import re

import pytest

from mixedmodels.cli import main

CBPP = "cbind(incidence, size - incidence) ~ period + (1|herd)"
TICKS = "TICKS ~ YEAR + (1|BROOD) + (1|LOCATION)"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def row(out: str, name: str) -> list[str]:
    """The cells of the fixed-effects row ``name`` (the first line that starts with it)."""
    line = next(line for line in out.splitlines() if line.startswith(name + " "))
    return line.split()


def test_binomial_prints_lme4_glmer_summary(capsys):
    code, out, err = run(capsys, "fit", CBPP, "--data", "cbpp", "--family", "binomial")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[:5] == [
        "Generalized linear mixed model fit by maximum likelihood (Laplace",
        "  Approximation) [glmerMod]",
        " Family: binomial  ( logit )",
        "Formula: cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "   Data: cbpp",
    ]
    assert re.search(r"^ +194\.1 +204\.2 +-92\.0 +184\.1 +51 *$", out, re.M)
    assert "Number of obs: 56, groups:  herd, 15" in out
    assert re.search(r"^ herd +\(Intercept\) 0\.412\d +0\.642\d", out, re.M)
    # the estimates of lme4 refitted to a tight optimum (tests/fixtures/lme4_tight)
    assert row(out, "(Intercept)")[:2] == ["(Intercept)", "-1.3985"]
    assert row(out, "period2")[1:3] == ["-0.9923", "0.3066"]
    assert row(out, "period4")[1:] == ["-1.5803", "0.4274", "-3.697", "0.000218", "***"]
    assert "Correlation of Fixed Effects:" in out


def test_link_and_nagq_reach_glmer(capsys):
    code, out, _ = run(capsys, "fit", CBPP, "--data", "cbpp", "--family", "binomial",
                       "--link", "probit")
    assert code == 0 and " Family: binomial  ( probit )" in out
    code, out, _ = run(capsys, "fit", CBPP, "--data", "cbpp", "--family", "binomial",
                       "--nagq", "9")
    assert code == 0
    assert out.startswith("Generalized linear mixed model fit by maximum likelihood (Adaptive\n"
                          "  Gauss-Hermite Quadrature, nAGQ = 9) [glmerMod]\n")


def test_proportion_with_weights_is_the_cbind_fit(capsys):
    _, cbind, _ = run(capsys, "fit", CBPP, "--data", "cbpp", "--family", "binomial")
    code, out, _ = run(capsys, "fit", "incidence / size ~ period + (1|herd)", "--data", "cbpp",
                       "--family", "binomial", "--weights", "size")
    assert code == 0 and "Weights: size" in out
    for name in ("(Intercept)", "period2", "period3", "period4"):
        assert row(out, name) == row(cbind, name)


def test_poisson_on_grouseticks(capsys):
    code, out, _ = run(capsys, "fit", TICKS, "--data", "grouseticks", "--family", "poisson")
    assert code == 0
    assert " Family: poisson  ( log )" in out and "   Data: grouseticks" in out
    assert "Number of obs: 403, groups:  BROOD, 118; LOCATION, 63" in out
    assert re.search(r"^ +2020\.1 +2040\.1 +-1005\.1 +2010\.1 +398 *$", out, re.M)
    assert row(out, "YEAR96")[1:3] == ["1.2963", "0.2468"]
    assert row(out, "YEAR97")[1] == "-0.9417"


def test_observation_level_term_is_a_glmer_model_only(capsys):
    formula = "TICKS ~ YEAR + (1|INDEX) + (1|LOCATION)"
    code, out, _ = run(capsys, "fit", formula, "--data", "grouseticks", "--family", "poisson")
    assert code == 0
    assert "groups:  INDEX, 403; LOCATION, 63" in out
    # lmer has a residual to confound with one level per row: lme4 refuses, and so do we
    code, out, err = run(capsys, "fit", "HEIGHT ~ YEAR + (1|INDEX)", "--data", "grouseticks")
    assert code == 2 and out == ""
    assert "'INDEX' has 403 levels for 403 observations" in err


@pytest.mark.parametrize("name", ["negative.binomial", "nb"])
def test_negative_binomial_uses_glmer_nb(name, capsys):
    code, out, _ = run(capsys, "fit", TICKS, "--data", "grouseticks", "--family", name)
    assert code == 0
    assert re.search(r"^ Family: Negative Binomial\(3\.29\d\d\)  \( log \)$", out, re.M)
    assert re.search(r"^ +1823\.8 +1847\.8 +-905\.9 +1811\.8 +397 *$", out, re.M)
    # lme4's glmer.nb: theta 3.2907, YEAR96 1.2919 (its optimizer stops a little short)
    assert row(out, "YEAR96")[1].startswith("1.29")


def test_without_family_it_stays_lmer(capsys):
    code, out, _ = run(capsys, "fit", "Yield ~ 1 + (1|Batch)", "--data", "Dyestuff")
    assert code == 0 and out.startswith("Linear mixed model fit by REML")
    # glmer's gaussian family with the identity link is lmer by maximum likelihood, as in lme4
    code, out, err = run(capsys, "fit", "Yield ~ 1 + (1|Batch)", "--data", "Dyestuff",
                         "--family", "gaussian")
    assert code == 0 and out.startswith("Linear mixed model fit by maximum likelihood ")
    assert err.startswith("warning: glmer() with family gaussian")


@pytest.mark.parametrize("extra, message", [
    (["--family", "bogus"], "error: unknown family 'bogus'; known families are 'binomial'"),
    (["--family", "binomial", "--link", "bogus"],
     "error: link 'bogus' not available for the binomial family"),
    (["--family", "binomial", "--ml"],
     "error: --ml does not apply with --family: glmer fits are always by maximum likelihood"),
    (["--link", "probit"], "error: --link and --nagq apply to generalized models"),
    (["--nagq", "9"], "error: --link and --nagq apply to generalized models"),
    (["--family", "binomial", "--nagq", "-1"], "error: nagq must be a whole number >= 0"),
])
def test_rejected_options_exit_2_with_one_line(extra, message, capsys):
    code, out, err = run(capsys, "fit", CBPP, "--data", "cbpp", *extra)
    assert code == 2 and out == ""
    assert err.startswith(message)
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_nagq_needs_one_term(capsys):
    code, _, err = run(capsys, "fit", TICKS, "--data", "grouseticks", "--family", "poisson",
                       "--nagq", "5")
    assert code == 2
    assert "needs a single random-effects term" in err
