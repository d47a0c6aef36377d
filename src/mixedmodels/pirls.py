"""PIRLS on the blocked Cholesky, and the Laplace / adaptive Gauss-Hermite deviance of a GLMM.

``algorithm.md`` section 8. For fixed theta (and fixed beta, or beta free in the "fast"
variant) penalized iteratively reweighted least squares finds the conditional modes u-tilde:
each iteration computes working weights and a working response from the current linear
predictor (one O(n) pass), refills the cross-products A with them by grouped sums on a fixed
plan (``CrossProductPlan.fill``), refactors L on a fixed plan (``BlockedCholesky.refill`` and
``update``) and solves for u (and beta). No n x q matrix is formed.

Every evaluation starts from the same linear predictor (``eta_start``), so the objective is a
function of (theta, beta) alone: finite-difference derivatives at the optimum are clean.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .crossprod import CrossProductPlan
from .errors import DataError, MixedModelsError
from .linalg.cholesky import BlockedCholesky, TileBlock
from .quadrature import gauss_hermite, tensor_gauss_hermite
from .terms import ReTerm

# PIRLS stops when an iteration moves u (and beta) by less than PIRLS_STEP relative to their
# size. lme4 stops when the penalized deviance changes by less than 1e-7 relative (tolPwrss),
# which allows a last step of 1e-3 or more (the deviance is flat at the mode) and leaves the
# log-determinant, computed at the previous iterate's weights, off by as much: too noisy for
# finite-difference Hessians. The step of an iteration measures the error of the iterate whose
# weights it factored, so a step below PIRLS_STEP makes log|L|^2 accurate to about that;
# near the mode PIRLS converges quadratically, so this costs about one iteration more.
# PIRLS_STAGNANT is the round-off floor: smaller steps that stop shrinking end the run. (The
# deviance itself is no test: for Gamma fits the family's log-likelihood multiplies the error
# of the deviance by n / dispersion, about 3e4 on sleepstudy.)
PIRLS_STEP = 1e-10
PIRLS_STAGNANT = 1e-8
PIRLS_TOL = 1e-10   # relative increase of the penalized deviance tolerated as round-off
PIRLS_MAXIT = 100
INDICATOR_MAX_ROWS = 200_000
MAX_HALVINGS = 20


_CANONICAL = {("binomial", "logit"), ("poisson", "log"), ("gaussian", "identity")}


class PirlsError(MixedModelsError):
    """PIRLS could not find the conditional modes (the deviance would not decrease)."""


@dataclass
class PirlsState:
    """The outcome of one PIRLS run at (theta, beta).

    u : per term (q_j,) spherical modes; b : per term (l_j, p_j); beta : (p,); eta, mu : (n,);
    ldL2 : log|L_theta|^2 of the factor at the converged weights; dev : sum of deviance
    residuals; ussq : ||u||^2; iterations : PIRLS iterations of the run.
    """

    u: list
    b: list
    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    ldL2: float
    dev: float
    ussq: float
    iterations: int

    @property
    def pdev(self) -> float:
        return self.dev + self.ussq


class GlmmWorkspace:
    """Data, plan and factors of one GLMM; ``pirls`` finds the modes, ``laplace`` and
    ``agq_correction`` give the deviance from them.

    Parameters
    ----------
    X : (n, p) fixed-effects matrix; y : (n,) response (proportions for binomial trials);
    offset : (n,); prior_weights : (n,) (binomial: number of trials times any prior weight);
    n_trials : (n,) binomial trials for the family's aic, or None;
    terms : random-effects terms (lme4's order); family : a ``families.Family``.
    """

    def __init__(self, X, y, offset, prior_weights, n_trials, terms: tuple[ReTerm, ...],
                 family):
        self.X = X
        self.y = y
        self.offset = offset
        self.prior_weights = prior_weights
        self.n_trials = n_trials
        self.terms = tuple(terms)
        self.family = family
        self.n = y.shape[0]
        # Sparse indicators make each refill a few calls (small n, where call overhead
        # dominates); past INDICATOR_MAX_ROWS chunked bincounts are faster and keep memory flat.
        self.plan = CrossProductPlan(self.terms, indicators=self.n <= INDICATOR_MAX_ROWS)
        self._X0 = np.empty((self.n, 0))
        self._zero = np.broadcast_to(np.float64(0.0), (self.n,))
        self._L_u: BlockedCholesky | None = None   # theta-only factor (X moved to the offset)
        self._L_x: BlockedCholesky | None = None   # factor with X (fast PIRLS, R_X)
        # Where the first PIRLS run of each variant starts (later runs start from the previous
        # run's modes): eta_start (n,) for the fast variant (beta free), b_start per term
        # (l_j, p_j) with beta fixed (eta = offset + X beta + Z b_start).
        self.eta_start = None
        self.b_start = [np.zeros((t.n_levels, t.p)) for t in self.terms]
        self._aic_offset: dict = {}
        self._warm: dict = {}    # fast -> (u, beta) of the last converged PIRLS run
        # A 0/1 binomial response (Bernoulli rows) has a one-logarithm deviance.
        binary = family.name == "binomial" and bool(np.all((y == 0.0) | (y == 1.0)))
        self._success = np.asarray(y == 1.0) if binary else None
        self._unit_weights = bool(np.all(np.asarray(prior_weights) == 1.0))

    @classmethod
    def from_design(cls, design, family) -> "GlmmWorkspace":
        """The workspace of a ``Design`` built with ``glm=True``: the family's ``initialize``
        turns the response into (y, prior weights, mustart, trials) as R's does, and PIRLS
        starts from the linear predictor of mustart."""
        from .errors import FormulaError

        info = design.info
        if design.trials is not None and family.name != "binomial":
            raise FormulaError(f"a cbind(successes, failures) response needs the binomial "
                               f"family, not {family.name}", formula=info.formula.text)
        if info.response_levels is not None and family.name != "binomial":
            raise DataError(f"the response '{info.formula.response}' is a factor "
                            f"(levels {info.response_levels[0]!r}, ...): only the binomial "
                            f"family takes a factor response, not {family.name}")
        y, pw, mustart, n_trials = family.initialize(
            design.y, design.weights if info.has_weights else None, design.trials,
            response=info.formula.response)
        ws = cls(design.X, y, np.asarray(design.offset), np.asarray(pw, dtype=float),
                 n_trials, design.terms, family)
        ws.eta_start = family.link.linkfun(mustart)
        return ws

    # ---- the linear predictor ------------------------------------------------------
    def templates(self, theta: np.ndarray) -> list[np.ndarray]:
        out, start = [], 0
        for t in self.terms:
            out.append(t.template(theta[start:start + t.n_theta]))
            start += t.n_theta
        return out

    def zb(self, b: list[np.ndarray]) -> np.ndarray:
        """(n,) Z b for b per term (l_j, p_j)."""
        out = np.zeros(self.n)
        for t, bj, cols in zip(self.terms, b, self.plan.zcols):
            for c, col in enumerate(cols):
                vals = bj[:, c][t.refs]
                out += vals if col is None else vals * col
        return out

    def b_from_u(self, u: list[np.ndarray], templates: list[np.ndarray]) -> list[np.ndarray]:
        return [uj.reshape(t.n_levels, t.p) @ T.T for uj, t, T in zip(u, self.terms, templates)]

    # ---- factors -------------------------------------------------------------------
    def _factor(self, with_x: bool, z: np.ndarray, w: np.ndarray,
                templates: list[np.ndarray]) -> BlockedCholesky:
        """Fill A with working weights w and response z, refactor on the fixed plan."""
        X = self.X if with_x else self._X0
        A = self.plan.fill(X, z, self._zero, w, sum_log_w=0.0)
        L = self._L_x if with_x else self._L_u
        if L is None:
            L = BlockedCholesky(A, refillable=True)
            if with_x:
                self._L_x = L
            else:
                self._L_u = L
        else:
            L.refill(A)
        L.update(templates)
        return L

    def working(self, eta: np.ndarray, family=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mu, mu_eta, working weights) at eta, each (n,)."""
        fam = family or self.family
        mu = fam.link.linkinv(eta)
        d = fam.link.mu_eta(eta)
        w = self.prior_weights * d * d / fam.variance(mu)
        return mu, d, w

    def deviance(self, mu: np.ndarray, family=None) -> float:
        """Sum of the deviance residuals at mu (n,).

        For a 0/1 binomial response each row's deviance is -2 a log(mu) or -2 a log(1 - mu):
        one logarithm per row instead of R's two y log(y / mu) terms (same numbers)."""
        fam = family or self.family
        if self._success is not None and fam.name == "binomial":
            p = 1.0 - mu
            np.copyto(p, mu, where=self._success)
            np.log(p, out=p)
            return float(-2.0 * (np.sum(p) if self._unit_weights else self.prior_weights @ p))
        return float(np.sum(fam.dev_resids(self.y, mu, self.prior_weights)))

    def _residual(self, mu: np.ndarray, d: np.ndarray, fam) -> np.ndarray:
        """r = a mu_eta (y - mu) / V(mu) (n,); a (y - mu) for the canonical links, where
        mu_eta = V (the logit's and log's floors in R act only beyond |eta| = 30, where the
        rows carry no weight)."""
        if (fam.name, fam.link.name) in _CANONICAL:
            return self.prior_weights * (self.y - mu)
        return self.prior_weights * d * (self.y - mu) / fam.variance(mu)

    # ---- PIRLS ---------------------------------------------------------------------
    def gradient(self, u: list, mu: np.ndarray, d: np.ndarray, templates: list,
                 fam, with_x: bool) -> tuple[list, np.ndarray | None]:
        """Half the negative gradient of the penalized deviance at (u, beta): per term
        Lambda_j' Z_j' r - u_j (q_j,), and X' r (p,) when beta moves; r = a mu_eta (y - mu) / V.
        """
        r = self._residual(mu, d, fam)
        out = []
        for t, cols, T, uj in zip(self.terms, self.plan.zcols, templates, u):
            zr = np.empty((t.n_levels, t.p))
            for c, col in enumerate(cols):
                zr[:, c] = np.bincount(t.refs, weights=r if col is None else r * col,
                                       minlength=t.n_levels)
            out.append((zr @ T).ravel() - uj)
        return out, (self.X.T @ r if with_x else None)

    def pirls(self, theta: np.ndarray, beta: np.ndarray | None, family=None) -> PirlsState:
        """Conditional modes at theta: u only with beta fixed, or u and beta when beta is None
        (lme4's nAGQ = 0). Raises PirlsError when step-halving cannot reduce the deviance.

        Newton steps for the penalized deviance, M delta = gradient with
        M = Lambda'Z'WZLambda + I (and the X blocks when beta moves). A factor of M from an
        earlier iterate or an earlier theta (the previous evaluation's) serves as long as the
        steps shrink fast (simplified Newton: each such step is a gradient and two triangular
        sweeps, no factorization); when they do not, or the deviance would rise, M is
        refactored at the current iterate. The run ends with a factor at the converged weights,
        whose log-determinant the Laplace formula needs. Each run starts from the previous
        run's converged modes; with steps below PIRLS_STEP at the end, the result does not
        depend on the start beyond round-off.
        """
        fam = family or self.family
        templates = self.templates(theta)
        fast = beta is None
        base = self.offset if fast else self.offset + self.X @ beta
        no_beta = np.zeros(0)
        warm = self._warm.get(fast)
        P = self._L_x if fast else self._L_u
        if warm is None or P is None:
            # A classic PIRLS step from the start's linear predictor (as lme4's first step).
            eta0 = self.eta_start if fast else base + self.zb(self.b_start)
            mu, d, w = self.working(eta0, fam)
            P = self._factor(fast, eta0 - base + (self.y - mu) / d, w, templates)
            cur_beta = P.beta() if fast else beta
            u = P.u(cur_beta) if fast else P.u(no_beta)
        else:
            u = [x.copy() for x in warm[0]]
            cur_beta = warm[1].copy() if fast else beta
        fresh = False     # P was factored at the weights of the current iterate
        b = self.b_from_u(u, templates)
        eta = (self.offset + self.X @ cur_beta if fast else base) + self.zb(b)
        mu = fam.link.linkinv(eta)
        dev = self.deviance(mu, fam)
        ussq = float(sum(x @ x for x in u))
        refresh, prev_step, step = False, math.inf, math.inf
        canonical = (fam.name, fam.link.name) in _CANONICAL
        for iteration in range(1, PIRLS_MAXIT + 1):
            d = None if canonical and not refresh else fam.link.mu_eta(eta)
            if refresh:
                w = self.prior_weights * d * d / fam.variance(mu)
                P = self._factor(fast, eta - base + (self.y - mu) / d, w, templates)
                fresh, refresh = True, False
            g_u, g_x = self.gradient(u, mu, d, templates, fam, fast)
            delta_u, delta_x = P.solve(g_u, g_x if fast else None)
            if delta_x is None:
                delta_x = np.zeros(self.X.shape[1])
            pdev = dev + ussq
            del eta, mu      # the trial arrays replace them (memory at large n)
            t = 1.0
            for _ in range(MAX_HALVINGS + 1):
                u_try = [a + t * c for a, c in zip(u, delta_u)]
                beta_try = cur_beta + t * delta_x if fast else cur_beta
                b_try = self.b_from_u(u_try, templates)
                eta_try = (self.offset + self.X @ beta_try if fast else base) + self.zb(b_try)
                mu_try = fam.link.linkinv(eta_try)
                dev_try = self.deviance(mu_try, fam)
                ussq_try = float(sum(x @ x for x in u_try))
                if dev_try + ussq_try <= pdev * (1.0 + PIRLS_TOL):
                    break
                t /= 2.0
            else:
                if not fresh:
                    refresh = True
                    eta = (self.offset + self.X @ cur_beta if fast else base) + self.zb(b)
                    mu = fam.link.linkinv(eta)
                    continue
                raise PirlsError("PIRLS step-halvings failed to reduce the penalized deviance "
                                 f"({pdev:.8g}) at theta = {np.round(theta, 6).tolist()}; the "
                                 "model may be overparameterized or the response badly scaled")
            prev_step, step = step, t * _size(delta_u, delta_x, u_try, beta_try, fast)
            # Below PIRLS_STAGNANT a step that no longer shrinks is round-off: stop there.
            converged = step < PIRLS_STEP or (step < PIRLS_STAGNANT and step > 0.5 * prev_step)
            # Separation: large steps along a ridge where the deviance no longer changes (the
            # fitted probabilities sit at R's clamps); stop there, as lme4's rule does, and let
            # the caller warn.
            separated = step > 1e-3 and abs(pdev - dev_try - ussq_try) <= 1e-12 * pdev
            converged = converged or separated
            factored_here = fresh
            u, cur_beta, b, eta, mu, dev, ussq = (u_try, beta_try, b_try, eta_try, mu_try,
                                                  dev_try, ussq_try)
            fresh = False
            if converged:
                if not factored_here or step >= PIRLS_STEP:
                    # log|L|^2 belongs to the weights of the modes: factor there once more.
                    d = fam.link.mu_eta(eta)
                    w = self.prior_weights * d * d / fam.variance(mu)
                    P = self._factor(fast, eta - base + (self.y - mu) / d, w, templates)
                self._warm[fast] = ([x.copy() for x in u], np.array(cur_beta, dtype=float))
                return PirlsState(u=u, b=b, beta=np.asarray(cur_beta, dtype=float), eta=eta,
                                  mu=mu, ldL2=P.ldL2(), dev=dev, ussq=ussq,
                                  iterations=iteration)
            # A stale factor is kept while it shrinks the steps fast (linear rate below 0.2).
            refresh = step > 0.2 * prev_step or t < 1.0
        raise PirlsError(f"PIRLS did not converge in {PIRLS_MAXIT} iterations at theta = "
                         f"{np.round(theta, 6).tolist()}")

    # ---- objectives ----------------------------------------------------------------
    def aic(self, mu: np.ndarray, dev: float, family=None) -> float:
        """The family's -2 log-likelihood at mu with its normalizing constants (R's aic()).

        For the binomial and the Poisson, aic - deviance depends on y alone (the saturated
        log-likelihood), so it is computed once and the deviance, known anyway, does the rest.
        """
        fam = family or self.family
        if fam.name not in ("binomial", "poisson"):
            return float(fam.aic(self.y, mu, self.prior_weights, dev, self.n_trials))
        key = (fam.name, fam.link.name)
        if key not in self._aic_offset:
            self._aic_offset[key] = float(
                fam.aic(self.y, mu, self.prior_weights, dev, self.n_trials)) - dev
        return dev + self._aic_offset[key]

    def laplace(self, state: PirlsState, family=None) -> float:
        """lme4's Laplace deviance: log|L|^2 + ||u||^2 + aic(mu)."""
        return state.ldL2 + state.ussq + self.aic(state.mu, state.dev, family)

    def agq_correction(self, state: PirlsState, theta: np.ndarray, nagq: int,
                       family=None) -> float:
        """-2 sum_j log M_j: adaptive Gauss-Hermite minus Laplace, for one term (l, p), p <= 3.

        Per level the integral over u_j is taken on the standardized scale
        u_j = u-tilde_j + L_j^{-T} z with L_j the level's Cholesky tile; the weights are those
        of the standard normal, so one node (z = 0) gives the Laplace value.
        """
        fam = family or self.family
        t = self.terms[0]
        tiles = level_tiles(self._L_u, 0, t.n_levels, t.p)
        inv = np.linalg.inv(tiles)                                   # (l, p, p)
        nodes, weights = (gauss_hermite(nagq) if t.p == 1
                          else tensor_gauss_hermite(nagq, t.p))
        nodes = np.asarray(nodes, dtype=float).reshape(len(weights), t.p)
        templates = self.templates(theta)
        base = state.eta - self.zb(state.b)
        u_hat = state.u[0].reshape(t.n_levels, t.p)

        def level_deviance(u: np.ndarray) -> np.ndarray:
            eta = base + self.zb(self.b_from_u([u.ravel()], templates))
            rows = fam.dev_resids(self.y, fam.link.linkinv(eta), self.prior_weights)
            return np.bincount(t.refs, weights=rows, minlength=t.n_levels) + np.sum(u * u, 1)

        d0 = level_deviance(u_hat)
        M = np.zeros(t.n_levels)
        for z, wk in zip(nodes, weights):
            if not np.any(z):
                M += wk
                continue
            shift = np.einsum("lba,b->la", inv, z)                    # L_j^{-T} z per level
            M += wk * np.exp((z @ z + d0 - level_deviance(u_hat + shift)) / 2.0)
        return float(-2.0 * np.sum(np.log(M)))

    def factor_with_x(self, state: PirlsState, theta: np.ndarray, family=None) -> BlockedCholesky:
        """L with the fixed effects at the working weights of ``state`` (for R_X)."""
        mu, d, w = self.working(state.eta, family)
        z = state.eta - self.offset + (self.y - mu) / d
        return self._factor(True, z, w, self.templates(theta))

    @property
    def factor(self) -> BlockedCholesky:
        """The theta-only factor of the last PIRLS run with beta fixed."""
        return self._L_u


def _size(delta_u: list, delta_x, u: list, beta, fast: bool) -> float:
    """Largest entry of a step in u (and beta when it moves), relative to their size."""
    num = max((float(np.max(np.abs(a))) for a in delta_u if a.size), default=0.0)
    size = max((float(np.max(np.abs(a))) for a in u if a.size), default=0.0)
    if fast and np.size(beta):
        num = max(num, float(np.max(np.abs(delta_x))))
        size = max(size, float(np.max(np.abs(beta))))
    return num / (1.0 + size)


def level_tiles(L: BlockedCholesky, j: int, n_levels: int, p: int) -> np.ndarray:
    """The (l, p, p) diagonal tiles of block j of L (a tile block, or a dense block that is
    block diagonal because the term is alone on its factor)."""
    blk = L.diag[j]
    if isinstance(blk, TileBlock):
        return blk.tiles
    idx = np.arange(n_levels)[:, None] * p + np.arange(p)[None, :]
    return blk[idx[:, :, None], idx[:, None, :]]
