"""nlme's residual structures as the user writes them: ``corAR1``, ``corCAR1``, ``corCompSymm``
(``correlation=``) and ``varIdent``, ``varPower`` (``variance=``).

These are specifications only (a one-sided formula and a starting value, as nlme's
constructors); ``layout.bind`` ties them to the rows of a model. Within group j the residuals
are e_j ~ N(0, sigma^2 Lambda_j C_j Lambda_j), C_j from the correlation structure and Lambda_j
diagonal from the variance function (nlme's ``lme(correlation =, weights =)``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import FormulaError

_NAME = r"(?:`[^`]+`|(?:[^\W\d_]|\.(?!\d))[\w.]*)"
_FORM = re.compile(rf"^\s*~?\s*(?P<cov>{_NAME}|1)\s*(?:\|\s*(?P<grp>{_NAME}(?:\s*:\s*{_NAME})*)\s*)?$")


def _strip(name: str) -> str:
    return name[1:-1] if name.startswith("`") else name


def parse_form(form: str, what: str) -> tuple[str | None, tuple[str, ...]]:
    """(covariate or None for ``1``, grouping variables) of ``"~ t | g"``, ``"~ 1 | a:b"``,
    ``"~ v"``; the covariate must be a column name."""
    match = _FORM.match(form or "")
    if match is None:
        raise FormulaError(f"{what}: form must read '~ covariate | group', '~ 1 | group' or "
                           f"'~ covariate' with column names, not {form!r}")
    cov = match.group("cov")
    groups = match.group("grp")
    group_vars = tuple(_strip(g.strip()) for g in groups.split(":")) if groups else ()
    return (None if cov == "1" else _strip(cov)), group_vars


def deparse_form(covariate: str | None, groups: tuple[str, ...]) -> str:
    """nlme's printout of the form: ``~Days | Subject``, ``~1 | Sex``, ``~Time``."""
    text = "~" + (covariate or "1")
    return text + (" | " + ":".join(groups) if groups else "")


@dataclass(frozen=True)
class ResidualSpec:
    """A residual structure before it meets the data.

    form : nlme's one-sided formula as text; value : the starting value of its parameter(s)
    on nlme's scale (None: the default start).
    """

    form: str = "~ 1"
    value: object = None

    kind = ""            # "correlation" or "variance"
    title = ""           # nlme's name of the structure in its printout

    @property
    def covariate(self) -> str | None:
        return parse_form(self.form, type(self).__name__)[0]

    @property
    def groups(self) -> tuple[str, ...]:
        return parse_form(self.form, type(self).__name__)[1]

    def formula_text(self) -> str:
        return deparse_form(self.covariate, self.groups)

    def columns(self) -> list[str]:
        """The data columns this structure reads."""
        return ([self.covariate] if self.covariate else []) + list(self.groups)

    def __post_init__(self):
        parse_form(self.form, type(self).__name__)


class corAR1(ResidualSpec):  # noqa: N801 - nlme's name
    """AR(1) within groups: correlation phi^|i - j| between the rows at positions i and j.

    ``"~ 1 | g"``: positions are the row order within each group; ``"~ t | g"``: t holds integer
    positions (gaps allowed). value: phi, in (-1, 1).
    """

    kind = "correlation"
    title = "AR(1)"


class corCAR1(ResidualSpec):  # noqa: N801 - nlme's name
    """Continuous-time AR(1): correlation phi^|t_i - t_j| for real times t, phi in (0, 1)."""

    kind = "correlation"
    title = "Continuous AR(1)"


class corCompSymm(ResidualSpec):  # noqa: N801 - nlme's name
    """Compound symmetry: one correlation rho between any two rows of a group."""

    kind = "correlation"
    title = "Compound symmetry"


class varIdent(ResidualSpec):  # noqa: N801 - nlme's name
    """A residual SD per stratum, ``"~ 1 | s"``: sigma times a ratio, 1 for the first level of s.

    value : None or a dict level -> ratio.
    """

    kind = "variance"
    title = "Different standard deviations per stratum"


class varPower(ResidualSpec):  # noqa: N801 - nlme's name
    """Residual SD proportional to a power of a covariate, ``"~ v"``: sigma |v|^delta."""

    kind = "variance"
    title = "Power of variance covariate"


SPECS = (corAR1, corCAR1, corCompSymm, varIdent, varPower)
