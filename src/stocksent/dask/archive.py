"""An archive of message files as a Dask DataFrame, and scored partitions written back as a
directory of Parquet files that appears whole or not at all.

A partition is a file, or, of a Parquet file with many row groups, row groups of about
PARTITION_ROWS rows together. Workers read it as the single-process commands read a file
(data/table.py), so a bad file fails with the same line, naming it; each partition carries its
file and first row (the frame's attrs) for the errors found later, when its rows are indexed.
Workers read and write the paths they are given: on a cluster, a file system they all share.
"""
from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..data.table import check_layout, parquet_row_groups, parquet_schema, read_columns, table_columns
from ..errors import StocksentError

PARTITION_ROWS = 200_000  # rows of a partition cut from one Parquet file's row groups
SOURCE, FIRST_ROW = "stocksent.source", "stocksent.first_row"  # a partition frame's attrs
PART = "part-{:05d}.parquet"


@dataclass(frozen=True)
class Piece:
    """What one partition reads: a file, or some of a Parquet file's row groups."""

    path: str
    row_groups: tuple[int, ...] | None = None
    first_row: int = 1


@dataclass(frozen=True)
class Archive:
    """The files as a Dask DataFrame, and the Arrow types of their columns (None for JSONL,
    whose types are each value's own)."""

    frame: Any  # dask.dataframe.DataFrame
    types: Any  # pyarrow.Schema | None


def read_archive(paths: Sequence[Path], required: list[str], optional: Sequence[str] | None = None) -> Archive:
    """The files' `required` columns and those of `optional` the first file has (None: all its
    columns), one partition per piece (pieces)."""
    import dask.dataframe as dd

    paths = [Path(p) for p in paths]
    found = table_columns(paths[0]) or list(required)
    names = list(dict.fromkeys([*required, *(c for c in (found if optional is None else optional) if c in found)]))
    if optional is None:
        names = [c for c in found if c in names] + [c for c in names if c not in found]  # the file's order
    types = _types(paths[0], names)
    meta = _frame({name: [] for name in names}, types).iloc[:0]
    first = str(paths[0]) if optional is None else None  # every column: every file must have the first's
    frame = dd.from_map(_read, pieces(paths), names=names, required=list(required), types=types, first=first,
                        meta=meta, enforce_metadata=False, label="read-messages")
    return Archive(frame, types)


def pieces(paths: Sequence[Path]) -> list[Piece]:
    """A piece per file, and per run of row groups of PARTITION_ROWS or more of a Parquet file."""
    found: list[Piece] = []
    for path in paths:
        if not _parquet(path):
            found.append(Piece(str(path)))
            continue
        groups, first, start = [], 1, 1
        for number, rows in enumerate(parquet_row_groups(path)):
            groups.append(number)
            first += rows
            if first - start >= PARTITION_ROWS:
                found.append(Piece(str(path), tuple(groups), start))
                groups, start = [], first
        if groups:
            found.append(Piece(str(path), tuple(groups), start))
        elif start == 1:
            found.append(Piece(str(path)))  # no row groups: reading it says so
    return found


def _parquet(path: Path) -> bool:
    return path.name.lower().endswith((".parquet", ".pq"))


def _types(path: Path, names: list[str]) -> Any:
    import pyarrow as pa

    if _parquet(path):
        given = parquet_schema(path, names)
        return pa.schema([given.field(n) if n in given.names else pa.field(n, pa.string()) for n in names])
    if path.name.lower().removesuffix(".gz").endswith((".jsonl", ".json", ".ndjson")):
        return None
    return pa.schema([pa.field(n, pa.string()) for n in names])  # CSV and text: strings


def _read(piece: Piece, names: list[str], required: list[str], types: Any, first: str | None) -> pd.DataFrame:
    path = Path(piece.path)
    if first is not None:
        check_layout(path, names, Path(first))
    optional = [name for name in names if name not in required]
    values: dict[str, list] = {name: [] for name in names}
    for chunk in read_columns(path, required, optional, row_groups=piece.row_groups):
        rows = len(chunk[required[0]])
        for name in names:
            values[name].extend(chunk.get(name, [None] * rows))
    frame = _frame(values, types)
    frame.attrs.update({SOURCE: str(path), FIRST_ROW: piece.first_row})
    return frame


def _frame(values: dict[str, list], types: Any) -> pd.DataFrame:
    if types is None:
        return pd.DataFrame(values)
    import pyarrow as pa

    return pa.Table.from_pydict(values, schema=types).to_pandas()


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
    table = pa.Table.from_pandas(frame, schema=types, preserve_index=False)
    pq.write_table(table.replace_schema_metadata(None), partial)  # as the single process writes: no pandas notes
    partial.replace(target)
    return len(frame)


@contextmanager
def output_folder(out: Path) -> Iterator[Path]:
    """A temporary folder beside `out` to write the parts into, put in `out`'s place when the
    block ends without an exception and removed when it does not. `out` must be new, or hold only
    the parts of an earlier output, which it then replaces."""
    out = Path(out)
    if out.exists() and not (out.is_dir() and all(p.is_file() and _is_part(p.name) for p in out.iterdir())):
        raise StocksentError(f"{out} exists and is not an earlier output of scored parts; name a new directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield work
        for stray in work.iterdir():  # what an attempt killed mid-write left
            if not _is_part(stray.name):
                stray.unlink()
        if out.exists():
            old = out.with_name(f".{out.name}.{uuid.uuid4().hex}.old")
            out.rename(old)
            work.rename(out)
            shutil.rmtree(old)
        else:
            work.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _is_part(name: str) -> bool:
    return name.startswith("part-") and name.endswith(".parquet")
