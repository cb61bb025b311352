"""A market sentiment index: per ticker and period, the share of bullish messages, estimated from
the model's probabilities by a quantification method (quantify.py), with a bootstrap interval.

One pass over the messages, in chunks, keeps per-cell sums (CellSums): how many messages, the
sum of their probabilities, a histogram of them in BINS bins, and how many carry an author's tag
and how many of those say bullish. Everything the methods need is in those sums, so memory grows
with the number of cells, not of messages, and sums of parts of the input add up to the sums of
the whole exactly, in any order: every sum is of integers.

The interval resamples both the cell's messages (a multinomial draw from its histogram) and the
calibration set (from each label's histogram): the cell's share is measured through the
calibration set, and resampling the cell alone is known to give intervals that cover too little.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ..data.table import open_table, read_columns, read_messages
from ..errors import StocksentError
from ..text.labels import name_codes, spelled, texts_or_empty
from ..text.preprocess import first_ticker
from .calibration import CalibrationSet
from .metrics import sigmoid
from .predictor import Predictor
from .priors import TickerPriors
from .quantify import (
    EM_POSTERIORS,
    UNCALIBRATED,
    Calibration,
    check_calibration,
    check_method,
    default_method,
    em_bounds,
)

BINS = 400  # histogram bins of a probability: 0.0025 wide
# Probabilities are summed in these units, as integers: a float sum's last bits would depend on
# how the input was cut into chunks or partitions.
PROBA_UNITS = 2 ** 32
DRAWS = 400  # bootstrap resamples per cell
NO_TICKER = "(none)"
FREQS = ("hour", "day", "week", "month")
_SECONDS = {"hour": 3600, "day": 86400}
COLUMNS = ["ticker", "period", "messages", "bullish_share", "bullish_share_low", "bullish_share_high",
           "bullishness", "agreement", "mean_probability"]
TAGGED_COLUMNS = ["tagged", "tagged_bullish_share"]
CENTRES = (np.arange(BINS) + 0.5) / BINS


def check_freq(freq: str) -> None:
    if freq not in FREQS:
        raise StocksentError(f"unknown frequency {freq!r}; choose one of: {', '.join(FREQS)}")


def check_level(level: float) -> None:
    if not 0.5 <= level < 1.0:
        raise StocksentError("the interval's level must be in [0.5, 1), e.g. 0.9")


def period_starts(times: Sequence[Any], freq: str, where: str = "the input", first_row: int = 1) -> np.ndarray:
    """Each time's period start (datetime64[s], UTC): ISO 8601 text (an offset is converted to
    UTC; none means UTC) or epoch seconds; one line naming the first that is neither, by its row
    in `where` (the times are its rows from `first_row` on)."""
    check_freq(freq)
    seconds = _epoch_seconds(times, where, first_row)
    if freq in _SECONDS:
        return (seconds - seconds % _SECONDS[freq]).astype("datetime64[s]")
    if freq == "week":  # ISO weeks start on Monday; 1970-01-01 was a Thursday
        days = seconds // 86400
        return ((days - (days + 3) % 7) * 86400).astype("datetime64[s]")
    return seconds.astype("datetime64[s]").astype("datetime64[M]").astype("datetime64[s]")


def _epoch_seconds(times: Sequence[Any], where: str, first_row: int) -> np.ndarray:
    values = pd.Series(list(times), dtype=object)
    blank = values.isna() | (values.astype(str).str.strip() == "")
    if blank.any():
        raise StocksentError(f"{where}: row {int(np.flatnonzero(blank.to_numpy())[0]) + first_row} has no time")
    numbers = pd.to_numeric(values, errors="coerce")
    text = ~numbers.notna().to_numpy()
    seconds = np.floor(numbers.fillna(0).to_numpy(dtype=np.float64)).astype(np.int64)
    if text.any():
        parsed = pd.to_datetime(values[text].astype(str), utc=True, format="ISO8601", errors="coerce")
        bad = parsed.isna().to_numpy()
        if bad.any():
            first = int(np.flatnonzero(text)[np.flatnonzero(bad)[0]])
            raise StocksentError(f"{where}: row {first + first_row}: time {values.iloc[first]!r} is neither "
                                 "ISO 8601 nor epoch seconds")
        seconds[text] = parsed.dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    return seconds


def tickers_of(texts: Sequence[str], column: Sequence[Any] | None = None) -> list[str]:
    """Each message's ticker: the column's value (upper-cased, without a leading $) or, with no
    column, its first cashtag; NO_TICKER where there is none."""
    if column is None:
        return [first_ticker(text) or NO_TICKER for text in texts]
    names = (text.strip().lstrip("$").upper() for text in texts_or_empty(column))
    return [name or NO_TICKER for name in names]


def tag_codes(tags: Sequence[Any], negative: str, positive: str, where: str = "the input") -> np.ndarray:
    """Each message's tag as 1 (positive), 0 (negative) or -1 (none); one line naming a value that
    is neither label."""
    names = {**name_codes(negative, positive), "": -1, "none": -1, "nan": -1}
    given = [spelled(tag) for tag in tags]
    unknown = sorted({s for s in given if s not in names})
    if unknown:
        raise StocksentError(f"{where}: unknown label value(s) {', '.join(map(repr, unknown[:10]))}; expected "
                             f"{negative!r}, {positive!r} or none")
    return np.array([names[s] for s in given], dtype=np.int64)


@dataclass
class CellSums:
    """Per (ticker, period start in epoch seconds) cell: messages, sum of probabilities (in
    1 / PROBA_UNITS), a histogram of them, and the messages tagged and tagged positive. Cells are
    kept in the order first seen."""

    keys: list[tuple[str, int]] = field(default_factory=list)
    messages: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    proba_units: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    histogram: np.ndarray = field(default_factory=lambda: np.zeros((0, BINS), np.int64))
    tagged: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    tagged_positive: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def add(self, tickers: Sequence[str], periods: np.ndarray, proba: np.ndarray,
            tags: np.ndarray | None = None) -> None:
        """Count a chunk of messages in."""
        index = {key: i for i, key in enumerate(self.keys)}
        seconds = periods.astype("datetime64[s]").astype(np.int64).tolist()
        cells = np.fromiter((index.setdefault(key, len(index)) for key in zip(tickers, seconds)),
                            dtype=np.int64, count=len(proba))
        self._grow(list(index))  # a dict keeps its keys in the order added: the cells' order
        count = len(self.keys)
        bins = np.minimum((np.asarray(proba, dtype=np.float64) * BINS).astype(np.int64), BINS - 1)
        self.messages += np.bincount(cells, minlength=count)
        np.add.at(self.proba_units, cells, np.rint(np.asarray(proba, dtype=np.float64) * PROBA_UNITS).astype(np.int64))
        # Over the chunk's own cells: a table of every cell seen so far would be allocated per chunk.
        present, local = np.unique(cells, return_inverse=True)
        self.histogram[present] += np.bincount(local * BINS + bins, minlength=len(present) * BINS).reshape(-1, BINS)
        if tags is not None:
            self.tagged += np.bincount(cells, weights=tags >= 0, minlength=count).astype(np.int64)
            self.tagged_positive += np.bincount(cells, weights=tags == 1, minlength=count).astype(np.int64)

    def _grow(self, keys: list[tuple[str, int]]) -> None:
        extra = len(keys) - len(self.keys)
        if extra:
            self.keys = keys
            self.messages, self.proba_units, self.tagged, self.tagged_positive = (
                np.concatenate([a, np.zeros(extra, a.dtype)])
                for a in (self.messages, self.proba_units, self.tagged, self.tagged_positive))
            self.histogram = np.concatenate([self.histogram, np.zeros((extra, BINS), np.int64)])

    def __add__(self, other: "CellSums") -> "CellSums":
        """The sums of both inputs: what one pass over the two would count."""
        total = CellSums()
        for part in (self, other):
            index = {key: i for i, key in enumerate(total.keys)}
            where = np.fromiter((index.setdefault(key, len(index)) for key in part.keys), np.int64, len(part.keys))
            total._grow(list(index))
            for name in ("messages", "proba_units", "histogram", "tagged", "tagged_positive"):
                getattr(total, name)[where] += getattr(part, name)
        return total


def binned(calibration: Calibration) -> Calibration:
    """The calibration set as histograms over the index's bins."""
    bins = np.minimum((calibration.values * BINS).astype(np.int64), BINS - 1)
    return Calibration(CENTRES, np.bincount(bins, weights=calibration.negatives, minlength=BINS),
                       np.bincount(bins, weights=calibration.positives, minlength=BINS), calibration.trained_prior)


def resampled(calibration: Calibration, draws: int, rng: np.random.Generator) -> Calibration:
    """`draws` bootstrap copies of a binned calibration set, each label's messages resampled."""
    def draw(weights: np.ndarray) -> np.ndarray:
        total = int(round(weights.sum()))
        return rng.multinomial(total, weights / total, size=draws).astype(np.float64)
    return Calibration(calibration.values, draw(calibration.negatives), draw(calibration.positives),
                       calibration.trained_prior)


@dataclass(frozen=True)
class Estimator:
    """A method, the calibration set it reads (None for the methods that need none), the
    interval's level and resamples, and the seed of those."""

    method: str = "emq"
    calibration: Calibration | None = None
    level: float = 0.9
    draws: int = DRAWS
    seed: int = 0

    def __post_init__(self) -> None:
        check_method(self.method)
        check_level(self.level)
        if self.calibration is None and self.method not in UNCALIBRATED:
            raise StocksentError(f"the {self.method} method needs a calibration set")

    def rows(self, sums: CellSums) -> dict[str, list]:
        """One row per cell, sorted by ticker and period: the COLUMNS, and TAGGED_COLUMNS when
        any message carried a tag."""
        method, rng = check_method(self.method), np.random.default_rng(self.seed)
        cal = binned(self.calibration) if self.calibration is not None else None  # CC and PCC read none
        copies = resampled(cal, self.draws, rng) if cal is not None else None
        order = sorted(range(len(sums.keys)), key=lambda i: (sums.keys[i][0], sums.keys[i][1]))
        estimates = [self._cell(method, sums.histogram[i], cal, copies, rng) for i in order]
        share, low, high = (np.array(column, dtype=np.float64) for column in zip(*estimates)) if estimates else \
            (np.zeros(0),) * 3
        n = sums.messages[order]
        bullish, bearish = share * n, (1 - share) * n
        rows = {"ticker": [sums.keys[i][0] for i in order],
                "period": [f"{np.datetime_as_string(np.datetime64(sums.keys[i][1], 's'))}Z" for i in order],
                "messages": n.tolist(), "bullish_share": share.tolist(), "bullish_share_low": low.tolist(),
                "bullish_share_high": high.tolist(),
                "bullishness": np.log((1 + bullish) / (1 + bearish)).tolist(),
                "agreement": (1 - np.sqrt(np.clip(1 - (2 * share - 1) ** 2, 0.0, 1.0))).tolist(),
                "mean_probability": (sums.proba_units[order] / PROBA_UNITS / np.maximum(n, 1)).tolist()}
        if sums.tagged.any():
            tagged = sums.tagged[order]
            rows["tagged"] = tagged.tolist()
            rows["tagged_bullish_share"] = [float(p) / t if t else None
                                            for p, t in zip(sums.tagged_positive[order], tagged)]
        return rows

    def _cell(self, method, histogram: np.ndarray, cal: Calibration | None, copies: Calibration | None,
              rng: np.random.Generator) -> tuple[float, float, float]:
        present = np.flatnonzero(histogram)
        values, weights = CENTRES[present], histogram[present].astype(np.float64)
        share = float(method(values, weights, cal))
        if self.method in EM_POSTERIORS:
            return (share, *self._em_interval(method, share, values, weights, cal, copies))
        tail = (1 - self.level) / 2
        n = int(weights.sum())
        draws = rng.multinomial(n, weights / n, size=self.draws).astype(np.float64)
        low, high = np.quantile(method(values, draws, copies), [tail, 1 - tail])
        return share, float(min(low, share)), float(max(high, share))

    def _em_interval(self, method, share: float, values: np.ndarray, weights: np.ndarray, cal: Calibration,
                     copies: Calibration) -> tuple[float, float]:
        """EM's interval: the likelihood's for the cell's messages (resampling a few messages
        understates how little they tell), widened in quadrature by the spread that resampling
        the calibration set gives."""
        posteriors, trained = EM_POSTERIORS[self.method](values, cal)
        low, high = em_bounds(posteriors, weights, float(trained), share, self.level)
        tail = (1 - self.level) / 2
        cal_low, cal_high = np.quantile(method(values, weights, copies), [tail, 1 - tail])
        below = np.hypot(share - low, max(share - cal_low, 0.0))
        above = np.hypot(high - share, max(cal_high - share, 0.0))
        return float(max(share - below, 0.0)), float(min(share + above, 1.0))



def index_proba(predictor: Predictor) -> Predictor:
    """The predictor an index scores with: without ticker priors (the index estimates the shares
    those would shift the messages towards; counting them in would count them twice)."""
    return predictor.without(TickerPriors)


def model_calibration(predictor: Predictor, source: str) -> Calibration:
    """The calibration set the model carries; one line saying how to add one if it has none."""
    part = predictor.part(CalibrationSet)
    if part is None:
        raise StocksentError(f"{source} carries no calibration set (saved before models did, or adapted in Python "
                             f"without its validation split); add one with: stocksent calibrate {source}, or give "
                             f"the market's tagged messages (--calibrate FILE)")
    return part.calibration()


class Chunk(NamedTuple):
    """Messages of an index's input: texts, times, tickers (None: their first cashtags), tag
    codes (None: the input has no tags), and where they came from, from which row on."""

    texts: list[str]
    times: Sequence[Any]
    tickers: Sequence[Any] | None
    tags: np.ndarray | None
    where: str = "the input"
    first_row: int = 1


def add_chunk(sums: CellSums, predictor: Predictor, chunk: Chunk, freq: str) -> None:
    """Score a chunk of messages (with a predictor from index_proba) and count them into `sums`."""
    periods = period_starts(chunk.times, freq, chunk.where, chunk.first_row)
    proba = sigmoid(predictor.logits(chunk.texts)).astype(np.float64) if chunk.texts else np.zeros(0)
    sums.add(tickers_of(chunk.texts, chunk.tickers), periods, proba, chunk.tags)


@dataclass(frozen=True)
class Columns:
    """Where an index's input keeps each thing: text and time (required), ticker (None: each
    message's first cashtag) and the authors' tags (used when the input has that column; never
    for the estimate)."""

    text: str = "message"
    time: str = "created_at"
    ticker: str | None = None
    label: str = "sentiment"

    def required(self) -> list[str]:
        return [self.text, self.time, *([self.ticker] if self.ticker else [])]

    def chunk(self, values: dict[str, Sequence[Any]], labels: tuple[str, str], where: str,
              first_row: int = 1) -> Chunk:
        """A Chunk of {column: values} (rows `first_row`... of `where`)."""
        texts = texts_or_empty(values[self.text])
        tags = tag_codes(list(values[self.label]), *labels, where) if self.label in values else None
        tickers = list(values[self.ticker]) if self.ticker else None
        return Chunk(texts, list(values[self.time]), tickers, tags, where, first_row)


def file_chunks(paths: Sequence[Path], columns: Columns, labels: tuple[str, str], size: int = 8192,
                progress: Callable[[int], None] | None = None) -> Iterator[Chunk]:
    """The chunks of the files, in order."""
    for path in paths:
        first_row = 1
        for values in read_columns(Path(path), columns.required(), [columns.label], size):
            chunk = columns.chunk(values, labels, str(path), first_row)
            yield chunk
            first_row += len(chunk.texts)
            if progress is not None:
                progress(len(chunk.texts))


def frame_chunks(frame: pd.DataFrame, columns: Columns, labels: tuple[str, str], size: int = 8192,
                 where: str = "the frame", first_row: int = 1) -> Iterator[Chunk]:
    """The same chunks of a pandas DataFrame (rows `first_row`... of `where`)."""
    missing = [c for c in columns.required() if c not in frame.columns]
    if missing:
        raise StocksentError(f"{where} has no column(s) {', '.join(map(repr, missing))} "
                             f"(columns: {', '.join(map(str, frame.columns))})")
    present = [c for c in [*columns.required(), columns.label] if c in frame.columns]
    for start in range(0, len(frame), size):
        part = frame.iloc[start:start + size]
        yield columns.chunk({c: part[c].tolist() for c in present}, labels, where, first_row + start)


def market_index(predictor: Predictor, chunks: Iterable[Chunk], freq: str, estimator: Estimator) -> dict[str, list]:
    """The index's rows (COLUMNS, and TAGGED_COLUMNS when the input has tags) from its chunks."""
    check_freq(freq)
    return index_rows(cell_sums(predictor, chunks, freq), estimator)


def index_rows(sums: CellSums, estimator: Estimator) -> dict[str, list]:
    """The index's rows from the sums of all its messages; one line when there were none."""
    if not sums.keys:
        raise StocksentError("no messages to index")
    return estimator.rows(sums)


def cell_sums(predictor: Predictor, chunks: Iterable[Chunk], freq: str) -> CellSums:
    """The per-cell sums of the chunks' messages, scored without ticker priors (index_proba)."""
    sums, scorer = CellSums(), index_proba(predictor)
    for chunk in chunks:
        add_chunk(sums, scorer, chunk, freq)
    return sums


def tagged_calibration(predictor: Predictor, texts: list[str], codes: np.ndarray,
                       trained_prior: float | None = None) -> Calibration:
    """A calibration set from tagged messages (0 / 1 codes), at the model's training share when
    it records one, else `trained_prior`, else their own share."""
    proba = sigmoid(index_proba(predictor).logits(texts)).astype(np.float64)
    part = predictor.part(CalibrationSet)
    return Calibration.of(proba, codes, part.trained_prior if part is not None else trained_prior)


def estimator_for(predictor: Predictor, method: str | None = None, tagged: tuple[list[str], np.ndarray] | None = None,
                  level: float = Estimator.level, source: str = "this model") -> Estimator:
    """The estimator an index runs: `method` (default: emq, or emq-platt given a market's own
    tagged messages) and the calibration set it reads: none for CC and PCC, the market's tagged
    messages (texts and 0 / 1 codes) when given, else the one the model carries."""
    method = method or default_method(tagged is not None)
    check_method(method)
    if method in UNCALIBRATED:
        calibration = None
    elif tagged is not None:
        calibration = tagged_calibration(predictor, *tagged)
    else:
        calibration = model_calibration(predictor, source)
    return Estimator(method, calibration, level)


def file_calibration(predictor: Predictor, path: Path,
                     log: Callable[[str], None] = print) -> tuple[list[str], np.ndarray]:
    """A market's tagged messages from a file (text and label columns as the model was trained
    with): texts and 0 / 1 codes."""
    texts, codes = read_messages(path, predictor.config.data)
    codes = np.asarray(codes, dtype=np.int64)
    check_calibration(int(len(codes) - codes.sum()), int(codes.sum()))
    negative, positive = predictor.labels
    log(f"calibrating on {len(texts):,} tagged messages of {path} ({int(codes.sum()):,} {positive}, "
        f"{int(len(codes) - codes.sum()):,} {negative})")
    return texts, codes


def check_not_input(out: Path, paths: Sequence[str | Path]) -> None:
    if any(Path(path).resolve() == Path(out).resolve() for path in paths):
        raise StocksentError(f"{out}: the index would overwrite an input; write elsewhere")


def index_files(predictor: Predictor, paths: Sequence[str | Path], out: Path, freq: str, columns: Columns,
                estimator: Estimator, size: int = 8192,
                progress: Callable[[int], None] | None = None) -> dict[str, list]:
    """Index the files into `out` (CSV, JSONL or Parquet by its extension), written whole or not at
    all; returns the rows."""
    check_not_input(out, paths)
    rows = market_index(predictor, file_chunks(paths, columns, predictor.labels, size, progress), freq, estimator)
    with open_table(out, list(rows)) as table:
        table.write(rows)
    return rows
