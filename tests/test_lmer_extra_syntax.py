"""lme4 syntax beyond the public reference set, against lme4 1.1-31 fits made with
tools/r/make_extra_fixtures.R (double bars, slope-only terms, a/b nesting, factor-valued slopes,
a:b grouping, ordered-factor interactions, I(), log(), scale(), big crossed designs)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import TOL, assert_close, stopped_short

EXTRA = Path(__file__).parent / "fixtures" / "extra"
CASES = sorted(p.stem for p in EXTRA.glob("*.json"))


def _fit(case_id, cache={}):
    if case_id not in cache:
        case = json.loads((EXTRA / f"{case_id}.json").read_text())
        data = mm.datasets.load(case["dataset"])
        cache[case_id] = (case, mm.lmer(case["formula"], data, reml=case["REML"]))
    return cache[case_id]


@pytest.mark.parametrize("case_id", CASES)
def test_extra_case_matches_lme4(case_id):
    case, m = _fit(case_id)
    # Our objective may only be better than lme4's (README); never worse beyond 1e-4.
    assert m.loglik >= case["logLik"] - TOL["loglik_abs"]
    assert m.is_singular == case["isSingular"]
    assert m.ngroups == case["ngrps"]
    assert list(m.fixef.index) == list(case["fixef"])
    assert m.theta_names == list(case["theta"])
    theta_rtol = TOL["theta"]["rtol"]
    if stopped_short(m, case["logLik"]):
        # lme4 stopped before the optimum (Orthodont: 5.6e-6 worse, theta 2e-3 away): our
        # optimum is better, so everything theta-dependent is compared at lme4's own theta
        # (conftest.stopped_short).
        m = m.at_theta(np.array(list(case["theta"].values())))
    assert_close(m.fixef, list(case["fixef"].values()), what="fixef", rtol=1e-5, atol=1e-7)
    assert_close(m.se, list(case["se"].values()), what="se", **TOL["second"])
    assert_close(m.theta, list(case["theta"].values()), rtol=theta_rtol, atol=TOL["theta"]["atol"],
                 what="theta")
    assert_close(m.sigma, case["sigma"], what="sigma", **TOL["fixef"])
    assert m.loglik == pytest.approx(case["logLik"], abs=TOL["loglik_abs"])
    assert m.aic == pytest.approx(case["AIC"], abs=TOL["loglik_abs"])
    vc = m.varcorr()
    ref = pd.DataFrame(case["varcorr"])
    assert vc["grp"].tolist() == ref["grp"].tolist()
    assert vc["var1"].tolist() == ref["var1"].where(ref["var1"].notna(), None).tolist()
    assert_close(vc["vcov"], ref["vcov"], what="vcov", **TOL["second"])
    re = m.ranef()
    assert re["grpvar"].tolist() == case["ranef"]["grpvar"]
    assert re["term"].tolist() == case["ranef"]["term"]
    assert re["grp"].tolist() == case["ranef"]["grp"]
    scale = max(np.abs(case["ranef"]["condval"]).max(), 1e-8)
    assert_close(re["condval"], case["ranef"]["condval"], rtol=1e-4, atol=1e-4 * scale,
                 what="condval")
    assert_close(re["condsd"], case["ranef"]["condsd"], rtol=1e-4, atol=1e-4 * scale,
                 what="condsd")
    assert_close(m.fitted().iloc[:20], case["fitted_first20"], what="fitted", **TOL["fixef"])
