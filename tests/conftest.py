"""Shared fixtures: slices of the real StockTwits data set and a small trained model."""
from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from stocksent.data import find_data
from stocksent.errors import StocksentError

SLICE_ROWS = 3000


def _real_rows() -> list[dict]:
    try:
        path = find_data()
    except StocksentError:
        pytest.skip("the StockTwits data set is not available (run `stocksent data fetch`)")
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def real_rows() -> list[dict]:
    """Every record of the real data set, as read by a plain CSV parser."""
    return _real_rows()


@pytest.fixture(scope="session")
def data_slice(tmp_path_factory, real_rows) -> Path:
    """The first few thousand real messages as a gzipped CSV in the article's layout."""
    path = tmp_path_factory.mktemp("data") / "slice.csv.gz"
    write_csv(path, real_rows[:SLICE_ROWS], ["", "message", "sentiment"])
    return path


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


TINY = ["--embedding-dim", "16", "--lstm-sizes", "16", "8", "--batch-size", "64", "--epochs", "2",
        "--min-freq", "1", "--threads", "1"]


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, data_slice) -> Path:
    """A tiny model trained for two epochs on the real slice through the CLI."""
    from stocksent.cli import main

    out = tmp_path_factory.mktemp("models") / "tiny"
    assert main(["train", "--data", str(data_slice), "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture(scope="session")
def parquet_slice(tmp_path_factory, real_rows) -> Path:
    """The messages of data_slice as a Parquet file written by pyarrow, in row groups of 1,000."""
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    rows = real_rows[:SLICE_ROWS]
    path = tmp_path_factory.mktemp("data") / "slice.parquet"
    columns = {c: [r[c] for r in rows] for c in ("", "message", "sentiment")}
    pq.write_table(pa.table(columns), path, row_group_size=1000)
    return path
