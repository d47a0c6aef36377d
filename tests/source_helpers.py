"""Data and comparisons shared by the tests of fits from DuckDB and Dask sources."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

import mixedmodels as mm

NUMBER = re.compile(r"^[<>]?(-?\d+\.?\d*(?:e[-+]\d+)?)([*.]*)$")


def make_frame(n: int = 2400, seed: int = 1) -> pd.DataFrame:
    """y ~ x + f + (x | g1) + (1 | g2) with g3 nested in g2; weights, offset, an id."""
    rng = np.random.default_rng(seed)
    g1 = rng.integers(0, 50, n)
    g2 = rng.integers(0, 12, n)
    x = rng.normal(size=n)
    b1, s1, b2 = rng.normal(size=50), 0.3 * rng.normal(size=50), rng.normal(size=12)
    f = rng.choice(["lo", "mid", "hi"], n)
    y = 1 + 2 * x + 0.3 * (f == "hi") + b1[g1] + s1[g1] * x + b2[g2] + rng.normal(size=n)
    return pd.DataFrame({
        "id": np.arange(n), "y": y, "x": x, "x2": rng.normal(size=n) + 5.0,
        "g1": [f"s{v:02d}" for v in g1], "g2": g2, "g3": rng.integers(0, 3, n), "f": f,
        "w": rng.uniform(0.5, 2.0, n), "o": 0.1 * rng.normal(size=n)})


def _last_place(token: str) -> float:
    mantissa, _, exponent = token.partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return 10.0 ** (-decimals + (int(exponent) if exponent else 0))


def assert_same_summary(expected: str, actual: str) -> None:
    """The same text, except that a printed number may differ by one unit in its last
    printed digit (Satterthwaite's df come from numerical derivatives, which magnify the
    round-off of a different summation order to about 1e-9 relative)."""
    a_lines, b_lines = expected.splitlines(), actual.splitlines()
    assert len(a_lines) == len(b_lines), f"{expected}\n---\n{actual}"
    for la, lb in zip(a_lines, b_lines):
        if la == lb:
            continue
        ta, tb = la.split(), lb.split()
        assert len(ta) == len(tb), f"{la!r} != {lb!r}"
        for x, y in zip(ta, tb):
            if x == y:
                continue
            mx, my = NUMBER.match(x), NUMBER.match(y)
            assert mx and my and mx.group(2) == my.group(2), f"{la!r} != {lb!r}"
            unit = max(_last_place(mx.group(1)), _last_place(my.group(1)))
            assert abs(float(mx.group(1)) - float(my.group(1))) <= 1.000001 * unit, \
                f"{la!r} != {lb!r}"


def fit_and_warnings(formula: str, data, **kw):
    """(``mm.lmer(formula, data, **kw)``, its warnings as "Category: message" strings), so
    that a test can compare the warnings of two sources."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = mm.lmer(formula, data, **kw)
    return m, [f"{w.category.__name__}: {w.message}" for w in caught]
