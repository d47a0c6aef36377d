"""The benchmark's report: agreement of the optima, the markdown report, the README's results.

``assign_agreement`` judges every tool's optimum against a reference (lme4's fit in this run,
else the lme4 golden file, else mixedmodels); ``report`` renders one run's records as markdown
(the linear mixed models' table, the GLMMs' table, evaluation cost against n, memory, set-up
costs, lme4 against its golden files, notes); ``update_readme`` copies the last full and
quick reports into benchmarks/README.md.
"""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from cases import CASE_BY_NAME, HERE, REPO, Case
from engines import PY_PEERS, TOOLS

OBJ_ABS_TOL, OBJ_REL_TOL, FIXEF_REL_TOL = 1e-3, 1e-8, 1e-4
# GLMM optimizers stop on looser criteria (lme4's stage 2 is Nelder-Mead over theta and
# beta), so their fixed effects are compared at 1e-3 relative.
GLMM_FIXEF_REL_TOL = 1e-3


# --- agreement ----------------------------------------------------------------------------

def fixture(case: Case, file: str | None = None) -> dict | None:
    """The case's lme4 golden file (or ``file``, a tight refit) as a reference record."""
    file = file if file is not None else case.fixture
    if not file:
        return None
    path = REPO / "tests" / "fixtures" / file
    if not path.exists():
        return None
    fx = json.loads(path.read_text())
    loglik = fx.get("logLik")
    loglik = loglik.get("value") if isinstance(loglik, dict) else loglik
    if case.is_glmm:
        obj = -2.0 * loglik if loglik is not None else None
    else:
        obj = fx.get("REMLcrit") if case.reml else fx.get("deviance")
        if obj is None and loglik is not None:
            obj = -2.0 * loglik
    fit_time = fx.get("fit_time_s") or {}
    return {"objective": obj, "fixef": fx.get("fixef") or {}, "file": file,
            "fit_time_s": fit_time.get("median") if isinstance(fit_time, dict) else fit_time,
            "feval": (fx.get("optinfo") or {}).get("feval")}


def compare(rec: dict, ref: dict, glmm: bool = False) -> dict:
    """ok when objective within 1e-3 absolute (or 1e-8 relative) and every fixef within 1e-4
    relative (coefficients below 1/1000 of the largest are judged against that floor).
    GLMMs: fixef within 1e-3 relative, and "better" when the objective (-2 logLik) is lower
    than the reference's by more than the tolerance (the reference stopped short, so its
    fixed effects are not the optimum's either)."""
    a, b = rec.get("objective"), ref.get("objective")
    if a is None or b is None or not math.isfinite(a):
        return {"agree": "n/a", "why": "no objective"}
    d_obj = abs(a - b)
    obj_ok = d_obj <= OBJ_ABS_TOL or d_obj <= OBJ_REL_TOL * abs(b)
    if glmm and not obj_ok and a < b:
        return {"agree": "better", "objective_diff": a - b}
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
    ok = obj_ok and rel <= (GLMM_FIXEF_REL_TOL if glmm else FIXEF_REL_TOL)
    return {"agree": "ok" if ok else "MISMATCH", "objective_diff": a - b,
            "fixef_max_rel_diff": rel, "fixef_matched": how}


def assign_agreement(cases: list[Case], results: list[dict]) -> None:
    """Set each record's "agreement": against lme4 when it ran, else the golden file, else
    mixedmodels, else the first tool with a result."""
    for case in cases:
        recs = {r["tool"]: r for r in results if r["case"] == case.name}
        fx = fixture(case)
        ref, ref_name = None, None
        if recs.get("lme4", {}).get("objective") is not None:
            ref, ref_name = recs["lme4"], "lme4"
        elif fx and fx.get("objective") is not None:
            ref, ref_name = fx, f"golden file {case.fixture}"
        else:
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
                r["agreement"] = dict(compare(r, ref, case.is_glmm), reference=ref_name)
        if fx and recs.get("lme4", {}).get("objective") is not None:
            recs["lme4"]["agreement_with_golden_file"] = compare(recs["lme4"], fx, case.is_glmm)


# --- formatting -----------------------------------------------------------------------------

def med(xs) -> float | None:
    """Median of the values that are not None (None when there are none)."""
    xs = [x for x in (xs or []) if x is not None]
    return statistics.median(xs) if xs else None


def fmt_s(x) -> str:
    """Seconds with units and about three significant digits."""
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


def _fmt_evals(r: dict) -> str:
    """A GLMM row's evaluation counts: total = stage 1 + stage 2 (+ derivatives), or what the
    tool reports."""
    s1, s2, total = r.get("feval_stage1"), r.get("feval_stage2"), r.get("feval")
    if s1 is not None and s2 is not None:
        extra = (total or 0) - s1 - s2
        return f"{s1 + s2 + max(extra, 0)} = {s1} + {s2}" + (f" + {extra} d" if extra > 0 else "")
    if s2 is not None:
        return f"{s2} (stage 2)"
    if r.get("iterations") is not None:
        return f"{r['iterations']} it"
    txt = "–" if total is None else str(total)
    return txt + (f" (+{r['n_grad']} grad)" if r.get("n_grad") else "")


def _fmt_dloglik(r: dict, lme4: dict | None) -> str:
    """The tool's log-likelihood minus lme4's, signed ("" on lme4's own row)."""
    if r.get("tool") == "lme4" or not lme4 or lme4.get("objective") is None \
            or r.get("objective") is None:
        return ""
    return f"{(lme4['objective'] - r['objective']) / 2:+.2g}"


# --- the report -----------------------------------------------------------------------------

def _header(info: dict, settings: dict, rinfo: dict, results: list[dict]) -> list[str]:
    """Title, machine and versions, and the source-hash line (or its warning)."""
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
    return L


def _rows(by_case: dict, glmm: bool, rinfo: dict, notes: list[str]) -> list[str]:
    """The table rows of the LMM cases (glmm False) or of the GLMM cases."""
    L = []
    for case_name, tools in by_case.items():
        if CASE_BY_NAME[case_name].is_glmm != glmm:
            continue
        mm_t = med((tools.get("mixedmodels") or {}).get("fit_s")) \
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
                blanks = "| | | | | | | | | |" if glmm else "| | | | | | | | |"
                L.append(f"| {case_name} | {n_txt} | {tool} | – | {r['status']} {blanks} "
                         f"{'n/a' if r['status'] == 'skipped' else r['status']} |")
                if not (tool == "lme4" and not rinfo.get("available")):  # said once, below
                    notes.append(f"{case_name} / {tool}: {r['status']}: {why}")
                continue
            t = med(fits)
            ratio = f"{t / mm_t:.2g}" if (t and mm_t and tool != "mixedmodels") else ""
            if glmm:
                feval_txt = _fmt_evals(r)
            else:
                feval = r.get("feval")
                feval_txt = "–" if feval is None else str(feval)
                if r.get("n_grad"):
                    feval_txt += f" (+{r['n_grad']} grad)"
            agree = r.get("agreement", {}).get("agree", "")
            status = "" if r["status"] == "ok" else f" ({r['status']})"
            middle = f"{_fmt_obj(r.get('objective'))} | "
            if glmm:
                middle += f"{_fmt_dloglik(r, tools.get('lme4'))} | "
            L.append(f"| {case_name} | {n_txt} | {tool} | {len(fits)} | {fmt_s(t)}{status} | "
                     f"{ratio} | {fmt_s(med(r.get('fit_cpu_s')))} | {feval_txt} | {middle}"
                     f"{fmt_s(med(r.get('eval_s')))} | {fmt_s(r.get('load_s'))} | "
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
    return L


def _glmm_section(by_case: dict, rinfo: dict, notes: list[str]) -> list[str]:
    """The GLMM table and the optima against lme4's tight refits."""
    rows = _rows(by_case, True, rinfo, notes)
    if not rows:
        return []
    L = ["## GLMM cases (Laplace, nAGQ = 1)", ""]
    L.append("Columns as for the linear mixed models (medians of whole fits, `÷ mm`, `fit CPU`, "
             "`bg load`: see benchmarks/README.md), except: `-2 logLik` = the Laplace "
             "log-likelihood with the family's constants, times -2 (lme4's `-2 * logLik(m)`, "
             "glmm's `-2 * loglik`, "
             "mixedlm's `get_deviance()`), the one scale every tool reports; `Δ logLik` = that "
             "tool's log-likelihood minus lme4's (above 0: it found a higher maximum than "
             "lme4's default fit); `evaluations` = mixedmodels: every Laplace-deviance "
             "evaluation = stage 1 + stage 2 + `d` (derivatives and Newton polish at the "
             "optimum); lme4: stage 1 (an untimed nAGQ = 0 refit) + stage 2 (`optinfo$feval`), "
             "the derivatives not counted, or stage 2 alone on long fits; glmm: `n_eval` "
             "(+ gradient evaluations); mixedlm: optimizer iterations (`it`), not evaluations. "
             "`1 eval` = one Laplace deviance at the optimum (theta, beta): PIRLS from the "
             "previous evaluation's modes. `agree` = ok, `better` (a -2 logLik more than 1e-3 "
             "below the reference's), or MISMATCH; fixed effects within 1e-3 relative. glmm "
             "and mixedlm fit the same model through columns derived before the timed fits "
             "where their parsers lack the R syntax (`cbind(a, b - a)`, `scale()`, `I()`, a "
             "factor response; benchmarks/cases.py).")
    L.append("")
    L.append("| case | n | tool | fits | median fit | ÷ mm | fit CPU | evaluations | -2 logLik | "
             "Δ logLik | 1 eval | data load | peak RSS in fit | bg load | agree |")
    L.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    L += rows
    L.append("")
    at_lme4 = []
    for case_name, tools in by_case.items():
        mm, r4 = tools.get("mixedmodels") or {}, tools.get("lme4") or {}
        at, own, theirs = mm.get("objective_at_lme4"), mm.get("objective"), r4.get("objective")
        if None in (at, own, theirs):
            continue
        at_lme4.append(f"- {case_name}: at lme4's (theta, beta), mixedmodels' -2 logLik is "
                       f"{at:.6f} and lme4's {theirs:.6f}: lme4 - mixedmodels = "
                       f"{theirs - at:+.2g} (the two programs' values at one point); "
                       f"mixedmodels' own optimum is {(at - own) / 2:.2g} higher in logLik "
                       f"(how far short of it lme4's optimizer stopped)")
    if at_lme4:
        L.append("Where the optima differ: mixedmodels evaluated at lme4's optimum of the same "
                 "run (`GlmerResult.at_params`):")
        L.append("")
        L += at_lme4
        L.append("")
    tight = []
    for case_name, tools in by_case.items():
        case = CASE_BY_NAME[case_name]
        fx = fixture(case, case.tight) if case.tight else None
        if not (case.is_glmm and fx and fx.get("objective") is not None):
            continue
        parts = [f"{tool} {(fx['objective'] - r['objective']) / 2:+.2g}"
                 for tool, r in tools.items() if r.get("objective") is not None]
        if parts:
            tight.append(f"- {case_name}: logLik {-fx['objective'] / 2:.6f}; "
                         + ", ".join(parts))
    if tight:
        L.append("Against lme4's tight refit (tests/fixtures/lme4_tight: bobyqa for both "
                 "stages, rhoend 1e-10, tolPwrss 1e-12), each tool's log-likelihood minus the "
                 "refit's:")
        L.append("")
        L += tight
        L.append("")
    return L


def _eval_vs_n(by_case: dict) -> list[str]:
    """The LMM claim: one evaluation costs the same at every n (slopes cases)."""
    L = ["## One objective evaluation vs n", ""]
    mm_eval = {c: med(t["mixedmodels"].get("eval_s")) for c, t in by_case.items()
               if c.startswith("slopes_") and "mixedmodels" in t}
    r_eval = {c: med(t["lme4"].get("eval_s")) for c, t in by_case.items()
              if c.startswith("slopes_") and "lme4" in t}
    base = mm_eval.get("slopes_1e5")
    for big in ("slopes_1e6", "slopes_1e7"):
        if base and mm_eval.get(big):
            L.append(f"- mixedmodels, `y ~ x + (x|g1) + (1|g2)`: one evaluation at n = "
                     f"{big[-3:]} / at n = 1e5 = **{mm_eval[big] / base:.2f}** "
                     f"({fmt_s(mm_eval[big])} vs {fmt_s(base)}; design claim: about 1, the "
                     f"evaluation works on cross-products only)")
            if r_eval.get(big) and r_eval.get("slopes_1e5"):
                L.append(f"- lme4 (devFunOnly) for contrast: "
                         f"{r_eval[big] / r_eval['slopes_1e5']:.2f}"
                         f" ({fmt_s(r_eval[big])} vs {fmt_s(r_eval['slopes_1e5'])})")
    if not base or not any(mm_eval.get(b) for b in ("slopes_1e6", "slopes_1e7")):
        L.append("- not available in this run (needs slopes_1e5 and slopes_1e6/1e7)")
    elif not mm_eval.get("slopes_1e7"):
        L.append("- n = 1e7 not run (--quick or --cases); the ratio above is for 1e6")
    L.append("")
    return L


def _glmm_eval_vs_n(by_case: dict) -> list[str]:
    """One Laplace evaluation (about one PIRLS iteration at the optimum) at 1e5 and 1e6 rows."""
    names = [c for c in ("bernoulli_1e5", "bernoulli_1e6") if c in by_case]
    if not names:
        return []
    L = ["## One GLMM evaluation vs n (PIRLS is O(n))", ""]
    evals = {}
    for c in names:
        for tool in ("mixedmodels", "lme4"):
            r = by_case[c].get(tool) or {}
            t = med(r.get("eval_s"))
            if t is None:
                continue
            evals[c, tool] = t
            its = r.get("eval_pirls_iterations")
            its_txt = f", {its} PIRLS iteration{'s' if its != 1 else ''}" if its else ""
            what = ("`model.objective(theta, beta)`, PIRLS from the last modes"
                    if tool == "mixedmodels" else "stage-2 devFunOnly at (theta, beta), "
                    "PIRLS from stage 1's linear predictor on every call")
            L.append(f"- {tool}, `y ~ x + (1|g1) + (1|g2)` Bernoulli, n = {c[-3:]}: one "
                     f"Laplace evaluation at the optimum {fmt_s(t)} ({what}{its_txt}; "
                     f"{t / by_case[c][tool]['n'] * 1e9:.0f} ns per row)")
    for tool in ("mixedmodels", "lme4"):
        a, b = evals.get(("bernoulli_1e5", tool)), evals.get(("bernoulli_1e6", tool))
        if a and b:
            L.append(f"- {tool}: n = 1e6 / n = 1e5 = **{b / a:.1f}** (PIRLS works on every "
                     "row, O(n), plus a fixed cost for the random-effect levels, the same "
                     "1,200 at both n: at most 10)")
    if len(names) < 2:
        L.append("- n = 1e6 not run (--quick or --cases): no ratio")
    L.append("")
    return L


# Issue #9's memory target for the large GLMM: the fit's own extra peak under 3x the bytes of
# the input columns.
MEMORY_TARGETS = {"bernoulli_1e6": 3.0}


def _memory_targets(by_case: dict) -> list[str]:
    """Whether mixedmodels met ``MEMORY_TARGETS`` in this run."""
    L = []
    for c, limit in MEMORY_TARGETS.items():
        r = (by_case.get(c) or {}).get("mixedmodels") or {}
        inp, before, peak = r.get("input_mb"), r.get("rss_before_fit_mb"), r.get("peak_fit_mb")
        if None in (inp, before, peak) or not inp:
            continue
        ratio = (peak - before) / inp
        L.append(f"- {c} (target: the fit's memory under {limit:g}x the input columns): "
                 f"mixedmodels' fit's extra peak {_fmt_mb(peak - before)} = {ratio:.1f}x the "
                 f"{_fmt_mb(inp)} of columns (process peak {_fmt_mb(r.get('process_peak_mb'))}): "
                 f"{'met' if ratio < limit else '**not met**'}")
    return L + [""] if L else []


def _memory(by_case: dict) -> list[str]:
    """Memory of every tool on the simulated cases."""
    big = [c for c in by_case if not CASE_BY_NAME[c].source == "bundled"]
    if not big:
        return []
    L = ["## Memory (simulated cases)", ""]
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
    return L + _memory_targets(by_case)


def _setup(results: list[dict]) -> list[str]:
    """Import and warm-up times; the GLMM processes' warm-up (cbpp glmer) in its own column."""
    kinds = [(label, glmm) for label, glmm in (("first fit (sleepstudy warm-up)", False),
                                                ("first fit (cbpp glmer warm-up)", True))
             if any(CASE_BY_NAME[r["case"]].is_glmm == glmm and r.get("import_s") is not None
                    for r in results)]
    L = ["## Import and warm-up (medians over this run's processes)", ""]
    L.append("| tool | import | " + " | ".join(k for k, _ in kinds) + " |")
    L.append("|---|---:|" + "---:|" * len(kinds))
    for tool in TOOLS:
        rs = [r for r in results if r["tool"] == tool and r.get("import_s") is not None]
        if rs:
            warm = [fmt_s(med([r.get("warmup_s") for r in rs
                               if CASE_BY_NAME[r["case"]].is_glmm == glmm])) for _, glmm in kinds]
            L.append(f"| {tool} | {fmt_s(med([r['import_s'] for r in rs]))} | "
                     + " | ".join(warm) + " |")
    L.append("")
    return L


def _golden(by_case: dict) -> list[str]:
    """lme4's fit times here against those recorded in its golden files."""
    sanity = []
    for c, tools in by_case.items():
        case = CASE_BY_NAME[c]
        fx = fixture(case)
        r = tools.get("lme4")
        if fx and fx.get("fit_time_s") and r and r.get("fit_s"):
            here = med(r["fit_s"])
            feval = r.get("feval_stage2") if case.is_glmm else r.get("feval")
            flag = "" if 1 / 3 <= here / fx["fit_time_s"] <= 3 else " **check**"
            sanity.append(f"- {c}: lme4 here {fmt_s(here)} (CPU {fmt_s(med(r.get('fit_cpu_s')))}), "
                          f"golden file {fmt_s(fx['fit_time_s'])} "
                          f"(×{here / fx['fit_time_s']:.2f}){flag}; feval here {feval}, "
                          f"golden {fx.get('feval')}")
    if not sanity:
        return []
    return (["## lme4 timings vs the golden files (tests/fixtures, same R/lme4, reference BLAS)",
             ""] + sanity + [""])


def _optimum_notes(by_case: dict) -> list[str]:
    """A note for each case where another tool beat the reference's optimum."""
    notes = []
    for case_name, tools in by_case.items():
        objs = {t: r["objective"] for t, r in tools.items() if r.get("objective") is not None}
        ref = next((r for r in tools.values()
                    if r.get("agreement", {}).get("agree") == "ref"), None)
        if ref and objs:
            best = min(objs, key=objs.get)
            gap = ref["objective"] - objs[best]
            if best != ref["tool"] and gap > OBJ_ABS_TOL / 10:
                if CASE_BY_NAME[case_name].is_glmm:
                    notes.append(f"{case_name}: highest log-likelihood from {best}, {gap / 2:.3g} "
                                 f"above the reference's ({ref['tool']})")
                else:
                    notes.append(f"{case_name}: lowest objective from {best}, {gap:.3g} below "
                                 f"the reference ({ref['tool']})")
    return notes


def report(results: list[dict], info: dict, settings: dict, rinfo: dict) -> str:
    """The markdown report of one run."""
    by_case: dict[str, dict[str, dict]] = {}
    for r in results:
        by_case.setdefault(r["case"], {})[r["tool"]] = r
    L = _header(info, settings, rinfo, results)
    notes: list[str] = []
    lmm_rows = _rows(by_case, False, rinfo, notes)
    if lmm_rows:
        L.append("Wall times are medians over the repeats (each a whole fit from the data frame); "
                 "`fit CPU` = median CPU time of a fit (user + system, all threads); "
                 "`÷ mm` = that tool's median / mixedmodels' (above 1: mixedmodels is faster). "
                 "`1 eval` = one objective evaluation at the optimum (median). `bg load` = cores "
                 "kept busy by other processes meanwhile (of " + str(info.get("cores")) + "). "
                 "`agree` = objective and fixed effects against the reference row (lme4, else "
                 "the lme4 golden file, else mixedmodels, else the first tool with a result).")
        L.append("")
        L.append("| case | n | tool | fits | median fit | ÷ mm | fit CPU | feval | objective | "
                 "1 eval | data load | peak RSS in fit | bg load | agree |")
        L.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        L += lmm_rows
        L.append("")
    L += _glmm_section(by_case, rinfo, notes)
    for r in results:
        for w in list(dict.fromkeys(r.get("warnings") or []))[:2]:
            notes.append(f"{r['case']} / {r['tool']} warned: {w[:160]}")
        if r.get("note"):
            notes.append(f"{r['case']} / {r['tool']}: {r['note']}")
        if r.get("extras_skipped"):
            notes.append(f"{r['case']} / {r['tool']}: {r['extras_skipped']}")
        if r.get("objective_at_lme4_error"):
            notes.append(f"{r['case']} / {r['tool']}: evaluation at lme4's optimum failed: "
                         f"{r['objective_at_lme4_error']}")
    notes += _optimum_notes(by_case)
    if lmm_rows:
        L += _eval_vs_n(by_case)
    L += _glmm_eval_vs_n(by_case)
    L += _memory(by_case)
    L += _setup(results)
    L += _golden(by_case)
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
