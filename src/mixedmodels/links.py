"""GLM links as R's ``make.link`` makes them, with R's clamping (``family.R``, ``family.c``).

Each ``Link`` maps mu to eta and back and gives d mu / d eta; the clamps keep mu of the binomial
links inside (0, 1) and that of the log link above 0. Arrays are float (n,) unless stated.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logit, ndtr, ndtri

from .errors import MixedModelsError

__all__ = ["Link", "make_link", "EPS", "FamilyError"]

EPS = np.finfo(float).eps  # R's .Machine$double.eps
_LOGIT_THRESH = 30.0  # family.c: beyond |eta| > 30 R's logit inverse saturates
_PROBIT_THRESH = -float(ndtri(EPS))  # make.link("probit"): -qnorm(eps)
_CAUCHIT_THRESH = 1.0 / np.tan(np.pi * EPS)  # make.link("cauchit"): -qcauchy(eps)
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


class FamilyError(MixedModelsError):
    """An unknown family or a link that the family does not allow (a ``ValueError``)."""


def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype=float)



class Link:
    """A link function eta = g(mu), as R's ``make.link(name)`` (build one with ``make_link``).

    Attributes
    ----------
    name : str
        R's link name ("logit", "probit", "cloglog", "cauchit", "log", "identity", "inverse",
        "sqrt", "1/mu^2").
    """

    def __init__(self, name, linkfun, linkinv, mu_eta, valideta=None):
        self.name = name
        self._linkfun, self._linkinv, self._mu_eta, self._valideta = (
            linkfun, linkinv, mu_eta, valideta)

    def linkfun(self, mu):
        """eta = g(mu); mu (n,) -> eta (n,)."""
        return self._linkfun(_arr(mu))

    def linkinv(self, eta):
        """mu = g^{-1}(eta), clamped as R clamps it; eta (n,) -> mu (n,)."""
        return self._linkinv(_arr(eta))

    def mu_eta(self, eta):
        """d mu / d eta at eta, with R's floors; eta (n,) -> (n,)."""
        return self._mu_eta(_arr(eta))

    def valideta(self, eta) -> bool:
        """Whether eta (n,) is inside the link's domain (R's ``valideta``)."""
        return self._valideta is None or bool(self._valideta(_arr(eta)))

    def __repr__(self) -> str:
        return f"make_link({self.name!r})"


def _logit_tails(x, eta, low, high):
    """Set x to low where eta < -30 and to high where eta > 30 (R's logit tails), in place."""
    # Two reductions are cheaper than building masks, and the tails are usually empty.
    if eta.size and (eta.min() < -_LOGIT_THRESH or eta.max() > _LOGIT_THRESH):
        x[eta < -_LOGIT_THRESH] = low
        x[eta > _LOGIT_THRESH] = high
    return x


def _logit_inv(eta):
    # R's family.c: e/(1+e) with e = exp(eta), and e = eps or 1/eps beyond |eta| > 30, so mu
    # stays within [eps/(1+eps), 1/(1+eps)]. numpy's exp is several times faster than
    # scipy's expit at n = 1e6, and this is R's own arithmetic.
    e = _logit_tails(np.exp(np.clip(eta, -_LOGIT_THRESH, _LOGIT_THRESH)), eta, EPS, 1 / EPS)
    return np.divide(e, e + 1.0, out=e)


def _logit_mu_eta(eta):
    # R: exp(eta)/(1+exp(eta))^2, and eps beyond |eta| > 30.
    e = np.exp(np.clip(eta, -_LOGIT_THRESH, _LOGIT_THRESH))
    d = e + 1.0
    np.divide(e, np.square(d, out=d), out=e)
    return _logit_tails(e, eta, EPS, EPS)


def _probit_mu_eta(eta):
    with np.errstate(over="ignore"):  # eta^2 = inf gives the density's 0, floored below
        d = np.square(eta)
    d *= -0.5
    np.exp(d, out=d)
    d *= _INV_SQRT_2PI
    return np.maximum(d, EPS, out=d)


def _cauchit_fun(mu):
    # qcauchy from the nearer tail, as R does, so mu near 0 or 1 keeps its precision.
    q = -1.0 / np.tan(np.pi * np.minimum(mu, 1.0 - mu))
    return np.where(mu > 0.5, -q, q)


def _cauchit_inv(eta):
    # 1/2 + atan(eta)/pi written as atan2(1, -eta)/pi keeps the lower tail accurate (R's
    # pcauchy uses atan(1/x) there).
    mu = np.arctan2(1.0, -np.clip(eta, -_CAUCHIT_THRESH, _CAUCHIT_THRESH))
    mu /= np.pi
    return mu


def _cauchit_mu_eta(eta):
    with np.errstate(over="ignore"):  # eta^2 = inf gives the density's 0, floored below
        d = np.square(eta)
    d += 1.0
    d *= np.pi
    return np.maximum(np.reciprocal(d, out=d), EPS, out=d)


def _cloglog_inv(eta):
    with np.errstate(over="ignore"):  # exp(eta) = inf gives mu = 1, clamped below
        mu = -np.expm1(-np.exp(eta))
    return np.clip(mu, EPS, 1.0 - EPS, out=mu)


def _cloglog_mu_eta(eta):
    t = np.exp(np.minimum(eta, 700.0))
    d = np.exp(-t)
    d *= t
    return np.maximum(d, EPS, out=d)


def _log_inv(eta):  # also log's mu.eta
    mu = np.exp(eta)
    return np.maximum(mu, EPS, out=mu)


def finite_positive(eta):
    return np.all(np.isfinite(eta)) and np.all(eta > 0)


_LINKS = {  # name: (linkfun, linkinv, mu_eta, valideta or None for "always valid")
    "logit": (logit, _logit_inv, _logit_mu_eta, None),
    "probit": (ndtri, lambda eta: ndtr(np.clip(eta, -_PROBIT_THRESH, _PROBIT_THRESH)),
               _probit_mu_eta, None),
    "cauchit": (_cauchit_fun, _cauchit_inv, _cauchit_mu_eta, None),
    "cloglog": (lambda mu: np.log(-np.log1p(-mu)), _cloglog_inv, _cloglog_mu_eta, None),
    "log": (np.log, _log_inv, _log_inv, None),
    "identity": (np.array, np.array, np.ones_like, None),
    "sqrt": (np.sqrt, np.square, lambda eta: 2.0 * eta, finite_positive),
    "1/mu^2": (lambda mu: 1.0 / np.square(mu), lambda eta: 1.0 / np.sqrt(eta),
               lambda eta: -0.5 / (eta * np.sqrt(eta)), finite_positive),
    "inverse": (np.reciprocal, np.reciprocal, lambda eta: -1.0 / np.square(eta),
                lambda eta: np.all(np.isfinite(eta)) and np.all(eta != 0)),
}


def make_link(name: str) -> Link:
    """The ``Link`` called ``name`` (R's ``make.link``); unknown names raise ``FamilyError``."""
    if name not in _LINKS:
        raise FamilyError(f"link {name!r} not recognised; known links are "
                          f"{', '.join(map(repr, _LINKS))}")
    return Link(name, *_LINKS[name])
