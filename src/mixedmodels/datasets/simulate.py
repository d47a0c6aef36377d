"""Simulated teaching datasets.

These frames are generated, not measured: they exist so that a course can show the ideas of
mixed models (groups of different sizes, random intercepts and slopes, shrinkage, the
intraclass correlation) on data whose true generating model is known.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["salary"]

# Generating parameters of salary(), in currency units and years. They are module constants so
# the docstring, the tests and anyone checking the estimates against the truth read one place.
N_ORGANISATIONS = 20
MIN_EMPLOYEES, MAX_EMPLOYEES = 6, 140
INTERCEPT = 50_000.0          # mean starting salary (service = 0)
SLOPE = 400.0                 # mean rise per year of service
SD_INTERCEPT = 9_000.0        # SD of the organisations' starting salaries
SD_SLOPE = 200.0              # SD of the organisations' yearly rises
CORRELATION = -0.6            # between an organisation's intercept and its slope
SIGMA = 1_500.0               # residual SD within an organisation
MAX_SERVICE = 30.0


def salary(seed: int = 2024) -> pd.DataFrame:
    """Simulated salaries of employees in 20 organisations (SIMULATED, not real data).

    A teaching dataset for random-intercept and random-slope models: organisations of very
    different sizes, salaries that rise with years of service at a rate that differs between
    organisations, and organisations that pay more at the start tending to raise salaries
    more slowly.

    Parameters
    ----------
    seed : int, default 2024
        Seed for ``numpy.random.default_rng``. The same seed always gives the same frame.

    Returns
    -------
    pandas.DataFrame
        One row per employee, sorted by organisation, with columns

        organisation : Categorical, levels ``"org01"`` ... ``"org20"`` in that order.
        employee : int64, employee id 1, 2, ... over the whole frame.
        service : float64, years of service, 0 to 30, one decimal.
        salary : float64, yearly salary in currency units, rounded to whole units
            (roughly 30,000 to 80,000).

    Notes
    -----
    The data are SIMULATED from the model, for organisation j and employee i,

    .. math::

        salary_{ij} = (50000 + u_{0j}) + (400 + u_{1j}) service_{ij} + e_{ij}

    with

    - ``(u_0j, u_1j)`` bivariate normal, SDs 9000 and 200 and correlation -0.6;
    - ``e_ij`` normal with SD 1500;
    - ``service_ij`` Gamma(shape 2, scale 4.5) years (mean 9), capped at 30, one decimal;
    - organisation sizes spread geometrically from 6 to 140 employees, each size except the
      smallest and the largest jittered by up to 15 %, then shuffled over the organisations.

    The 20 pairs of random effects are drawn and then linearly transformed so that their
    sample means are 0 and their sample covariance matrix is exactly the one above; the
    teaching numbers therefore hardly depend on the seed. With the default seed the
    intercept-only model ``salary ~ 1 + (1 | organisation)`` has an ICC of about 0.84, and
    ``salary ~ 1 + service + (1 + service | organisation)`` estimates an intercept-slope
    correlation of about -0.67.

    See Also
    --------
    mixedmodels.datasets.load : ``load("salary")`` is the lecture's own data set, fixed,
        whose fits give the lecture's printed numbers (see ``make_salary``); use this
        simulator for other samples.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> df = mm.datasets.salary()
    >>> df.organisation.nunique()
    20
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_org = N_ORGANISATIONS

    base = np.geomspace(MIN_EMPLOYEES, MAX_EMPLOYEES, n_org)
    jitter = np.exp(rng.uniform(-0.15, 0.15, n_org))
    # Keep the extremes exact so every seed shows both a tiny and a large organisation.
    jitter[[0, -1]] = 1.0
    sizes = rng.permutation(np.round(base * jitter).astype(np.int64))

    # Whiten the draws, then colour them with the target covariance: the realised random
    # effects then have exactly the stated SDs and correlation instead of 20-sample noise.
    z = rng.standard_normal((n_org, 2))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    cov = CORRELATION * SD_INTERCEPT * SD_SLOPE
    target = np.array([[SD_INTERCEPT**2, cov], [cov, SD_SLOPE**2]])
    u = z @ np.linalg.cholesky(target).T

    org = np.repeat(np.arange(n_org), sizes)
    service = np.round(np.minimum(rng.gamma(2.0, 4.5, org.size), MAX_SERVICE), 1)
    noise = rng.normal(0.0, SIGMA, org.size)
    pay = INTERCEPT + u[org, 0] + (SLOPE + u[org, 1]) * service + noise

    labels = [f"org{j + 1:02d}" for j in range(n_org)]
    return pd.DataFrame({
        "organisation": pd.Categorical.from_codes(org, categories=labels),
        "employee": np.arange(1, org.size + 1, dtype=np.int64),
        "service": service,
        "salary": np.round(pay),
    })
