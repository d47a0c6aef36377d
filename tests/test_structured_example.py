"""examples/time_grid_structures.py end to end: three covariance structures over the visits of
a repeated-measures study, their AIC and likelihood-ratio tests, and the correlation plot."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "time_grid_structures.py"


def test_example_runs_compares_structures_and_plots(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--quick", "--out-dir", str(tmp_path)])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    out = capsys.readouterr().out
    plots = list(tmp_path.glob("*.png"))
    assert [p.name for p in plots] == ["time_grid_structures.png"]
    assert plots[0].stat().st_size > 5000
    assert "Linear mixed model fit by REML" in out
    assert "ar1(0 + visit | patient)" in out and "us(0 + visit | patient)" in out
    for name, npar in (("unstructured", 20), ("compound symmetry", 11), ("AR(1)", 7)):
        assert any(line.split()[-4:-3] == [str(npar)] for line in out.splitlines()
                   if line.startswith(name)), name
    assert out.count("Pr(>Chisq)") == 2
    assert "In plain words:" in out


def test_example_fits_see_the_simulated_ar1():
    """With many patients the AR(1) fit recovers the simulated correlation (0.7 a visit)."""
    namespace = runpy.run_path(str(SCRIPT))
    data = namespace["simulate"](300, seed=7)
    fits = namespace["fit_all"](data)
    ar1 = fits["AR(1)"]
    rho = ar1.model.terms[0].covariance.rho(ar1.theta[-1])
    assert abs(rho - 0.7) < 0.06
    assert ar1.aic < fits["compound symmetry"].aic
    lagged = namespace["by_lag"](namespace["visit_mean_correlation"](ar1))
    assert np.all(np.diff(lagged) < 0)


def test_benchmark_script_runs_small():
    """benchmarks/structured_ar1.py on a small grid: a row per size and layout."""
    bench = runpy.run_path(str(SCRIPT.parents[1] / "benchmarks" / "structured_ar1.py"))
    rows = bench["run"](20, [5, 30], 3)
    assert [(r["n"], r["layout"]) for r in rows] == [(100, "pieces"), (100, "rows"),
                                                     (600, "pieces"), (600, "rows")]
    assert "| 600 | pieces |" in bench["report"](rows, 20)
