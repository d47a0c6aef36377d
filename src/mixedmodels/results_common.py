"""Tables every mixed-model result shares: VarCorr rows, ranef with conditional SDs, coef.

Functions of the term specifications and the estimates only (``zb_rows`` also reads the
terms' rows), so the linear (``LmerResult``) and the generalized (``GlmerResult``) results
build the same lme4 layouts from one place.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd


def group_labels(terms) -> list[str]:
    """VarCorr group labels: repeated factors get lme4's '.1', '.2' suffixes."""
    seen: dict[str, int] = {}
    labels = []
    for t in terms:
        count = seen.get(t.group_name, 0)
        labels.append(t.group_name if count == 0 else f"{t.group_name}.{count}")
        seen[t.group_name] = count + 1
    return labels


def terms_by_group(terms) -> dict[str, list[int]]:
    """Grouping factor -> indices of its terms, in term order."""
    groups: dict[str, list[int]] = {}
    for j, t in enumerate(terms):
        groups.setdefault(t.group_name, []).append(j)
    return groups


def ngroups(terms) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in terms:
        out.setdefault(t.group_name, t.n_levels)
    return out


def varcorr_frame(terms, covariances: list[np.ndarray], residual_sd: float | None
                  ) -> pd.DataFrame:
    """lme4's ``as.data.frame(VarCorr(m))``: grp, var1, var2, vcov, sdcor.

    covariances : per term Sigma_j (p_j, p_j); residual_sd : the Residual row's SD, or None for
    families without a scale (binomial, Poisson), which have no Residual row.

    One row per variance (var2 missing), then per covariance (sdcor the correlation), per term;
    the Residual row last (var1 and var2 missing). The one missing-value marker is NaN, where R
    has NA: var1 / var2 as above, and sdcor of a correlation whose SDs include a 0. The text
    columns keep pandas' text dtype even when every entry is missing.
    """
    rows = []
    for label, t, S in zip(group_labels(terms), terms, covariances):
        sd = np.sqrt(np.diag(S))
        for i, name in enumerate(t.column_names):
            rows.append((label, name, np.nan, S[i, i], sd[i]))
        for j in range(t.p):
            for i in range(j + 1, t.p):
                denom = sd[i] * sd[j]
                corr = S[i, j] / denom if denom > 0 else np.nan
                rows.append((label, t.column_names[j], t.column_names[i], S[i, j], corr))
    if residual_sd is not None:
        rows.append(("Residual", np.nan, np.nan, residual_sd**2, residual_sd))
    table = pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])
    text = pd.Series(["grp"]).dtype
    return table.astype({"grp": text, "var1": text, "var2": text})


def ranef_frame(terms, b, cond_var) -> pd.DataFrame:
    """``as.data.frame(ranef(m, condVar=TRUE))``: grpvar, term, grp, condval, condsd.

    b : per term (l_j, p_j); cond_var : per term (l_j, p_j, p_j). Levels in R's order.
    """
    frames = []
    for group, idx in terms_by_group(terms).items():
        for j in idx:
            t = terms[j]
            for c, name in enumerate(t.column_names):
                frames.append(pd.DataFrame({
                    "grpvar": group, "term": name, "grp": list(t.levels),
                    "condval": b[j][:, c], "condsd": np.sqrt(cond_var[j][:, c, c])}))
    return pd.concat(frames, ignore_index=True)


def ranef_by_group(terms, values) -> dict[str, pd.DataFrame]:
    """lme4's ``ranef(m)`` layout: grouping factor -> DataFrame (levels x term columns).

    values(j, c) gives the (l_j,) column c of term j (a conditional mode, or its SD); the terms
    of one factor sit side by side in term order; the index holds the levels, named by the
    factor. Each frame holds copies.
    """
    out = {}
    for group, idx in terms_by_group(terms).items():
        index = pd.Index(list(terms[idx[0]].levels), name=group)
        columns: dict[str, np.ndarray] = {}
        for j in idx:
            for c, name in enumerate(terms[j].column_names):
                columns.setdefault(name, np.array(values(j, c), dtype=float))
        out[group] = pd.DataFrame(columns, index=index)
    return out


def coef_frames(terms, fixef: pd.Series, b) -> dict[str, pd.DataFrame]:
    """Per grouping factor, a frame (levels x coefficients) of fixef + ranef."""
    out = {}
    for group, idx in terms_by_group(terms).items():
        levels = list(terms[idx[0]].levels)
        frame = pd.DataFrame(np.tile(fixef.to_numpy(), (len(levels), 1)),
                             index=pd.Index(levels, name=group), columns=fixef.index)
        for j in idx:
            for c, name in enumerate(terms[j].column_names):
                if name not in frame.columns:
                    frame[name] = 0.0
                frame[name] = frame[name].to_numpy() + b[j][:, c]
        out[group] = frame
    return out


def zb_rows(terms, b) -> np.ndarray:
    """(n,) Z b summed over the terms (``ReTerm``, with their rows), for b per term
    (l_j, p_j)."""
    out = None
    for t, bj in zip(terms, b):
        part = np.einsum("np,np->n", t.z, bj[t.refs])
        out = part if out is None else out + part
    return out


def readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view of a (no copy: for n-length arrays nothing else writes to)."""
    out = np.asarray(a, dtype=float).view()
    out.flags.writeable = False
    return out


def frozen(a: np.ndarray) -> np.ndarray:
    """A read-only copy of a."""
    out = np.array(a, dtype=float, copy=True)
    out.flags.writeable = False
    return out


class RandomEffectsTables:
    """The random-effects tables lmer and glmer results share (lme4's ``ngrps``, ``ranef``,
    ``coef``, the counts ``nobs``, ``n_theta`` and AIC / BIC), read off ``info``, ``theta``,
    ``objective``, ``df``, ``terms``,
    ``b`` (per term (l_j, p_j)), ``cond_var`` (per term (l_j, p_j, p_j)) and ``fixef``, which
    each result class provides. Values are on the linear-predictor scale (the link scale of a
    GLMM)."""

    @property
    def nobs(self) -> int:
        """Rows used by the fit."""
        return self.info.n

    @property
    def n_theta(self) -> int:
        return self.theta.size

    @property
    def aic(self) -> float:
        """lme4's AIC: the fit's objective (-2 log-likelihood, or the REML criterion) + 2 df."""
        return self.objective + 2.0 * self.df

    @property
    def bic(self) -> float:
        """lme4's BIC: the objective + log(nobs) df."""
        return self.objective + math.log(self.nobs) * self.df

    @property
    def ngroups(self) -> dict[str, int]:
        """Grouping factor -> number of levels (lme4's ``ngrps``)."""
        return ngroups(self.terms)

    def ranef(self, as_dict: bool = False) -> pd.DataFrame | dict[str, pd.DataFrame]:
        """Conditional modes of the random effects (lme4's ``ranef``).

        Parameters
        ----------
        as_dict : False (default) for the long table of
            ``as.data.frame(ranef(m, condVar=TRUE))``: columns grpvar, term, grp, condval,
            condsd, one row per (term column, level), levels in R's order. True for lme4's
            ``ranef(m)`` layout: a dict grouping factor -> DataFrame (l, columns) with the
            levels as index (named by the factor) and one column per term column, e.g.
            ``m.ranef(as_dict=True)["Subject"]``. The conditional SDs in that layout (lme4's
            ``attr(, "postVar")``, square-rooted) come from ``ranef_condsd()``; the full
            conditional covariance matrices per level from ``cond_var``.

        Returns
        -------
        DataFrame, or dict[str, DataFrame] with as_dict=True (a new object on each call).
        """
        if as_dict:
            return ranef_by_group(self.terms, lambda j, c: self.b[j][:, c])
        return ranef_frame(self.terms, self.b, self.cond_var)

    def ranef_condsd(self) -> dict[str, pd.DataFrame]:
        """Conditional SDs of the random effects in the layout of ``ranef(as_dict=True)``.

        lme4: ``sqrt`` of the diagonal of ``attr(ranef(m, condVar = TRUE)$g, "postVar")``,
        one frame per grouping factor g (levels x term columns). With ``ranef(as_dict=True)``
        this gives (approximate, for a GLMM) intervals ``re[g] +- 1.96 * sd[g]``.
        """
        return ranef_by_group(self.terms, lambda j, c: np.sqrt(self.cond_var[j][:, c, c]))

    def coef(self) -> dict[str, pd.DataFrame]:
        """Per grouping factor, a frame (levels x coefficients) of fixef + ranef."""
        return coef_frames(self.terms, self.fixef, self.b)
