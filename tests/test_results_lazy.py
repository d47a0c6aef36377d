"""Read-offs computed on first use stay those of the result's own theta."""
from __future__ import annotations

import numpy as np

import mixedmodels as mm


def test_conditional_sds_ignore_later_evaluations_of_the_workspace(sleepstudy):
    formula = "Reaction ~ Days + (Days | Subject)"
    fit = mm.lmer(formula, sleepstudy)
    fresh = mm.lmer(formula, sleepstudy).ranef()
    fit.model.objective(fit.theta * 1.7)  # inference code moves the shared workspace
    np.testing.assert_allclose(fit.ranef()["condsd"], fresh["condsd"], rtol=1e-12)
    other = fit.at_theta(fit.theta * 0.5)
    assert not np.allclose(other.ranef()["condsd"], fresh["condsd"])
    np.testing.assert_allclose(fit.ranef()["condsd"], fresh["condsd"], rtol=1e-12)


def test_feval_counts_the_convergence_check(sleepstudy):
    fit = mm.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy)
    assert fit.optsum.feval == fit.model.n_evals
    # lme4's derivative check at 3 theta entries: 2 * 3^2 + 1 evaluations besides BOBYQA's.
    assert fit.optsum.feval - len(fit.optsum.fitlog) == 19
