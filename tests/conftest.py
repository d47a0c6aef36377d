"""Shared test helpers: the lme4 reference fixtures, one cached fit per case, tolerances.

Tolerances are those of tests/fixtures/lme4/README.md ("Suggested tolerances"), in one place.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest

# Figures render off screen in every test (before any test module imports pyplot).
matplotlib.use("Agg")
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test drew (pyplot keeps every open figure in memory)."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")

FIXTURES = Path(__file__).parent / "fixtures" / "lme4"

TOL = {
    "fixef": dict(rtol=1e-5, atol=1e-8),       # also sigma, predictions, fitted, residuals
    "second": dict(rtol=1e-4, atol=1e-8),      # varcorr, SEs, vcov, t values, Wald CI
    "theta": dict(rtol=1e-4, atol=1e-5),
    "loglik_abs": 1e-4,
    "loglik_abs_insteval": 1e-3,
    "ranef_rel": 1e-4,
}


def load_case(case_id: str) -> dict:
    return json.loads((FIXTURES / f"{case_id}.json").read_text())


def lmer_case_ids() -> list[str]:
    index = json.loads((FIXTURES / "index.json").read_text())
    return [d["id"] for d in index if d["type"] == "lmer"]


def fit_args(case: dict) -> dict:
    """lmer keyword arguments from a fixture's ``extra_args`` (R syntax)."""
    args: dict = {}
    for part in filter(None, (s.strip() for s in case["extra_args"].split(","))):
        key, value = (s.strip() for s in part.split("="))
        if key == "REML":
            args["reml"] = value == "TRUE"
        elif key == "weights":
            args["weights"] = value
        else:
            raise ValueError(f"unhandled extra_args {part!r}")
    return args


_FITS: dict = {}


def fitted_case(case_id: str):
    """Fit a reference case once per test session."""
    if case_id not in _FITS:
        import mixedmodels as mm

        case = load_case(case_id)
        data = mm.datasets.load(case["dataset"])
        _FITS[case_id] = (case, data, mm.lmer(case["formula"], data, **fit_args(case)))
    return _FITS[case_id]


def stopped_short(result, lme4_loglik: float, margin: float = 1e-8) -> bool:
    """True when our log-likelihood beats lme4's by more than ``margin``.

    lme4's BOBYQA stops on flat likelihoods before the optimum (the README accepts values
    better than lme4's); its theta-dependent numbers (SEs, VarCorr, BLUPs) then belong to its
    stopping point, so tests compare those at lme4's own theta.
    """
    return result.loglik > lme4_loglik + margin


def assert_close(actual, expected, rtol, atol, what=""):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float),
                               rtol=rtol, atol=atol, err_msg=what)


@pytest.fixture
def sleepstudy():
    import mixedmodels as mm

    return mm.datasets.load("sleepstudy")


# The fixture README's GLMM rows: fixef relative 1e-4 (absolute 1e-5 near 0), theta and varcorr
# relative 1e-3, logLik/AIC/BIC absolute 1e-3.
TOL_GLMM = {
    "fixef": dict(rtol=1e-4, atol=1e-5),
    "theta": dict(rtol=1e-3, atol=1e-5),
    "loglik_abs": 1e-3,
}


def glmer_args(case: dict) -> dict:
    """glmer keyword arguments (and which function) from a glmer fixture."""
    if case["family"].startswith("Negative Binomial"):
        return {"nb": True, "link": case["link"]}
    return {"family": case["family"], "link": case["link"], "nagq": case["nAGQ"]}


def fitted_glmer_case(case_id: str):
    """Fit a glmer reference case once per test session."""
    if case_id not in _FITS:
        import mixedmodels as mm

        case = load_case(case_id)
        data = mm.datasets.load(case["dataset"])
        args = glmer_args(case)
        if args.pop("nb", False):
            fit = mm.glmer_nb(case["formula"], data, **args)
        else:
            fit = mm.glmer(case["formula"], data, **args)
        _FITS[case_id] = (case, data, fit)
    return _FITS[case_id]
