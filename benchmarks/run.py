"""Benchmark mixedmodels against lme4 (R) and the Python peers glmm and mixedlm.

    python benchmarks/run.py [--quick] [--cases a,b] [--tools a,b] [--repeats N]
                             [--out-dir benchmarks/results] [--timeout S] [--slow-timeout S]

Every (case, tool) pair runs in its own fresh process (this script re-invoked with --worker, or
a generated R script), which measures, separately: the import, loading the case's data, one
warm-up fit of sleepstudy (first-use imports, caches), then the timed whole fits of the case, and
for mixedmodels (and lme4, through devFunOnly) the time of one objective evaluation at the
optimum. The parent reads each child's peak memory from os.wait4 (the child's own rusage, the
per-process form of RUSAGE_CHILDREN); the child itself resets its peak-RSS counter
(/proc/self/clear_refs) just before the timed fits, so "peak RSS during fit" is the fits' own.

Outputs a markdown report on stdout and in <out-dir>/latest.md, and all raw numbers in
<out-dir>/latest.json (also kept as quick.* / full.* for a plain --quick / full run). See
benchmarks/README.md for what each column means.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import math
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import simulate  # noqa: E402  (benchmarks/simulate.py)

TOOLS = ("mixedmodels", "lme4", "glmm", "mixedlm")
PY_PEERS = ("glmm", "mixedlm")
WARMUP_FORMULA = "Reaction ~ Days + (Days | Subject)"
N_EVAL_CALLS = 20           # objective evaluations timed at the optimum (median reported)
EVAL_BUDGET_S = 30.0        # ... stop early (after at least 5) once they took this long
OBJ_ABS_TOL, OBJ_REL_TOL, FIXEF_REL_TOL = 1e-3, 1e-8, 1e-4


def bundled_data_dir() -> Path:
    path = REPO / "src" / "mixedmodels" / "datasets" / "data"
    if path.is_dir():
        return path
    import importlib.util  # an installed (non-editable) package: find it without importing it
    spec = importlib.util.find_spec("mixedmodels")
    return Path(spec.origin).parent / "datasets" / "data"


@dataclass
class Case:
    name: str
    formula: str          # lme4 syntax, the same string for every tool
    reml: bool
    source: str           # "bundled" or a simulate.KINDS key
    dataset: str = ""     # bundled dataset name
    params: dict = field(default_factory=dict)   # simulator parameters
    repeats: int = 3      # timed fits in a full run
    quick: int | None = 1  # timed fits with --quick (None: case skipped)
    slow: bool = False    # lme4 and the peers: one fit under --slow-timeout
    fixture: str = ""     # lme4 golden file (tests/fixtures/...) with the reference fit time



CASES = [
    Case("sleepstudy", "Reaction ~ Days + (Days|Subject)", True, "bundled", "sleepstudy",
         repeats=20, quick=5, fixture="lme4/sleepstudy_reml.json"),
    Case("penicillin", "diameter ~ 1 + (1|plate) + (1|sample)", True, "bundled", "Penicillin",
         repeats=20, quick=5, fixture="lme4/penicillin_crossed.json"),
    Case("insteval_ml", "y ~ 1 + service + (1|s) + (1|d) + (1|dept)", False, "bundled",
         "InstEval", repeats=3, quick=1, fixture="lme4/insteval_ml.json"),
    Case("insteval_reml", "y ~ service * dept + (1|s) + (1|d)", True, "bundled", "InstEval",
         repeats=3, quick=1, fixture="extra/insteval_reml_service_dept.json"),
    Case("slopes_1e5", "y ~ x + (x|g1) + (1|g2)", True, "slopes", params={"n": 100_000},
         repeats=3, quick=1),
    Case("slopes_1e6", "y ~ x + (x|g1) + (1|g2)", True, "slopes", params={"n": 1_000_000},
         repeats=1, quick=1),
    Case("slopes_1e7", "y ~ x + (x|g1) + (1|g2)", True, "slopes", params={"n": 10_000_000},
         repeats=1, quick=None, slow=True),
    Case("crossed_2e6", "y ~ 1 + (1|u) + (1|i)", True, "crossed",
         params={"n": 2_000_000, "n_u": 20_000, "n_i": 2_000}, repeats=1, quick=None),
]
CASE_BY_NAME = {c.name: c for c in CASES}


# --- data ---------------------------------------------------------------------------------

def load_bundled(name: str):
    """A bundled dataset as pandas, factors as Categoricals in R's level order."""
    import pandas as pd
    data_dir = bundled_data_dir()
    levels = json.loads((data_dir / "factor_levels.json").read_text()).get(name, {})
    frame = pd.read_csv(data_dir / f"{name}.csv.gz", dtype={c: str for c in levels},
                        keep_default_na=False, na_values=[""])
    for col, spec in levels.items():
        frame[col] = pd.Categorical(frame[col], categories=spec["levels"], ordered=spec["ordered"])
    return frame


def load_case(case: Case):
    if case.source == "bundled":
        return load_bundled(case.dataset)
    return simulate.load_cached(case.source, **case.params)


def frame_bytes(frame) -> int:
    return int(frame.memory_usage(index=False, deep=True).sum())


# --- worker: one tool, one case, in this (fresh) process ----------------------------------

def _proc_status_mb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _import_tool(tool: str):
    if tool == "mixedmodels":
        import mixedmodels
        return mixedmodels
    if tool == "glmm":
        import glmm
        return glmm
    if tool == "mixedlm":
        import mixedlm
        return mixedlm
    raise ValueError(tool)


def source_hash(package_dir: Path) -> str:
    """Short hash of a package's .py files (paths and contents): tells which version of the
    code a worker ran, since other people edit the core while benchmarks run."""
    import hashlib
    h = hashlib.sha1()
    for path in sorted(package_dir.rglob("*.py")):
        h.update(str(path.relative_to(package_dir)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:10]


def _fit(tool: str, mod, formula: str, data, reml: bool):
    if tool == "mixedmodels":
        return mod.lmer(formula, data, reml=reml)
    if tool == "glmm":
        # satterthwaite=False: lme4's lmer computes no denominator df either.
        return mod.fit(data, formula, reml=reml, satterthwaite=False)
    if tool == "mixedlm":
        return mod.lmer(formula, data, REML=reml)
    raise ValueError(tool)


def _floats(values) -> list[float]:
    return [float(v) for v in values]


def _glmm_theta(res) -> list[float]:
    """glmm reports covariance matrices (vech, column-major); theta = their Cholesky / sigma."""
    import numpy as np
    sigma2 = float(res.dispersion)
    theta = []
    for packed in res.varcorr:
        packed = np.asarray(packed, dtype=float)
        q = int(round((math.sqrt(8 * packed.size + 1) - 1) / 2))
        cov = np.zeros((q, q))
        cov[np.tril_indices(q)[::-1]] = packed   # column-major lower triangle
        cov = np.tril(cov) + np.tril(cov, -1).T
        try:
            chol = np.linalg.cholesky(cov / sigma2)
        except np.linalg.LinAlgError:
            chol = np.sqrt(np.maximum(np.diag(np.diag(cov)), 0) / sigma2)
        theta += [chol[i, j] for j in range(q) for i in range(j, q)]
    return theta


def _extract(tool: str, res, reml: bool) -> dict:
    if tool == "mixedmodels":
        return {"objective": float(res.objective), "theta": _floats(res.theta),
                "fixef": {str(k): float(v) for k, v in res.fixef.items()},
                "sigma": float(res.sigma), "feval": int(res.optsum.feval)}
    if tool == "glmm":
        return {"objective": -2.0 * float(res.loglik), "theta": _glmm_theta(res),
                "theta_note": "from glmm's varcorr, in glmm's grouping order",
                "fixef": {str(k): float(v) for k, v in zip(res.names, res.beta)},
                "sigma": math.sqrt(float(res.dispersion)), "feval": int(res.n_eval),
                "n_grad": int(res.n_grad), "converged": bool(res.converged)}
    if tool == "mixedlm":
        if reml:
            obj = res.REMLcrit() if callable(res.REMLcrit) else res.REMLcrit
        else:
            obj = res.deviance() if callable(res.deviance) else res.deviance
        sigma = res.sigma() if callable(res.sigma) else res.sigma
        return {"objective": float(obj), "theta": _floats(res.theta),
                "fixef": {str(k): float(v) for k, v in res.fixef().items()},
                "sigma": float(sigma), "feval": int(res.function_evals),
                "converged": bool(res.converged)}
    raise ValueError(tool)


def worker(spec: dict) -> int:
    tool, case = spec["tool"], CASE_BY_NAME[spec["case"]]
    out = Path(spec["out"])
    rec: dict = {"tool": tool, "case": case.name, "status": "running", "repeats": spec["repeats"]}

    def save():
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec, indent=1))
        os.replace(tmp, out)

    caught: list[str] = []
    try:
        t = time.perf_counter()
        mod = _import_tool(tool)
        rec["import_s"] = time.perf_counter() - t
        rec["version"] = getattr(mod, "__version__", None)
        if tool == "mixedmodels":
            rec["src_hash"] = source_hash(Path(mod.__file__).parent)
        t = time.perf_counter()
        data = load_case(case)
        rec["load_s"] = time.perf_counter() - t
        rec["n"] = len(data)
        rec["input_mb"] = frame_bytes(data) / 2**20
        warm = load_bundled("sleepstudy")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            _fit(tool, mod, WARMUP_FORMULA, warm, True)
            rec["warmup_s"] = time.perf_counter() - t
        del warm
        save()
        gc.collect()
        rec["rss_before_fit_mb"] = _proc_status_mb("VmRSS")
        rec["peak_reset"] = _reset_peak_rss()
        rec["fit_s"], rec["fit_cpu_s"] = [], []
        res = None
        with warnings.catch_warnings(record=True) as wlist:
            warnings.simplefilter("always")
            for _ in range(spec["repeats"]):
                res = None
                gc.collect()
                t, c = time.perf_counter(), time.process_time()
                res = _fit(tool, mod, case.formula, data, case.reml)
                rec["fit_s"].append(time.perf_counter() - t)
                rec["fit_cpu_s"].append(time.process_time() - c)
                rec["peak_fit_mb"] = _proc_status_mb("VmHWM")
                save()
            for w in wlist:
                msg = f"{w.category.__name__}: {w.message}"[:300]
                if msg not in caught:
                    caught.append(msg)
        rec["warnings"] = caught[:8]
        rec.update(_extract(tool, res, case.reml))
        save()
        if tool == "mixedmodels":
            import numpy as np
            theta = np.asarray(res.theta, dtype=float)
            evals, value = [], math.nan
            for k in range(N_EVAL_CALLS):
                t = time.perf_counter()
                value = res.model.objective(theta)
                evals.append(time.perf_counter() - t)
                if k >= 4 and sum(evals) > EVAL_BUDGET_S:
                    break
            rec["eval_s"] = evals
            rec["eval_objective"] = float(value)
        rec["status"] = "ok"
    except BaseException as exc:  # noqa: BLE001 - recorded, then re-raised for the log
        rec["status"] = "error"
        rec["error"] = f"{type(exc).__name__}: {exc}"[:500]
        traceback.print_exc()
    finally:
        rec["rusage_self_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        save()
    return 0 if rec["status"] == "ok" else 1


# --- R ---------------------------------------------------------------------------------------

R_PROBE = r'''
suppressMessages(library(lme4))
cat(R.version.string, "\n", as.character(packageVersion("lme4")), "\n",
    as.character(packageVersion("Matrix")), "\n", extSoftVersion()[["BLAS"]], "\n",
    La_library(), "\n", requireNamespace("data.table", quietly = TRUE), "\n", sep = "")
'''

R_TEMPLATE = r'''
# Generated by benchmarks/run.py: lme4 on case @CASE@. Rerun with: Rscript <this file>
.t0 <- proc.time()[["elapsed"]]
suppressMessages(library(lme4))
.import_s <- proc.time()[["elapsed"]] - .t0
out_path <- "@OUT@"
.jstr <- function(s) paste0('"', gsub('"', '\\"', gsub("\\", "\\\\", s, fixed = TRUE), fixed = TRUE), '"')
.json <- function(x) {
  if (is.null(x)) return("null")
  if (is.list(x)) {
    items <- vapply(x, .json, "")
    if (!is.null(names(x))) return(paste0("{", paste0(.jstr(names(x)), ":", items, collapse = ","), "}"))
    return(paste0("[", paste(items, collapse = ","), "]"))
  }
  if (length(x) == 0) return(if (is.null(names(x))) "[]" else "{}")
  if (is.character(x)) v <- .jstr(x)
  else if (is.logical(x)) v <- ifelse(is.na(x), "null", ifelse(x, "true", "false"))
  else v <- ifelse(is.finite(x), sprintf("%.17g", as.numeric(x)), "null")
  if (!is.null(names(x))) return(paste0("{", paste0(.jstr(names(x)), ":", v, collapse = ","), "}"))
  if (length(x) == 1 && !inherits(x, "AsIs")) return(v)
  paste0("[", paste(v, collapse = ","), "]")
}
.save <- function() { tmp <- paste0(out_path, ".tmp"); writeLines(.json(rec), tmp); invisible(file.rename(tmp, out_path)) }
.status_mb <- function(key) {
  l <- grep(paste0("^", key, ":"), readLines("/proc/self/status"), value = TRUE)
  if (length(l) == 0) return(NULL)
  as.numeric(strsplit(trimws(sub(paste0(key, ":"), "", l)), "[[:space:]]+")[[1]][1]) / 1024
}
.reset_peak <- function() tryCatch({ cat("5", file = "/proc/self/clear_refs"); TRUE }, error = function(e) FALSE)
.now <- function() proc.time()[["elapsed"]]
rec <- list(tool = "lme4", case = "@CASE@", status = "running", repeats = @REPEATS@,
            import_s = .import_s, version = as.character(packageVersion("lme4")))
.save()
.fit_formula <- @FORMULA@
.reml <- @REML@
tryCatch({
  .t <- .now()
@LOAD@
  rec$load_s <- .now() - .t
  rec$n <- nrow(d)
  rec$input_mb <- as.numeric(object.size(d)) / 2^20
  .t <- .now()
  invisible(lmer(Reaction ~ Days + (Days | Subject), sleepstudy))
  rec$warmup_s <- .now() - .t
  .save()
  invisible(gc())
  rec$rss_before_fit_mb <- .status_mb("VmRSS")
  rec$peak_reset <- .reset_peak()
  .times <- c(); .cpu <- c(); .warn <- character(0)
  for (k in seq_len(@REPEATS@)) {
    m <- NULL
    st <- withCallingHandlers(
      system.time(m <- lmer(.fit_formula, data = d, REML = .reml), gcFirst = TRUE),
      warning = function(w) { .warn <<- unique(c(.warn, conditionMessage(w))); invokeRestart("muffleWarning") },
      message = function(w) { .warn <<- unique(c(.warn, trimws(conditionMessage(w)))); invokeRestart("muffleMessage") })
    .times <- c(.times, st[["elapsed"]]); .cpu <- c(.cpu, st[["user.self"]] + st[["sys.self"]])
    rec$fit_s <- I(.times); rec$fit_cpu_s <- I(.cpu); rec$peak_fit_mb <- .status_mb("VmHWM")
    .save()
  }
  rec$warnings <- I(c(.warn, m@optinfo$conv$lme4$messages))
  rec$objective <- if (.reml) REMLcrit(m) else deviance(m)
  rec$theta <- I(unname(getME(m, "theta")))
  rec$fixef <- as.list(fixef(m))
  rec$sigma <- sigma(m)
  rec$feval <- m@optinfo$feval
  .save()
  devf <- lmer(.fit_formula, data = d, REML = .reml, devFunOnly = TRUE)
  th <- getME(m, "theta"); .ev <- c()
  # proc.time() ticks in milliseconds: time batches of b calls, b chosen so a batch takes
  # at least 20 ms (doubling), and record the time per call.
  .b <- 1L
  repeat {
    .t <- .now(); for (j in seq_len(.b)) v <- devf(th)
    if (.now() - .t >= 0.02 || .b >= 2^20) break
    .b <- 2L * .b
  }
  for (k in seq_len(@NEVAL@)) {
    .t <- .now(); for (j in seq_len(.b)) v <- devf(th); .ev <- c(.ev, (.now() - .t) / .b)
    if (k >= 5 && sum(.ev) * .b > @EVALBUDGET@) break
  }
  rec$eval_s <- I(.ev); rec$eval_batch <- .b; rec$eval_objective <- v
  rec$status <- "ok"
}, error = function(e) { rec$status <<- "error"; rec$error <<- substr(conditionMessage(e), 1, 500) })
.save()
'''


def _r_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _r_load_code(case: Case, has_data_table: bool) -> str:
    if case.source == "bundled":
        data_dir = bundled_data_dir()
        levels = json.loads((data_dir / "factor_levels.json").read_text()).get(case.dataset, {})
        classes = ", ".join(f"{_r_str(c)} = \"character\"" for c in levels)
        lines = [f"  d <- read.csv(gzfile({_r_str(str(data_dir / (case.dataset + '.csv.gz')))}), "
                 f"colClasses = c({classes}), na.strings = \"\", check.names = FALSE)"]
        for col, spec in levels.items():
            lv = ", ".join(_r_str(v) for v in spec["levels"])
            lines.append(f"  d[[{_r_str(col)}]] <- factor(d[[{_r_str(col)}]], levels = c({lv}), "
                         f"ordered = {'TRUE' if spec['ordered'] else 'FALSE'})")
        return "\n".join(lines)
    path = simulate.cached(case.source, **case.params)
    meta = json.loads((path / "meta.json").read_text())
    classes = ", ".join(f"{c} = \"{'integer' if c in meta['levels'] else 'double'}\""
                        for c in meta["columns"])
    csv = _r_str(str(path / "data.csv"))
    if has_data_table:
        lines = [f"  d <- data.table::fread({csv}, colClasses = c({classes}), showProgress = FALSE)",
                 "  data.table::setDF(d)"]
    else:
        lines = [f"  d <- read.csv({csv}, colClasses = c({classes}))"]
    # The CSV holds the labels 1..K themselves, so the integer column is already the factor's
    # codes: make it a factor with levels "1".."K" in that order without re-hashing n strings.
    for col, k in meta["levels"].items():
        lines.append(f"  stopifnot(min(d${col}) >= 1L, max(d${col}) <= {k}L)")
        lines.append(f"  d${col} <- structure(d${col}, levels = as.character(seq_len({k}L)), "
                     f"class = \"factor\")")
    return "\n".join(lines)


def r_script(case: Case, repeats: int, out: Path, has_data_table: bool) -> str:
    subs = {"@CASE@": case.name, "@OUT@": str(out), "@REPEATS@": str(repeats),
            "@FORMULA@": case.formula,
            "@REML@": "TRUE" if case.reml else "FALSE",
            "@NEVAL@": str(N_EVAL_CALLS), "@EVALBUDGET@": str(EVAL_BUDGET_S),
            "@LOAD@": _r_load_code(case, has_data_table)}
    text = R_TEMPLATE
    for key, value in subs.items():
        text = text.replace(key, value)
    return text


def probe_r() -> dict:
    rscript = shutil.which("Rscript")
    if not rscript:
        return {"available": False, "reason": "Rscript not found"}
    try:
        proc = subprocess.run([rscript, "-e", R_PROBE], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"available": False, "reason": f"Rscript failed: {exc}"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or len(lines) < 6:
        return {"available": False, "reason": "library(lme4) did not load: "
                + (proc.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return {"available": True, "rscript": rscript, "R": lines[0], "lme4": lines[1],
            "Matrix": lines[2], "BLAS": lines[3], "LAPACK": lines[4],
            "data.table": lines[5].strip() == "TRUE"}


# --- running children ---------------------------------------------------------------------

def _cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            parts = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)   # idle + iowait
    return sum(parts) - idle, sum(parts)


def run_child(cmd: list[str], log: Path, timeout: float) -> dict:
    """Run cmd in its own session; return wall time, exit status, peak RSS, timeout flag, and
    the background load: cores kept busy by other processes while it ran (machine busy CPU time
    from /proc/stat minus the child's own user + system time, per second of wall time)."""
    ticks0 = _cpu_ticks()
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=str(REPO))
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > timeout:
                timed_out = True
                try:
                    os.killpg(proc.pid, signal.SIGKILL)   # the child's own session only
                except ProcessLookupError:
                    pass
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.1)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    ticks1 = _cpu_ticks()
    background = None
    if ticks0 and ticks1 and wall > 0:
        hz = os.sysconf("SC_CLK_TCK")
        busy_s = (ticks1[0] - ticks0[0]) / hz
        background = max(0.0, (busy_s - usage.ru_utime - usage.ru_stime) / wall)
    return {"wall_s": wall, "exit": proc.returncode, "timed_out": timed_out,
            "process_peak_mb": usage.ru_maxrss / 1024, "child_cpu_s": usage.ru_utime + usage.ru_stime,
            "background_cores": background}


def tool_available(tool: str, rinfo: dict) -> tuple[bool, str]:
    if tool == "lme4":
        return (True, "") if rinfo.get("available") else (False, rinfo.get("reason", ""))
    import importlib.util
    if importlib.util.find_spec(tool) is None:
        return False, f"python package {tool!r} not importable"
    return True, ""


def run_one(case: Case, tool: str, repeats: int, timeout: float, work: Path, rinfo: dict) -> dict:
    out = work / f"{case.name}.{tool}.json"
    log = work / f"{case.name}.{tool}.log"
    out.unlink(missing_ok=True)
    if tool == "lme4":
        script = work / f"{case.name}.lme4.R"
        script.write_text(r_script(case, repeats, out, rinfo.get("data.table", False)))
        cmd = [rinfo["rscript"], str(script)]
    else:
        spec = {"tool": tool, "case": case.name, "repeats": repeats, "out": str(out)}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    child = run_child(cmd, log, timeout)
    try:
        rec = json.loads(out.read_text())
    except (OSError, ValueError):
        rec = {"tool": tool, "case": case.name, "status": "error",
               "error": f"no result written (exit {child['exit']}); see {log}"}
    rec.update(child)
    rec["timeout_s"] = timeout
    if child["timed_out"]:
        done = len(rec.get("fit_s") or [])
        rec["status"] = "timeout"
        rec["error"] = f"timed out after {timeout:.0f} s ({done} of {repeats} fits done)"
    elif rec.get("status") == "running":
        rec["status"] = "error"
        rec["error"] = f"child exited {child['exit']} before finishing; see {log}"
    rec["log"] = str(log)
    return rec


# --- agreement ----------------------------------------------------------------------------

def _fixture(case: Case) -> dict | None:
    if not case.fixture:
        return None
    path = REPO / "tests" / "fixtures" / case.fixture
    if not path.exists():
        return None
    fx = json.loads(path.read_text())
    obj = fx.get("REMLcrit") if case.reml else fx.get("deviance")
    if obj is None and isinstance(fx.get("logLik"), dict):
        obj = -2.0 * fx["logLik"]["value"]
    fit_time = fx.get("fit_time_s") or {}
    return {"objective": obj, "fixef": fx.get("fixef") or {}, "file": case.fixture,
            "fit_time_s": fit_time.get("median") if isinstance(fit_time, dict) else fit_time,
            "feval": (fx.get("optinfo") or {}).get("feval")}


def compare(rec: dict, ref: dict) -> dict:
    """ok when objective within 1e-3 absolute (or 1e-8 relative) and every fixef within 1e-4
    relative (coefficients below 1/1000 of the largest are judged against that floor)."""
    a, b = rec.get("objective"), ref.get("objective")
    if a is None or b is None or not math.isfinite(a):
        return {"agree": "n/a", "why": "no objective"}
    d_obj = abs(a - b)
    obj_ok = d_obj <= OBJ_ABS_TOL or d_obj <= OBJ_REL_TOL * abs(b)
    fa, fb = rec.get("fixef") or {}, ref.get("fixef") or {}
    how = "by name"
    if set(fa) == set(fb):
        pairs = [(fa[k], fb[k]) for k in fb]
    elif len(fa) == len(fb):
        pairs, how = list(zip(fa.values(), fb.values())), "by position (names differ)"
    else:
        return {"agree": "MISMATCH", "objective_diff": a - b,
                "why": f"{len(fa)} fixed effects vs {len(fb)}"}
    floor = 1e-3 * max((abs(v) for _, v in pairs), default=0.0)
    rel = max((abs(x - y) / max(abs(y), floor, 1e-300) for x, y in pairs), default=0.0)
    ok = obj_ok and rel <= FIXEF_REL_TOL
    return {"agree": "ok" if ok else "MISMATCH", "objective_diff": a - b,
            "fixef_max_rel_diff": rel, "fixef_matched": how}


# --- machine info -------------------------------------------------------------------------

def machine_info(rinfo: dict) -> dict:
    info: dict = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                  "platform": platform.platform(), "python": platform.python_version()}
    try:
        cpu = [ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
               if ln.startswith("model name")]
        info["cpu"] = cpu[0] if cpu else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    info["cores"] = os.cpu_count()
    info["cores_usable"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    try:
        mem = {ln.split(":")[0]: ln.split()[1] for ln in open("/proc/meminfo")}
        info["memory_gb"] = round(int(mem["MemTotal"]) / 2**20, 1)
    except (OSError, KeyError):
        pass
    info["loadavg_start"] = list(os.getloadavg())
    import numpy
    import pandas
    import scipy
    info.update(numpy=numpy.__version__, scipy=scipy.__version__, pandas=pandas.__version__)
    try:
        cfg = numpy.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info["numpy_blas"] = " ".join(str(blas.get(k, "")) for k in ("name", "version")).strip()
        info["numpy_blas_config"] = blas.get("openblas configuration", "")
    except Exception as exc:  # noqa: BLE001 - older numpy: no mode="dicts"
        info["numpy_blas"] = f"unknown ({exc})"
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var):
            info[var] = os.environ[var]
    try:
        info["mixedmodels_commit"] = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
            text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "--no-optional-locks", "-C", str(REPO), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        info["mixedmodels_src_modified"] = bool(dirty)
    except (OSError, subprocess.TimeoutExpired):
        pass
    if rinfo.get("available"):
        info.update({"R": rinfo["R"], "lme4": rinfo["lme4"], "Matrix": rinfo["Matrix"],
                     "R_BLAS": rinfo["BLAS"], "R_LAPACK": rinfo["LAPACK"]})
    for peer in PY_PEERS:
        try:
            from importlib.metadata import version
            info[peer] = version(peer)
        except Exception:  # noqa: BLE001
            info[peer] = None
    return info


# --- report -------------------------------------------------------------------------------

def _med(xs) -> float | None:
    xs = [x for x in (xs or []) if x is not None]
    return statistics.median(xs) if xs else None


def _fmt_s(x) -> str:
    if x is None:
        return "–"
    if x < 0.01:
        return f"{x * 1000:.2f} ms"
    if x < 1:
        return f"{x * 1000:.0f} ms"
    if x < 100:
        return f"{x:.2f} s"
    return f"{x:.0f} s"


def _fmt_mb(x) -> str:
    return "–" if x is None else (f"{x / 1024:.2f} GB" if x >= 1024 else f"{x:.0f} MB")


def _fmt_load(x) -> str:
    return "–" if x is None else f"{x:.1f}"


def _fmt_obj(x) -> str:
    return "–" if x is None else f"{x:.4f}"


def report(results: list[dict], info: dict, settings: dict, rinfo: dict) -> str:
    by_case: dict[str, dict[str, dict]] = {}
    for r in results:
        by_case.setdefault(r["case"], {})[r["tool"]] = r
    L = [f"# mixedmodels benchmarks ({'quick' if settings['quick'] else 'full'} run)", ""]
    L.append(f"{info['date']} · {info.get('cpu')} · {info.get('cores')} cores · "
             f"{info.get('memory_gb')} GB · Python {info['python']} · numpy {info['numpy']} "
             f"({info.get('numpy_blas')}) · scipy {info['scipy']} · pandas {info['pandas']}")
    if rinfo.get("available"):
        L.append(f"{info['R']} · lme4 {info['lme4']} · Matrix {info['Matrix']} · "
                 f"R BLAS {info['R_BLAS']}")
    peers = ", ".join(f"{p} {info[p]}" for p in PY_PEERS if info.get(p))
    L.append(f"peers: {peers or 'none'} · mixedmodels {info.get('mixedmodels_commit', '?')}"
             f"{' (src modified)' if info.get('mixedmodels_src_modified') else ''} · "
             f"load average at start {', '.join(f'{x:.1f}' for x in info['loadavg_start'])}")
    hashes = {}
    for r in results:
        if r.get("src_hash"):
            hashes.setdefault(r["src_hash"], []).append(r["case"])
    if len(hashes) > 1:
        L.append("")
        L.append(f"**Warning: the mixedmodels source changed during this run** ({len(hashes)} "
                 "versions; cases on each: " + "; ".join(f"`{h}`: {', '.join(c)}"
                                                          for h, c in hashes.items())
                 + "). Its rows are not one version's numbers: rerun the affected cases.")
    elif hashes:
        L.append(f"mixedmodels source hash `{next(iter(hashes))}` in every case of this run.")
    L.append("")
    L.append("Wall times are medians over the repeats (each a whole fit from the data frame); "
             "`fit CPU` = median CPU time of a fit (user + system, all threads); "
             "`÷ mm` = that tool's median / mixedmodels' (above 1: mixedmodels is faster). "
             "`1 eval` = one objective evaluation at the optimum (median). `bg load` = cores kept "
             "busy by other processes meanwhile (of " + str(info.get("cores")) + "). `agree` = objective and "
             "fixed effects against the reference row (lme4, else the lme4 golden file, else "
             "mixedmodels, else the first tool with a result).")
    L.append("")
    L.append("| case | n | tool | fits | median fit | ÷ mm | fit CPU | feval | objective | "
             "1 eval | data load | peak RSS in fit | bg load | agree |")
    L.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    notes = []
    for case_name, tools in by_case.items():
        mm_t = _med((tools.get("mixedmodels") or {}).get("fit_s")) \
            if (tools.get("mixedmodels") or {}).get("status") == "ok" else None
        for tool in TOOLS:
            r = tools.get(tool)
            if r is None:
                continue
            n = r.get("n")
            n_txt = f"{n:,}" if n else "–"
            fits = r.get("fit_s") or []
            if r["status"] in ("skipped", "error", "timeout") and not (r["status"] == "timeout"
                                                                       and fits):
                why = r.get("error") or r.get("reason") or ""
                L.append(f"| {case_name} | {n_txt} | {tool} | – | {r['status']} | | | | | | | | | "
                         f"{'n/a' if r['status'] == 'skipped' else r['status']} |")
                if not (tool == "lme4" and not rinfo.get("available")):  # said once, below
                    notes.append(f"{case_name} / {tool}: {r['status']}: {why}")
                continue
            t = _med(fits)
            ratio = f"{t / mm_t:.2g}" if (t and mm_t and tool != "mixedmodels") else ""
            feval = r.get("feval")
            feval_txt = "–" if feval is None else str(feval)
            if r.get("n_grad"):
                feval_txt += f" (+{r['n_grad']} grad)"
            agree = r.get("agreement", {}).get("agree", "")
            status = "" if r["status"] == "ok" else f" ({r['status']})"
            L.append(f"| {case_name} | {n_txt} | {tool} | {len(fits)} | {_fmt_s(t)}{status} | "
                     f"{ratio} | {_fmt_s(_med(r.get('fit_cpu_s')))} | {feval_txt} | {_fmt_obj(r.get('objective'))} | "
                     f"{_fmt_s(_med(r.get('eval_s')))} | {_fmt_s(r.get('load_s'))} | "
                     f"{_fmt_mb(r.get('peak_fit_mb'))} | {_fmt_load(r.get('background_cores'))} | "
                     f"{agree} |")
            if r["status"] == "timeout":
                notes.append(f"{case_name} / {tool}: {r.get('error')}")
            if agree == "MISMATCH":
                a = r["agreement"]
                notes.append(f"{case_name} / {tool}: MISMATCH vs {a.get('reference')}: objective "
                             f"diff {a.get('objective_diff', float('nan')):+.3g}, fixef max rel "
                             f"diff {a.get('fixef_max_rel_diff', float('nan')):.2g}"
                             f"{' ' + a['why'] if a.get('why') else ''}")
    for r in results:
        for w in list(dict.fromkeys(r.get("warnings") or []))[:2]:
            notes.append(f"{r['case']} / {r['tool']} warned: {w[:160]}")
        if r.get("note"):
            notes.append(f"{r['case']} / {r['tool']}: {r['note']}")
    for case_name, tools in by_case.items():
        objs = {t: r["objective"] for t, r in tools.items() if r.get("objective") is not None}
        ref = next((r for r in tools.values() if r.get("agreement", {}).get("agree") == "ref"), None)
        if ref and objs:
            best = min(objs, key=objs.get)
            gap = ref["objective"] - objs[best]
            if best != ref["tool"] and gap > OBJ_ABS_TOL / 10:
                notes.append(f"{case_name}: lowest objective from {best}, {gap:.3g} below the "
                             f"reference ({ref['tool']})")
    L.append("")

    # Per-evaluation scaling.
    L.append("## One objective evaluation vs n")
    L.append("")
    mm_eval = {c: _med(t["mixedmodels"].get("eval_s")) for c, t in by_case.items()
               if c.startswith("slopes_") and "mixedmodels" in t}
    r_eval = {c: _med(t["lme4"].get("eval_s")) for c, t in by_case.items()
              if c.startswith("slopes_") and "lme4" in t}
    base = mm_eval.get("slopes_1e5")
    for big in ("slopes_1e6", "slopes_1e7"):
        if base and mm_eval.get(big):
            L.append(f"- mixedmodels, `y ~ x + (x|g1) + (1|g2)`: one evaluation at n = "
                     f"{big[-3:]} / at n = 1e5 = **{mm_eval[big] / base:.2f}** "
                     f"({_fmt_s(mm_eval[big])} vs {_fmt_s(base)}; design claim: about 1, the "
                     f"evaluation works on cross-products only)")
            if r_eval.get(big) and r_eval.get("slopes_1e5"):
                L.append(f"- lme4 (devFunOnly) for contrast: {r_eval[big] / r_eval['slopes_1e5']:.2f}"
                         f" ({_fmt_s(r_eval[big])} vs {_fmt_s(r_eval['slopes_1e5'])})")
    if not base or not any(mm_eval.get(b) for b in ("slopes_1e6", "slopes_1e7")):
        L.append("- not available in this run (needs slopes_1e5 and slopes_1e6/1e7)")
    elif not mm_eval.get("slopes_1e7"):
        L.append("- n = 1e7 not run (--quick or --cases); the ratio above is for 1e6")
    L.append("")

    # Memory of the big cases.
    big = [c for c in by_case if not CASE_BY_NAME[c].source == "bundled"]
    if big:
        L.append("## Memory (simulated cases)")
        L.append("")
        L.append("| case | tool | input columns | RSS before fit | peak RSS in fit | fit's extra "
                 "| extra ÷ input | process peak |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|")
        for c in big:
            for tool in TOOLS:
                r = by_case[c].get(tool)
                if not r or not r.get("peak_fit_mb"):
                    continue
                inp, before, peak = r.get("input_mb"), r.get("rss_before_fit_mb"), r["peak_fit_mb"]
                extra = peak - before if before is not None else None
                ratio = f"{extra / inp:.1f}" if (extra is not None and inp) else "–"
                L.append(f"| {c} | {tool} | {_fmt_mb(inp)} | {_fmt_mb(before)} | {_fmt_mb(peak)} "
                         f"| {_fmt_mb(extra)} | {ratio} | {_fmt_mb(r.get('process_peak_mb'))} |")
        L.append("")

    # Setup costs.
    L.append("## Import and warm-up (medians over this run's processes)")
    L.append("")
    L.append("| tool | import | first fit (sleepstudy warm-up) |")
    L.append("|---|---:|---:|")
    for tool in TOOLS:
        rs = [r for r in results if r["tool"] == tool and r.get("import_s") is not None]
        if rs:
            L.append(f"| {tool} | {_fmt_s(_med([r['import_s'] for r in rs]))} | "
                     f"{_fmt_s(_med([r.get('warmup_s') for r in rs]))} |")
    L.append("")

    # lme4 timing sanity against the golden files.
    sanity = []
    for c, tools in by_case.items():
        fx = _fixture(CASE_BY_NAME[c])
        r = tools.get("lme4")
        if fx and fx.get("fit_time_s") and r and r.get("fit_s"):
            here = _med(r["fit_s"])
            flag = "" if 1 / 3 <= here / fx["fit_time_s"] <= 3 else " **check**"
            sanity.append(f"- {c}: lme4 here {_fmt_s(here)} (CPU {_fmt_s(_med(r.get('fit_cpu_s')))}), "
                          f"golden file {_fmt_s(fx['fit_time_s'])} "
                          f"(×{here / fx['fit_time_s']:.2f}){flag}; feval here {r.get('feval')}, "
                          f"golden {fx.get('feval')}")
    if sanity:
        L.append("## lme4 timings vs the golden files (tests/fixtures, same R/lme4, reference BLAS)")
        L.append("")
        L += sanity
        L.append("")
    if "lme4" in settings.get("tools", TOOLS) and not rinfo.get("available"):
        notes.insert(0, "lme4: skipped (Rscript/lme4 not found)")
    if notes:
        L.append("## Notes")
        L.append("")
        L += [f"- {n}" for n in notes]
        L.append("")
    L.append(f"Total wall time of this run: {settings['total_s'] / 60:.1f} min "
             f"(load average at end {', '.join(f'{x:.1f}' for x in info.get('loadavg_end', []))}).")
    return "\n".join(L) + "\n"


# --- README ---------------------------------------------------------------------------------

README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"


def update_readme(out_dir: Path, readme: Path = HERE / "README.md") -> None:
    """Replace the README's results section with <out-dir>/full.md and quick.md."""
    parts = []
    for kind in ("full", "quick"):
        path = out_dir / f"{kind}.md"
        if path.exists():
            body = path.read_text().strip().splitlines()
            title = body[0].lstrip("# ").strip()
            body = [("###" + ln[1:] if ln.startswith("## ") else ln) for ln in body[1:]]
            parts.append(f"## Latest {kind} run: {title}\n" + "\n".join(body))
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise SystemExit(f"{readme} has no {README_BEGIN} ... {README_END} section")
    head, rest = text.split(README_BEGIN, 1)
    tail = rest.split(README_END, 1)[1]
    readme.write_text(head + README_BEGIN + "\n\n" + "\n\n".join(parts) + "\n\n" + README_END
                      + tail)


# --- main -------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer repeats; skip slopes_1e7 and crossed_2e6")
    ap.add_argument("--cases", help="comma-separated case names: " + ",".join(CASE_BY_NAME))
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated: " + ",".join(TOOLS))
    ap.add_argument("--repeats", type=int, help="timed fits per case (overrides the defaults)")
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    ap.add_argument("--timeout", type=float, default=3600.0,
                    help="seconds allowed to one (case, tool) process (default 3600)")
    ap.add_argument("--slow-timeout", type=float, default=360.0,
                    help="seconds allowed to lme4 and the peers on the n = 1e7 case, where they "
                         "get one fit (default 360)")
    ap.add_argument("--update-readme", action="store_true",
                    help="only copy <out-dir>/full.md and quick.md into benchmarks/README.md")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))
    if args.update_readme:
        update_readme(Path(args.out_dir))
        return 0

    t_start = time.perf_counter()
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    bad = [t for t in tools if t not in TOOLS]
    if bad:
        ap.error(f"unknown tools {bad}; choose from {TOOLS}")
    if args.cases:
        names = [c.strip() for c in args.cases.split(",") if c.strip()]
        bad = [c for c in names if c not in CASE_BY_NAME]
        if bad:
            ap.error(f"unknown cases {bad}; choose from {list(CASE_BY_NAME)}")
        cases = [CASE_BY_NAME[c] for c in names]
    else:
        cases = [c for c in CASES if not (args.quick and c.quick is None)]
    out_dir = Path(args.out_dir)
    work = out_dir / "logs"
    work.mkdir(parents=True, exist_ok=True)

    rinfo = probe_r() if "lme4" in tools else {"available": False, "reason": "not requested"}
    if "lme4" in tools and not rinfo["available"]:
        print(f"lme4: skipped (Rscript/lme4 not found): {rinfo['reason']}", file=sys.stderr)
    info = machine_info(rinfo)
    available = {t: tool_available(t, rinfo) for t in tools}
    settings = {"quick": args.quick, "tools": tools, "cases": [c.name for c in cases],
                "timeout_s": args.timeout, "slow_timeout_s": args.slow_timeout,
                "repeats_override": args.repeats, "data_cache": str(simulate.cache_root())}

    results, data_prep = [], {}
    for case in cases:
        if case.source != "bundled":
            t = time.perf_counter()
            fresh = not (simulate.cache_path(case.source, **case.params) / "meta.json").exists()
            path = simulate.cached(case.source, **case.params)
            data_prep[case.name] = {"path": str(path), "built_now": fresh,
                                    "seconds": time.perf_counter() - t}
            print(f"[data] {case.name}: {'simulated + written' if fresh else 'cached'} "
                  f"({time.perf_counter() - t:.1f} s) {path}", file=sys.stderr)
        repeats = args.repeats or (case.quick if args.quick and case.quick else case.repeats)
        for tool in tools:
            ok, reason = available[tool]
            if not ok:
                rec = {"tool": tool, "case": case.name, "status": "skipped", "reason": reason}
                if tool == "lme4":
                    rec["reason"] = "lme4: skipped (Rscript/lme4 not found)"
                results.append(rec)
                continue
            slow = case.slow and tool != "mixedmodels"
            reps = 1 if slow else repeats
            timeout = args.slow_timeout if slow else args.timeout
            if slow:
                # Projected from this run's n = 1e6 fit (10x the rows): skip when that alone
                # exceeds the timeout, rather than burn the timeout to learn the same thing.
                base = next((r for r in results if r["case"] == "slopes_1e6"
                             and r["tool"] == tool and r.get("fit_s")), None)
                if base and 10 * _med(base["fit_s"]) > timeout:
                    results.append({
                        "tool": tool, "case": case.name, "status": "skipped",
                        "reason": f"projected > {timeout:.0f} s: its n = 1e6 fit took "
                                  f"{_med(base['fit_s']):.0f} s in this run (x10 rows); "
                                  f"raise --slow-timeout to run it once"})
                    print(f"[skip] {case.name} / {tool}: {results[-1]['reason']}",
                          file=sys.stderr, flush=True)
                    continue
            print(f"[run] {case.name} / {tool}: {reps} fit(s), timeout {timeout:.0f} s ...",
                  file=sys.stderr, flush=True)
            rec = run_one(case, tool, reps, timeout, work, rinfo)
            if slow:
                rec["note"] = f"one fit only, under a {timeout:.0f} s timeout (n = 1e7)"
            results.append(rec)
            print(f"      {rec['status']}: median fit {_fmt_s(_med(rec.get('fit_s')))}, "
                  f"objective {rec.get('objective')}, process {rec['wall_s']:.1f} s"
                  f"{'  ' + rec['error'] if rec.get('error') else ''}", file=sys.stderr,
                  flush=True)

    # Agreement: against lme4 when it ran, else the golden file, else mixedmodels.
    for case in cases:
        recs = {r["tool"]: r for r in results if r["case"] == case.name}
        ref, ref_name = None, None
        if recs.get("lme4", {}).get("objective") is not None:
            ref, ref_name = recs["lme4"], "lme4"
        elif _fixture(case) and _fixture(case).get("objective") is not None:
            ref, ref_name = _fixture(case), f"golden file {case.fixture}"
        else:   # mixedmodels, else whichever tool has a result
            for tool in TOOLS:
                if recs.get(tool, {}).get("objective") is not None:
                    ref, ref_name = recs[tool], tool
                    break
        for tool, r in recs.items():
            if r.get("objective") is None:
                continue
            if ref is r:
                r["agreement"] = {"agree": "ref", "reference": ref_name}
            else:
                r["agreement"] = dict(compare(r, ref), reference=ref_name)
        fx = _fixture(case)
        if fx and recs.get("lme4", {}).get("objective") is not None:
            recs["lme4"]["agreement_with_golden_file"] = compare(recs["lme4"], fx)

    settings["total_s"] = time.perf_counter() - t_start
    info["loadavg_end"] = list(os.getloadavg())
    text = report(results, info, settings, rinfo)
    print(text)
    payload = json.dumps({"machine": info, "settings": settings, "data": data_prep,
                          "results": results}, indent=1, default=str)
    # latest.* is always this run; quick.* / full.* keep the last run of each kind (a run with
    # --cases, --tools or --repeats is neither and writes latest.* only).
    kinds = ["latest"]
    if not (args.cases or args.repeats or set(tools) != set(TOOLS)):
        kinds.append("quick" if args.quick else "full")
    for kind in kinds:
        (out_dir / f"{kind}.md").write_text(text)
        (out_dir / f"{kind}.json").write_text(payload)
    print(f"wrote {', '.join(str(out_dir / k) + '.md/.json' for k in kinds)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
