import functools
import os
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import NO_DATA, unavailable
from stocksent.data import dataset as data
from stocksent.data import table
from stocksent.errors import StocksentError


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass  # an access log line per request would only clutter the test output


@pytest.fixture(scope="session")
def real_file():
    """The real data file; session-scoped so that it is found before a test moves the cache."""
    try:
        return data.find_data().resolve()
    except StocksentError:
        unavailable(NO_DATA)


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A folder served over HTTP on 127.0.0.1 for one test; yields (folder, base URL)."""
    for name in ("no_proxy", "NO_PROXY"):  # a configured proxy must not see 127.0.0.1
        monkeypatch.setenv(name, "127.0.0.1")
    folder = tmp_path / "served"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty user cache; returns its stocksent folder (not created yet)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("STOCKSENT_DATA", raising=False)
    return tmp_path / "cache" / "stocksent"


def _refused_url() -> str:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{data.DATA_FILENAME}"


def test_reading_is_still_importable_from_data():
    assert (data.read_messages, data.read_texts) == (table.read_messages, table.read_texts)


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


def test_fetch_over_http_into_the_cache(real_file, served, cache):
    folder, base = served
    (folder / data.DATA_FILENAME).symlink_to(real_file)
    path = data.fetch(url=base + data.DATA_FILENAME)
    assert path == cache / data.DATA_FILENAME
    assert data.file_sha256(path) == data.DATA_SHA256
    assert os.listdir(cache) == [data.DATA_FILENAME]


@pytest.mark.parametrize("case, message", [
    ("other bytes", "^checksum mismatch: expected sha256 .* from http://127.0.0.1:"),
    ("404", "^download failed from http://127.0.0.1:.*/absent.gz: HTTP 404 "),
    ("refused", "^download failed from http://127.0.0.1:.*: Connection refused; "),
])
def test_failed_fetch_is_one_line_and_leaves_nothing(served, cache, case, message):
    folder, base = served
    (folder / "other.gz").write_bytes(b"not the data set")
    url = {"other bytes": base + "other.gz", "404": base + "absent.gz", "refused": _refused_url()}[case]
    with pytest.raises(StocksentError, match=message) as info:
        data.fetch(url=url)
    assert "\n" not in str(info.value)
    assert str(info.value).endswith(f"put {data.DATA_FILENAME} into {cache}/ (or pass --data PATH)")
    assert list(cache.iterdir()) == []


def test_ensure_data_uses_a_file_it_finds(cache, monkeypatch):
    cache.mkdir(parents=True)
    (cache / data.DATA_FILENAME).write_bytes(b"x")
    monkeypatch.setattr(data, "fetch", lambda **_: pytest.fail("fetched although a file was there"))
    assert data.ensure_data() == (cache / data.DATA_FILENAME, False)


def test_ensure_data_fetches_only_when_nothing_is_found(real_file, served, cache, monkeypatch):
    monkeypatch.setattr(data, "_shared_candidates", list)
    folder, base = served
    (folder / data.DATA_FILENAME).symlink_to(real_file)
    assert data.ensure_data(url=base + data.DATA_FILENAME) == (cache / data.DATA_FILENAME, True)
    assert data.ensure_data(url=base + "absent.gz") == (cache / data.DATA_FILENAME, False)


def test_ensure_data_does_not_paper_over_a_wrong_stocksent_data(tmp_path, cache, monkeypatch):
    monkeypatch.setenv("STOCKSENT_DATA", str(tmp_path / "nope.gz"))
    with pytest.raises(StocksentError, match=r"not found \(STOCKSENT_DATA\)"):
        data.ensure_data(url=_refused_url())


def test_data_fetch_command_takes_a_url(real_file, served, cache, capsys):
    from stocksent.cli import main

    folder, base = served
    (folder / data.DATA_FILENAME).symlink_to(real_file)
    assert main(["data", "fetch", "--url", base + "absent.gz"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("stocksent: error: download failed from") and "HTTP 404" in err
    assert not cache.exists() or list(cache.iterdir()) == []
    assert main(["data", "fetch", "--url", base + data.DATA_FILENAME]) == 0
    assert capsys.readouterr().out == f"saved {cache / data.DATA_FILENAME} (sha256 {data.DATA_SHA256})\n"
    assert main(["data", "fetch", "--if-missing", "--url", base + "absent.gz"]) == 0  # found: nothing fetched
    assert capsys.readouterr().out == f"data found: {cache / data.DATA_FILENAME}\n"
