"""One objective evaluation of a model with AR(1) residuals costs the same at 1e4 and 1e6 rows.

``y ~ t + (1 | g)`` with ``correlation=mm.corAR1("~ t | g")`` on simulated data: 1000 groups
(the size of the random-effects block, which sets the cost of a factorization) measured at
10 or 1000 equally spaced times, so n = 1e4 or 1e6. The residual structure's pieces of
M'R^-1 M (all rows, interior rows, lag-1 pairs, ``docs/theory.md``) are built once; an
evaluation at new (theta, phi) combines them and refactors, without touching a row. For
contrast, the same evaluation with the pieces disabled (the sums over rows taken at every
evaluation, the layout a structure with too many classes gets) grows with n.

Run (about a minute on the 2-core box):
    python benchmarks/structured_ar1.py [--groups 1000] [--sizes 10,1000] [--evals 40]
Writes benchmarks/results/structured_ar1.md.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

import mixedmodels as mm
from mixedmodels.formula.bars import parse_formula
from mixedmodels.residual import crossprod as residual_crossprod
from mixedmodels.residual import residual_model

FORMULA = "y ~ t + (1 | g)"
RESULTS = Path(__file__).resolve().parent / "results" / "structured_ar1.md"


def simulate(n_groups: int, n_times: int, seed: int = 1, phi: float = 0.6) -> pd.DataFrame:
    """n_groups x n_times rows: a random intercept (SD 1) and AR(1) noise (SD 1, phi)."""
    rng = np.random.default_rng(seed)
    e = np.empty((n_groups, n_times))
    e[:, 0] = rng.normal(size=n_groups)
    for k in range(1, n_times):
        e[:, k] = phi * e[:, k - 1] + np.sqrt(1 - phi**2) * rng.normal(size=n_groups)
    g = np.repeat(np.arange(n_groups), n_times)
    t = np.tile(np.arange(n_times), n_groups)
    y = 1.0 + 0.01 * t + rng.normal(size=n_groups)[g] + e.ravel()
    return pd.DataFrame({"y": y, "t": t, "g": pd.Categorical(g)})


def time_evaluations(model, n_evals: int) -> float:
    """Median seconds of one objective evaluation at a new (theta, phi) each time."""
    rng = np.random.default_rng(0)
    times = []
    for _ in range(n_evals):
        params = np.array([rng.uniform(0.5, 1.5), rng.uniform(-0.5, 1.5)])
        start = time.perf_counter()
        model.objective(params)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(n_groups: int, sizes: list[int], n_evals: int) -> list[dict]:
    rows = []
    for n_times in sizes:
        data = simulate(n_groups, n_times)
        for layout in ("pieces", "rows"):
            saved = residual_crossprod.MAX_CLASSES
            if layout == "rows":
                residual_crossprod.MAX_CLASSES = 0
            try:
                start = time.perf_counter()
                _, model = residual_model(parse_formula(FORMULA), data, True, None,
                                          mm.corAR1("~ t | g"), None)
                build = time.perf_counter() - start
                per_eval = time_evaluations(model, n_evals if layout == "pieces" else 5)
            finally:
                residual_crossprod.MAX_CLASSES = saved
            rows.append({"n": len(data), "layout": layout, "build_s": build,
                         "eval_ms": 1e3 * per_eval})
            print(f"n = {len(data):>9,}  {layout:<6}  build {build:7.2f} s   one evaluation "
                  f"{1e3 * per_eval:8.2f} ms", flush=True)
    return rows


def report(rows: list[dict], n_groups: int) -> str:
    lines = [f"# One evaluation of `{FORMULA}` with corAR1(\"~ t | g\")", "",
             f"{n_groups} groups; median over repeated evaluations at new (theta, phi). "
             "`pieces`: the cross-products of the residual structure built once (the "
             "default); `rows`: the sums over rows taken at every evaluation.", "",
             "| n | layout | build (s) | one evaluation (ms) |", "|---:|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['n']:,} | {r['layout']} | {r['build_s']:.2f} | "
                     f"{r['eval_ms']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--sizes", default="10,1000",
                        help="times per group, comma-separated (n = groups x times)")
    parser.add_argument("--evals", type=int, default=40)
    args = parser.parse_args()
    rows = run(args.groups, [int(s) for s in args.sizes.split(",")], args.evals)
    text = report(rows, args.groups)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print("\n" + text)


if __name__ == "__main__":
    main()
