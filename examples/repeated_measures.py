"""Repeated measures: every subject is measured under every condition, several times.

Design
    A Stroop task. Each subject responds to congruent, neutral and incongruent colour words,
    several trials per condition, so condition varies *within* subjects.

Model
    ``rt ~ condition + (condition | subject)``. Subjects differ in speed (random intercept) and,
    because each subject gives several trials per condition, we can also let the size of the
    condition effects differ between subjects (random slopes). With one observation per subject
    and condition only ``(1 | subject)`` would be identifiable. The smaller model is fitted
    too, for comparison.

Run
    python examples/repeated_measures.py [--out-dir DIR] [--quick] [--seed N]
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

CONDITIONS = ["congruent", "neutral", "incongruent"]


def simulate(n_subjects: int, n_trials: int, seed: int) -> pd.DataFrame:
    """Reaction times (ms) of ``n_subjects`` x 3 conditions x ``n_trials`` trials.

    Population means 550 / 570 / 610 ms; subjects' speed varies with SD 60 ms, their
    interference effects with SD 15 (neutral) and 30 ms (incongruent); trial noise SD 70 ms.
    """
    rng = np.random.default_rng(seed)
    effects = np.array([0.0, 20.0, 60.0])
    speed = rng.normal(0.0, 60.0, n_subjects)
    own_effects = effects + rng.normal(0.0, 1.0, (n_subjects, 3)) * np.array([0.0, 15.0, 30.0])
    subject = np.repeat(np.arange(n_subjects), 3 * n_trials)
    condition = np.tile(np.repeat(np.arange(3), n_trials), n_subjects)
    rt = (550.0 + speed[subject] + own_effects[subject, condition]
          + rng.normal(0.0, 70.0, subject.size))
    return pd.DataFrame({
        "subject": pd.Categorical([f"s{i + 1:02d}" for i in subject]),
        "condition": pd.Categorical.from_codes(condition, CONDITIONS),
        "rt": rt.round(1),
    })


def condition_means(result) -> pd.DataFrame:
    """Model-based mean of each condition with a Wald 95% interval (a linear combination of
    the fixed effects, so its variance is L V L')."""
    names = list(result.fixef.index)
    V = result.vcov.to_numpy()
    rows = []
    for k, cond in enumerate(CONDITIONS):
        L = np.zeros(len(names))
        L[0] = 1.0
        if k > 0:
            L[names.index(f"condition{cond}")] = 1.0
        est, se = L @ result.fixef.to_numpy(), float(np.sqrt(L @ V @ L))
        rows.append((cond, est, est - 1.96 * se, est + 1.96 * se))
    return pd.DataFrame(rows, columns=["condition", "mean", "lower", "upper"])


def plot(data: pd.DataFrame, means: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    per_subject = data.groupby(["subject", "condition"], observed=True)["rt"].mean().unstack()
    for _, row in per_subject.iterrows():
        ax.plot(range(3), row[CONDITIONS].to_numpy(), color="0.75", lw=0.8)
    ax.errorbar(range(3), means["mean"], yerr=[means["mean"] - means["lower"],
                                               means["upper"] - means["mean"]],
                color="C0", marker="o", lw=2.5, capsize=5, label="model mean, 95% CI")
    ax.set_xticks(range(3), CONDITIONS)
    ax.set_ylabel("reaction time (ms)")
    ax.set_title("Each grey line is one subject's condition means")
    ax.legend()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> Path:
    args, out_dir = example_args(__doc__, argv)

    data = simulate(12, 5, args.seed) if args.quick else simulate(40, 20, args.seed)
    small = mm.lmer("rt ~ condition + (1 | subject)", data)
    full = mm.lmer("rt ~ condition + (condition | subject)", data)
    print(full.summary())
    print(f"\nAIC (1 | subject): {small.aic:.1f}   AIC (condition | subject): {full.aic:.1f}")

    means = condition_means(full)
    path = out_dir / "repeated_measures.png"
    plot(data, means, path)

    fixef, se = full.fixef, full.se
    vc = full.varcorr()
    sd_subject = vc.loc[(vc.grp == "subject") & (vc.var1 == "(Intercept)") & vc.var2.isna(),
                        "sdcor"].iloc[0]
    print("In plain words:")
    for cond in CONDITIONS[1:]:
        name = f"condition{cond}"
        est, half = fixef[name], 1.96 * se[name]
        direction = "longer" if est >= 0 else "less"
        sure = ("" if est - half > 0 or est + half < 0
                else "; the interval includes 0, so the data cannot tell the direction")
        print(f"- {cond.capitalize()} trials took {abs(est):.0f} ms {direction} than congruent "
              f"ones on average (95% CI {est - half:.0f} to {est + half:.0f} ms{sure}).")
    print(f"- Subjects differ in overall speed: their congruent means vary with an SD of "
          f"{sd_subject:.0f} ms around {fixef['(Intercept)']:.0f} ms.")
    better = "the random-slope model" if full.aic < small.aic else "the random-intercept model"
    print(f"- By AIC, {better} describes the data better"
          + (" (a singular fit: some slope variance is estimated as zero)."
             if full.is_singular else "."))
    return path


if __name__ == "__main__":
    main()
