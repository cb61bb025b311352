import gzip
import json
import sys

import pytest

from conftest import SLICE_ROWS, write_csv
from stocksent.config import DataConfig
from stocksent.data import table
from stocksent.data.dataset import find_data
from stocksent.errors import StocksentError


def _write_parquet(path, columns: dict, **options):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    pq.write_table(pa.table(columns), path, **options)
    return path


def test_reads_the_real_file_as_records(real_rows):
    texts, labels = table.read_messages(find_data(), DataConfig())
    assert len(texts) == 96967 == len(real_rows)  # more physical lines than records
    assert round(sum(labels) / len(labels), 3) == 0.554
    assert texts[0] == real_rows[0]["message"]


def test_other_formats_columns_and_labels(tmp_path, real_rows):
    rows = [{"text": r["message"], "mood": {"bullish": "Up", "bearish": "DOWN "}[r["sentiment"]]}
            for r in real_rows[:50]]
    cfg = DataConfig(text_column="text", label_column="mood", negative_label="down", positive_label="up")
    csv_texts, csv_labels = table.read_messages(write_csv(tmp_path / "a.csv", rows, ["text", "mood"]), cfg)
    jsonl = tmp_path / "a.jsonl.gz"
    with gzip.open(jsonl, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    assert table.read_messages(jsonl, cfg) == (csv_texts, csv_labels)
    parquet = _write_parquet(tmp_path / "a.parquet", {c: [r[c] for r in rows] for c in ("text", "mood")})
    assert table.read_messages(parquet, cfg) == (csv_texts, csv_labels)
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
        table.read_messages(path, DataConfig())
    assert "\n" not in str(info.value)


def test_bad_jsonl_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"message": "a", "sentiment": "bullish"}\n{oops\n')
    with pytest.raises(StocksentError, match="line 2 is not valid JSON"):
        table.read_messages(path, DataConfig())


def test_byte_order_mark_is_ignored(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffmessage,sentiment\n$SPY up,bullish\n".encode())
    assert table.read_messages(path, DataConfig()) == (["$SPY up"], [1])


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
    "missing column": (lambda rows: b"message\n" + b"\n".join(r["message"].encode() for r in rows[:5]),
                       "missing column"),
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
        assert table.read_messages(path, DataConfig()) == (
            [r["message"] for r in rows], [int(r["sentiment"] == "bullish") for r in rows])
    else:
        with pytest.raises(StocksentError, match=expected) as info:
            table.read_messages(path, DataConfig())
        assert "\n" not in str(info.value)
    # The same file through the command line: exit 0, or 1 with one line; never a traceback.
    code = main(["baseline", "--data", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert (code, err) == (0, []) if expected is None else (code == 1 and len(err) == 1 and
                                                          err[0].startswith("stocksent: error:"))


def test_a_10_mb_message_is_read_and_cut(tmp_path, real_rows):
    from stocksent.config import PreprocessConfig
    from stocksent.data.corpus import load_corpus

    rows = _clean_rows(real_rows, 50)
    huge = "$SPY moon " * 1_000_000  # 10 MB in one field
    path = tmp_path / "huge.csv"
    path.write_bytes(_csv_bytes([{"message": huge, "sentiment": "bullish"}, *rows]))
    texts, labels = table.read_messages(path, DataConfig())
    assert len(texts[0]) == len(huge) and labels[0] == 1 and len(texts) == 51
    corpus = load_corpus(path, DataConfig(), PreprocessConfig(max_tokens=200))
    assert len(corpus.tokens[0]) == 200


def test_any_bytes_read_or_one_line_error(tmp_path):
    from hypothesis import strategies as st

    from test_preprocess import run_property

    paths = [tmp_path / "fuzz.csv", tmp_path / "fuzz.jsonl", tmp_path / "fuzz.parquet"]
    header = st.sampled_from([b"", b"message,sentiment\n", b"\xef\xbb\xbfmessage,sentiment\r\n", b"\x1f\x8b"])
    body = st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(
        [b"bullish", b"Bearish", b",", b'"', b"\n", b"\r", b"\r\n", b"\xff", b"$SPY", b'""', b"\x00"])), max_size=30)

    def check(parts):
        for path in paths:  # the same bytes read as CSV, JSON lines and Parquet
            path.write_bytes(parts[0] + b"".join(parts[1]))
            try:
                texts, labels = table.read_messages(path, DataConfig())
                assert len(texts) == len(labels) and set(labels) <= {0, 1}
            except StocksentError as exc:
                assert "\n" not in str(exc)
    run_property(st.tuples(header, body), check, examples=2000)


def test_parquet_reads_as_the_csv(data_slice, parquet_slice):
    texts, labels = table.read_messages(parquet_slice, DataConfig())
    assert (texts, labels) == table.read_messages(data_slice, DataConfig())
    assert len(texts) == SLICE_ROWS and 0 < sum(labels) < SLICE_ROWS


def test_read_texts_streams_parquet_in_bounded_batches(parquet_slice, real_rows, monkeypatch):
    import pyarrow.parquet as pq

    seen, iter_batches = [], pq.ParquetFile.iter_batches

    def spy(self, batch_size, columns, row_groups):
        for batch in iter_batches(self, batch_size=batch_size, columns=columns, row_groups=row_groups):
            seen.append((batch.num_rows, batch.schema.names))
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    monkeypatch.setattr(table, "PARQUET_BATCH_ROWS", 256)
    texts = table.read_texts(parquet_slice, "message")
    assert next(texts) == real_rows[0]["message"] and len(seen) == 1  # one batch read, not the file
    assert [next(texts), *texts] == [r["message"] for r in real_rows[1:SLICE_ROWS]]
    assert max(n for n, _ in seen) <= 256 and {tuple(names) for _, names in seen} == {("message",)}


@pytest.mark.parametrize("kind", ["bool", "int"])
def test_parquet_labels_may_be_booleans_or_integers(tmp_path, real_rows, kind):
    rows = real_rows[:200]
    bullish = [r["sentiment"] == "bullish" for r in rows]
    label = bullish if kind == "bool" else [int(b) for b in bullish]
    path = _write_parquet(tmp_path / "a.pq", {"message": [r["message"] for r in rows], "sentiment": label})
    names = ("False", "TRUE") if kind == "bool" else ("0", "1")
    cfg = DataConfig(negative_label=names[0], positive_label=names[1])
    assert table.read_messages(path, cfg) == ([r["message"] for r in rows], [int(b) for b in bullish])


def _valid_parquet_bytes(tmp_path, real_rows):
    path = _write_parquet(tmp_path / "valid.parquet", {"message": [r["message"] for r in real_rows[:2000]],
                                                        "sentiment": [r["sentiment"] for r in real_rows[:2000]]},
                          row_group_size=500)
    return path.read_bytes()


PARQUET_ERRORS = {
    # name: (make the file's bytes, expected error)
    "csv bytes": (lambda valid: b"message,sentiment\nhi,bullish\n", "not a valid Parquet file"),
    "zero bytes": (lambda valid: b"", "the file is empty"),
    "truncated": (lambda valid: valid[: len(valid) // 2], "not a valid Parquet file"),
    "zeroed middle": (lambda valid: valid[:200] + bytes(2000) + valid[2200:], "not a valid Parquet file"),
}


@pytest.mark.parametrize("name", list(PARQUET_ERRORS))
def test_bad_parquet_bytes_give_one_line_errors(tmp_path, real_rows, name):
    make, message = PARQUET_ERRORS[name]
    path = tmp_path / "bad.parquet"
    path.write_bytes(make(_valid_parquet_bytes(tmp_path, real_rows)))
    for read in (lambda: table.read_messages(path, DataConfig()), lambda: list(table.read_texts(path, "message"))):
        with pytest.raises(StocksentError, match=message) as info:
            read()
        assert "\n" not in str(info.value)


def test_parquet_missing_column_names_the_ones_found(tmp_path, real_rows):
    path = _write_parquet(tmp_path / "a.parquet", {"text": [r["message"] for r in real_rows[:10]],
                                                    "mood": [r["sentiment"] for r in real_rows[:10]]})
    expected = r"missing column\(s\) 'message'.* \(found: 'text', 'mood'\)$"
    for read in (lambda: table.read_messages(path, DataConfig()), lambda: list(table.read_texts(path, "message"))):
        with pytest.raises(StocksentError, match=expected):
            read()


def test_parquet_unknown_labels_and_no_rows(tmp_path):
    path = _write_parquet(tmp_path / "a.parquet",
                          {"message": ["up", "flat", "?"], "sentiment": ["bullish", "Neutral", None]})
    with pytest.raises(StocksentError, match=r"unknown label value\(s\) '', 'neutral' in column 'sentiment'"):
        table.read_messages(path, DataConfig())
    empty = _write_parquet(tmp_path / "empty.parquet", {"message": [], "sentiment": []})
    with pytest.raises(StocksentError, match="no rows"):
        table.read_messages(empty, DataConfig())
    with pytest.raises(StocksentError, match="data file not found"):
        table.read_messages(tmp_path / "absent.parquet", DataConfig())


WRITABLE = ["out.csv", "out.csv.gz", "out.jsonl", "out.json", "out.ndjson.gz", "out.parquet", "out.pq"]


def _read_with_pandas(path):
    pd = pytest.importorskip("pandas")
    name = path.name.removesuffix(".gz")
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if name.endswith(".csv"):
        return pd.read_csv(path, keep_default_na=False)
    return pd.read_json(path, lines=True, precise_float=True, dtype=False)


@pytest.mark.parametrize("name", WRITABLE)
def test_writer_round_trips_each_format(tmp_path, real_rows, name):
    texts = [r["message"] for r in real_rows[:300]]
    scores = [(k + 1) / 7 + 1e-13 * k for k in range(300)]  # digits a short float format would drop
    dst = tmp_path / name
    with table.open_table(dst, ["text", "score", "id"]) as out:
        out.write({"text": texts[:180], "score": scores[:180], "id": list(range(180))})
        out.write({"text": texts[180:], "score": scores[180:], "id": list(range(180, 300))})
    assert list(table.read_texts(dst, "text")) == texts
    frame = _read_with_pandas(dst)
    assert list(frame.columns) == ["text", "score", "id"]
    assert frame["text"].tolist() == texts and frame["score"].tolist() == scores
    assert frame["id"].tolist() == list(range(300))
    if name.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        assert [pq.ParquetFile(dst).metadata.row_group(k).num_rows for k in range(2)] == [180, 120]


@pytest.mark.parametrize("name", WRITABLE)
def test_a_table_with_no_chunks_reads_as_empty(tmp_path, name):
    with table.open_table(tmp_path / name, ["text"]):
        pass
    assert list(table.read_texts(tmp_path / name, "text")) == []


def test_writer_takes_numpy_arrays(tmp_path):
    np = pytest.importorskip("numpy")
    probabilities = np.array([0.1, 1 / 3, 0.7], dtype=np.float32)
    with table.open_table(tmp_path / "p.jsonl", ["p"]) as out:
        out.write({"p": probabilities})
    lines = (tmp_path / "p.jsonl").read_text().splitlines()
    assert [json.loads(line)["p"] for line in lines] == probabilities.tolist()


@pytest.mark.parametrize("name", ["out.txt", "out.parquet.gz", "out"])
def test_writer_refuses_other_extensions(tmp_path, name):
    refused = r"cannot write this kind of file.*\.csv.*\.jsonl.*\.parquet"
    with pytest.raises(StocksentError, match=refused), table.open_table(tmp_path / name, ["text"]):
        pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("rows, message", [
    ({"text": ["a"]}, "exactly the columns"),
    ({"text": ["a"], "score": [1.0], "extra": [1]}, "exactly the columns"),
    ({"text": ["a", "b"], "score": [1.0]}, "equally long"),
])
def test_writer_refuses_ragged_chunks(tmp_path, rows, message):
    with pytest.raises(StocksentError, match=message), table.open_table(tmp_path / "out.csv", ["text", "score"]) as out:
        out.write(rows)
    assert list(tmp_path.iterdir()) == []


def test_parquet_chunks_keep_the_first_chunks_types(tmp_path):
    mismatch = pytest.raises(StocksentError, match="does not fit the column types of the first")
    with mismatch, table.open_table(tmp_path / "out.parquet", ["score"]) as out:
        out.write({"score": [0.5]})
        out.write({"score": ["high"]})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", WRITABLE)
def test_a_failure_midway_leaves_dst_as_it_was(tmp_path, real_rows, name):
    dst, fresh = tmp_path / name, tmp_path / f"fresh-{name}"
    dst.write_bytes(b"the previous results")
    for path in (dst, fresh):
        with pytest.raises(RuntimeError, match="scoring failed"), table.open_table(path, ["text"]) as out:
            out.write({"text": [r["message"] for r in real_rows[:100]]})
            raise RuntimeError("scoring failed")
    assert dst.read_bytes() == b"the previous results"
    assert list(tmp_path.iterdir()) == [dst]  # no temporary file, no fresh file


def test_without_pyarrow_the_error_names_the_extra(tmp_path, parquet_slice, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` now raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(StocksentError, match=r"^reading Parquet needs pyarrow: pip install 'stocksent\[parquet\]'$"):
        table.read_messages(parquet_slice, DataConfig())
    writing = pytest.raises(StocksentError,
                            match=r"^writing Parquet needs pyarrow: pip install 'stocksent\[parquet\]'$")
    with writing, table.open_table(tmp_path / "out.parquet", ["text"]):
        pass
    assert list(tmp_path.iterdir()) == []
    with table.open_table(tmp_path / "out.csv", ["text"]) as out:  # the other formats need no pyarrow
        out.write({"text": ["$SPY"]})
    assert list(table.read_texts(tmp_path / "out.csv", "text")) == ["$SPY"]


@pytest.mark.parametrize("name", ["out.csv", "out.jsonl", "out.parquet"])
def test_writer_refuses_repeated_column_names(tmp_path, name):
    for columns in (["text", "text"], ["text", "label", "text"]):
        with pytest.raises(StocksentError, match=r"needs one or more distinct column names, got \['text', "):
            with table.open_table(tmp_path / name, columns):
                pass
    with pytest.raises(StocksentError, match="distinct column names, got"), table.open_table(tmp_path / name, []):
        pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["out.parquet", "out.csv", "out.jsonl"])
def test_chunks_of_one_row_and_of_none_are_all_written(tmp_path, real_rows, name):
    texts = [r["message"] for r in real_rows[:6]]
    sizes = [1, 0, 2, 1, 2]
    with table.open_table(tmp_path / name, ["text", "n"]) as out:
        start = 0
        for size in sizes:
            out.write({"text": texts[start:start + size], "n": list(range(start, start + size))})
            start += size
    assert list(table.read_texts(tmp_path / name, "text")) == texts
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        metadata = pq.ParquetFile(tmp_path / name).metadata
        assert [metadata.row_group(k).num_rows for k in range(metadata.num_row_groups)] == [1, 2, 1, 2]


def test_a_text_file_is_a_message_a_line_blank_lines_skipped(tmp_path, real_rows):
    texts = [" ".join(r["message"].split()) for r in real_rows[:5]]
    path = tmp_path / "messages.txt"
    path.write_text(f"{texts[0]}\n\n{texts[1]}\r\n   \n{texts[2]}\n\t\n{texts[3]}\n{texts[4]}", encoding="utf-8")
    assert list(table.read_texts(path, "message")) == texts


def test_input_files_expands_a_directory_and_a_glob_sorted_and_refuses_one_naming_nothing(tmp_path):
    (tmp_path / "day=2021-01-02").mkdir()
    (tmp_path / "day=2021-01-01").mkdir()
    for name in ("day=2021-01-02/part-0.parquet", "day=2021-01-01/part-1.csv", "day=2021-01-01/part-0.csv",
                 "day=2021-01-01/.part-2.csv.tmp", "_SUCCESS", "notes.txt"):
        (tmp_path / name).write_text("x")
    assert [p.relative_to(tmp_path).as_posix() for p in table.input_files([tmp_path])] == [
        "day=2021-01-01/part-0.csv", "day=2021-01-01/part-1.csv", "day=2021-01-02/part-0.parquet"]
    assert [p.name for p in table.input_files([str(tmp_path / "*" / "*.csv"), tmp_path / "notes.txt"])] == [
        "part-0.csv", "part-1.csv", "notes.txt"]
    with pytest.raises(StocksentError, match=r"\*.jsonl: no file matches$"):
        table.input_files([str(tmp_path / "*.jsonl")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(StocksentError, match="empty: no CSV, JSONL or Parquet files there$"):
        table.input_files([tmp_path / "empty"])
