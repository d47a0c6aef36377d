"""mixedmodels: linear mixed-effects models with lme4's answers, from Python.

>>> import mixedmodels as mm
>>> sleep = mm.datasets.load("sleepstudy")
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)
>>> print(m.summary())

Heavy modules are imported on first use, so ``import mixedmodels`` stays fast.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Every warning the package raises, and its errors, by class: catch or filter them as
# ``mm.SingularFitWarning`` without knowing the module that raises them.
_WARNINGS = {
    "SingularFitWarning": "mixedmodels.lmm",
    "ConvergenceWarning": "mixedmodels.lmm",
    "ScaleWarning": "mixedmodels.checks",
    "DroppedRowsWarning": "mixedmodels.formula.design",
    "RankDeficiencyWarning": "mixedmodels.formula.design",
    "SeparationWarning": "mixedmodels.glmm",
    "VcovWarning": "mixedmodels.glmer_results",
    "NonIntegerWarning": "mixedmodels.families",
    "RefitMLWarning": "mixedmodels.inference.lrt",
    "HessianWarning": "mixedmodels.inference.satterthwaite",
    "ProfileWarning": "mixedmodels.inference.profile",
    "BootstrapWarning": "mixedmodels.inference.bootstrap",
    "InfluenceWarning": "mixedmodels.inference.influence",
}
_ERRORS = {
    "MixedModelsError": "mixedmodels.errors",
    "FormulaError": "mixedmodels.errors",
    "DataError": "mixedmodels.errors",
    "FamilyError": "mixedmodels.families",
    "PirlsError": "mixedmodels.pirls",
}

__all__ = ["lmer", "anova", "datasets", "describe", "pooling", "icc", "plots", "write_report",
           "run_demo", "LmerResult", "LinearMixedModel", "parse_formula", "glmer", "glmer_nb",
           "families", "GlmerResult", "GeneralizedLinearMixedModel", "corAR1", "corCAR1",
           "corCompSymm", "varIdent", "varPower", *_WARNINGS, *_ERRORS]

_LAZY = {
    "lmer": ("mixedmodels.api", "lmer"),
    "glmer": ("mixedmodels.api", "glmer"),
    "glmer_nb": ("mixedmodels.api", "glmer_nb"),
    "families": ("mixedmodels.families", None),
    "GlmerResult": ("mixedmodels.glmer_results", "GlmerResult"),
    "GeneralizedLinearMixedModel": ("mixedmodels.glmm", "GeneralizedLinearMixedModel"),
    "LmerResult": ("mixedmodels.results", "LmerResult"),
    "LinearMixedModel": ("mixedmodels.lmm", "LinearMixedModel"),
    "parse_formula": ("mixedmodels.formula.bars", "parse_formula"),
    "datasets": ("mixedmodels.datasets", None),
    "anova": ("mixedmodels.inference.lrt", "anova"),
    "describe": ("mixedmodels.teaching.tables", "describe"),
    "pooling": ("mixedmodels.teaching.tables", "pooling"),
    "icc": ("mixedmodels.teaching.tables", "icc"),
    "plots": ("mixedmodels.plots", None),
    "write_report": ("mixedmodels.report", "write_report"),
    "run_demo": ("mixedmodels.report", "run_demo"),
    **{name: (module, name) for name, module in {**_WARNINGS, **_ERRORS}.items()},
    "corAR1": ("mixedmodels.residual.spec", "corAR1"),
    "corCAR1": ("mixedmodels.residual.spec", "corCAR1"),
    "corCompSymm": ("mixedmodels.residual.spec", "corCompSymm"),
    "varIdent": ("mixedmodels.residual.spec", "varIdent"),
    "varPower": ("mixedmodels.residual.spec", "varPower"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'mixedmodels' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
