"""skmixed.metrics: the held-out log-likelihoods and the grouped scorer.

The marginal log-likelihood is checked against a dense multivariate normal
built from the fitted variance components (small data only), and against the
fit's own ``loglik_`` on the training data of ML fits.
"""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from scipy import stats
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import skmixed.metrics
from skmixed import (
    FixedEffectsRegressor,
    GroupsMissingWarning,
    MixedLMRegressor,
    PooledRegressor,
)
from skmixed.datasets import load_pastes, load_penicillin, load_sleepstudy
from skmixed.metrics import (
    conditional_log_likelihood,
    make_grouped_scorer,
    marginal_log_likelihood,
)


@pytest.fixture(scope="module")
def sleep():
    return load_sleepstudy()


def _covariance(vc, group, names):
    """k x k covariance of one variance-components group (lme4's VarCorr)."""
    rows = vc[vc.group == group]
    sigma = np.zeros((len(names), len(names)))
    for _, row in rows.iterrows():
        i = names.index(row.var1)
        if isinstance(row.var2, str):
            j = names.index(row.var2)
            sigma[i, j] = sigma[j, i] = row.vcov
        else:
            sigma[i, i] = row.vcov
    return sigma


def _dense_marginal(mean, y, terms, sigma2):
    """log N(y; mean, Σ_t (Z_t Σ_t Z_tᵀ) ∘ [same level] + σ² I), densely.

    ``terms`` is a list of (labels, Z, Σ): per row its level label and its
    random-effects columns.
    """
    V = sigma2 * np.eye(len(y))
    for labels, Z, cov in terms:
        labels = np.asarray(labels)
        same = labels[:, None] == labels[None, :]
        V += (Z @ cov @ Z.T) * same
    return stats.multivariate_normal(mean=mean, cov=V).logpdf(y)


# -- the marginal log-likelihood is the right density -----------------------------
@pytest.mark.parametrize(
    "spec", ["(1 | Subject)", "(Days | Subject)", "(Days || Subject)"]
)
def test_marginal_on_training_data_equals_ml_loglik(sleep, spec):
    X, y = sleep[["Days", "Subject"]], sleep.Reaction
    model = MixedLMRegressor(spec, reml=False).fit(X, y)
    assert marginal_log_likelihood(model, X, y) == pytest.approx(
        model.loglik_, abs=1e-8
    )


def test_marginal_on_training_data_nested_and_crossed():
    pastes = load_pastes()
    model = MixedLMRegressor("(1 | batch/cask)", reml=False).fit(
        pastes[["batch", "cask"]], pastes.strength
    )
    value = marginal_log_likelihood(model, pastes[["batch", "cask"]], pastes.strength)
    assert value == pytest.approx(model.loglik_, abs=1e-8)
    pen = load_penicillin()
    model = MixedLMRegressor("(1 | plate) + (1 | sample)", reml=False).fit(
        pen[["plate", "sample"]], pen.diameter
    )
    value = marginal_log_likelihood(model, pen[["plate", "sample"]], pen.diameter)
    assert value == pytest.approx(model.loglik_, abs=1e-8)


def test_marginal_held_out_matches_dense_normal(sleep):
    # REML fit on 12 subjects, scored on 6 unseen ones (the GroupKFold case)
    # plus 2 rows of a known subject.
    subjects = sleep.Subject.cat.categories
    train = sleep[sleep.Subject.isin(subjects[:12])]
    test = pd.concat([sleep[~sleep.Subject.isin(subjects[:12])], train.iloc[[3, 7]]])
    model = MixedLMRegressor("(Days | Subject)").fit(
        train[["Days"]], train.Reaction, groups=train.Subject
    )
    value = marginal_log_likelihood(
        model, test[["Days"]], test.Reaction, groups=test.Subject
    )
    cov = _covariance(model.variance_components_, "Subject", ["(Intercept)", "Days"])
    Z = np.column_stack([np.ones(len(test)), test.Days])
    mean = model.intercept_ + model.coef_[0] * test.Days.to_numpy()
    dense = _dense_marginal(
        mean, test.Reaction.to_numpy(), [(test.Subject, Z, cov)], model.sigma_**2
    )
    assert value == pytest.approx(dense, rel=1e-10)


def test_marginal_held_out_crossed_matches_dense_normal():
    pen = load_penicillin()
    plates = pen.plate.cat.categories
    train, test = pen[pen.plate.isin(plates[:18])], pen[~pen.plate.isin(plates[:18])]
    model = MixedLMRegressor("(1 | plate) + (1 | sample)").fit(
        train[["plate", "sample"]], train.diameter
    )
    value = marginal_log_likelihood(model, test[["plate", "sample"]], test.diameter)
    vc = model.variance_components_
    ones = np.ones((len(test), 1))
    terms = [
        (test[f], ones, _covariance(vc, f, ["(Intercept)"]))
        for f in ("plate", "sample")
    ]
    dense = _dense_marginal(
        np.full(len(test), model.intercept_),
        test.diameter.to_numpy(),
        terms,
        model.sigma_**2,
    )
    assert value == pytest.approx(dense, rel=1e-10)


def test_marginal_depends_on_structure_where_r2_does_not(sleep):
    subjects = sleep.Subject.cat.categories
    train = sleep[sleep.Subject.isin(subjects[:12])]
    test = sleep[~sleep.Subject.isin(subjects[:12])]
    scores = {}
    for spec in ("(1 | Subject)", "(Days | Subject)"):
        m = MixedLMRegressor(spec).fit(train[["Days", "Subject"]], train.Reaction)
        Xt = test[["Days", "Subject"]]
        scores[spec] = (
            marginal_log_likelihood(m, Xt, test.Reaction),
            m.score(Xt, test.Reaction),
        )
    (ll_int, r2_int), (ll_slope, r2_slope) = scores.values()
    assert r2_int == pytest.approx(r2_slope, abs=1e-6)
    assert ll_slope > ll_int + 5


def test_marginal_without_groups_warns_and_scores_rows_as_own_groups(sleep):
    X, y = sleep[["Days"]], sleep.Reaction
    model = MixedLMRegressor("(Days | Subject)").fit(X, y, groups=sleep.Subject)
    with pytest.warns(GroupsMissingWarning, match="enable_metadata_routing"):
        value = marginal_log_likelihood(model, X.iloc[:20], y.iloc[:20])
    cov = _covariance(model.variance_components_, "Subject", ["(Intercept)", "Days"])
    Z = np.column_stack([np.ones(20), X.Days.iloc[:20]])
    dense = _dense_marginal(
        model.predict(X.iloc[:20], include_random=False, groups=sleep.Subject[:20]),
        y.iloc[:20].to_numpy(),
        [(np.arange(20), Z, cov)],
        model.sigma_**2,
    )
    assert value == pytest.approx(dense, rel=1e-10)


def test_marginal_of_model_fitted_without_groups_is_gaussian(sleep):
    X, y = sleep[["Days"]].to_numpy(), sleep.Reaction
    with pytest.warns(GroupsMissingWarning):
        model = MixedLMRegressor("(1 | Subject)", reml=False).fit(X, y)
    with pytest.warns(GroupsMissingWarning):
        value = marginal_log_likelihood(model, X, y)
    assert value == pytest.approx(model.loglik_, abs=1e-8)


# -- least-squares models ----------------------------------------------------------
def test_pooled_marginal_is_ml_gaussian_and_equals_loglik(sleep):
    X, y = sleep[["Days"]], sleep.Reaction
    model = PooledRegressor().fit(X, y)
    assert marginal_log_likelihood(model, X, y) == pytest.approx(
        model.loglik_, abs=1e-8
    )
    assert conditional_log_likelihood(model, X, y) == pytest.approx(
        model.loglik_, abs=1e-8
    )
    # Held out: the residuals of the held-out rows with the training ML σ.
    train, test = sleep.iloc[:120], sleep.iloc[120:]
    model = PooledRegressor().fit(train[["Days"]], train.Reaction)
    sigma_ml = np.sqrt(np.mean(model.residuals_**2))
    expected = stats.norm.logpdf(
        test.Reaction, model.predict(test[["Days"]]), sigma_ml
    ).sum()
    value = marginal_log_likelihood(model, test[["Days"]], test.Reaction)
    assert value == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("method", ["dummy", "within"])
@pytest.mark.parametrize("slopes", [None, ["Days"]])
def test_fixed_effects_marginal_equals_loglik(sleep, method, slopes):
    X, y = sleep[["Days", "Subject"]], sleep.Reaction
    model = FixedEffectsRegressor(
        group="Subject", group_slopes=slopes, method=method
    ).fit(X, y)
    assert marginal_log_likelihood(model, X, y) == pytest.approx(
        model.loglik_, abs=1e-8
    )
    assert conditional_log_likelihood(model, X, y) == pytest.approx(
        model.loglik_, abs=1e-8
    )


# -- the conditional log-likelihood -------------------------------------------------
def test_conditional_uses_conditional_modes_and_sigma(sleep):
    train, test = sleep[sleep.Days < 8], sleep[sleep.Days >= 8]
    model = MixedLMRegressor("(Days | Subject)").fit(
        train[["Days", "Subject"]], train.Reaction
    )
    Xt = test[["Days", "Subject"]]
    expected = stats.norm.logpdf(test.Reaction, model.predict(Xt), model.sigma_).sum()
    assert conditional_log_likelihood(model, Xt, test.Reaction) == pytest.approx(
        expected, rel=1e-12
    )
    # For new days of known subjects the conditional modes help.
    assert conditional_log_likelihood(model, Xt, test.Reaction) > (
        stats.norm.logpdf(
            test.Reaction, model.predict(Xt, include_random=False), model.sigma_
        ).sum()
    )


# -- pipelines ----------------------------------------------------------------------
def test_scorers_reach_the_last_step_of_a_pipeline(sleep):
    X, y = sleep[["Days", "Subject"]], sleep.Reaction
    scale = ColumnTransformer(
        [("scale", StandardScaler(), ["Days"])],
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    pipe = Pipeline(
        [("prep", scale), ("model", MixedLMRegressor("(Days | Subject)"))]
    ).fit(X, y)
    Xt = pipe[:-1].transform(X)
    for scorer in (marginal_log_likelihood, conditional_log_likelihood):
        assert scorer(pipe, X, y) == pytest.approx(scorer(pipe[-1], Xt, y), rel=1e-14)
    # Scaling the slope's covariate does not change the marginal density.
    plain = MixedLMRegressor("(Days | Subject)").fit(X, y)
    assert marginal_log_likelihood(pipe, X, y) == pytest.approx(
        marginal_log_likelihood(plain, X, y), rel=1e-6
    )


def test_unsupported_model_is_a_type_error(sleep):
    model = Ridge().fit(sleep[["Days"]], sleep.Reaction)
    with pytest.raises(TypeError, match="make_grouped_scorer"):
        marginal_log_likelihood(model, sleep[["Days"]], sleep.Reaction)


# -- metadata requests ----------------------------------------------------------------
@pytest.mark.parametrize(
    "scorer",
    [
        marginal_log_likelihood,
        conditional_log_likelihood,
        make_grouped_scorer(r2_score),
    ],
)
def test_scorers_request_groups(scorer):
    # The likelihood scorers also request the precision weights, which are
    # part of the likelihood (as they are of the fit).
    default = {"groups": True}
    if scorer is not None and getattr(scorer, "__name__", "").endswith("likelihood"):
        default = {"groups": True, "sample_weight": True}
    assert scorer.get_metadata_routing().score.requests == default
    with pytest.raises(RuntimeError, match="enable_metadata_routing"):
        scorer.set_score_request(groups=False)
    with sklearn.config_context(enable_metadata_routing=True):
        other = scorer.set_score_request(groups="subject")
        expected = {**default, "groups": "subject"}
        assert other.get_metadata_routing().score.requests == expected
    # The shared scorer itself is unchanged.
    assert scorer.get_metadata_routing().score.requests == default


def test_module_is_importable_as_attribute():
    assert skmixed.metrics.marginal_log_likelihood is marginal_log_likelihood
    assert set(skmixed.metrics.__all__) == {
        "marginal_log_likelihood",
        "conditional_log_likelihood",
        "make_grouped_scorer",
    }


# -- make_grouped_scorer --------------------------------------------------------------
def test_grouped_scorer_passes_groups_to_predict(sleep):
    X, y, g = sleep[["Days"]], sleep.Reaction, sleep.Subject
    model = MixedLMRegressor("(Days | Subject)").fit(X, y, groups=g)
    r2 = make_grouped_scorer(r2_score)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupsMissingWarning)
        value = r2(model, X, y, groups=g)
    assert value == pytest.approx(r2_score(y, model.predict(X, groups=g)), rel=1e-14)
    # Without groups the model predicts at population level, and says so.
    with pytest.warns(GroupsMissingWarning):
        population = r2(model, X, y)
    assert population < value - 0.3


def test_grouped_scorer_sign_kwargs_and_repr(sleep):
    X, y = sleep[["Days", "Subject"]], sleep.Reaction
    model = MixedLMRegressor("(Days | Subject)").fit(X, y)
    mse = make_grouped_scorer(mean_squared_error, greater_is_better=False)
    assert mse(model, X, y) == pytest.approx(
        -mean_squared_error(y, model.predict(X)), rel=1e-14
    )
    weights = np.linspace(1, 2, len(y))
    weighted = make_grouped_scorer(r2_score, sample_weight=weights)
    assert weighted(model, X, y) == pytest.approx(
        r2_score(y, model.predict(X), sample_weight=weights), rel=1e-14
    )
    assert (
        repr(mse) == "make_grouped_scorer(mean_squared_error, greater_is_better=False)"
    )
    with pytest.raises(TypeError, match="callable"):
        make_grouped_scorer("r2")


def test_grouped_scorer_ignores_groups_for_models_without_them(sleep):
    X, y = sleep[["Days"]], sleep.Reaction
    model = Ridge().fit(X, y)
    r2 = make_grouped_scorer(r2_score)
    assert r2(model, X, y, groups=sleep.Subject) == pytest.approx(model.score(X, y))


def test_scorers_pickle(sleep):
    X, y = sleep[["Days", "Subject"]], sleep.Reaction
    model = MixedLMRegressor("(Days | Subject)").fit(X, y)
    for scorer in (
        marginal_log_likelihood,
        conditional_log_likelihood,
        make_grouped_scorer(r2_score),
    ):
        again = pickle.loads(pickle.dumps(scorer))
        assert again(model, X, y) == scorer(model, X, y)


def test_grouped_scorer_receives_requested_sample_weight_under_routing(sleep):
    from sklearn.model_selection import GroupKFold, cross_validate

    X, y, g = sleep[["Days"]], sleep.Reaction, sleep.Subject
    weights = np.linspace(1.0, 3.0, len(y))
    cv = GroupKFold(3)
    with sklearn.config_context(enable_metadata_routing=True):
        r2 = make_grouped_scorer(r2_score).set_score_request(sample_weight=True)
        # The estimators request sample_weight at fit by default (R's
        # weights=); here the weights are meant for the score only.
        model = MixedLMRegressor("(Days | Subject)").set_fit_request(
            sample_weight=False
        )
        result = cross_validate(
            model,
            X,
            y,
            cv=cv,
            scoring=r2,
            params={"groups": g, "sample_weight": weights},
        )
    train, test = next(cv.split(X, y, g))
    model = MixedLMRegressor("(Days | Subject)").fit(
        X.iloc[train], y.iloc[train], groups=g.iloc[train]
    )
    expected = r2_score(
        y.iloc[test],
        model.predict(X.iloc[test], groups=g.iloc[test]),
        sample_weight=weights[test],
    )
    assert result["test_score"][0] == pytest.approx(expected, rel=1e-10)
