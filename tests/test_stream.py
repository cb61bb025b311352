"""Scoring a stream of messages in chunks: the chunks, their sizes and order, and predict_file's
table, with a stand-in model whose every score is known and with the tiny trained model."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import write_csv
from stocksent.classifier import SentimentClassifier
from stocksent.errors import StocksentError
from stocksent.scoring.metrics import sigmoid
from stocksent.scoring.stream import MAX_BATCH, MAX_WORKERS, chunks, predict_file, scored_chunks


class KnownScores:
    """Stands in for a model: a message's logit is -1, 0 or 1 by its length, so that a third of
    the messages score exactly 0.5."""

    labels = ("bearish", "bullish")

    def logits(self, texts: list[str]) -> np.ndarray:
        return np.array([len(text) % 3 - 1 for text in texts], dtype=np.float32)

    def positive_proba(self, texts: list[str]) -> np.ndarray:
        return sigmoid(self.logits(texts))


@pytest.fixture(scope="module")
def messages(real_rows) -> list[str]:
    return [r["message"] for r in real_rows[:250]]


def test_chunks_are_consecutive_and_only_the_last_is_shorter(messages):
    texts = messages[:10]
    for size, sizes in ((1, [1] * 10), (3, [3, 3, 3, 1]), (4, [4, 4, 2]), (5, [5, 5]), (10, [10]), (11, [10])):
        got = list(chunks(iter(texts), size))
        assert [len(chunk) for chunk in got] == sizes and [t for chunk in got for t in chunk] == texts
    assert list(chunks(iter([]), 3)) == []


def _echo(model, texts):
    return model, list(texts)


def test_scored_chunks_gives_each_chunk_s_size_and_work_in_input_order(messages):
    texts = messages[:10]
    got = list(scored_chunks("the model", iter(texts), batch_size=4, work=_echo))
    assert got == [(4, ("the model", texts[:4])), (4, ("the model", texts[4:8])), (2, ("the model", texts[8:]))]


@pytest.mark.parametrize("batch_size, workers, message", [
    (0, 1, "batch_size must be between 1 and 1,000,000"),
    (-5, 1, "batch_size must be between 1 and 1,000,000"),
    (MAX_BATCH + 1, 1, "batch_size must be between 1 and 1,000,000"),
    (8, 0, f"workers must be between 1 and {MAX_WORKERS}"),
    (8, MAX_WORKERS + 1, f"workers must be between 1 and {MAX_WORKERS}"),
], ids=["batch-0", "batch-negative", "batch-too-large", "workers-0", "workers-too-many"])
def test_batch_size_and_workers_out_of_range_are_refused(batch_size, workers, message):
    with pytest.raises(StocksentError, match=f"^{message}$"):
        list(scored_chunks(KnownScores(), iter(["$SPY"]), batch_size=batch_size, workers=workers, work=_echo))


def test_predict_file_writes_every_message_with_its_label_and_probability(messages, real_rows, tmp_path):
    src = write_csv(tmp_path / "in.csv", real_rows[:250], ["message"])
    dst, heard = tmp_path / "out.csv", []
    assert predict_file(KnownScores(), src, dst, batch_size=64, progress=heard.append) == 250
    assert heard == [64, 64, 64, 58]
    with open(dst, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["message"] for r in rows] == messages
    expected = KnownScores().positive_proba(messages)
    assert [float(r["prob_bullish"]) for r in rows] == expected.tolist()
    assert [r["label"] for r in rows] == ["bullish" if p >= 0.5 else "bearish" for p in expected]
    halves = [r["label"] for r, p in zip(rows, expected) if p == 0.5]
    assert len(halves) > 50 and set(halves) == {"bullish"}  # as predict and the server label p = 0.5


def test_predict_file_refuses_to_write_over_its_input_however_the_path_is_spelt(real_rows, tmp_path, monkeypatch):
    src = write_csv(tmp_path / "in.csv", real_rows[:20], ["message"])
    before = src.read_bytes()
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    for dst in (src, tmp_path / "sub" / ".." / "in.csv", Path("in.csv")):
        with pytest.raises(StocksentError, match="the output would overwrite the input; write elsewhere"):
            predict_file(KnownScores(), src, dst)
    assert src.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "sub"]


def test_the_tiny_model_scores_a_file_as_it_scores_the_messages(trained_model, real_rows, tmp_path):
    clf = SentimentClassifier.load(trained_model)
    texts = [r["message"] for r in real_rows[3000:3300]]
    src = write_csv(tmp_path / "in.csv", real_rows[3000:3300], ["message"])
    probs = clf.positive_proba(texts)
    for workers in (1, 2):
        dst = tmp_path / f"out-{workers}.jsonl"
        assert clf.predict_file(src, dst, batch_size=64, workers=workers) == 300
        rows = [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]
        assert [r["message"] for r in rows] == texts
        np.testing.assert_allclose([r["prob_bullish"] for r in rows], probs, atol=1e-6)
        assert [r["label"] for r in rows] == [str(label) for label in clf.predict(texts)]


def test_predict_file_keeps_every_column_of_the_input_in_its_order(stream_rows, tmp_path):
    columns = ["id", "created_at", "ticker", "message", "sentiment"]
    src = write_csv(tmp_path / "in.csv", stream_rows[:300], columns)
    assert predict_file(KnownScores(), src, tmp_path / "out.csv", batch_size=64) == 300
    with open(tmp_path / "out.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [*columns, "label", "prob_bullish"]
    assert [{c: r[c] for c in columns} for r in rows] == [{c: r[c] for c in columns} for r in stream_rows[:300]]


def test_a_parquet_column_empty_in_the_first_chunk_keeps_the_input_s_type(stream_rows, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    tags = [None] * 200 + [r["sentiment"] or None for r in stream_rows[200:400]]
    assert any(tags[200:])
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"message": [r["message"] for r in stream_rows[:400]], "sentiment": tags},
                            schema=pa.schema([("message", pa.string()), ("sentiment", pa.string())])), src)
    assert predict_file(KnownScores(), src, tmp_path / "out.parquet", batch_size=64) == 400
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.schema.field("sentiment").type == pa.string() and out.column("sentiment").to_pylist() == tags


def test_predict_file_scores_several_files_in_order_and_refuses_one_of_another_layout(stream_rows, tmp_path):
    columns = ["id", "ticker", "message"]
    sources = [write_csv(tmp_path / f"in-{i}.csv", stream_rows[i * 70:(i + 1) * 70], columns) for i in range(3)]
    assert predict_file(KnownScores(), sources, tmp_path / "out.jsonl", batch_size=64) == 210
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [r["id"] for r in stream_rows[:210]]
    other = write_csv(tmp_path / "other.csv", stream_rows[:5], ["id", "message"])
    with pytest.raises(StocksentError, match=r"other.csv: columns \['id', 'message'\] differ from those of "):
        predict_file(KnownScores(), [sources[0], other], tmp_path / "out2.jsonl")
    assert not (tmp_path / "out2.jsonl").exists()


def test_an_input_with_a_label_column_is_refused_before_anything_is_written(stream_rows, tmp_path):
    src = write_csv(tmp_path / "in.csv", [{**r, "label": "x"} for r in stream_rows[:5]], ["message", "label"])
    with pytest.raises(StocksentError, match=r"in.csv already has column\(s\) 'label', which the scores would "
                                             r"replace; rename them first$"):
        predict_file(KnownScores(), src, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_times_of_a_parquet_input_are_written_to_jsonl_in_iso_8601(stream_rows, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import datetime

    import pyarrow.parquet as pq

    times = [datetime.datetime(2021, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)] * 3
    pq.write_table(pa.table({"created_at": times, "message": [r["message"] for r in stream_rows[:3]]}),
                   tmp_path / "in.parquet")
    assert predict_file(KnownScores(), tmp_path / "in.parquet", tmp_path / "out.jsonl") == 3
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["created_at"] for r in rows] == ["2021-01-02T03:04:05+00:00"] * 3
