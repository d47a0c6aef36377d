"""The profiled objectives, read off the blocked factor L (``algorithm.md`` section 6).

ML:   d(theta)   = ldL2 - log|W| + n (1 + log(2 pi r2 / n))
REML: d_R(theta) = ldL2 + ldRX2 - log|W| + (n - p) (1 + log(2 pi r2 / (n - p)))
"""
from __future__ import annotations

import math


def profiled_objective(ldL2: float, ldRX2: float, pwrss: float, n: int, p: int,
                       sum_log_w: float, reml: bool) -> float:
    """-2 log-likelihood (ML) or REML criterion with beta and sigma profiled out.

    -inf when pwrss is 0: a response reproduced exactly has an unbounded likelihood.
    """
    nu = n - p if reml else n
    if pwrss <= 0:
        return -math.inf
    value = ldL2 - sum_log_w + nu * (1.0 + math.log(2.0 * math.pi * pwrss / nu))
    return value + ldRX2 if reml else value


def sigma_hat(pwrss: float, n: int, p: int, reml: bool) -> float:
    """Profiled residual SD: sqrt(r2 / n) (ML) or sqrt(r2 / (n - p)) (REML)."""
    return math.sqrt(pwrss / (n - p if reml else n))
