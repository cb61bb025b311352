"""Message tables on disk: reading and writing CSV, JSONL and Parquet.

The extension picks the format: .parquet or .pq; .jsonl, .json or .ndjson; .csv; the text
formats may end in .gz. Reading takes any other name as CSV (the data set is a bare .gz) and
finds gzip by its magic bytes; writing refuses other names.
"""
from __future__ import annotations

import csv
import glob
import gzip
import io
import itertools
import json
import os
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..config import DataConfig
from ..errors import StocksentError, UnknownLabels
from ..text.labels import name_codes, spelled
from .store import atomic_destination

PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
# Rows per batch when streaming Parquet: bounds memory however large the file's row groups are.
PARQUET_BATCH_ROWS = 8192

# Python's csv refuses fields over 128 KiB; a scraped message can be longer, and the tokenizer
# cuts it to max_tokens anyway.
csv.field_size_limit(64 * 1024 * 1024)


def read_messages(path: Path, cfg: DataConfig) -> tuple[list[str], list[int]]:
    """Read (texts, labels) from a CSV, JSONL or Parquet file; labels are 0 negative, 1 positive."""
    with _readable(path):
        rows = list(_rows(path, [cfg.text_column, cfg.label_column]))
    return _labelled(rows, path, cfg)


def read_texts(path: Path, text_column: str) -> Iterator[str]:
    """Yield the text column of a CSV, JSONL or Parquet file row by row, for scoring unlabelled messages."""
    with _readable(path):
        for number, row in enumerate(_rows(path, [text_column]), start=1):
            if text_column not in row:
                raise StocksentError(f"{path}: row {number} has no column {text_column!r} "
                                     f"(columns: {', '.join(map(str, row)) or 'none'})")
            yield "" if row[text_column] is None else str(row[text_column])


def read_columns(path: Path, required: list[str], optional: Sequence[str] = (),
                 size: int = PARQUET_BATCH_ROWS, row_groups: Sequence[int] | None = None) -> Iterator[dict[str, list]]:
    """Chunks of up to `size` rows of a CSV, JSONL or Parquet file, as {column: values}: the
    `required` columns (one missing: one line naming the file and the row) and those of
    `optional` the file has (by its schema, or its first row). `row_groups`: only these of a
    Parquet file."""
    with _readable(path):
        if table_format(path) == "parquet":
            present = _parquet_names(path)
            asked = [*required, *(c for c in optional if c in present)]
            rows = 0
            for batch in parquet_batches(path, asked, size, row_groups):
                if batch.num_rows:
                    rows += batch.num_rows
                    yield batch.to_pydict()
            if not rows and row_groups is None:
                raise StocksentError(f"{path}: no rows")
            return
        rows = _rows(path, [*required, *optional])
        first = next(rows, None)
        if first is None:
            raise StocksentError(f"{path}: no rows")
        _require_columns(path, required, list(first))
        columns = list(dict.fromkeys([*required, *(c for c in optional if c in first)]))
        chunk: dict[str, list] = {c: [] for c in columns}
        for number, row in enumerate(itertools.chain([first], rows), start=1):
            for c in columns:
                if c not in row and c in required:
                    raise StocksentError(f"{path}: row {number} has no column {c!r}")
                chunk[c].append(row.get(c))
            if len(chunk[columns[0]]) >= size:
                yield chunk
                chunk = {c: [] for c in columns}
        if chunk[columns[0]]:
            yield chunk


def table_columns(path: Path) -> list[str]:
    """A CSV, JSONL or Parquet file's columns, in its order: its schema, header or first row
    (none for a plain text file)."""
    with _readable(path):
        if table_format(path) == "parquet":
            return _parquet_names(path)
        if table_format(path) == "text":
            return []
        first = next(_rows(path, []), None)
        return [str(c) for c in first] if first is not None else []


def check_layout(path: Path, names: list[str], first: Path) -> None:
    """One line unless `path` has the columns `names` of `first`, in that order (a plain text
    file: the one column asked for)."""
    found = table_columns(path) or names[:1]
    if found != names:
        raise StocksentError(f"{path}: columns {found} differ from those of {first} ({names}); "
                             "score files of one layout together")


def parquet_row_groups(path: Path) -> list[int]:
    """The rows of each row group of a Parquet file (one line if it is not one)."""
    with _readable(path), _parquet_file(path) as parquet:
        return [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]


def parquet_types(paths: Sequence[Path], columns: Sequence[str]) -> Any:
    """The Arrow types of these columns over Parquet files, one type per column that holds every
    file's (a column with no values in one file takes the others' type); one line when the files
    disagree. None when the first file is not Parquet."""
    if not paths or table_format(paths[0]) != "parquet":
        return None
    pa, _ = _import_pyarrow("reading")
    schemas = []
    for path in paths:
        with _readable(path), _parquet_file(path) as parquet:
            found = parquet.schema_arrow
        schemas.append(pa.schema([found.field(c) for c in columns if c in found.names]))
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise StocksentError(f"the files' column types differ ({_first_line(exc)}); convert them to one type "
                             "first") from None


def input_files(specs: Sequence[str | Path]) -> list[Path]:
    """The files that each of `specs` names: a file, a directory (the tables under it, at any
    depth, sorted, leaving out hidden names and names starting with _) or a glob pattern (its
    matches, sorted); one line for one that names none."""
    files: list[Path] = []
    for spec in map(str, specs):
        if glob.has_magic(spec):
            found = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        elif Path(spec).is_dir():
            found = sorted(p for p in Path(spec).rglob("*") if p.is_file() and table_format(p) not in (None, "text")
                           and not any(part.startswith((".", "_")) for part in p.relative_to(spec).parts))
        else:
            found = [Path(spec)]  # reading it says if it is missing
        if not found:
            raise StocksentError(f"{spec}: no CSV, JSONL or Parquet files there" if Path(spec).is_dir()
                                 else f"{spec}: no file matches")
        files.extend(found)
    return list(dict.fromkeys(files))  # a file named twice is read once


def _parquet_names(path: Path) -> list[str]:
    pa, pq = _import_pyarrow("reading")
    try:
        return list(pq.read_schema(path).names)
    except (pa.ArrowException, OSError):
        return []  # reading the rows says what is wrong with the file


def require_columns(path: Path, wanted: list[str]) -> list[str]:
    """The file's columns (table_columns); one line unless `wanted` are among them (a plain text
    file has whichever is asked for)."""
    found = table_columns(path)
    if table_format(path) != "text":
        _require_columns(path, wanted, found)
    return found


def table_format(path: Path) -> str | None:
    """parquet, jsonl, csv or text by a file's name; None for a name of none of them."""
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    base = name.removesuffix(".gz")
    if base.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if base.endswith(".txt"):
        return "text"
    return "csv" if base.endswith(".csv") else None


@contextmanager
def _readable(path: Path) -> Iterator[None]:
    """Turn the ways a data file can be unreadable into one-line errors."""
    try:
        yield
    except FileNotFoundError:
        raise StocksentError(f"data file not found: {path}") from None
    except (gzip.BadGzipFile, EOFError, zlib.error):
        raise StocksentError(f"{path}: not a valid gzip file (corrupt or truncated)") from None
    except UnicodeDecodeError as exc:
        raise StocksentError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except csv.Error as exc:
        raise StocksentError(f"{path}: malformed CSV: {exc}") from None
    except OSError as exc:
        raise StocksentError(f"cannot read {path}: {exc.strerror or _first_line(exc)}") from None


def _rows(path: Path, columns: list[str]) -> Iterator[dict]:
    """The rows as dicts; `columns` are the ones the caller needs (Parquet reads only those)."""
    fmt = table_format(path)
    if fmt == "parquet":
        yield from _parquet_rows(path, columns)
        return
    with _open_text(path) as f:
        if fmt == "text":  # plain text: one message a line, read as whichever column is asked for
            yield from ({name: line.rstrip("\r\n") for name in columns} for line in f if line.strip())
            return
        yield from _json_rows(f, path) if fmt == "jsonl" else _csv_rows(f, path)


@contextmanager
def _open_text(path: Path) -> Iterator[io.TextIOBase]:
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    # utf-8-sig drops a byte-order mark; newline="" lets csv handle quoted newlines.
    with opener(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as f:
        yield f


def _csv_rows(f: io.TextIOBase, path: Path) -> Iterator[dict]:
    # strict: a quote left open is an error, not a field that swallows the rest of the file.
    reader = csv.DictReader(f, strict=True)
    try:
        if reader.fieldnames is None:
            raise StocksentError(f"{path}: the file is empty")
        yield from reader
    except csv.Error as exc:
        raise StocksentError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None


def _json_rows(f: io.TextIOBase, path: Path) -> Iterator[dict]:
    for number, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise StocksentError(f"{path}: line {number} is not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise StocksentError(f"{path}: line {number} is not a JSON object")
        yield row


def _parquet_rows(path: Path, columns: list[str]) -> Iterator[dict]:
    for batch in parquet_batches(path, columns):
        yield from batch.to_pylist()


def parquet_batches(path: Path, columns: Sequence[str], size: int | None = None,
                    row_groups: Sequence[int] | None = None) -> Iterator[Any]:
    """Arrow record batches of up to `size` rows of these columns (each one required) of a
    Parquet file, of all its row groups or of `row_groups`."""
    pa, _ = _import_pyarrow("reading")
    with _parquet_file(path) as parquet:
        try:
            wanted = list(dict.fromkeys(columns))
            _require_columns(path, wanted, parquet.schema_arrow.names)
            yield from parquet.iter_batches(batch_size=size or PARQUET_BATCH_ROWS, columns=wanted,
                                            row_groups=row_groups)
        except (pa.ArrowException, OSError):
            raise StocksentError(f"{path}: not a valid Parquet file (corrupt or truncated)") from None


@contextmanager
def _parquet_file(path: Path) -> Iterator[Any]:
    pa, pq = _import_pyarrow("reading")
    # Opened here, not by pyarrow, so that a missing file or a folder gets the usual message and
    # every error pyarrow raises means the bytes themselves are wrong.
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise StocksentError(f"{path}: the file is empty")
        try:
            # Without pre-buffering: with it, pyarrow keeps every row group's bytes it has read
            # until the file is closed, so memory grows with the file.
            parquet = pq.ParquetFile(f, pre_buffer=False)
        except (pa.ArrowException, OSError):
            raise StocksentError(f"{path}: not a valid Parquet file (corrupt or truncated)") from None
        yield parquet


def _import_pyarrow(verb: str) -> tuple[Any, Any]:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise StocksentError(f"{verb} Parquet needs pyarrow: pip install 'stocksent[parquet]'") from None
    return pyarrow, pyarrow.parquet


def _require_columns(path: Path, wanted: list[str], found: list) -> None:
    missing = [c for c in wanted if c not in found]
    if missing:
        raise StocksentError(f"{path}: missing column(s) {', '.join(map(repr, missing))} "
                             f"(found: {', '.join(repr(c) for c in found if c is not None) or 'none'})")


def _labelled(rows: list[dict], path: Path, cfg: DataConfig) -> tuple[list[str], list[int]]:
    if not rows:
        raise StocksentError(f"{path}: no rows")
    present = list(dict.fromkeys(key for row in rows[:1000] for key in row))
    _require_columns(path, [cfg.text_column, cfg.label_column], present)
    names = name_codes(cfg.negative_label, cfg.positive_label)
    texts, labels, unknown = [], [], set()
    for row in rows:
        raw_label = spelled(row.get(cfg.label_column))
        if raw_label not in names:
            unknown.add(raw_label)
            continue
        texts.append("" if row.get(cfg.text_column) is None else str(row[cfg.text_column]))
        labels.append(names[raw_label])
    if unknown:
        shown = ", ".join(repr(u) for u in sorted(unknown)[:10])
        raise UnknownLabels(f"{path}: unknown label value(s) {shown} in column {cfg.label_column!r}; "
                            f"expected {cfg.negative_label!r} or {cfg.positive_label!r}", sorted(unknown))
    return texts, labels


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@contextmanager
def open_table(dst: Path, columns: list[str], types: Any = None) -> Iterator[TableWriter]:
    """Write a table to `dst` chunk by chunk: CSV (.csv, .csv.gz), JSONL (.jsonl, .json, .ndjson,
    also .gz) or Parquet (.parquet, .pq) by its extension. The rows go to a temporary file beside
    `dst`, renamed over it only when the block ends without an exception: all or nothing.
    `types`: an Arrow schema of some columns' types in Parquet (e.g. the input's: a column empty
    in the first chunk has no type of its own); the others' come from the first chunk."""
    dst, columns = Path(dst), list(columns)
    fmt = table_format(dst)
    if fmt in (None, "text"):
        raise StocksentError(f"{dst}: cannot write this kind of file; name it .csv, .csv.gz, .jsonl, "
                             ".json, .ndjson (or those with .gz), .parquet or .pq")
    if not columns or len(set(columns)) != len(columns):
        raise StocksentError(f"{dst}: a table needs one or more distinct column names, got {columns}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_destination(dst) as tmp:
        writer = _WRITERS[fmt](tmp, columns, gzipped=dst.name.lower().endswith(".gz"))
        writer.types = types
        try:
            yield writer
        finally:
            writer.close()


class TableWriter:
    """What open_table yields: write(rows) appends one chunk, {column: values} of equal lengths."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self.types: Any = None  # Parquet's writer reads it

    def write(self, rows: dict[str, Any]) -> None:
        """Append one chunk of rows: every column, as equally long lists (or arrays)."""
        self._write(_checked_chunk(rows, self.columns))

    def _write(self, chunk: dict[str, list]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _checked_chunk(rows: dict[str, Any], columns: list[str]) -> dict[str, list]:
    if set(rows) != set(columns):
        raise StocksentError(f"a chunk must have exactly the columns {columns}, got {list(rows)}")
    # tolist(): numpy arrays and pandas Series become Python values, which csv and json write
    # exactly (a float as its shortest round-tripping repr).
    chunk = {c: rows[c].tolist() if hasattr(rows[c], "tolist") else list(rows[c]) for c in columns}
    lengths = {c: len(values) for c, values in chunk.items()}
    if len(set(lengths.values())) > 1:
        raise StocksentError(f"a chunk's columns must be equally long, got lengths {lengths}")
    return chunk


def _open_for_text(path: Path, gzipped: bool) -> io.TextIOBase:
    if gzipped:
        return gzip.open(path, "wt", encoding="utf-8", newline="")
    return open(path, "w", encoding="utf-8", newline="")


class _CsvWriter(TableWriter):
    def __init__(self, path: Path, columns: list[str], gzipped: bool) -> None:
        super().__init__(columns)
        self._file = _open_for_text(path, gzipped)
        self._csv = csv.writer(self._file)
        self._csv.writerow(columns)

    def _write(self, chunk: dict[str, list]) -> None:
        self._csv.writerows(zip(*chunk.values()))

    def close(self) -> None:
        self._file.close()


class _JsonlWriter(TableWriter):
    def __init__(self, path: Path, columns: list[str], gzipped: bool) -> None:
        super().__init__(columns)
        self._file = _open_for_text(path, gzipped)

    def _write(self, chunk: dict[str, list]) -> None:
        for values in zip(*chunk.values()):
            self._file.write(json.dumps(dict(zip(self.columns, values)), ensure_ascii=False, default=_json_value)
                             + "\n")

    def close(self) -> None:
        self._file.close()


def _json_value(value: Any) -> Any:
    """What JSON has no type for, as a Parquet input can hold: times and dates in ISO 8601,
    anything else (decimals, bytes) as its str()."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


class _ParquetWriter(TableWriter):
    """One row group per chunk; the first chunk fixes the column types."""

    def __init__(self, path: Path, columns: list[str], gzipped: bool) -> None:
        super().__init__(columns)
        self._pa, self._pq = _import_pyarrow("writing")
        self._path, self._writer = path, None

    def _write(self, chunk: dict[str, list]) -> None:
        schema = self._writer.schema if self._writer else self._first_schema(chunk)
        try:
            table = self._pa.table(chunk, schema=schema)
        except (self._pa.ArrowInvalid, self._pa.ArrowTypeError) as exc:
            raise StocksentError(f"a chunk does not fit the column types of the first: {_first_line(exc)}") from None
        if self._writer is None:
            self._writer = self._pq.ParquetWriter(self._path, table.schema)
        if table.num_rows:
            self._writer.write_table(table, row_group_size=table.num_rows)

    def _first_schema(self, chunk: dict[str, list]) -> Any:
        if self.types is None:
            return None
        given = {name: self.types.field(name) for name in self.types.names}
        return self._pa.schema([given.get(c) or self._pa.field(c, self._pa.array(values).type)
                                for c, values in chunk.items()])

    def close(self) -> None:
        if self._writer is None:  # no chunk came: still a readable file, with string columns
            schema = self._pa.schema([(c, self._pa.string()) for c in self.columns])
            self._writer = self._pq.ParquetWriter(self._path, schema)
        self._writer.close()


_WRITERS = {"csv": _CsvWriter, "jsonl": _JsonlWriter, "parquet": _ParquetWriter}
