"""DHARMa's two residual panels for a GLMM's simulation-based quantile residuals
(``mm.plots.quantile_residuals``; ``diagnostics.simulated_residuals(...).plot()``)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .plots import _ppoints, _pyplot


def quantile_residuals(sim: Any, quantiles: tuple[float, ...] = (0.25, 0.5, 0.75),
                       title: str | None = None, figsize: tuple[float, float] = (10.0, 5.2)):
    """DHARMa's residual plot of a GLMM: a uniform QQ plot and residuals vs predictions.

    Left: the sorted simulated residuals against the quantiles of U(0, 1) (R's ``ppoints``),
    with the diagonal, and the p-values of the uniformity (Kolmogorov-Smirnov), dispersion
    and zero-inflation tests (red below 0.05). Right: the residuals against the fitted means
    without random effects, rank-transformed to (0, 1], with dashed lines at ``quantiles``
    and the residuals' quantiles along the predictions as solid curves: running quantiles
    over windows of consecutive predictions, or per distinct prediction (joined, with
    markers) when there are only a few, as when the fixed effects are factors only.

    Parameters
    ----------
    sim : SimulatedResiduals
        From ``GlmerResult.simulated_residuals()`` or
        ``mixedmodels.diagnostics.simulated_residuals``.
    quantiles : tuple of float
        Levels of the reference lines and curves, in (0, 1).
    title : str, optional
        Figure title (default: names the number of simulations and how they were drawn).
    figsize : (width, height) in inches

    Returns
    -------
    matplotlib.figure.Figure
        Two axes. The first holds the QQ points as one line of n markers and the diagonal;
        the second a scatter collection of n points, one dashed line per quantile and one
        curve per quantile.
    """
    from .diagnostics import SimulatedResiduals, quantile_curves, rank_transform

    if not isinstance(sim, SimulatedResiduals):
        raise TypeError(f"sim must be SimulatedResiduals (from simulated_residuals()), not "
                        f"{type(sim).__name__}")
    levels = np.asarray(quantiles, dtype=float)
    if levels.ndim != 1 or levels.size == 0 or np.any((levels <= 0) | (levels >= 1)):
        raise ValueError(f"quantiles must be levels strictly between 0 and 1, not {quantiles!r}")
    res = sim.residuals.to_numpy()
    n = res.size
    fig, (ax_qq, ax_res) = _pyplot().subplots(1, 2, figsize=figsize)
    # Fewer, lighter markers for big data, so that the density still shows.
    size, alpha = (12, 0.7) if n <= 1000 else (4, max(0.1, 0.7 * 1000 / n))

    ax_qq.plot(_ppoints(n), np.sort(res), linestyle="none", marker="^", markersize=4,
               color="0.2", alpha=alpha)
    ax_qq.plot([0, 1], [0, 1], color="C3", linewidth=1)
    ax_qq.set(xlim=(0, 1), ylim=(0, 1), xlabel="expected (uniform quantiles)",
              ylabel="observed (sorted residuals)", title="QQ plot of the residuals")
    tests = [("KS (uniformity)", sim.test_uniformity()),
             ("dispersion", sim.test_dispersion()),
             ("zero-inflation", sim.test_zero_inflation())]
    for i, (label, test) in enumerate(tests):
        flag = test.p_value < 0.05
        # A simulation p-value of 0 only says that no simulation was as extreme.
        p_text = (f"p < {1.0 / sim.nsim:.2g}" if test.p_value == 0 and i > 0
                  else f"p = {test.p_value:.3g}")
        ax_qq.text(0.03, 0.97 - 0.07 * i,
                   f"{label} test: {p_text} ({'deviation' if flag else 'n.s.'})",
                   transform=ax_qq.transAxes, ha="left", va="top", fontsize=9,
                   color="C3" if flag else "black")

    pred = rank_transform(sim.fitted)
    ax_res.scatter(pred, res, s=size, alpha=alpha, color="0.2", edgecolors="none")
    centres, values, grouped = quantile_curves(pred, res, tuple(levels))
    for k, q in enumerate(levels):
        ax_res.axhline(q, color="0.5", linestyle="--", linewidth=0.8)
        ax_res.plot(centres, values[:, k], color="C0", linewidth=2,
                    marker="o" if grouped else None, markersize=5)
    ax_res.set(xlim=(0, 1.02), ylim=(-0.02, 1.02), yticks=[0, *levels, 1],
               xlabel="model predictions without random effects (rank transformed)",
               ylabel="simulated residual", title="Residuals vs predicted")

    how = "conditional modes" if sim.conditional else "new random effects"
    fig.suptitle(title or f"Simulated (DHARMa) residuals: {sim.nsim} simulations with {how}")
    fig.text(0.5, 0.01, "What to look for: if the model fits, the QQ points follow the red "
             "diagonal and the tests are n.s.; on the right, the residuals spread evenly "
             "between 0 and 1 and the blue curves stay near the dashed lines at every "
             "prediction. A sloping middle curve points to a wrong mean (a missing predictor "
             "or a wrong link); outer curves pulled towards 0 and 1 to overdispersion, towards "
             "0.5 to underdispersion; residuals at 0 or 1 lie outside all simulations.",
             ha="center", va="bottom", fontsize=9, wrap=True)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig
