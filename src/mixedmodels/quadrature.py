"""Gauss-Hermite quadrature for expectations under a standard normal density.

lme4's ``GHrule(k)`` gives the rule that adaptive Gauss-Hermite quadrature (``nAGQ = k``)
uses: nodes z and weights w with sum_i w_i f(z_i) ~ E[f(Z)], Z ~ N(0, 1). The k-point rule is
exact for polynomials of degree up to 2k - 1. Nodes and weights come from numpy's
``hermegauss`` (probabilists' Hermite polynomials, weight exp(-z^2/2)); as lme4 does, the
nodes are made exactly symmetric, the weights symmetric and normalized to sum to 1.
"""
from __future__ import annotations

import functools
import operator

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

__all__ = ["gauss_hermite", "tensor_gauss_hermite"]


def _read_only(a: np.ndarray) -> np.ndarray:
    # The arrays are cached and shared between callers, so nobody may change them.
    a.flags.writeable = False
    return a


@functools.lru_cache(maxsize=None)
def gauss_hermite(k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k-point Gauss-Hermite rule for the standard normal density.

    Parameters
    ----------
    k : int
        Number of nodes, k >= 1 (lme4 allows up to 100).

    Returns
    -------
    z : (k,) array
        Nodes in increasing order, symmetric about 0 (z = 0 is a node when k is odd).
    w : (k,) array
        Positive weights, symmetric, summing to 1; sum(w * z**2) = 1.

    Both arrays are cached per k and read-only.
    """
    k = operator.index(k)
    if k < 1:
        raise ValueError(f"the number of quadrature nodes must be at least 1, got {k}")
    z, w = hermegauss(k)
    # Averaging each node with its mirror image removes the round-off asymmetry of the
    # eigenvalue solver, so odd rules have exactly 0 in the middle and odd moments vanish.
    z = (z - z[::-1]) / 2.0
    w = (w + w[::-1]) / 2.0
    w /= w.sum()
    return _read_only(z), _read_only(w)


@functools.lru_cache(maxsize=None)
def tensor_gauss_hermite(k: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """The product of d k-point rules, for a d-dimensional standard normal density.

    Parameters
    ----------
    k : int
        Nodes per dimension, k >= 1.
    d : int
        Dimension, d >= 1.

    Returns
    -------
    nodes : (k**d, d) array
        Row r holds the nodes of the index tuple r in lexicographic order (the last
        dimension varies fastest, as ``itertools.product``).
    weights : (k**d,) array
        Products of the one-dimensional weights; they sum to 1.

    Both arrays are cached per (k, d) and read-only.
    """
    k, d = operator.index(k), operator.index(d)
    if d < 1:
        raise ValueError(f"the dimension must be at least 1, got {d}")
    z, w = gauss_hermite(k)
    grids = np.meshgrid(*([z] * d), indexing="ij")
    nodes = np.stack([g.ravel() for g in grids], axis=1)
    weights = functools.reduce(np.multiply.outer, [w] * d).ravel()
    return _read_only(nodes), _read_only(np.ascontiguousarray(weights))
