"""Reading a fitted model's rows again on Dask: predictions, fitted values,
residuals, score and exact quantiles of residuals, partition by partition.
"""

import copy

import numpy as np
import pandas as pd

from skmixed._dask import _GROUP, _W, _Y, tree_reduce
from skmixed._dask_input import (
    _is_frame,
    _response,
    _with_column,
    dask_input,
    refuse_in_memory_inputs,
)
from skmixed._dask_rows import _complete_rows
from skmixed._inputs import _PREDICT_HINT, _report_nonfinite
from skmixed._moments import merge_means


def _slim(model):
    """A copy of a fitted model without its cross-products (to ship to workers)."""
    slim = copy.copy(model)
    if "_dec" in model.__dict__:
        # the conditional modes, which a linear mixed model forms from its
        # factorisation on first use (MixedLMRegressor._b), go along
        slim._b = model._b
    drop = ("_criterion", "_dec", "_centred", "_dask_input")
    for name in drop + ("fittedvalues_", "residuals_"):
        slim.__dict__.pop(name, None)
    slim.__dict__["_lazy"] = {}
    return slim


# -- rows again: predictions, fitted values, residuals, score ----------------------
def _in_memory_call(part, spec):
    """The pandas (or numpy) X and groups an in-memory call would get."""
    x_columns, from_groups, array_x = spec
    X = part[x_columns]
    if array_x:
        X = X.to_numpy(dtype=np.float64)
    groups = None
    if from_groups:
        groups = pd.DataFrame(
            {name: part[label] for name, label in from_groups.items()}
        )
    return X, groups


def _call_spec(inp):
    from_groups = {n: c for n, c in inp.groups.items() if c == _GROUP.format(n)}
    design = set(inp.features) if inp.intercept is not None else set()
    x_columns = [
        c
        for c in inp.frame.columns
        if c not in (_Y, _W) and c not in from_groups.values() and c not in design
    ]
    return x_columns, from_groups, inp.feature_names is None


class _InPartition:
    """Names the partition in a ValueError its rows raise: a lazy predict or
    score finds a NaN or an unseen level when it is computed, and counts
    only that partition's rows (the in-memory message counts them all)."""

    def __init__(self, number, n_partitions):
        self.where = f"Partition {number} of {n_partitions} of X"

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if type(error) is ValueError:  # (not a subclass: its type is its meaning)
            raise ValueError(f"{self.where}: {error}") from error
        return False


def _predict_partition(part, model, spec, method, options, n, partition_info=None):
    number = "?" if partition_info is None else partition_info["number"]
    with _InPartition(number, n):
        X, groups = _in_memory_call(part, spec)
        if len(part) == 0:
            return pd.Series(np.zeros(0), index=part.index, dtype=np.float64)
        values = getattr(model, method)(X, groups=groups, **options)
    return pd.Series(values, index=part.index, dtype=np.float64)


def predict(model, X, groups=None, **options):
    """Predictions for Dask input: a dask Series, partition by partition."""
    import dask

    inp = dask_input(model, X, None, groups, reset=False, stage="predict")
    spec = _call_spec(inp)
    slim = dask.delayed(_slim(model), traverse=False)
    out = inp.frame.map_partitions(
        _predict_partition,
        slim,
        spec,
        "predict",
        options,
        inp.frame.npartitions,
        meta=(None, "f8"),
    )
    return out if _is_frame(X) else out.to_dask_array()


def _training_rows(model):
    """The fit's frame with missing='drop' applied partition by partition."""
    inp = model._dask_input
    frame = inp.frame
    if getattr(model, "missing", "error") == "drop":
        frame = frame.map_partitions(
            _keep_complete,
            inp.features + inp.slope_columns,
            list(inp.groups.values()),
            meta=frame._meta,
        )
    return inp, frame


def _keep_complete(part, features, group_columns):
    return part[_complete_rows(part, features, group_columns, True)]


def fitted_values(model):
    """Fitted values of a model fitted from Dask input (a lazy dask Series)."""
    import dask

    inp, frame = _training_rows(model)
    spec = _call_spec(inp)
    slim = dask.delayed(_slim(model), traverse=False)
    return frame.map_partitions(
        _predict_partition,
        slim,
        spec,
        "predict",
        {},
        frame.npartitions,
        meta=(None, "f8"),
    )


def residuals(model):
    """Residuals of a model fitted from Dask input (a lazy dask Series)."""
    inp, frame = _training_rows(model)
    return _response(inp, frame) - fitted_values(model)


def pearson_residuals(model):
    """``sqrt(w) (y - fitted)`` (the residuals without weights), lazily."""
    inp, frame = _training_rows(model)
    out = _response(inp, frame) - fitted_values(model)
    if _W in frame.columns:
        out = out * np.sqrt(frame[_W])
    return out


def _score_partition(part, model, spec, has_weight, where):
    with where:
        X, groups = _in_memory_call(part, spec)
        y = part[_Y].to_numpy(dtype=np.float64, na_value=np.nan)
        w = part[_W].to_numpy(np.float64, na_value=np.nan) if has_weight else None
        if len(part) == 0:
            return np.zeros(5)
        # the in-memory score's checks, in its order (a NaN would be summed)
        _report_nonfinite(y, None, "y", _PREDICT_HINT)
        pred = model.predict(X, groups=groups)
        if w is None:
            w = np.ones(len(y))
        else:  # r2_score's check of the weights
            from sklearn.utils import check_array  # (workers load it only here)

            check_array(w, ensure_2d=False, input_name="sample_weight")
    return _shifted_moments(y, w, sse=w @ (y - pred) ** 2)


def _shifted_moments(values, w=None, sse=0.0):
    """(weight, shift, mean less the shift, centred sum of squares, sse) of
    a partition's values (unweighted where ``w`` is None), as
    :func:`_merge_moments` merges them.

    The values less their mean here (the shift), whose mean is then ~0:
    partitions' means of y = 1e8 + ... differ in digits a merge of them
    would lose.
    """
    if w is None:
        shift = values.mean()
        centred = values - shift
        mean = centred.mean()
        return np.array([len(values), shift, mean, ((centred - mean) ** 2).sum(), sse])
    total = w.sum()
    shift = (w @ values) / total if total > 0 else 0.0
    centred = values - shift
    mean = (w @ centred) / total if total > 0 else 0.0
    return np.array([total, shift, mean, w @ (centred - mean) ** 2, sse])


def _merge_moments(a, b):
    """Chan's update of (weight, shift, mean less the shift, centred sum of
    squares, sse), in a's shift: the difference of the shifts is exact."""
    wa, wb = a[0], b[0]
    if wa == 0:
        return b
    if wb == 0:
        return a
    w, mean, delta, gain = merge_means(wa, a[2], wb, b[2] + (b[1] - a[1]))
    sst = a[3] + b[3] + gain * delta * delta
    return np.array([w, a[1], mean, sst, a[4] + b[4]])


def _variance_partition(part, model, spec, where):
    """A partition's moments of the fixed predictions ``Xβ``
    (:func:`_shifted_moments`, unweighted, no sse) and, per random-effects term
    with slopes, the sum over its rows of ``z zᵀ`` (None for an intercept)."""
    from skmixed.mixed.estimator import _term_columns

    terms = model._fitted_terms()
    if len(part) == 0:
        return np.zeros(5), [None] * len(terms)
    with where:
        X, groups = _in_memory_call(part, spec)
        data = model._prediction_data(X, groups)
    # the offset is no part of the fixed variance (performance leaves it out)
    fixed = data.X @ model.coef_ + model.intercept_
    names = model._feature_names(data)
    grams = []
    for term in terms:
        Z = _term_columns(term, data.covariates, names)
        grams.append(None if Z is None else Z.T @ Z)
    return _shifted_moments(fixed), grams


def _merge_variance(a, b):
    grams = [
        x if y is None else (y if x is None else x + y)
        for x, y in zip(a[1], b[1], strict=True)
    ]
    return _merge_moments(a[0], b[0]), grams


def unweighted_variances(model):
    """Over the fit's rows, unweighted: the sample variance of the fixed
    predictions and, per term (in ``theta_``'s order), ``Σ z zᵀ`` (None
    for an intercept-only term), by one pass (then kept by the model).

    Nakagawa's R² and the ICC take these over the rows, as performance
    does; a weighted fit's sums (``XᵀWX``, ``ZᵀWZ``) are not them.
    """
    import dask

    if "unweighted_variances" in model._lazy:
        return model._lazy["unweighted_variances"]
    inp, frame = _training_rows(model)
    spec = _call_spec(inp)
    slim = dask.delayed(_slim(model), traverse=False)
    parts = [
        dask.delayed(_variance_partition)(
            part, slim, spec, _InPartition(i, frame.npartitions)
        )
        for i, part in enumerate(frame.to_delayed())
    ]
    moments, grams = tree_reduce(parts, _merge_variance).compute()
    n, _, _, centred, _ = moments
    variance = float(centred / (n - 1)) if n > 1 else 0.0
    model._lazy["unweighted_variances"] = (variance, grams)
    return variance, grams


def _r2(moments):
    _, _, _, sst, sse = moments
    return float(1.0 - sse / sst) if sst > 0 else (1.0 if sse == 0 else 0.0)


def score(model, X, y, groups=None, sample_weight=None):
    """R² for Dask input, as a dask Delayed (one pass; ``.compute()`` it)."""
    import dask

    refuse_in_memory_inputs(X=X, y=y, groups=groups, sample_weight=sample_weight)
    inp = dask_input(model, X, y, groups, reset=False, stage="predict")
    frame = inp.frame
    if sample_weight is not None:
        frame = _with_column(frame, X, sample_weight, _W, "sample_weight")
    spec = _call_spec(inp)
    slim = dask.delayed(_slim(model), traverse=False)
    parts = [
        dask.delayed(_score_partition)(
            part,
            slim,
            spec,
            sample_weight is not None,
            _InPartition(i, frame.npartitions),
        )
        for i, part in enumerate(frame.to_delayed())
    ]
    return dask.delayed(_r2)(tree_reduce(parts, _merge_moments))


# -- exact quantiles of values that are not in memory ------------------------------
#: Bits of the ordered key resolved per pass, and the number of candidates
#: below which a pass sends the values themselves to the client.
_DIGIT_BITS = 16


_COLLECT = 1 << 18


_TOP = np.uint64(1 << 63)


def _ordered_keys(values):
    """uint64 keys whose order is the order of the (finite) float64 values."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
    return np.where(bits & _TOP, ~bits, bits | _TOP)


def _key_values(keys):
    keys = np.asarray(keys, dtype=np.uint64)
    bits = np.where(keys & _TOP, keys & ~_TOP, ~keys)
    return bits.view(np.float64)


def _with_prefix(keys, prefix, n_bits):
    if n_bits == 0:
        return keys
    return keys[(keys >> np.uint64(64 - n_bits)) == np.uint64(prefix)]


def _query_partition(part, queries):
    """Per query (prefix, bits, collect): a histogram of the next digit of
    the keys with that prefix, or (collect) those keys themselves."""
    keys = _ordered_keys(np.asarray(part, dtype=np.float64))
    out = []
    for prefix, n_bits, collect in queries:
        selected = _with_prefix(keys, prefix, n_bits)
        if collect:
            out.append(selected)
            continue
        shift = np.uint64(64 - n_bits - _DIGIT_BITS)
        digits = (selected >> shift) & np.uint64((1 << _DIGIT_BITS) - 1)
        out.append(np.bincount(digits.astype(np.int64), minlength=1 << _DIGIT_BITS))
    return out


def _merge_queries(*parts):
    return [
        np.concatenate(answers) if answers[0].dtype == np.uint64 else sum(answers)
        for answers in zip(*parts, strict=True)
    ]


def order_statistics(series, ranks, n):
    """The values of given 0-based ranks among the ``n`` values of a dask Series.

    Exact, with memory bounded by a histogram: each pass over the data
    resolves 16 more bits of every wanted value's ordered bit pattern (a
    radix selection), and once at most ``_COLLECT`` values share a wanted
    value's resolved bits they are sent to the client and sorted. Typically
    two or three passes; every pass recomputes the series.
    """
    import dask

    # per wanted rank: [prefix, bits resolved, rank among the keys with that
    # prefix, how many keys have it]
    state = {r: [0, 0, int(r), int(n)] for r in set(ranks)}
    found = {}
    parts = series.to_delayed()
    while state:
        queries = sorted({(s[0], s[1], s[3] <= _COLLECT) for s in state.values()})
        tasks = [dask.delayed(_query_partition)(part, queries) for part in parts]
        answers = tree_reduce(tasks, None, combine_many=_merge_queries).compute()
        answer_of = dict(zip(queries, answers, strict=True))
        for rank, s in list(state.items()):
            prefix, n_bits, within, count = s
            answer = answer_of[(prefix, n_bits, count <= _COLLECT)]
            if count <= _COLLECT:
                found[rank] = _key_values(np.sort(answer)[within : within + 1])[0]
                del state[rank]
                continue
            cumulative = np.cumsum(answer)
            digit = int(np.searchsorted(cumulative, within, side="right"))
            below = int(cumulative[digit - 1]) if digit else 0
            n_bits += _DIGIT_BITS
            s[:] = [(prefix << _DIGIT_BITS) | digit, n_bits, within - below]
            s.append(int(answer[digit]))
            if n_bits == 64:  # every bit known: the value itself
                found[rank] = _key_values([s[0]])[0]
                del state[rank]
    return {r: float(v) for r, v in found.items()}


def quantiles(series, n, probs=(0.0, 0.25, 0.5, 0.75, 1.0)):
    """numpy's (R's type 7) quantiles of a dask Series of ``n`` finite values.

    Exact, not approximate: the order statistics on either side of every
    quantile come from :func:`order_statistics`, and numpy interpolates
    between them with the arithmetic of ``np.quantile`` on all the values
    (``(n - 1) p`` is exact for these ``p``, so the interpolation weight is).
    """
    below = [int(np.floor((n - 1) * p)) for p in probs]
    ranks = below + [min(b + 1, n - 1) for b in below]
    values = order_statistics(series, ranks, n)
    out = []
    for p, b in zip(probs, below, strict=True):
        weight = (n - 1) * p - b
        pair = np.array([values[b], values[min(b + 1, n - 1)]])
        out.append(float(np.quantile(pair, weight)))
    return np.array(out)


def summary_residuals(values, n, df_resid=None):
    """What a summary prints of residuals held by a dask Series.

    Their exact quantiles (:class:`~skmixed.summary.ResidualQuantiles`), or,
    where R prints every residual (``df_resid <= 5``: a handful of rows),
    the residuals themselves.
    """
    from skmixed.summary import ResidualQuantiles

    if df_resid is not None and df_resid <= 5:
        return np.asarray(values.compute(), dtype=float)
    return ResidualQuantiles(quantiles(values, n))


def scaled_residuals(model):
    """Pearson residuals over σ, ``sqrt(w) ((y - fitted) / σ)``, lazily.

    The arithmetic of an in-memory summary, row by row, so that the values
    (and so their quantiles) are the same.
    """
    inp, frame = _training_rows(model)
    scaled = (_response(inp, frame) - fitted_values(model)) / model.sigma_
    if _W in frame.columns:
        scaled = np.sqrt(frame[_W]) * scaled
    return scaled
