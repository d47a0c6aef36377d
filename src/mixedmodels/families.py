"""GLM families and links as lme4 uses them: R's ``stats::family`` objects and MASS's
``negative.binomial(theta)``.

Each ``Family`` gives the variance function, the deviance residuals, R's ``aic`` (-2
log-likelihood with its normalizing constants), R's ``initialize`` checks and starting values,
and simulation. Each ``Link`` gives R's ``make.link`` functions with R's clamping, which keeps
mu of the binomial links inside (0, 1) and that of the log link above 0. Formulas follow R's
``family.R`` and ``family.c`` (stats) and MASS's ``negbin.R``. Every array argument is a float
array of shape (n,) unless stated otherwise; inputs are never written (``initialize`` may hand
back the y and weights it was given when it leaves them as they are).

The links are R's ``stats`` ones. lme4's C++ PIRLS (glmFamily.cpp) has its own copies of the
links and of the binomial variance; those of logit, probit, cauchit and mu (1 - mu) differ from
R's in the tails only: plogis clamped to [eps, 1 - eps] instead of R's jump at |eta| = 30, no eta
clipping for probit/cauchit (mu <= 1 - eps only) and no eps floor on their mu.eta, and
mu (1 - mu) floored at eps.
"""
from __future__ import annotations

import numpy as np
from scipy.special import gammaln, xlog1py, xlogy

from .errors import DataError, warn_user
from .links import FamilyError, Link, finite_positive, make_link

__all__ = [
    "FamilyError", "NonIntegerWarning", "Link", "make_link", "Family", "Binomial", "Poisson",
    "GammaFamily", "InverseGaussian", "Gaussian", "NegativeBinomial", "binomial", "poisson",
    "Gamma", "inverse_gaussian", "gaussian", "negative_binomial", "get_family",
]

class NonIntegerWarning(UserWarning):
    """A count response (binomial successes, Poisson counts) that is not whole numbers."""


def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def _y_log_y(y, mu):
    """y log(y/mu), 0 where y = 0 (R's y_log_y in family.c); (n,), (n,) -> (n,).

    numpy's SIMD log makes this several times faster than scipy's rel_entr/xlogy at n = 1e6.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        # y + (y == 0) turns the y = 0 rows into log(1/mu) * 0 = 0 without a masked write;
        # that needs mu > 0, so any other mu takes the slower np.where.
        if mu.size == 0 or not mu.min() > 0:
            return np.where(y == 0, 0.0, y * np.log(y / mu))
        r = np.equal(y, 0).astype(float)
        r += y
        r /= mu
        np.log(r, out=r)
    r *= y
    return r


# ----------------------------------------------------------------------------------------------
# Families


class Family:
    """A GLM family as R's ``family`` object, with its link.

    Attributes
    ----------
    name : str
        R's ``family$family`` ("binomial", "poisson", "Gamma", "inverse.gaussian", "gaussian",
        "Negative Binomial(<theta>)").
    link : Link
        The link; ``linkfun``, ``linkinv``, ``mu_eta`` and ``valideta`` are also reachable on
        the family itself, as in R.
    has_dispersion : bool
        Whether the model has a scale parameter to estimate (gaussian, Gamma,
        inverse.gaussian); binomial, poisson and negative binomial fix it at 1.
    allowed_links : tuple of str
        R's ``okLinks`` for the family.
    """

    name = ""
    allowed_links: tuple[str, ...] = ()
    default_link = ""
    has_dispersion = False

    def __init__(self, link: str | Link | None = None):
        if link is None:
            link = self.default_link
        link_name = link.name if isinstance(link, Link) else link
        if not isinstance(link_name, str) or link_name not in self.allowed_links:
            raise FamilyError(f"link {link_name!r} not available for the {self.name} family; "
                              f"available links are {', '.join(map(repr, self.allowed_links))}")
        self.link = link if isinstance(link, Link) else make_link(link_name)
        self.linkfun = self.link.linkfun
        self.linkinv = self.link.linkinv
        self.mu_eta = self.link.mu_eta
        self.valideta = self.link.valideta

    def __repr__(self) -> str:
        return f"{type(self).__name__}(link={self.link.name!r})"

    def __str__(self) -> str:
        return f"Family: {self.name}\nLink function: {self.link.name}"

    def variance(self, mu):
        """Variance function V(mu); mu (n,) -> (n,)."""
        raise NotImplementedError

    def unit_deviance(self, y, mu):
        """Unit deviance d(y, mu) = 2 (l(y; y) - l(y; mu)) per unit weight; (n,), (n,) -> (n,)."""
        raise NotImplementedError

    def dev_resids(self, y, mu, wt):
        """R's ``dev.resids``: wt * d(y, mu); y, mu, wt (n,) -> (n,). Their sum is the deviance."""
        d = self.unit_deviance(y, mu)
        d *= _arr(wt)
        return d

    def aic(self, y, mu, wt, dev, n_trials=None) -> float:
        """R's ``family$aic(y, n, mu, wt, dev)``: -2 log-likelihood with its constants.

        Parameters
        ----------
        y, mu, wt : (n,) arrays
            Response, mean and prior weights as returned by ``initialize``.
        dev : float
            The deviance, ``dev_resids(y, mu, wt).sum()`` (the scale families estimate their
            dispersion from it, as R does).
        n_trials : (n,) array, optional
            R's ``n`` (binomial trials per row, from ``initialize``); ignored by the others.
        """
        raise NotImplementedError

    def validmu(self, mu) -> bool:
        """Whether every mu (n,) is a valid mean for the family (R's ``validmu``)."""
        return True

    def initialize(self, y, weights=None, trials=None, *, response: str = "y"):
        """R's ``family$initialize``: check the response and give starting means.

        Parameters
        ----------
        y : (n,) array
            Response (for a ``cbind(successes, failures)`` binomial response, the proportions,
            0 where there are no trials).
        weights : (n,) array, optional
            Prior weights (default 1).
        trials : (n,) array, optional
            successes + failures of a two-column binomial response; binomial only.
        response : str
            The response's name, used in error messages.

        Returns
        -------
        y : (n,) array
        weights : (n,) array
            Prior weights (binomial with ``trials``: weights * trials, as R does); read-only
            ones when none were given.
        mustart : (n,) array
            Starting means.
        n_trials : (n,) array
            R's ``n``: the trials per row (binomial with ``trials``), else read-only ones.

        Raises
        ------
        DataError
            For a response outside the family's support, naming ``response`` and the first
            offending row (0-based).
        """
        y, weights = self._prepare(y, weights, trials, response)
        _reject(~np.isfinite(y), y, response, "non-finite values")
        self._check_y(y, response)
        return y, weights, self._mustart(y), np.broadcast_to(np.float64(1.0), y.shape)

    def simulate(self, mu, weights, rng: np.random.Generator, dispersion: float = 1.0):
        """Draw one response per row, as lme4's ``simulate`` does for the family.

        Parameters
        ----------
        mu : (n,) array
            Means.
        weights : (n,) array or None
            Prior weights as returned by ``initialize`` (binomial: the numbers of trials).
        rng : numpy.random.Generator
        dispersion : float
            Scale phi (sigma^2 in lme4's terms): Var(y) = phi V(mu) / weights for gaussian,
            Gamma and inverse.gaussian; ignored by the others.

        Returns
        -------
        (n,) array
        """
        raise NotImplementedError

    # helpers for initialize

    def _prepare(self, y, weights, trials, response):
        y = _arr(y)
        if y.ndim != 1:
            raise DataError(f"response '{response}' must be one-dimensional, got shape {y.shape}")
        weights = np.broadcast_to(np.float64(1.0), y.shape) if weights is None else _arr(weights)
        if weights.shape != y.shape:
            raise DataError(f"weights have shape {weights.shape} but response '{response}' has "
                            f"shape {y.shape}")
        bad = ~np.isfinite(weights) | (weights < 0)
        if bad.any():
            raise DataError(f"weights must be finite and non-negative (first bad weight at row "
                            f"{_first(bad)}: {weights[_first(bad)]!r})")
        if trials is not None and not isinstance(self, Binomial):
            raise DataError(f"a two-column (successes, failures) response '{response}' is only "
                            f"for the binomial family, not {self.name}")
        return y, weights

    def _check_y(self, y, response):
        pass

    def _mustart(self, y):
        return y.copy()


def _reject(bad, y, response, what):
    """Raise DataError when any of ``bad`` (n,) bool is set, naming the first such row."""
    if bad.any():
        i = _first(bad)
        raise DataError(f"response '{response}': {what} (first at row {i}, value {y[i]:g})")


def _non_integer(x):
    """R's R_nonint: x is not a whole number up to 1e-7 relative; (n,) -> (n,) bool."""
    return np.abs(x - np.rint(x)) > 1e-7 * np.maximum(1.0, np.abs(x))


def _warn_weights_ignored(weights):
    if weights is not None and np.any(_arr(weights) != 1):
        warn_user("ignoring prior weights", UserWarning)


class Binomial(Family):
    """R's ``binomial(link)``: y is a proportion of successes, weights the trials."""

    name = "binomial"
    allowed_links = ("logit", "probit", "cloglog", "cauchit", "log")
    default_link = "logit"

    def variance(self, mu):
        mu = _arr(mu)
        return mu * (1.0 - mu)

    def unit_deviance(self, y, mu):
        y, mu = _arr(y), _arr(mu)
        d = _y_log_y(y, mu)
        d += _y_log_y(1.0 - y, 1.0 - mu)
        d *= 2.0
        return d

    def aic(self, y, mu, wt, dev, n_trials=None):
        y, mu, wt = _arr(y), _arr(mu), _arr(wt)
        # R: m <- if (any(n > 1)) n else wt; rows with m = 0 add nothing.
        m = _arr(n_trials) if n_trials is not None and np.any(_arr(n_trials) > 1) else wt
        size = np.rint(m)
        k = np.rint(m * y)
        logp = xlogy(k, mu)
        if size.size and size.max() > 1:  # log choose(size, k) is 0 for 0/1 data
            logp += gammaln(size + 1.0) - gammaln(k + 1.0) - gammaln(size - k + 1.0)
        logp += xlog1py(size - k, -mu)
        scale = np.divide(wt, m, out=np.zeros_like(wt), where=m > 0)
        return float(-2.0 * np.sum(scale * logp))

    def validmu(self, mu) -> bool:
        mu = _arr(mu)
        return bool(finite_positive(mu) and np.all(mu < 1))

    def initialize(self, y, weights=None, trials=None, *, response: str = "y"):
        y, weights = self._prepare(y, weights, trials, response)
        if trials is None:
            zero = weights == 0
            if zero.any():  # R: anything (even NaN) is accepted where the weight is 0
                y = np.where(zero, 0.0, y)
            _reject(~np.isfinite(y), y, response, "non-finite values")
            _reject((y < 0) | (y > 1), y, response,
                    "y values must be 0 <= y <= 1 for the binomial family; give counts as "
                    "cbind(successes, failures), or proportions with weights= the trials")
            m = weights * y
            fractional = np.abs(m - np.rint(m)) > 1e-3
            if fractional.any():
                i = _first(fractional)
                warn_user(
                    f"non-integer #successes in a binomial glm! response '{response}' holds "
                    f"proportions that weights * y does not make whole counts (first at row {i}: "
                    f"y = {y[i]:g}, weight = {weights[i]:g}); pass the number of trials as "
                    f"weights= or the response as cbind(successes, failures)",
                    NonIntegerWarning)
            mustart = (m + 0.5) / (weights + 1.0)
            return y, weights, mustart, np.broadcast_to(np.float64(1.0), y.shape)
        n = _arr(trials)
        if n.shape != y.shape:
            raise DataError(f"trials have shape {n.shape} but response '{response}' has shape "
                            f"{y.shape}")
        _reject(~np.isfinite(n) | (n < 0), n, response,
                "non-finite or negative numbers of trials (successes + failures)")
        y = np.where(n == 0, 0.0, y)
        _reject(~np.isfinite(y), y, response, "non-finite values")
        _reject((y < 0) | (y > 1), y, response,
                "successes / (successes + failures) must lie in [0, 1]: negative counts?")
        successes = n * y
        bad = (np.abs(successes - np.rint(successes)) > 1e-3) | (np.abs(n - np.rint(n)) > 1e-3)
        if bad.any():
            warn_user(f"non-integer counts in a binomial glm! response '{response}' "
                      f"(first at row {_first(bad)})", NonIntegerWarning)
        mustart = (successes + 0.5) / (n + 1.0)
        return y, weights * n, mustart, n

    def simulate(self, mu, weights, rng, dispersion=1.0):
        mu = _arr(mu)
        size = np.ones_like(mu) if weights is None else _arr(weights)
        if np.any(size % 1 != 0):
            raise DataError("cannot simulate from non-integer prior weights (binomial weights "
                            "are numbers of trials)")
        successes = rng.binomial(size.astype(np.int64), mu).astype(float)
        # R returns NaN (0/0) for rows without trials; 0 matches initialize's convention.
        return np.divide(successes, size, out=np.zeros_like(mu), where=size > 0)


class Poisson(Family):
    """R's ``poisson(link)``: counts, variance mu."""

    name = "poisson"
    allowed_links = ("log", "identity", "sqrt")
    default_link = "log"

    def variance(self, mu):
        return np.array(mu, dtype=float)

    def unit_deviance(self, y, mu):
        # 2 (y log(y/mu) - (y - mu)), which is 2 mu at y = 0 as R's dev.resids.
        y, mu = _arr(y), _arr(mu)
        d = _y_log_y(y, mu)
        d -= y
        d += mu
        d *= 2.0
        return d

    def aic(self, y, mu, wt, dev, n_trials=None):
        y, mu = _arr(y), _arr(mu)
        logp = xlogy(y, mu)
        logp -= mu
        logp -= gammaln(y + 1.0)
        # R's dpois gives log density -Inf (and a "non-integer x" warning) off the integers.
        logp[_non_integer(y)] = -np.inf
        return float(-2.0 * np.sum(logp * _arr(wt)))

    def validmu(self, mu) -> bool:
        return bool(finite_positive(_arr(mu)))

    def _check_y(self, y, response):
        _reject(y < 0, y, response, "negative values not allowed for the 'Poisson' family")
        nonint = _non_integer(y)
        if nonint.any():
            i = _first(nonint)
            warn_user(f"response '{response}' has non-integer values for the poisson family "
                      f"(first at row {i}: {y[i]:g}); R's dpois() gives them log-density "
                      f"-Inf (warning 'non-integer x'), so the AIC and log-likelihood are "
                      f"infinite, as in lme4", NonIntegerWarning)

    def _mustart(self, y):
        return y + 0.1

    def simulate(self, mu, weights, rng, dispersion=1.0):
        _warn_weights_ignored(weights)
        return rng.poisson(_arr(mu)).astype(float)


class GammaFamily(Family):
    """R's ``Gamma(link)``: positive responses, variance phi mu^2."""

    name = "Gamma"
    allowed_links = ("inverse", "identity", "log")
    default_link = "inverse"
    has_dispersion = True

    def variance(self, mu):
        return np.square(_arr(mu))

    def unit_deviance(self, y, mu):
        # -2 (log(y/mu) - (y - mu)/mu) = 2 (t - log1p(t)) with t = (y - mu)/mu; log1p keeps
        # the small deviances of y near mu accurate.
        mu = _arr(mu)
        t = _arr(y) - mu
        t /= mu
        d = t - np.log1p(t)
        d *= 2.0
        return d

    def aic(self, y, mu, wt, dev, n_trials=None):
        # R: shape 1/disp and scale mu*disp with disp = dev / sum(wt), weights as frequencies,
        # and +2 for the dispersion parameter.
        y, mu, wt = _arr(y), _arr(mu), _arr(wt)
        disp = dev / np.sum(wt)
        shape = 1.0 / disp
        scale = mu * disp
        logp = xlogy(shape - 1.0, y) - y / scale - shape * np.log(scale) - gammaln(shape)
        return float(-2.0 * np.sum(logp * wt) + 2.0)

    def validmu(self, mu) -> bool:
        return bool(finite_positive(_arr(mu)))

    def _check_y(self, y, response):
        _reject(y <= 0, y, response, "non-positive values not allowed for the 'Gamma' family")

    def simulate(self, mu, weights, rng, dispersion=1.0):
        mu = _arr(mu)
        shape = (1.0 if weights is None else _arr(weights)) / dispersion
        return rng.gamma(shape, mu / shape)


class InverseGaussian(Family):
    """R's ``inverse.gaussian(link)``: positive responses, variance phi mu^3."""

    name = "inverse.gaussian"
    allowed_links = ("inverse", "log", "identity", "1/mu^2")
    default_link = "1/mu^2"
    has_dispersion = True

    def variance(self, mu):
        mu = _arr(mu)
        return mu * mu * mu

    def unit_deviance(self, y, mu):
        y, mu = _arr(y), _arr(mu)
        d = np.square(y - mu)
        d /= y
        d /= np.square(mu)
        return d

    def aic(self, y, mu, wt, dev, n_trials=None):
        y, wt = _arr(y), _arr(wt)
        total = np.sum(wt)
        return float(total * (1.0 + np.log(dev / total * 2.0 * np.pi))
                     + 3.0 * np.sum(np.log(y) * wt) + 2.0)

    def _check_y(self, y, response):
        _reject(y <= 0, y, response,
                "positive values only are allowed for the 'inverse.gaussian' family")

    def simulate(self, mu, weights, rng, dispersion=1.0):
        # lme4 passes shape = weights / sigma; the inverse Gaussian's shape is 1 / phi, so
        # weights / dispersion with dispersion = sigma^2.
        mu = _arr(mu)
        shape = (1.0 if weights is None else _arr(weights)) / dispersion
        return rng.wald(mu, np.broadcast_to(shape, mu.shape))


class Gaussian(Family):
    """R's ``gaussian(link)``: variance phi."""

    name = "gaussian"
    allowed_links = ("identity", "log", "inverse")
    default_link = "identity"
    has_dispersion = True

    def variance(self, mu):
        return np.ones_like(_arr(mu))

    def unit_deviance(self, y, mu):
        return np.square(_arr(y) - _arr(mu))

    def aic(self, y, mu, wt, dev, n_trials=None):
        nobs = _arr(y).size
        return float(nobs * (np.log(dev / nobs * 2.0 * np.pi) + 1.0) + 2.0
                     - np.sum(np.log(_arr(wt))))

    def _check_y(self, y, response):
        # R: "cannot find valid starting values: please specify some" (mustart = y).
        if self.link.name == "log":
            _reject(y <= 0, y, response, "the log link needs y > 0 for its starting values")
        elif self.link.name == "inverse":
            _reject(y == 0, y, response, "the inverse link needs y != 0 for its starting values")

    def simulate(self, mu, weights, rng, dispersion=1.0):
        mu = _arr(mu)
        sd = np.sqrt(dispersion / (1.0 if weights is None else _arr(weights)))
        return mu + sd * rng.standard_normal(mu.shape)


def _r_format(x: float) -> str:
    """``format(x)`` as R prints a number: 7 significant digits, fixed unless wider than sci."""
    if x == 0:
        return "0"
    mantissa, exponent = f"{abs(x):.6e}".split("e")
    nsig = len(mantissa.replace(".", "").rstrip("0"))
    kpower = int(exponent)
    rgt = max(0, nsig - kpower - 1)
    fixed = f"{x:.{rgt}f}"
    sci = f"{x:.{nsig - 1}e}"
    return fixed if len(fixed) <= len(sci) else sci


class NegativeBinomial(Family):
    """MASS's ``negative.binomial(theta, link)``: counts, variance mu + mu^2/theta.

    theta is fixed; glmer.nb-style fitting builds a new family for each theta.
    """

    allowed_links = ("log", "sqrt", "identity")
    default_link = "log"

    def __init__(self, theta: float, link: str | Link | None = None):
        theta = float(theta)
        if not (np.isfinite(theta) and theta > 0):
            raise FamilyError(f"negative binomial theta must be positive and finite, got {theta}")
        self.theta = theta
        self.name = f"Negative Binomial({_r_format(round(theta, 4))})"
        super().__init__(link)

    def __repr__(self) -> str:
        return f"NegativeBinomial(theta={self.theta!r}, link={self.link.name!r})"

    def variance(self, mu):
        mu = _arr(mu)
        return mu + np.square(mu) / self.theta

    def unit_deviance(self, y, mu):
        # 2 (y log(y/mu) - (y + theta) log((y + theta)/(mu + theta))) with y log(y/mu) = 0 at
        # y = 0 (lme4's C++ form; MASS's y log(pmax(1, y)/mu) is the same on the integers).
        y, mu = _arr(y), _arr(mu)
        d = _y_log_y(y, mu)
        s = y + self.theta
        t = mu + self.theta
        np.divide(s, t, out=t)
        np.log(t, out=t)
        t *= s
        d -= t
        d *= 2.0
        return d

    def aic(self, y, mu, wt, dev, n_trials=None):
        # MASS's formula, wt on every term (lme4's C++ copy puts wt on the first term only;
        # the two agree for unit weights).
        y, mu, th = _arr(y), _arr(mu), self.theta
        term = (y + th) * np.log(mu + th)
        term -= xlogy(y, mu)
        term += gammaln(y + 1.0)
        term -= gammaln(th + y)
        term += gammaln(th) - th * np.log(th)
        return float(2.0 * np.sum(term * _arr(wt)))

    def validmu(self, mu) -> bool:
        return bool(np.all(_arr(mu) > 0))

    def _check_y(self, y, response):
        _reject(y < 0, y, response, "negative values not allowed for the negative binomial "
                                    "family")

    def _mustart(self, y):
        return y + (y == 0) / 6.0

    def simulate(self, mu, weights, rng, dispersion=1.0):
        _warn_weights_ignored(weights)
        mu = _arr(mu)
        return rng.negative_binomial(self.theta, self.theta / (self.theta + mu)).astype(float)


def binomial(link: str = "logit") -> Binomial:
    """R's ``binomial(link)``."""
    return Binomial(link)


def poisson(link: str = "log") -> Poisson:
    """R's ``poisson(link)``."""
    return Poisson(link)


def Gamma(link: str = "inverse") -> GammaFamily:  # noqa: N802 (R's name)
    """R's ``Gamma(link)``."""
    return GammaFamily(link)


def inverse_gaussian(link: str = "1/mu^2") -> InverseGaussian:
    """R's ``inverse.gaussian(link)``."""
    return InverseGaussian(link)


def gaussian(link: str = "identity") -> Gaussian:
    """R's ``gaussian(link)``."""
    return Gaussian(link)


def negative_binomial(theta: float, link: str = "log") -> NegativeBinomial:
    """MASS's ``negative.binomial(theta, link)``."""
    return NegativeBinomial(theta, link)


_FAMILIES = {"binomial": Binomial, "poisson": Poisson, "Gamma": GammaFamily,
             "gamma": GammaFamily, "inverse.gaussian": InverseGaussian,
             "inverse_gaussian": InverseGaussian, "gaussian": Gaussian}


def get_family(family: str | Family, link: str | None = None) -> Family:
    """A ``Family`` from a family object (returned as is) or R's family name.

    Parameters
    ----------
    family : str or Family
        "binomial", "poisson", "Gamma" (or "gamma"), "inverse.gaussian" (or
        "inverse_gaussian"), "gaussian", or a ``Family``.
    link : str, optional
        The link name; None means the family's default. Must be None with a ``Family``.
    """
    if isinstance(family, Family):
        if link is not None:
            raise FamilyError(f"link={link!r} given with a family object ({family.name}, link "
                              f"{family.link.name!r}); set the link in the family instead")
        return family
    if isinstance(family, str) and family in _FAMILIES:
        return _FAMILIES[family](link)
    if isinstance(family, str) and family.lower().replace("_", ".") in (
            "negative.binomial", "negbin", "nb"):
        raise FamilyError("the negative binomial family needs theta: use "
                          "negative_binomial(theta, link='log')")
    raise FamilyError(f"unknown family {family!r}; known families are 'binomial', 'poisson', "
                      f"'Gamma', 'inverse.gaussian', 'gaussian' (and negative_binomial(theta))")
