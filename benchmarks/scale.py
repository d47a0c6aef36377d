"""Fits from Parquet through DuckDB (and Dask) at 1e6, 1e7 and 1e8 rows: time and peak memory.

    python benchmarks/scale.py                      # 1e6 and 1e7 (DuckDB), Dask at 1e7
    python benchmarks/scale.py --sizes 1e6,1e7,1e8  # the 1e8 case writes ~1.5 GB of Parquet
    python benchmarks/scale.py --write-md benchmarks/results/scale.md

Model: ``y ~ x + (x | g1) + (1 | g2)``, g1 with 10,000 levels and g2 with 1,000, crossed;
x ~ N(0, 1); fixed effects (10, 2); g1 SDs (2, 0.5) with correlation 0.3; g2 SD 1; residual
SD 3. Data are written once per size with a seed to ``--data-dir`` (default
/tmp/mixedmodels-scale), 1e6 rows per Parquet file. Each fit runs in a fresh process that
reports its own peak RSS (the DuckDB engine and the fit share the process). At sizes up to
``--compare-max`` rows the same fit runs in memory (pandas) for the objective's agreement,
and up to ``--lme4-max`` rows lme4 fits it too when ``Rscript`` with lme4 and data.table is
installed (R reads a CSV copy of the files; its fit time excludes reading, as pandas').
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FORMULA = "y ~ x + (x | g1) + (1 | g2)"
N_G1, N_G2 = 10_000, 1_000
FILE_ROWS = 1_000_000
SEED = 20260401


def write_data(n: int, root: Path) -> Path:
    """Parquet files of n simulated rows under root/n<rows>/ (skipped when present)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = root / f"n{n}"
    done = out / "_done"
    if done.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    cov = np.array([[4.0, 0.3 * 2 * 0.5], [0.3 * 2 * 0.5, 0.25]])
    b1 = rng.multivariate_normal([0, 0], cov, size=N_G1)
    b2 = rng.normal(0, 1.0, N_G2)
    for k, start in enumerate(range(0, n, FILE_ROWS)):
        m = min(FILE_ROWS, n - start)
        part = np.random.default_rng([SEED, k])
        g1 = part.integers(0, N_G1, m).astype(np.int32)
        g2 = part.integers(0, N_G2, m).astype(np.int32)
        x = part.normal(size=m)
        y = 10 + 2 * x + b1[g1, 0] + b1[g1, 1] * x + b2[g2] + part.normal(0, 3.0, m)
        pq.write_table(pa.table({"y": y, "x": x, "g1": g1, "g2": g2}),
                       out / f"part-{k:04d}.parquet")
    done.write_text("ok")
    return out


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(args: argparse.Namespace) -> dict:
    """One fit in this process; returns timings, results and peak RSS."""
    import warnings

    import mixedmodels as mm

    path = str(Path(args.path) / "*.parquet")
    before = _peak_rss_mb()
    out: dict = {"engine": args.engine, "n": args.n, "load_start": os.getloadavg()[0]}
    client = None
    t0 = time.perf_counter()
    if args.engine == "duckdb":
        source = path
    elif args.engine == "dask":
        import dask.dataframe as dd
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        source = dd.read_parquet(path)
    else:
        import pandas as pd

        source = pd.read_parquet(Path(args.path))
        out["load_s"] = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t1 = time.perf_counter()
        m = mm.lmer(FORMULA, source)
        out["fit_s"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        text = str(m.summary(ddf=None))
        out["summary_s"] = time.perf_counter() - t2
    out.update(getattr(m.info, "timings", {}))
    out.update(objective=m.objective, feval=m.optsum.feval, nobs=m.nobs,
               theta=list(map(float, m.theta)), beta=list(map(float, m.beta)),
               rss_before_mb=before, peak_rss_mb=_peak_rss_mb(), summary=text,
               load_end=os.getloadavg()[0])
    if client is not None:
        out["worker_peak_rss_mb"] = max(
            v for v in client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                  / 1024.0).values())
        client.close()
        cluster.close()
    return out


LME4_SCRIPT = r"""
suppressMessages({library(lme4); library(data.table)})
d <- fread("@CSV@")
d[, g1 := factor(g1)]
d[, g2 := factor(g2)]
t0 <- proc.time()[["elapsed"]]
m <- lmer(y ~ x + (x | g1) + (1 | g2), data = d, REML = TRUE)
fit_s <- proc.time()[["elapsed"]] - t0
hwm <- grep("^VmHWM:", readLines("/proc/self/status"), value = TRUE)
peak <- as.numeric(strsplit(trimws(sub("VmHWM:", "", hwm)), "[[:space:]]+")[[1]][1]) / 1024
cat(sprintf('{"fit_s": %.6f, "objective": %.10f, "feval": %d, "peak_rss_mb": %.1f, ',
            fit_s, REMLcrit(m), as.integer(m@optinfo$feval), peak),
    sprintf('"theta": [%s], "version": "%s"}\n',
            paste(sprintf("%.10g", getME(m, "theta")), collapse = ", "),
            as.character(packageVersion("lme4"))), sep = "")
"""


def lme4_available() -> bool:
    """Rscript with lme4 and data.table on this machine."""
    import shutil

    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(["Rscript", "-e", "cat(requireNamespace('lme4', quietly = TRUE) && "
                            "requireNamespace('data.table', quietly = TRUE))"],
                           capture_output=True, text=True)
    return probe.stdout.strip().endswith("TRUE")


def run_lme4(n: int, path: Path) -> dict:
    """lme4's fit of the same rows (from a CSV copy, written once) in an Rscript process."""
    import pandas as pd

    # beside the Parquet directory, not in it: readers of the directory take every file
    csv = path.parent / f"{path.name}_lme4.csv"
    if not csv.exists():
        pd.read_parquet(path).to_csv(csv, index=False)
    script = path.parent / f"{path.name}_lme4_fit.R"
    script.write_text(LME4_SCRIPT.replace("@CSV@", str(csv)))
    load = os.getloadavg()[0]
    done = subprocess.run(["Rscript", str(script)], capture_output=True, text=True)
    if done.returncode != 0:
        return {"engine": "lme4", "n": n, "error": done.stderr.strip().splitlines()[-1:]}
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out.update(engine="lme4", n=n, load_start=load, load_end=os.getloadavg()[0])
    return out


def run_child(engine: str, n: int, path: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", engine, "--n", str(n), "--path", str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        return {"engine": engine, "n": n, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _size(text: str) -> int:
    return int(float(text))


def report(rows: list[dict]) -> str:
    lines = [
        "# Fits from Parquet: time and peak memory",
        "",
        f"{time.strftime('%Y-%m-%d')} · {platform.processor() or platform.machine()} · "
        f"{os.cpu_count()} cores · Python {platform.python_version()} · "
        f"`{FORMULA}`, g1 {N_G1:,} x g2 {N_G2:,} levels · `benchmarks/scale.py`",
        "",
        "`fit` = `mm.lmer(formula, source)`: both passes over the files and the optimizer "
        "(for pandas: the design, the blocks and the optimizer; reading the files is not "
        "included); "
        "`summary` = `m.summary(ddf=None)` (its residual quantiles take a few more passes); "
        "`peak RSS` = the process's maximum resident memory (DuckDB runs inside it); for Dask "
        "also the largest worker's. `rel. diff` = objective against the in-memory fit (pandas) "
        "of the same files.",
        "",
        "`load` = the machine's 1-minute load average when the fit started and ended: other "
        "jobs share these 2 cores, and at a load of 6 a fit gets about a third of the CPU "
        "it would get alone. BLAS runs on one thread (the package's default).",
        "",
        "| engine | rows | pass 1 | pass 2 | optimizer | fit | summary | evals | objective | "
        "rel. diff | peak RSS | worker peak | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    memory = {r["n"]: r for r in rows if r["engine"] == "pandas" and "error" not in r}
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['engine']} | {r['n']:,} | failed: {r['error']} |"
                         + " |" * 10)
            continue
        ref = memory.get(r["n"])
        diff = (f"{abs(r['objective'] / ref['objective'] - 1):.1e}"
                if ref is not None and r is not ref else "")
        worker = f"{r['worker_peak_rss_mb']:,.0f} MB" if "worker_peak_rss_mb" in r else ""
        phases = " | ".join(f"{r[k]:.1f} s" if k in r else ""
                            for k in ("first_pass", "second_pass", "optimizer"))
        summary = f"{r['summary_s']:.1f} s" if "summary_s" in r else ""
        lines.append(f"| {r['engine']} | {r['n']:,} | {phases} | {r['fit_s']:.1f} s | "
                     f"{summary} | {r['feval']} | {r['objective']:.4f} | {diff} | "
                     f"{r['peak_rss_mb']:,.0f} MB | {worker} | "
                     f"{r.get('load_start', float('nan')):.1f} / "
                     f"{r.get('load_end', float('nan')):.1f} |")
    duck = {r["n"]: r for r in rows if r["engine"] == "duckdb" and "error" not in r}
    for r in rows:
        if r["engine"] == "lme4" and "error" not in r and r["n"] in duck:
            d = duck[r["n"]]
            lines.append("")
            lines.append(f"lme4 {r.get('version', '')} / mixedmodels from Parquet at "
                         f"{r['n']:,} rows, same run: fit time {r['fit_s'] / d['fit_s']:.1f}x, "
                         f"peak memory {r['peak_rss_mb'] / d['peak_rss_mb']:.1f}x (lme4's fit "
                         "time excludes reading its CSV; mixedmodels' includes both passes "
                         "over the files).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,1e7")
    parser.add_argument("--dask-sizes", default="1e7")
    parser.add_argument("--compare-max", default="1e7",
                        help="largest size also fitted in memory (pandas)")
    parser.add_argument("--lme4-max", default="1e6",
                        help="largest size also fitted by lme4 (when Rscript and lme4 exist)")
    parser.add_argument("--data-dir", default="/tmp/mixedmodels-scale")
    parser.add_argument("--engines", default="duckdb,dask,pandas,lme4",
                        help="which of duckdb, dask, pandas, lme4 to run (dask only at "
                             "--dask-sizes, pandas only up to --compare-max, lme4 up to "
                             "--lme4-max)")
    parser.add_argument("--write-md", metavar="FILE",
                        help="write the report there, and its rows next to it as JSON; rows of "
                             "an earlier run in that JSON are kept unless rerun")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.engine = args.child
        print(json.dumps(child(args)))
        return 0
    root = Path(args.data_dir)
    chosen = set(args.engines.split(","))
    rows = []
    dask_sizes = {_size(s) for s in args.dask_sizes.split(",") if s}
    for n in sorted(_size(s) for s in args.sizes.split(",")):
        t = time.perf_counter()
        path = write_data(n, root)
        print(f"data n={n:,}: {path} ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
        engines = ["duckdb"] + (["dask"] if n in dask_sizes else [])
        if n <= _size(args.compare_max):
            engines.append("pandas")
        if n <= _size(args.lme4_max) and "lme4" in chosen:
            if lme4_available():
                engines.append("lme4")
            else:
                print("lme4 skipped: no Rscript with lme4 and data.table", file=sys.stderr)
        for engine in (e for e in engines if e in chosen):
            row = run_lme4(n, path) if engine == "lme4" else run_child(engine, n, path)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "summary"}), file=sys.stderr)
    if args.write_md and Path(args.write_md).with_suffix(".json").exists():
        done = {(r["engine"], r["n"]) for r in rows}
        earlier = json.loads(Path(args.write_md).with_suffix(".json").read_text())
        rows = [r for r in earlier if (r["engine"], r["n"]) not in done] + rows
    order = {"duckdb": 0, "dask": 1, "pandas": 2, "lme4": 3}
    rows.sort(key=lambda r: (r["n"], order.get(r["engine"], 3)))
    text = report(rows)
    print(text)
    if args.write_md:
        Path(args.write_md).write_text(text)
        Path(args.write_md).with_suffix(".json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
