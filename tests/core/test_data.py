"""Datasets, splits and scalers: the lesson's rules and clear errors for bad data."""

import copy
import functools
import math
import pickle
import threading

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings
from sklearn.datasets import make_circles, make_regression
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from stablelearn import data
from stablelearn.data import Dataset, Scaler, as_scaler, prepare, split_rows
from stablelearn.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def regression() -> Dataset:
    return data.lesson_regression()


@pytest.fixture(scope="module")
def circles() -> Dataset:
    return data.lesson_circles()


def _synthetic(n=20, features=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)), rng.normal(size=n)


def _f32(a):
    return np.asarray(a, np.float32)


# --------------------------------------------------------------------------- datasets


def test_lesson_datasets_are_sklearn_generators():
    x, y = make_regression(n_samples=1000, n_features=20, noise=0.1, random_state=1)
    ds = data.lesson_regression()
    np.testing.assert_array_equal(ds.x, x)
    np.testing.assert_array_equal(ds.y, y)
    assert ds.task == "regression"
    assert ds.n_features == 20
    assert ds.feature_names == tuple(f"x{i}" for i in range(20))
    assert ds.y.std() > 100  # the lesson's target spread (DESIGN.md)

    x, y = make_circles(n_samples=1000, noise=0.1, random_state=1)
    ds = data.lesson_circles()
    np.testing.assert_array_equal(ds.x, x)
    np.testing.assert_array_equal(ds.y, y)
    assert ds.task == "binary"
    assert set(np.unique(ds.y)) == {0.0, 1.0}


def test_builtin_dataset_by_name():
    assert data.builtin_dataset("lesson-circles").name == "lesson-circles"
    with pytest.raises(ConfigError, match=r"Unknown dataset 'mnist'.*lesson-regression"):
        data.builtin_dataset("mnist")


@pytest.mark.parametrize("name", sorted(data.BUILTIN_DATASETS))
def test_builtin_dataset_knows_its_shape_before_drawing_and_draws_the_same_rows(name):
    lazy, drawn = data.builtin_dataset(name), data.BUILTIN_DATASETS[name]()
    assert isinstance(lazy, Dataset)
    assert "x" not in vars(lazy)  # nothing drawn yet
    shape = (lazy.n_rows, lazy.n_features, lazy.n_classes, lazy.task, lazy.name)
    assert shape == (drawn.n_rows, drawn.n_features, drawn.n_classes, drawn.task, drawn.name)
    assert (lazy.feature_names, lazy.target_name) == (drawn.feature_names, drawn.target_name)
    assert split_rows(lazy, 500)[1].tolist() == split_rows(drawn, 500)[1].tolist()
    assert "x" not in vars(lazy)
    np.testing.assert_array_equal(lazy.x, drawn.x)
    np.testing.assert_array_equal(lazy.y, drawn.y)
    assert lazy.x is lazy.x  # drawn once


def test_builtin_dataset_copies_and_pickles_as_the_same_dataset():
    lazy = data.builtin_dataset("lesson-circles")
    for other in (pickle.loads(pickle.dumps(lazy)), copy.deepcopy(lazy)):
        assert other is not lazy and other.name == "lesson-circles"
        np.testing.assert_array_equal(other.x, lazy.x)


def test_builtin_dataset_read_by_threads_at_once_is_drawn_once():
    lazy = data.builtin_dataset("lesson-regression")
    seen, start = [], threading.Barrier(4)

    def read():
        start.wait()
        seen.append((id(lazy.x), id(lazy.y)))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1


def test_missing_attributes_of_a_builtin_dataset_are_attribute_errors():
    with pytest.raises(AttributeError):
        data.builtin_dataset("lesson-circles").weights  # noqa: B018


def test_column_target_is_flattened():
    x, y = _synthetic()
    ds = Dataset(x, y.reshape(-1, 1))
    assert ds.y.shape == (20,)
    np.testing.assert_array_equal(ds.y, y)


# --------------------------------------------------------------------------- splits


def test_n_train_takes_the_first_rows(regression):
    prepared = prepare(regression, n_train=500)
    np.testing.assert_array_equal(prepared.train_x, _f32(regression.x[:500]))
    np.testing.assert_array_equal(prepared.test_x, _f32(regression.x[500:]))
    np.testing.assert_array_equal(prepared.train_y, _f32(regression.y[:500]))
    np.testing.assert_array_equal(prepared.test_y, _f32(regression.y[500:]))
    for a in (prepared.train_x, prepared.train_y, prepared.test_x, prepared.test_y):
        assert a.dtype == np.float32
        assert a.flags["C_CONTIGUOUS"]
    assert prepared.n_features == 20
    # no target scaler: target_to_original is the identity
    np.testing.assert_array_equal(prepared.target_to_original(prepared.test_y), prepared.test_y)


def test_test_fraction_split_is_a_seeded_partition(regression):
    train, test = split_rows(regression, test_fraction=0.2, seed=3)
    assert (len(train), len(test)) == (800, 200)
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(1000))
    # shuffled, not the first rows; reproducible by seed
    assert not np.array_equal(train, np.arange(800))
    again, _ = split_rows(regression, test_fraction=0.2, seed=3)
    other, _ = split_rows(regression, test_fraction=0.2, seed=4)
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(train, other)

    prepared = prepare(regression, test_fraction=0.2, split_seed=3)
    np.testing.assert_array_equal(prepared.train_x, _f32(regression.x[train]))
    np.testing.assert_array_equal(prepared.test_y, _f32(regression.y[test]))


def test_default_split_is_half(regression):
    train, test = split_rows(regression)
    assert (len(train), len(test)) == (500, 500)


# --------------------------------------------------------------------------- scalers


def test_input_scaler_fitted_on_training_rows_only(regression):
    prepared = prepare(regression, input_scaler="standard", n_train=500)
    reference = StandardScaler().fit(regression.x[:500])
    np.testing.assert_allclose(
        prepared.train_x, reference.transform(regression.x[:500]), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        prepared.test_x, reference.transform(regression.x[500:]), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(prepared.train_x.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(prepared.train_x.std(axis=0), 1.0, rtol=1e-5)
    # the test split is not re-centred on its own statistics
    assert np.abs(prepared.test_x.mean(axis=0)).max() > 0.01


def test_target_scaler_fitted_on_training_rows_only(regression):
    prepared = prepare(regression, target_scaler="standard", n_train=500)
    reference = StandardScaler().fit(regression.y[:500].reshape(-1, 1))
    np.testing.assert_allclose(
        prepared.train_y, reference.transform(regression.y[:500, None])[:, 0], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        prepared.test_y, reference.transform(regression.y[500:, None])[:, 0], rtol=1e-5, atol=1e-6
    )
    assert prepared.fitted_target_scaler.mean_[0] == pytest.approx(regression.y[:500].mean())


@pytest.mark.parametrize("input_scaler", ["minmax", "robust"])
def test_other_input_scalers_match_sklearn(regression, input_scaler):
    prepared = prepare(regression, input_scaler=input_scaler, n_train=500)
    reference = {"minmax": MinMaxScaler(), "robust": RobustScaler()}[input_scaler]
    reference.fit(regression.x[:500])
    np.testing.assert_allclose(
        prepared.test_x, reference.transform(regression.x[500:]), rtol=1e-5, atol=1e-6
    )


def test_unequal_split_sizes_with_target_scaling(regression):
    """The lesson's test_y.reshape(len(train_y), 1) breaks here; this must not."""
    prepared = prepare(regression, input_scaler="standard", target_scaler="minmax", n_train=700)
    assert prepared.train_x.shape == (700, 20)
    assert prepared.test_x.shape == (300, 20)
    assert prepared.train_y.shape == (700,)
    assert prepared.test_y.shape == (300,)
    reference = MinMaxScaler().fit(regression.y[:700, None])
    np.testing.assert_allclose(
        prepared.test_y, reference.transform(regression.y[700:, None])[:, 0], rtol=1e-5, atol=1e-6
    )
    assert prepared.train_y.min() == pytest.approx(0.0, abs=1e-6)
    assert prepared.train_y.max() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(
        prepared.target_to_original(prepared.test_y), regression.y[700:], rtol=1e-5, atol=1e-3
    )


def test_minmax_feature_range_from_string_and_mapping(regression):
    from_string = as_scaler("minmax(-1,1)")
    from_mapping = as_scaler({"kind": "minmax", "feature_range": [-1, 1]})
    assert from_string == from_mapping == Scaler("minmax", (-1.0, 1.0))
    assert as_scaler(" MinMax( -1 , 1 ) ") == from_string
    assert str(from_string) == "minmax(-1,1)"
    assert str(as_scaler("minmax")) == "minmax"

    prepared = prepare(regression, input_scaler="minmax(-1,1)", n_train=500)
    np.testing.assert_allclose(prepared.train_x.min(axis=0), -1.0, atol=1e-6)
    np.testing.assert_allclose(prepared.train_x.max(axis=0), 1.0, atol=1e-6)
    reference = MinMaxScaler(feature_range=(-1, 1)).fit(regression.x[:500])
    np.testing.assert_allclose(
        prepared.test_x, reference.transform(regression.x[500:]), rtol=1e-5, atol=1e-6
    )
    assert prepared.describe() == "lesson-regression (inputs: minmax(-1,1), target: none)"


def test_as_scaler_forms():
    assert as_scaler(None) == Scaler("none")
    scaler = Scaler("robust")
    assert as_scaler(scaler) is scaler
    assert as_scaler("Standard") == Scaler("standard")
    assert as_scaler({"kind": "standard"}) == Scaler("standard")
    assert Scaler("none").build() is None
    assert isinstance(Scaler("standard").build(), StandardScaler)


def test_fit_scalers_on_all_differs_from_train(circles):
    leaky = prepare(circles, input_scaler="standard", n_train=500, fit_scalers_on="all")
    clean = prepare(circles, input_scaler="standard", n_train=500)
    on_all = StandardScaler().fit(circles.x)
    np.testing.assert_allclose(
        leaky.test_x, on_all.transform(circles.x[500:]), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        leaky.train_x, on_all.transform(circles.x[:500]), rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(leaky.train_x, clean.train_x, rtol=0, atol=1e-4)
    # fitted on all rows: the train split alone is no longer exactly centred
    assert np.abs(leaky.train_x.mean(axis=0)).max() > 1e-4
    np.testing.assert_allclose(clean.train_x.mean(axis=0), 0.0, atol=1e-6)
    # the binary target is never scaled
    np.testing.assert_array_equal(leaky.train_y, _f32(circles.y[:500]))


@functools.cache
def _standardized_target() -> data.PreparedData:
    """Module-level cache: hypothesis tests cannot take function-scoped fixtures."""
    return prepare(data.lesson_regression(), target_scaler="standard", n_train=500)


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(
        st.floats(-1e4, 1e4, allow_nan=False, allow_subnormal=False), min_size=1, max_size=8
    )
)
def test_target_to_original_round_trips(values):
    prepared = _standardized_target()
    fitted = prepared.fitted_target_scaler
    original = np.asarray(values)
    scaled = fitted.transform(original.reshape(-1, 1))[:, 0]
    back = prepared.target_to_original(scaled)
    assert back.shape == original.shape
    np.testing.assert_allclose(back, original, rtol=1e-9, atol=1e-9)
    # and on a 2D batch of predictions [models, rows]
    back_2d = prepared.target_to_original(np.stack([scaled, scaled]))
    assert back_2d.shape == (2, len(values))
    np.testing.assert_allclose(back_2d[1], original, rtol=1e-9, atol=1e-9)


def test_target_to_original_recovers_training_target(regression):
    prepared = _standardized_target()
    np.testing.assert_allclose(
        prepared.target_to_original(prepared.train_y), regression.y[:500], rtol=1e-5, atol=1e-3
    )


# --------------------------------------------------------------------------- data errors


def test_nan_in_inputs_names_the_column():
    x, y = _synthetic()
    x[5, 2] = math.nan
    with pytest.raises(DataError, match=r"NaN or Inf in column\(s\) 2;.*impute"):
        Dataset(x, y)


def test_inf_in_target_is_counted():
    x, y = _synthetic()
    y[[1, 4]] = [math.inf, -math.inf]
    with pytest.raises(DataError, match="target contains 2 NaN or Inf"):
        Dataset(x, y)


def test_1d_inputs_suggest_reshape():
    _, y = _synthetic()
    with pytest.raises(DataError, match=r"got 1D array of shape \(20,\).*reshape\(-1, 1\)"):
        Dataset(y.copy(), y)


def test_3d_inputs_rejected():
    with pytest.raises(DataError, match="Expected 2D inputs"):
        Dataset(np.zeros((5, 2, 2)), np.zeros(5))


def test_2d_target_with_several_columns_rejected():
    x, _ = _synthetic()
    with pytest.raises(DataError, match="1D target"):
        Dataset(x, np.zeros((20, 2)))


def test_mismatched_lengths():
    x, y = _synthetic()
    with pytest.raises(DataError, match="Inputs have 20 rows but the target has 19"):
        Dataset(x, y[:-1])


def test_too_few_rows():
    x, y = _synthetic(n=3)
    with pytest.raises(DataError, match=r"at least 4 rows.*got 3"):
        Dataset(x, y)


def test_wrong_number_of_feature_names():
    x, y = _synthetic()
    with pytest.raises(DataError, match="2 feature names for 3 feature columns"):
        Dataset(x, y, feature_names=("a", "b"))


def test_constant_feature_column_is_named():
    x, y = _synthetic()
    x[:, 1] = 4.0
    with pytest.raises(DataError, match="Feature column\\(s\\) x1 are constant"):
        prepare(Dataset(x, y), n_train=10)
    with pytest.raises(DataError, match="Feature column\\(s\\) age are constant"):
        prepare(Dataset(x, y, feature_names=("height", "age", "weight")), n_train=10)


def test_feature_constant_on_training_rows_only():
    x, y = _synthetic()
    x[:10, 0] = 1.0  # varies on the test rows, constant where the scaler is fitted
    with pytest.raises(DataError, match="x0 are constant on the training rows"):
        prepare(Dataset(x, y), n_train=10)
    prepared = prepare(Dataset(x, y), n_train=12)
    assert prepared.train_x.shape == (12, 3)


def test_constant_target():
    x, _ = _synthetic()
    with pytest.raises(DataError, match="target is constant"):
        prepare(Dataset(x, np.full(20, 3.0)), n_train=10)


def test_binary_target_must_be_zero_one():
    x, _ = _synthetic()
    y = np.tile([0.0, 1.0, 2.0, 1.0], 5)
    with pytest.raises(DataError, match="binary task needs a target of 0 and 1"):
        Dataset(x, y, task="binary")
    with pytest.raises(DataError, match="binary"):
        Dataset(x, np.where(y > 0, 1.0, -1.0), task="binary")


@pytest.mark.parametrize(
    ("x", "y"),
    [
        ([["a", "b"]] * 5, [0.0, 1.0, 0.0, 1.0, 0.0]),
        ([[1.0, 2.0]] * 5, ["yes", "no", "yes", "no", "yes"]),
    ],
)
def test_non_numeric_data(x, y):
    with pytest.raises(DataError, match="numeric"):
        Dataset(x, y)


def test_missing_values_become_nan_and_are_reported():
    with pytest.raises(DataError, match=r"NaN or Inf in column\(s\) 1;"):
        Dataset([[1.0, None]] * 5, [0.0, 1.0, 0.0, 1.0, 0.0])


def test_unknown_task():
    x, y = _synthetic()
    with pytest.raises(ConfigError, match="Unknown task 'ranking'"):
        Dataset(x, y, task="ranking")


def test_multiclass_needs_integer_labels():
    x, y = _synthetic()
    with pytest.raises(DataError, match="class labels 0, 1, 2"):
        Dataset(x, y + 0.5, task="multiclass")


# --------------------------------------------------------------------------- config errors


def test_target_scaler_on_binary_data(circles):
    with pytest.raises(ConfigError, match="target scaler only applies to regression"):
        prepare(circles, target_scaler="standard", n_train=500)
    # "none" is fine
    assert prepare(circles, target_scaler="none", n_train=500).fitted_target_scaler is None


@pytest.mark.parametrize("bad", ["zscore", "normalize", {"kind": "quantile"}])
def test_unknown_scaler(bad):
    with pytest.raises(ConfigError, match=r"Unknown scaler.*none, standard, minmax, robust"):
        as_scaler(bad)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("minmax(a,b)", "Could not read scaler"),
        ("minmax(1)", "Could not read scaler"),
        ("minmax(1,-1)", "low < high"),
        ({"kind": "minmax", "range": [0, 1]}, "takes 'kind'"),
        ({"feature_range": [0, 1]}, "takes 'kind'"),
        (3, "must be a name or a table"),
    ],
)
def test_bad_scaler_specs(bad, message):
    with pytest.raises(ConfigError, match=message):
        as_scaler(bad)


@pytest.mark.parametrize("n_train", [0, 1, 999, 1000, 500.0, True, "500"])
def test_bad_n_train(regression, n_train):
    with pytest.raises(ConfigError, match="n_train must be an integer from 2 to 998 for 1000 rows"):
        prepare(regression, n_train=n_train)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 1.5])
def test_bad_test_fraction(regression, fraction):
    with pytest.raises(ConfigError, match="test_fraction must be between 0 and 1"):
        prepare(regression, test_fraction=fraction)


def test_bad_fit_scalers_on(regression):
    with pytest.raises(ConfigError, match="fit_scalers_on must be 'train' or 'all'"):
        prepare(regression, n_train=500, fit_scalers_on="test")


def test_errors_are_value_errors():
    """Callers that catch ValueError keep working."""
    assert issubclass(DataError, ValueError)
    assert issubclass(ConfigError, ValueError)
