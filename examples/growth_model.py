"""Longitudinal growth: children measured every year from age 7 to 17, in city areas.

Design
    A reading test taken once a year by the same children, who live in several areas of a
    city. Measurements are nested in children, children in areas. Some children miss a year,
    which a mixed model handles without dropping the child.

Model
    ``score ~ age_c + (age_c | child) + (1 | area)`` with ``age_c = age - 12``. Each child
    has an own level and an own growth rate (random intercept and slope of age); children of
    the same area share an area effect. Age is centred at 12, the middle of the age range, so
    that the intercept is the score of a typical 12-year-old and the intercept-slope
    correlation is about children at 12 rather than at the age of 0. Child labels are unique
    across areas, so ``(1 | child)`` is the child-in-area term.

Run
    python examples/growth_model.py [--out-dir DIR] [--quick] [--seed N]
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # the script only writes a PNG file

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import mixedmodels as mm  # noqa: E402

# The shared options live beside this script (examples/_cli.py).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import example_args, save_figure  # noqa: E402

CENTRE = 12


def simulate(n_areas: int, children_per_area: int, ages: np.ndarray, seed: int) -> pd.DataFrame:
    """Yearly scores: 100 at age 12, +5 a year. Children: level SD 10, growth SD 1.5 a year,
    correlation 0.3; areas: SD 5; occasions: SD 4. About 10% of measurements are missing."""
    rng = np.random.default_rng(seed)
    n_children = n_areas * children_per_area
    cov = np.array([[10.0**2, 0.3 * 10 * 1.5], [0.3 * 10 * 1.5, 1.5**2]])
    child_effect = rng.multivariate_normal([0.0, 0.0], cov, n_children)
    area_effect = rng.normal(0.0, 5.0, n_areas)
    child = np.repeat(np.arange(n_children), ages.size)
    age = np.tile(ages, n_children)
    area = child // children_per_area
    score = (100.0 + 5.0 * (age - CENTRE) + child_effect[child, 0]
             + child_effect[child, 1] * (age - CENTRE) + area_effect[area]
             + rng.normal(0.0, 4.0, child.size))
    keep = rng.random(child.size) > 0.10
    return pd.DataFrame({
        "area": pd.Categorical([f"area{a + 1}" for a in area[keep]]),
        "child": pd.Categorical([f"a{a + 1}-c{c + 1:03d}" for a, c in zip(area[keep],
                                                                          child[keep])]),
        "age": age[keep],
        "age_c": age[keep] - CENTRE,
        "score": score[keep].round(1),
    })


def plot(data: pd.DataFrame, result, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    coefs = result.coef()["child"]
    shown = list(coefs.index[:: max(1, len(coefs) // 12)])  # a readable sample of children
    for k, child in enumerate(shown):
        own = data[data["child"] == child]
        ax.plot(own["age"], own["score"], "o", color=f"C{k % 10}", ms=3, alpha=0.7)
        # predict() adds the child's and the area's effects (coef of child has only the first)
        ax.plot(own["age"], result.predict(own), color=f"C{k % 10}", lw=1)
    ages = np.array([data["age"].min(), data["age"].max()])
    fixef = result.fixef
    ax.plot(ages, fixef["(Intercept)"] + fixef["age_c"] * (ages - CENTRE), color="black",
            lw=3, label="average child")
    ax.set_xlabel("age (years)")
    ax.set_ylabel("reading score")
    ax.set_title("Some children's scores and their predicted growth lines")
    ax.legend()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> Path:
    args, out_dir = example_args(__doc__, argv)

    if args.quick:
        data = simulate(4, 6, np.arange(7, 18, 2), args.seed)
    else:
        data = simulate(10, 30, np.arange(7, 18), args.seed)
    result = mm.lmer("score ~ age_c + (age_c | child) + (1 | area)", data)
    print(result.summary())

    path = out_dir / "growth_model.png"
    plot(data, result, path)

    fixef, se = result.fixef, result.se
    vc = result.varcorr()
    sds = vc[vc["var2"].isna()].set_index(["grp", "var1"])["sdcor"]
    corr = vc[(vc["grp"] == "child") & vc["var2"].notna()]["sdcor"].iloc[0]
    growth, growth_sd = fixef["age_c"], sds[("child", "age_c")]
    print("In plain words:")
    print(f"- A typical 12-year-old scores {fixef['(Intercept)']:.0f} points, and scores grow "
          f"by {growth:.1f} points a year (95% CI {growth - 1.96 * se['age_c']:.1f} to "
          f"{growth + 1.96 * se['age_c']:.1f}).")
    print(f"- Children grow at different rates: the SD of their yearly growth is "
          f"{growth_sd:.1f}, so most grow between {growth - 2 * growth_sd:.1f} and "
          f"{growth + 2 * growth_sd:.1f} points a year.")
    print(f"- Children who score higher at 12 tend to grow "
          f"{'faster' if corr > 0 else 'more slowly'} (correlation {corr:.2f}).")
    print(f"- Areas differ by an SD of {sds[('area', '(Intercept)')]:.1f} points, children "
          f"within an area by {sds[('child', '(Intercept)')]:.1f} at age 12.")
    return path


if __name__ == "__main__":
    main()
