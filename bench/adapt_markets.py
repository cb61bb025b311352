"""`stocksent adapt` on each development market: never worse, and where it helped, helping.

    python bench/adapt_markets.py runs/seeds-default/seed-1 [runs/seeds-default/seed-2 ...] [--out runs/adapt_markets]

For each model and each market (the 2020 other-markets set; each ticker's messages of the
stream, tagged and untagged), adapt as the command does (adapt_to: checked on the model's own
test split), reading the market's texts only; then score the market's tagged messages and the
model's test split with what the user ends with: the adapted model, or the original where the
check refused the adaptation. A second pass gives the market's own tags to the adaptation
(--calibrate): the first half of its tagged messages in time (the stream) or a seeded random half
(the 2020 set, whose file is ordered by label), every figure then on the other half. Prints, per
market: its misfit (quantify.misfit, which adapt refuses a market on without its tags), accuracy
and ROC-AUC before and after on its tags and on $SPY's test split, and whether it was refused.
`--misfit-only` prints each market's misfit and the model's own test split's, adapting nothing.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from stocksent import SentimentClassifier
from stocksent.data.corpus import CorpusCache
from stocksent.errors import StocksentError
from stocksent.evaluation.experiment import adapt_to, split_messages
from stocksent.scoring.calibration import CalibrationSet
from stocksent.scoring.index import index_proba
from stocksent.scoring.metrics import sigmoid
from stocksent.scoring.quantify import misfit

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
STREAM = DATA / "stream" / "stocktwits_stream_2018_2022.csv.gz"
OOD = DATA / "ood" / "stocktwits_trending_2020.csv"


def markets() -> dict[str, pd.DataFrame]:
    stream = pd.read_csv(STREAM, keep_default_na=False).sort_values("created_at", kind="stable")
    ood = pd.read_csv(OOD, keep_default_na=False)
    found = {"2020 set": ood.sample(frac=1.0, random_state=0)}  # its file is ordered by label
    found.update({f"stream {ticker}": frame for ticker, frame in stream.groupby("ticker")})
    return found


def _scores(clf: SentimentClassifier, texts: list[str], labels: list[str]) -> dict[str, float]:
    metrics = clf.evaluate(texts, labels)
    return {"accuracy": round(metrics["accuracy"], 4), "roc_auc": round(metrics["roc_auc"], 4)}


def fit(clf: SentimentClassifier, texts: list[str]) -> float:
    """How far the messages' probabilities are from any mix of the model's calibration set's
    bearish and bullish ones (what adapt refuses a market on without its tags)."""
    proba = sigmoid(index_proba(clf.predictor_).logits(texts))
    return round(misfit(proba, np.ones(len(proba)), clf.predictor_.part(CalibrationSet).calibration()), 3)


def one(model: str, original: SentimentClassifier, before: dict[str, float], test: tuple, name: str,
        frame: pd.DataFrame, own_tags: bool, corpora: CorpusCache) -> dict:
    """One market adapted to: `original` is the model loaded once, `before` its scores on its own
    test split `test` (texts, labels)."""
    tagged = frame[frame["sentiment"] != ""]
    half = len(tagged) // 2
    scored = tagged.iloc[half:] if own_tags else tagged
    tags = None
    if own_tags:
        first = tagged.iloc[:half]
        tags = (first["message"].tolist(), (first["sentiment"] == "bullish").to_numpy().astype(np.int64))
    row = {"model": model, "market": name, "messages": len(frame), "tagged scored": len(scored),
           "own tags": half if own_tags else 0, "misfit": fit(original, frame["message"].tolist()),
           "before": {"market": _scores(original, scored["message"].tolist(), scored["sentiment"].tolist()),
                      "spy test": before}}
    clf = SentimentClassifier.load(model)  # adapted in place: a copy of the original
    try:
        adapt_to(clf, frame["message"].tolist(), log=lambda line: None, corpora=corpora, market_tags=tags)
        row["refused"] = ""
    except StocksentError as exc:
        clf, row["refused"] = original, str(exc)
    row["after"] = {"market": _scores(clf, scored["message"].tolist(), scored["sentiment"].tolist()),
                    "spy test": _scores(clf, *test) if clf is not original else before}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--out", default="runs/adapt_markets")
    parser.add_argument("--markets", nargs="+", help="only these (default: all), e.g. '2020 set' 'stream A'")
    parser.add_argument("--own-tags", choices=["both", "yes", "no"], default="both")
    parser.add_argument("--misfit-only", action="store_true",
                        help="print each market's misfit (and the model's own test split's) without adapting")
    args = parser.parse_args()
    corpora, found = CorpusCache(), markets()
    found = {name: frame for name, frame in found.items() if not args.markets or name in args.markets}
    if args.misfit_only:
        return misfits(args.models, found, corpora)
    rows = []
    for model in args.models:
        original = SentimentClassifier.load(model)
        texts, codes = split_messages(original, None, "test", log=lambda line: None, corpora=corpora)
        test = (texts, original.classes_[codes])
        before = _scores(original, *test)
        for name, frame in found.items():
            for own_tags in {"both": (False, True), "yes": (True,), "no": (False,)}[args.own_tags]:
                rows.append(one(model, original, before, test, name, frame, own_tags, corpora))
                print(_line(rows[-1]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "adapt_markets.json").write_text(json.dumps(rows, indent=1))


def misfits(models: list[str], found: dict[str, pd.DataFrame], corpora: CorpusCache) -> None:
    table = {}
    for model in models:
        clf = SentimentClassifier.load(model)
        test = split_messages(clf, None, "test", log=lambda line: None, corpora=corpora)[0]
        table[model] = {"$SPY test split": fit(clf, test), **{name: fit(clf, frame["message"].tolist())
                                                                for name, frame in found.items()}}
    print(pd.DataFrame(table).to_string())


def _line(r: dict) -> str:
    before, after = r["before"], r["after"]
    return (f"{r['model']}  {r['market']:<12} own tags {r['own tags']:>5}  misfit {r['misfit']:.3f}  market acc "
            f"{before['market']['accuracy']:.4f} -> {after['market']['accuracy']:.4f}  auc "
            f"{before['market']['roc_auc']:.4f} -> {after['market']['roc_auc']:.4f}  spy auc "
            f"{before['spy test']['roc_auc']:.4f} -> {after['spy test']['roc_auc']:.4f}"
            + (f"  REFUSED: {r['refused']}" if r["refused"] else ""))


if __name__ == "__main__":
    main()
