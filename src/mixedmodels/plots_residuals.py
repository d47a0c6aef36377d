"""Residual panels: an LMM's residuals and QQ plots (``mm.plots.residuals``), and DHARMa's two
panels for a GLMM's simulation-based quantile residuals (``mm.plots.quantile_residuals``;
``diagnostics.simulated_residuals(...).plot()``)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .plots import _caption, _coef_unit, _grid, _pyplot, _units


def _ppoints(n: int) -> np.ndarray:
    """R's ``ppoints``: plotting positions (i - a) / (n + 1 - 2a), a = 3/8 for n <= 10."""
    a = 3.0 / 8.0 if n <= 10 else 0.5
    return (np.arange(1, n + 1) - a) / (n + 1 - 2 * a)


def residuals(result: Any, units: dict[str, str] | None = None):
    """Diagnostic panels: residuals against fitted values and normal QQ plots.

    Panels: residuals vs fitted values (with the zero line); a normal QQ plot of the
    residuals; a normal QQ plot of the conditional modes of each random-effect term. Each
    QQ plot has R's ``qqline`` through the quartiles. A caption under the panels says what
    to look for.

    Parameters
    ----------
    result : LmerResult
    units : dict of str to str, optional
        Units of the response and predictors, e.g. ``data.attrs["units"]`` of a frame from
        :func:`mixedmodels.datasets.load`: fitted values and residuals are in the response's
        unit, an intercept's modes too, a slope's in the response's unit per unit of its
        predictor.

    Returns
    -------
    matplotlib.figure.Figure
        2 + (number of random-effect terms) axes.
    """
    from scipy.stats import norm

    units = _units(units)
    re = result.ranef()
    pairs = list(dict.fromkeys(zip(re["grpvar"], re["term"])))
    fig, axes, _ = _grid(2 + len(pairs), ncols=3, panel_size=(3.8, 3.3))
    response = result.info.formula.response
    y_unit = units.get(response)
    in_y = f" ({y_unit})" if y_unit else ""
    fitted, resid = result.fitted().to_numpy(), result.residuals().to_numpy()

    axes[0].scatter(fitted, resid, s=8, alpha=0.6, color="C0")
    axes[0].axhline(0.0, color="0.3", linestyle="--", linewidth=0.8)
    axes[0].set_xlabel(f"fitted {response}{in_y}")
    axes[0].set_ylabel(f"residuals{in_y}")
    axes[0].set_title("Residuals vs fitted")

    # (title, y label, values) of each QQ panel
    samples = [("residuals", f"residuals{in_y}", resid)]
    for g, t in pairs:
        unit = _coef_unit(t, response, units)
        samples.append((f"{g}: {t}", f"{t} (conditional mode{', ' + unit if unit else ''})",
                        re.loc[(re.grpvar == g) & (re.term == t), "condval"].to_numpy()))
    for ax, (title, ylabel, values) in zip(axes[1:], samples):
        sample = np.sort(values)
        theory = norm.ppf(_ppoints(sample.size))
        ax.plot(theory, sample, "o", markersize=3, color="C0")
        q_sample = np.quantile(sample, [0.25, 0.75])
        q_theory = norm.ppf([0.25, 0.75])
        slope = (q_sample[1] - q_sample[0]) / (q_theory[1] - q_theory[0])
        intercept = q_sample[0] - slope * q_theory[0]
        ends = np.array([theory[0], theory[-1]])
        ax.plot(ends, intercept + slope * ends, color="C3", linewidth=1)
        ax.set_xlabel("normal quantiles")
        ax.set_ylabel(ylabel)
        ax.set_title(f"Normal QQ: {title}")
    _caption(fig, "no pattern against the fitted values: an even band around 0, without a "
                  "funnel (spread growing with the fitted values) or a curve (a missing term); "
                  "points near the red line in the QQ plots. Points far off the line at the "
                  "ends are outliers or heavier tails than the normal.")
    return fig


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
