"""Experiment files: the shipped catalog validates, and every invalid file gives one
ConfigError that names the file and the field. Nothing here trains a model."""

import copy
import gzip
import tomllib

import pytest

import stablelearn as sl
from stablelearn import experiments
from stablelearn.data import Scaler
from stablelearn.errors import ConfigError
from stablelearn.experiments.overrides import model_table
from stablelearn.lesson import catalog as lesson_catalog
from stablelearn.lesson import claims
from stablelearn.optim import SGD

LESSON_IDS = [
    "regression-data",
    "unscaled-mlp",
    "standardized-target",
    "normalized-target",
    "input-scaling",
    "circles-data",
    "tanh-1",
    "tanh-5",
    "relu-5",
    "relu-15",
    "relu-20",
    "clipping-target",
    "gradient-clipping",
]


@pytest.fixture(scope="module")
def catalog() -> dict[str, experiments.Experiment]:
    return {e.id: e for e in lesson_catalog.catalog()}


def shipped(experiment_id: str) -> dict:
    return tomllib.loads(lesson_catalog.catalog_text(experiment_id))


def edited(experiment_id: str, **changes) -> dict:
    raw = copy.deepcopy(shipped(experiment_id))
    raw.update(changes)
    return raw


# --- the shipped catalog ----------------------------------------------------------------


def test_catalog_holds_the_lessons_experiments_in_lesson_order(catalog):
    assert list(catalog) == LESSON_IDS
    assert len(lesson_catalog.catalog()) == len(set(LESSON_IDS))
    names = [f.name for f in lesson_catalog.catalog_files()]
    assert names == sorted(names) and len(names) == 13
    assert all(name[:2].isdigit() for name in names)


def test_every_claim_refers_to_a_shipped_training_experiment_and_variant(catalog):
    for claim in claims.CLAIMS:
        assert claim.experiment in catalog, claim.id
        assert catalog[claim.experiment].kind == "train", claim.id
    assert len({c.id for c in claims.CLAIMS}) == len(claims.CLAIMS)
    clipping_variants = {v.name for v in catalog["gradient-clipping"].variants}
    assert clipping_variants == {
        "no clipping",
        "clipnorm 1.0 (per tensor)",
        "clipnorm 1.0 (global)",
        "clipvalue 5.0",
    }


def test_catalog_kinds_metrics_and_variant_counts(catalog):
    data_only = {"regression-data", "circles-data", "clipping-target"}
    for e in catalog.values():
        assert e.kind == ("data" if e.id in data_only else "train"), e.id
        if e.kind == "data":
            assert e.variants == ()
    assert len(catalog["input-scaling"].variants) == 3
    assert len(catalog["gradient-clipping"].variants) == 4
    for single in ("unscaled-mlp", "standardized-target", "tanh-5", "relu-5", "relu-20"):
        assert [v.name for v in catalog[single].variants] == [single]
    assert catalog["relu-5"].metric == "accuracy"
    assert catalog["standardized-target"].metric == "loss"


def test_catalog_encodes_the_lessons_settings(catalog):
    relu5 = catalog["relu-5"]
    assert relu5.config.epochs == 500 and relu5.repeats == 10 and relu5.fit_scalers_on == "all"
    (variant,) = relu5.variants
    assert len(variant.model.layers) == 5 + 1
    assert [layer.units for layer in variant.model.layers] == [5] * 5 + [1]
    assert variant.model.layers[-1].activation == "sigmoid"
    assert variant.optimizer == SGD(learning_rate=0.01, momentum=0.9)
    assert variant.input_scaler == Scaler("minmax", (-1.0, 1.0))
    assert relu5.config.loss == "binary_crossentropy"
    scaling = catalog["input-scaling"]
    assert scaling.repeats == 30 and scaling.config.validation is False
    assert [str(v.input_scaler) for v in scaling.variants] == [
        str(Scaler("none")),
        str(Scaler("minmax")),
        str(Scaler("standard")),
    ]
    assert all(v.target_scaler == Scaler("standard") for v in scaling.variants)
    clipping = {v.name: v.optimizer for v in catalog["gradient-clipping"].variants}
    assert clipping["no clipping"].clip_mode is None
    assert clipping["clipnorm 1.0 (per tensor)"].clipnorm == 1.0
    assert clipping["clipnorm 1.0 (global)"].global_clipnorm == 1.0
    assert clipping["clipvalue 5.0"].clipvalue == 5.0
    assert all(o.momentum == 0.9 for o in clipping.values())


@pytest.mark.parametrize("experiment_id", LESSON_IDS)
def test_catalog_text_round_trips_through_load_mapping(catalog, experiment_id):
    text = lesson_catalog.catalog_text(experiment_id)
    assert text.startswith(f'id = "{experiment_id}"')
    loaded = experiments.load_mapping(tomllib.loads(text), "copy.toml")
    assert loaded == catalog[experiment_id]
    assert loaded.raw == tomllib.loads(text)


def test_catalog_text_of_an_unknown_id_is_a_config_error():
    with pytest.raises(ConfigError, match=r"No shipped experiment 'nope'"):
        lesson_catalog.catalog_text("nope")


def test_resolve_by_id_and_by_edited_copy(catalog, tmp_path):
    assert lesson_catalog.resolve("tanh-5") == catalog["tanh-5"]
    text = lesson_catalog.catalog_text("tanh-5").replace("repeats = 10", "repeats = 3")
    text = text.replace("epochs = 500", "epochs = 40")
    path = tmp_path / "my-tanh.toml"
    path.write_text(text, encoding="utf-8")
    mine = lesson_catalog.resolve(str(path))
    assert mine.id == "tanh-5"
    assert (mine.repeats, mine.config.epochs) == (3, 40)
    assert mine.variants == catalog["tanh-5"].variants
    assert experiments.load_file(path) == mine
    with pytest.raises(ConfigError, match=r"No shipped experiment 'relu-6' and no such file"):
        lesson_catalog.resolve("relu-6")


def test_override_replaces_top_level_fields_and_ignores_none(catalog):
    relu5 = catalog["relu-5"]
    quick = relu5.override(repeats=3, epochs=7, fit_scalers_on="train")
    assert (quick.repeats, quick.config.epochs, quick.fit_scalers_on) == (3, 7, "train")
    assert quick.variants == relu5.variants
    assert (relu5.repeats, relu5.config.epochs, relu5.fit_scalers_on) == (10, 500, "all")
    assert relu5.override(repeats=None, epochs=None) is relu5
    assert relu5.override(repeats=None, epochs=9).repeats == 10
    data = catalog["regression-data"]
    assert data.override(repeats=2, epochs=2) is data
    with pytest.raises(ConfigError, match=r"relu-5: repeats must be a positive integer, got 0"):
        relu5.override(repeats=0)


def test_defaults_fill_optional_fields():
    e = experiments.load_mapping(
        {
            "id": "tiny",
            "dataset": "lesson-regression",
            "model": {"hidden": [{"units": 4}], "output": {"units": 1}},
        },
        "tiny.toml",
    )
    assert (e.kind, e.title, e.n_train, e.repeats, e.seed) == ("train", "tiny", 500, 10, 0)
    assert (e.config.epochs, e.config.batch_size, e.config.validation) == (100, 32, True)
    assert e.figures == () and e.fit_scalers_on == "train"
    (variant,) = e.variants
    assert variant.name == "tiny"
    assert variant.optimizer == SGD()
    assert variant.model.layers[0].activation == "linear"
    assert variant.input_scaler == Scaler("none") == variant.target_scaler


def test_depth_repeats_one_layer_and_variants_merge_into_the_base():
    e = experiments.load_mapping(
        edited(
            "relu-5",
            variants=[
                {"name": "shallow", "model": {"depth": 2}},
                {"name": "fast", "optimizer": {"learning_rate": 0.1}},
            ],
        ),
        "x.toml",
    )
    shallow, fast = e.variants
    assert [layer.activation for layer in shallow.model.layers] == ["relu", "relu", "sigmoid"]
    assert len(fast.model.layers) == 6
    assert fast.optimizer == SGD(learning_rate=0.1, momentum=0.9)
    assert shallow.optimizer == SGD(learning_rate=0.01, momentum=0.9)


def test_batch_norm_and_residual_per_layer_and_on_a_stack():
    stack = {"depth": 3, "units": 5, "activation": "relu", "batch_norm": True, "residual": True}
    e = experiments.load_mapping(
        edited("relu-5", model={**shipped("relu-5")["model"], **stack}), "x.toml"
    )
    hidden = e.variants[0].model.hidden
    assert all(layer.batch_norm for layer in hidden)
    # the first layer projects the 2 inputs to 5 units; the skip connections follow it
    assert [layer.residual for layer in hidden] == [False, True, True]
    layers = [
        {"units": 5, "activation": "relu"},
        {"units": 5, "activation": "relu", "residual": True},
    ]
    per_layer = {"hidden": layers, "output": {"units": 1, "activation": "sigmoid"}}
    e = experiments.load_mapping(edited("relu-5", model=per_layer), "x.toml")
    assert [layer.residual for layer in e.variants[0].model.hidden] == [False, True]
    # written back (the run folder's resolved tables) it parses into the same model
    written = sl.MLP(2, hidden, sl.Dense(1, "sigmoid"))
    table = model_table(written)
    assert table["hidden"][1]["residual"] is True and "residual" not in table["hidden"][0]
    reparsed = experiments.load_mapping(edited("relu-5", model=table), "x.toml").variants[0].model
    assert reparsed == written


# --- invalid files: one ConfigError naming the file and the field ---------------------------


def model(**fields):
    return {"hidden": [{"units": 25, "activation": "relu"}], "output": {"units": 1}, **fields}


INVALID = [
    ("unknown-top-level", edited("standardized-target", colour="red"), ["unknown field colour"]),
    ("unknown-model-field", edited("standardized-target", model=model(dropout=0.1)), ["unknown field model.dropout"]),
    ("repeats-string", edited("standardized-target", repeats="ten"), ["repeats must be an integer, got 'ten'"]),
    ("repeats-bool", edited("standardized-target", repeats=True), ["repeats must be an integer, got True"]),
    ("epochs-zero", edited("standardized-target", epochs=0), ["epochs must be a positive integer, got 0"]),
    ("validation-string", edited("standardized-target", validation="yes"), ["validation must be true or false, got 'yes'"]),
    ("unknown-dataset", edited("standardized-target", dataset="mnist"), ["dataset must be one of", "'mnist'"]),
    ("unknown-figure", edited("standardized-target", figures=["pie"]), ["figures lists 'pie'; a train experiment takes some of"]),
    ("unknown-kind", edited("standardized-target", kind="plot"), ["kind must be one of train, data"]),
    ("fit-scalers-on", edited("tanh-5", fit_scalers_on="test"), ["fit_scalers_on must be 'train' or 'all'"]),
    ("negative-lr", edited("standardized-target", optimizer={"name": "sgd", "learning_rate": -1}), ["optimizer", "learning_rate must be in (0, inf), got -1"]),
    ("unknown-optimizer", edited("standardized-target", optimizer={"name": "adagrad"}), ["optimizer", "Unknown optimizer 'adagrad'"]),
    ("optimizer-keras-typo", edited("standardized-target", optimizer={"lr": 0.1}), ["optimizer", "unknown argument(s) lr"]),
    ("two-clip-modes", edited("standardized-target", optimizer={"clipnorm": 1.0, "clipvalue": 5.0}), ["optimizer", "clipnorm and clipvalue", "only one clipping mode"]),
    ("duplicate-variant", edited("gradient-clipping", variants=[{"name": "a"}, {"name": "a"}]), ["variants[1].name 'a' is used twice"]),
    ("variant-unknown-field", edited("input-scaling", variants=[{"name": "a", "epochs": 3}]), ["unknown field variants[0].epochs"]),
    ("variant-bad-lr", edited("input-scaling", variants=[{"name": "a", "optimizer": {"learning_rate": -1}}]), ["variants[0].optimizer", "learning_rate"]),
    ("unknown-activation", edited("standardized-target", model={"hidden": [{"units": 25, "activation": "relux"}], "output": {"units": 1}}), ["model.hidden[0]", "Unknown activation 'relux'"]),
    ("unknown-initializer", edited("standardized-target", model={"hidden": [{"units": 25, "kernel_initializer": "he_unifrom"}], "output": {"units": 1}}), ["model.hidden[0]", "Unknown initializer 'he_unifrom'"]),
    ("hidden-layer-not-table", edited("standardized-target", model={"hidden": [25], "output": {"units": 1}}), ["model.hidden[0] must be a table"]),
    ("missing-output", edited("standardized-target", model={"hidden": [{"units": 25}]}), ["model.output is required"]),
    ("missing-model", {k: v for k, v in shipped("standardized-target").items() if k != "model"}, ["model is required for a training experiment"]),
    ("hidden-and-depth", edited("standardized-target", model=model(depth=2)), ["model.hidden and depth are alternatives"]),
    ("units-without-depth", edited("standardized-target", model={"units": 5, "output": {"units": 1}}), ["model.units only applies together with depth"]),
    ("negative-depth", edited("relu-5", model={"depth": -1, "units": 5, "output": {"units": 1}}), ["model.depth must be zero or more, got -1"]),
    ("target-scaler-on-circles", edited("relu-5", data={"target_scaler": "standard"}), ["data.target_scaler only applies to regression datasets"]),
    ("unknown-scaler", edited("standardized-target", data={"input_scaler": "log"}), ["data", "Unknown scaler 'log'"]),
    ("missing-id", {k: v for k, v in shipped("standardized-target").items() if k != "id"}, ["id is required"]),
    ("variants-not-list", edited("standardized-target", variants={"name": "a"}), ["variants must be a list"]),
    ("not-a-table", [1, 2], ["the file must be a table"]),
    ("batch-norm-string", edited("relu-5", model={"depth": 2, "units": 5, "batch_norm": "yes", "output": {"units": 1, "activation": "sigmoid"}}), ["model.(depth layer)", "batch_norm must be true or false"]),
    ("residual-widths", edited("standardized-target", model=model(hidden=[{"units": 25, "residual": True}])), ["x.toml: model: Hidden layer 1 has residual=true but its input has 20 units"]),
    ("residual-output", edited("standardized-target", model=model(output={"units": 1, "residual": True})), ["the output layer takes neither"]),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_experiment_names_the_file_and_the_field(raw, expected):
    with pytest.raises(ConfigError) as caught:
        experiments.load_mapping(raw, "x.toml")
    message = str(caught.value)
    assert message.startswith("x.toml: "), message
    for part in expected:
        assert part in message, (part, message)


@pytest.mark.parametrize(
    "raw",
    [
        edited("standardized-target", epochs=0),
        edited("standardized-target", validation="yes"),
        edited("standardized-target", model={"hidden": [{"units": "25"}], "output": {"units": 1}}),
    ],
    ids=["epochs", "validation", "hidden-units"],
)
def test_invalid_experiment_names_the_file_once(raw):
    with pytest.raises(ConfigError) as caught:
        experiments.load_mapping(raw, "x.toml")
    assert str(caught.value).count("x.toml") == 1, str(caught.value)


def test_negative_seed_is_rejected_when_the_file_is_loaded():
    with pytest.raises(ConfigError, match=r"x\.toml: seed"):
        experiments.load_mapping(edited("standardized-target", seed=-1), "x.toml")


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"No experiment file at .*missing\.toml"):
        experiments.load_file(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"No experiment file at"):
        experiments.load_file(tmp_path)  # a folder is not an experiment file
    broken = tmp_path / "broken.toml"
    broken.write_text('id = "x\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^broken\.toml: not valid TOML \(.*line 1"):
        experiments.load_file(broken)
    binary = tmp_path / "weights.toml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00")
    with pytest.raises(ConfigError, match=r"^weights\.toml: not a text file\.$"):
        experiments.load_file(binary)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(
        lesson_catalog.catalog_text("tanh-5").replace("epochs = 500", 'epochs = "500"')
    )
    with pytest.raises(ConfigError, match=r"^wrong\.toml: .*epochs must be an integer, got '500'"):
        lesson_catalog.resolve(str(wrong))


# --- variants replace what a user means to replace --------------------------------------------


def test_a_variant_depth_replaces_the_base_hidden_list():
    raw = edited(
        "standardized-target",
        variants=[{"name": "deep", "model": {"depth": 3, "units": 4, "activation": "tanh"}}],
    )
    (variant,) = experiments.load_mapping(raw, "x.toml").variants
    assert variant.model.depth == 3 and variant.model.hidden[0].activation == "tanh"


def test_a_variant_with_another_optimizer_replaces_the_whole_table():
    raw = edited("standardized-target", variants=[{"name": "adam", "optimizer": {"name": "adam"}}])
    (variant,) = experiments.load_mapping(raw, "x.toml").variants
    assert isinstance(variant.optimizer, sl.Adam) and variant.optimizer.learning_rate == 0.001


def test_a_variant_clip_mode_replaces_the_base_clip_mode():
    raw = edited(
        "gradient-clipping", optimizer={"name": "sgd", "learning_rate": 0.01, "clipnorm": 1.0}
    )
    raw["variants"] = [{"name": "value", "optimizer": {"clipvalue": 5.0}}]
    (variant,) = experiments.load_mapping(raw, "x.toml").variants
    assert variant.optimizer.clipvalue == 5.0 and variant.optimizer.clipnorm is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"model": {"hidden": [{"units": 5, "activation": "relu"}], "output": {"units": 1}}},
            "needs a sigmoid output layer",
        ),
        (
            {"optimizer": {"name": "sgd", "clipnorm": [1.0, 2.0, 3.0]}},
            "3 thresholds but the model has 6 layers",
        ),
        ({"seed": 2**32}, "seed must be from 0 to 2**32 - repeats"),
        ({"split_seed": -1}, "split_seed must be zero or more"),
        ({"figures": ["box"], "kind": "data"}, "a data experiment takes some of"),
    ],
)
def test_what_training_would_refuse_is_refused_at_load_naming_the_file(changes, message):
    raw = edited("relu-5", **changes)
    with pytest.raises(ConfigError) as caught:
        experiments.load_mapping(raw, "x.toml")
    assert message in str(caught.value) and str(caught.value).startswith("x.toml")


# --- a dataset file and its encoding --------------------------------------------------------


def latin1_table(folder) -> str:
    """A gzip-compressed, semicolon-delimited latin-1 CSV with an accented feature name."""
    rows = "".join(f"{i};{i % 7};{i * 0.5}\n" for i in range(40))
    with gzip.open(folder / "données.csv.gz", "wt", encoding="latin-1") as handle:
        handle.write("température;b;y\n" + rows)
    return "données.csv.gz"


def test_an_experiment_reads_a_file_in_the_encoding_it_names(tmp_path):
    raw = edited("standardized-target", dataset=latin1_table(tmp_path), target="y")
    experiment = experiments.load_mapping({**raw, "encoding": "latin-1"}, "x.toml", tmp_path)
    assert experiment.data.feature_names == ("température", "b")


def test_an_undecodable_dataset_file_says_how_to_name_its_encoding_in_the_file(tmp_path):
    raw = edited("standardized-target", dataset=latin1_table(tmp_path), target="y")
    with pytest.raises(ConfigError) as caught:
        experiments.load_mapping(raw, "x.toml", tmp_path)
    assert str(caught.value) == (
        "x.toml: dataset: données.csv.gz does not decode as utf-8 (byte 0xe9); if it was "
        'saved in another encoding, give it, for example encoding = "latin-1".'
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"encoding": "latin-1"}, "x.toml: encoding only applies to a dataset read from a file."),
        (
            {"dataset": "d.csv", "target": "y", "encoding": "klingon"},
            "x.toml: encoding must be a text encoding such as utf-8, latin-1 or cp1252, got 'klingon'.",
        ),
        (
            {"dataset": "d.xlsx", "target": "y"},
            "x.toml: dataset must be one of lesson-regression, lesson-circles or a .csv, .tsv, .txt "
            "or .parquet file (CSV and TSV may be compressed: .gz, .bz2, .zip, .xz), got 'd.xlsx'.",
        ),
    ],
    ids=["encoding-with-a-built-in-dataset", "unknown-encoding", "unknown-suffix"],
)
def test_dataset_file_fields_are_checked(changes, message):
    with pytest.raises(ConfigError) as caught:
        experiments.load_mapping(edited("standardized-target", **changes), "x.toml")
    assert str(caught.value) == message
