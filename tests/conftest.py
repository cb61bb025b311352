"""Shared fixtures: slices of the real StockTwits data set, a small trained model, and servers running it."""
from __future__ import annotations

import csv
import gzip
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from stocksent.data.dataset import find_data
from stocksent.errors import StocksentError

SLICE_ROWS = 3000


def unavailable(what: str) -> None:
    """Skip a test whose data or tool is missing here; under CI, which installs and finds all of
    them, fail it instead: a missing one there is a broken run, not a pass."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is not available, and CI must have it", pytrace=False)
    pytest.skip(f"{what} is not available", allow_module_level=True)


NO_DATA = "the StockTwits data set (../shared/data, or `stocksent data fetch`)"


def _real_rows() -> list[dict]:
    try:
        path = find_data()
    except StocksentError:
        unavailable(NO_DATA)
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def real_rows() -> list[dict]:
    """Every record of the real data set, as read by a plain CSV parser."""
    return _real_rows()


@pytest.fixture(scope="session")
def stream_rows() -> list[dict]:
    """Every 20th message of the four tickers' stream (2018-2022): id, time, ticker, text and the
    author's tag where there is one."""
    try:
        path = find_data().parent / "stream" / "stocktwits_stream_2018_2022.csv.gz"
    except StocksentError:
        unavailable(NO_DATA)
    if not path.exists():
        unavailable(f"the stream of four tickers ({path})")
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))[::20]


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


# A constant rate: over two epochs, the default's rate falling to zero leaves these tiny networks
# too little trained for what the tests look at in them (scores that differ, epochs that differ).
TINY = ["--embedding-dim", "16", "--lstm-sizes", "16", "8", "--batch-size", "64", "--epochs", "2",
        "--min-freq", "1", "--threads", "1", "--schedule", "constant"]


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, data_slice) -> Path:
    """A tiny model trained for two epochs on the real slice through the CLI (without the word
    vectors the default preset pretrains: at this size they leave it scoring nearly alike)."""
    from stocksent.cli import main

    out = tmp_path_factory.mktemp("models") / "tiny"
    assert main(["train", "--data", str(data_slice), "--out", str(out), *TINY, "--pretraining", "none"]) == 0
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


@pytest.fixture(scope="session")
def start_server(tmp_path_factory):
    """Starts `stocksent serve MODEL_DIR FLAGS...` as a process on a free loopback port, waits until
    it is ready and returns its base URL; every server started is stopped when the session ends."""
    started = []

    def start(model_dir: Path, *flags: str, env: dict | None = None, timeout: float = 90) -> str:
        with socket.socket() as probe:  # a port no one holds now; the server binds it a moment later
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        log = tmp_path_factory.mktemp("server") / "stderr.log"
        command = [sys.executable, "-m", "stocksent.cli", "serve", str(model_dir), "--port", str(port), *flags]
        with open(log, "wb") as stderr:
            started.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env))
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + timeout
        while time.monotonic() < deadline and started[-1].poll() is None:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return url
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError(f"`stocksent serve` did not become ready: {log.read_text(errors='replace')[-2000:]}")

    yield start
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


# The limits of the live server: small, so that a test reaches them with a few short messages. The
# body limit leaves room for any body within the others (a character is at most 12 bytes of JSON).
SERVED = {"max_texts": 8, "max_explain_texts": 4, "max_chars": 200, "max_body_bytes": 64 * 1024}


@pytest.fixture(scope="session")
def live_server(start_server, trained_model) -> str:
    """The base URL of `stocksent serve` running the tiny model with the SERVED limits."""
    flags = [part for key, limit in SERVED.items() for part in (f"--{key.replace('_', '-')}", str(limit))]
    return start_server(trained_model, *flags)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Say the seed pytest-randomly shuffled this run's order with (-q hides its header)."""
    seed = getattr(session.config.option, "randomly_seed", None)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if isinstance(seed, int) and reporter is not None:
        reporter.write_line(f"tests shuffled with --randomly-seed={seed} (give it to pytest to repeat this order)")
