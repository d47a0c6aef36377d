"""Leverage (``hatvalues``) and case-deletion influence (``influence``, Cook's distance).

References: lme4 1.1-31's ``hatvalues(m)`` and ``cooks.distance(influence(m))`` for two REML
fits (tests/fixtures/influence/README.md, relative tolerance 1e-4); a dense numpy hat matrix
built from Z, Lambda and X; and fresh fits on the data without the deleted row.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels import optimize
from mixedmodels.inference.influence import (Influence, InfluenceWarning, hatvalues, influence,
                                             without_row)
from mixedmodels.linalg import cholesky
from mixedmodels.lmm import LinearMixedModel

from oracles import dense_z

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "influence"
                        / "lme4_influence.json").read_text())
CASES = {"sleepstudy_reml": "sleepstudy", "penicillin_reml": "Penicillin"}
REL = 1e-4  # the reference README's tolerance

_FITS: dict = {}
_INFLUENCE: dict = {}


def _fit(case: str):
    if case not in _FITS:
        _FITS[case] = mm.lmer(REFERENCE[case]["formula"], mm.datasets.load(CASES[case]))
    return _FITS[case]


def _influence(case: str) -> Influence:
    """One run of the 180 or 144 refits per session."""
    if case not in _INFLUENCE:
        _INFLUENCE[case] = influence(_fit(case), progress=False)
    return _INFLUENCE[case]


# ---- hatvalues ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_hatvalues_match_lme4(case):
    h = hatvalues(_fit(case))
    ref = np.array(REFERENCE[case]["hatvalues"])
    np.testing.assert_allclose(h.to_numpy(), ref, rtol=REL, atol=0)
    np.testing.assert_allclose(h.sum(), ref.sum(), rtol=REL)


def dense_hat(result) -> tuple[np.ndarray, np.ndarray]:
    """(H_pls, H_marginal), both (n, n), built in numpy from the design and the templates.

    H_pls = C M^{-1} C' W with C = [Z Lambda, X], M = C'WC + diag(I_q, 0) (the PLS normal
    equations); H_marginal maps y to X beta + Z b with the GLS beta and b = Sigma Z' V^{-1}
    (y - X beta), V = W^{-1} + Z Lambda Lambda' Z' (no PLS at all). Both have lme4's diagonal.
    """
    d = result.rows
    Zs, Lams = [], []
    for t, T in zip(d.terms, result.model.templates(result.theta)):
        Zs.append(dense_z(t.refs, t.z, t.n_levels))
        Lams.append(np.kron(np.eye(t.n_levels), T))
    Z = np.hstack(Zs)
    q = Z.shape[1]
    Lam = np.zeros((q, q))
    start = 0
    for block in Lams:
        Lam[start:start + block.shape[0], start:start + block.shape[0]] = block
        start += block.shape[0]
    X, w = d.X, np.asarray(d.weights, dtype=float)
    C = np.hstack([Z @ Lam, X])
    M = C.T @ (w[:, None] * C)
    M[:q, :q] += np.eye(q)
    H_pls = C @ np.linalg.solve(M, C.T * w[None, :])
    Vinv = np.linalg.inv(np.diag(1.0 / w) + Z @ Lam @ Lam.T @ Z.T)
    P = X @ np.linalg.solve(X.T @ Vinv @ X, X.T @ Vinv)
    H_marginal = P + Z @ Lam @ Lam.T @ Z.T @ Vinv @ (np.eye(d.n) - P)
    return H_pls, H_marginal


def _weighted_sleepstudy() -> pd.DataFrame:
    data = mm.datasets.load("sleepstudy").copy()
    data["w"] = 1.0 + (data["Days"] % 3) / 2.0
    return data


ORACLE_MODELS = {
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", lambda: mm.datasets.load("sleepstudy"),
                   {}),
    "penicillin_crossed": ("diameter ~ 1 + (1|plate) + (1|sample)",
                           lambda: mm.datasets.load("Penicillin"), {}),
    "pastes_nested": ("strength ~ 1 + (1|batch/cask)", lambda: mm.datasets.load("Pastes"), {}),
    "sleepstudy_weighted": ("Reaction ~ Days + (Days | Subject)", _weighted_sleepstudy,
                            {"weights": "w"}),
}


@pytest.mark.parametrize("layout", ["typed", "one-dense"])
@pytest.mark.parametrize("name", list(ORACLE_MODELS))
def test_hatvalues_dense_oracle(name, layout, monkeypatch):
    """Both layouts of L: typed blocks (tiles, sparse, dense trailing part) and one dense block."""
    monkeypatch.setattr(cholesky, "SMALL_DENSE", 0 if layout == "typed" else 10**9)
    formula, load, kwargs = ORACLE_MODELS[name]
    m = mm.lmer(formula, load(), **kwargs)
    assert m.model.L.small == (layout == "one-dense")
    H_pls, H_marginal = dense_hat(m)
    np.testing.assert_allclose(np.diag(H_pls), np.diag(H_marginal), rtol=1e-9)
    h = hatvalues(m)
    np.testing.assert_allclose(h.to_numpy(), np.diag(H_pls), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h.sum(), np.trace(H_marginal), rtol=1e-10)
    # The fitted values are H y (checks the dense H itself against the fit).
    np.testing.assert_allclose(H_pls @ m.rows.y, m.fitted(), rtol=1e-7)


def test_hatvalues_chunks_and_index(monkeypatch):
    """Rows in several chunks give the same values; the index is the data rows used."""
    from mixedmodels.inference import influence as module

    data = mm.datasets.load("sleepstudy").copy()
    data.index = [f"obs{i}" for i in range(len(data))]
    data.loc["obs3", "Reaction"] = np.nan
    with pytest.warns(mm.DroppedRowsWarning, match=r"^1 row\(s\) dropped"):
        m = mm.lmer("Reaction ~ Days + (Days | Subject)", data)
    whole = hatvalues(m)
    monkeypatch.setattr(module, "CHUNK_ENTRIES", 7 * 39)
    chunked = hatvalues(m)
    np.testing.assert_allclose(chunked.to_numpy(), whole.to_numpy(), rtol=1e-12)
    assert list(whole.index) == [f"obs{i}" for i in range(len(data)) if i != 3]


# ---- case deletion ------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_cooks_distance_match_lme4(case):
    """Relative 1e-4 on every row where lme4's refit reached the optimum.

    lme4's refits stop where BOBYQA stops: on sleepstudy 21 of 180 rows (and one of
    Penicillin's 144, whose full fit also stopped early on a flat REML criterion) differ by up
    to 3.5e-3. The next test shows that on exactly those rows our value is the fully converged
    one, so they are left out here and nothing is loosened.
    """
    cd = _influence(case).cooks_distance().to_numpy()
    ref = np.array(REFERENCE[case]["cooks_distance"])
    close = np.abs(cd / ref - 1) <= REL
    assert close.mean() > 0.85
    np.testing.assert_allclose(cd[close], ref[close], rtol=REL, atol=0)
    assert _influence(case).converged.all()


def _tight_refit_beta(result, r: int) -> np.ndarray:
    """beta without row r, optimized far past lme4's stopping rule."""
    d = result.rows
    A_r = without_row(result.model.A, d.terms, d.X, d.y, d.offset, d.weights, r)
    model = LinearMixedModel(A_r, result.terms, reml=result.reml)
    s = optimize.minimize_theta(model.objective, result.theta, model.theta_lower,
                                xtol_abs=1e-12, ftol_abs=1e-14, xtol_rel=1e-12)
    theta, _, _ = optimize.polish_and_check(model.objective, s.theta, s.fmin, model.theta_lower)
    model.objective(theta)
    return model.L.beta()


@pytest.mark.parametrize("case", list(CASES))
def test_cooks_distance_where_lme4_differs_is_the_converged_value(case):
    """Every row more than 1e-4 from lme4 equals a refit optimized to 1e-12."""
    result, infl = _fit(case), _influence(case)
    cd = infl.cooks_distance().to_numpy()
    ref = np.array(REFERENCE[case]["cooks_distance"])
    differ = np.flatnonzero(np.abs(cd / ref - 1) > REL)
    assert differ.size < 30
    V_inv = np.linalg.inv(infl.vcov.to_numpy())
    n, p = infl.fixed_effects.shape
    for r in differ:
        db = _tight_refit_beta(result, r) - result.beta
        tight = (n - p) / (n * p) * db @ V_inv @ db
        np.testing.assert_allclose(cd[r], tight, rtol=2e-5)


def _assert_same_fit(infl: Influence, label, fresh) -> None:
    np.testing.assert_allclose(infl.fixed_effects.loc[label].to_numpy(), fresh.beta, rtol=1e-6)
    np.testing.assert_allclose(infl.fixed_se.loc[label].to_numpy(), fresh.se.to_numpy(),
                               rtol=1e-4)
    np.testing.assert_allclose(infl.theta.loc[label].to_numpy(), fresh.theta, rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(infl.sigma.loc[label], fresh.sigma, rtol=1e-6)


@pytest.mark.parametrize("case,row", [("sleepstudy_reml", 7), ("sleepstudy_reml", 150),
                                      ("penicillin_reml", 37)])
def test_deleted_row_refit_equals_fresh_lmer(case, row):
    """Row r's refit from downdated cross-products equals mm.lmer on the data without row r."""
    result, infl = _fit(case), _influence(case)
    data = mm.datasets.load(CASES[case])
    label = result.rows.row_index[row]
    fresh = mm.lmer(REFERENCE[case]["formula"], data.drop(index=label))
    _assert_same_fit(infl, label, fresh)
    # The downdated blocks are the grouped sums over the other rows.
    d = result.rows
    A_r = without_row(result.model.A, d.terms, d.X, d.y, d.offset, d.weights, row)
    A_fresh = fresh.model.A
    assert (A_r.n, A_r.sum_log_w) == (A_fresh.n, A_fresh.sum_log_w)
    for a, b in zip(A_r.diag + A_r.xz + (A_r.xx,), A_fresh.diag + A_fresh.xz + (A_fresh.xx,)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9)
    for key, block in A_r.off.items():
        np.testing.assert_allclose(block.toarray(), A_fresh.off[key].toarray(), atol=1e-12)


def test_deleting_a_levels_only_row_equals_dropping_the_level():
    """A level left without rows adds nothing to the objective, as lme4's dropped level."""
    sleep = mm.datasets.load("sleepstudy")
    extra = pd.DataFrame({"Reaction": [300.0], "Days": [3], "Subject": ["999"]})
    data = pd.concat([sleep, extra.astype({"Days": sleep["Days"].dtype})], ignore_index=True)
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", data)
    r = m.rows.n - 1
    d = m.rows
    A_r = without_row(m.model.A, d.terms, d.X, d.y, d.offset, d.weights, r)
    model = LinearMixedModel(A_r, m.terms, reml=True)
    optsum = model.fit(theta0=m.theta)
    fresh = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    np.testing.assert_allclose(optsum.fmin, fresh.objective, rtol=1e-9)
    np.testing.assert_allclose(model.L.beta(), fresh.beta, rtol=1e-6)


def test_influence_frames_and_helpers():
    result, infl = _fit("sleepstudy_reml"), _influence("sleepstudy_reml")
    n, p = result.rows.n, result.beta.size
    assert infl.fixed_effects.shape == infl.fixed_se.shape == (n, p)
    assert infl.theta.shape == (n, result.theta.size)
    assert list(infl.fixed_effects.columns) == ["(Intercept)", "Days"]
    assert infl.fixed_effects.index.equals(result.rows.row_index)
    np.testing.assert_allclose(infl.dfbeta().to_numpy(), infl.fixed_effects.to_numpy()
                               - result.beta[None, :])
    np.testing.assert_allclose(infl.dfbetas().to_numpy(),
                               infl.dfbeta().to_numpy() / infl.fixed_se.to_numpy())
    assert (infl.feval > 0).all()


def test_rank_deficient_refit_is_nan_with_warning():
    """A column of X carried by one row only: its deletion refit fails and says so."""
    data = mm.datasets.load("Dyestuff").copy()
    data["spike"] = 0.0
    data.loc[data.index[4], "spike"] = 1.0
    m = mm.lmer("Yield ~ spike + (1|Batch)", data)
    with pytest.warns(InfluenceWarning, match="1 of 30 case-deletion refits failed"):
        infl = influence(m, progress=False)
    assert infl.fixed_effects.iloc[4].isna().all() and not infl.converged.iloc[4]
    assert infl.converged.drop(infl.converged.index[4]).all()
    assert np.isnan(infl.cooks_distance().iloc[4])


def test_progress_on_stderr(capsys):
    m = mm.lmer("Yield ~ 1 + (1|Batch)", mm.datasets.load("Dyestuff"))
    influence(m, progress=True)
    assert "30/30" in capsys.readouterr().err
    influence(m, progress=False)
    assert capsys.readouterr().err == ""


def test_result_methods_delegate():
    m = _fit("penicillin_reml")
    np.testing.assert_array_equal(m.hatvalues().to_numpy(), hatvalues(m).to_numpy())
    cd = m.influence(progress=False).cooks_distance()
    np.testing.assert_allclose(cd.to_numpy(), _influence("penicillin_reml").cooks_distance(),
                               rtol=1e-12)
