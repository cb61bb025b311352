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


def _clean_rows(real_rows, n=300):
    return [{"message": r["message"], "sentiment": r["sentiment"]} for r in real_rows[:n]]


def _lines(rows):
    return ["message,sentiment"] + ['"{}",{}'.format(r["message"].replace('"', '""'), r["sentiment"]) for r in rows]


def _csv_bytes(rows, newline="\n", encoding="utf-8"):
    return (newline.join(_lines(rows)) + newline).encode(encoding)


def _latin1(rows):
    return [r for r in rows if r["message"].isascii()]


MALFORMED = {
    # name: (make bytes from clean rows, expected: None = read as the clean file, else error text)
    "utf-16": (lambda rows: _csv_bytes(rows, encoding="utf-16"), "not UTF-8"),
    "latin-1": (lambda rows: _csv_bytes([{"message": "café au lait $SPY", "sentiment": "bullish"}, *_latin1(rows)],
                                        encoding="latin-1"), "not UTF-8"),
    "byte-order mark": (lambda rows: b"\xef\xbb\xbf" + _csv_bytes(rows), None),
    "CRLF newlines": (lambda rows: _csv_bytes(rows, newline="\r\n"), None),
    "mixed newlines": (lambda rows: "".join(
        line + ("\n", "\r\n", "\r")[k % 3] for k, line in enumerate(_lines(rows))).encode(), None),
    "quote left open": (lambda rows: _csv_bytes(rows[:100]) + b'"never closed,bullish\n' + _csv_bytes(rows[100:]),
                        "malformed CSV at line"),
    "missing column": (lambda rows: b"message\n" + b"\n".join(r["message"].encode() for r in rows[:5]), "missing column"),
    "extra columns": (lambda rows: "\n".join(
        ["message,sentiment,extra", *(line + ",x,y" for line in _lines(rows)[1:])]).encode(), None),
    "empty labels": (lambda rows: _csv_bytes(rows) + b"no label here,\n", "unknown label value.*''"),
    "labels in other cases": (lambda rows: _csv_bytes(
        [{**r, "sentiment": f" {r['sentiment'].upper()} "} for r in rows]), None),
    "zero bytes": (lambda rows: b"", "empty"),
    "not gzip after a gzip header": (lambda rows: b"\x1f\x8b" + b"\x00" * 40, "not a valid gzip"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_files_read_or_one_line_error(tmp_path, real_rows, name, capsys):
    from stocksent.cli import main

    make, expected = MALFORMED[name]
    rows = _clean_rows(real_rows)
    path = tmp_path / "data.csv"
    path.write_bytes(make(rows))
    if expected is None:
        assert data.read_messages(path, DataConfig()) == (
            [r["message"] for r in rows], [int(r["sentiment"] == "bullish") for r in rows])
    else:
        with pytest.raises(StocksentError, match=expected) as info:
            data.read_messages(path, DataConfig())
        assert "\n" not in str(info.value)
    # The same file through the command line: exit 0, or 1 with one line; never a traceback.
    code = main(["baseline", "--data", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert (code, err) == (0, []) if expected is None else (code == 1 and len(err) == 1 and
                                                          err[0].startswith("stocksent: error:"))


def test_a_10_mb_message_is_read_and_cut(tmp_path, real_rows):
    from stocksent.config import PreprocessConfig
    from stocksent.corpus import load_corpus

    rows = _clean_rows(real_rows, 50)
    huge = "$SPY moon " * 1_000_000  # 10 MB in one field
    path = tmp_path / "huge.csv"
    path.write_bytes(_csv_bytes([{"message": huge, "sentiment": "bullish"}, *rows]))
    texts, labels = data.read_messages(path, DataConfig())
    assert len(texts[0]) == len(huge) and labels[0] == 1 and len(texts) == 51
    corpus = load_corpus(path, DataConfig(), PreprocessConfig(max_tokens=200))
    assert len(corpus.tokens[0]) == 200


def test_any_bytes_read_or_one_line_error(tmp_path):
    from hypothesis import strategies as st

    from test_preprocess import run_property

    paths = [tmp_path / "fuzz.csv", tmp_path / "fuzz.jsonl"]
    header = st.sampled_from([b"", b"message,sentiment\n", b"\xef\xbb\xbfmessage,sentiment\r\n", b"\x1f\x8b"])
    body = st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(
        [b"bullish", b"Bearish", b",", b'"', b"\n", b"\r", b"\r\n", b"\xff", b"$SPY", b'""', b"\x00"])), max_size=30)

    def check(parts):
        for path in paths:  # the same bytes read as CSV and as JSON lines
            path.write_bytes(parts[0] + b"".join(parts[1]))
            try:
                texts, labels = data.read_messages(path, DataConfig())
                assert len(texts) == len(labels) and set(labels) <= {0, 1}
            except StocksentError as exc:
                assert "\n" not in str(exc)
    run_property(st.tuples(header, body), check, examples=2000)
