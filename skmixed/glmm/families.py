"""GLM families for the mixed models: link, variance, deviance, likelihood.

A family is a small object holding a :class:`Link` and the distribution's
variance function, unit deviance and log-likelihood, with R's conventions:

* binomial data are proportions ``y`` with prior weights ``w`` (numbers of
  trials), as R's ``cbind(s, f)`` response becomes ``y = s / (s + f)`` and
  ``w = s + f``; the log-likelihood is that of ``round(w y)`` successes in
  ``round(w)`` trials, with the binomial coefficient (R's ``binomial()$aic``);
* Poisson counts with prior weights multiplying each row's log-likelihood
  (R's ``poisson()$aic``).
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, gammaln, log_ndtr, ndtr, xlogy

from skmixed._stacklevel import user_stacklevel

# mu is kept this far from the boundary of its range, as R's families do
# (binomial's linkinv clamps eta; the log link's mu is floored).
_EPS = np.finfo(np.float64).eps
_THRESH = 30.0
_MAX_LOG = np.log(np.finfo(np.float64).max) - 1.0
_PROBIT_THRESH = 8.125890664701906  # R's -qnorm(.Machine$double.eps)


@dataclass(frozen=True)
class Link:
    """A link function ``eta = g(mu)`` with its inverse and ``d mu / d eta``."""

    name: str

    def link(self, mu):
        """``eta = g(mu)``."""
        mu = np.asarray(mu, dtype=np.float64)
        if self.name == "logit":
            return np.log(mu / (1.0 - mu))
        if self.name == "probit":
            from scipy.special import ndtri

            return ndtri(mu)
        if self.name == "cloglog":
            return np.log(-np.log1p(-mu))
        if self.name == "log":
            return np.log(mu)
        return mu  # identity

    def inverse(self, eta):
        """``mu = g⁻¹(eta)``, kept inside the family's range."""
        if self.name == "logit":
            mu = expit(eta)
            return np.clip(mu, _EPS, 1.0 - _EPS)
        if self.name == "probit":
            # R's: eta clipped at ±(-qnorm(eps)), so mu stays eps away from
            # 0 and 1 and V(mu) = mu (1 - mu) never reaches 0
            return ndtr(np.clip(eta, -_PROBIT_THRESH, _PROBIT_THRESH))
        if self.name == "cloglog":
            mu = -np.expm1(-np.exp(np.minimum(eta, 700.0)))
            return np.clip(mu, _EPS, 1.0 - _EPS)
        if self.name == "log":
            return np.maximum(np.exp(np.minimum(eta, _MAX_LOG)), _EPS)
        return np.asarray(eta, dtype=np.float64)

    def mu_eta(self, eta):
        """``d mu / d eta`` at eta."""
        if self.name == "logit":
            e = np.exp(-np.abs(eta))
            return np.maximum(e / (1.0 + e) ** 2, _EPS)
        if self.name == "probit":
            return np.maximum(np.exp(-0.5 * eta * eta) / np.sqrt(2.0 * np.pi), _EPS)
        if self.name == "cloglog":
            eta = np.minimum(eta, 700.0)
            return np.maximum(np.exp(eta - np.exp(eta)), _EPS)
        if self.name == "log":
            return np.maximum(np.exp(np.minimum(eta, _MAX_LOG)), _EPS)
        return np.ones_like(eta)

    def mu_eta_derivative(self, eta):
        """``d² mu / d eta²`` at eta (for the Laplace objective's gradient)."""
        if self.name == "logit":
            mu = self.inverse(eta)
            return mu * (1.0 - mu) * (1.0 - 2.0 * mu)
        if self.name == "probit":
            return -eta * np.exp(-0.5 * eta * eta) / np.sqrt(2.0 * np.pi)
        if self.name == "cloglog":
            eta = np.minimum(eta, 700.0)
            return np.exp(eta - np.exp(eta)) * (1.0 - np.exp(eta))
        if self.name == "log":
            return np.exp(np.minimum(eta, _MAX_LOG))
        return np.zeros_like(eta)

    @property
    def canonical_for(self):
        """The family for which this link is canonical (or None)."""
        return {"logit": "binomial", "log": "poisson"}.get(self.name)


class Family:
    """Base class: a distribution with a link (see the module docstring)."""

    name = ""
    links = ()
    default_link = ""

    def __init__(self, link=None):
        link = self.default_link if link is None else str(link)
        if link not in self.links:
            raise ValueError(
                f"link={link!r} is not available for the {self.name} family; "
                f"expected one of {list(self.links)}."
            )
        self.link = Link(link)

    def __repr__(self):
        return f"{type(self).__name__}(link={self.link.name!r})"

    @property
    def canonical(self):
        """Whether the link is canonical (Fisher and observed weights agree)."""
        return self.link.canonical_for == self.name

    def working_weights(self, mu, eta, prior):
        """GLM weights ``w mu_eta² / V(mu)`` (Fisher scoring)."""
        if self.canonical:  # mu_eta = V(mu)
            return prior * self.variance(mu)
        d = self.link.mu_eta(eta)
        return prior * d * d / self.variance(mu)

    def score_residual(self, y, mu, eta, prior):
        """``w (y - mu) mu_eta / V(mu)``: minus half the deviance's d/d eta."""
        if self.canonical:
            return prior * (y - mu)
        return prior * (y - mu) * self.link.mu_eta(eta) / self.variance(mu)

    def derivative_weights(self, y, mu, eta, prior):
        """What the Laplace objective's gradient needs per row.

        Returns ``(w, w_obs, dw)``: the Fisher weights ``w`` (those of
        PIRLS), the observed weights ``w_obs = -d r / d eta`` (r the score
        residual; half the second derivative of the deviance, equal to w
        for a canonical link) and ``dw = d w / d eta``.
        """
        v = self.variance(mu)
        if self.canonical:  # mu_eta = V, so w_obs = w and dw = w V'(mu)
            w = prior * v
            return w, w, w * self.variance_derivative(mu)
        d = self.link.mu_eta(eta)
        w = prior * d * d / v
        d2 = self.link.mu_eta_derivative(eta)
        dv = self.variance_derivative(mu)
        w_obs = w - prior * (y - mu) * (d2 * v - d * d * dv) / (v * v)
        dw = prior * d * (2.0 * d2 * v - d * d * dv) / (v * v)
        return w, w_obs, dw

    def kernel(self, y, mu, prior):
        """The part of the log-likelihood that depends on mu (summed).

        The log-likelihood and the deviance are this plus constants of the
        data (see :class:`Kernel`); it costs one or two logarithms per row.
        """
        raise NotImplementedError

    def deviance(self, y, mu, prior):
        """Sum of the weighted unit deviances (inf past the float range, as
        for a rejected trial step of IRLS, without a numpy warning)."""
        with np.errstate(over="ignore"):
            return float(np.sum(self.unit_deviance(y, mu, prior)))

    def minus2_loglik(self, y, mu, prior):
        """``-2 Σ log p(y_i | mu_i)`` with every normalising constant."""
        return -2.0 * float(np.sum(self.loglik_rows(y, mu, prior)))

    def saturated_minus2_loglik(self, y, prior):
        """``-2 log L`` of the saturated model (mu = y)."""
        return self.minus2_loglik(y, y, prior)


class Binomial(Family):
    """Binomial proportions with prior weights = numbers of trials."""

    name = "binomial"
    links = ("logit", "probit", "cloglog")
    default_link = "logit"

    @staticmethod
    def variance(mu):
        return mu * (1.0 - mu)

    @staticmethod
    def variance_derivative(mu):
        return 1.0 - 2.0 * mu

    @staticmethod
    def clip_mean(y):
        return np.asarray(y, dtype=np.float64)

    @staticmethod
    def unit_deviance(y, mu, prior):
        """``2 w [y log(y/mu) + (1-y) log((1-y)/(1-mu))]`` (0 log 0 = 0)."""
        return (
            2.0
            * prior
            * (
                xlogy(y, y)
                - xlogy(y, mu)
                + xlogy(1.0 - y, 1.0 - y)
                - xlogy(1.0 - y, 1.0 - mu)
            )
        )

    @staticmethod
    def kernel(y, mu, prior):
        """``Σ w [y log mu + (1 - y) log(1 - mu)]``."""
        return float(prior @ (y * np.log(mu) + (1.0 - y) * np.log1p(-mu)))

    @staticmethod
    def _counts(y, prior):
        """R's binomial aic reads ``round(w)`` trials and ``round(w y)``
        successes, the row scaled by ``w / round(w)``: for 0/1 outcomes
        with non-integer weights the row gives ``w log p`` (as the kernel),
        not ``round(w) log p``. A row of ``0 < w < 0.5`` (no whole trial),
        which lme4 leaves out of log L but not of PIRLS, is kept as the
        kernel keeps it: one trial of ``y``, scaled by w."""
        n = np.round(prior)
        k = np.round(prior * y)
        partial = (n == 0.0) & (prior > 0.0)
        if np.any(partial):
            n = np.where(partial, 1.0, n)
            k = np.where(partial, y, k)
        scale = np.divide(prior, n, out=np.zeros_like(n), where=n > 0.0)
        return n, k, scale

    @classmethod
    def loglik_rows(cls, y, mu, prior):
        """``(w / round(w)) log dbinom(round(w y), round(w), mu)`` per row
        (lme4's binomial aic)."""
        n, k, scale = cls._counts(y, prior)
        log_choose = gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)
        return scale * (log_choose + xlogy(k, mu) + xlogy(n - k, 1.0 - mu))

    def loglik_eta(self, y, eta, prior):
        """Per-row log-likelihood as a function of eta, accurate in the tails."""
        n, k, scale = self._counts(y, prior)
        log_choose = gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)
        if self.link.name == "logit":
            log_mu, log_1mu = -np.logaddexp(0.0, -eta), -np.logaddexp(0.0, eta)
        elif self.link.name == "probit":
            log_mu, log_1mu = log_ndtr(eta), log_ndtr(-eta)
        else:
            mu = self.link.inverse(eta)
            log_mu, log_1mu = np.log(mu), np.log1p(-mu)
        return scale * (log_choose + k * log_mu + (n - k) * log_1mu)

    def check_response(self, y, prior):
        """Proportions in [0, 1]; ``w y`` whole numbers where w > 1."""
        if np.any((y < 0.0) | (y > 1.0)):
            bad = y[(y < 0.0) | (y > 1.0)]
            raise ValueError(
                "The binomial family needs y in [0, 1] (a proportion of successes, "
                "with sample_weight = the number of trials, or 0/1 labels); got "
                f"{bad.size} value(s) outside, e.g. {float(bad[0])!r}."
            )
        successes = prior * y
        # R's binomial()$initialize: off a whole number by more than 0.001
        if np.any(np.abs(successes - np.round(successes)) > 1e-3):
            import warnings

            warnings.warn(
                "non-integer #successes in a binomial glm! (y * sample_weight is "
                "not a whole number of successes)",
                UserWarning,
                stacklevel=user_stacklevel(),
            )


class Poisson(Family):
    """Poisson counts."""

    name = "poisson"
    links = ("log",)
    default_link = "log"

    @staticmethod
    def variance(mu):
        return mu

    @staticmethod
    def variance_derivative(mu):
        return np.ones_like(mu)

    @staticmethod
    def clip_mean(y):
        return np.asarray(y, dtype=np.float64)

    @staticmethod
    def unit_deviance(y, mu, prior):
        """``2 w [y log(y/mu) - (y - mu)]``."""
        return 2.0 * prior * (xlogy(y, y) - xlogy(y, mu) - (y - mu))

    @staticmethod
    def kernel(y, mu, prior):
        """``Σ w [y log mu - mu]``.

        -inf when the means overflow the sum (a trial step far too large,
        which PIRLS's step halving then rejects): no numpy warning for it.
        """
        with np.errstate(over="ignore"):
            return float(prior @ (y * np.log(mu) - mu))

    @staticmethod
    def loglik_rows(y, mu, prior):
        """``w log dpois(y, mu)`` per row (R's poisson aic)."""
        return prior * (xlogy(y, mu) - mu - gammaln(y + 1.0))

    def loglik_eta(self, y, eta, prior):
        """Per-row log-likelihood as a function of eta."""
        return prior * (y * eta - np.exp(np.minimum(eta, _MAX_LOG)) - gammaln(y + 1.0))

    def check_response(self, y, prior):
        """Non-negative counts."""
        if np.any(y < 0.0):
            raise ValueError(
                f"The poisson family needs counts y >= 0; got {int((y < 0).sum())} "
                f"negative value(s), e.g. {float(y[y < 0][0])!r}."
            )
        fractional = np.abs(y - np.round(y)) > 1e-7 * np.maximum(1.0, y)
        if np.any(fractional):
            import warnings

            warnings.warn(
                f"non-integer x = {float(y[fractional][0]):f} (as R's dpois "
                f"warns): non-integer counts y in a poisson glm, "
                f"{int(fractional.sum())} row(s). R's dpois gives them "
                "likelihood 0 (lme4's logLik is then -Inf); here the "
                "log-likelihood extends to them through lgamma, so logLik, AIC "
                "and the fit are not R's.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )


class Kernel:
    """Deviance and -2 log-likelihood of fixed data through the kernel.

    ``deviance(mu) = 2 (K_sat - K(mu))`` and ``-2 log L(mu) = -2 (K(mu) +
    C)`` with K the family's kernel; the constants come from one exact
    evaluation. 0/1 data without weights take one logarithm per row.
    """

    def __init__(self, family, y, prior):
        self.family, self.y, self.prior = family, y, prior
        self.bernoulli = (
            family.name == "binomial"
            and bool(np.all(prior == 1.0))
            and bool(np.all((y == 0.0) | (y == 1.0)))
        )
        self._event = y == 1.0 if self.bernoulli else None
        mu0 = np.full_like(y, 0.5 if family.name == "binomial" else 1.0)
        k0 = self(mu0)
        self.saturated = k0 + 0.5 * family.deviance(y, mu0, prior)
        self.constant = float(np.sum(family.loglik_rows(y, mu0, prior))) - k0

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_event"] = None  # y == 1, rebuilt on unpickling
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.bernoulli:
            self._event = self.y == 1.0

    def __call__(self, mu):
        if self.bernoulli:
            return float(np.sum(np.log(np.where(self._event, mu, 1.0 - mu))))
        return self.family.kernel(self.y, mu, self.prior)

    def deviance(self, mu):
        return 2.0 * (self.saturated - self(mu))

    def minus2_loglik(self, mu):
        return -2.0 * (self(mu) + self.constant)


_FAMILIES = {"binomial": Binomial, "poisson": Poisson}


def get_family(family, link=None):
    """A :class:`Family` from its name (``"binomial"``, ``"poisson"``)."""
    if isinstance(family, Family):
        if link is not None and str(link) != family.link.name:
            raise ValueError(
                f"link={link!r} differs from the link of family={family!r}; "
                "give the link once (link=None with a family object)."
            )
        return family
    name = str(family).lower()
    if name not in _FAMILIES:
        raise ValueError(
            f"family={family!r} is not supported; expected one of {list(_FAMILIES)}."
        )
    return _FAMILIES[name](link)
