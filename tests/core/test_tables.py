"""Loading a user's table: task detection, dropped columns, the files people have
(delimiters, compression, encodings, odd names), one clear error per bad input.

No training here: these tests only read small files written into tmp_path.
"""

import importlib.util
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stablelearn import tables
from stablelearn.errors import ConfigError, DataError
from stablelearn.tables import (
    MAX_CLASSES,
    MIN_ROWS,
    UndecodableText,
    load_table,
    read_frame,
    table_format,
    table_stem,
)

ROWS = 30
LESSON_CSV = Path(__file__).resolve().parents[2] / "examples" / "lesson_regression.csv"


def write_csv(folder: Path, name: str = "data.csv", rows: int = ROWS, **columns) -> Path:
    """Two normal feature columns a, b (seeded) plus the given columns, as a CSV."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    for key, values in columns.items():
        frame[key] = values
    path = folder / name
    frame.to_csv(path, index=False)
    return path


# --- task detection -----------------------------------------------------------------------


def test_float_target_is_regression_and_keeps_its_values(tmp_path):
    y = np.linspace(-3.5, 12.25, ROWS)
    table = load_table(write_csv(tmp_path, y=y), "y")
    data = table.dataset
    assert data.task == "regression"
    np.testing.assert_allclose(data.y, y)
    assert data.feature_names == ("a", "b")
    assert data.target_name == "y"
    assert data.name == "data"
    assert data.x.shape == (ROWS, 2)
    assert table.class_labels == ()
    assert table.dropped_columns == ()


def test_zero_one_target_is_binary(tmp_path):
    y = np.tile([0, 1, 1], ROWS // 3)
    table = load_table(write_csv(tmp_path, y=y), "y")
    assert table.dataset.task == "binary"
    assert table.class_labels == ("0", "1")
    np.testing.assert_array_equal(table.dataset.y, y)


def test_string_target_with_two_values_is_binary_with_labels_in_sorted_order(tmp_path):
    y = np.tile(["b", "a", "b"], ROWS // 3)
    table = load_table(write_csv(tmp_path, y=y), "y")
    assert table.dataset.task == "binary"
    assert table.class_labels == ("a", "b")
    np.testing.assert_array_equal(table.dataset.y, np.tile([1.0, 0.0, 1.0], ROWS // 3))


def test_two_numeric_values_other_than_zero_one_are_encoded_as_binary(tmp_path):
    y = np.tile([0.5, 1.5], ROWS // 2)
    table = load_table(write_csv(tmp_path, y=y), "y")
    assert table.dataset.task == "binary"
    assert table.class_labels == ("0.5", "1.5")
    np.testing.assert_array_equal(table.dataset.y, np.tile([0.0, 1.0], ROWS // 2))


def test_three_integer_classes_are_multiclass(tmp_path):
    y = np.tile([2, 0, 1], ROWS // 3)
    table = load_table(write_csv(tmp_path, y=y), "y")
    assert table.dataset.task == "multiclass"
    assert table.class_labels == ("0", "1", "2")
    np.testing.assert_array_equal(table.dataset.y, y)


def test_three_string_classes_are_multiclass(tmp_path):
    y = np.tile(["cat", "ant", "bee"], ROWS // 3)
    table = load_table(write_csv(tmp_path, y=y), "y")
    assert table.dataset.task == "multiclass"
    assert table.class_labels == ("ant", "bee", "cat")
    np.testing.assert_array_equal(table.dataset.y, np.tile([2.0, 0.0, 1.0], ROWS // 3))


def test_more_integer_values_than_max_classes_are_regression(tmp_path):
    at_limit = np.arange(ROWS) % MAX_CLASSES
    assert load_table(write_csv(tmp_path, "ten.csv", y=at_limit), "y").dataset.task == "multiclass"
    over = np.arange(ROWS) % (MAX_CLASSES + 1)
    assert load_table(write_csv(tmp_path, "eleven.csv", y=over), "y").dataset.task == "regression"


def test_explicit_task_overrides_the_detection(tmp_path):
    path = write_csv(tmp_path, y=np.tile([0, 1, 2], ROWS // 3))
    table = load_table(path, "y", task="regression")
    assert table.dataset.task == "regression"
    np.testing.assert_array_equal(table.dataset.y, np.tile([0.0, 1.0, 2.0], ROWS // 3))
    assert table.class_labels == ()
    binary = write_csv(tmp_path, "binary.csv", y=np.tile([0, 1], ROWS // 2))
    assert load_table(binary, "y", task="multiclass").dataset.task == "multiclass"
    assert load_table(binary, "y", task="binary").class_labels == ("0", "1")


@pytest.mark.parametrize(
    ("y", "task", "message"),
    [
        (np.linspace(0.0, 1.0, ROWS), "binary", "A binary task needs a target with 2 values; 'y' has 30"),
        (np.tile(["a", "b", "c"], 10), "binary", "A binary task needs a target with 2 values; 'y' has 3"),
        (np.tile(["a", "b"], 15), "regression", "The target 'y' is not numeric, so it cannot be a regression target"),
        (["a"] * ROWS, "multiclass", "The target 'y' has a single value"),
    ],
)  # fmt: skip
def test_a_task_that_does_not_fit_the_target_is_a_data_error(tmp_path, y, task, message):
    with pytest.raises(DataError) as err:
        load_table(write_csv(tmp_path, y=y), "y", task=task)
    assert message in str(err.value)


def test_an_unknown_task_is_a_config_error(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"Unknown task 'ordinal'; expected one of: regression, binary, multiclass",
    ):
        load_table(write_csv(tmp_path, y=np.arange(ROWS, dtype=float)), "y", task="ordinal")  # fmt: skip


def test_the_shipped_example_is_the_lessons_unscaled_regression_problem():
    table = load_table(LESSON_CSV, "target")
    data = table.dataset
    assert data.task == "regression"
    assert data.x.shape == (1000, 20)
    assert data.feature_names == tuple(f"x{i}" for i in range(20))
    assert data.name == "lesson_regression"
    assert 100 < data.y.std() < 200  # the unscaled target of lesson 2.1.2.1
    assert np.abs(data.x).max() < 10
    assert table.dropped_columns == ()


# --- constant columns --------------------------------------------------------------------


def test_constant_columns_are_dropped_and_reported(tmp_path):
    y = np.linspace(0.0, 1.0, ROWS)
    path = write_csv(tmp_path, c=np.full(ROWS, 4.0), d=np.zeros(ROWS), y=y)
    table = load_table(path, "y")
    assert table.dropped_columns == ("c", "d")
    assert table.dataset.feature_names == ("a", "b")
    assert table.dataset.x.shape == (ROWS, 2)
    original = pd.read_csv(path)
    np.testing.assert_allclose(table.dataset.x, original[["a", "b"]].to_numpy())


def test_only_constant_feature_columns_is_a_data_error(tmp_path):
    frame = pd.DataFrame({"c": np.ones(ROWS), "y": np.arange(ROWS, dtype=float)})
    frame.to_csv(tmp_path / "flat.csv", index=False)
    with pytest.raises(DataError, match=r"Every feature column of flat\.csv is constant"):
        load_table(tmp_path / "flat.csv", "y")


def test_a_table_with_only_the_target_is_a_data_error(tmp_path):
    pd.DataFrame({"y": np.arange(ROWS, dtype=float)}).to_csv(tmp_path / "only.csv", index=False)
    with pytest.raises(DataError, match=r"only\.csv has no feature columns besides the target 'y'"):
        load_table(tmp_path / "only.csv", "y")


# --- the files people have ---------------------------------------------------------------


def lesson_like_frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    return pd.DataFrame(
        {"a": rng.normal(size=ROWS), "b": np.arange(ROWS) ** 2, "y": np.linspace(0, 1, ROWS)}
    )


def assert_read_as_written(table, frame: pd.DataFrame) -> None:
    assert table.dataset.feature_names == ("a", "b")
    np.testing.assert_allclose(table.dataset.x, frame[["a", "b"]].to_numpy())
    np.testing.assert_allclose(table.dataset.y, frame["y"].to_numpy())


@pytest.mark.parametrize(
    ("name", "sep"),
    [("semi.csv", ";"), ("tabs.csv", "\t"), ("pipes.csv", "|"), ("pipes.txt", "|"),
     ("commas.tsv", ","), ("data.tsv", "\t")],
)  # fmt: skip
def test_the_delimiter_is_sniffed(tmp_path, name, sep):
    frame = lesson_like_frame()
    frame.to_csv(tmp_path / name, sep=sep, index=False)
    assert_read_as_written(load_table(tmp_path / name, "y"), frame)


def test_a_semicolon_file_with_decimal_commas_is_split_on_semicolons(tmp_path):
    """The delimiter is the one every line agrees on, not the first candidate found."""
    rows = "\n".join(f"{i},5;{i * 2};{i % 3}" for i in range(ROWS))
    (tmp_path / "euro.csv").write_text("a;b;y\n" + rows + "\n")
    with pytest.raises(DataError, match=r"Feature column\(s\) a are not numeric"):
        load_table(tmp_path / "euro.csv", "y")


@pytest.mark.parametrize(
    "name",
    ["data.csv.gz", "data.csv.bz2", "data.csv.xz", "data.csv.zip", "data.tsv.gz", "Data.CSV.GZ"],
)
def test_compressed_tables_are_read(tmp_path, name):
    frame = lesson_like_frame()
    frame.to_csv(tmp_path / name, sep="\t" if ".tsv" in name else ",", index=False)
    table = load_table(tmp_path / name, "y")
    assert_read_as_written(table, frame)
    assert table.dataset.name in ("data", "Data")


def test_a_zip_must_hold_one_table(tmp_path):
    path = tmp_path / "two.csv.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "a,y\n1,2\n")
        archive.writestr("b.csv", "a,y\n1,2\n")
    with pytest.raises(DataError) as err:
        load_table(path, "y")
    assert str(err.value) == "two.csv.zip holds 2 files; a .zip must hold exactly one table."


def test_a_zip_made_on_macos_is_read_despite_its_metadata_folder(tmp_path):
    frame = lesson_like_frame()
    path = tmp_path / "mac.csv.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data.csv", frame.to_csv(index=False))
        archive.writestr("__MACOSX/._data.csv", b"\x00\x05\x16\x07")
    assert_read_as_written(load_table(path, "y"), frame)


@pytest.mark.parametrize(
    ("name", "content"),
    [("broken.csv.gz", b"hello"), ("broken.csv.bz2", b"hello"), ("broken.csv.xz", b"hello"),
     ("broken.csv.zip", b"hello")],
)  # fmt: skip
def test_a_broken_compressed_file(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError) as err:
        load_table(tmp_path / name, "y")
    assert str(err.value).startswith(f"Could not read {name} as a table (")
    assert "\n" not in str(err.value)


def test_a_truncated_gzip_file(tmp_path):
    lesson_like_frame().to_csv(tmp_path / "whole.csv.gz", index=False)
    (tmp_path / "cut.csv.gz").write_bytes((tmp_path / "whole.csv.gz").read_bytes()[:60])
    with pytest.raises(DataError, match=r"^Could not read cut\.csv\.gz as a table \("):
        load_table(tmp_path / "cut.csv.gz", "y")


def test_names_with_spaces_and_accents_are_read_and_kept(tmp_path):
    frame = lesson_like_frame()
    frame.to_csv(tmp_path / "my données 2024.csv", index=False)
    table = load_table(tmp_path / "my données 2024.csv", "y")
    assert table.dataset.name == "my données 2024"
    assert_read_as_written(table, frame)


def test_a_latin1_file_names_the_encoding_that_failed_and_the_flag_to_give(tmp_path):
    frame = lesson_like_frame().rename(columns={"a": "température"})
    frame.to_csv(tmp_path / "latin.csv", index=False, encoding="latin-1")
    with pytest.raises(UndecodableText) as err:
        load_table(tmp_path / "latin.csv", "y")
    assert str(err.value) == (
        "latin.csv does not decode as utf-8 (byte 0xe9); if it was saved in another encoding, "
        "give it, for example --encoding latin-1."
    )
    assert err.value.with_fix('encoding = "latin-1"').endswith('for example encoding = "latin-1".')
    table = load_table(tmp_path / "latin.csv", "y", encoding="latin-1")
    assert table.dataset.feature_names == ("température", "b")


def test_a_utf16_file_is_recognised_by_its_byte_order_mark(tmp_path):
    frame = lesson_like_frame()
    frame.to_csv(tmp_path / "excel.txt", sep="\t", index=False, encoding="utf-16")
    with pytest.raises(
        DataError, match=r"excel\.txt does not decode as utf-8 .* --encoding utf-16\."
    ):
        load_table(tmp_path / "excel.txt", "y")
    assert_read_as_written(load_table(tmp_path / "excel.txt", "y", encoding="utf-16"), frame)


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_name(tmp_path):
    frame = lesson_like_frame()
    frame.to_csv(tmp_path / "bom.csv", index=False, encoding="utf-8-sig")
    assert_read_as_written(load_table(tmp_path / "bom.csv", "y"), frame)
    assert list(read_frame(tmp_path / "bom.csv", "UTF8").columns) == ["a", "b", "y"]


@pytest.mark.parametrize("encoding", ["klingon", "hex"])
def test_an_encoding_that_is_not_a_text_encoding_is_a_config_error(tmp_path, encoding):
    lesson_like_frame().to_csv(tmp_path / "data.csv", index=False)
    with pytest.raises(ConfigError) as err:
        load_table(tmp_path / "data.csv", "y", encoding=encoding)
    assert str(err.value) == (
        f"{encoding!r} is not a text encoding; give one such as utf-8, latin-1 or cp1252."
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [("data.csv", (".csv", None)), ("Data.TSV", (".tsv", None)), ("x.txt.xz", (".txt", ".xz")),
     ("my data.v2.csv.gz", (".csv", ".gz")), ("t.parquet", (".parquet", None)), ("t.pq", (".pq", None))],
)  # fmt: skip
def test_table_format_reads_the_suffix_under_the_compression(name, expected):
    assert table_format(name) == expected


@pytest.mark.parametrize("name", ["data.xlsx", "data.gz", "data.parquet.gz", "data.tar.gz", "csv"])
def test_table_format_rejects_what_is_not_read(name):
    with pytest.raises(DataError, match=r": expected a \.csv, \.tsv, \.txt or \.parquet file"):
        table_format(name)


def test_table_stem_drops_the_table_and_compression_suffixes():
    assert table_stem("runs/my data.v2.csv.gz") == "my data.v2"
    assert table_stem("t.parquet") == "t"


# --- bad inputs: reading -----------------------------------------------------------------


def test_a_missing_file(tmp_path):
    with pytest.raises(DataError) as err:
        load_table(tmp_path / "nope.csv", "y")
    assert str(err.value) == f"No such file: {tmp_path / 'nope.csv'}."


def test_a_directory(tmp_path):
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(DataError) as err:
        load_table(tmp_path / "folder.csv", "y")
    assert str(err.value) == f"{tmp_path / 'folder.csv'} is not a file."


def test_binary_garbage_with_a_csv_suffix(tmp_path):
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)))
    with pytest.raises(DataError) as err:
        load_table(path, "y")
    assert (
        str(err.value) == "Could not read garbage.csv as a table (it holds binary data, not text)."
    )


def test_an_empty_file(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError) as err:
        load_table(tmp_path / "empty.csv", "y")
    assert str(err.value) == "Could not read empty.csv as a table (No columns to parse from file)."


def test_a_header_without_rows_is_too_few_rows(tmp_path):
    (tmp_path / "header.csv").write_text("a,b,y\n")
    with pytest.raises(DataError, match=r"header.csv has 0 rows; at least 20 are needed"):
        load_table(tmp_path / "header.csv", "y")


def test_an_unknown_suffix(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_text("a,b,y\n1,2,3\n")
    with pytest.raises(DataError) as err:
        load_table(path, "y")
    assert str(err.value) == (
        "data.xlsx: expected a .csv, .tsv, .txt or .parquet file "
        "(CSV and TSV may be compressed: .gz, .bz2, .zip, .xz)."
    )


def test_a_tsv_is_read_with_tabs(tmp_path):
    y = np.linspace(0.0, 1.0, ROWS)
    frame = pd.DataFrame({"a": np.arange(ROWS), "b": np.arange(ROWS) ** 2, "y": y})
    frame.to_csv(tmp_path / "data.tsv", sep="\t", index=False)
    table = load_table(tmp_path / "data.tsv", "y")
    assert table.dataset.feature_names == ("a", "b")
    np.testing.assert_allclose(table.dataset.x[:, 1], np.arange(ROWS) ** 2)


def test_a_parquet_file_without_pyarrow_says_how_to_install_it(tmp_path):
    path = tmp_path / "data.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError) as err:
        load_table(path, "y")
    if (
        importlib.util.find_spec("pyarrow") is None
        and importlib.util.find_spec("fastparquet") is None
    ):
        assert (
            str(err.value) == "Reading Parquet needs pyarrow: pip install 'stablelearn[parquet]'."
        )
    else:
        assert str(err.value).startswith("Could not read data.parquet as a table (")


# --- bad inputs: content -----------------------------------------------------------------


def test_a_missing_target_column_lists_the_columns(tmp_path):
    path = write_csv(tmp_path, y=np.arange(ROWS, dtype=float))
    with pytest.raises(DataError) as err:
        load_table(path, "price")
    assert str(err.value) == "data.csv has no column 'price'; its columns are: a, b, y."


def test_non_numeric_feature_columns_are_named_with_a_fix(tmp_path):
    path = write_csv(
        tmp_path, city=["Oslo", "Rome"] * (ROWS // 2), size=["S"] * ROWS, y=np.arange(ROWS) * 0.5
    )
    with pytest.raises(DataError) as err:
        load_table(path, "y")
    assert str(err.value) == (
        "Feature column(s) city, size are not numeric; encode them first "
        "(for example one-hot with pandas.get_dummies)."
    )


def test_a_boolean_feature_column_counts_as_non_numeric(tmp_path):
    path = write_csv(tmp_path, flag=[True, False] * (ROWS // 2), y=np.arange(ROWS) * 0.5)
    with pytest.raises(DataError, match=r"Feature column\(s\) flag are not numeric"):
        load_table(path, "y")


def test_nan_in_the_target_gives_the_count(tmp_path):
    y = np.arange(ROWS, dtype=float)
    y[[2, 5, 11]] = np.nan
    with pytest.raises(DataError) as err:
        load_table(write_csv(tmp_path, y=y), "y")
    assert str(err.value) == "The target 'y' is missing in 3 row(s); drop those rows first."


def test_inf_in_a_regression_target(tmp_path):
    y = np.arange(ROWS, dtype=float)
    y[4] = np.inf
    with pytest.raises(DataError, match="The target 'y' contains infinite values; drop those rows"):
        load_table(write_csv(tmp_path, y=y), "y")


def test_nan_and_inf_in_features_name_the_columns(tmp_path):
    rng = np.random.default_rng(3)
    p, q, r = rng.normal(size=(3, ROWS))
    q[7] = np.nan
    r[0] = -np.inf
    path = write_csv(tmp_path, p=p, q=q, r=r, y=np.arange(ROWS, dtype=float))
    with pytest.raises(DataError) as err:
        load_table(path, "y")
    assert str(err.value) == (
        "Feature column(s) q, r contain missing or infinite values; impute or drop them first."
    )


def test_too_few_rows(tmp_path):
    short = write_csv(tmp_path, "short.csv", rows=MIN_ROWS - 1, y=np.arange(MIN_ROWS - 1) * 0.5)
    with pytest.raises(DataError) as err:
        load_table(short, "y")
    assert str(err.value) == "short.csv has 19 rows; at least 20 are needed to train and test."
    enough = write_csv(tmp_path, "enough.csv", rows=MIN_ROWS, y=np.arange(MIN_ROWS) * 0.5)
    assert load_table(enough, "y").dataset.x.shape == (MIN_ROWS, 2)


def test_a_single_valued_string_target(tmp_path):
    with pytest.raises(DataError) as err:
        load_table(write_csv(tmp_path, y=["yes"] * ROWS), "y")
    assert str(err.value) == "The target 'y' has a single value; there is nothing to learn."


@pytest.mark.parametrize("value", [2, 3.5])
def test_a_single_valued_numeric_target(tmp_path, value):
    with pytest.raises(DataError, match="has a single value; there is nothing to learn"):
        load_table(write_csv(tmp_path, y=[value] * ROWS), "y")


# --- bad inputs: repeated names, values float32 cannot hold --------------------------------


def test_a_repeated_target_name_is_an_error_not_a_silent_rename(tmp_path):
    """pandas would rename the second 'y' to 'y.1', train on the first and use the real
    target as a feature."""
    rng = np.random.default_rng(5)
    rows = "\n".join(",".join(f"{v:.4f}" for v in rng.normal(size=4)) for _ in range(ROWS))
    (tmp_path / "dup.csv").write_text("a,y,c,y\n" + rows + "\n")
    with pytest.raises(DataError) as err:
        load_table(tmp_path / "dup.csv", "y")
    assert str(err.value) == (
        "dup.csv has more than one column named 'y'; give each column its own name."
    )


def test_every_repeated_name_is_listed_whatever_the_delimiter(tmp_path):
    rows = "\n".join(f"{i};{i};{i};{i};{i % 2}" for i in range(ROWS))
    (tmp_path / "dup.csv").write_text("a;b;a;b;y\n" + rows + "\n")
    with pytest.raises(DataError, match=r"more than one column named 'a', 'b';"):
        load_table(tmp_path / "dup.csv", "y")


def test_a_quoted_header_and_blank_header_cells_are_not_repeats(tmp_path):
    rows = "\n".join(f"{i},{i * i},{i % 7},{i / 3}" for i in range(ROWS))
    (tmp_path / "q.csv").write_text('"a,1",,"",y\n' + rows + "\n")
    assert load_table(tmp_path / "q.csv", "y").dataset.feature_names == (
        "a,1", "Unnamed: 1", "Unnamed: 2",
    )  # fmt: skip


def test_repeated_names_in_a_parquet_file_are_an_error(tmp_path, monkeypatch):
    """Parquet keeps repeated names as they are (no pyarrow needed for this test)."""
    frame = pd.DataFrame(np.ones((ROWS, 3)), columns=["a", "y", "y"])
    monkeypatch.setattr(pd, "read_parquet", lambda path: frame)
    (tmp_path / "dup.parquet").write_bytes(b"PAR1")
    with pytest.raises(DataError, match=r"^dup\.parquet has more than one column named 'y';"):
        load_table(tmp_path / "dup.parquet", "y")


def test_features_beyond_float32_range_are_named_with_a_fix(tmp_path):
    big = np.linspace(1.0, 2.0, ROWS)
    big[3] = 1e300
    negative = -np.linspace(1.0, 2.0, ROWS)
    negative[0] = -1e39
    near = np.linspace(0.0, 3e38, ROWS)  # the largest float32 is 3.4e38: accepted
    path = write_csv(tmp_path, big=big, negative=negative, near=near, y=np.arange(ROWS) * 0.5)
    with pytest.raises(DataError) as err:
        load_table(path, "y")
    assert str(err.value) == (
        "Feature column(s) big, negative hold values beyond float32's range (|x| > 3.4e+38), "
        "which training turns into inf; rescale or log-transform them first."
    )
    assert load_table(write_csv(tmp_path, "near.csv", near=near, y=np.arange(ROWS) * 0.5), "y")


def test_a_regression_target_beyond_float32_range(tmp_path):
    y = np.linspace(0.0, 1.0, ROWS)
    y[-1] = 1e300
    with pytest.raises(DataError) as err:
        load_table(write_csv(tmp_path, y=y), "y")
    assert str(err.value) == (
        "The target 'y' holds values beyond float32's range (|y| > 3.4e+38), "
        "which training turns into inf; rescale or log-transform it first."
    )


def test_a_class_label_beyond_float32_range_is_only_a_label(tmp_path):
    table = load_table(write_csv(tmp_path, y=np.tile([0.0, 1e300], ROWS // 2)), "y")
    assert table.dataset.task == "binary"
    assert table.class_labels == ("0.0", "1e+300")


def test_beyond_float32_checks_what_the_cast_makes_of_each_column():
    values = np.array([[1.0, 3.4e38, -3.5e38], [2.0, 0.0, 0.0]])
    np.testing.assert_array_equal(tables.beyond_float32(values), [False, False, True])


def test_a_wide_table_is_sniffed_on_a_bounded_sample_of_whole_lines():
    wide = ";".join(f"{i * 1.5:.6f}" for i in range(5000)) + "\n"
    assert tables.sniff_delimiter([wide] * 50, ",") == ";"
    assert tables.sniff_delimiter(["price\n", "3\n"], ",") == ","  # one column: the default
