"""Where grouping factors come from, how they are coded, and the input checks."""

import warnings

import numpy as np
import pandas as pd
import pytest

from skmixed import GroupsMissingWarning, MixedLMRegressor
from skmixed._base import GroupedRegressor
from skmixed._groups import as_factor, interaction, level_positions
from skmixed.datasets import load_sleepstudy


class GroupMeans(GroupedRegressor):
    """Test double: predicts the mean response of each level of one factor."""

    def __init__(self, group=None, missing="error"):
        self.group = group
        self.missing = missing

    def _group_names(self):
        return [self.group or "groups"]

    def _fit(self, data):
        self.data_ = data
        name = self.group or "groups"
        if data.factors is None:
            self.means_ = None
            self.overall_ = data.y.mean()
            return
        frame = pd.DataFrame({"g": data.factors[name].astype(str), "y": data.y})
        self.means_ = frame.groupby("g")["y"].mean()
        self.overall_ = data.y.mean()

    def _predict(self, data):
        name = self.group or "groups"
        if data.factors is None or self.means_ is None:
            return np.full(data.X.shape[0], self.overall_)
        labels = data.factors[name].astype(str)
        return self.means_.reindex(labels).fillna(self.overall_).to_numpy()


@pytest.fixture
def sleep():
    return load_sleepstudy()


def test_group_from_x_column_is_not_a_feature(sleep):
    m = GroupMeans(group="Subject").fit(sleep[["Days", "Subject"]], sleep.Reaction)
    assert m.data_.feature_names == ["Days"]
    assert m.data_.X.shape == (180, 1)
    assert list(m.feature_names_in_) == ["Days", "Subject"]
    assert m.group_columns_in_ == ["Subject"]


def test_group_from_series_serves_single_factor(sleep):
    m = GroupMeans(group="Subject").fit(
        sleep[["Days"]], sleep.Reaction, groups=np.asarray(sleep.Subject)
    )
    assert len(m.data_.factors["Subject"].categories) == 18


def test_group_from_dataframe_column_by_name(sleep):
    groups = sleep[["Subject"]].assign(Other=1)
    m = GroupMeans(group="Subject").fit(sleep[["Days"]], sleep.Reaction, groups=groups)
    assert m.data_.factors["Subject"].categories[0] == "308"


def test_group_in_x_and_groups_that_disagree_is_an_error(sleep):
    other = sleep.Subject.sample(frac=1.0, random_state=0).to_numpy()
    with pytest.raises(ValueError, match="both a column of X and given in groups"):
        GroupMeans(group="Subject").fit(
            sleep[["Days", "Subject"]], sleep.Reaction, groups=other
        )


def test_group_in_x_and_groups_that_agree_is_fine(sleep):
    m = GroupMeans(group="Subject").fit(
        sleep[["Days", "Subject"]], sleep.Reaction, groups=sleep.Subject
    )
    assert m.data_.factors["Subject"].shape == (180,)


def test_missing_groups_warn_and_fall_back(sleep):
    # A named factor missing from a pandas X is an error (issue 10); a numpy
    # X cannot hold it, so the model falls back and says what it fits.
    with pytest.raises(ValueError, match="'Subject' of GroupMeans not found"):
        GroupMeans(group="Subject").fit(sleep[["Days"]], sleep.Reaction)
    with pytest.warns(GroupsMissingWarning, match="without group effects"):
        m = GroupMeans(group="Subject").fit(sleep[["Days"]].to_numpy(), sleep.Reaction)
    assert m.data_.factors is None
    fitted = GroupMeans(group="Subject").fit(
        sleep[["Days"]], sleep.Reaction, groups=sleep.Subject
    )
    with pytest.warns(GroupsMissingWarning, match="population level"):
        fitted.predict(sleep[["Days"]])


def test_renamed_group_column_names_the_fix(sleep):
    X = sleep[["Days", "Subject"]].rename(columns={"Subject": "remainder__Subject"})
    with pytest.raises(ValueError, match="verbose_feature_names_out=False"):
        GroupMeans(group="Subject").fit(X, sleep.Reaction)


def test_unresolvable_name_with_groups_frame_lists_columns(sleep):
    with pytest.raises(ValueError, match=r"not found.*columns: \['Other'\]"):
        GroupMeans(group="Subject").fit(
            sleep[["Days"]], sleep.Reaction, groups=pd.DataFrame({"Other": sleep.Days})
        )


def test_named_groups_serve_only_their_factor(sleep):
    # It used to serve 'School' and fail on the string column 'Subject'.
    X = sleep[["Days", "Subject"]]
    with pytest.raises(ValueError, match="Series named 'Subject'.*'School'"):
        GroupMeans(group="School").fit(X, sleep.Reaction, groups=sleep.Subject)


def test_nan_in_x_names_column_and_count(sleep):
    X = sleep[["Days"]].copy()
    X.iloc[[1, 5, 9], 0] = np.nan
    with pytest.raises(ValueError, match=r"column 'Days': NaN in 3 row\(s\)"):
        GroupMeans().fit(X, sleep.Reaction, groups=sleep.Subject)


def test_inf_in_y_is_reported(sleep):
    y = sleep.Reaction.to_numpy().copy()
    y[0] = np.inf
    with pytest.raises(ValueError, match=r"y contains NaN or inf.*inf in 1 row"):
        GroupMeans().fit(sleep[["Days"]], y, groups=sleep.Subject)


def test_missing_drop_drops_rows_and_reports(sleep):
    X = sleep[["Days"]].copy()
    X.iloc[[0, 1], 0] = np.nan
    with pytest.warns(UserWarning, match=r"dropped 2 row\(s\)"):
        m = GroupMeans(missing="drop").fit(X, sleep.Reaction, groups=sleep.Subject)
    assert m.data_.X.shape == (178, 1)
    assert m.n_dropped_ == 2


def test_nan_in_groups_names_factor(sleep):
    g = sleep.Subject.astype(object).copy()
    g.iloc[4] = None
    with pytest.raises(ValueError, match=r"'Subject' contains missing values .* 1 row"):
        GroupMeans(group="Subject").fit(sleep[["Days"]], sleep.Reaction, groups=g)


def test_lengths_that_disagree(sleep):
    with pytest.raises(ValueError, match="X has 180 rows but y has 179"):
        GroupMeans().fit(sleep[["Days"]], sleep.Reaction[:-1], groups=sleep.Subject)
    with pytest.raises(ValueError, match="groups has 179 rows but X has 180"):
        GroupMeans().fit(sleep[["Days"]], sleep.Reaction, groups=sleep.Subject[:-1])


def test_columns_in_another_order_at_predict_are_taken_by_name(sleep):
    X = sleep[["Days", "Subject"]].assign(Extra=1.0)
    m = GroupMeans(group="Subject").fit(X, sleep.Reaction)
    shuffled = X[["Subject", "Extra", "Days"]]
    np.testing.assert_array_equal(m.predict(shuffled), m.predict(X))


def test_level_order_numeric_then_bytewise():
    assert list(as_factor(["10", "9", "100"], "g").categories) == ["9", "10", "100"]
    assert list(as_factor(["b", "a", "B"], "g").categories) == ["B", "a", "b"]
    assert list(as_factor(np.array([2.0, 1.0, 2.0]), "g").categories) == ["1", "2"]


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint64])
def test_many_integer_ids_are_levels_in_numeric_order(dtype):
    # beyond 10,000 levels integers are ordered by numpy, not label by label:
    # the same levels (R's decimal labels, by value) as their strings give
    rng = np.random.default_rng(0)
    ids = rng.permutation(np.arange(30_000))[:25_000] * 37
    if dtype != np.uint64:
        ids = ids - 400_000  # negatives: "-5" sorts by value, not as text
    ids = rng.choice(ids, 60_000).astype(dtype)
    factor = as_factor(ids, "g")
    as_text = as_factor(pd.Series(ids.astype(str), dtype=object), "g")
    assert list(factor.categories) == list(as_text.categories)
    np.testing.assert_array_equal(factor.codes, as_text.codes)
    assert factor.categories[0] == str(ids.min())


def test_categorical_keeps_category_order_and_drops_unused():
    values = pd.Categorical(["z", "y", "z"], categories=["z", "y", "unused"])
    factor = as_factor(pd.Series(values), "g")
    assert list(factor.categories) == ["z", "y"]


def test_mixed_int_and_string_labels():
    factor = as_factor(pd.Series([1, "a", 1, "b"], dtype=object), "g")
    assert list(factor.astype(str)) == ["1", "a", "1", "b"]
    assert list(factor.categories) == ["1", "a", "b"]


def test_interaction_labels_join_components():
    a = as_factor(["1", "1", "2"], "School")
    b = as_factor(["308", "309", "308"], "Subject")
    ab = interaction([b, a], "Subject:School")
    assert list(ab.astype(str)) == ["308:1", "309:1", "308:2"]


def test_level_positions_mark_unseen_labels():
    levels = np.array(["308", "309", "310"], dtype=object)
    labels = pd.Index(["310", "999", "308"])  # a factor's (string) categories
    assert level_positions(labels, levels).tolist() == [2, -1, 0]
    # many levels take pandas' hash table, with the same answer
    many = np.array([f"s{i}" for i in range(20_000)], dtype=object)
    found = level_positions(np.array(["s19999", "new", "s0"], dtype=object), many)
    assert found.tolist() == [19_999, -1, 0]


def test_routing_requests_groups_by_default():
    routing = GroupMeans().get_metadata_routing()
    for method in ("fit", "predict", "score"):
        assert getattr(routing, method).requests["groups"] is True


def test_score_passes_groups(sleep):
    m = GroupMeans().fit(sleep[["Days"]], sleep.Reaction, groups=sleep.Subject)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupsMissingWarning)
        r2 = m.score(sleep[["Days"]], sleep.Reaction, groups=sleep.Subject)
    means = sleep.groupby("Subject", observed=True).Reaction.transform("mean")
    expected = (
        1
        - ((sleep.Reaction - means) ** 2).sum()
        / ((sleep.Reaction - sleep.Reaction.mean()) ** 2).sum()
    )
    assert r2 == pytest.approx(expected, rel=1e-12)


def test_score_is_sklearns_r2_score_to_the_last_bit(sleep):
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import r2_score

    X, g = sleep[["Days"]], sleep.Subject
    m = GroupMeans().fit(X, sleep.Reaction, groups=g)
    rng = np.random.default_rng(3)
    for y in (
        sleep.Reaction,
        rng.normal(size=len(sleep)) * 1e6 + 1e8,
        np.full(len(sleep), 7.0),  # constant y: r2_score's 0 (or 1 if exact)
        m.predict(X, groups=g),  # perfect predictions: 1
    ):
        expected = r2_score(np.asarray(y, dtype=float), m.predict(X, groups=g))
        assert m.score(X, y, groups=g) == expected
    weights = rng.uniform(0.5, 2.0, len(sleep))
    assert m.score(X, sleep.Reaction, groups=g, sample_weight=weights) == r2_score(
        sleep.Reaction, m.predict(X, groups=g), sample_weight=weights
    )
    with pytest.warns(UndefinedMetricWarning, match="less than two samples"):
        assert np.isnan(m.score(X.iloc[:1], sleep.Reaction[:1], groups=g[:1]))


def test_score_reports_nan_in_y(sleep):
    m = GroupMeans().fit(sleep[["Days"]], sleep.Reaction, groups=sleep.Subject)
    y = sleep.Reaction.to_numpy().copy()
    y[:2] = np.nan
    with pytest.raises(ValueError, match=r"y contains NaN or inf.*NaN in 2 row"):
        m.score(sleep[["Days"]], y, groups=sleep.Subject)


def test_fit_without_pandas_private_column_reader(monkeypatch, sleep):
    """The input checks read columns by pandas' private _get_column_array
    for speed; a pandas without it gives the same fit through frame[label]."""
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    fast = MixedLMRegressor("(Days | Subject)").fit(X, y)
    monkeypatch.delattr(pd.DataFrame, "_get_column_array")
    assert not hasattr(X, "_get_column_array")
    plain = MixedLMRegressor("(Days | Subject)").fit(X, y)
    assert plain.reml_criterion_ == fast.reml_criterion_
    np.testing.assert_array_equal(plain.predict(X), fast.predict(X))


@pytest.mark.parametrize("kind", ["arrow", "object", "numeric_strings"])
def test_many_string_levels_in_code_point_order(kind):
    # beyond the small-level cache the levels are sorted by Arrow: the same
    # order as Python's (code points, R's C locale), numbers by value
    rng = np.random.default_rng(3)
    if kind == "numeric_strings":
        distinct = [str(v) for v in rng.permutation(30_000) - 100]
        distinct += ["1.0", "01", "1e2"]  # numbers spelled apart, ties kept
        expected = sorted(sorted(distinct), key=float)
    else:
        stems = ["g", "G", "é", "Ω", "a b", "z\u00e9", "\U0001f600", ""]
        distinct = [f"{stems[i % len(stems)]}{i}" for i in range(30_000)]
        expected = sorted(distinct)
    rows = [distinct[i] for i in rng.integers(0, len(distinct), 100_000)]
    rows += distinct  # every label present
    if kind == "arrow":
        values = pd.Series(rows, dtype="string[pyarrow]")
    else:
        values = pd.Series(np.array(rows, dtype=object))
    factor = as_factor(values, "g")
    assert list(factor.categories) == expected
    assert list(factor.astype(str)) == rows
