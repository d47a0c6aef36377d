"""A fitted ``lmer`` model printed as lme4 1.1's ``print(summary(m))``, and as HTML for Jupyter.

Rendering only: every number comes from the result object. The arithmetic done here is what R's
print method itself does: the layout of ``printCoefmat`` and lme4's ``.prt.*`` blocks, the
quantiles of the scaled residuals and the correlations of the fixed effects. R's number
formatting (``format``, ``format.pval``, ``zapsmall``, ...) lives in ``rformat.py``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .lmm import singular_message
from .residual.spec import deparse_form
from .rformat import (SIGNIF_LEGEND, WIDTH, abbreviate, cat_fill, deparse_chunks, deparse_formula,
                      escape_html, format_num, format_pval, print_matrix, print_named, r_round,
                      signif_stars, strwrap, zapsmall)

DIGITS = 4                        # print.summary.merMod: max(3, getOption("digits") - 3)
COR_MAX = 12                      # getOption("lme4.summary.cor.max")
# lme4 points to help('isSingular'); the reader here is in Python


def _title_lines(title: str, cls: str) -> list[str]:
    """lme4's ``.prt.methTit``: a title too wide for the console is wrapped with
    ``cat(fill = TRUE)``, which also drops the quotes around the class."""
    if len(title) + 5 + len(cls) <= WIDTH:
        return [f"{title} ['{cls}']"]
    return cat_fill(strwrap(title, WIDTH - 2, 2) + [" [", cls, "]"], sep="")


# ---- the summary -----------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class Summary:
    """``print(summary(m))`` of an lme4 ``lmerMod`` fit: ``str()`` for text, HTML for Jupyter.

    Parameters
    ----------
    result : LmerResult (or any object with the same attributes).
    coef_table : optional DataFrame indexed by coefficient, columns ``Estimate``, ``Std. Error``,
        ``df``, ``t value``, ``Pr(>|t|)`` (lmerTest); then the header and the fixed-effects block
        are lmerTest's, with significance stars.
    data_name : printed as ``   Data: <name>`` (lme4 prints the data argument as written).
    weights_name : printed as ``Weights: <name>`` for fits with prior weights.
    ddf_method : the denominator-df method named in lmerTest's header.
    correlation : lme4's ``print(summary(m), correlation = )``: None (default) shows the
        correlation of the fixed effects when p <= 12 and a note otherwise; True always shows
        it (p > 1), False never.
    """

    result: Any
    coef_table: pd.DataFrame | None = None
    data_name: str | None = None
    weights_name: str | None = None
    ddf_method: str = "Satterthwaite"
    correlation: bool | None = None

    def _title(self) -> tuple[str, str]:
        # methTitle pastes a NULL after "maximum likelihood": hence its trailing space
        title = "Linear mixed model fit by " + ("REML" if self.result.reml else
                                                "maximum likelihood ")
        if self.coef_table is None:
            return title, "lmerMod"
        if self.ddf_method == "residual":
            # lmerTest has no such method; say plainly which df the p-values use.
            return f"{title}. t-tests use the residual df (n - p)", "lmerModLmerTest"
        return f"{title}. t-tests use {self.ddf_method}'s method", "lmerModLmerTest"

    def _reml_line(self) -> str:
        r = self.result
        crit = r.reml_criterion if r.reml_criterion is not None else r.objective
        return "REML criterion at convergence: " + format_num(r_round([crit], 1))[0].strip()

    def _likelihood_row(self) -> tuple[list[str], list[str]]:
        r = self.result
        values = r_round([r.aic, r.bic, r.loglik, r.deviance, r.nobs - r.df], 1)
        # lme4 formats the row together, then re-formats df.resid alone so it shows as an integer
        return (["AIC", "BIC", "logLik", "deviance", "df.resid"],
                format_num(values)[:4] + [format_num(values[4:])[0]])

    def _residual_quantiles(self) -> list[str]:
        if self.result.sigma == 0:  # an exact fit: nothing to scale by
            return format_num([np.nan] * 5, DIGITS)
        # a fit from a source computes them where its rows are (sources/result.py)
        reader = getattr(self.result, "scaled_residual_quantiles", None)
        if reader is not None:
            q = reader()
        else:
            scaled = np.asarray(self.result.residuals(type="pearson"), float) / self.result.sigma
            q = np.quantile(scaled[np.isfinite(scaled)], [0, 0.25, 0.5, 0.75, 1])
        return format_num(zapsmall(list(q), DIGITS + 1), DIGITS)

    def _varcorr_table(self) -> tuple[list[str], list[list[str]]]:
        """lme4's ``formatVC``: Groups, Name, Variance, Std.Dev. and lower-triangle Corr columns."""
        vc = self.result.varcorr()
        groups: dict[str, list] = {}
        for row, is_var in zip(vc.itertuples(index=False), vc["var2"].isna()):
            groups.setdefault(row.grp, []).append((row, is_var))
        sds, labels, names, corr_blocks = [], [], [], []
        for grp, rows in groups.items():
            cols = [row.var1 if isinstance(row.var1, str) else "" for row, v in rows if v]
            sds += [row.sdcor for row, v in rows if v]
            labels += [grp] + [""] * (len(cols) - 1)
            names += cols
            if cols != [""]:                   # not the Residual row
                C = np.eye(len(cols))
                for row, v in rows:
                    if not v:
                        i, j = cols.index(row.var1), cols.index(row.var2)
                        C[i, j] = C[j, i] = row.sdcor
                corr_blocks.append(C)
        header = ["Groups", "Name", "Variance", "Std.Dev."]
        columns = [labels, names, format_num([s * s for s in sds], DIGITS), format_num(sds, DIGITS)]
        maxlen = max((C.shape[0] for C in corr_blocks), default=1)
        if maxlen > 1:
            corr_rows = []
            for C in corr_blocks:            # each term's matrix is formatted on its own
                k = C.shape[0]
                cells = format_num(r_round(C.ravel(), 2), 7, nsmall=2)
                corr_rows += [[cells[i * k + j] if j < i else "" for j in range(maxlen - 1)]
                              for i in range(k)]
            corr_rows += [[""] * (maxlen - 1)] * (len(labels) - len(corr_rows))
            columns += [list(col) for col in zip(*corr_rows)]
            header += ["Corr"] + [""] * (maxlen - 2)
        return header, columns

    def _groups_lines(self) -> list[str]:
        r = self.result
        groups = "; ".join(f"{g}, {n}" for g, n in r.ngroups.items())
        lines = cat_fill([f"Number of obs: {r.nobs}, groups: ", groups])
        dropped = r.info.n_dropped_rows
        if dropped:
            noun = "observation" if dropped == 1 else "observations"
            lines.append(f"({dropped} {noun} deleted due to missingness)")
        return lines

    def _residual_structure_lines(self) -> list[str]:
        """nlme's ``print(summary(lme))`` lines for a residual correlation structure and
        variance function (empty without them)."""
        layout = getattr(self.result, "residual_structure", None)
        if layout is None:
            return []
        cor, var = self.result.model.natural(self.result.theta)
        lines: list[str] = []
        if cor is not None:
            spec = layout.cor.spec
            lines += [f"Correlation Structure: {spec.title}",
                      f" Formula: {deparse_form(spec.covariate, layout.cor.group_vars)} ",
                      " Parameter estimate(s):"]
            lines += print_named(list(cor.index), format_num(list(cor.to_numpy()), 7))
        if var is not None:
            spec = layout.var.spec
            lines += ["Variance function:", f" Structure: {spec.title}",
                      f" Formula: {spec.formula_text()} ", " Parameter estimates:"]
            lines += print_named([str(i) for i in var.index],
                                 format_num(list(var.to_numpy()), 7))
        return [""] + lines

    def _coef_frame(self) -> pd.DataFrame:
        if self.coef_table is not None:
            return self.coef_table
        r = self.result
        est, se = np.asarray(r.fixef, float), np.asarray(r.se, float)
        return pd.DataFrame({"Estimate": est, "Std. Error": se, "t value": est / se},
                            index=list(r.fixef.index))

    def _coef_table(self) -> tuple[list[str], list[str], list[list[str]], bool]:
        """R's ``printCoefmat(digits = 4)``: header, row names, columns, whether stars show."""
        table = self._coef_frame()
        header = [str(c) for c in table.columns]
        x = table.to_numpy(dtype=float)
        n, has_p = x.shape[0], len(header) >= 4 and header[-1].startswith("Pr(")
        k = len(header) - has_p - 1           # coefficient-like columns, then the statistic
        acs = np.abs(x[:, :k])
        acs = acs[np.isfinite(acs) & (acs != 0)]
        # decimals chosen so that the smallest magnitude still shows `digits` digits
        digmin = 1 + math.floor(math.log10(acs.min())) if acs.size else 1
        flat = format_num(r_round(x[:, :k].ravel(order="F"), max(1, DIGITS - digmin)), DIGITS)
        columns = [flat[c * n:(c + 1) * n] for c in range(k)]
        columns.append(format_num(r_round(x[:, k], 3), DIGITS))
        # a nonzero value that the common layout shows as zero gets a layout of its own
        zeroed = [(c, i) for c in range(k) for i in range(n)
                  if np.isfinite(x[i, c]) and x[i, c] != 0 and float(columns[c][i]) == 0]
        for (c, i), s in zip(zeroed, format_num([x[i, c] for c, i in zeroed], DIGITS - 1)):
            columns[c][i] = s
        columns = [["NA" if np.isnan(v) else s for v, s in zip(x[:, c], col)]
                   for c, col in enumerate(columns)]
        stars = False
        if has_p:
            pv = list(x[:, -1])
            columns.append(format_pval(pv, 3))
            stars = any(p < 0.1 for p in pv if math.isfinite(p))
            if stars:
                symbols = [signif_stars(p) for p in pv]
                columns.append([s.ljust(max(len(t) for t in symbols)) for s in symbols])
                header.append("")
        return header, [str(i) for i in table.index], columns, stars

    def _fixef_correlation(self) -> tuple[list[str], list[str], list[list[str]]]:
        """The lower triangle of cor(beta-hat), names abbreviated as lme4 does."""
        V = np.asarray(self.result.vcov, float)
        if getattr(self.result, "sigma", None) == 0:
            # An exact fit: sigma^2 (R_X'R_X)^-1 is 0, its correlations are those of (R_X'R_X)^-1
            V = self.result.RX_inv.T @ self.result.RX_inv
        sd = np.sqrt(np.diag(V))
        p = V.shape[0]
        cells = format_num(r_round((V / np.outer(sd, sd)).ravel(), 3), 7, nsmall=3)
        names = [str(n) for n in self._coef_frame().index]
        columns = [[cells[i * p + j] if i > j else "" for i in range(1, p)] for j in range(p - 1)]
        return abbreviate(names, 6)[:-1], abbreviate(names, 11)[1:], columns

    def _notes(self) -> list[str]:
        """lme4's fit messages after the tables (its optimizer-code line is left out)."""
        r = self.result
        lines = []
        n_drop = len(r.info.dropped_columns)
        if n_drop:
            what = "column / coefficient" if n_drop == 1 else "columns / coefficients"
            lines += ["fit warnings:",
                      f"fixed-effect model matrix is rank deficient so dropping {n_drop} {what}"]
        singular = singular_message(glmm=hasattr(r, "family"))
        if r.is_singular:
            lines.append(singular)
        warnings = getattr(r.optsum, "warnings", None) or []
        return lines + [str(w) for w in warnings if str(w) != singular]

    def blocks(self, console: bool = True) -> list[tuple]:
        """The summary in print order, shared by the text and HTML renderings.

        Items are ``("text", lines)`` or ``("table", caption, header, row_names, columns, kind)``
        with kind ``"named"`` (a named vector, one cell per column), ``"left"`` or ``"right"``
        (a matrix with left- or right-justified cells). ``console`` wraps long lines at 80
        characters as R does.
        """
        r = self.result
        title, cls = self._title()
        formula = deparse_formula(r.formula)
        if console:
            head = _title_lines(title, cls) + cat_fill(["Formula:"] + deparse_chunks(formula))
        else:
            # R's class tag (['lmerMod']) means nothing on a web page
            head = [title, f"Formula: {formula}"]
        if self.data_name is not None:
            head.append(f"   Data: {self.data_name}")
        if self.weights_name is not None:
            head.append(f"Weights: {self.weights_name}")
        out: list[tuple] = [("text", head + [""])]
        if r.reml:
            out.append(("text", [self._reml_line(), ""]))
        else:
            names, values = self._likelihood_row()
            out += [("table", "", names, [], [[v] for v in values], "named"), ("text", [""])]
        quantiles = [[q] for q in self._residual_quantiles()]
        out.append(("table", "Scaled residuals: ", ["Min", "1Q", "Median", "3Q", "Max"], [],
                    quantiles, "named"))
        header, columns = self._varcorr_table()
        out += [("text", [""]),
                ("table", "Random effects:", header, [""] * len(columns[0]), columns, "left"),
                ("text", self._groups_lines() + self._residual_structure_lines())]
        p = len(r.fixef)
        if p > 0:
            header, rows, columns, stars = self._coef_table()
            out += [("text", [""]), ("table", "Fixed effects:", header, rows, columns, "right")]
            if stars:
                out.append(("text", ["---", "Signif. codes:  " + SIGNIF_LEGEND]))
            if self.correlation is None and p > COR_MAX:
                out.append(("text", ["", f"Correlation matrix not shown by default, as p = {p} > "
                                         f"{COR_MAX}.", "Use m.summary(correlation=True)  or",
                                     "    m.vcov                        if you need it", ""]))
            elif (p <= COR_MAX if self.correlation is None else self.correlation) and p > 1:
                out += [("text", [""]), ("table", "Correlation of Fixed Effects:",
                                         *self._fixef_correlation(), "left")]
        out.append(("text", self._notes()))
        return out

    def __str__(self) -> str:
        lines: list[str] = []
        for kind, *rest in self.blocks(console=True):
            if kind == "text":
                lines += rest[0]
                continue
            caption, header, rows, columns, style = rest
            lines += [caption] if caption else []
            if style == "named":
                lines += print_named(header, [c[0] for c in columns])
            else:
                lines += print_matrix(header, rows, columns, right=style == "right")
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(lines)

    __repr__ = __str__      # the REPL shows the summary, as R's auto-print does

    def _repr_html_(self) -> str:
        """The same content as ``str()`` as HTML paragraphs and tables (inline styles only)."""
        parts = []
        for kind, *rest in self.blocks(console=False):
            if kind == "table":
                parts.append(_html_table(*rest))
                continue
            text = [line.strip() for line in rest[0] if line.strip() and line != "---"]
            if text:
                parts.append("<p>" + "<br>".join(escape_html(t) for t in text) + "</p>")
        return '<div class="mixedmodels-summary">\n' + "\n".join(parts) + "\n</div>"


_NUMERIC_CELL = re.compile(r"^[-+<\s\d.e]*$|^(NA|NaN|-?Inf)$")


def _html_table(caption: str, header: Sequence[str], row_names: Sequence[str],
                columns: Sequence[Sequence[str]], style: str) -> str:
    """One block as an HTML table; numbers right-aligned, text left-aligned."""
    show_rows = any(row_names)
    head = ("<th></th>" if show_rows else "") + "".join(f"<th>{escape_html(h)}</th>" for h in header)
    body = []
    for i in range(len(columns[0]) if columns else 0):
        cells = [f'<th style="text-align:left">{escape_html(row_names[i])}</th>'] if show_rows else []
        for col in columns:
            cell = col[i].strip()
            align = "right" if _NUMERIC_CELL.match(cell) else "left"
            cells.append(f'<td style="text-align:{align}">{escape_html(cell)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    title = caption.strip().rstrip(":")
    cap = f'<caption style="text-align:left">{escape_html(title)}</caption>' if title else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


@dataclass(repr=False, eq=False)
class GlmerSummary(Summary):
    """``print(summary(m))`` of an lme4 ``glmerMod`` fit: the family line, the likelihood row
    with -2 log-likelihood as "deviance", z (or t) values with normal p-values."""

    def _title(self) -> tuple[str, str]:
        nagq = self.result.nagq
        method = ("Laplace Approximation" if nagq == 1 else
                  f"Adaptive Gauss-Hermite Quadrature, nAGQ = {nagq}")
        return f"Generalized linear mixed model fit by maximum likelihood ({method})", "glmerMod"

    def _likelihood_row(self) -> tuple[list[str], list[str]]:
        r = self.result
        values = r_round([r.aic, r.bic, r.loglik, r.minus2loglik, r.df_residual], 1)
        return (["AIC", "BIC", "logLik", "deviance", "df.resid"],
                format_num(values)[:4] + [format_num(values[4:])[0]])

    def blocks(self, console: bool = True) -> list[tuple]:
        out = super().blocks(console)
        fam = self.result.family
        kind, head = out[0]
        # lme4's .prt.family: cat(" Family:", family, " (", link, ")")
        at = next(i for i, line in enumerate(head) if line.startswith("Formula:"))
        out[0] = (kind, head[:at] + [f" Family: {fam.name}  ( {fam.link.name} )"] + head[at:])
        return out
