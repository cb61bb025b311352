"""An archive of message files as a Dask DataFrame, and scored partitions written back as a
directory of Parquet files that appears whole or not at all.

A partition is a file, or, of a Parquet file with many row groups, row groups of about
PARTITION_ROWS rows together. Workers read it as the single-process commands read a file
(data/table.py), so a bad file fails with the same line, naming it; each partition carries its
file and first row (the frame's attrs) for the errors found later, when its rows are indexed.
Workers read and write the paths they are given: on a cluster, a file system they all share.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..data.store import UMASK, write_json
from ..data.table import (
    check_layout,
    parquet_row_groups,
    parquet_types,
    read_columns,
    require_columns,
    table_format,
)
from ..errors import StocksentError

PARTITION_ROWS = 200_000  # rows of a partition cut from one Parquet file's row groups
SOURCE, FIRST_ROW = "stocksent.source", "stocksent.first_row"  # a partition frame's attrs
PART = "part-{:05d}.parquet"
MARKER = "_stocksent.json"  # what marks a folder as scored parts, which a new output may replace


@dataclass(frozen=True)
class Piece:
    """What one partition reads: a file (its absolute path, for workers elsewhere, and as the
    user named it, for errors), or some of a Parquet file's row groups."""

    path: str
    named: str
    row_groups: tuple[int, ...] | None = None
    first_row: int = 1


@dataclass(frozen=True)
class Archive:
    """The files as a Dask DataFrame, and the Arrow types of its columns (None: each
    partition's own, as for JSONL)."""

    frame: Any  # dask.dataframe.DataFrame
    types: Any  # pyarrow.Schema | None


def read_archive(paths: Sequence[Path], required: list[str], optional: Sequence[str] | None = None) -> Archive:
    """The files' `required` columns and those of `optional` the first file has (None: all its
    columns, in its order, and every file must have them), one partition per piece (pieces).
    With `optional` given, the types are each partition's own."""
    import dask.dataframe as dd

    paths = [Path(p) for p in paths]
    found = require_columns(paths[0], required) or list(required)
    names = found if optional is None else [c for c in found if c in required or c in optional]
    types = None
    if optional is None:  # every column: every file must have the first's, checked before any job starts
        for path in paths[1:]:
            check_layout(path, names, paths[0])
        types = _types(paths, names)
    meta = _frame({name: [] for name in names}, types, "").iloc[:0]
    frame = dd.from_map(_read, pieces(paths), names=names, required=list(required), types=types,
                        meta=meta, enforce_metadata=False, label="read-messages")
    return Archive(frame, types)


def pieces(paths: Sequence[Path]) -> list[Piece]:
    """A piece per file, and per run of row groups of PARTITION_ROWS or more of a Parquet file."""
    found: list[Piece] = []
    for path in paths:
        where = (str(path.resolve()), str(path))
        if table_format(path) != "parquet":
            found.append(Piece(*where))
            continue
        groups, first, start = [], 1, 1
        for number, rows in enumerate(parquet_row_groups(path)):
            groups.append(number)
            first += rows
            if first - start >= PARTITION_ROWS:
                found.append(Piece(*where, tuple(groups), start))
                groups, start = [], first
        if groups:
            found.append(Piece(*where, tuple(groups), start))
        elif start == 1:
            found.append(Piece(*where))  # no row groups: reading it says so
    return found


def _types(paths: list[Path], names: list[str]) -> Any:
    import pyarrow as pa

    kind = table_format(paths[0])
    if kind == "parquet":
        given = parquet_types(paths, names)
        return pa.schema([given.field(n) if n in given.names else pa.field(n, pa.string()) for n in names])
    return None if kind == "jsonl" else pa.schema([pa.field(n, pa.string()) for n in names])  # CSV: text


def _read(piece: Piece, names: list[str], required: list[str], types: Any) -> pd.DataFrame:
    path = Path(piece.path)
    try:
        values: dict[str, list] = {name: [] for name in names}
        optional = [name for name in names if name not in required]
        for chunk in read_columns(path, required, optional, row_groups=piece.row_groups):
            rows = len(chunk[required[0]])
            for name in names:
                values[name].extend(chunk.get(name, [None] * rows))
        frame = _frame(values, types, piece.path)
    except StocksentError as exc:  # as the user named the file, as the single process says it
        raise StocksentError(str(exc).replace(piece.path, piece.named)) from None
    frame.attrs.update({SOURCE: piece.named, FIRST_ROW: piece.first_row})
    return frame


def _frame(values: dict[str, list], types: Any, where: str) -> pd.DataFrame:
    if types is None:
        return pd.DataFrame(values)
    import pyarrow as pa

    try:
        return pa.Table.from_pydict(values, schema=types).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise StocksentError(f"{where}: its values do not fit the first file's column types "
                             f"({str(exc).splitlines()[0]})") from None


def output_types(types: Any, added: list[str]) -> Any:
    """The Arrow types of scored partitions: the input's, then label (text) and probability
    (float64); None (each partition's own) where the input's are."""
    if types is None:
        return None
    import pyarrow as pa

    return pa.schema([*types, pa.field(added[0], pa.string()), pa.field(added[1], pa.float64())])


def write_partition(frame: pd.DataFrame, folder: str, number: int, types: Any) -> int:
    """Write a partition as folder/part-NNNNN.parquet (through a temporary name, so that a worker
    killed mid-write leaves no part that looks whole); its rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = Path(folder) / PART.format(number)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        table = pa.Table.from_pandas(frame, schema=types, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        where = frame.attrs.get(SOURCE, f"partition {number}")
        raise StocksentError(f"{where}: cannot write its scores ({str(exc).splitlines()[0]})") from None
    pq.write_table(table.replace_schema_metadata(None), partial)  # as the single process writes: no pandas notes
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    partial.replace(target)
    return len(frame)


@contextmanager
def output_folder(out: Path) -> Iterator[Path]:
    """A temporary folder beside `out` to write the parts into, put in `out`'s place when the
    block ends without an exception and removed when it does not. `out` must be new, or an
    earlier output (it holds MARKER), which it then replaces."""
    out = Path(out).absolute()
    if out.exists() and not (out / MARKER).is_file():
        raise StocksentError(f"{out} exists and is not an earlier output of stocksent's parts; name a new directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    work.chmod(0o777 & ~UMASK)  # as a folder made the usual way: workers of another user may write in it
    try:
        yield work
        for stray in work.iterdir():  # what an attempt killed mid-write left
            if not _is_part(stray.name):
                stray.unlink()
        write_json(work / MARKER, {"parts": len(list(work.iterdir()))})
        if out.exists():
            old = out.with_name(f".{out.name}.{uuid.uuid4().hex}.old")
            out.rename(old)
            work.rename(out)
            shutil.rmtree(old)
        else:
            work.rename(out)
    finally:
        for _ in range(3):  # a task still running when a job fails may write a part as it goes
            shutil.rmtree(work, ignore_errors=True)
            if not work.exists():
                break
            time.sleep(1)


def _is_part(name: str) -> bool:
    return name.startswith("part-") and name.endswith(".parquet")
