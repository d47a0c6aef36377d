"""M' R^-1 M for a residual structure, as fixed pieces combined per evaluation.

Each class of ``layout.ResidualLayout`` (rows with one coefficient, or pairs of rows with one
coefficient) gets its own cross-product blocks, built once by grouped sums in the layout of
``crossprod.CrossProducts`` (tiles per level, the same sparse pattern per pair of terms,
[X y] rows). An evaluation at phi is then a weighted sum of those pieces: its cost does not
depend on n. When a structure has more classes than ``MAX_CLASSES`` (CAR(1) or varPower with
nearly as many distinct gaps or covariate values as rows), the pieces would outgrow the data;
the sums are then taken over the rows at every evaluation, with the coefficients as weights,
which costs O(n) per evaluation.

Requires every random-effects factor to be constant within a residual group (checked by the
layout), so a pair of rows of one group meets the same levels and the tiles keep their layout.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..crossprod import CrossProductPlan, CrossProducts
from .layout import ResidualLayout

# Above this many classes (rows and pairs together) the pieces are not precomputed.
MAX_CLASSES = 64


@dataclass
class _Table:
    """Vectors m (rows, or sums of rows) with their level codes: z per term (m, p_i) (None:
    all ones), v = [X y] (m, p + 1), refs per term (m,), pair codes per pair of terms (m,)."""

    z: list
    v: np.ndarray
    refs: list
    codes: dict

    def take(self, index: np.ndarray) -> "_Table":
        return _Table([[None if c is None else c[index] for c in cols] for cols in self.z],
                      self.v[index],
                      [r[index] for r in self.refs],
                      {key: c[index] for key, c in self.codes.items()})


def _sym_sums(codes: np.ndarray, size: int, weight: np.ndarray, A: "_Table", B: "_Table",
              x: tuple, y: tuple, same: bool) -> np.ndarray:
    """(size,) grouped sums of weight (x_A y_B + x_B y_A) / 2 (x_A y_A when same), with
    x, y = (getter of a column from a table)."""
    if same:
        total = _prod(weight, x(A), y(A))
    else:
        total = (_prod(weight, x(A), y(B)) + _prod(weight, x(B), y(A))) / 2.0
    return np.bincount(codes, weights=total, minlength=size)


class ResidualCrossProducts:
    """The pieces of M' R^-1 M for one model and residual layout (see module docstring).

    Parameters
    ----------
    plan : the model's ``CrossProductPlan`` (patterns of the off-diagonal blocks).
    X (n, p), y, offset, weights (n,) : the design's arrays.
    layout : the bound residual structure.
    """

    def __init__(self, plan: CrossProductPlan, X: np.ndarray, y: np.ndarray,
                 offset: np.ndarray, weights: np.ndarray, layout: ResidualLayout):
        self.plan, self.layout = plan, layout
        self.terms = plan.terms
        self.n, self.p = X.shape
        self.dims = tuple((t.n_levels, t.p) for t in self.terms)
        yc = y - offset if np.any(offset) else y
        w = np.asarray(weights, dtype=float)
        unit = bool(np.all(w == 1.0))
        self.sum_log_w = 0.0 if unit else float(np.sum(np.log(w)))
        # Prior weights enter as sqrt(w) on every row: M' W^1/2 Q W^1/2 M.
        if unit:
            z = [list(cols) for cols in plan.zcols]
            v = np.column_stack([X, yc])
        else:
            sw = np.sqrt(w)
            z = [[sw if col is None else col * sw for col in cols] for cols in plan.zcols]
            v = np.column_stack([X, yc]) * sw[:, None]
        codes = {key: pat.codes for key, pat in plan.off.items()}
        self.rows = _Table(z, v, [t.refs for t in self.terms], codes)
        self.pairs = self.rows
        if layout.pseudo_of_row is not None:
            self.pairs = self._group_sums(layout.pseudo_of_row)
        self.precomputed = layout.n_row_class + layout.n_pair_class <= MAX_CLASSES
        if self.precomputed:
            self.row_pieces = [self._piece(self.rows, self.rows, idx, idx,
                                           np.ones(idx.size), same=True)
                               for idx in _members(layout.row_class, layout.n_row_class)]
            self.pair_pieces = [self._piece(self.pairs, self.pairs, layout.pair_a[idx],
                                            layout.pair_b[idx], np.ones(idx.size))
                                for idx in _members(layout.pair_class, layout.n_pair_class)]
            # The pieces hold everything an evaluation needs: no n-length copies are kept.
            self.rows = self.pairs = None

    def _group_sums(self, pseudo: np.ndarray) -> _Table:
        """Sums of the rows per pseudo row (compound symmetry's per-group sums); a pseudo row
        takes the level codes of its rows (all equal by nesting)."""
        m = int(pseudo.max()) + 1
        first = np.full(m, -1)
        first[pseudo[::-1]] = np.arange(pseudo.size)[::-1]

        def summed(col):
            return np.bincount(pseudo, weights=np.ones(pseudo.size) if col is None else col,
                               minlength=m)

        z = [[summed(col) for col in cols] for cols in self.rows.z]
        v = np.column_stack([summed(self.rows.v[:, c]) for c in range(self.rows.v.shape[1])])
        return _Table(z, v, [r[first] for r in self.rows.refs],
                      {key: c[first] for key, c in self.rows.codes.items()})

    def _piece(self, ta: _Table, tb: _Table, ia: np.ndarray, ib: np.ndarray,
               weight: np.ndarray, same: bool = False) -> tuple:
        """(diag tiles, off sums, xz, xx) of sum_k weight_k (m_a m_b' + m_b m_a') / 2 over the
        pairs (ia[k], ib[k]) of vectors of the tables (m_a m_a' when same)."""
        A = ta.take(ia)
        B = A if same else tb.take(ib)
        p1 = self.p + 1
        diag, off, xz = [], {}, []
        for i in range(len(self.terms)):
            li, pi = self.dims[i]
            tiles = np.empty((li, pi, pi))
            for a in range(pi):
                for b in range(a, pi):
                    tiles[:, a, b] = tiles[:, b, a] = _sym_sums(
                        A.refs[i], li, weight, A, B, lambda t, i=i, a=a: t.z[i][a],
                        lambda t, i=i, b=b: t.z[i][b], same)
            diag.append(tiles)
            block = np.empty((p1, li, pi))
            for a in range(pi):
                for c in range(p1):
                    block[c, :, a] = _sym_sums(A.refs[i], li, weight, A, B,
                                               lambda t, c=c: t.v[:, c],
                                               lambda t, i=i, a=a: t.z[i][a], same)
            xz.append(block.reshape(p1, li * pi))
            for j in range(i):
                pattern = self.plan.off[(i, j)]
                sums = np.empty((pattern.n_pairs, pi, self.dims[j][1]))
                for a in range(pi):
                    for b in range(self.dims[j][1]):
                        sums[:, a, b] = _sym_sums(A.codes[(i, j)], pattern.n_pairs, weight, A,
                                                  B, lambda t, i=i, a=a: t.z[i][a],
                                                  lambda t, j=j, b=b: t.z[j][b], same)
                off[(i, j)] = sums
        xx = (A.v * weight[:, None]).T @ B.v
        return diag, off, xz, (xx + xx.T) / 2.0

    def at(self, phi: np.ndarray) -> CrossProducts:
        """M' R^-1 M and log|R| (as ``sum_log_w`` = -log|R|) at phi."""
        lay = self.layout
        row_coef, pair_coef, logdet = lay.coefficients(phi)
        if self.precomputed:
            pieces = list(zip(row_coef, self.row_pieces)) + list(zip(pair_coef,
                                                                    self.pair_pieces))
            diag = [sum(c * piece[0][i] for c, piece in pieces) for i in range(len(self.terms))]
            off = {key: sum(c * piece[1][key] for c, piece in pieces) for key in self.plan.off}
            xz = [sum(c * piece[2][i] for c, piece in pieces) for i in range(len(self.terms))]
            xx = sum(c * piece[3] for c, piece in pieces)
        else:
            all_rows = np.arange(self.n)
            diag, off, xz, xx = self._piece(self.rows, self.rows, all_rows, all_rows,
                                            row_coef[lay.row_class], same=True)
            if lay.pair_a.size:
                d2, o2, z2, x2 = self._piece(self.pairs, self.pairs, lay.pair_a, lay.pair_b,
                                             pair_coef[lay.pair_class])
                diag = [a + b for a, b in zip(diag, d2)]
                off = {key: off[key] + o2[key] for key in off}
                xz = [a + b for a, b in zip(xz, z2)]
                xx = xx + x2
        return CrossProducts(
            dims=self.dims, diag=tuple(diag),
            off={key: self.plan.off[key].block(off[key]) for key in self.plan.off},
            xz=tuple(xz), xx=xx, n=self.n, p=self.p, sum_log_w=self.sum_log_w - logdet,
            nested=dict(self.plan.nested))


def _prod(weight: np.ndarray, a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray:
    out = weight
    if a is not None:
        out = out * a
    if b is not None:
        out = out * b
    return out


def _members(codes: np.ndarray, n_codes: int) -> list[np.ndarray]:
    """Indices of the entries of each code, in order."""
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_codes + 1))
    return [order[bounds[c]:bounds[c + 1]] for c in range(n_codes)]
