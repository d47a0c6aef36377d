"""Benchmark mixedmodels against lme4 (R) and the Python peers glmm and mixedlm.

    python benchmarks/run.py [--quick] [--cases a,b] [--tools a,b] [--repeats N]
                             [--out-dir benchmarks/results] [--timeout S] [--slow-timeout S]

Every (case, tool) pair runs in its own fresh process (this script re-invoked with --worker, or
a generated R script), which measures, separately: the import, loading the case's data, one
warm-up fit (sleepstudy for linear mixed models, cbpp for GLMMs: first-use imports, caches),
then the timed whole fits of the case, and for mixedmodels (and lme4, through devFunOnly) the
time of one objective evaluation at the optimum. The parent reads each child's peak memory
from os.wait4 (the child's own rusage, the per-process form of RUSAGE_CHILDREN); the child
itself resets its peak-RSS counter (/proc/self/clear_refs) just before the timed fits, so
"peak RSS during fit" is the fits' own.

Outputs a markdown report on stdout and in <out-dir>/latest.md, and all raw numbers in
<out-dir>/latest.json (also kept as quick.* / full.* for a plain --quick / full run). See
benchmarks/README.md for what each column means. The parts: cases.py (what is run),
engines.py and rscript.py (how each tool runs it), report.py (agreement and the report).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import simulate  # noqa: E402  (benchmarks/simulate.py)
from cases import CASE_BY_NAME, CASES, Case  # noqa: E402
from engines import TOOLS, machine_info, run_one, tool_available, worker  # noqa: E402
from report import assign_agreement, fmt_s, med, report, update_readme  # noqa: E402
from rscript import probe_r  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer repeats; skip slopes_1e7, crossed_2e6 and bernoulli_1e6")
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
    ap.add_argument("--from-json", metavar="PATH",
                    help="only render the report of a saved run (<out-dir>/latest.json) again")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    return ap


def _prepare_data(case: Case, data_prep: dict) -> None:
    """Simulate and cache a simulated case's data before its first process (not timed).

    The data are built in a process of their own: a child's ru_maxrss starts from its parent's
    memory at exec, so data built in this process would raise every later child's peak.
    """
    if case.source == "bundled":
        return
    t = time.perf_counter()
    path = simulate.cache_path(case.source, **case.params)
    fresh = not (path / "meta.json").exists()
    if fresh:
        params = dict(case.params)
        cmd = [sys.executable, str(HERE / "simulate.py"), case.source, str(params.pop("n"))]
        subprocess.run(cmd + [f"{k}={v}" for k, v in params.items()], check=True,
                       stdout=subprocess.DEVNULL)
    data_prep[case.name] = {"path": str(path), "built_now": fresh,
                            "seconds": time.perf_counter() - t}
    print(f"[data] {case.name}: {'simulated + written' if fresh else 'cached'} "
          f"({time.perf_counter() - t:.1f} s) {path}", file=sys.stderr)


def _projected_skip(case: Case, tool: str, timeout: float, results: list[dict]) -> dict | None:
    """A slow case's skip record when this run's fit of its tenth-size case, times ten,
    already exceeds the timeout: better than burning the timeout to learn the same thing."""
    base = next((r for r in results if r["case"] == case.slow_base
                 and r["tool"] == tool and r.get("fit_s")), None)
    if not (base and 10 * med(base["fit_s"]) > timeout):
        return None
    small = CASE_BY_NAME[case.slow_base].n_label
    return {"tool": tool, "case": case.name, "status": "skipped",
            "reason": f"projected > {timeout:.0f} s: its n = {small} fit took "
                      f"{med(base['fit_s']):.0f} s in this run (x10 rows); "
                      f"raise --slow-timeout to run it once"}


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))
    if args.update_readme:
        update_readme(Path(args.out_dir))
        return 0
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        rinfo = {"available": "lme4" in saved["machine"]}
        print(report(saved["results"], saved["machine"], saved["settings"], rinfo), end="")
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
        _prepare_data(case, data_prep)
        repeats = args.repeats or (case.quick if args.quick and case.quick else case.repeats)
        # GLMMs: lme4 first, so that mixedmodels can evaluate its deviance at lme4's optimum.
        order = sorted(tools, key=lambda t: t != "lme4") if case.is_glmm else tools
        lme4_optimum = None
        for tool in order:
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
            skip = _projected_skip(case, tool, timeout, results) if slow else None
            if skip:
                results.append(skip)
                print(f"[skip] {case.name} / {tool}: {skip['reason']}", file=sys.stderr,
                      flush=True)
                continue
            print(f"[run] {case.name} / {tool}: {reps} fit(s), timeout {timeout:.0f} s ...",
                  file=sys.stderr, flush=True)
            rec = run_one(case, tool, reps, timeout, work, rinfo, lme4_optimum)
            if tool == "lme4" and rec.get("theta") is not None and rec.get("fixef"):
                lme4_optimum = {"theta": rec["theta"], "beta": list(rec["fixef"].values())}
            if slow:
                rec["note"] = f"one fit only, under a {timeout:.0f} s timeout (n = {case.n_label})"
            results.append(rec)
            print(f"      {rec['status']}: median fit {fmt_s(med(rec.get('fit_s')))}, "
                  f"objective {rec.get('objective')}, process {rec['wall_s']:.1f} s"
                  f"{'  ' + rec['error'] if rec.get('error') else ''}", file=sys.stderr,
                  flush=True)

    assign_agreement(cases, results)
    settings["total_s"] = time.perf_counter() - t_start
    info["loadavg_end"] = list(os.getloadavg())
    payload = json.dumps({"machine": info, "settings": settings, "data": data_prep,
                          "results": results}, indent=1, default=str)
    # latest.* is always this run; quick.* / full.* keep the last run of each kind (a run with
    # --cases, --tools or --repeats is neither and writes latest.* only). The JSON is written
    # first, so a failure in the report loses no measurement (--from-json renders it again).
    kinds = ["latest"]
    if not (args.cases or args.repeats or set(tools) != set(TOOLS)):
        kinds.append("quick" if args.quick else "full")
    for kind in kinds:
        (out_dir / f"{kind}.json").write_text(payload)
    text = report(results, info, settings, rinfo)
    print(text)
    for kind in kinds:
        (out_dir / f"{kind}.md").write_text(text)
    print(f"wrote {', '.join(str(out_dir / k) + '.md/.json' for k in kinds)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
