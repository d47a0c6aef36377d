"""Cross-sectional multilevel data: pupils nested in schools, measured once.

Design
    A mathematics test taken once by the pupils of many schools. Each pupil has a
    socio-economic status score (SES, a pupil-level predictor); each school is public or
    private (sector, a school-level predictor: the same for every pupil of a school).

Model
    ``math ~ ses + sector + (1 | school)``. Pupils of one school share teachers and
    neighbourhoods, so their scores are correlated: the random intercept models that. A
    school-level predictor has, in effect, as many observations as there are schools, not
    pupils; the random intercept makes its standard error say so. An intercept-only model is
    fitted first for the ICC.

Run
    python examples/pupils_in_schools.py [--out-dir DIR] [--quick] [--seed N]
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # the script only writes a PNG file

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import mixedmodels as mm  # noqa: E402

# The shared options live beside this script (examples/_cli.py).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import example_args, save_figure  # noqa: E402


def simulate(n_schools: int, pupils: tuple[int, int], seed: int) -> pd.DataFrame:
    """Maths scores of pupils in ``n_schools`` schools of ``pupils[0]``..``pupils[1]`` pupils.

    A third of the schools are private; their pupils have higher SES on average. Score: 50,
    +3 per SD of SES, +4 in private schools; schools differ with SD 5, pupils with SD 9.
    """
    rng = np.random.default_rng(seed)
    private = rng.random(n_schools) < 1 / 3
    school_effect = rng.normal(0.0, 5.0, n_schools)
    sizes = rng.integers(pupils[0], pupils[1] + 1, n_schools)
    school = np.repeat(np.arange(n_schools), sizes)
    ses = rng.normal(0.0, 1.0, school.size) + 0.5 * private[school]
    math = (50.0 + 3.0 * ses + 4.0 * private[school] + school_effect[school]
            + rng.normal(0.0, 9.0, school.size))
    return pd.DataFrame({
        "school": pd.Categorical([f"school{k + 1:02d}" for k in school]),
        "sector": pd.Categorical(np.where(private[school], "private", "public"),
                                 categories=["public", "private"]),
        "ses": ses.round(2),
        "math": math.round(1),
    })


def main(argv: list[str] | None = None) -> Path:
    args, out_dir = example_args(__doc__, argv)

    data = (simulate(15, (5, 12), args.seed) if args.quick
            else simulate(80, (10, 40), args.seed))
    null = mm.lmer("math ~ 1 + (1 | school)", data)
    result = mm.lmer("math ~ ses + sector + (1 | school)", data)
    print(result.summary())

    # the caterpillar plot shows which schools score above or below the model's expectation
    fig = mm.plots.caterpillar(result)
    path = out_dir / "pupils_in_schools.png"
    save_figure(fig, path)

    fixef, se = result.fixef, result.se
    icc_null, icc_model = null.icc()["school"], result.icc()["school"]
    print("In plain words:")
    print(f"- Before any predictor, {100 * icc_null:.0f}% of the variance in maths scores lies "
          f"between schools (ICC {icc_null:.2f}).")
    print(f"- A pupil one point higher in SES scores "
          f"{fixef['ses']:.1f} points higher (95% CI {fixef['ses'] - 1.96 * se['ses']:.1f} to "
          f"{fixef['ses'] + 1.96 * se['ses']:.1f}).")
    est, half = fixef["sectorprivate"], 1.96 * se["sectorprivate"]
    unsure = " (the interval includes 0)" if est - half < 0 < est + half else ""
    print(f"- Private schools score {abs(est):.1f} points {'higher' if est >= 0 else 'lower'} "
          f"than public ones for pupils of equal SES (95% CI {est - half:.1f} to "
          f"{est + half:.1f}{unsure}); this rests on {result.ngroups['school']} schools, not "
          f"{result.nobs} pupils.")
    print(f"- After SES and sector, {100 * icc_model:.0f}% of the remaining variance still lies "
          f"between schools.")
    return path


if __name__ == "__main__":
    main()
