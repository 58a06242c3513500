"""Brute force (issue 7): the library's criterion against a dense likelihood.

On 20 small random data sets (n <= 60; crossed, nested and uncorrelated
structures, with random slopes) the REML criterion and the ML deviance that
a fitted ``MixedLMRegressor`` computes at θ (``est._criterion(theta)``, the
blocked-Cholesky path) must equal, to 1e-8 relative, a dense computation
built here from the raw columns without any of the library's machinery:

- ``Z`` and ``Λθ`` as dense matrices, ``V = I + Z Λ Λᵀ Zᵀ``;
- β̂ by generalised least squares, σ̂² profiled (ML ``r'V⁻¹r / n``, REML
  ``r'V⁻¹r / (n - p)``);
- ML: ``-2 logpdf(y; Xβ̂, σ̂² V)`` with ``scipy.stats.multivariate_normal``;
- REML: ``-2 logpdf - p log(2π) + log|Xᵀ Σ⁻¹ X|`` with ``Σ = σ̂² V``.

And the optimum the estimator reports is no worse than a multi-start search
(scipy's L-BFGS-B from several random θ) on the same criterion.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.stats import multivariate_normal

from skmixed import MixedLMRegressor

# (spec, grouping columns -> how many levels); slopes are on x1 or x2.
STRUCTURES = [
    ("(1 | a) + (1 | b)", "crossed"),
    ("(x1 | a) + (1 | b)", "crossed"),
    ("(1 | a/b)", "nested"),
    ("(x1 | a) + (1 | a:b)", "nested"),
    ("(x1 || a)", "single"),
    ("(x1 + x2 | a)", "single"),
    ("(0 + x1 | a) + (1 | b)", "crossed"),
    ("(x2 | a) + (x1 | b)", "crossed"),
    ("(1 | a/b) + (0 + x1 | a)", "nested"),
    ("(x1 | b)", "single"),
]
DATASETS = [(seed, *STRUCTURES[seed % len(STRUCTURES)]) for seed in range(20)]


def _dataset(seed, kind):
    """Small grouped data with a random-effect structure to find."""
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(36, 61))
    m_a = int(rng.integers(4, 7))
    m_b = int(rng.integers(3, 6))
    a = rng.integers(0, m_a, n)
    b = rng.integers(0, m_b, n)
    a[:m_a] = np.arange(m_a)  # every level used
    b[:m_b] = np.arange(m_b)
    x1, x2 = rng.normal(size=n), rng.uniform(-1, 1, n)
    effect_a = rng.normal(size=(m_a, 2)) * [1.0, 0.6]
    effect_b = rng.normal(size=(m_b, 2)) * [0.8, 0.4]
    y = (
        1.0
        + 0.5 * x1
        - 0.3 * x2
        + effect_a[a, 0]
        + effect_a[a, 1] * x1
        + effect_b[b, 0]
        + effect_b[b, 1] * x1
        + rng.normal(size=n)
    )
    labels_b = b  # "nested" specs nest b in a through a:b
    frame = pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "a": [f"A{v}" for v in a],
            "b": [f"B{v}" for v in labels_b],
        }
    )
    return frame, y


def _columns_for(frame, spec):
    """x1, x2 and the grouping columns the spec names (a string column that
    no term names would be an error: it is not a numeric feature)."""
    factors = " ".join(part.split("|")[-1] for part in spec.split(")"))
    used = [g for g in ("a", "b") if g in factors.replace("/", " ").replace(":", " ")]
    return frame[["x1", "x2", *used]]


def _factor_labels(frame, factor):
    """Row labels of lme4's factor name ("a", "b:a" is the a-b interaction)."""
    parts = factor.split(":")
    labels = frame[parts[0]].astype(str)
    for part in parts[1:]:
        labels = labels + ":" + frame[part].astype(str)
    return labels.to_numpy()


def _dense_zlambda(frame, fitted_terms, theta):
    """Z Λθ as a dense n x q matrix, built from the raw columns."""
    n = len(frame)
    blocks, start = [], 0
    for factor, _, names, _ in fitted_terms:
        k = len(names)
        size = k * (k + 1) // 2
        lam = np.zeros((k, k))
        rows, cols = np.triu_indices(k)
        lam[cols, rows] = theta[start : start + size]  # column-major lower
        start += size
        columns = np.column_stack(
            [
                np.ones(n) if nm == "(Intercept)" else frame[nm].to_numpy()
                for nm in names
            ]
        )
        labels = _factor_labels(frame, factor)
        for level in np.unique(labels):
            Z = np.where((labels == level)[:, None], columns, 0.0)
            blocks.append(Z @ lam)
    assert start == len(theta)
    return np.hstack(blocks)


def _dense_criterion(frame, y, X, fitted_terms, theta, reml):
    """-2 log-likelihood (REML: restricted), σ and β profiled, computed densely."""
    n, p = X.shape
    ZL = _dense_zlambda(frame, fitted_terms, theta)
    V = np.eye(n) + ZL @ ZL.T
    Vinv = np.linalg.inv(V)
    XtVX = X.T @ Vinv @ X
    beta = np.linalg.solve(XtVX, X.T @ Vinv @ y)
    r = y - X @ beta
    sigma2 = (r @ Vinv @ r) / (n - p if reml else n)
    value = -2.0 * multivariate_normal(X @ beta, sigma2 * V).logpdf(y)
    if reml:
        value += -p * np.log(2 * np.pi) + np.linalg.slogdet(XtVX / sigma2)[1]
    return value


def _fixed_design(frame, model):
    names = list(model.fixed_effects_.index)
    return np.column_stack(
        [np.ones(len(frame)) if nm == "(Intercept)" else frame[nm] for nm in names]
    )


def _random_theta(rng, model):
    lower = model._criterion.theta_lower
    theta = rng.normal(0.0, 0.6, len(lower))
    return np.where(np.isfinite(lower), rng.uniform(0.05, 2.0, len(lower)), theta)


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("seed, spec, kind", DATASETS)
def test_criterion_equals_dense_likelihood(seed, spec, kind, reml):
    frame, y = _dataset(seed, kind)
    frame = _columns_for(frame, spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some draws are singular fits
        model = MixedLMRegressor(spec, reml=reml).fit(frame, y)
    X = _fixed_design(frame, model)
    terms = model._term_designs_fit
    reported = model.reml_criterion_ if reml else model.deviance_
    # at the optimum: the library's criterion, its reported value, the dense one
    at_optimum = model._criterion(model.theta_)
    assert at_optimum == pytest.approx(reported, rel=1e-12)
    dense = _dense_criterion(frame, y, X, terms, model.theta_, reml)
    assert at_optimum == pytest.approx(dense, rel=1e-8)
    # ... and at random θ
    rng = np.random.default_rng(seed)
    for _ in range(3):
        theta = _random_theta(rng, model)
        dense = _dense_criterion(frame, y, X, terms, theta, reml)
        assert model._criterion(theta) == pytest.approx(dense, rel=1e-8)


@pytest.mark.parametrize("seed, spec, kind", DATASETS)
def test_optimum_no_worse_than_a_multistart_search(seed, spec, kind):
    frame, y = _dataset(seed, kind)
    frame = _columns_for(frame, spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MixedLMRegressor(spec).fit(frame, y)
    criterion = model._criterion
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in criterion.theta_lower]
    rng = np.random.default_rng(10_000 + seed)
    best = np.inf
    for _ in range(4):
        result = minimize(
            criterion,
            _random_theta(rng, model),
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": 1e-13, "gtol": 1e-8, "maxfun": 5000},
        )
        best = min(best, result.fun)
    # the reported optimum is the global one found by any start, up to the
    # optimisers' stopping tolerances
    assert model.reml_criterion_ <= best + 1e-6
