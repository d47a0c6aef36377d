"""The benchmark's cases: formula, data, fit kind and repeats, and how their data are loaded.

A case is one model on one data set, fitted by every tool with the same formula where the
tool's formula parser reads it. Where a peer's parser lacks a piece of R syntax that the case
uses (``cbind(a, b - a)``, ``scale(x)``, ``I(y > 3)``, a factor response), the case names an
equivalent formula for that peer over derived columns (``peer_formula``, ``DERIVED``); the
derived columns are computed in the data-load step, outside the timed fits, so the peer fits
the same model on the same numbers.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import simulate

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

FIT_KINDS = ("REML", "ML", "Laplace")
LMM_WARMUP_FORMULA = "Reaction ~ Days + (Days | Subject)"


def bundled_data_dir() -> Path:
    """The package's bundled datasets (the work tree's copy, else the installed one)."""
    path = REPO / "src" / "mixedmodels" / "datasets" / "data"
    if path.is_dir():
        return path
    import importlib.util  # an installed (non-editable) package: find it without importing it
    spec = importlib.util.find_spec("mixedmodels")
    return Path(spec.origin).parent / "datasets" / "data"


@dataclass(frozen=True)
class Case:
    """One benchmark case.

    fit: "REML" or "ML" (a linear mixed model, lmer) or "Laplace" (a GLMM, glmer with
    nAGQ = 1 and ``family``). source: "bundled" (``dataset``) or a ``simulate.KINDS`` key
    (``params``). repeats / quick: timed fits in a full / ``--quick`` run (quick None: the case
    is left out of a quick run). slow: lme4 and the peers get one fit under --slow-timeout,
    skipped when ten times their fit of ``slow_base`` (this case at a tenth of the rows, run
    earlier) already exceeds it. fixture: the lme4 golden file in tests/fixtures/ (reference
    fit and lme4's fit time); tight: a tight-tolerance lme4 refit there (GLMMs), the
    optimum the default lme4 fit is measured against. peer_formula / peer_weights: per peer,
    the formula and prior-weights column to use instead of ``formula`` (see the module note);
    derived: the ``DERIVED`` columns those formulas read.
    """

    name: str
    formula: str          # lme4 syntax
    fit: str
    source: str
    dataset: str = ""
    params: dict = field(default_factory=dict)
    repeats: int = 3
    quick: int | None = 1
    slow: bool = False
    slow_base: str = ""
    fixture: str = ""
    family: str = ""
    tight: str = ""
    peer_formula: dict = field(default_factory=dict)
    peer_weights: dict = field(default_factory=dict)
    derived: tuple = ()

    @property
    def reml(self) -> bool:
        return self.fit == "REML"

    @property
    def is_glmm(self) -> bool:
        return self.fit == "Laplace"

    @property
    def n_label(self) -> str:
        """'1e7' for a simulated case of 10,000,000 rows, '' for a bundled one."""
        n = self.params.get("n")
        return f"1e{len(str(int(n))) - 1}" if n else ""

    def formula_for(self, tool: str) -> str:
        return self.peer_formula.get(tool, self.formula)

    def weights_for(self, tool: str) -> str | None:
        return self.peer_weights.get(tool)


# Derived columns for the peers (see the module note): name -> function of the frame.
def _failures(frame):
    return (frame["size"] - frame["incidence"]).astype(float)


def _proportion(frame):
    return frame["incidence"] / frame["size"]


def _scaled_height(frame):
    # R's scale(): centred, divided by the sample SD (n - 1).
    h = frame["HEIGHT"].astype(float)
    return (h - h.mean()) / h.std(ddof=1)


def _above_three(frame):
    return (frame["y"] > 3).astype(float)


def _r2_yes(frame):
    # glmer's factor response: the first level ("N") is failure, every other level success.
    return (frame["r2"] != frame["r2"].cat.categories[0]).astype(float)


DERIVED = {"failures": _failures, "prop": _proportion, "HEIGHT_s": _scaled_height,
           "y_gt3": _above_three, "r2_y": _r2_yes}

_CBPP = "cbind(incidence, size - incidence) ~ period + (1|herd)"

CASES = [
    Case("sleepstudy", "Reaction ~ Days + (Days|Subject)", "REML", "bundled", "sleepstudy",
         repeats=20, quick=5, fixture="lme4/sleepstudy_reml.json"),
    Case("penicillin", "diameter ~ 1 + (1|plate) + (1|sample)", "REML", "bundled", "Penicillin",
         repeats=20, quick=5, fixture="lme4/penicillin_crossed.json"),
    Case("insteval_ml", "y ~ 1 + service + (1|s) + (1|d) + (1|dept)", "ML", "bundled",
         "InstEval", repeats=3, quick=1, fixture="lme4/insteval_ml.json"),
    Case("insteval_reml", "y ~ service * dept + (1|s) + (1|d)", "REML", "bundled", "InstEval",
         repeats=3, quick=1, fixture="extra/insteval_reml_service_dept.json"),
    Case("slopes_1e5", "y ~ x + (x|g1) + (1|g2)", "REML", "slopes", params={"n": 100_000},
         repeats=3, quick=1),
    Case("slopes_1e6", "y ~ x + (x|g1) + (1|g2)", "REML", "slopes", params={"n": 1_000_000},
         repeats=1, quick=1),
    Case("slopes_1e7", "y ~ x + (x|g1) + (1|g2)", "REML", "slopes", params={"n": 10_000_000},
         repeats=1, quick=None, slow=True, slow_base="slopes_1e6"),
    Case("crossed_2e6", "y ~ 1 + (1|u) + (1|i)", "REML", "crossed",
         params={"n": 2_000_000, "n_u": 20_000, "n_i": 2_000}, repeats=1, quick=None),
    # GLMMs (Laplace), issue #9 item 7.
    Case("cbpp_binomial", _CBPP, "Laplace", "bundled", "cbpp", family="binomial",
         repeats=20, quick=5, fixture="lme4/cbpp_binomial_laplace.json",
         tight="lme4_tight/cbpp_binomial_laplace.json",
         peer_formula={"glmm": "cbind(incidence, failures) ~ period + (1|herd)",
                       "mixedlm": "prop ~ period + (1|herd)"},
         peer_weights={"mixedlm": "size"}, derived=("failures", "prop")),
    Case("grouseticks_poisson",
         "TICKS ~ YEAR + scale(HEIGHT) + (1|BROOD) + (1|INDEX) + (1|LOCATION)", "Laplace",
         "bundled", "grouseticks", family="poisson", repeats=10, quick=3,
         peer_formula=dict.fromkeys(
             ("glmm", "mixedlm"), "TICKS ~ YEAR + HEIGHT_s + (1|BROOD) + (1|INDEX) + (1|LOCATION)"),
         derived=("HEIGHT_s",)),
    Case("verbagg_binary", "r2 ~ Anger + Gender + btype + situ + (1|id) + (1|item)", "Laplace",
         "bundled", "VerbAgg", family="binomial", repeats=5, quick=1,
         peer_formula=dict.fromkeys(
             ("glmm", "mixedlm"), "r2_y ~ Anger + Gender + btype + situ + (1|id) + (1|item)"),
         derived=("r2_y",)),
    Case("insteval_binary", "I(y > 3) ~ service + (1|s) + (1|d)", "Laplace", "bundled",
         "InstEval", family="binomial", repeats=3, quick=1, fixture="lme4/insteval_binary.json",
         tight="lme4_tight/insteval_binary.json",
         peer_formula=dict.fromkeys(("glmm", "mixedlm"), "y_gt3 ~ service + (1|s) + (1|d)"),
         derived=("y_gt3",)),
    Case("bernoulli_1e5", "y ~ x + (1|g1) + (1|g2)", "Laplace", "bernoulli",
         params={"n": 100_000}, family="binomial", repeats=3, quick=1),
    Case("bernoulli_1e6", "y ~ x + (1|g1) + (1|g2)", "Laplace", "bernoulli",
         params={"n": 1_000_000}, family="binomial", repeats=1, quick=None),
]
CASE_BY_NAME = {c.name: c for c in CASES}


def warmup_case(case: Case) -> Case | None:
    """The small fit run untimed before a case's timed fits (first-use imports, caches): None
    for a linear mixed model (sleepstudy, ``LMM_WARMUP_FORMULA``), cbpp for a GLMM."""
    return CASE_BY_NAME["cbpp_binomial"] if case.is_glmm else None


# --- data ---------------------------------------------------------------------------------

def load_bundled(name: str):
    """A bundled dataset as pandas, factors as Categoricals in R's level order."""
    import pandas as pd
    data_dir = bundled_data_dir()
    levels = json.loads((data_dir / "factor_levels.json").read_text()).get(name, {})
    frame = pd.read_csv(data_dir / f"{name}.csv.gz", dtype={c: str for c in levels},
                        keep_default_na=False, na_values=[""])
    for col, spec in levels.items():
        frame[col] = pd.Categorical(frame[col], categories=spec["levels"], ordered=spec["ordered"])
    return frame


def load_case(case: Case):
    """The case's data frame, as every tool gets it (before any derived columns)."""
    if case.source == "bundled":
        return load_bundled(case.dataset)
    return simulate.load_cached(case.source, **case.params)


def add_derived(case: Case, tool: str, frame) -> None:
    """Add the derived columns a peer's formula reads (in place; nothing for the others)."""
    if tool in case.peer_formula or tool in case.peer_weights:
        for name in case.derived:
            frame[name] = DERIVED[name](frame)


def frame_bytes(frame, exclude=()) -> int:
    """Bytes of the frame's columns, less the derived columns named in ``exclude``: every tool's
    input is counted as the case's own columns."""
    usage = frame.memory_usage(index=False, deep=True)
    return int(usage.drop(labels=[c for c in exclude if c in usage.index]).sum())
