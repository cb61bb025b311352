"""How right the market index is: error and interval coverage of each quantification method.

    python bench/quantify.py --model models/default [--out runs/quantify] [--resamples 100]

On the development data only, through the library's own index path (CellSums -> Estimator):
1. Resampled shares, the quantification literature's protocol: cells drawn from the model's
   $SPY test split at bullish shares 0.05, 0.10, ..., 0.95 and sizes 30, 100, 300, 1,000,
   `--resamples` draws each; the truth is the cell's own share of bullish tags.
2. The stream (../shared/data/stream): ticker-month cells holding at least 30 tagged messages,
   estimated from those messages' texts; without market tags (the model's validation split
   calibrates), and with them (the stream's tagged messages of the 12 months before the cell,
   where the cell's ticker holds 30 or more of them, both labels among them).
3. The 2020 other-markets set: one cell per ticker (first cashtag) holding 30 messages or more.
4. No shift: for each cell of 2 and 3, $SPY test cells of its size and tagged share: the error a
   method makes where the model reads a market as well as its own (a floor for 2 and 3).
Each also with TF-IDF + logistic regression's probabilities (trained on the same $SPY training
split, calibrated on its validation split) in place of the model's.

Prints a table per part: mean absolute error of the bullish share per cell, and the share of
cells whose `--level` interval holds the truth; writes them as JSON to OUT/quantify.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from stocksent import SentimentClassifier  # noqa: E402
from stocksent.evaluation.experiment import split_messages  # noqa: E402
from stocksent.scoring.calibration import CalibrationSet  # noqa: E402
from stocksent.scoring.index import CellSums, Estimator, index_proba  # noqa: E402
from stocksent.scoring.metrics import sigmoid  # noqa: E402
from stocksent.scoring.quantify import METHODS, Calibration  # noqa: E402
from stocksent.text.preprocess import first_ticker  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
STREAM = DATA / "stream" / "stocktwits_stream_2018_2022.csv.gz"
OOD = DATA / "ood" / "stocktwits_trending_2020.csv"
SHARES = np.round(np.arange(0.05, 0.951, 0.05), 2)
SIZES = (30, 100, 300, 1000)
MIN_TAGGED = 30
UNSHIFTED_DRAWS = 20  # $SPY cells drawn per market cell for the no-shift floor
PERIOD = np.datetime64("2020-01-01", "s")


def _messages() -> dict[str, pd.DataFrame]:
    stream = pd.read_csv(STREAM, keep_default_na=False)
    stream = stream[stream["sentiment"] != ""].assign(month=lambda f: f["created_at"].str[:7])
    ood = pd.read_csv(OOD, keep_default_na=False)
    ood = ood.assign(ticker=[first_ticker(text) for text in ood["message"]])
    return {"stream": stream, "ood": ood}


def _scorers(clf: SentimentClassifier, spy: dict, frames: dict,
             baseline: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """Each scorer's probabilities for the $SPY validation and test splits, the stream and the
    2020 set; and its training share."""
    predictor = index_proba(clf.predictor_)
    model = {name: sigmoid(predictor.logits(texts)) for name, (texts, _) in spy.items()}
    model.update({name: sigmoid(predictor.logits(frame["message"].tolist())) for name, frame in frames.items()})
    part = clf.predictor_.part(CalibrationSet)
    model["trained_prior"] = np.array([part.trained_prior if part else spy["train"][1].mean()])
    return {"stocksent": model, **({"tfidf+lr": _tfidf(clf, spy, frames)} if baseline else {})}


def _tfidf(clf: SentimentClassifier, spy: dict, frames: dict) -> dict[str, np.ndarray]:
    from stocksent.evaluation.baseline import make_baseline

    def tokens(texts: list[str]) -> list[list[str]]:
        return _tokens(texts, clf)

    baseline = make_baseline("tfidf")
    parts = {name: (tokens(texts), labels) for name, (texts, labels) in spy.items()}
    baseline.fit(parts["train"], parts["val"])
    out = {name: baseline.proba(parts[name][0]) for name in ("val", "test")}
    out.update({name: baseline.proba(tokens(frame["message"].tolist())) for name, frame in frames.items()})
    out["trained_prior"] = np.array([spy["train"][1].mean()])
    return out


def _tokens(texts: list[str], clf: SentimentClassifier) -> list[list[str]]:
    from stocksent.text.preprocess import tokenize

    return [tokenize(text, clf.config.preprocess.keep_emoji)[:clf.config.preprocess.max_tokens] for text in texts]


def _cells(groups: list[tuple[str, np.ndarray]], proba: np.ndarray) -> CellSums:
    """One cell per group of message indices, named by the group."""
    sums = CellSums()
    for name, index in groups:
        sums.add([name] * len(index), np.full(len(index), PERIOD), proba[index])
    return sums


def _scored(method: str, cal: Calibration, args, groups: list[tuple[str, np.ndarray]], proba: np.ndarray,
            truth: dict[str, float]) -> pd.DataFrame:
    """Each group's estimate by `method` (at the run's level, draws and seed), its error and
    whether its interval holds the truth."""
    estimator = Estimator(method, cal, args.level, args.draws, args.seed)
    rows = pd.DataFrame(estimator.rows(_cells(groups, proba)))
    rows["truth"] = rows["ticker"].map(truth)
    rows["error"] = (rows["bullish_share"] - rows["truth"]).abs()
    rows["covered"] = (rows["bullish_share_low"] <= rows["truth"]) & (rows["truth"] <= rows["bullish_share_high"])
    return rows


def _drawn(labels: np.ndarray, cells: list[tuple[int, int]], resamples: int,
           seed: int) -> tuple[list[tuple[str, np.ndarray]], dict[str, float]]:
    """`resamples` groups of test messages per (size, bullish) pair, named "SIZE:BULLISH:PAIR:K"."""
    rng = np.random.default_rng(seed)
    positive, negative = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    groups, truth = [], {}
    for number, (size, n_pos) in enumerate(cells):
        for k in range(resamples):
            name = f"{size}:{n_pos}:{number}:{k}"
            groups.append((name, np.concatenate([rng.choice(positive, n_pos, replace=False),
                                                 rng.choice(negative, size - n_pos, replace=False)])))
            truth[name] = n_pos / size
    return groups, truth


def resampled(scores: dict, labels: np.ndarray, cal: Calibration, methods: list[str], args) -> list[dict]:
    cells = [(size, int(round(share * size))) for size in SIZES for share in SHARES]
    groups, truth = _drawn(labels, cells, args.resamples, args.seed)
    out = []
    for method in methods:
        rows = _scored(method, cal, args, groups, scores["test"], truth)
        rows["size"] = rows["ticker"].str.split(":").str[0].astype(int)
        for size, part in rows.groupby("size"):
            out.append({"method": method, "size": int(size), "cells": len(part), "mae": part["error"].mean(),
                        "coverage": part["covered"].mean()})
    return out


def unshifted(frame: pd.DataFrame, keys: list[str], scores: dict, labels: np.ndarray, cal: Calibration,
              methods: list[str], args) -> list[dict]:
    """The error on a market with no shift but its share: $SPY test cells drawn at each market
    cell's size and tagged share (UNSHIFTED_DRAWS per cell), what a method makes where the model
    reads the market as well as its own."""
    market, truth = market_cells(frame, keys)
    cells = [(len(index), int(round(truth[name] * len(index)))) for name, index in market]
    groups, truth = _drawn(labels, cells, UNSHIFTED_DRAWS, args.seed)
    return [_summary(method, "none, $SPY cells of its sizes and shares",
                     _scored(method, cal, args, groups, scores["test"], truth)) for method in methods]


def market_cells(frame: pd.DataFrame, keys: list[str]) -> tuple[list[tuple[str, np.ndarray]], dict[str, float]]:
    groups, truth = [], {}
    labels = (frame["sentiment"] == "bullish").to_numpy()
    for key, index in frame.reset_index(drop=True).groupby(keys).indices.items():
        name = "|".join(key) if isinstance(key, tuple) else key
        if len(index) >= MIN_TAGGED and name.split("|")[0]:
            groups.append((name, index))
            truth[name] = float(labels[index].mean())
    return groups, truth


def market(frame: pd.DataFrame, keys: list[str], proba: np.ndarray, cal: Calibration, methods: list[str],
           args, tags: Callable | None = None) -> list[dict]:
    groups, truth = market_cells(frame, keys)
    own = [] if tags is None else [(name, index, tags(name)) for name, index in groups]  # once, for every method
    own = [(name, index, c) for name, index, c in own if c is not None]
    out = []
    for method in methods:
        out.append(_summary(method, "none", _scored(method, cal, args, groups, proba, truth)))
        if own:
            rows = pd.concat([_scored(method, c, args, [(name, index)], proba, truth) for name, index, c in own])
            out.append(_summary(method, "the stream's 12 months before", rows))
    return out


def _summary(method: str, tags: str, rows: pd.DataFrame) -> dict:
    return {"method": method, "tags": tags, "cells": len(rows), "mae": rows["error"].mean(),
            "coverage": rows["covered"].mean()}


def earlier_tags(frame: pd.DataFrame, proba: np.ndarray, prior: float) -> Callable[[str], Calibration | None]:
    """The calibration set of a stream cell "TICKER|YYYY-MM": the stream's tagged messages of the
    12 months before, every ticker's together (what `--calibrate FILE` reads from a file of them),
    when the cell's own ticker holds 30 or more of them and both labels. Sets of the ticker's own
    messages alone measured no better."""
    month = pd.PeriodIndex(frame["month"], freq="M")
    labels = (frame["sentiment"] == "bullish").to_numpy().astype(int)
    tickers = frame["ticker"].to_numpy()

    def calibration(name: str) -> Calibration | None:
        ticker, when = name.split("|")
        end = pd.Period(when, freq="M")
        window = (month < end) & (month >= end - 12)
        own = labels[window & (tickers == ticker)]
        if len(own) < MIN_TAGGED or len(set(own)) < 2:
            return None
        return Calibration.of(proba[window], labels[window], prior)
    return calibration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", default="runs/quantify")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--resamples", type=int, default=100, help="draws per share and size")
    parser.add_argument("--draws", type=int, default=400, help="bootstrap resamples per interval")
    parser.add_argument("--level", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="leave out TF-IDF + LR")
    args = parser.parse_args()
    started = time.perf_counter()
    clf = SentimentClassifier.load(Path(args.model))
    spy = {name: split_messages(clf, None, name, log=lambda line: None) for name in ("val", "test")}
    spy["train"] = split_messages(clf, None, "train", log=lambda line: None)
    frames = _messages()
    results = {}
    for scorer, scores in _scorers(clf, spy, frames, args.baseline).items():
        prior = float(scores["trained_prior"][0])
        cal = Calibration.of(scores["val"], spy["val"][1], prior)
        stream, ood = frames["stream"].reset_index(drop=True), frames["ood"]
        results[scorer] = {
            "resampled": resampled(scores, spy["test"][1], cal, args.methods, args),
            "stream": market(stream, ["ticker", "month"], scores["stream"], cal, args.methods, args,
                             earlier_tags(stream, scores["stream"], prior)),
            "ood": market(ood, ["ticker"], scores["ood"], cal, args.methods, args),
            "stream, no shift": unshifted(stream, ["ticker", "month"], scores, spy["test"][1], cal, args.methods, args),
            "ood, no shift": unshifted(ood, ["ticker"], scores, spy["test"][1], cal, args.methods, args),
        }
        _print(scorer, results[scorer])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "quantify.json").write_text(json.dumps({"model": args.model, "level": args.level, **results}, indent=1))
    print(f"\n{time.perf_counter() - started:.0f} s; written to {out / 'quantify.json'}")


def _print(scorer: str, result: dict) -> None:
    print(f"\n## {scorer}")
    table = pd.DataFrame(result["resampled"])
    print("resampled $SPY test cells: mean absolute error (coverage) by size")
    print(table.pivot(index="method", columns="size", values="mae").round(4).astype(str)
          + " (" + table.pivot(index="method", columns="size", values="coverage").round(2).astype(str) + ")")
    for part in ("stream", "ood", "stream, no shift", "ood, no shift"):
        print(f"{part}:")
        print(pd.DataFrame(result[part]).round(4).to_string(index=False))


if __name__ == "__main__":
    main()
