"""Seeded simulators for the benchmark's large cases, and an on-disk cache of their data.

Three designs, all drawn with ``numpy.random.default_rng(seed)`` so a given set of parameters
always gives the same frame:

- ``sim_slopes``: ``y ~ x + (x | g1) + (1 | g2)``: a correlated random intercept and slope on
  ``g1`` (default 1,000 levels) and a random intercept on ``g2`` (default 200 levels), crossed.
- ``sim_crossed``: ``y ~ 1 + (1 | u) + (1 | i)``: users x items with skewed activity and
  popularity (default 20,000 users, 2,000 items, 2 million rows), ratings-like responses.
- ``sim_bernoulli``: ``y ~ x + (1 | g1) + (1 | g2)`` with a 0/1 response through the logit link:
  random intercepts on ``g1`` (default 1,000 levels) and ``g2`` (default 200 levels), crossed.

Frames are memory-lean: grouping factors are pandas Categoricals whose codes come from int32
arrays (labels 1..K, in that order), numeric columns are float64. Every level occurs at least
once (the first K rows cycle through the levels), so no tool has empty levels to drop.

``cached(kind, **params)`` writes a frame once into a cache directory, keyed by the kind, its
parameters and ``GENERATOR_VERSION``: one ``.npy`` per column (what the Python tools load, exact
and fast) and ``data.csv`` (what R reads; the codes are written as their labels 1..K).
``load_cached(kind, **params)`` reads the ``.npy`` columns back into the same frame.

Run as a script to pre-build the cache:  python benchmarks/simulate.py KIND N [name=value ...]
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

# Bump when a simulator changes, so stale cached data are never reused.
GENERATOR_VERSION = 1

# True parameters of sim_slopes (a continuous outcome on an arbitrary scale).
SLOPES_BETA = (10.0, 2.0)          # intercept, slope of x
SLOPES_SD_G1 = (2.0, 0.5)          # SD of g1's random intercepts and slopes
SLOPES_CORR_G1 = 0.3               # their correlation
SLOPES_SD_G2 = 1.0                 # SD of g2's random intercepts
SLOPES_SIGMA = 3.0                 # residual SD

# True parameters of sim_crossed (ratings-like: a 1..5-ish scale, left continuous).
CROSSED_MU = 3.5
CROSSED_SD_U = 0.5                 # between users
CROSSED_SD_I = 0.8                 # between items
CROSSED_SIGMA = 1.0
CROSSED_USER_SKEW = 1.0            # lognormal sigma of user activity
CROSSED_ITEM_ZIPF = 0.8            # item popularity ~ rank^-0.8

# True parameters of sim_bernoulli (logit scale). The intercept is below 0 so that about a
# third of the rows are 1: a common, not a balanced, outcome.
BERNOULLI_BETA = (-0.8, 0.6)       # intercept, slope of x
BERNOULLI_SD_G1 = 0.8              # SD of g1's random intercepts
BERNOULLI_SD_G2 = 0.4              # SD of g2's random intercepts


def _codes_covering(rng: np.random.Generator, n: int, k: int, p: np.ndarray | None = None
                    ) -> np.ndarray:
    """int32 codes 0..k-1 of length n; every code occurs (the first k rows are 0..k-1)."""
    if n < k:
        raise ValueError(f"n = {n} rows cannot cover {k} levels")
    if p is None:
        codes = rng.integers(0, k, size=n, dtype=np.int32)
    else:
        codes = rng.choice(k, size=n, p=p).astype(np.int32)
    codes[:k] = np.arange(k, dtype=np.int32)
    return codes


def _factor(codes: np.ndarray, k: int) -> pd.Categorical:
    """A Categorical over labels 1..k (in that order) from 0-based int codes."""
    return pd.Categorical.from_codes(codes, categories=pd.RangeIndex(1, k + 1))


def _slopes_columns(n: int, n_g1: int, n_g2: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    g1 = _codes_covering(rng, n, n_g1)
    g2 = _codes_covering(rng, n, n_g2)
    x = rng.standard_normal(n)
    sd0, sd1 = SLOPES_SD_G1
    cov = np.array([[sd0**2, SLOPES_CORR_G1 * sd0 * sd1], [SLOPES_CORR_G1 * sd0 * sd1, sd1**2]])
    b1 = rng.standard_normal((n_g1, 2)) @ np.linalg.cholesky(cov).T
    b2 = SLOPES_SD_G2 * rng.standard_normal(n_g2)
    # y built in place: a few n-length float64 temporaries at most.
    y = rng.standard_normal(n)
    y *= SLOPES_SIGMA
    y += SLOPES_BETA[0]
    y += b1[g1, 0]
    slope = b1[g1, 1]
    slope += SLOPES_BETA[1]
    slope *= x
    y += slope
    del slope
    y += b2[g2]
    return {"y": y, "x": x, "g1": g1, "g2": g2}


def _crossed_columns(n: int, n_u: int, n_i: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0.0, CROSSED_USER_SKEW, n_u)
    popularity = np.arange(1, n_i + 1, dtype=float) ** -CROSSED_ITEM_ZIPF
    u = _codes_covering(rng, n, n_u, activity / activity.sum())
    i = _codes_covering(rng, n, n_i, popularity / popularity.sum())
    a = CROSSED_SD_U * rng.standard_normal(n_u)
    b = CROSSED_SD_I * rng.standard_normal(n_i)
    y = rng.standard_normal(n)
    y *= CROSSED_SIGMA
    y += CROSSED_MU
    y += a[u]
    y += b[i]
    return {"y": y, "u": u, "i": i}


def _bernoulli_columns(n: int, n_g1: int, n_g2: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    g1 = _codes_covering(rng, n, n_g1)
    g2 = _codes_covering(rng, n, n_g2)
    x = rng.standard_normal(n)
    b1 = BERNOULLI_SD_G1 * rng.standard_normal(n_g1)
    b2 = BERNOULLI_SD_G2 * rng.standard_normal(n_g2)
    # eta in place, then y = 1{U < plogis(eta)} written over it: two n-length float64 arrays
    # at most besides the columns.
    eta = x * BERNOULLI_BETA[1]
    eta += BERNOULLI_BETA[0]
    eta += b1[g1]
    eta += b2[g2]
    np.negative(eta, out=eta)
    np.exp(eta, out=eta)
    eta += 1.0
    np.reciprocal(eta, out=eta)           # now the success probabilities
    # y is float64 (not bool): every tool reads a numeric 0/1 response the same way, and R
    # reads it back as a double column.
    y = (rng.random(n) < eta).astype(np.float64)
    return {"y": y, "x": x, "g1": g1, "g2": g2}


def _frame(columns: dict[str, np.ndarray], levels: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame({name: (_factor(col, levels[name]) if name in levels else col)
                         for name, col in columns.items()}, copy=False)


def sim_slopes(n: int, n_g1: int = 1000, n_g2: int = 200, seed: int = 1) -> pd.DataFrame:
    """Simulated data for ``y ~ x + (x | g1) + (1 | g2)``.

    Columns: y, x (float64); g1, g2 (Categorical, labels 1..n_g1 and 1..n_g2). x ~ N(0, 1); g1
    and g2 are drawn independently and uniformly (so they are crossed). True values: fixed
    effects ``SLOPES_BETA``, g1 SDs ``SLOPES_SD_G1`` with correlation ``SLOPES_CORR_G1``, g2 SD
    ``SLOPES_SD_G2``, residual SD ``SLOPES_SIGMA``.
    """
    return _frame(_slopes_columns(n, n_g1, n_g2, seed), {"g1": n_g1, "g2": n_g2})


def sim_crossed(n: int = 2_000_000, n_u: int = 20_000, n_i: int = 2_000, seed: int = 2
                ) -> pd.DataFrame:
    """Simulated users x items data for ``y ~ 1 + (1 | u) + (1 | i)``.

    Columns: y (float64); u, i (Categorical, labels 1..n_u and 1..n_i). User activity is
    lognormal (``CROSSED_USER_SKEW``), item popularity Zipf-like (rank^-``CROSSED_ITEM_ZIPF``),
    so a few items and users carry many rows. True values: mean ``CROSSED_MU``, SDs
    ``CROSSED_SD_U``, ``CROSSED_SD_I``, residual ``CROSSED_SIGMA``.
    """
    return _frame(_crossed_columns(n, n_u, n_i, seed), {"u": n_u, "i": n_i})


def sim_bernoulli(n: int, n_g1: int = 1000, n_g2: int = 200, seed: int = 3) -> pd.DataFrame:
    """Simulated 0/1 data for the binomial GLMM ``y ~ x + (1 | g1) + (1 | g2)``.

    Columns: y (float64, 0 or 1), x (float64); g1, g2 (Categorical, labels 1..n_g1 and
    1..n_g2). x ~ N(0, 1); g1 and g2 drawn independently and uniformly (crossed);
    P(y = 1) = plogis(eta) with eta = ``BERNOULLI_BETA`` . (1, x) + b1[g1] + b2[g2], random
    intercepts with SDs ``BERNOULLI_SD_G1`` and ``BERNOULLI_SD_G2``.
    """
    return _frame(_bernoulli_columns(n, n_g1, n_g2, seed), {"g1": n_g1, "g2": n_g2})


# --- cache ----------------------------------------------------------------------------------

KINDS = {
    "slopes": (_slopes_columns, {"n": None, "n_g1": 1000, "n_g2": 200, "seed": 1},
               ("g1", "n_g1"), ("g2", "n_g2")),
    "crossed": (_crossed_columns, {"n": 2_000_000, "n_u": 20_000, "n_i": 2_000, "seed": 2},
                ("u", "n_u"), ("i", "n_i")),
    "bernoulli": (_bernoulli_columns, {"n": None, "n_g1": 1000, "n_g2": 200, "seed": 3},
                  ("g1", "n_g1"), ("g2", "n_g2")),
}


def cache_root() -> Path:
    """$MIXEDMODELS_BENCH_DATA, else <system temp>/mixedmodels-bench-data."""
    env = os.environ.get("MIXEDMODELS_BENCH_DATA")
    return Path(env) if env else Path(tempfile.gettempdir()) / "mixedmodels-bench-data"


def _params(kind: str, params: dict) -> dict:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {sorted(KINDS)}")
    full = dict(KINDS[kind][1])
    unknown = set(params) - set(full)
    if unknown:
        raise TypeError(f"unknown parameters for {kind}: {sorted(unknown)}")
    full.update(params)
    if full["n"] is None:
        raise TypeError("n is required")
    return {k: int(v) for k, v in full.items()}


def cache_path(kind: str, **params) -> Path:
    p = _params(kind, params)
    key = "-".join([kind] + [f"{k}{v}" for k, v in p.items()] + [f"v{GENERATOR_VERSION}"])
    return cache_root() / key


def _levels(kind: str, p: dict) -> dict[str, int]:
    return {col: p[param] for col, param in KINDS[kind][2:]}


def cached(kind: str, **params) -> Path:
    """Build (once) and return the cache directory of a simulated frame.

    It holds one ``<column>.npy`` per column (int32 0-based codes for the factors),
    ``data.csv`` (factors written as labels 1..K) and ``meta.json`` (parameters, the factor
    level counts, the column order, the bytes of the columns).
    """
    p = _params(kind, params)
    path = cache_path(kind, **p)
    if (path / "meta.json").exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=path.name + ".tmp-", dir=path.parent))
    try:
        columns = KINDS[kind][0](**p)
        levels = _levels(kind, p)
        for name, col in columns.items():
            np.save(tmp / f"{name}.npy", col)
        csv = pd.DataFrame({name: (col + 1 if name in levels else col)
                            for name, col in columns.items()}, copy=False)
        csv.to_csv(tmp / "data.csv", index=False)
        del csv
        meta = {"kind": kind, "params": p, "generator_version": GENERATOR_VERSION,
                "columns": list(columns), "levels": levels,
                "column_bytes": int(sum(col.nbytes for col in columns.values()))}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        tmp.chmod(0o755)   # mkdtemp makes it private; the cache is shared by design
        try:
            tmp.rename(path)
        except OSError:  # another process finished first: keep its copy
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_cached(kind: str, **params) -> pd.DataFrame:
    """The cached frame (built first if needed), read from its .npy columns."""
    path = cached(kind, **params)
    meta = json.loads((path / "meta.json").read_text())
    columns = {name: np.load(path / f"{name}.npy") for name in meta["columns"]}
    return _frame(columns, meta["levels"])


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[-1])
        return 2
    kind, params = argv[0], {"n": int(float(argv[1]))}
    for extra in argv[2:]:
        name, value = extra.split("=", 1)
        params[name] = int(float(value))
    print(cached(kind, **params))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
