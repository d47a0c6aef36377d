"""Parametric bootstrap of a glmer fit, as lme4's ``bootMer`` (``use.u = FALSE``).

Each replicate simulates a response from the fit (``glmm_simulate.simulate_responses``: new
random effects, then one draw per row from the family) and refits the model to it: the same
two-stage fit as ``glmer``, on a new workspace with the fit's arrays and the new response
(``glmm_refit.new_model``), so neither the fit nor its workspace changes. Refits start at the
fit's theta, as lme4's ``refit`` does; the fixed effects start where the first stage puts them
for the new response, which is closer to the refit's optimum than the fit's estimates.

Seeding, worker processes and progress are those of the lmer bootstrap (``bootstrap.py``):
replicate i draws from ``SeedSequence(seed).spawn(nsim)[i]``, so the numbers do not depend
on ``n_jobs``. Replicate i's response is ``simulate_responses(fit, 1, default_rng(child_i))``
(``simulate(nsim, seed)`` draws all its columns from one generator instead).

The default statistic is lme4's for ``confint(method = "boot")`` on a glmer fit: the SDs and
correlations of the random effects (``.sig01``, ...), ``.sigma`` for families with a scale,
then the fixed effects. Two differences from lme4, each for a reason:

- For Gamma and inverse Gaussian fits the SDs are those ``varcorr()`` reports (sigma times
  the template's), the scale ``simulate`` draws the random effects on; lme4's statistic omits
  sigma there, so its SDs do not match its own ``VarCorr``.
- A negative binomial's shape is estimated again in every refit, as in the fit; lme4's
  ``refit`` holds it at the fitted value, which leaves its variability out of the intervals.
"""
from __future__ import annotations

import dataclasses
import numbers
import pickle
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from .._threads import blas_threads
from ..errors import MixedModelsError
from ..lmm import singular_message
from ..pirls import PirlsError
from .bootstrap import BootResult, _as_vector, _seed_sequences, run_replicates, statistic_at
from .glmm_intervals import variance_names
from .glmm_refit import new_model
from .glmm_simulate import check_glmer_result, check_nsim, simulate_responses
from .profile import theta_to_sdcor

__all__ = ["bootstrap", "default_statistic"]



def default_statistic(result: Any) -> pd.Series:
    """lme4's ``confint(method = "boot")`` statistic of a glmer fit, named as its rows:
    SDs / correlations on the ``varcorr()`` scale, ``.sigma`` with a scale, fixed effects."""
    scale = bool(result.family.has_dispersion)
    sdcor = theta_to_sdcor(np.asarray(result.theta), result.terms,
                           result.sigma if scale else 1.0)
    values = np.concatenate([sdcor, [result.sigma] if scale else [], result.beta])
    return pd.Series(values, index=variance_names(result) + list(result.info.x_names))


@dataclass(frozen=True, eq=False)
class _GlmmTask:
    """One replicate's work (sent once to each worker process).

    ``source`` is the fit with a model of its own (picklable: a negative binomial's family
    function is a module-level ``partial``); ``func`` the user's statistic or None.
    """

    source: Any
    func: Callable | None
    n_stat: int

    def run(self, child: np.random.SeedSequence) -> tuple[np.ndarray, list[str], str]:
        """(statistic, warning messages, error message or "") for one replicate."""
        with blas_threads():
            return _replicate(self, child)


def _replicate(task: _GlmmTask, child: np.random.SeedSequence
               ) -> tuple[np.ndarray, list[str], str]:
    result = task.source
    y = simulate_responses(result, 1, np.random.default_rng(child))[:, 0]
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = new_model(result, y=y)
            fit = model.fit(theta0=np.asarray(result.theta))
            if not (np.all(np.isfinite(fit.theta)) and np.all(np.isfinite(fit.beta))):
                raise PirlsError("no finite estimates")
            messages += list(fit.warnings)
            if model.is_singular(fit.theta):
                messages.append(singular_message(glmm=True))
            rows = dataclasses.replace(result.rows, y=y)
            refit = type(result).from_fit(model, result.info, rows, fit, result.formula)
            if task.func is None:
                value = default_statistic(refit).to_numpy()
            else:
                value = _as_vector(task.func(refit))
            if value.size != task.n_stat:
                raise MixedModelsError(f"func returned {value.size} values on a replicate, "
                                       f"{task.n_stat} on the fit")
            error = ""
        except (PirlsError, np.linalg.LinAlgError, ValueError, ArithmeticError) as exc:
            value, error = np.full(task.n_stat, np.nan), f"{type(exc).__name__}: {exc}"
    return value, messages + [str(w.message) for w in caught], error


def bootstrap(result: Any, nsim: int, func: Callable | None = None, seed: Any = None,
              n_jobs: int = 1, progress: bool | None = None) -> BootResult:
    """Parametric bootstrap of a glmer fit, as lme4's ``bootMer`` (see the module docstring).

    Parameters
    ----------
    result : GlmerResult
        The fit; it is not changed.
    nsim : int
        Number of simulated responses (>= 1).
    func : callable, optional
        Statistic of a refit (a ``GlmerResult`` of the simulated response) returning a number,
        array, dict or Series; default ``default_statistic``. With ``n_jobs > 1`` it must be
        picklable (a module-level function, not a lambda).
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Root of the replicates' seeds; the result's ``seed`` records it.
    n_jobs : int
        Worker processes when > 1; the numbers are the same as with 1.
    progress : bool, optional
        Count the replicates on stderr; None shows the count when nsim >= 100 and stderr is a
        terminal.

    Returns
    -------
    BootResult
        ``t0`` (n_stat,) on the fit, ``t`` (nsim, n_stat) with NaN rows for failed refits,
        ``confint(level, type)`` percentile (default), basic or normal intervals.

    Raises
    ------
    TypeError
        When ``result`` is not a glmer fit.
    MixedModelsError
        ``nsim`` or ``n_jobs`` not a positive integer, a ``func`` that cannot be sent to
        worker processes, or one that returns a different number of values on a refit.
    """
    check_glmer_result(result)
    nsim = check_nsim(nsim)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs < 1:
        raise MixedModelsError(f"n_jobs must be an integer >= 1, not {n_jobs!r}")
    if func is None:
        t0 = default_statistic(result)
    else:
        t0 = statistic_at(func, result)
        if n_jobs > 1:
            try:
                pickle.dumps(func)
            except (pickle.PicklingError, AttributeError, TypeError) as exc:
                raise MixedModelsError("with n_jobs > 1, func must be picklable (a "
                                       "module-level function, not a lambda or local "
                                       "function)") from exc
    root, children = _seed_sequences(seed, nsim)
    source = dataclasses.replace(result, model=new_model(result))
    task = _GlmmTask(source=source, func=func, n_stat=t0.size)
    return run_replicates(task, t0, root, children, n_jobs, progress)
