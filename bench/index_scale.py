"""Time and peak memory of `stocksent index` over one million and ten million messages.

    python bench/index_scale.py --model models/default [--sizes 1000000 10000000] [--out runs/index_scale]

The input is the stream file (../shared/data/stream) repeated to each size, its times kept, as
Parquet in row groups of 100,000; each size is indexed per ticker and day in a fresh process
(bench/rss.py). Prints a table: messages, seconds, messages per second, peak RSS, and the rows
(ticker-days) written. Memory should not grow with the messages: the index keeps per-cell sums.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rss import run_measured  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
STREAM = DATA / "stream" / "stocktwits_stream_2018_2022.csv.gz"
ROW_GROUP = 100_000


def build(size: int, folder: Path) -> Path:
    """The stream repeated to `size` messages, as one Parquet file (made once)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / f"stream-{size}.parquet"
    if path.exists():
        return path
    stream = pd.read_csv(STREAM, keep_default_na=False)[["created_at", "ticker", "message", "sentiment"]]
    table = pa.Table.from_pandas(stream, preserve_index=False)
    with pq.ParquetWriter(path.with_suffix(".tmp"), table.schema) as writer:
        left = size
        while left > 0:
            part = table.slice(0, min(left, len(stream)))
            writer.write_table(part, row_group_size=ROW_GROUP)
            left -= part.num_rows
    path.with_suffix(".tmp").rename(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--out", default="runs/index_scale")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        source, index = build(size, out), out / f"index-{size}.csv"
        measured = run_measured(["index", args.model, "--input", str(source), "--ticker-column", "ticker",
                                 "--freq", "day", "--out", str(index)])
        rows.append({"messages": size, **measured, "messages_per_second": size / measured["seconds"],
                     "rows": len(pd.read_csv(index))})
        print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda x: f"{x:,.1f}"))
    (out / "index_scale.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
