import gzip
import json
from pathlib import Path

import pytest

from conftest import write_csv
from stocksent import data
from stocksent.config import DataConfig
from stocksent.errors import StocksentError


def test_reads_the_real_file_as_records(real_rows):
    texts, labels = data.read_messages(data.find_data(), DataConfig())
    assert len(texts) == 96967 == len(real_rows)  # more physical lines than records
    assert round(sum(labels) / len(labels), 3) == 0.554
    assert texts[0] == real_rows[0]["message"]


def test_find_order(tmp_path, monkeypatch):
    explicit, env, cache = (tmp_path / n for n in ("explicit.csv", "env.csv", "cache"))
    explicit.write_text("x"), env.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("STOCKSENT_DATA", str(env))
    assert data.find_data(explicit) == explicit
    assert data.find_data() == env
    monkeypatch.delenv("STOCKSENT_DATA")
    (cache / "stocksent").mkdir(parents=True)
    (cache / "stocksent" / data.DATA_FILENAME).write_text("x")
    assert data.find_data() == cache / "stocksent" / data.DATA_FILENAME
    (cache / "stocksent" / data.DATA_FILENAME).unlink()
    assert data.find_data().parent.name == "data"  # ../shared/data beside the checkout


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(StocksentError, match="not found"):
        data.find_data(tmp_path / "nope.csv")


def test_fetch_copies_and_verifies(tmp_path):
    path = data.fetch(str(data.find_data()), dest_dir=tmp_path)
    assert data.file_sha256(path) == data.DATA_SHA256
    assert [p.name for p in tmp_path.iterdir()] == [data.DATA_FILENAME]


def test_fetch_downloads_from_a_url(tmp_path):
    url = data.find_data().resolve().as_uri()  # file:// exercises the same download code
    path = data.fetch(dest_dir=tmp_path, url=url)
    assert data.file_sha256(path) == data.DATA_SHA256


def test_fetch_rejects_wrong_checksum_and_leaves_nothing(tmp_path):
    wrong = tmp_path / "wrong.gz"
    wrong.write_bytes(b"not the data")
    dest = tmp_path / "cache"
    dest.mkdir()
    with pytest.raises(StocksentError, match="checksum mismatch"):
        data.fetch(str(wrong), dest_dir=dest)
    assert list(dest.iterdir()) == []


def test_fetch_keeps_the_old_copy_when_the_new_one_is_bad(tmp_path):
    good = data.fetch(str(data.find_data()), dest_dir=tmp_path)
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"x")
    with pytest.raises(StocksentError):
        data.fetch(str(bad), dest_dir=tmp_path)
    assert data.file_sha256(good) == data.DATA_SHA256


def test_fetch_unreachable_url(tmp_path):
    with pytest.raises(StocksentError, match="download failed"):
        data.fetch(dest_dir=tmp_path, url=(tmp_path / "absent.gz").as_uri())


def test_other_formats_columns_and_labels(tmp_path, real_rows):
    rows = [{"text": r["message"], "mood": {"bullish": "Up", "bearish": "DOWN "}[r["sentiment"]]}
            for r in real_rows[:50]]
    cfg = DataConfig(text_column="text", label_column="mood", negative_label="down", positive_label="up")
    csv_texts, csv_labels = data.read_messages(write_csv(tmp_path / "a.csv", rows, ["text", "mood"]), cfg)
    jsonl = tmp_path / "a.jsonl.gz"
    with gzip.open(jsonl, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    assert data.read_messages(jsonl, cfg) == (csv_texts, csv_labels)
    assert csv_labels == [int(r["sentiment"] == "bullish") for r in real_rows[:50]]


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"\x1f\x8b\x08\x00garbage", "not a valid gzip"),
    (b"message,label\nhi,bullish\n", "missing column.*'sentiment'"),
    (b"message,sentiment\nhi,bullish\nho,neutral\nhu,\n", "unknown label.*'', 'neutral'"),
    (b"message,sentiment\n\xff\xfe bad,bullish\n", "not UTF-8"),
    (b"message,sentiment\n", "no rows"),
])
def test_bad_files_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(StocksentError, match=message) as info:
        data.read_messages(path, DataConfig())
    assert "\n" not in str(info.value)


def test_bad_jsonl_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"message": "a", "sentiment": "bullish"}\n{oops\n')
    with pytest.raises(StocksentError, match="line 2 is not valid JSON"):
        data.read_messages(path, DataConfig())


def test_byte_order_mark_is_ignored(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffmessage,sentiment\n$SPY up,bullish\n".encode())
    assert data.read_messages(path, DataConfig()) == (["$SPY up"], [1])
