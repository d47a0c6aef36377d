"""Crossed random effects: every participant responds to every item.

Design
    A lexical decision task. Participants read words (items) and decide quickly whether each is
    a word; half the items are frequent words, half rare ones. Every participant sees every
    item, so participants and items are *crossed*, not nested.

Model
    ``rt ~ condition + (condition | participant) + (1 | item)``. Participants differ in speed
    and in how much rare words slow them down: condition varies within participants, so it
    gets a random slope there. Items differ in difficulty too, but each item belongs to one
    condition only, so there is no slope of condition over items. Leaving out ``(1 | item)``
    would treat the items as the only possible ones and make the condition effect look more
    certain than it is.

Run
    python examples/crossed_trials.py [--out-dir DIR] [--quick] [--seed N]
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

CONDITIONS = ["frequent", "rare"]


def simulate(n_participants: int, n_items: int, seed: int) -> pd.DataFrame:
    """Reaction times (ms) of every participant on every item.

    Frequent words take 600 ms, rare ones 50 ms longer. Participants: speed SD 60 ms, rare-word
    cost SD 20 ms, correlation 0.3. Items: difficulty SD 25 ms. Trial noise SD 70 ms.
    """
    rng = np.random.default_rng(seed)
    cov = np.array([[60.0**2, 0.3 * 60 * 20], [0.3 * 60 * 20, 20.0**2]])
    person = rng.multivariate_normal([0.0, 0.0], cov, n_participants)
    item_difficulty = rng.normal(0.0, 25.0, n_items)
    item_rare = np.arange(n_items) % 2  # alternate so both conditions have n_items / 2 items
    p = np.repeat(np.arange(n_participants), n_items)
    i = np.tile(np.arange(n_items), n_participants)
    rare = item_rare[i]
    rt = (600.0 + 50.0 * rare + person[p, 0] + person[p, 1] * rare + item_difficulty[i]
          + rng.normal(0.0, 70.0, p.size))
    return pd.DataFrame({
        "participant": pd.Categorical([f"p{k + 1:02d}" for k in p]),
        "item": pd.Categorical([f"w{k + 1:02d}" for k in i]),
        "condition": pd.Categorical.from_codes(rare, CONDITIONS),
        "rt": rt.round(0),
    })


def plot(data: pd.DataFrame, result, path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4.2), sharey=True)
    by_person = data.groupby(["participant", "condition"], observed=True)["rt"].mean().unstack()
    for _, row in by_person.iterrows():
        left.plot([0, 1], row[CONDITIONS], color="0.7", lw=0.8)
    fixef = result.fixef
    left.plot([0, 1], [fixef["(Intercept)"], fixef["(Intercept)"] + fixef["conditionrare"]],
              color="C0", lw=3, marker="o", label="model (population)")
    left.set_title("Participants: mean RT per condition")
    left.legend()
    by_item = data.groupby("item", observed=True).agg(rt=("rt", "mean"),
                                                      condition=("condition", "first"))
    rng = np.random.default_rng(0)
    codes = by_item["condition"].cat.codes.to_numpy()
    right.scatter(codes + rng.uniform(-0.1, 0.1, codes.size), by_item["rt"], color="C1")
    right.set_title("Items: mean RT of each word")
    for ax in (left, right):
        ax.set_xticks([0, 1], CONDITIONS)
        ax.set_xlim(-0.4, 1.4)
    left.set_ylabel("reaction time (ms)")
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> Path:
    args, out_dir = example_args(__doc__, argv)

    data = simulate(12, 16, args.seed) if args.quick else simulate(40, 60, args.seed)
    result = mm.lmer("rt ~ condition + (condition | participant) + (1 | item)", data)
    print(result.summary())

    path = out_dir / "crossed_trials.png"
    plot(data, result, path)

    est, se = result.fixef["conditionrare"], result.se["conditionrare"]
    vc = result.varcorr()
    sds = vc[vc["var2"].isna()].set_index(["grp", "var1"])["sdcor"]  # SD rows, not correlations
    sd_item = sds[("item", "(Intercept)")]
    sd_slope = sds[("participant", "conditionrare")]
    print("In plain words:")
    print(f"- Rare words took {est:.0f} ms longer than frequent ones on average "
          f"(95% CI {est - 1.96 * se:.0f} to {est + 1.96 * se:.0f} ms).")
    print(f"- Participants differ in that cost: its SD between participants is {sd_slope:.0f} "
          f"ms, so most participants pay between {est - 2 * sd_slope:.0f} and "
          f"{est + 2 * sd_slope:.0f} ms.")
    print(f"- Words of the same condition differ too (SD {sd_item:.0f} ms); the interval above "
          f"allows for that, so it generalises to other words, not just these "
          f"{result.ngroups['item']}.")
    return path


if __name__ == "__main__":
    main()
