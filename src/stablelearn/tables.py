"""Load a user's table (CSV, TSV or Parquet) into a Dataset, with one clear error per problem.

Text tables may be compressed (.gz, .bz2, .zip, .xz after .csv/.tsv/.txt); their
delimiter (comma, semicolon, tab or pipe) is sniffed from the first lines, and they are
read as UTF-8 (a byte-order mark allowed) unless another encoding is given. A repeated
column name is an error: pandas would rename the second one and read on, so a repeated
target would silently train on the wrong column.

The target column picks the task unless one is given: a non-numeric target or a
numeric one with two values is classification (labels are encoded 0..k-1 in sorted
order; two classes make a binary task), integer values with at most 10 distinct
classes are multiclass, anything else is regression. Constant feature columns are
dropped (the doctor reports them); every other problem stops with a sentence that
names the columns and says what to do. pandas is imported when a table is read, not
with the module, so checking a file name costs nothing.
"""

import bz2
import codecs
import contextlib
import csv
import gzip
import io
import itertools
import lzma
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from stablelearn.data import TASKS, Dataset, varying_columns
from stablelearn.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

MIN_ROWS = 20
MAX_CLASSES = 10
PARQUET_SUFFIXES = (".parquet", ".pq")
TEXT_SUFFIXES = {".csv": ",", ".txt": ",", ".tsv": "\t"}  # the delimiter if sniffing fails
COMPRESSIONS = (".gz", ".bz2", ".zip", ".xz")
DELIMITERS = ",;\t|"
SNIFF_LINES = 50
SNIFF_CHARS = 1 << 16
EXPECTED = (
    "a .csv, .tsv, .txt or .parquet file (CSV and TSV may be compressed: .gz, .bz2, .zip, .xz)"
)
FLOAT32_MAX = float(np.finfo(np.float32).max)
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open, None: open}


@dataclass(frozen=True)
class Table:
    """A loaded table: the dataset, the class labels behind 0..k-1, dropped columns."""

    dataset: Dataset
    class_labels: tuple[str, ...] = ()
    dropped_columns: tuple[str, ...] = field(default=())


class UndecodableText(DataError):
    """A text table that does not decode with the encoding given. The message names the
    --encoding flag; `with_fix` words the fix for where else an encoding is given."""

    def __init__(self, name: str, encoding: str, byte: int, suggested: str) -> None:
        self.suggested = suggested
        self._problem = f"{name} does not decode as {encoding} (byte 0x{byte:02x})"
        super().__init__(self.with_fix(f"--encoding {suggested}"))

    def with_fix(self, fix: str) -> str:
        return f"{self._problem}; if it was saved in another encoding, give it, for example {fix}."


def table_format(path: str | Path) -> tuple[str, str | None]:
    """The table suffix and the compression suffix of a file name: 'Data.CSV.gz' is
    ('.csv', '.gz'), 'data.parquet' is ('.parquet', None); anything else is a DataError."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    compression = suffixes.pop() if suffixes and suffixes[-1] in COMPRESSIONS else None
    kind = suffixes[-1] if suffixes else ""
    if kind in TEXT_SUFFIXES or (kind in PARQUET_SUFFIXES and compression is None):
        return kind, compression
    raise DataError(f"{Path(path).name}: expected {EXPECTED}.")


def table_stem(path: str | Path) -> str:
    """The file name without its table and compression suffixes ('my data' for 'my data.csv.gz')."""
    kind, compression = table_format(path)
    name = Path(path).name
    return name[: len(name) - len(kind) - len(compression or "")]


def check_unique_names(names: Sequence[object], file_name: str) -> None:
    """Stop at a repeated column name (blank header cells aside, which pandas numbers)."""
    repeated = [n for n, k in Counter(names).items() if k > 1 and str(n).strip()]
    if repeated:
        listed = ", ".join(repr(str(n)) for n in repeated[:10])
        raise DataError(
            f"{file_name} has more than one column named {listed}; give each column its own name."
        )


def sniff_delimiter(lines: Sequence[str], default: str) -> str:
    """The delimiter the first lines agree on (comma, semicolon, tab or pipe), else
    `default`. Whole lines up to SNIFF_CHARS (at least two): the sniffer's time grows with
    its sample, and a cut line would break the agreement it looks for."""
    sample: list[str] = []
    size = 0
    for line in lines:
        if size >= SNIFF_CHARS and len(sample) >= 2:
            break
        sample.append(line)
        size += len(line)
    try:
        return csv.Sniffer().sniff("".join(sample), delimiters=DELIMITERS).delimiter
    except csv.Error:
        return default


def text_codec(encoding: str) -> str:
    """The Python codec to read with; utf-8 also skips a byte-order mark (Excel writes one)."""
    try:
        "".encode(encoding)  # a LookupError for unknown names and for non-text codecs (hex)
    except LookupError:
        raise ConfigError(
            f"{encoding!r} is not a text encoding; give one such as utf-8, latin-1 or cp1252."
        ) from None
    name = codecs.lookup(encoding).name
    return "utf-8-sig" if name == "utf-8" else name


@contextlib.contextmanager
def _open_text(path: Path, compression: str | None, codec: str) -> Iterator[IO[str]]:
    """The file as text, decompressed; a .zip must hold one file (macOS' __MACOSX/ aside)."""
    with contextlib.ExitStack() as stack:
        if compression == ".zip":
            archive = stack.enter_context(zipfile.ZipFile(path))
            members = [
                n
                for n in archive.namelist()
                if not n.endswith("/") and not n.startswith("__MACOSX/")
            ]
            if len(members) != 1:
                raise DataError(
                    f"{path.name} holds {len(members)} files; a .zip must hold exactly one table."
                )
            raw = archive.open(members[0])
        else:
            raw = _OPENERS[compression](path, "rb")
        yield stack.enter_context(io.TextIOWrapper(raw, encoding=codec, newline=""))


def _read_text(path: Path, kind: str, compression: str | None, codec: str) -> "pd.DataFrame":
    """A delimited text table; its header is checked as written, before pandas renames
    repeated names."""
    import pandas as pd

    with _open_text(path, compression, codec) as handle:
        head = list(itertools.islice(handle, SNIFF_LINES))
        sep = sniff_delimiter(head, TEXT_SUFFIXES[kind])
        check_unique_names(next(csv.reader(head, delimiter=sep), []), path.name)
        handle.seek(0)
        # low_memory=False: types inferred over whole columns, without a DtypeWarning
        frame = pd.read_csv(handle, sep=sep, low_memory=False)
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas makes the first columns an index when rows have more fields than the
        # header, shifting every value under the next column's name
        raise DataError(
            f"{path.name}'s rows have more fields than its header names "
            f"({len(frame.columns)}); name every column or remove the delimiters that end each row."
        )
    return frame


def _read_parquet(path: Path) -> "pd.DataFrame":
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except ImportError:
        raise DataError(
            "Reading Parquet needs pyarrow: pip install 'stablelearn[parquet]'."
        ) from None
    check_unique_names(list(frame.columns), path.name)
    return frame


def _undecodable(name: str, encoding: str, err: UnicodeDecodeError) -> DataError:
    """What to say when the bytes are not text in `encoding`: UTF-16 (Excel's 'Unicode
    text') by its byte-order mark, binary data by its zero bytes, else try latin-1."""
    data = bytes(err.object)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return UndecodableText(name, encoding, data[err.start], "utf-16")
    if b"\x00" in data:
        return DataError(f"Could not read {name} as a table (it holds binary data, not text).")
    return UndecodableText(name, encoding, data[err.start], "latin-1")


def read_frame(path: str | Path, encoding: str = "utf-8") -> "pd.DataFrame":
    """The table in `path` as a DataFrame: a CSV/TSV/text file (maybe compressed, read
    with `encoding`) or Parquet; every way it can fail is one DataError sentence."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataError(f"No such file: {path}.")
    if not path.is_file():
        raise DataError(f"{path} is not a file.")
    kind, compression = table_format(path)
    codec = text_codec(encoding)
    try:
        if kind in PARQUET_SUFFIXES:
            return _read_parquet(path)
        return _read_text(path, kind, compression, codec)
    except DataError:
        raise
    except UnicodeDecodeError as err:
        raise _undecodable(path.name, encoding, err) from None
    except (
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        csv.Error,
        ValueError,
        OSError,
        EOFError,
        lzma.LZMAError,
        zipfile.BadZipFile,
    ) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"Could not read {path.name} as a table ({reason}).") from None


def beyond_float32(values: np.ndarray) -> np.ndarray:
    """Per column (or for a 1-D array, overall): does a value turn into inf in float32,
    the precision the engine trains in?"""
    with np.errstate(over="ignore"):  # the overflow is what is being measured
        return ~np.isfinite(values.astype(np.float32)).all(axis=0)


def _task_of(target: "pd.Series", task: str | None) -> str:
    import pandas as pd

    numeric = pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target)
    values = target.unique()
    if len(values) < 2:
        raise DataError(
            f"The target {target.name!r} has a single value; there is nothing to learn."
        )
    integral = numeric and bool(
        np.all(np.asarray(values, np.float64) == np.round(np.asarray(values, np.float64)))
    )
    if task is not None:
        if task not in TASKS:
            raise ConfigError(f"Unknown task {task!r}; expected one of: {', '.join(TASKS)}.")
        if task == "regression" and not numeric:
            raise DataError(
                f"The target {target.name!r} is not numeric, so it cannot be a regression target."
            )
        if task == "binary" and len(values) != 2:
            raise DataError(
                f"A binary task needs a target with 2 values; {target.name!r} has {len(values)}."
            )
        if task == "multiclass" and numeric and not integral:
            raise DataError(
                f"A multiclass task needs class labels; {target.name!r} has non-integer values, "
                "which look like a regression target."
            )
        return task
    if not numeric or len(values) == 2:
        return "binary" if len(values) == 2 else "multiclass"
    if integral and len(values) <= MAX_CLASSES:
        return "multiclass"
    return "regression"


def load_table(
    path: str | Path, target: str, task: str | None = None, encoding: str = "utf-8"
) -> Table:
    """Read `path` and split it into features and the `target` column."""
    import pandas as pd

    frame = read_frame(path, encoding)
    name = Path(path).name
    if target not in frame.columns:
        columns = ", ".join(" ".join(str(c).split()) for c in frame.columns[:20])  # one line
        more = f" and {len(frame.columns) - 20} more" if len(frame.columns) > 20 else ""
        raise DataError(f"{name} has no column {target!r}; its columns are: {columns}{more}.")
    if len(frame) < MIN_ROWS:
        raise DataError(
            f"{name} has {len(frame)} rows; at least {MIN_ROWS} are needed to train and test."
        )
    y_series = frame[target]
    missing = int(y_series.isna().sum())
    if missing:
        raise DataError(
            f"The target {target!r} is missing in {missing} row(s); drop those rows first."
        )
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise DataError(f"{name} has no feature columns besides the target {target!r}.")
    non_numeric = [
        str(c)
        for c in features.columns
        if not pd.api.types.is_numeric_dtype(features[c]) or pd.api.types.is_bool_dtype(features[c])
    ]
    if non_numeric:
        raise DataError(
            f"Feature column(s) {', '.join(non_numeric[:10])} are not numeric; encode them first "
            "(for example one-hot with pandas.get_dummies)."
        )
    x = features.to_numpy(np.float64)
    bad = [
        str(c) for c, ok in zip(features.columns, np.isfinite(x).all(axis=0), strict=True) if not ok
    ]
    if bad:
        raise DataError(
            f"Feature column(s) {', '.join(bad[:10])} contain missing or infinite values; impute or drop them first."
        )
    huge = [str(c) for c, big in zip(features.columns, beyond_float32(x), strict=True) if big]
    if huge:
        raise DataError(
            f"Feature column(s) {', '.join(huge[:10])} hold values beyond float32's range "
            f"(|x| > {FLOAT32_MAX:.3g}), which training turns into inf; rescale or log-transform them first."
        )
    chosen = _task_of(y_series, task)
    labels: tuple[str, ...] = ()
    if chosen == "regression":
        y = y_series.to_numpy(np.float64)
        if not np.isfinite(y).all():
            raise DataError(
                f"The target {target!r} contains infinite values; drop those rows first."
            )
        if beyond_float32(y):
            raise DataError(
                f"The target {target!r} holds values beyond float32's range "
                f"(|y| > {FLOAT32_MAX:.3g}), which training turns into inf; rescale or log-transform it first."
            )
    else:
        classes = sorted(y_series.unique(), key=lambda v: (str(type(v)), v))
        labels = tuple(str(c) for c in classes)
        y = y_series.map({c: i for i, c in enumerate(classes)}).to_numpy(np.float64)
    keep = varying_columns(x)
    if not keep.any():
        raise DataError(
            f"Every feature column of {name} is constant; there is nothing to learn from."
        )
    everything = Dataset(
        x, y, chosen, table_stem(path), tuple(map(str, features.columns)), str(target)
    )
    return Table(everything.keep_columns(keep), labels, everything.column_names(~keep))
