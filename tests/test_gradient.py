"""The analytic θ-gradient of the profiled criterion (issue 13, item 2).

Checked against central finite differences of the criterion itself, on
every lmer reference case (single, nested, crossed, correlated and
uncorrelated slopes, a vector later term), weighted fits, the robustness
cases, and synthetic designs that force every strategy and later-block
structure (k up to 3), at the optimum, at random θ and at θ on or near 0.

Tolerance: ``|analytic - FD| <= 1e-6 max(1, |FD|)`` per component, with
the five-point central difference of step ``2e-4`` (truncation ~1e-15
times the fifth derivative; the criterion's own rounding, up to ~1e-11 |f|
on the crossed cases, adds ~1e-8 at |f| ~ 1e3, where a two-point
difference of step 1e-5 is noisier than the tolerance).
"""

import itertools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _lmer_fits import fits, lmer_cases

from skmixed import MixedLMRegressor
from skmixed.mixed.criterion import ProfiledCriterion
from skmixed.mixed.design import TermDesign, build_design

DATA = Path(__file__).parent / "data"
STEP = 2e-4
TOL = 1e-6


def _central_difference(crit, theta):
    grad = np.empty(len(theta))
    for i in range(len(theta)):
        e = np.zeros(len(theta))
        e[i] = STEP
        grad[i] = (
            8.0 * (crit(theta + e) - crit(theta - e))
            - (crit(theta + 2 * e) - crit(theta - 2 * e))
        ) / (12.0 * STEP)
    return grad


def _thetas(crit, optimum, rng):
    """The optimum, a random θ, θ with its diagonal near and at 0."""
    diag = crit._diagonal
    signs = rng.choice([-1.0, 1.0], crit.n_theta)
    random = rng.uniform(0.2, 1.5, crit.n_theta) * np.where(diag, 1.0, signs)
    near_zero = np.where(diag, 1e-8, 0.3)
    some_zero = np.where(np.arange(crit.n_theta) % 2 == 0, 0.0, 0.6)
    return [optimum, random, near_zero, some_zero]


def _check(crit, theta):
    value, grad = crit.value_and_gradient(theta)
    # another path to the same factor (RestBlock): equal to rounding
    assert value == pytest.approx(crit(theta), rel=1e-10)
    expected = _central_difference(crit, theta)
    scale = np.maximum(1.0, np.abs(expected))
    np.testing.assert_array_less(np.abs(grad - expected) / scale, TOL)


@pytest.mark.parametrize("name", lmer_cases())
def test_gradient_equals_finite_differences_on_lme4_references(name):
    _, model, _ = fits(name)
    crit = model._criterion
    rng = np.random.default_rng(len(name))
    for theta in _thetas(crit, model.theta_, rng):
        _check(crit, theta)


@pytest.mark.parametrize("reml", [True, False])
def test_gradient_of_a_weighted_fit(reml):
    path = DATA / "weighted" / "sleepstudy_weights.csv"
    df = pd.read_csv(path, dtype={"Subject": str})
    model = MixedLMRegressor("(Days | Subject)", reml=reml).fit(
        df[["Days", "Subject"]], df["Reaction"], sample_weight=df["w"]
    )
    crit = model._criterion
    assert crit.design.sum_log_weights != 0.0
    for theta in _thetas(crit, model.theta_, np.random.default_rng(3)):
        _check(crit, theta)


@pytest.mark.parametrize("name", ["corr_slopes", "zero_slope_var", "one_big_group"])
def test_gradient_on_robustness_cases(name):
    frame = pd.read_csv(DATA / "robustness" / f"{name}.csv", dtype={"g": str})
    spec = "(1 | g)" if name == "one_big_group" else "(x | g)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MixedLMRegressor(spec).fit(frame[["x", "g"]], frame["y"])
    crit = model._criterion
    for theta in _thetas(crit, model.theta_, np.random.default_rng(5)):
        _check(crit, theta)


def _synthetic(kind, k1, k2, rng, n=240):
    """A design with 1-3 factors (nested or crossed), first term k1, later k2."""
    g1 = rng.integers(0, 24, n)
    codes = {
        "nested": [g1, g1 // 3],
        "crossed": [g1, rng.integers(0, 7, n)],
        "crossed3": [g1, rng.integers(0, 7, n), rng.integers(0, 4, n)],
    }[kind]
    x = rng.normal(size=(n, 2))
    X = np.column_stack([np.ones(n), x[:, 0]])
    terms = []
    for i, c in enumerate(codes):
        k = k1 if i == 0 else k2
        Z = None if k == 1 else np.column_stack([np.ones(n), x[:, : k - 1]])
        names = ["(Intercept)"] + [f"x{j}" for j in range(k - 1)]
        m = int(c.max()) + 1
        terms.append(TermDesign(c, np.arange(m).astype(str), Z, names, factor=f"g{i}"))
    y = X @ [1.0, 0.5] + rng.normal(size=n)
    y += sum(rng.normal(size=int(c.max()) + 1)[c] for c in codes)
    return build_design(X, y, terms, rng.uniform(0.5, 2.0, n))


CASES = [
    ("nested", 1, 1, "sparse", "diagonal"),
    ("nested", 2, 2, "sparse", "diagonal"),
    ("nested", 1, 2, "sparse", "sparse"),
    ("crossed", 3, 1, "outer", None),
    ("crossed", 2, 2, "sparse", "sparse"),
    ("crossed", 1, 2, "sparse", "dense"),
    ("crossed3", 1, 1, "sparse", "sparse"),
    ("crossed3", 2, 1, "dense", None),
]


@pytest.mark.parametrize(("kind", "k1", "k2", "strategy", "structure"), CASES)
def test_gradient_for_every_strategy_and_structure(kind, k1, k2, strategy, structure):
    rng = np.random.default_rng(k1 + 3 * k2)
    design = _synthetic(kind, k1, k2, rng)
    for reml in (True, False):
        crit = ProfiledCriterion(
            design, reml=reml, strategy=strategy, rest_structure=structure
        )
        assert crit.strategy == strategy
        if structure is not None:
            assert crit.rest_structure == structure
        for theta in _thetas(crit, crit.theta_start, rng):
            _check(crit, theta)


def test_gradient_of_a_single_k3_term():
    rng = np.random.default_rng(11)
    n = 200
    g = rng.integers(0, 20, n)
    x = rng.normal(size=(n, 2))
    Z = np.column_stack([np.ones(n), x])
    term = TermDesign(g, np.arange(20).astype(str), Z, ["(Intercept)", "a", "b"])
    y = Z @ [1.0, 2.0, -1.0] + (Z * rng.normal(size=(20, 3))[g]).sum(1)
    y += rng.normal(size=n)
    for strategy, reml in itertools.product(["outer", "dense"], [True, False]):
        crit = ProfiledCriterion(build_design(Z, y, [term]), reml, strategy)
        for theta in _thetas(crit, crit.theta_start, rng):
            _check(crit, theta)
