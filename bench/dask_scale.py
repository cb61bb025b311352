"""`stocksent predict` and `stocksent index` over one and ten million messages in partitioned
Parquet: one process against `--dask local:N`, with each process's peak memory, and Dask's
own cost per partition.

    python bench/dask_scale.py --model models/default [--sizes 1000000 10000000] [--workers 2]
                               [--out runs/dask_scale]

The archive is the stream file (../shared/data/stream) repeated to each size, its times kept, as
Parquet files of FILE_ROWS messages (made once): each file is a partition. Each command runs in a
fresh interpreter; a watcher reads the peak resident memory (VmHWM) of it and of every process it
starts until they end. Prints a table (seconds, messages per second, the command's peak RSS, the
largest worker's), checks that both ways wrote the same probabilities and the same index, and
times empty tasks on a LocalCluster: what the scheduler costs a partition before any work.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
STREAM = DATA / "stream" / "stocktwits_stream_2018_2022.csv.gz"
FILE_ROWS = 100_000
TRIMMED = {"MALLOC_TRIM_THRESHOLD_": "65536"}  # what Dask's nanny sets by default; its workers inherit it
EMPTY_TASKS = 500


def build(size: int, folder: Path) -> Path:
    """The stream repeated to `size` messages, as files of FILE_ROWS (made once)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    archive = folder / f"archive-{size}"
    if archive.exists():
        return archive
    stream = pd.read_csv(STREAM, keep_default_na=False)[["id", "created_at", "ticker", "message", "sentiment"]]
    table = pa.Table.from_pandas(stream.astype({"id": "int64"}), preserve_index=False)
    partial = archive.with_name(archive.name + ".tmp")
    partial.mkdir(parents=True, exist_ok=True)
    for number, start in enumerate(range(0, size, FILE_ROWS)):
        rows = min(FILE_ROWS, size - start)
        first = start % len(stream)
        pieces, left = [], rows
        while left:
            piece = table.slice(first, min(left, len(stream) - first))
            pieces.append(piece)
            left -= piece.num_rows
            first = 0
        pq.write_table(pa.concat_tables(pieces), partial / f"part-{number:05d}.parquet")
    partial.rename(archive)
    return archive


def measured(argv: list[str], env: dict | None = None) -> dict:
    """Seconds of `stocksent ARGV`, and the peak RSS (MB) of it and of the largest process it started."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "stocksent.cli", *argv], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    peaks: dict[int, float] = {}
    stop = threading.Event()

    def watch() -> None:
        root = psutil.Process(child.pid)
        while not stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            for process in tree:
                peak = _hwm_mb(process.pid)
                if peak is not None:
                    peaks[process.pid] = max(peaks.get(process.pid, 0.0), peak)
            stop.wait(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, err = child.communicate()
    seconds = time.perf_counter() - started
    stop.set()
    watcher.join()
    if child.returncode != 0:
        raise SystemExit(f"stocksent {' '.join(argv)} failed: {err.strip()[-500:]}")
    others = [mb for pid, mb in peaks.items() if pid != child.pid]
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peaks.get(child.pid, 0.0)),
            "worker_peak_rss_mb": round(max(others)) if others else None}


def _hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def same_predictions(single: Path, parts: Path) -> bool:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = ["id", "label", "prob_bullish"]
    whole = pq.read_table(single, columns=columns)
    split = pa.concat_tables(pq.read_table(p, columns=columns) for p in sorted(parts.glob("part-*.parquet")))
    return whole.equals(split)


def empty_task_seconds(workers: int) -> float:
    """Seconds per partition that the scheduler adds: EMPTY_TASKS tasks that do nothing, each
    run as a partition's task is (submitted, run on a worker, reported done), after a warm-up."""
    from dask import delayed

    from stocksent.dask.cluster import computed, connected

    with connected(f"local:{workers}") as client:
        client.run(lambda: None)
        nothing = [delayed(int, pure=False)(1) for _ in range(50)]
        computed(client, nothing, delayed(sum)(nothing))
        tasks = [delayed(int, pure=False)(i) for i in range(EMPTY_TASKS)]
        started = time.perf_counter()
        computed(client, tasks, delayed(sum)(tasks), lambda done: None)
        return (time.perf_counter() - started) / EMPTY_TASKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="runs/dask_scale")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dask = ["--dask", f"local:{args.workers}"]
    rows = []
    for size in args.sizes:
        archive = build(size, out)
        partitions = len(list(archive.glob("*.parquet")))
        runs = {
            ("predict", "one process"): ["predict", args.model, "--input", str(archive),
                                         "--output", str(out / f"scored-{size}.parquet")],
            ("predict", dask[1]): ["predict", args.model, "--input", str(archive),
                                   "--output", str(out / f"scored-{size}"), *dask],
            ("index", "one process"): ["index", args.model, "--input", str(archive), "--ticker-column", "ticker",
                                       "--freq", "day", "--out", str(out / f"index-{size}.csv")],
            ("index", dask[1]): ["index", args.model, "--input", str(archive), "--ticker-column", "ticker",
                                 "--freq", "day", "--out", str(out / f"index-{size}-dask.csv"), *dask],
        }
        if size == min(args.sizes):  # the workers as Dask's nanny starts them by default (cluster.UNTRIMMED)
            runs[("predict", f"{dask[1]}, Dask's malloc trimming")] = [*runs[("predict", dask[1])][:-3],
                                                                      str(out / f"scored-{size}-trimmed"), *dask]
        for (command, way), argv in runs.items():
            result = measured(argv, TRIMMED if "trimming" in way else None)
            rows.append({"command": command, "messages": size, "partitions": partitions, "way": way, **result,
                         "messages_per_second": round(size / result["seconds"])})
            print(json.dumps(rows[-1]), flush=True)
        same_index = (out / f"index-{size}.csv").read_bytes() == (out / f"index-{size}-dask.csv").read_bytes()
        same_scores = same_predictions(out / f"scored-{size}.parquet", out / f"scored-{size}")
        print(f"{size:,} messages: the same index both ways: {same_index}; the same labels and probabilities: "
              f"{same_scores}", flush=True)
        for row in rows:
            if row["messages"] == size:
                row["identical"] = same_index and same_scores
    overhead = empty_task_seconds(args.workers)
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"scheduler's cost per partition (an empty task, {EMPTY_TASKS} on local:{args.workers}): "
          f"{overhead * 1000:.1f} ms")
    (out / "dask_scale.json").write_text(json.dumps({"rows": rows, "empty_task_seconds": overhead}, indent=1))


if __name__ == "__main__":
    main()
