import json
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import write_csv
from stocksent import SentimentClassifier
from stocksent.cli import main
from stocksent.errors import StocksentError
from stocksent.scoring.calibration import CalibrationSet
from stocksent.scoring.index import (
    COLUMNS,
    TAGGED_COLUMNS,
    CellSums,
    Estimator,
    period_starts,
    tag_codes,
    tickers_of,
)
from stocksent.scoring.quantify import Calibration


@pytest.mark.parametrize("freq, start", [("hour", "2021-03-07T21:00:00"), ("day", "2021-03-07T00:00:00"),
                                         ("week", "2021-03-01T00:00:00"), ("month", "2021-03-01T00:00:00")])
def test_a_time_falls_in_its_period_in_utc_whatever_its_form(freq, start):
    # The same instant: ISO 8601 in UTC, with an offset, and epoch seconds (a Sunday evening in UTC).
    times = ["2021-03-07T21:59:59Z", "2021-03-07T23:59:59+02:00", 1615154399, "1615154399"]
    assert [str(p) for p in period_starts(times, freq)] == [start] * 4


def test_a_time_that_is_no_time_is_named_with_its_row():
    with pytest.raises(StocksentError, match="f.csv: row 2: time 'yesterday' is neither ISO 8601 nor epoch"):
        period_starts(["2021-01-01", "yesterday"], "day", "f.csv")
    with pytest.raises(StocksentError, match="row 3 has no time"):
        period_starts(["2021-01-01", "2021-01-02", ""], "day")
    with pytest.raises(StocksentError, match="unknown frequency 'year'"):
        period_starts(["2021-01-01"], "year")


def test_tickers_and_tags_are_read_as_a_user_writes_them():
    assert tickers_of(["$aapl up", "no cashtag"]) == ["AAPL", "(none)"]
    assert tickers_of(["x", "y", "z"], ["$tsla", " spy ", None]) == ["TSLA", "SPY", "(none)"]
    assert tag_codes(["Bullish", "bearish", "", None], "bearish", "bullish").tolist() == [1, 0, -1, -1]
    with pytest.raises(StocksentError, match="unknown label value.*'neutral'"):
        tag_codes(["neutral"], "bearish", "bullish")


def _chunk(rng, n, tickers=("A", "B"), days=3):
    periods = period_starts(rng.integers(1_600_000_000, 1_600_000_000 + days * 86400, n), "day")
    return list(rng.choice(tickers, n)), periods, rng.random(n), rng.integers(-1, 2, n)


def test_the_sums_of_two_parts_are_the_sums_of_one_pass():
    rng = np.random.default_rng(3)
    first, second = _chunk(rng, 500), _chunk(rng, 300, tickers=("B", "C"))
    whole, one, two = CellSums(), CellSums(), CellSums()
    whole.add(*first)
    whole.add(*second)
    one.add(*first)
    two.add(*second)
    parts = one + two
    assert parts.keys == whole.keys and len(set(whole.keys)) == len(whole.keys)
    assert {ticker for ticker, _ in whole.keys} == {"A", "B", "C"}
    for name in ("messages", "proba_units", "histogram", "tagged", "tagged_positive"):
        assert np.array_equal(getattr(parts, name), getattr(whole, name)), name
    assert whole.messages.sum() == 800 and whole.histogram.sum() == 800


def test_the_sums_are_the_same_bit_for_bit_however_the_input_is_cut_and_in_whatever_order_added():
    rng = np.random.default_rng(4)
    tickers, periods, proba, tags = _chunk(rng, 3000, days=2)
    whole = CellSums()
    whole.add(tickers, periods, proba, tags)
    pieces = []
    for start, stop in [(0, 7), (7, 1500), (1500, 1501), (1501, 3000)]:
        piece = CellSums()
        piece.add(tickers[start:stop], periods[start:stop], proba[start:stop], tags[start:stop])
        pieces.append(piece)
    together = (pieces[3] + pieces[1]) + (pieces[0] + pieces[2])
    order = [together.keys.index(key) for key in whole.keys]
    for name in ("messages", "proba_units", "histogram", "tagged", "tagged_positive"):
        assert np.array_equal(getattr(together, name)[order], getattr(whole, name)), name
    cells = np.array([whole.keys.index(key) for key in zip(tickers, periods.astype("datetime64[s]").astype(int))])
    means = Estimator("pcc").rows(whole)["mean_probability"]
    in_rows = sorted(range(len(whole.keys)), key=lambda i: whole.keys[i])
    np.testing.assert_allclose(means, [proba[cells == i].mean() for i in in_rows], rtol=0, atol=1e-9)


def _calibration(rng, n=2000):
    labels = rng.integers(0, 2, n)
    scores = rng.normal(np.where(labels == 1, 1.0, -1.0), 1.0)
    return Calibration.of(1 / (1 + np.exp(-2 * scores)), labels, 0.5)


def test_each_cell_gets_an_estimate_inside_its_interval_narrower_where_it_holds_more():
    rng = np.random.default_rng(5)
    sums, cal = CellSums(), _calibration(rng)
    for ticker, n in (("BIG", 3000), ("SMALL", 40)):
        labels = (rng.random(n) < 0.8).astype(int)
        proba = 1 / (1 + np.exp(-2 * rng.normal(np.where(labels == 1, 1.0, -1.0), 1.0)))
        sums.add([ticker] * n, period_starts(["2022-01-03"] * n, "week"), proba, labels)
    rows = Estimator("emq", cal, 0.9, draws=200).rows(sums)
    assert list(rows) == COLUMNS + TAGGED_COLUMNS and rows["ticker"] == ["BIG", "SMALL"]
    assert rows["period"] == ["2022-01-03T00:00:00Z"] * 2 and rows["messages"] == [3000, 40]
    for i in range(2):
        assert rows["bullish_share_low"][i] <= rows["bullish_share"][i] <= rows["bullish_share_high"][i]
    width = [high - low for low, high in zip(rows["bullish_share_low"], rows["bullish_share_high"])]
    assert width[0] < 0.1 < width[1]
    assert abs(rows["bullish_share"][0] - rows["tagged_bullish_share"][0]) < 0.04
    share = rows["bullish_share"][0]
    assert rows["bullishness"][0] == pytest.approx(np.log((1 + 3000 * share) / (1 + 3000 * (1 - share))))
    assert rows["agreement"][0] == pytest.approx(1 - np.sqrt(1 - (2 * share - 1) ** 2))


def test_an_estimate_is_the_same_for_the_same_sums():
    rng = np.random.default_rng(9)
    sums, cal = CellSums(), _calibration(rng)
    sums.add(*_chunk(rng, 400)[:3])
    assert Estimator("pacc", cal).rows(sums) == Estimator("pacc", cal).rows(sums)
    with pytest.raises(StocksentError, match="the acc method needs a calibration set"):
        Estimator("acc", None)
    with pytest.raises(StocksentError, match="level must be in"):
        Estimator("cc", None, level=1.0)


def _stream(tmp_path, real_rows, n=600):
    """Real messages with times over two months and the authors' tags."""
    rows = [{**r, "created_at": f"2022-0{1 + i % 2}-{1 + i % 28:02d}T12:00:00Z", "ticker": "SPY" if i % 3 else "QQQ"}
            for i, r in enumerate(real_rows[5000:5000 + n])]
    return write_csv(tmp_path / "stream.csv", rows, ["created_at", "ticker", "message", "sentiment"])


def test_a_python_frame_and_the_command_give_the_same_index(trained_model, real_rows, tmp_path):
    stream = _stream(tmp_path, real_rows)
    assert main(["index", str(trained_model), "--input", str(stream), "--ticker-column", "ticker", "--freq", "month",
                 "--out", str(tmp_path / "index.csv")]) == 0
    from_file = pd.read_csv(tmp_path / "index.csv")
    frame = pd.read_csv(stream, keep_default_na=False)
    in_python = SentimentClassifier.load(trained_model).index(frame, freq="month", ticker_column="ticker")
    assert list(from_file.columns) == COLUMNS + TAGGED_COLUMNS and len(from_file) == 4
    assert from_file["messages"].sum() == 600 and from_file["tagged"].sum() == 600
    pd.testing.assert_frame_equal(from_file, in_python, check_dtype=False)


def test_a_market_s_own_tags_calibrate_and_a_picture_is_drawn(trained_model, real_rows, tmp_path, capsys):
    stream = _stream(tmp_path, real_rows)
    tags = write_csv(tmp_path / "tags.csv", real_rows[6000:6300], ["message", "sentiment"])
    assert main(["index", str(trained_model), "--input", str(stream), "--freq", "month", "--calibrate", str(tags),
                 "--out", str(tmp_path / "index.parquet"), "--plot", str(tmp_path / "index.png"), "--json"]) == 0
    captured = capsys.readouterr()
    assert "calibrating on 300 tagged messages" in captured.err
    summary = json.loads(captured.out)
    assert summary["calibration"] == 300 and summary["method"] == "emq-platt"  # the default given market tags
    assert (tmp_path / "index.png").read_bytes()[:4] == b"\x89PNG"
    assert pd.read_parquet(tmp_path / "index.parquet")["messages"].sum() == 600


def test_a_model_saved_without_a_calibration_set_is_told_how_to_add_one(trained_model, real_rows, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(trained_model, old)
    clf = SentimentClassifier.load(old)
    clf.predictor_ = clf.predictor_.without(CalibrationSet)
    clf.save(old)
    stream = _stream(tmp_path, real_rows, 90)
    command = ["index", str(old), "--input", str(stream), "--out", str(tmp_path / "i.csv")]
    assert main(command) == 1
    assert f"carries no calibration set (saved before models did, or adapted in Python without its validation " \
           f"split); add one with: stocksent calibrate {old}, or give the market's tagged messages (--calibrate FILE)" \
        in capsys.readouterr().err
    assert main([*command, "--method", "pcc"]) == 0  # the methods that need none still run
    assert main(["calibrate", str(old)]) == 0
    part = SentimentClassifier.load(old).predictor_.part(CalibrationSet)
    trained = SentimentClassifier.load(trained_model).predictor_.part(CalibrationSet)
    assert part.labels.tolist() == trained.labels.tolist() and part.trained_prior == trained.trained_prior
    np.testing.assert_allclose(part.proba, trained.proba, atol=1e-6)  # the training's scorer pads; this one not
    assert main(command) == 0


@pytest.mark.parametrize("case, message", [
    ("no time column", "missing column(s) 'created_at'"),
    ("bad time", "row 2: time 'soon' is neither ISO 8601 nor epoch seconds"),
    ("empty file", "the file is empty"),
    ("one-label calibration", "needs messages of both labels; it has 0 bearish and 40 bullish"),
])
def test_bad_input_is_one_line_and_writes_nothing(trained_model, real_rows, tmp_path, capsys, case, message):
    stream, extra = _stream(tmp_path, real_rows, 40), []
    if case == "no time column":
        stream = write_csv(tmp_path / "s.csv", real_rows[:40], ["message"])
    elif case == "bad time":
        stream.write_text("created_at,message\n2022-01-01,up\nsoon,down\n")
    elif case == "empty file":
        stream.write_text("")
    else:
        rows = [r for r in real_rows[:400] if r["sentiment"] == "bullish"][:40]
        extra = ["--calibrate", str(write_csv(tmp_path / "t.csv", rows, ["message", "sentiment"]))]
    out = tmp_path / "index.csv"
    assert main(["index", str(trained_model), "--input", str(stream), "--out", str(out), *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not out.exists()
