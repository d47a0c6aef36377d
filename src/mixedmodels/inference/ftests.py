"""t and F tests of fixed effects with denominator df, as lmerTest 3.1 prints them.

- ``coefficients``: the summary's coefficient table (lmerTest ``summary``), one t test per
  fixed effect;
- ``anova``: one F test per term, type III (lmerTest's default, contrast-coding independent),
  type II (each term after the terms that do not contain it) or type I (sequential); or lme4's
  own ``anova(m)`` table (``ddf="lme4"``);
- ``contrast``: a t test (one row) or F test (several rows) of ``L beta = 0`` (lmerTest
  ``contest``).

Denominator df: "satterthwaite" (``satterthwaite.py``), "kenward-roger" (``kenward_roger.py``;
for ML fits computed from the REML refit, as pbkrtest does), "residual" (n - p) or "none".

Hypothesis matrices are built without the data: lmerTest's type III contrasts are exact linear
identities between model-matrix codings, so they are computed on a small synthetic data set with
every combination of the factors' levels (numeric variables drawn at random); type I and type II
contrasts use X'X of the fitted design.
"""
from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import MixedModelsError
from ..formula.contrasts import contr_treatment, interaction_columns
from ..formula.fixed import term_codes as _term_codes
from ..rformat import zapsmall_array
from . import kenward_roger as kr
from . import satterthwaite as sat

DDF_METHODS = ("satterthwaite", "kenward-roger", "residual", "none")
ANOVA_DDF_METHODS = DDF_METHODS + ("lme4",)
# Synthetic data for type III contrasts list every combination of factor levels up to this.
MAX_CELLS = 4096
T_COLUMNS = ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
F_COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]


def _ddf_method(ddf: str, valid: tuple[str, ...] = DDF_METHODS) -> str:
    """Normalize a ddf name ("Kenward_Roger" -> "kenward-roger"); ValueError if unknown."""
    name = str(ddf).strip().lower().replace("_", "-").replace(" ", "-")
    if name not in valid:
        raise ValueError(f"ddf must be one of {', '.join(repr(v) for v in valid)}; "
                         f"got {ddf!r}")
    return name


def _two_sided_p(t: np.ndarray, df: np.ndarray) -> np.ndarray:
    return 2.0 * stats.t.sf(np.abs(t), df)


# ---- t tests ---------------------------------------------------------------------------------
def _t_rows(result, C: np.ndarray, method: str) -> pd.DataFrame:
    """One t test per row c of C (h, p): Estimate, Std. Error, [df,] t value[, Pr(>|t|)]."""
    C = np.atleast_2d(np.asarray(C, dtype=float))
    if result.sigma == 0 and method != "none":
        # A response the fixed effects reproduce exactly (lmer warned): Var(beta-hat) is 0 and
        # no df can be derived from a deviance that is infinite everywhere.
        est = C @ np.asarray(result.beta, float)
        se = np.zeros(len(C))
        df = np.full(len(C), math.nan)
        method = "exact"
    elif method == "kenward-roger":
        info = kr.kenward_roger_info(result)
        est, se, df = np.array([kr.t_test(info, c) for c in C]).reshape(-1, 3).T
    else:
        est = C @ np.asarray(result.beta, float)
        V = np.asarray(result.vcov, float)
        se = np.sqrt(np.einsum("hi,ij,hj->h", C, V, C))
        if method == "satterthwaite":
            deriv = sat.varpar_derivatives(result)
            df = np.array([sat.t_test_df(deriv, c)[1] for c in C])
        else:
            df = np.full(len(C), float(result.nobs - result.beta.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = est / se
    if method == "none":
        return pd.DataFrame({"Estimate": est, "Std. Error": se, "t value": t})
    p_value = np.full(len(C), math.nan) if method == "exact" else _two_sided_p(t, df)
    return pd.DataFrame({"Estimate": est, "Std. Error": se, "df": df, "t value": t,
                         "Pr(>|t|)": p_value})


def coefficients(result, ddf: str = "satterthwaite") -> pd.DataFrame:
    """The fixed-effects coefficient table of lmerTest's ``summary``.

    Parameters
    ----------
    result : LmerResult
    ddf : "satterthwaite" (default), "kenward-roger", "residual" (df = n - p) or "none"
        (lme4's table: no df and p-value columns).

    Returns
    -------
    DataFrame indexed by R's coefficient names; columns ``Estimate``, ``Std. Error``, ``df``,
    ``t value``, ``Pr(>|t|)`` (``df`` and ``Pr(>|t|)`` absent for "none"). With
    "kenward-roger" the standard errors are the adjusted ones; for an ML fit everything comes
    from the REML refit (pbkrtest's convention).
    """
    method = _ddf_method(ddf)
    table = _t_rows(result, np.eye(result.beta.size), method)
    table.index = list(result.info.x_names)
    return table


# ---- F tests ---------------------------------------------------------------------------------
def _f_row(result, K: np.ndarray, method: str) -> list[float]:
    """lmerTest's ``contestMD`` for ``K beta = 0``, K (h, p): Sum Sq, Mean Sq, NumDF, DenDF,
    F value, Pr(>F) (DenDF and Pr(>F) dropped for "none"; NaN when K is empty or rank 0)."""
    K = np.atleast_2d(np.asarray(K, dtype=float))
    nan_row = [math.nan] * (4 if method == "none" else 6)
    if K.shape[0] == 0 or not np.any(K) or result.sigma == 0:
        return nan_row
    if method == "kenward-roger":
        info = kr.kenward_roger_info(result)
        F_unscaled, scaling, h, ddf = kr.f_test(info, K)
        mean_sq = F_unscaled * info.sigma**2
        F = F_unscaled * scaling
    else:
        beta = np.asarray(result.beta, float)
        if method == "satterthwaite":
            out = sat.f_test(sat.varpar_derivatives(result), beta, K)
        else:
            out = _wald_f(np.asarray(result.vcov, float), beta, K)
            out = None if out is None else (*out, float(result.nobs - beta.size))
        if out is None:
            return nan_row
        F, h, ddf = out
        mean_sq = F * result.sigma**2
    if method == "none":
        return [mean_sq * h, mean_sq, h, F]
    return [mean_sq * h, mean_sq, h, ddf, F, float(stats.f.sf(F, h, ddf))]


def _wald_f(V: np.ndarray, beta: np.ndarray, K: np.ndarray) -> tuple[float, int] | None:
    """(F, rank) of the Wald test of ``K beta = 0`` with Var(beta) = V, over the positive
    eigenvalues of K V K' (as lmerTest); None for rank 0."""
    d, P = np.linalg.eigh(K @ V @ K.T)
    d, P = d[::-1], P[:, ::-1]
    pos = d > max(math.sqrt(np.finfo(float).eps) * d[0], 0.0)
    if not pos.any():
        return None
    t2 = ((P[:, pos].T @ K) @ beta) ** 2 / d[pos]
    return float(t2.sum() / pos.sum()), int(pos.sum())


def _f_table(result, hypotheses: dict[str, np.ndarray], method: str) -> pd.DataFrame:
    columns = ["Sum Sq", "Mean Sq", "NumDF", "F value"] if method == "none" else F_COLUMNS
    rows = [_f_row(result, K, method) for K in hypotheses.values()]
    table = pd.DataFrame(rows, columns=columns, index=list(hypotheses), dtype=float)
    return table.astype({"NumDF": "Int64"}) if len(table) else table


# ---- contrast --------------------------------------------------------------------------------
def _contrast_matrix(result, L: Any) -> tuple[np.ndarray, Any]:
    """(h, p) array from a vector, array or DataFrame of coefficient columns; and its index."""
    names = list(result.info.x_names)
    p = len(names)
    index = None
    if isinstance(L, pd.Series):
        L = L.to_frame().T
    if isinstance(L, pd.DataFrame):
        unknown = [str(c) for c in L.columns if c not in names]
        if unknown:
            raise MixedModelsError(f"contrast columns {unknown} are not fixed effects of the "
                                   f"model (coefficients: {', '.join(names)})")
        index = L.index
        L = L.reindex(columns=names, fill_value=0.0).to_numpy(dtype=float)
    K = np.asarray(L, dtype=float)
    if K.ndim > 2:
        raise MixedModelsError(f"a contrast must be a vector or a matrix, not a {K.ndim}-d "
                               f"array")
    K = np.atleast_2d(K)
    if K.shape[1] != p:
        raise MixedModelsError(f"the contrast has {K.shape[1]} columns but the model has {p} "
                               f"fixed effects ({', '.join(names)}); expected width {p}, "
                               f"given {K.shape[1]}")
    return K, index


def contrast(result, L: Any, ddf: str = "satterthwaite") -> pd.DataFrame:
    """Test ``L beta = 0`` (lmerTest ``contest``).

    Parameters
    ----------
    result : LmerResult
    L : (p,) vector, (h, p) array, or DataFrame whose columns are coefficient names (absent
        coefficients count as 0).
    ddf : "satterthwaite", "kenward-roger", "residual" or "none".

    Returns
    -------
    DataFrame: one row of L gives a t test (Estimate, Std. Error, df, t value, Pr(>|t|));
    several rows one F test (Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F)).

    Raises
    ------
    MixedModelsError
        L's width is not the number of fixed effects p.
    """
    method = _ddf_method(ddf)
    K, index = _contrast_matrix(result, L)
    if K.shape[0] == 1:
        table = _t_rows(result, K, method)
        if index is not None:
            table.index = index
        return table
    return _f_table(result, {"contrast": K}, method)


# ---- hypotheses: type I ----------------------------------------------------------------------
def doolittle_lower(M: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Unit lower factor of lmerTest's ``doolittle`` LU decomposition (no pivoting) of M (p, p),
    with its zeroing of entries below eps."""
    n = M.shape[0]
    L, U = np.eye(n), np.zeros((n, n))
    for i in range(n):
        U[i, :] = M[i, :] - L[i, :i] @ U[:i, :]
        below = M[i + 1:, i] - L[i + 1:, :i] @ U[:i, i]
        L[i + 1:, i] = 0.0 if abs(U[i, i]) < eps else below / U[i, i]
    L[np.abs(L) < eps] = 0.0
    return L


def _term_columns(result) -> dict[str, list[int]]:
    """Columns of X per R term label, in X's order ("(Intercept)" included)."""
    out: dict[str, list[int]] = {}
    for j, term in enumerate(result.info.x_terms):
        out.setdefault(term, []).append(j)
    return out


def _xtx(result) -> np.ndarray:
    """X'X (p, p) of the fit's fixed effects; a fit from a source carries it (no X in memory)."""
    xtx = getattr(result.info, "xtx", None)
    if xtx is not None:
        return np.asarray(xtx, dtype=float)
    X = np.asarray(result.rows.X, dtype=float)
    return X.T @ X


def type1_hypotheses(result) -> dict[str, np.ndarray]:
    """lmerTest's type I (sequential) contrasts: rows of the transposed Doolittle factor of X'X
    for each term's columns."""
    G = _xtx(result)
    L = doolittle_lower(G).T if G.shape[0] > 1 else np.ones((1, 1))
    return {term: L[cols] for term, cols in _term_columns(result).items()
            if term != "(Intercept)"}


# ---- hypotheses: type II ---------------------------------------------------------------------
def type2_hypotheses(result) -> dict[str, np.ndarray]:
    """lmerTest's type II contrasts (``type = 2``: ``get_contrasts_type2_unfolded``).

    A term that no other term contains (``a:b`` in ``a*b``, or any term of an additive model)
    is tested by its own coefficients being 0. Any other term T is tested after every term that
    does not contain T and before the terms that contain it: X's columns are put in the order
    [unrelated, T, terms containing T] and T's rows of the transposed Doolittle factor of that
    X'X (a type I hypothesis in that order) are mapped back to X's column order. Containment
    is lmerTest's (``_containment``). One term only: the type I contrasts, as lmerTest.

    Returns
    -------
    dict term label -> (h, p) hypothesis matrix, terms in X's order.
    """
    columns = _term_columns(result)
    terms = [t for t in columns if t != "(Intercept)"]
    G = _xtx(result)
    p = G.shape[0]
    if p <= 1 or len(terms) <= 1:
        return type1_hypotheses(result)
    contained_in = _containment(result.info.x_spec)
    out = {}
    for term in terms:
        outer = [t for t in contained_in.get(term, []) if t in columns]
        if not outer:
            out[term] = np.eye(p)[columns[term]]
            continue
        moved = columns[term] + [j for t in outer for j in columns[t]]
        order = [j for j in range(p) if j not in set(moved)] + moved
        L = doolittle_lower(G[np.ix_(order, order)]).T   # rows and columns in the new order
        first = p - len(moved)
        H = np.zeros((len(columns[term]), p))
        H[:, order] = L[first:first + len(columns[term])]
        out[term] = H
    return out


# ---- hypotheses: type III --------------------------------------------------------------------
def _synthetic_encodings(variables: list, widths: list[int]) -> list[np.ndarray]:
    """Per variable, a full encoding (N, width) of a synthetic data set: every combination of
    the factors' levels, replicated so that random numeric columns vary within each cell."""
    factors = [i for i, v in enumerate(variables) if v.levels is not None]
    numeric = [i for i, v in enumerate(variables) if v.levels is None]
    n_levels = [len(variables[i].levels) for i in factors]
    reps = 2 + sum(widths[i] for i in numeric)
    rng = np.random.default_rng(20240229)
    if math.prod(n_levels) <= MAX_CELLS:
        cells = list(itertools.product(*(range(k) for k in n_levels)))
        codes = np.repeat(np.array(cells, dtype=int).reshape(len(cells), len(factors)), reps,
                          axis=0)
    else:
        # Too many combinations to list: random ones; the caller checks the result is exact.
        n = MAX_CELLS * reps
        codes = np.column_stack([rng.integers(0, k, n) for k in n_levels])
    n = codes.shape[0]
    full: list = [None] * len(variables)
    for k, i in enumerate(factors):
        full[i] = np.eye(len(variables[i].levels))[codes[:, k]]
    for i in numeric:
        full[i] = rng.standard_normal((n, widths[i]))
    return full


def _assemble(spec, full: list[np.ndarray], coding: str, terms=None
              ) -> tuple[np.ndarray, list[str], list[str]]:
    """Model matrix from per-variable encodings: coding "model" (the fit's contrasts),
    "treatment" (contr.treatment for every contrast-coded factor) or "dummies" (full dummies
    for every factor: R's ``model.matrix(~ 0 + term)`` for one term at a time)."""
    n = full[0].shape[0]
    blocks, names, owners = [], [], []
    if spec.intercept and coding != "dummies":
        blocks.append(np.ones((n, 1)))
        names.append("(Intercept)")
        owners.append("(Intercept)")
    for term in spec._terms if terms is None else terms:
        parts = []
        for i, code in term:
            var = spec._variables[i]
            if coding == "dummies" and var.levels is not None:
                code = 2
            if coding == "treatment" and var.levels is not None and code == 1:
                matrix, suffixes = contr_treatment(var.levels)
                parts.append((full[i] @ matrix, [f"{var.label}{s}" for s in suffixes]))
            else:
                parts.append(var.block(full[i], code))
        values, labels = interaction_columns([v for v, _ in parts], [s for _, s in parts])
        blocks.append(values)
        names.extend(labels)
        owners.extend([":".join(spec._variables[i].label for i, _ in term)] * len(labels))
    return np.hstack(blocks), names, owners


def _containment(spec) -> dict[str, list[str]]:
    """lmerTest's ``containment``: for each term, the terms that contain it.

    Term B contains term A when A's contrast-coded variables (code 1 in R's ``factors``
    attribute) are a proper subset of B's and both have the same plain numeric variables.
    """
    term_vars = [tuple(i for i, _ in term) for term in spec._terms]
    nlevels = [len(v.levels) if v.levels is not None else 0 for v in spec._variables]
    codes = _term_codes(term_vars, True, nlevels)
    labels = [":".join(spec._variables[i].label for i in t) for t in term_vars]
    coded = [{i for i, c in row if c == 1} for row in codes]

    def plain_numeric(i: int) -> bool:
        v = spec._variables[i]
        return v.levels is None and not v.label.startswith(("scale(", "poly("))

    numerics = [{i for i in vs if plain_numeric(i)} for vs in coded]
    return {labels[a]: [labels[b] for b in range(len(labels))
                        if coded[a] <= coded[b] and coded[b] - coded[a]
                        and numerics[a] == numerics[b]]
            for a in range(len(labels))}


def _numeric_width(var) -> int:
    names = getattr(getattr(var, "spec", None), "column_names", None)
    return len(names) if names else 1


def type3_hypotheses(result) -> dict[str, np.ndarray]:
    """lmerTest's type III contrasts (``get_contrasts_type3``), independent of the coding.

    The hypotheses are built in contr.treatment coding: each term's full-dummy columns are
    expressed in the columns of X, the columns of each term are orthogonalized against the
    terms that contain it (highest order first), and the rows are then mapped to the fit's own
    coding. One term only (or one column): the type I contrasts, as lmerTest.
    """
    info = result.info
    spec = info.x_spec
    terms = [t for t in dict.fromkeys(info.x_terms) if t != "(Intercept)"]
    if len(info.x_names) <= 1 or len(terms) <= 1:
        return type1_hypotheses(result)
    if info.dropped_columns:
        raise MixedModelsError(
            "type III hypotheses are not available for a rank-deficient fixed-effects design "
            f"(dropped: {', '.join(info.dropped_columns)}); test the coefficients with "
            "contrast() instead")
    widths = [_numeric_width(v) if v.levels is None else len(v.levels)
              for v in spec._variables]
    full = _synthetic_encodings(spec._variables, widths)
    X_orig, orig_names, _ = _assemble(spec, full, "model")
    if orig_names != list(info.x_names):
        raise MixedModelsError("cannot rebuild the fixed-effects design for type III tests")
    X, names, owners = _assemble(spec, full, "treatment")
    dummies = [_assemble(spec, full, "dummies", [term]) for term in spec._terms]
    rdX = np.hstack(([np.ones((X.shape[0], 1))] if spec.intercept else [])
                    + [d[0] for d in dummies])
    rd_names = (["(Intercept)"] if spec.intercept else []) + [n for d in dummies for n in d[1]]
    X_pinv = np.linalg.pinv(X)
    coef = X_pinv @ rdX
    if np.linalg.matrix_rank(X) < X.shape[1] or not np.allclose(X @ coef, rdX, atol=1e-8):
        raise MixedModelsError("type III hypotheses need every term's cells to be estimable "
                               "from the fixed-effects design; use contrast() instead")
    L = zapsmall_array(coef.T)                     # rows: dummy columns; columns: X's columns
    columns = {term: [j for j, o in enumerate(owners) if o == term] for term in terms}
    contained_in = _containment(spec)
    degree = {":".join(spec._variables[i].label for i, _ in t): len(t) for t in spec._terms}
    order = sorted(terms, key=lambda t: -degree[t])     # stable: R's order(decreasing = TRUE)
    for term in order:
        outer = [j for t in contained_in.get(term, []) for j in columns[t]]
        if outer:
            y = L[:, columns[term]]
            fit = np.linalg.lstsq(L[:, outer], y, rcond=None)[0]
            L[:, columns[term]] = zapsmall_array(y - L[:, outer] @ fit)
    missing = [nm for nm in names if nm not in rd_names]
    if missing:
        raise MixedModelsError(f"type III hypotheses: no dummy column for {missing}")
    L = L[[rd_names.index(nm) for nm in names]]
    to_model = zapsmall_array(X_pinv @ X_orig)     # treatment coefficients = to_model @ beta
    out = {}
    for term in terms:
        H = L[:, columns[term]].T
        out[term] = H[np.abs(H).sum(axis=1) > 1e-8] @ to_model
    return out


# ---- anova -----------------------------------------------------------------------------------
def _lme4_anova(result) -> pd.DataFrame:
    """lme4's ``anova(m)``: sequential sums of squares of ``R_X beta`` per term,
    F = MS / sigma^2."""
    # R_X beta with R_X = L_X' and result.RX_inv = L_X^{-1}
    effects = np.linalg.solve(np.asarray(result.RX_inv, float).T, np.asarray(result.beta, float))
    rows, index = [], []
    for term, cols in _term_columns(result).items():
        if term == "(Intercept)":
            continue
        ss = float(np.sum(effects[cols] ** 2))
        rows.append([len(cols), ss, ss / len(cols), ss / len(cols) / result.sigma**2])
        index.append(term)
    table = pd.DataFrame(rows, columns=["npar", "Sum Sq", "Mean Sq", "F value"], index=index)
    return table.astype({"npar": "Int64"})


def anova(result, type: int | str = 3, ddf: str = "satterthwaite") -> pd.DataFrame:
    """lmerTest's ANOVA table: one F test per fixed-effects term.

    Parameters
    ----------
    result : LmerResult
    type : 3 (default; also "III") for lmerTest's type III hypotheses, which do not depend on
        the contrast coding; 2 ("II") for type II (``type2_hypotheses``); 1 ("I") for
        sequential (type I) hypotheses.
    ddf : "satterthwaite" (default), "kenward-roger", "residual" (DenDF = n - p), "none"
        (no DenDF / p-value), or "lme4" for lme4's own ``anova(m)`` table (npar, Sum Sq,
        Mean Sq, F value from the sequential sums of squares of R_X beta; ``type`` is ignored,
        as lmerTest does for ``ddf = "lme4"``).

    Returns
    -------
    DataFrame indexed by R's term labels (``Type``, ``recipe:temperature``); columns
    ``Sum Sq``, ``Mean Sq``, ``NumDF``, ``DenDF``, ``F value``, ``Pr(>F)``. Kenward-Roger: the
    F value is pbkrtest's scaled F and the sums of squares come from its unscaled F (lmerTest).
    """
    method = _ddf_method(ddf, ANOVA_DDF_METHODS)
    if method == "lme4":
        return _lme4_anova(result)
    kind = {3: 3, "3": 3, "III": 3, 2: 2, "2": 2, "II": 2, 1: 1, "1": 1, "I": 1}.get(type)
    if kind is None:
        raise ValueError(f"type must be 3 (\"III\"), 2 (\"II\") or 1 (\"I\"), not {type!r}")
    build = {1: type1_hypotheses, 2: type2_hypotheses, 3: type3_hypotheses}[kind]
    hypotheses = build(result)
    return _f_table(result, hypotheses, method)
