"""How each tool runs a case: a fresh process per (case, tool), timed fits, evaluation counts,
peak memory and the source hash.

The Python tools (mixedmodels, glmm, mixedlm) run in ``worker`` (``run.py --worker SPEC``);
lme4 runs a generated R script (``rscript.py``). Either child writes its numbers as JSON; the
parent (``run_one``) adds what only it can see: the child's wall time, its whole-process peak
memory from ``os.wait4`` (the per-process form of RUSAGE_CHILDREN), and the background load.
"""
from __future__ import annotations

import datetime as _dt
import gc
import json
import math
import os
import platform
import resource
import signal
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

import rscript
from cases import (CASE_BY_NAME, LMM_WARMUP_FORMULA, REPO, Case, add_derived, frame_bytes,
                   load_bundled, load_case, warmup_case)

TOOLS = ("mixedmodels", "lme4", "glmm", "mixedlm")
PY_PEERS = ("glmm", "mixedlm")
N_EVAL_CALLS = rscript.N_EVAL_CALLS
EVAL_BUDGET_S = rscript.EVAL_BUDGET_S
RUN_PY = Path(__file__).resolve().parent / "run.py"


# --- worker: one tool, one case, in this (fresh) process ----------------------------------

def _proc_status_mb(key: str) -> float | None:
    """A /proc/self/status memory line (VmRSS, VmHWM) in MB, or None off Linux."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the process's peak RSS (VmHWM), so the next peak is the fits' own."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _import_tool(tool: str):
    """Import a Python tool (timed by the caller)."""
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


def _fit_lmm(tool: str, mod, formula: str, data, reml: bool):
    """One linear mixed model fit by a Python tool, with its defaults."""
    if tool == "mixedmodels":
        return mod.lmer(formula, data, reml=reml)
    if tool == "glmm":
        # satterthwaite=False: lme4's lmer computes no denominator df either.
        return mod.fit(data, formula, reml=reml, satterthwaite=False)
    if tool == "mixedlm":
        return mod.lmer(formula, data, REML=reml)
    raise ValueError(tool)


def _fit_glmm(tool: str, mod, case: Case, data):
    """One GLMM fit (Laplace) by a Python tool, with the tool's formula for the case."""
    formula, weights = case.formula_for(tool), case.weights_for(tool)
    if tool == "mixedmodels":
        return mod.glmer(formula, data, family=case.family)
    if tool == "glmm":
        # anova_test="Wald": its default ("auto") refits a Poisson GLMM once per term for
        # likelihood-ratio tables; lme4's glmer computes no tests, so neither should this.
        kwargs = {"weights": data[weights].to_numpy(float)} if weights else {}
        return mod.fit(data, formula, family=case.family, anova_test="Wald", **kwargs)
    if tool == "mixedlm":
        from mixedlm.families import Binomial, Poisson
        family = {"binomial": Binomial, "poisson": Poisson}[case.family]()
        return mod.glmer(formula, data, family=family, weights=weights)
    raise ValueError(tool)


def _fit(tool: str, mod, case: Case, data):
    """The case's timed fit by a Python tool."""
    if case.is_glmm:
        return _fit_glmm(tool, mod, case, data)
    return _fit_lmm(tool, mod, case.formula, data, case.reml)


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


def _call(x):
    """mixedlm exposes some results as methods, some as attributes."""
    return x() if callable(x) else x


def _extract(tool: str, res, case: Case) -> dict:
    """The fit's optimum and counts. A GLMM's objective is -2 log-likelihood with the family's
    constants (lme4's -2 logLik), the same scale for every tool."""
    if tool == "mixedmodels":
        rec = {"objective": float(res.objective), "theta": _floats(res.theta),
               "fixef": {str(k): float(v) for k, v in res.fixef.items()},
               "sigma": float(res.sigma)}
        if not case.is_glmm:
            return dict(rec, feval=int(res.optsum.feval))
        fit = res.fit
        stage2 = fit.stage2.feval if fit.stage2 is not None else 0
        # model.n_evals counts every evaluation (both stages, the derivatives, the Newton
        # polish); the stages' own counts tell them apart.
        return dict(rec, feval=int(res.model.n_evals), feval_stage1=int(fit.stage1.feval),
                    feval_stage2=int(stage2))
    if tool == "glmm":
        return {"objective": -2.0 * float(res.loglik), "theta": _glmm_theta(res),
                "theta_note": "from glmm's varcorr, in glmm's grouping order",
                "fixef": {str(k): float(v) for k, v in zip(res.names, res.beta)},
                "sigma": math.sqrt(float(res.dispersion)), "feval": int(res.n_eval),
                "n_grad": int(res.n_grad), "converged": bool(res.converged)}
    if tool == "mixedlm":
        if case.is_glmm:
            # get_deviance(): -2 logLik with the response's constants; n_iter counts the
            # optimizer's iterations (both stages), not function evaluations.
            return {"objective": float(res.get_deviance()), "theta": _floats(res.theta),
                    "fixef": {str(k): float(v) for k, v in res.fixef().items()},
                    "sigma": 1.0, "feval": None, "iterations": int(res.n_iter),
                    "converged": bool(res.converged)}
        obj = _call(res.REMLcrit) if case.reml else _call(res.deviance)
        return {"objective": float(obj), "theta": _floats(res.theta),
                "fixef": {str(k): float(v) for k, v in res.fixef().items()},
                "sigma": float(_call(res.sigma)), "feval": int(res.function_evals),
                "converged": bool(res.converged)}
    raise ValueError(tool)


def _time_evaluations(objective, point) -> tuple[list[float], float]:
    """Times of up to N_EVAL_CALLS calls of objective(point) (at least 5, then until
    EVAL_BUDGET_S is spent) and the last value."""
    evals, value = [], math.nan
    for k in range(N_EVAL_CALLS):
        t = time.perf_counter()
        value = objective(point)
        evals.append(time.perf_counter() - t)
        if k >= 4 and sum(evals) > EVAL_BUDGET_S:
            break
    return evals, float(value)


def _mixedmodels_evaluations(res, case: Case) -> dict:
    """One objective evaluation at the optimum: the LMM profiled criterion at theta
    (cross-products only), or the GLMM Laplace deviance at (theta, beta), which runs PIRLS at
    that point from the previous evaluation's modes, so at the optimum it is about one PIRLS
    iteration over the n rows.

    Timed under the BLAS thread limit the fits run with (mixedmodels fits on one BLAS thread
    unless MIXEDMODELS_BLAS_THREADS says otherwise): with OpenBLAS's default two threads on
    a shared machine, one evaluation swings between 1x and 10x its one-thread time.
    """
    import numpy as np
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=int(os.environ.get("MIXEDMODELS_BLAS_THREADS", "1")),
                           user_api="blas"):
        if not case.is_glmm:
            evals, value = _time_evaluations(res.model.objective,
                                             np.asarray(res.theta, dtype=float))
            return {"eval_s": evals, "eval_objective": value}
        params = np.concatenate([res.theta, res.beta]).astype(float)
        iterations = int(res.model.evaluate(params)[1].iterations)
        evals, value = _time_evaluations(res.model.objective, params)
    return {"eval_s": evals, "eval_objective": value, "eval_pirls_iterations": iterations}


def _at_lme4_optimum(res, optimum: dict) -> dict:
    """mixedmodels' -2 log-likelihood at lme4's (theta, beta) of the same run: set beside
    lme4's own value there, it separates where lme4 stopped from how the two programs
    evaluate one point."""
    try:
        at = res.at_params(optimum["theta"], optimum["beta"])
    except Exception as exc:  # noqa: BLE001 - a note in the report, not a failed case
        return {"objective_at_lme4_error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"objective_at_lme4": float(at.objective)}


def _warm_up(tool: str, mod, case: Case) -> None:
    """One untimed small fit of the same kind (first-use imports, caches)."""
    warm_case = warmup_case(case)
    if warm_case is None:
        _fit_lmm(tool, mod, LMM_WARMUP_FORMULA, load_bundled("sleepstudy"), True)
        return
    data = load_case(warm_case)
    add_derived(warm_case, tool, data)
    _fit(tool, mod, warm_case, data)


def worker(spec: dict) -> int:
    """Run one (case, tool) in this process and write the record to spec["out"]."""
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
        add_derived(case, tool, data)
        rec["load_s"] = time.perf_counter() - t
        rec["n"] = len(data)
        rec["input_mb"] = frame_bytes(data, exclude=case.derived) / 2**20
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            _warm_up(tool, mod, case)
            rec["warmup_s"] = time.perf_counter() - t
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
                res = _fit(tool, mod, case, data)
                rec["fit_s"].append(time.perf_counter() - t)
                rec["fit_cpu_s"].append(time.process_time() - c)
                rec["peak_fit_mb"] = _proc_status_mb("VmHWM")
                save()
            for w in wlist:
                msg = f"{w.category.__name__}: {w.message}"[:300]
                if msg not in caught:
                    caught.append(msg)
        rec["warnings"] = caught[:8]
        rec.update(_extract(tool, res, case))
        save()
        if tool == "mixedmodels":
            rec.update(_mixedmodels_evaluations(res, case))
            if case.is_glmm and spec.get("lme4_optimum"):
                save()
                rec.update(_at_lme4_optimum(res, spec["lme4_optimum"]))
        rec["status"] = "ok"
    except BaseException as exc:  # noqa: BLE001 - recorded, then re-raised for the log
        rec["status"] = "error"
        rec["error"] = f"{type(exc).__name__}: {exc}"[:500]
        traceback.print_exc()
    finally:
        rec["rusage_self_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        save()
    return 0 if rec["status"] == "ok" else 1


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
            "process_peak_mb": usage.ru_maxrss / 1024,
            "child_cpu_s": usage.ru_utime + usage.ru_stime,
            "background_cores": background}


def tool_available(tool: str, rinfo: dict) -> tuple[bool, str]:
    """(True, "") when the tool can run here, else (False, why)."""
    if tool == "lme4":
        return (True, "") if rinfo.get("available") else (False, rinfo.get("reason", ""))
    import importlib.util
    if importlib.util.find_spec(tool) is None:
        return False, f"python package {tool!r} not importable"
    return True, ""


def run_one(case: Case, tool: str, repeats: int, timeout: float, work: Path, rinfo: dict,
            lme4_optimum: dict | None = None) -> dict:
    """Run one (case, tool) in a child process and return its record. lme4_optimum: lme4's
    {"theta", "beta"} on this case, for mixedmodels to evaluate there (GLMMs)."""
    out = work / f"{case.name}.{tool}.json"
    log = work / f"{case.name}.{tool}.log"
    out.unlink(missing_ok=True)
    if tool == "lme4":
        script = work / f"{case.name}.lme4.R"
        script.write_text(rscript.r_script(case, repeats, out, rinfo.get("data.table", False)))
        cmd = [rinfo["rscript"], str(script)]
    else:
        spec = {"tool": tool, "case": case.name, "repeats": repeats, "out": str(out)}
        if lme4_optimum and tool == "mixedmodels":
            spec["lme4_optimum"] = lme4_optimum
        cmd = [sys.executable, str(RUN_PY), "--worker", json.dumps(spec)]
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


# --- machine info -------------------------------------------------------------------------

def machine_info(rinfo: dict) -> dict:
    """The machine, the libraries' versions and BLAS, the commit: the report's header."""
    info: dict = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                  "platform": platform.platform(), "python": platform.python_version()}
    try:
        cpu = [ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
               if ln.startswith("model name")]
        info["cpu"] = cpu[0] if cpu else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    info["cores"] = os.cpu_count()
    info["cores_usable"] = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                            else None)
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
        dirty = subprocess.run(["git", "--no-optional-locks", "-C", str(REPO), "status",
                                "--porcelain", "--", "src"],
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
