"""Small one-factor fits: the batched criterion and the Newton path.

``optimizer="auto"`` fits a model with one random-effects term of one or two
columns on few levels by Newton steps on
:class:`skmixed.mixed.small.BatchCriterion` instead of BOBYQA and the
polish. These tests check the batched criterion against the one-θ
criterion, and that the Newton path reaches BOBYQA's optimum (or a lower
criterion) on small data sets: one and two columns, weights, ML, and
singular fits; three columns stay with BOBYQA.
"""

import numpy as np
import pandas as pd
import pytest

from skmixed import MixedLMRegressor
from skmixed.datasets import load_sleepstudy
from skmixed.mixed.criterion import ProfiledCriterion
from skmixed.mixed.design import TermDesign, build_design
from skmixed.mixed.first_term import coefficients
from skmixed.mixed.optimize import minimize_theta
from skmixed.mixed.small import batch_criterion, newton_minimize, two_by_two_table


def _criterion(k, reml, weighted, seed=0, n=120, m=12):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, m, n)
    Z = np.column_stack([np.ones(n)] + [rng.normal(size=n) for _ in range(k - 1)])
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = X @ [1.0, 0.5] + (Z * rng.normal(size=(m, k))[codes]).sum(axis=1)
    y += rng.normal(size=n)
    names = ["(Intercept)"] + [f"z{i}" for i in range(k - 1)]
    term = TermDesign(codes, np.arange(m).astype(str), None if k == 1 else Z, names)
    weights = rng.uniform(0.5, 2.0, n) if weighted else None
    return ProfiledCriterion(build_design(X, y, [term], weights), reml=reml)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize(("reml", "weighted"), [(True, False), (False, True)])
def test_batch_equals_the_criterion_and_its_gradient(k, reml, weighted):
    criterion = _criterion(k, reml, weighted)
    batch = batch_criterion(criterion)
    thetas = np.random.default_rng(1).normal(size=(5, criterion.n_theta))
    values, grads = batch(thetas)
    for theta, value, grad in zip(thetas, values, grads, strict=True):
        expected_value, expected_grad = criterion.value_and_gradient(theta)
        assert value == pytest.approx(expected_value, rel=1e-12)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(batch.values(thetas), values, rtol=1e-13)
    # a θ that cannot be evaluated spoils its own row only
    spoiled = thetas.copy()
    spoiled[2] = np.nan
    with np.errstate(invalid="ignore"):
        values_nan, grads_nan = batch(spoiled)
        only_values = batch.values(spoiled)
    assert np.isnan(values_nan[2]) and np.isnan(grads_nan[2]).all()
    assert np.isnan(only_values[2])
    rows = [0, 1, 3, 4]
    np.testing.assert_allclose(values_nan[rows], values[rows], rtol=1e-13)
    np.testing.assert_allclose(only_values[rows], values[rows], rtol=1e-13)
    np.testing.assert_allclose(grads_nan[rows], grads[rows], rtol=1e-12, atol=1e-14)


def test_the_two_by_two_table_is_its_formulas():
    thetas = np.random.default_rng(2).normal(scale=3.0, size=(20, 3))
    direct = np.concatenate([coefficients(list(t), 2).T for t in thetas])
    np.testing.assert_allclose(two_by_two_table(thetas), direct, rtol=1e-13, atol=1e-12)


def test_no_batch_for_later_factors_or_three_columns():
    rng = np.random.default_rng(3)
    n = 200
    g, h = rng.integers(0, 10, n), rng.integers(0, 5, n)
    terms = [
        TermDesign(g, np.arange(10).astype(str), None, ["(Intercept)"]),
        TermDesign(h, np.arange(5).astype(str), None, ["(Intercept)"]),
    ]
    crossed = ProfiledCriterion(
        build_design(np.ones((n, 1)), rng.normal(size=n), terms)
    )
    assert batch_criterion(crossed) is None
    # degenerate boundaries (a zero diagonal before the last): BOBYQA's
    assert batch_criterion(_criterion(3, True, False)) is None
    assert batch_criterion(_criterion(1, True, False)) is not None


def _frame(seed, singular=False, n_groups=15, n_per=8):
    rng = np.random.default_rng(seed)
    n = n_groups * n_per
    g = np.repeat(np.arange(n_groups), n_per)
    x1, x2 = rng.normal(size=n), rng.uniform(-1, 1, n)
    sd = np.array([0.0, 0.0, 0.0]) if singular else np.array([0.9, 0.5, 0.4])
    b = rng.normal(size=(n_groups, 3)) * sd
    y = 1.0 + 0.5 * x1 + b[g, 0] + b[g, 1] * x1 + b[g, 2] * x2 + rng.normal(size=n)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "g": g.astype(str), "y": y})
    frame["w"] = rng.uniform(0.3, 3.0, n)
    return frame


@pytest.mark.parametrize(
    ("spec", "seed", "reml", "weighted", "singular"),
    [
        ("(1 | g)", 0, True, False, False),
        ("(1 | g)", 5, False, True, True),
        ("(x1 | g)", 2, True, False, False),
        ("(x1 | g)", 3, True, True, False),
        ("(x1 | g)", 1, False, False, True),
    ],
)
def test_newton_reaches_bobyqas_optimum(spec, seed, reml, weighted, singular):
    frame = _frame(seed, singular)
    kwargs = {"sample_weight": frame["w"]} if weighted else {}
    fits = {}
    for optimizer in ("auto", "bobyqa"):
        fits[optimizer] = MixedLMRegressor(spec, reml=reml, optimizer=optimizer).fit(
            frame[["x1", "x2", "g"]], frame["y"], **kwargs
        )
    newton, bobyqa = fits["auto"], fits["bobyqa"]
    assert newton.converged_
    value = {
        name: fit.reml_criterion_ if reml else fit.deviance_
        for name, fit in fits.items()
    }
    # no higher than BOBYQA's (which stops within its step tolerance)
    assert value["auto"] <= value["bobyqa"] + 1e-9
    assert value["auto"] == pytest.approx(value["bobyqa"], abs=1e-6)
    assert newton.is_singular_ == bobyqa.is_singular_
    if singular:
        assert newton.is_singular_
        np.testing.assert_allclose(newton.theta_, bobyqa.theta_, atol=2e-3)
    else:
        np.testing.assert_allclose(newton.theta_, bobyqa.theta_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(newton.coef_, bobyqa.coef_, rtol=1e-5, atol=1e-6)


def _sleepstudy_fit():
    """lme4's ``Reaction ~ Days + (Days | Subject)`` fitted, and its batched
    criterion."""
    data = load_sleepstudy()
    model = MixedLMRegressor("(Days | Subject)").fit(
        data[["Days", "Subject"]], data["Reaction"]
    )
    return model, batch_criterion(model._criterion)


def test_the_newton_path_is_taken_and_counts_its_points():
    model, batch = _sleepstudy_fit()
    criterion = model._criterion
    opt = minimize_theta(
        criterion, criterion.theta_start, criterion.theta_lower, batch=batch
    )
    assert opt.method == "newton" and opt.converged
    assert opt.n_evaluations == model.n_evaluations_
    # lme4's REML optimum of sleepstudy (θ and criterion)
    np.testing.assert_allclose(opt.x, [0.96673, 0.01517, 0.23091], atol=1e-5)
    assert opt.fun == pytest.approx(1743.6282719, abs=1e-6)
    assert np.max(np.abs(opt.gradient)) < 1e-4


def test_newton_leaves_the_saddle_of_a_zero_last_diagonal():
    # With λ's last diagonal element at 0 the gradient in it vanishes by
    # symmetry; sleepstudy's optimum has it at 0.23, so the start is a
    # saddle that Newton must leave along the negative curvature.
    model, batch = _sleepstudy_fit()
    lower = model._criterion.theta_lower
    result = newton_minimize(batch, np.array([1.0, 0.0, 0.0]), lower)
    assert result.status == "converged"
    np.testing.assert_allclose(result.x, model.theta_, rtol=1e-8)


def test_newton_keeps_to_its_budget():
    criterion = _criterion(2, True, False)
    result = newton_minimize(
        batch_criterion(criterion),
        criterion.theta_start,
        criterion.theta_lower,
        max_points=30,
    )
    assert result.status == "max_points" and result.n_points <= 30


def test_a_degenerate_boundary_hands_over_to_bobyqa():
    # A random small data set (seed 62 of a sweep) whose optimum is a
    # near-rank-one covariance: Newton stopped on t0 = 0 (where t1 and t2
    # rotate freely) 0.0019 above BOBYQA's criterion; such a stop now hands
    # over to BOBYQA.
    frame, y = _sweep_frame(62)
    fits = [
        MixedLMRegressor("(x1 | g)", optimizer=optimizer).fit(frame, y)
        for optimizer in ("auto", "bobyqa")
    ]
    assert fits[0].reml_criterion_ <= fits[1].reml_criterion_ + 1e-9
    batch = batch_criterion(fits[1]._criterion)
    assert batch.degenerate(np.array([0.0, -2.5, 0.7]))
    assert not batch.degenerate(fits[1].theta_)


def test_the_level_polynomials_give_the_determinant_and_its_derivatives():
    # |A_j| and |A_j| M_j of a two-column term, and their θ-derivatives, from
    # the polynomial tables, against a00 a11 − a01² and the complex-step
    # derivatives of first_term's direct formulas
    from skmixed.mixed.first_term import coefficient_derivatives
    from skmixed.mixed.small import _level_polynomial_tables, _monomials

    rng = np.random.default_rng(4)
    d00, d11 = rng.uniform(0.5, 20.0, size=(2, 7))
    d01 = rng.uniform(-0.9, 0.9, 7) * np.sqrt(d00 * d11)
    levels = np.column_stack([d00, d01, d11, np.ones(7)])
    basis = np.vstack([levels.T, d00 * d11 - d01 * d01])
    for theta in rng.normal(scale=2.0, size=(5, 3)):
        monomials = _monomials(theta[None])[0]
        table = np.tensordot(monomials, _level_polynomial_tables() @ basis, axes=1)
        entries = levels @ coefficients(list(theta), 2)  # (levels, 6)
        a00, a01, a11 = entries[:, 0], entries[:, 1], entries[:, 2]
        det = a00 * a11 - a01 * a01
        np.testing.assert_allclose(table[0, 0], det, rtol=1e-12)
        np.testing.assert_allclose(table[0, 1:].T, entries[:, 3:], rtol=1e-12)
        derivative = levels @ coefficient_derivatives(theta, 2)  # (3, levels, 6)
        d_det = (
            derivative[..., 0] * a11
            + a00 * derivative[..., 2]
            - 2.0 * a01 * derivative[..., 1]
        )
        np.testing.assert_allclose(table[1:, 0], d_det, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(
            table[1:, 1:].transpose(0, 2, 1),
            derivative[..., 3:],
            rtol=1e-10,
            atol=1e-10,
        )


def _sweep_frame(seed):
    """One random small data set of the sweep the Newton path was tuned on
    (levels 3..40, 2..12 rows each, slope scales, zero variances, y scaled
    1e-4..1e4)."""
    rng = np.random.default_rng(seed)
    m, per = int(rng.integers(3, 40)), int(rng.integers(2, 12))
    n = m * per
    g = rng.integers(0, m, n)
    g[:m] = np.arange(m)
    x1 = rng.normal(size=n) * rng.choice([1, 10, 0.1])
    x2 = rng.uniform(-1, 1, n)
    sd = rng.choice([0.0, 0.3, 1.0, 3.0], size=3)
    b = rng.normal(size=(m, 3)) * sd
    scale = rng.choice([1e-4, 1.0, 1e4])
    y = 1 + 0.5 * x1 + b[g, 0] + b[g, 1] * x1 + b[g, 2] * x2 + rng.normal(size=n)
    return pd.DataFrame({"x1": x1, "x2": x2, "g": g.astype(str)}), y * scale


def test_the_moment_start_is_close_and_newton_from_it_needs_fewer_passes():
    model, batch = _sleepstudy_fit()
    lower = model._criterion.theta_lower
    start = batch.moment_start()
    np.testing.assert_allclose(start, model.theta_, atol=0.1)
    from_moments = newton_minimize(batch, start, lower, scaled_starts=False)
    from_scalings = newton_minimize(batch, model._criterion.theta_start, lower)
    assert from_moments.status == "converged"
    np.testing.assert_allclose(from_moments.x, from_scalings.x, rtol=1e-8)
    assert from_moments.n_passes < from_scalings.n_passes
    assert from_moments.n_points < from_scalings.n_points


@pytest.mark.parametrize("reml", [True, False])
def test_the_moment_start_of_a_balanced_design_is_its_optimum(reml):
    # sleepstudy: every subject has Days 0..9, so the between-subject sums of
    # squares over m - 1 (REML) or m (ML) levels are the optimum, and
    # Newton's one pass confirms it
    data = load_sleepstudy()
    model = MixedLMRegressor("(Days | Subject)", reml=reml).fit(
        data[["Days", "Subject"]], data["Reaction"]
    )
    start = batch_criterion(model._criterion).moment_start()
    np.testing.assert_allclose(start, model.theta_, rtol=1e-9)
    assert model.n_evaluations_ == 4
    bobyqa = MixedLMRegressor("(Days | Subject)", reml=reml, optimizer="bobyqa")
    bobyqa.fit(data[["Days", "Subject"]], data["Reaction"])
    np.testing.assert_allclose(model.theta_, bobyqa.theta_, rtol=1e-6)
    assert model.loglik_ >= bobyqa.loglik_ - 1e-9


def test_a_balanced_optimum_with_a_small_variance_also_takes_one_pass():
    # sleepstudy's design, y simulated (the benchmarks' many-small data set
    # 79): the optimum's relative covariance has an eigenvalue below 0.01,
    # the floor of a moment estimate that is not positive; a positive one is
    # kept, so the start is still the optimum
    data = load_sleepstudy()
    subject = pd.factorize(data["Subject"])[0]
    days = data["Days"].to_numpy(dtype=float)
    rng = np.random.default_rng(79)
    sd = np.array([24.7, 5.9])
    cov = np.outer(sd, sd) * np.array([[1.0, 0.07], [0.07, 1.0]])
    b = rng.multivariate_normal([0.0, 0.0], cov, subject.max() + 1)
    y = 251.4 + 10.47 * days + b[subject, 0] + b[subject, 1] * days
    y = y + rng.normal(scale=25.6, size=len(days))
    X = data[["Days", "Subject"]]
    model = MixedLMRegressor("(Days | Subject)").fit(X, y)
    lam = np.array([[model.theta_[0], 0.0], model.theta_[1:]])
    assert np.linalg.eigvalsh(lam @ lam.T)[0] < 0.01 and not model.is_singular_
    assert model.n_evaluations_ == 4
    bobyqa = MixedLMRegressor("(Days | Subject)", optimizer="bobyqa").fit(X, y)
    np.testing.assert_allclose(model.theta_, bobyqa.theta_, rtol=1e-4)
    assert model.reml_criterion_ <= bobyqa.reml_criterion_ + 1e-9


def test_no_moment_start_without_enough_levels_of_two_distinct_columns():
    # x1 constant within every level but two: D_j is singular there
    frame, y = _sweep_frame(0)
    codes = frame["g"].astype(int).to_numpy()
    frame["x1"] = np.where(codes < 2, frame["x1"], codes * 0.1)
    model = MixedLMRegressor("(x1 | g)", optimizer="bobyqa").fit(frame, y)
    assert batch_criterion(model._criterion).moment_start() is None
    auto = MixedLMRegressor("(x1 | g)").fit(frame, y)
    assert auto.reml_criterion_ <= model.reml_criterion_ + 1e-9


def test_a_singular_fit_from_the_moment_start_also_tries_the_scalings():
    # Seed 552 of the sweep: Newton from the moment start ends on the
    # degenerate boundary t0 = 0 (and BOBYQA from there 1.4 higher); from
    # the best scaling of lme4's start it reaches the lower optimum with t2 = 0
    frame, y = _sweep_frame(552)
    model = MixedLMRegressor("(x1 | g)", reml=False).fit(frame, y)
    batch = batch_criterion(model._criterion)
    lower = model._criterion.theta_lower
    from_scalings = newton_minimize(batch, model._criterion.theta_start, lower)
    assert model.deviance_ <= from_scalings.fun + 1e-9
    assert model.is_singular_ and model.theta_[0] > 0.0


def test_the_cost_estimate_counts_newtons_passes_and_points():
    # sleepstudy's (Days | Subject), balanced: the moment start is the
    # optimum, and Newton's one batched pass (3 θ and the Hessian's shifted
    # points) confirms it, not BOBYQA's ~50 evaluations
    model, _ = _sleepstudy_fit()
    cost = model.fit_cost_
    assert cost.passes == 1 and cost.evaluations == 4
    assert cost.evaluations == model.n_evaluations_
    assert "1 Newton pass over 4 θ points" in str(cost)
    # unbalanced: ~3 passes (4 + 6 + 6 points)
    frame, y = _sweep_frame(0)
    unbalanced = MixedLMRegressor("(x1 | g)").fit(frame, y)
    assert unbalanced.fit_cost_.passes == 3
    assert unbalanced.fit_cost_.evaluations == 16
    bobyqa = MixedLMRegressor("(Days | Subject)", optimizer="bobyqa").fit(
        load_sleepstudy()[["Days", "Subject"]], load_sleepstudy()["Reaction"]
    )
    assert bobyqa.fit_cost_.passes is None
    assert bobyqa.fit_cost_.evaluations == 50
    assert "50 evaluations" in str(bobyqa.fit_cost_)


def test_a_zero_variance_from_the_moment_start_is_kept():
    # (1 | g) without group variance: Newton from the moment start ends on
    # θ = 0, a boundary that is not degenerate, where the scalings of lme4's
    # start found the same optimum in a 3,000-fit sweep: they are not run
    frame = _frame(5, singular=True)
    model = MixedLMRegressor("(1 | g)", reml=False).fit(
        frame[["x1", "x2", "g"]], frame["y"], sample_weight=frame["w"]
    )
    assert model.is_singular_ and model.theta_[0] == 0.0
    batch = batch_criterion(model._criterion)
    lower = model._criterion.theta_lower
    with np.errstate(all="ignore"):
        from_moments = newton_minimize(
            batch, batch.moment_start(), lower, scaled_starts=False
        )
        from_scalings = newton_minimize(batch, model._criterion.theta_start, lower)
    assert from_moments.status == "converged"
    assert model.n_evaluations_ == from_moments.n_points
    assert model.deviance_ <= from_scalings.fun + 1e-9


def test_elements_near_their_bound_are_tried_on_it():
    # lme4's check.boundary: within 1e-5 of the bound, θ goes onto it where
    # the criterion is lower there; farther, or unbounded, it stays
    from skmixed.mixed.optimize import _check_boundary

    def fun(t):
        return float((t[0] + 1.0) ** 2 + (t[1] - 0.5) ** 2 + (t[2] + 1.0) ** 2)

    lower = np.array([0.0, -np.inf, 0.0])
    x = np.array([5e-6, 3e-6, 2e-5])
    moved, value = _check_boundary(fun, x, fun(x), lower)
    np.testing.assert_array_equal(moved, [0.0, 3e-6, 2e-5])
    assert value == fun(moved) < fun(x)
    # higher on the bound: kept
    x = np.array([5e-6, 0.5, 1.0])
    kept, _ = _check_boundary(lambda t: -fun(t), x, -fun(x), lower)
    np.testing.assert_array_equal(kept, x)


def test_public_numpy_fallback_for_the_batched_kernels(monkeypatch):
    """Without numpy's private batched kernels (a numpy that moved them) the
    public API gives the same fit: NaN only in a matrix that is not PD."""
    import skmixed.mixed.small as small

    rng = np.random.default_rng(0)
    stack = rng.normal(size=(5, 4, 3, 3))
    stack = stack @ stack.swapaxes(-1, -2)
    stack[1, 2] = -np.eye(3)
    with np.errstate(invalid="ignore"):
        private = small._cholesky(stack)
    monkeypatch.setattr(small, "_cholesky_lo", None)
    monkeypatch.setattr(small, "_inv", None)
    public = small._cholesky(stack)
    np.testing.assert_array_equal(np.isnan(public), np.isnan(private))
    assert np.isnan(public[1, 2]).all() and not np.isnan(public[0]).any()
    np.testing.assert_allclose(public[0], private[0], rtol=1e-14)
    model, _ = _sleepstudy_fit()
    assert model.n_evaluations_ < 30  # still the batched Newton path
    assert model.reml_criterion_ == pytest.approx(1743.6282719, abs=1e-6)
