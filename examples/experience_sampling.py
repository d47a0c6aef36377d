"""Experience sampling: many short prompts per person, within- and between-person effects.

Design
    Over two weeks a phone app asks each participant several times a day how stressed they
    are and how their mood is. Stress varies both within a person (from one prompt to the
    next) and between persons (some people are more stressed in general).

Model
    ``mood ~ stress_within + stress_between + (stress_within | person)``. The two kinds of
    variation answer different questions, and one stress slope would mix them. So stress is
    split by person-mean centring: ``stress_between`` is a person's mean stress (here centred
    at the grand mean, so the intercept is the mood of an averagely stressed person at their
    usual stress) and ``stress_within`` is the prompt's deviation from that person's mean.
    The within-person effect may differ between persons (random slope); the between-person
    effect is a comparison of persons, so it has no slope over persons.

Run
    python examples/experience_sampling.py [--out-dir DIR] [--quick] [--seed N]
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


def simulate(n_persons: int, n_prompts: int, seed: int) -> pd.DataFrame:
    """Stress (0-10 scale) and mood of ``n_persons`` x ``n_prompts`` prompts.

    Usual stress varies between persons with SD 1 around 4, momentary stress around it with
    SD 1.2. Mood drops 0.3 per point of stress above one's own usual level (SD 0.15 between
    persons) and 0.8 per point of usual stress; persons' mood levels SD 0.6, prompts SD 0.8.
    """
    rng = np.random.default_rng(seed)
    usual = rng.normal(4.0, 1.0, n_persons)
    level = rng.normal(0.0, 0.6, n_persons)
    slope = rng.normal(-0.3, 0.15, n_persons)
    person = np.repeat(np.arange(n_persons), n_prompts)
    deviation = rng.normal(0.0, 1.2, person.size)
    stress = usual[person] + deviation
    mood = (6.0 + level[person] - 0.8 * (usual[person] - 4.0) + slope[person] * deviation
            + rng.normal(0.0, 0.8, person.size))
    return pd.DataFrame({
        "person": pd.Categorical([f"id{k + 1:03d}" for k in person]),
        "prompt": np.tile(np.arange(1, n_prompts + 1), n_persons),
        "stress": stress.round(2),
        "mood": mood.round(2),
    })


def centre_within_persons(data: pd.DataFrame) -> pd.DataFrame:
    """Add ``stress_between`` (person mean minus grand mean) and ``stress_within``.

    The person means come from the observed prompts: the model only knows what was measured.
    """
    data = data.copy()
    person_mean = data.groupby("person", observed=True)["stress"].transform("mean")
    data["stress_within"] = data["stress"] - person_mean
    data["stress_between"] = person_mean - person_mean.mean()
    return data


def plot(data: pd.DataFrame, result, path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    coefs = result.coef()["person"]
    for person, row in coefs.iterrows():
        own = data[data["person"] == person]
        # each line spans the person's own range and sits at the person's own level
        xs = np.array([own["stress_within"].min(), own["stress_within"].max()])
        start = row["(Intercept)"] + row["stress_between"] * own["stress_between"].iloc[0]
        left.plot(xs, start + row["stress_within"] * xs, color="0.6", lw=0.7)
    xs = np.array([data["stress_within"].min(), data["stress_within"].max()])
    fixef = result.fixef
    left.plot(xs, fixef["(Intercept)"] + fixef["stress_within"] * xs, color="C0", lw=3,
              label="average person")
    left.set_xlabel("stress above one's own mean")
    left.set_ylabel("mood")
    left.set_title("Within persons: one line per person")
    left.legend()
    means = data.groupby("person", observed=True)[["stress_between", "mood"]].mean()
    right.scatter(means["stress_between"], means["mood"], color="C1", s=15)
    xb = np.array([means["stress_between"].min(), means["stress_between"].max()])
    right.plot(xb, fixef["(Intercept)"] + fixef["stress_between"] * xb, color="C1", lw=3,
               label="model")
    right.set_xlabel("person's mean stress (centred)")
    right.set_title("Between persons: one point per person")
    right.legend()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> Path:
    args, out_dir = example_args(__doc__, argv)

    raw = simulate(15, 12, args.seed) if args.quick else simulate(80, 56, args.seed)
    data = centre_within_persons(raw)
    result = mm.lmer("mood ~ stress_within + stress_between + (stress_within | person)", data)
    print(result.summary())

    path = out_dir / "experience_sampling.png"
    plot(data, result, path)

    fixef, se = result.fixef, result.se
    vc = result.varcorr()
    slope_sd = vc[(vc["grp"] == "person") & (vc["var1"] == "stress_within")
                  & vc["var2"].isna()]["sdcor"].iloc[0]

    def ci(name: str) -> str:
        return f"95% CI {fixef[name] - 1.96 * se[name]:.2f} to {fixef[name] + 1.96 * se[name]:.2f}"

    def change(name: str) -> str:
        return f"{abs(fixef[name]):.2f} points {'lower' if fixef[name] < 0 else 'higher'}"

    print("In plain words:")
    print(f"- At moments when people are one point more stressed than usual for them, their "
          f"mood is {change('stress_within')} ({ci('stress_within')}).")
    print(f"- People who are one point more stressed in general have a mood "
          f"{change('stress_between')} ({ci('stress_between')}).")
    print(f"- These are two different questions with two different answers; one slope of raw "
          f"stress would mix them. The within-person effect varies between persons with an SD "
          f"of {slope_sd:.2f}.")
    return path


if __name__ == "__main__":
    main()
