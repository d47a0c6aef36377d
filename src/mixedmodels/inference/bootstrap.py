"""Simulation from a fitted model and the parametric bootstrap (lme4's ``simulate``, ``bootMer``).

``simulate`` draws new spherical random effects u ~ N(0, sigma^2 I), b = Lambda u, and noise
with variance sigma^2 / w, added to X beta + offset (lme4's ``simulate.merMod`` with
``use.u = FALSE``).

``bootstrap`` refits the model to each simulated response. A new response changes only the
y-dependent cross-products (Z'Wy, X'Wy and y'Wy); everything else in A is reused and the
formula is never parsed again. Refits start at the fitted theta, as lme4's ``refit`` does.

Reproducibility: replicate i draws from ``SeedSequence(seed).spawn(nsim)[i]``, so the numbers
do not depend on ``n_jobs`` and replicate i of ``bootstrap`` is refitted to column i of
``simulate`` with the same seed.
"""
from __future__ import annotations

import dataclasses
import math
import pickle
import sys
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from ..errors import MixedModelsError, warn_user
from ..lmm import LinearMixedModel
from ..objective import sigma_hat
from ..rformat import percent_labels
from .intervals import param_names
from .profile import theta_to_sdcor
from .protocol import FittedModel, refuse_residual_structure

__all__ = ["simulate", "bootstrap", "BootResult", "BootstrapWarning"]


class BootstrapWarning(UserWarning):
    """Some bootstrap refits failed or warned (lme4's bootMer summary of messages)."""


def _seed_sequences(seed: Any, nsim: int) -> tuple[np.random.SeedSequence, list]:
    """The root SeedSequence and one child per replicate.

    seed : None (fresh entropy, recorded in the root), int, SeedSequence or Generator.
    """
    if isinstance(seed, np.random.SeedSequence):
        root = seed
    elif isinstance(seed, np.random.Generator):
        root = np.random.SeedSequence(int(seed.integers(2**63)))
    else:
        root = np.random.SeedSequence(seed)
    return root, root.spawn(nsim)


@dataclass(frozen=True, eq=False)
class _Simulator:
    """What one simulated response needs: mean (n,), per-term levels/refs/z/T, sigma and the
    noise SDs sigma / sqrt(w) (n,)."""

    mean: np.ndarray
    n_levels: tuple[int, ...]
    refs: tuple[np.ndarray, ...]
    z: tuple[np.ndarray, ...]
    templates: tuple[np.ndarray, ...]
    sigma: float
    noise_sd: np.ndarray

    @classmethod
    def from_result(cls, result: FittedModel) -> "_Simulator":
        d = result.rows
        return cls(mean=d.X @ result.beta + d.offset,
                   n_levels=tuple(t.n_levels for t in d.terms),
                   refs=tuple(t.refs for t in d.terms),
                   z=tuple(t.z for t in d.terms),
                   templates=tuple(result.model.templates(result.theta)),
                   sigma=result.sigma, noise_sd=result.sigma / np.sqrt(d.weights))

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One response (n,): u first (term by term, level-major), then the noise."""
        y = self.mean.copy()
        for n_levels, refs, z, T in zip(self.n_levels, self.refs, self.z, self.templates):
            u = self.sigma * rng.standard_normal((n_levels, T.shape[0]))
            b = u @ T.T
            y += np.einsum("np,np->n", z, b[refs])
        return y + self.noise_sd * rng.standard_normal(y.shape[0])


def simulate(result: FittedModel, nsim: int = 1, seed: Any = None) -> pd.DataFrame:
    """(n, nsim) responses simulated from the fitted model (lme4's ``simulate``, use.u = FALSE).

    Parameters
    ----------
    result : the fit.
    nsim : number of responses.
    seed : None, int, ``numpy.random.SeedSequence`` or ``Generator``; column i draws from the
        i-th spawned child, so it equals replicate i of ``bootstrap`` with the same seed.

    Returns
    -------
    DataFrame with columns ``sim_1 .. sim_<nsim>`` (R's names), indexed by the row labels of
    the rows used for the fit (``result.rows.row_index``).
    """
    refuse_residual_structure(result, "simulate")
    if nsim < 1:
        raise MixedModelsError(f"nsim must be a positive integer, not {nsim}")
    sim = _Simulator.from_result(result)
    _, children = _seed_sequences(seed, nsim)
    values = np.column_stack([sim.draw(np.random.default_rng(c)) for c in children])
    return pd.DataFrame(values, index=result.rows.row_index,
                        columns=[f"sim_{i + 1}" for i in range(nsim)])


@dataclass(frozen=True, eq=False)
class _Refitter:
    """Refits the model to new responses from the fixed cross-products.

    ``zt_w[j]`` (q_j, n) sparse Z_j'W and ``wx`` (n, p) W X give the y-dependent pieces.
    """

    result: FittedModel
    zt_w: tuple
    wx: np.ndarray

    @classmethod
    def from_result(cls, result: FittedModel) -> "_Refitter":
        d = result.rows
        zt_w = []
        for t in d.terms:
            n, p = t.z.shape
            rows = (t.refs.astype(np.int64)[:, None] * p + np.arange(p)[None, :]).ravel()
            cols = np.repeat(np.arange(n), p)
            vals = (t.z * d.weights[:, None]).ravel()
            zt_w.append(sp.csr_array((vals, (rows, cols)), shape=(t.q, n)))
        return cls(result=result, zt_w=tuple(zt_w), wx=d.X * d.weights[:, None])

    def refit(self, y: np.ndarray) -> tuple[LinearMixedModel, Any]:
        """Fit to response y (n,); returns the model (workspace at the optimum) and OptSummary."""
        d, A = self.result.rows, self.result.model.A
        yc = y - d.offset
        p = A.p
        xz = []
        for Z, M in zip(A.xz, self.zt_w):
            Z = Z.copy()
            Z[p] = M @ yc
            xz.append(Z)
        xx = A.xx.copy()
        xx[:p, p] = xx[p, :p] = self.wx.T @ yc
        xx[p, p] = float(yc @ (d.weights * yc))
        new_A = dataclasses.replace(A, xz=tuple(xz), xx=xx)
        model = LinearMixedModel(new_A, self.result.terms, reml=self.result.reml)
        return model, model.fit(theta0=self.result.theta)


def _default_statistic(terms, theta: np.ndarray, sigma: float, beta: np.ndarray) -> np.ndarray:
    """lme4's confint(method="boot") statistic: SDs/correlations, sigma, fixed effects."""
    return np.concatenate([theta_to_sdcor(theta, terms, sigma), [sigma], beta])


def _as_vector(value: Any) -> np.ndarray:
    if isinstance(value, (pd.Series, dict)):
        value = list(pd.Series(value).to_numpy())
    return np.atleast_1d(np.asarray(value, dtype=float)).ravel()


@dataclass(frozen=True, eq=False)
class _Task:
    """Everything a worker process needs (sent once per worker)."""

    simulator: _Simulator
    refitter: _Refitter
    func: Callable | None
    n_stat: int

    def run(self, child: np.random.SeedSequence) -> tuple[np.ndarray, list[str], str]:
        """One replicate (``_run_one``); ``_run_all`` calls this on any task it is given."""
        return _run_one(self, child)


_WORKER_TASK: Any = None


def _init_worker(task: Any) -> None:
    global _WORKER_TASK
    _WORKER_TASK = task


def _run_one(task: _Task, child: np.random.SeedSequence) -> tuple[np.ndarray, list[str], str]:
    """(statistic, warning messages, error message or "") for one replicate."""
    y = task.simulator.draw(np.random.default_rng(child))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model, optsum = task.refitter.refit(y)
            base = task.refitter.result
            if task.func is None:
                sigma = sigma_hat(model.L.pwrss(), model.A.n, model.A.p, model.reml)
                value = _default_statistic(base.terms, np.asarray(optsum.theta), sigma,
                                           model.L.beta())
            else:
                rows = dataclasses.replace(base.rows, y=y)
                refit = type(base).from_model(model, base.info, rows, optsum, base.formula)
                value = _as_vector(task.func(refit))
            if value.size != task.n_stat:
                raise MixedModelsError(f"func returned {value.size} values on a replicate, "
                                       f"{task.n_stat} on the fit")
            error = ""
        except (np.linalg.LinAlgError, ValueError, ArithmeticError) as exc:
            value, error = np.full(task.n_stat, np.nan), f"{type(exc).__name__}: {exc}"
    return value, [str(w.message) for w in caught], error


def _run_chunk(indices: list[int], children: list) -> tuple[list[int], list]:
    return indices, [_WORKER_TASK.run(c) for c in children]


def _run_all(task: Any, children: list, n_jobs: int, bar: "_Progress") -> list:
    """Outputs of ``task.run(child)`` in replicate order, serially or in worker processes.

    ``task`` is any picklable object with a ``run(SeedSequence)`` method (this module's
    ``_Task``, or the GLMM bootstrap's). Chunks of consecutive replicates go to the workers
    (several chunks per worker so the progress bar moves); each replicate keeps its own seed,
    so the split does not matter.
    """
    if n_jobs == 1:
        outputs = []
        for child in children:
            outputs.append(task.run(child))
            bar.update()
        return outputs
    nsim = len(children)
    outputs: list = [None] * nsim
    bounds = np.linspace(0, nsim, min(nsim, 8 * n_jobs) + 1).astype(int)
    with ProcessPoolExecutor(max_workers=n_jobs, initializer=_init_worker,
                             initargs=(task,)) as pool:
        futures = [pool.submit(_run_chunk, list(range(a, b)), children[a:b])
                   for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        for future in as_completed(futures):
            indices, outs = future.result()
            for i, out in zip(indices, outs):
                outputs[i] = out
            bar.update(len(indices))
    return outputs


class _Progress:
    """tqdm when installed, else a one-line counter on stderr; silent when disabled.

    ``desc`` labels the bar (what is being counted: bootstrap replicates, profiled
    parameters, ...).
    """

    def __init__(self, total: int, enabled: bool, desc: str = "bootstrap"):
        self.total, self.done, self.bar = total, 0, None
        self.enabled, self.desc = enabled, desc
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=desc, file=sys.stderr)
            except ImportError:
                self.bar = None

    def update(self, k: int = 1) -> None:
        if not self.enabled:
            return
        self.done += k
        if self.bar is not None:
            self.bar.update(k)
        else:
            sys.stderr.write(f"\r{self.desc}: {self.done}/{self.total}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            if self.bar is not None:
                self.bar.close()
            else:
                sys.stderr.write("\n")


def _norm_inter(t: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Quantiles of t by interpolation on the normal scale between order statistics.

    The ``boot`` package's ``norm.inter`` (used by its percentile and basic intervals): with R
    finite values, the alpha quantile is the (R + 1) alpha-th order statistic, interpolated
    between neighbours on the qnorm scale when (R + 1) alpha is not an integer.
    """
    t = np.sort(t[np.isfinite(t)])
    R = t.size
    if R == 0:
        return np.full(len(alpha), np.nan)
    rk = (R + 1) * np.asarray(alpha, dtype=float)
    if not np.all((rk > 1) & (rk < R)):
        warn_user("extreme order statistics used as endpoints", BootstrapWarning)
    out = np.empty(rk.size)
    for i, (a, r) in enumerate(zip(alpha, rk)):
        k = int(math.trunc(r))
        if k == 0:
            out[i] = t[0]
        elif k >= R:
            out[i] = t[R - 1]
        elif k == r:
            out[i] = t[k - 1]
        else:
            q = stats.norm.ppf([a, k / (R + 1), (k + 1) / (R + 1)])
            out[i] = t[k - 1] + (q[0] - q[1]) / (q[2] - q[1]) * (t[k] - t[k - 1])
    return out


@dataclass
class BootResult:
    """A parametric bootstrap (lme4's ``bootMer`` object).

    Attributes
    ----------
    t0 : (n_stat,) the statistic on the fit.
    t : (nsim, n_stat) the statistic on each refit (NaN rows for failed refits).
    seed : the root ``SeedSequence`` (its ``entropy`` reproduces the run).
    n_failed : refits that raised an error.
    messages : count of each warning raised by the refits.
    """

    t0: pd.Series
    t: pd.DataFrame = field(repr=False)
    seed: np.random.SeedSequence = field(repr=False)
    n_failed: int = 0
    messages: Counter = field(default_factory=Counter, repr=False)

    @property
    def nsim(self) -> int:
        return len(self.t)

    def confint(self, level: float = 0.95, type: str = "perc") -> pd.DataFrame:
        """Bootstrap intervals per statistic, as lme4's ``confint(bootMer)``.

        type : "perc" (percentile), "basic" or "norm" (the ``boot`` package's definitions).
        """
        if not 0 < level < 1:
            raise MixedModelsError(f"level must be between 0 and 1, not {level}")
        if type not in ("perc", "basic", "norm"):
            raise MixedModelsError(f"bootstrap interval type must be 'perc', 'basic' or "
                                   f"'norm', not {type!r}")
        alpha = np.array([(1 - level) / 2, (1 + level) / 2])
        rows = {}
        for name in self.t.columns:
            t, t0 = self.t[name].to_numpy(), float(self.t0[name])
            if type == "perc":
                rows[name] = _norm_inter(t, alpha)
            elif type == "basic":
                rows[name] = 2 * t0 - _norm_inter(t, alpha[::-1])
            else:
                ok = t[np.isfinite(t)]
                bias = ok.mean() - t0
                half = ok.std(ddof=1) * stats.norm.ppf((1 + level) / 2)
                rows[name] = np.array([t0 - bias - half, t0 - bias + half])
        return pd.DataFrame.from_dict(rows, orient="index", columns=percent_labels(level))


def bootstrap(result: FittedModel, nsim: int, func: Callable | None = None, seed: Any = None,
              n_jobs: int = 1, progress: bool | None = None) -> BootResult:
    """Parametric bootstrap of an lmer fit, as lme4's ``bootMer`` (``use.u = FALSE``).

    Parameters
    ----------
    result : the fit; refits keep its REML/ML setting.
    nsim : number of simulated responses.
    func : statistic of a fit (of the result's class) returning a number, array, dict or Series;
        default: SDs/correlations, sigma and fixed effects named as lme4's
        ``confint(method = "boot")`` (``.sig01``, ..., ``.sigma``, fixed effects). With
        ``n_jobs > 1`` it must be picklable (a module-level function, not a lambda).
    seed : None, int, SeedSequence or Generator (see the module docstring).
    n_jobs : worker processes (``ProcessPoolExecutor``) when > 1.
    progress : show progress on stderr; None shows it when nsim >= 100 and stderr is a tty.

    Returns
    -------
    BootResult
    """
    refuse_residual_structure(result, "bootstrap")
    if not isinstance(nsim, (int, np.integer)) or nsim < 1:
        raise MixedModelsError(f"nsim must be a positive integer, not {nsim!r}")
    if n_jobs < 1:
        raise MixedModelsError(f"n_jobs must be at least 1, not {n_jobs}")
    if func is None:
        t0 = pd.Series(_default_statistic(result.terms, result.theta, result.sigma, result.beta),
                       index=param_names(result))
    else:
        t0 = statistic_at(func, result)
    if n_jobs > 1 and func is not None:
        try:
            pickle.dumps(func)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise MixedModelsError("with n_jobs > 1, func must be picklable (a module-level "
                                   "function, not a lambda or local function)") from exc
    root, children = _seed_sequences(seed, int(nsim))
    task = _Task(simulator=_Simulator.from_result(result),
                 refitter=_Refitter.from_result(result), func=func, n_stat=t0.size)
    return run_replicates(task, t0, root, children, n_jobs, progress)


def run_replicates(task: Any, t0: pd.Series, root: Any, children: list, n_jobs: int,
                   progress: bool | None) -> "BootResult":
    """Run ``task`` once per child seed (``_run_all``, with a progress bar: by default for
    100 or more replicates on a terminal) and collect a ``BootResult``: t (nsim, len(t0)),
    the count of failed refits and of the refits' warnings, each reported once."""
    nsim = len(children)
    if progress is None:
        progress = nsim >= 100 and sys.stderr.isatty()
    bar = _Progress(nsim, bool(progress))
    try:
        outputs = _run_all(task, children, int(n_jobs), bar)
    finally:
        bar.close()
    table = pd.DataFrame(np.vstack([out[0] for out in outputs]), columns=t0.index)
    messages = Counter(m for out in outputs for m in out[1])
    errors = Counter(out[2] for out in outputs if out[2])
    n_failed = sum(errors.values())
    if n_failed:
        warn_user(f"some bootstrap runs failed ({n_failed}/{nsim}): "
                  f"{dict(errors)}", BootstrapWarning)
    if messages:
        warn_user(f"refits gave warnings: {dict(messages)}", BootstrapWarning)
    return BootResult(t0=t0, t=table, seed=root, n_failed=n_failed, messages=messages)


def statistic_at(func: Callable, result: Any) -> pd.Series:
    """``func(result)`` as the named vector t0 (k,): a Series or dict keeps its names, other
    values are numbered t1..tk (boot's convention)."""
    raw = func(result)
    values = _as_vector(raw)
    names = (list(pd.Series(raw).index.astype(str)) if isinstance(raw, (pd.Series, dict))
             else [f"t{i + 1}" for i in range(values.size)])
    return pd.Series(values, index=names)
