"""Helpers to compare lm fits with R's reference files in tests/data."""

import json
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"
RTOL = 1e-8


def load(name):
    """A reference JSON from tests/data (name without .json)."""
    return json.loads((DATA / f"{name}.json").read_text())


def extra(case):
    """A case of lm_extra.json (made by tests/data/make_lm_extra.R)."""
    return load("lm_extra")["cases"][case]


def extra_x():
    """The extra covariate ``x`` of lm_extra.json (R's rnorm, seed 1)."""
    return np.array(load("lm_extra")["x"])


def close(actual, expected, rtol=RTOL, atol=0.0):
    """Relative comparison; NaN where R has NA (None)."""
    expected = np.array(
        [np.nan if v is None else v for v in np.ravel(expected)], dtype=float
    ).reshape(np.shape(expected))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)


def check_case_file(model, ref):
    """Every number of a tests/data/ss_lm_*.json case against a fitted model."""
    table = model.summary().coefficients
    coefs = ref["coefficients"]
    assert list(model.params_.index) == ref["coef_names"]
    for column in ("estimate", "std_error", "t_value", "p_value"):
        close(table[column].to_numpy(), [c[column] for c in coefs])
    close(model.sigma_, ref["sigma"])
    assert model.df_resid_ == ref["df_residual"]
    assert model.rank_ == ref["rank"]
    close(model.rsquared_, ref["r_squared"])
    close(model.rsquared_adj_, ref["adj_r_squared"])
    close(model.fvalue_, ref["fstatistic"]["value"])
    assert model.df_model_ == ref["fstatistic"]["numdf"]
    close(model.f_pvalue_, ref["fstatistic"]["p_value"])
    close(model.loglik_, ref["logLik"]["value"])
    close(model.aic_, ref["AIC"])
    close(model.bic_, ref["BIC"])
    close(model.fittedvalues_, ref["fitted"])
    # Residuals can be near 0: compare on the scale of the response.
    scale = np.max(np.abs(ref["fitted"]))
    close(model.residuals_, ref["residuals"], rtol=0, atol=RTOL * scale)
    # Covariances that are 0 in exact arithmetic come out as +-1e-15.
    vcov = np.array(ref["vcov"]["matrix"])
    close(model.vcov_.to_numpy(), vcov, atol=1e-12 * np.max(np.abs(vcov)))
    assert list(model.vcov_.index) == ref["vcov"]["names"]
    ci = model.conf_int()
    close(ci["lower"].to_numpy(), [c["lower"] for c in ref["confint"]])
    close(ci["upper"].to_numpy(), [c["upper"] for c in ref["confint"]])
    q = ref["residual_quantiles"]
    expected_q = [q["min"], q["q1"], q["median"], q["q3"], q["max"]]
    quantiles = np.quantile(model.residuals_, [0, 0.25, 0.5, 0.75, 1])
    close(quantiles, expected_q, rtol=0, atol=RTOL * scale)


def check_extra_case(model, ref, rtol=RTOL):
    """The numbers of an lm_extra.json case against a fitted model."""
    table = model.summary().coefficients
    names = ref["coef_names"]  # jsonlite unboxes a single name
    assert list(model.params_.index) == ([names] if isinstance(names, str) else names)
    for column in ("estimate", "std_error", "t_value", "p_value"):
        close(table[column].to_numpy(), np.ravel(ref[column]), rtol)
    close(model.sigma_, ref["sigma"], rtol)
    assert model.df_resid_ == ref["df_residual"]
    close(model.rsquared_, ref["r_squared"], rtol)
    close(model.rsquared_adj_, ref["adj_r_squared"], rtol)
    if ref.get("fstatistic") is not None:
        close(model.fvalue_, ref["fstatistic"][0], rtol)
    close(model.loglik_, ref["logLik"], rtol)
    close(model.aic_, ref["AIC"], rtol)
    close(model.bic_, ref["BIC"], rtol)
    # R's fitted values are y - residuals: ~1e-13 where ours are exactly 0.
    scale = np.max(np.abs(ref["fitted"]))
    close(model.fittedvalues_, ref["fitted"], rtol, atol=rtol * scale)
