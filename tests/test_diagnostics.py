"""Tests of the DHARMa-style simulated residuals (mixedmodels.diagnostics) and their plot.

The checks are statistical: data simulated from the fitted model itself must pass the tests,
data with extra observation-level noise must fail the dispersion test, data with extra zeros
the zero-inflation test. Rule-level checks use hand-worked arrays. Drawn headless with Agg.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

import mixedmodels as mm
from mixedmodels.diagnostics import (SimulatedResiduals, SimulationTest,
                                     UniformityTest, pit_residuals, quantile_curves,
                                     simulated_residuals, simulation_p_value)
from mixedmodels.errors import MixedModelsError


def poisson_data(seed: int, extra_sd: float = 0.0, zero_share: float = 0.0,
                 n_groups: int = 40, per_group: int = 10) -> pd.DataFrame:
    """Counts from log mu = 1 + 0.4 x + b_g (sd 0.3), optionally with observation-level
    normal noise in eta (overdispersion) or a random share of counts set to 0."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    x = rng.standard_normal(g.size)
    eta = 1.0 + 0.4 * x + rng.normal(0.0, 0.3, n_groups)[g]
    eta = eta + rng.normal(0.0, extra_sd, g.size)
    y = rng.poisson(np.exp(eta))
    y[rng.random(g.size) < zero_share] = 0
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i:02d}" for i in g]})


POISSON = "y ~ x + (1|g)"


@pytest.fixture(scope="module")
def cbpp():
    return mm.datasets.load("cbpp")


@pytest.fixture(scope="module")
def binomial_fit(cbpp):
    return mm.glmer("cbind(incidence, size - incidence) ~ period + (1|herd)", cbpp)


@pytest.fixture(scope="module")
def poisson_fit():
    return mm.glmer(POISSON, poisson_data(1), family="poisson")


@pytest.fixture(scope="module")
def poisson_sim(poisson_fit):
    return simulated_residuals(poisson_fit, nsim=250, seed=2)


# ---- the PIT rule and the p-value, on hand-worked arrays ---------------------------------

def test_pit_continuous_is_the_share_below():
    sims = np.array([[0.1, 0.2, 0.3, 0.4],
                     [1.0, 2.0, 3.0, 4.0],
                     [5.0, 6.0, 7.0, 8.0]])
    observed = np.array([0.25, 10.0, 4.0])
    res = pit_residuals(observed, sims, np.random.default_rng(0))
    np.testing.assert_array_equal(res, [0.5, 1.0, 0.0])


def test_pit_ties_draw_uniformly_between_below_and_at_or_below():
    # 1 of 5 below, 3 of 5 equal: residuals uniform on [0.2, 0.8].
    sims = np.tile([0.0, 1.0, 1.0, 1.0, 2.0], (20000, 1))
    observed = np.ones(20000)
    res = pit_residuals(observed, sims, np.random.default_rng(1))
    assert res.min() >= 0.2 and res.max() <= 0.8
    assert abs(res.mean() - 0.5) < 0.005
    assert abs(res.var() - 0.6**2 / 12) < 0.002


def test_simulation_p_value():
    simulated = np.arange(1.0, 11.0)                      # 1..10
    assert simulation_p_value(simulated, 9.0, "greater") == pytest.approx(0.2)
    assert simulation_p_value(simulated, 9.0, "less") == pytest.approx(0.9)
    assert simulation_p_value(simulated, 9.0) == pytest.approx(0.4)
    assert simulation_p_value(simulated, 5.5) == 1.0
    assert simulation_p_value(simulated, 20.0) == 0.0


# ---- the residuals of a fit -----------------------------------------------------------------

def test_residuals_layout(poisson_fit, poisson_sim):
    sim = poisson_sim
    n = poisson_fit.nobs
    assert isinstance(sim, SimulatedResiduals)
    assert sim.residuals.index.equals(poisson_fit.rows.row_index)
    assert sim.residuals.between(0, 1).all()
    assert sim.simulated.shape == (n, 250) and sim.nsim == 250
    np.testing.assert_array_equal(sim.observed, poisson_fit.y)
    # the predictions without random effects, as lme4's predict(re.form = NA)
    np.testing.assert_allclose(
        sim.fitted, poisson_fit.predict(re_form="~0", type="response").to_numpy())
    # residuals move in steps of 1 / nsim only where no simulated value ties
    assert len(np.unique(sim.residuals)) > n / 2


def test_binomial_compares_successes(binomial_fit, cbpp):
    sim = binomial_fit.simulated_residuals(nsim=100, seed=3)
    np.testing.assert_array_equal(sim.observed, cbpp["incidence"].to_numpy())
    size = cbpp["size"].to_numpy()
    assert np.all((sim.simulated >= 0) & (sim.simulated <= size[:, None]))
    assert np.all(sim.simulated == np.round(sim.simulated))
    zeros = sim.test_zero_inflation()
    assert zeros.observed == (cbpp["incidence"] == 0).sum()
    assert sim.residuals.between(0, 1).all()


def test_reproducible_with_a_seed(poisson_fit):
    a = simulated_residuals(poisson_fit, nsim=50, seed=7)
    b = poisson_fit.simulated_residuals(nsim=50, seed=7)
    pd.testing.assert_series_equal(a.residuals, b.residuals)
    np.testing.assert_array_equal(a.simulated, b.simulated)
    c = simulated_residuals(poisson_fit, nsim=50, seed=8)
    assert not np.array_equal(a.residuals, c.residuals)
    # the "quantile" residual type of GlmerResult.residuals is the same thing
    pd.testing.assert_series_equal(
        poisson_fit.residuals("quantile", nsim=50, seed=7), a.residuals, check_names=False)


@pytest.mark.parametrize("model", ["poisson", "binomial"])
def test_data_from_the_model_itself_pass(model, binomial_fit, poisson_fit, cbpp):
    """Simulate one response from a fit, refit it: the refit's residuals look uniform and
    its dispersion ratio is near 1."""
    if model == "poisson":
        y = poisson_fit.simulate(seed=11)["sim_1"].to_numpy()
        refit = mm.glmer(POISSON, poisson_data(1).assign(y=y), family="poisson")
    else:
        p = binomial_fit.simulate(seed=11)["sim_1"].to_numpy()
        data = cbpp.assign(incidence=np.rint(p * cbpp["size"].to_numpy()).astype(int))
        refit = mm.glmer("cbind(incidence, size - incidence) ~ period + (1|herd)", data)
    sim = refit.simulated_residuals(nsim=250, seed=12)
    assert sim.test_uniformity().p_value > 0.01
    dispersion = sim.test_dispersion()
    assert 0.75 < dispersion.statistic < 1.33
    assert dispersion.p_value > 0.01
    assert sim.test_zero_inflation().p_value > 0.01


def test_overdispersion_is_detected():
    data = poisson_data(21, extra_sd=0.8)
    sim = mm.glmer(POISSON, data, family="poisson").simulated_residuals(seed=22)
    test = sim.test_dispersion()
    assert test.statistic > 1.3
    assert test.p_value < 0.01
    assert sim.test_dispersion(alternative="greater").p_value < 0.01
    assert sim.test_dispersion(alternative="less").p_value > 0.5


def test_zero_inflation_is_detected():
    data = poisson_data(31, zero_share=0.3)
    sim = mm.glmer(POISSON, data, family="poisson").simulated_residuals(seed=32)
    test = sim.test_zero_inflation()
    assert test.observed == (data["y"] == 0).sum()
    assert test.statistic > 1.3
    assert test.p_value < 0.01
    assert test.simulated.shape == (250,)
    assert test.statistic == pytest.approx(test.observed / test.simulated.mean())


def test_conditional_simulations_use_the_modes(poisson_fit):
    sim = simulated_residuals(poisson_fit, nsim=2000, seed=5, conditional=True)
    assert sim.conditional
    # at the conditional modes every row's simulations average the fitted (conditional) mean
    mu = poisson_fit.fitted().to_numpy()
    assert np.all(np.abs(sim.simulated.mean(axis=1) - mu) < 5 * np.sqrt(mu / 2000))


def test_test_results_print(poisson_sim):
    uni, disp = poisson_sim.test_uniformity(), poisson_sim.test_dispersion()
    assert isinstance(uni, UniformityTest) and isinstance(disp, SimulationTest)
    assert 0 <= uni.p_value <= 1 and 0 <= uni.statistic <= 1
    assert "Kolmogorov-Smirnov" in str(uni) and "p-value" in str(uni)
    assert "Dispersion" in str(disp) and f"{disp.statistic:.4f}" in str(disp)
    text = str(poisson_sim)
    assert "Uniformity" in text and "Zero-inflation" in text


def test_continuous_family_has_no_zeros():
    sleep = mm.datasets.load("sleepstudy")
    fit = mm.glmer("Reaction ~ Days + (1|Subject)", sleep, family="Gamma", link="log")
    sim = fit.simulated_residuals(nsim=100, seed=4)
    zeros = sim.test_zero_inflation()
    assert zeros.observed == 0 and np.isnan(zeros.statistic) and zeros.p_value == 1.0
    assert "nan" in str(zeros)
    # no ties, so no randomization: each residual is a share of the 100 simulations
    np.testing.assert_allclose(sim.residuals * 100, np.round(sim.residuals * 100), atol=1e-9)


# ---- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("nsim", [0, 1, 2.5, False])
def test_bad_nsim(poisson_fit, nsim):
    with pytest.raises(MixedModelsError, match="nsim"):
        simulated_residuals(poisson_fit, nsim=nsim)


def test_bad_result_and_alternative(poisson_sim):
    fit = mm.lmer("Reaction ~ Days + (1|Subject)", mm.datasets.load("sleepstudy"))
    with pytest.raises(TypeError, match="GlmerResult"):
        simulated_residuals(fit)
    with pytest.raises(MixedModelsError, match="alternative"):
        poisson_sim.test_dispersion(alternative="bigger")


# ---- the plot -------------------------------------------------------------------------------

def test_quantile_curves_grouped_and_running():
    x = np.repeat([0.2, 0.6, 1.0], 30)
    r = np.linspace(0, 1, 90)
    centres, values, grouped = quantile_curves(x, r)
    assert grouped
    np.testing.assert_array_equal(centres, [0.2, 0.6, 1.0])
    np.testing.assert_allclose(values[1], np.quantile(r[30:60], [0.25, 0.5, 0.75]))
    # many distinct predictions, residuals unrelated to them: curves near their levels,
    # and unchanged when tied rows are reordered
    rng = np.random.default_rng(0)
    x = np.round(rng.random(3000), 2)
    r = rng.random(3000)
    centres, values, grouped = quantile_curves(x, r)
    assert not grouped and centres.size == 50
    assert np.all(np.abs(values - [0.25, 0.5, 0.75]) < 0.08)
    perm = np.lexsort((rng.random(3000), x))
    _, shuffled, _ = quantile_curves(x[perm], r[perm])
    np.testing.assert_allclose(shuffled, values)


def test_plot_two_panels_with_all_points(poisson_sim, tmp_path):
    fig = poisson_sim.plot()
    n = poisson_sim.nobs
    assert len(fig.axes) == 2
    ax_qq, ax_res = fig.axes
    qq = ax_qq.lines[0]
    assert len(qq.get_xdata()) == n
    np.testing.assert_allclose(np.sort(qq.get_ydata()), np.sort(poisson_sim.residuals))
    texts = " ".join(t.get_text() for t in ax_qq.texts)
    assert "KS" in texts and "dispersion" in texts and "zero-inflation" in texts
    scatters = [c for c in ax_res.collections if isinstance(c, PathCollection)]
    assert len(scatters) == 1 and scatters[0].get_offsets().shape == (n, 2)
    offsets = np.asarray(scatters[0].get_offsets())
    assert offsets[:, 0].min() > 0 and offsets[:, 0].max() == 1   # rank transformed
    assert len(ax_res.lines) == 6          # three dashed references and three curves
    assert any("What to look for" in t.get_text() for t in fig.texts)
    out = tmp_path / "dharma.png"
    fig.savefig(out)
    assert out.stat().st_size > 0


def test_plot_rejects_other_input(poisson_sim):
    with pytest.raises(TypeError, match="SimulatedResiduals"):
        mm.plots.quantile_residuals(poisson_sim.residuals)
    with pytest.raises(ValueError, match="quantiles"):
        mm.plots.quantile_residuals(poisson_sim, quantiles=(0.5, 1.5))
