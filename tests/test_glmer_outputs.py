"""GlmerResult.ranef(as_dict=True) and ranef_condsd(): lme4's ranef(m) layout, read against the
long table of ranef() (itself checked against lme4 in test_glmer_reference.py)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import fitted_glmer_case

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
TICKS = "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)"
SLOPE = "I(Reaction > 300) ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def cbpp_fit():
    return mm.glmer(CBPP, mm.datasets.load("cbpp"), family="binomial")


@pytest.fixture(scope="module")
def ticks_fit():
    return mm.glmer(TICKS, mm.datasets.load("grouseticks"), family="poisson")


@pytest.fixture(scope="module")
def slope_fit():
    return mm.glmer(SLOPE, mm.datasets.load("sleepstudy"), family="binomial")


def _check_against_long(fit) -> None:
    """Every cell of the wide frames is the long table's condval / condsd of that level."""
    long = fit.ranef()
    wide, sds = fit.ranef(as_dict=True), fit.ranef_condsd()
    assert list(wide) == list(sds) == list(dict.fromkeys(long["grpvar"]))
    for group, frame in wide.items():
        assert frame.index.name == group
        pd.testing.assert_frame_equal(frame, frame.astype(float))
        pd.testing.assert_index_equal(sds[group].index, frame.index)
        assert list(sds[group].columns) == list(frame.columns)
        for term in frame.columns:
            rows = long[(long["grpvar"] == group) & (long["term"] == term)]
            assert list(rows["grp"]) == list(frame.index)
            np.testing.assert_array_equal(frame[term].to_numpy(), rows["condval"].to_numpy())
            np.testing.assert_array_equal(sds[group][term].to_numpy(), rows["condsd"].to_numpy())


def test_one_factor_binomial(cbpp_fit):
    _check_against_long(cbpp_fit)
    frame = cbpp_fit.ranef(as_dict=True)["herd"]
    assert frame.shape == (15, 1) and list(frame.columns) == ["(Intercept)"]
    assert list(frame.index) == [str(k) for k in range(1, 16)]
    np.testing.assert_array_equal(frame["(Intercept)"].to_numpy(), cbpp_fit.b[0][:, 0])
    np.testing.assert_allclose(cbpp_fit.ranef_condsd()["herd"].to_numpy()[:, 0] ** 2,
                               cbpp_fit.cond_var[0][:, 0, 0], rtol=1e-14)


def test_two_factors_poisson(ticks_fit):
    _check_against_long(ticks_fit)
    wide = ticks_fit.ranef(as_dict=True)
    assert set(wide) == {"BROOD", "LOCATION"}
    assert wide["BROOD"].shape == (118, 1) and wide["LOCATION"].shape == (63, 1)


def test_random_slope_sits_beside_the_intercept(slope_fit):
    _check_against_long(slope_fit)
    frame = slope_fit.ranef(as_dict=True)["Subject"]
    assert list(frame.columns) == ["(Intercept)", "Days"]
    np.testing.assert_array_equal(frame.to_numpy(), slope_fit.b[0])
    sds = slope_fit.ranef_condsd()["Subject"].to_numpy()
    np.testing.assert_allclose(sds**2, np.diagonal(slope_fit.cond_var[0], axis1=1, axis2=2),
                               rtol=1e-14)


def test_coef_is_fixef_plus_the_wide_ranef(slope_fit):
    coef = slope_fit.coef()["Subject"]
    wide = slope_fit.ranef(as_dict=True)["Subject"]
    np.testing.assert_allclose(coef.to_numpy(), wide.to_numpy() + slope_fit.fixef.to_numpy(),
                               rtol=1e-14)


def test_frames_are_new_copies(cbpp_fit):
    modes, sds = cbpp_fit.ranef(as_dict=True)["herd"], cbpp_fit.ranef_condsd()["herd"]
    modes.iloc[0, 0] = 99.0
    sds.iloc[0, 0] = 99.0
    assert cbpp_fit.ranef(as_dict=True)["herd"].iloc[0, 0] != 99.0
    assert cbpp_fit.ranef_condsd()["herd"].iloc[0, 0] != 99.0
    assert cbpp_fit.b[0][0, 0] != 99.0


def test_wide_layout_at_lme4_estimates_is_lme4s():
    """At lme4's own (theta, beta) the wide frames carry lme4's modes and SDs."""
    case, _, m = fitted_glmer_case("cbpp_binomial_laplace")
    theta = np.array([case["theta"][n] for n in m.theta_names])
    beta = np.array([case["fixef"][n] for n in m.fixef.index])
    at = m.at_params(theta, beta)
    ref = pd.DataFrame(case["ranef"]["rows"]).set_index("grp")
    wide, sds = at.ranef(as_dict=True)["herd"], at.ranef_condsd()["herd"]
    np.testing.assert_allclose(wide.loc[ref.index, "(Intercept)"], ref["condval"],
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sds.loc[ref.index, "(Intercept)"], ref["condsd"],
                               rtol=1e-4, atol=1e-5)


# ---- the documentation's glmer snippets run as pasted ---------------------------------------
ROOT = Path(__file__).resolve().parents[1]
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def glmer_blocks(relative: str) -> list[str]:
    text = (ROOT / relative).read_text(encoding="utf-8")
    return [b for b in PYTHON_BLOCK.findall(text) if "glmer" in b]


DOCS = ("README.md", "docs/teaching.md", "docs/for_lme4_users.md")
DOC_BLOCKS = [(doc, i, block) for doc in DOCS
              for i, block in enumerate(glmer_blocks(doc))]


def test_the_docs_have_glmer_snippets():
    assert len(glmer_blocks("README.md")) >= 2
    assert glmer_blocks("docs/teaching.md") and glmer_blocks("docs/for_lme4_users.md")


@pytest.mark.parametrize("doc, index, block", DOC_BLOCKS,
                         ids=[f"{doc}-{i}" for doc, i, _ in DOC_BLOCKS])
def test_doc_snippet_runs_in_a_fresh_session(doc, index, block, capsys):
    """Each block runs on its own, in a new namespace, as a reader would paste it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exec(compile(block, f"{doc} block {index}", "exec"), {"__name__": "__main__"})
    plt.close("all")
    capsys.readouterr()
