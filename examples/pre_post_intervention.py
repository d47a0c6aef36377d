"""Pre-post intervention: two groups, each person measured before and after.

Design
    People are randomised to a control or an intervention group and take a test before (pre)
    and after (post) the intervention. Group varies between persons, time within persons.

Model
    ``score ~ group * time + (1 | person)``. The random intercept absorbs the stable differences
    between persons, so the two measurements of one person are not treated as independent. The
    interaction ``group:time`` is the effect of the intervention: how much more the intervention
    group changed from pre to post than the control group. With only two measurements per
    person a random slope of time cannot be told apart from the residual, so there is none.

Run
    python examples/pre_post_intervention.py [--out-dir DIR] [--quick] [--seed N]
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

GROUPS = ["control", "intervention"]
TIMES = ["pre", "post"]


def simulate(n_per_group: int, seed: int) -> pd.DataFrame:
    """Scores of ``2 * n_per_group`` persons at pre and post.

    Both groups start at 50 (randomised), everybody gains 2 points by retesting, and the
    intervention adds 6 points; persons differ with SD 8, measurements with SD 5.
    """
    rng = np.random.default_rng(seed)
    n = 2 * n_per_group
    group = np.repeat([0, 1], n_per_group)
    ability = rng.normal(0.0, 8.0, n)
    rows = []
    for t, time in enumerate(TIMES):
        score = 50.0 + ability + t * (2.0 + 6.0 * group) + rng.normal(0.0, 5.0, n)
        rows.append(pd.DataFrame({"person": [f"p{i + 1:03d}" for i in range(n)],
                                  "group": np.array(GROUPS)[group], "time": time,
                                  "score": score.round(1)}))
    data = pd.concat(rows, ignore_index=True)
    data["person"] = pd.Categorical(data["person"])
    data["group"] = pd.Categorical(data["group"], categories=GROUPS)
    data["time"] = pd.Categorical(data["time"], categories=TIMES)
    return data


def plot(data: pd.DataFrame, result, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for g, (group, frame) in enumerate(data.groupby("group", observed=True)):
        wide = frame.pivot(index="person", columns="time", values="score").dropna()
        for _, row in wide.iterrows():
            ax.plot([0, 1], row[TIMES], color=f"C{g}", alpha=0.15, lw=0.8)
        grid = pd.DataFrame({"group": pd.Categorical([group] * 2, categories=GROUPS),
                             "time": pd.Categorical(TIMES, categories=TIMES)})
        # population predictions: the model's group means at pre and post
        ax.plot([0, 1], result.predict(grid, re_form="~0"), color=f"C{g}", lw=3, marker="o",
                label=f"{group} (model)")
    ax.set_xticks([0, 1], TIMES)
    ax.set_ylabel("score")
    ax.set_title("Thin lines: persons; thick lines: model means")
    ax.legend()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> Path:
    args, out_dir = example_args(__doc__, argv)

    data = simulate(15 if args.quick else 60, args.seed)
    result = mm.lmer("score ~ group * time + (1 | person)", data)
    print(result.summary())

    path = out_dir / "pre_post_intervention.png"
    plot(data, result, path)

    fixef, se = result.fixef, result.se

    def ci(name: str) -> str:
        return f"95% CI {fixef[name] - 1.96 * se[name]:.1f} to {fixef[name] + 1.96 * se[name]:.1f}"

    icc = result.icc()["person"]
    print("In plain words:")
    lo = fixef["groupintervention"] - 1.96 * se["groupintervention"]
    hi = fixef["groupintervention"] + 1.96 * se["groupintervention"]
    verdict = ("compatible with no difference, as expected after randomisation" if lo < 0 < hi
               else "more than chance usually gives: check how the groups were formed")
    print(f"- Before the intervention the groups differed by {fixef['groupintervention']:.1f} "
          f"points ({ci('groupintervention')}), {verdict}.")
    print(f"- The control group changed by {fixef['timepost']:.1f} points from pre to post "
          f"({ci('timepost')}): retest and other time effects.")
    print(f"- The intervention group changed {fixef['groupintervention:timepost']:.1f} points "
          f"more than the control group ({ci('groupintervention:timepost')}): this is the "
          f"effect of the intervention.")
    print(f"- {100 * icc:.0f}% of the variance lies between persons, which is why their two "
          f"measurements must not be treated as independent.")
    return path


if __name__ == "__main__":
    main()
