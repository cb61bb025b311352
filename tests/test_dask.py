"""stocksent on Dask: a LocalCluster of two worker processes scores and indexes real stream
messages exactly as one process does, also when a worker is killed mid-job, and fails on bad
input with the single process's line, leaving nothing at the output."""
from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

import dask.dataframe as dd
import distributed
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import write_csv
from stocksent.classifier import SentimentClassifier
from stocksent.cli import main
from stocksent.dask import ModelFiles, archive, cluster, index, model, predict
from stocksent.dask.commands import predict_archive
from stocksent.errors import StocksentError

COLUMNS = ["id", "created_at", "ticker", "message", "sentiment"]


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.CRITICAL) as local, distributed.Client(local) as connected:
        yield connected


@pytest.fixture(scope="module")
def frame(stream_rows) -> pd.DataFrame:
    return pd.DataFrame(stream_rows[:1200], columns=COLUMNS)


@pytest.fixture
def archive_dir(stream_rows, tmp_path):
    """Three Parquet files of 400 stream messages, in row groups of 100."""
    folder = tmp_path / "archive"
    folder.mkdir()
    for i in range(3):
        rows = stream_rows[i * 400:(i + 1) * 400]
        table = pa.table({c: [r[c] for r in rows] for c in COLUMNS})
        pq.write_table(table, folder / f"day-{i}.parquet", row_group_size=100)
    return folder


def test_predict_on_two_workers_gives_the_single_process_probabilities_bit_for_bit(client, trained_model, frame):
    clf = SentimentClassifier.load(trained_model)
    scored = predict(dd.from_pandas(frame, npartitions=5), trained_model, batch_size=119).compute()
    assert list(scored.columns) == [*COLUMNS, "label", "prob_bullish"]
    assert scored[COLUMNS].astype(str).equals(frame.astype(str))
    expected = clf.positive_proba(frame.message.tolist())
    assert scored.prob_bullish.dtype == np.float64
    np.testing.assert_array_equal(scored.prob_bullish.to_numpy(), expected.astype(np.float64))
    assert scored.label.tolist() == clf.predict(frame.message.tolist()).tolist()


def test_index_on_two_workers_is_the_single_process_index(client, trained_model, frame):
    clf = SentimentClassifier.load(trained_model)
    single = clf.index(frame, freq="month", ticker_column="ticker")
    for partitions in (1, 7):
        spread = index(dd.from_pandas(frame, npartitions=partitions), clf, freq="month", ticker_column="ticker")
        pd.testing.assert_frame_equal(spread, single, check_exact=True)
    assert single["tagged"].sum() > 0 and len(single) > 10


def test_each_worker_loads_the_model_once_and_keeps_it_for_the_next_job(client, trained_model, frame):
    files = ModelFiles.of(trained_model)
    predict(dd.from_pandas(frame, npartitions=6), files).compute()
    first = client.run(lambda: {digest: id(p) for digest, p in model._loaded.items()})
    predict(dd.from_pandas(frame, npartitions=4), files).compute()
    assert client.run(lambda: {digest: id(p) for digest, p in model._loaded.items()}) == first
    kept = [list(loaded) for loaded in first.values()]
    assert [f"{files.digest}:auto"] in kept and all(held in ([], [f"{files.digest}:auto"]) for held in kept)


def test_the_command_on_dask_writes_the_parts_the_single_process_writes_in_one_file(trained_model, archive_dir,
                                                                                    tmp_path, capsys):
    out, single = tmp_path / "scored", tmp_path / "single.parquet"
    assert main(["predict", str(trained_model), "--input", str(archive_dir), "--output", str(single)]) == 0
    assert main(["predict", str(trained_model), "--input", str(archive_dir / "*.parquet"), "--output", str(out),
                 "--dask", "local:2", "--batch-size", "64"]) == 0
    assert "scored 1,200 messages into" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [archive.MARKER, *(f"part-0000{i}.parquet" for i in range(3))]
    parts = pa.concat_tables([pq.read_table(p) for p in sorted(out.glob("part-*.parquet"))])
    assert parts.equals(pq.read_table(single))
    index_dask, index_single = tmp_path / "index-dask.csv", tmp_path / "index.csv"
    for target, extra in ((index_dask, ["--dask", "local:2"]), (index_single, [])):
        assert main(["index", str(trained_model), "--input", str(archive_dir), "--ticker-column", "ticker",
                     "--freq", "week", "--out", str(target), *extra]) == 0
    assert index_dask.read_bytes() == index_single.read_bytes()


def test_a_worker_killed_mid_job_costs_a_retry_and_the_output_is_still_complete_and_the_same(
        trained_model, archive_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "PARTITION_ROWS", 100)  # twelve partitions, one per row group
    clf = SentimentClassifier.load(trained_model)
    sources = sorted(archive_dir.iterdir())
    with cluster.connected("local:2") as connected:
        calm = predict_archive(connected, sources, clf, tmp_path / "calm")
        pids = list(connected.run(os.getpid).values())
        killed = threading.Event()

        def kill_one(done, total):
            if done == 3 and not killed.is_set():
                os.kill(pids[0], signal.SIGKILL)
                killed.set()

        assert predict_archive(connected, sources, clf, tmp_path / "killed", progress=kill_one) == calm == 1200
        assert killed.is_set() and pids[0] not in connected.run(os.getpid).values()
    names = sorted(p.name for p in (tmp_path / "calm").iterdir())
    assert len(names) == 13 and sorted(p.name for p in (tmp_path / "killed").iterdir()) == names
    for name in names:
        if name != archive.MARKER:
            assert pq.read_table(tmp_path / "killed" / name).equals(pq.read_table(tmp_path / "calm" / name))


def test_a_bad_row_fails_on_dask_with_the_single_process_line_and_leaves_no_output(trained_model, archive_dir,
                                                                                    stream_rows, tmp_path, capsys,
                                                                                    monkeypatch):
    monkeypatch.setattr(archive, "PARTITION_ROWS", 100)
    bad = [dict(r) for r in stream_rows[:300]]
    bad[250]["created_at"] = "yesterday"
    write_csv(archive_dir / "late.csv", bad, COLUMNS)
    lines = []
    for extra in ([], ["--dask", "local:2"]):  # chunks of 100: the bad row is in a file's third
        assert main(["index", str(trained_model), "--input", str(archive_dir), "--out", str(tmp_path / "i.csv"),
                     "--batch-size", "100", *extra]) == 1
        lines.append(capsys.readouterr().err.strip().splitlines()[-1])
    assert lines[0] == lines[1] == (f"stocksent: error: {archive_dir / 'late.csv'}: row 251: time 'yesterday' is "
                                    "neither ISO 8601 nor epoch seconds")
    assert not (tmp_path / "i.csv").exists()
    (archive_dir / "late.csv").unlink()
    table = pq.read_table(archive_dir / "day-2.parquet")
    times = table.column("created_at").to_pylist()
    times[150] = ""
    pq.write_table(table.set_column(1, "created_at", pa.array(times)), archive_dir / "day-2.parquet",
                   row_group_size=100)
    for extra in ([], ["--dask", "local:2"]):
        assert main(["index", str(trained_model), "--input", str(archive_dir), "--out", str(tmp_path / "i.csv"),
                     *extra]) == 1
        assert capsys.readouterr().err.strip().endswith(f"{archive_dir / 'day-2.parquet'}: row 151 has no time")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive"]


def test_the_output_folder_replaces_an_earlier_output_and_nothing_else(tmp_path):
    out = tmp_path / "scored"
    with pytest.raises(RuntimeError), archive.output_folder(out) as folder:
        (folder / "part-00000.parquet").write_bytes(b"half")
        raise RuntimeError("a worker failed")
    assert list(tmp_path.iterdir()) == []
    for content in (b"one", b"two"):
        with archive.output_folder(out) as folder:
            (folder / "part-00000.parquet").write_bytes(content)
            (folder / ".part-00001.parquet.0a1b.tmp").write_bytes(b"a killed attempt's")
        assert sorted(p.name for p in out.iterdir()) == [archive.MARKER, "part-00000.parquet"]
        assert (out / "part-00000.parquet").read_bytes() == content
    assert [p.name for p in tmp_path.iterdir()] == ["scored"]
    theirs = tmp_path / "theirs"  # another tool's parts, named as ours: never replaced
    theirs.mkdir()
    (theirs / "part-00000.parquet").write_bytes(b"their data")
    with pytest.raises(StocksentError, match="theirs exists and is not an earlier output of stocksent's parts"):
        with archive.output_folder(theirs):
            pass
    assert (theirs / "part-00000.parquet").read_bytes() == b"their data"


def test_pieces_cut_a_parquet_file_at_row_groups_and_number_rows_from_the_file_s_start(archive_dir, monkeypatch):
    monkeypatch.setattr(archive, "PARTITION_ROWS", 250)
    monkeypatch.chdir(archive_dir.parent)  # workers elsewhere get the absolute path; errors name it as given
    where = (str(archive_dir / "day-0.parquet"), "archive/day-0.parquet")
    assert archive.pieces([Path("archive/day-0.parquet")]) == [archive.Piece(*where, (0, 1, 2), 1),
                                                               archive.Piece(*where, (3,), 301)]


def test_messages_without_a_ticker_form_the_none_row_on_dask_as_in_one_process(client, trained_model, frame):
    clf = SentimentClassifier.load(trained_model)
    gaps = frame.assign(ticker=[None if i % 7 == 0 else t for i, t in enumerate(frame.ticker)])
    single = clf.index(gaps, freq="month", ticker_column="ticker")
    assert "(none)" in set(single.ticker)
    spread = index(dd.from_pandas(gaps, npartitions=3), clf, freq="month", ticker_column="ticker")
    pd.testing.assert_frame_equal(spread, single, check_exact=True)


def test_files_whose_column_is_empty_in_one_are_scored_alike_both_ways(trained_model, stream_rows, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, tags in enumerate(([None] * 50, [r["sentiment"] or None for r in stream_rows[50:100]])):
        rows = stream_rows[i * 50:(i + 1) * 50]
        pq.write_table(pa.table({"message": [r["message"] for r in rows], "sentiment": tags}), folder / f"{i}.parquet")
    assert pq.read_schema(folder / "0.parquet").field("sentiment").type == pa.null()
    assert main(["predict", str(trained_model), "--input", str(folder), "--output", str(tmp_path / "one.parquet")]) == 0
    assert main(["predict", str(trained_model), "--input", str(folder), "--output", str(tmp_path / "parts"),
                 "--dask", "local:1"]) == 0
    parts = pa.concat_tables(pq.read_table(p) for p in sorted((tmp_path / "parts").glob("part-*.parquet")))
    assert parts.equals(pq.read_table(tmp_path / "one.parquet")) and parts.schema.field("sentiment").type == pa.string()


def test_a_missing_text_column_is_the_single_process_line_before_any_job(trained_model, archive_dir, tmp_path,
                                                                         capsys):
    lines = []
    for extra in ([], ["--dask", "local:1"]):
        assert main(["predict", str(trained_model), "--input", str(archive_dir), "--text-column", "body",
                     "--output", str(tmp_path / "o.parquet"), *extra]) == 1
        lines.append(capsys.readouterr().err.strip().splitlines()[-1])
    assert lines[0] == lines[1] and lines[0].startswith(f"stocksent: error: {archive_dir / 'day-0.parquet'}: "
                                                        "missing column(s) 'body' (found: 'id', ")


@pytest.mark.parametrize("argv, message", [
    (["--dask", "local:0"], "give local:N with N from 1 to 64 worker processes"),
    (["--dask", "somewhere"], "give a scheduler's address"),
    (["--dask", "local:1", "--workers", "2"], "leave out --workers and --backend"),
])
def test_bad_dask_settings_are_one_line(trained_model, archive_dir, tmp_path, capsys, argv, message):
    argv = ["predict", str(trained_model), "--input", str(archive_dir), "--output", str(tmp_path / "o"), *argv]
    assert main(argv) == 1
    assert message in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_an_unreachable_scheduler_is_one_line(monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 1)
    with pytest.raises(StocksentError, match="^cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        with cluster.connected("tcp://127.0.0.1:9"):
            pass
